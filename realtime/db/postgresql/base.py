"""Django's PostgreSQL backend, with a pool that fails fast and recovers at once.

Django 5.2 builds a ``psycopg_pool.ConnectionPool`` from ``OPTIONS["pool"]`` and offers no way to
choose the class; this backend builds :class:`realtime.db.pool.ResilientPool` instead, with the same
arguments, and is otherwise Django's own (``ENGINE = "realtime.db.postgresql"``).
"""

from __future__ import annotations

from typing import Any

from django.db.backends.postgresql import base

from realtime.db.pool import ResilientPool


class DatabaseWrapper(base.DatabaseWrapper):
    """``django.db.backends.postgresql`` with :class:`~realtime.db.pool.ResilientPool`."""

    @property
    def pool(self) -> Any:
        # Django's own pool property, with our class: _connection_pools (the per-process pools)
        # and _configure_connection are the parent's, private to Django 5.1+ and not in its stubs.
        pools: dict[str, Any] = self._connection_pools  # type: ignore[attr-defined]
        options = self.settings_dict["OPTIONS"].get("pool")
        if options and self.alias not in pools:
            kwargs = self.get_connection_params()
            kwargs["autocommit"] = True
            pool = ResilientPool(
                kwargs=kwargs,
                open=False,
                configure=self._configure_connection,  # type: ignore[attr-defined]
                **({} if options is True else options),
            )
            pools.setdefault(self.alias, pool)
        return super().pool
