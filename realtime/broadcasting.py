"""``broadcast``: publish topics whenever a model is saved or deleted, wherever that happens.

The receivers run inside the saving transaction (Django sends ``post_save``/``post_delete``
there), so the NOTIFY is delivered at commit like any ``publish``: a command, the shell, the admin,
a management command, a worker process or a WSGI server all reach every stream.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from django.db import models
from django.db.models.signals import m2m_changed, post_delete, post_save

from realtime.relay.publish import publish
from realtime.relay.topics import validate_topic

Topics = Iterable[str] | Callable[[Any], Iterable[str]]


def broadcast(model: type[models.Model], topics: Topics, *, using: str | None = None) -> None:
    """Publish ``topics`` after every save or delete of ``model`` (and changes of its m2m fields).

    ``topics`` is a list of names, or a function of the instance returning them, e.g.
    ``broadcast(Ticket, topics=lambda t: ["tickets", f"tickets.{t.pk}"])``. Call it once, from
    ``AppConfig.ready()``. Static names are validated at once; computed ones on each publish.
    """
    if callable(topics):
        topics_for = topics
    else:
        names = [validate_topic(t) for t in topics]
        topics_for = lambda instance: names  # noqa: E731

    def receiver(sender: Any, instance: Any, **kwargs: Any) -> None:
        if kwargs.get("raw"):
            return  # loaddata: the data is not the app's to announce
        database = using or kwargs.get("using") or None
        for topic in dict.fromkeys(topics_for(instance)):
            publish(topic, using=database)

    def m2m_receiver(sender: Any, instance: Any, action: str, **kwargs: Any) -> None:
        if action in ("post_add", "post_remove", "post_clear") and isinstance(instance, model):
            receiver(sender, instance, using=kwargs.get("using"))

    uid = f"realtime.broadcast.{model._meta.label}"
    post_save.connect(receiver, sender=model, weak=False, dispatch_uid=f"{uid}.save")
    post_delete.connect(receiver, sender=model, weak=False, dispatch_uid=f"{uid}.delete")
    for field in model._meta.many_to_many:
        through = field.remote_field.through
        m2m_changed.connect(
            m2m_receiver, sender=through, weak=False, dispatch_uid=f"{uid}.m2m.{field.name}"
        )
