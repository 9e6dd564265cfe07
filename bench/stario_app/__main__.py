"""``python -m bench.stario_app --port N``: serve the Stario peer on 127.0.0.1."""

from bench.stario_app.app import main

main()
