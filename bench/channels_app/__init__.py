"""The Channels peer: Django Channels + channels-postgres, WebSocket consumers rendering the same
groups template on every message. Runs only from ``bench/.venv-channels`` (never a dependency)."""
