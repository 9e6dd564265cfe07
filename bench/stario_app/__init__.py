"""The Stario peer: Stario's own HTTP server, its Datastar ``SSE`` and its in-process ``Relay``.

Runs only from ``bench/.venv-stario`` (Stario 5.1 needs Python 3.12 or newer; never a dependency
of the project): ``python -m bench.stario_app --port 8123``. See :mod:`bench.stario_app.app`.
"""
