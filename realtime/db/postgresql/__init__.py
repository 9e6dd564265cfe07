"""Django's PostgreSQL backend with :class:`realtime.db.pool.ResilientPool` as its pool."""
