"""Django's PostgreSQL backend, with a pool that fails fast and recovers at once.

Django 5.2 builds a ``psycopg_pool.ConnectionPool`` from ``OPTIONS["pool"]`` and offers no way to
choose the class; this backend builds :class:`config.pool.ResilientPool` instead, with the same
arguments, and is otherwise Django's own (``ENGINE = "config.postgresql"``).
"""

from __future__ import annotations

from typing import Any

from django.db.backends.postgresql import base

from config.pool import ResilientPool


class DatabaseWrapper(base.DatabaseWrapper):
    """``django.db.backends.postgresql`` with :class:`~config.pool.ResilientPool`."""

    @property
    def pool(self) -> Any:
        options = self.settings_dict["OPTIONS"].get("pool")
        if options and self.alias not in self._connection_pools:
            kwargs = self.get_connection_params()
            kwargs["autocommit"] = True
            pool = ResilientPool(
                kwargs=kwargs,
                open=False,
                configure=self._configure_connection,
                **({} if options is True else options),
            )
            self._connection_pools.setdefault(self.alias, pool)
        return super().pool
