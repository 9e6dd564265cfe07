"""The relay: ``publish`` in the writer's transaction, a backend to carry it, a hub to fan it out."""
