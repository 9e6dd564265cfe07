"""Database helpers for projects that use ``realtime``: a PostgreSQL backend whose connection pool
fails fast while the database is down and recovers at once (``ENGINE = "realtime.db.postgresql"``,
needs the ``pool`` extra)."""
