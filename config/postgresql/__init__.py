"""Django's PostgreSQL backend with :class:`config.pool.ResilientPool` as its pool."""
