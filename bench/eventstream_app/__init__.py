"""The django-eventstream peer: django-eventstream's SSE view, one ``send_event`` per command with
the groups template rendered once. Runs only from ``bench/.venv-eventstream`` (never a
dependency)."""
