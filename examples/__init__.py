"""Small examples of ``realtime``, each a tiny installable app."""
