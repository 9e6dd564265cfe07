"""Settings of the demo processes behind nginx in the deploy tests.

The browser and fault tests' settings (the demo plus test-only URLs), and what a deployment
behind a TLS proxy and PgBouncer needs: ``DATABASE_URL`` goes through PgBouncer in transaction
mode; ``LISTEN_DATABASE_URL``, when set, is the listener's own alias (direct to PostgreSQL);
Django trusts the proxy's ``X-Forwarded-Proto`` and the test's HTTPS origin.
"""

import os

import dj_database_url

from tests.e2e.settings import *  # noqa: F403
from tests.e2e.settings import DATABASES, REALTIME

# Transaction pooling: a server-side cursor would outlive the transaction's server connection.
DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True
if os.environ.get("LISTEN_DATABASE_URL"):
    DATABASES["listener"] = dict(dj_database_url.parse(os.environ["LISTEN_DATABASE_URL"]))
    REALTIME = {**REALTIME, "LISTEN_DATABASE": "listener"}

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
CSRF_TRUSTED_ORIGINS = os.environ.get("CSRF_TRUSTED_ORIGINS", "").split()
