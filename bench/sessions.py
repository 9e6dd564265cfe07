"""Signed-in sessions for the benchmarks: ``python -m bench.sessions --n 10000 --users 1000``.

Writes ``n`` sessions of ``users`` users (made once, reused by later runs) to the bench database,
as the browsers of signed-in tabs would hold them, and prints their keys as JSON. Any checkout's
server reads them (the same database and ``SECRET_KEY``).
"""

from __future__ import annotations

import argparse
import json
import os


def make(n: int, users: int) -> list[str]:
    """Write the sessions; return their keys (session ``i`` belongs to user ``i % users``)."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.auth.models import User
    from django.contrib.sessions.backends.db import SessionStore
    from django.contrib.sessions.models import Session
    from django.utils import timezone

    people = [User.objects.get_or_create(username=f"bench-{i:05d}")[0] for i in range(users)]
    store = SessionStore()
    expire = timezone.now() + timezone.timedelta(hours=2)
    rows = [
        Session(
            session_key=store._get_new_session_key(),
            session_data=store.encode(
                {
                    SESSION_KEY: str(user.pk),
                    BACKEND_SESSION_KEY: "django.contrib.auth.backends.ModelBackend",
                    HASH_SESSION_KEY: user.get_session_auth_hash(),
                }
            ),
            expire_date=expire,
        )
        for user in (people[i % users] for i in range(n))
    ]
    Session.objects.bulk_create(rows, batch_size=1000)
    return [row.session_key for row in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--users", type=int, required=True)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    import django

    django.setup()
    print(json.dumps(make(args.n, args.users)))


if __name__ == "__main__":
    main()
