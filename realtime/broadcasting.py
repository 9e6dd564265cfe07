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


def _reverse_side(through: Any, instance: models.Model) -> list[Any]:
    """What ``instance`` (the reverse side) is linked to through the m2m table ``through``."""
    for relation in instance._meta.related_objects:
        if relation.many_to_many and getattr(relation, "through", None) is through:
            accessor = relation.get_accessor_name()
            return list(getattr(instance, accessor).all()) if accessor else []
    return []


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
    connect_publisher(model, topics_for, uid=f"realtime.broadcast.{model._meta.label}", using=using)


def connect_publisher(
    model: type[models.Model],
    topics_for: Callable[[Any], Iterable[str]],
    *,
    uid: str,
    using: str | None = None,
) -> None:
    """Connect the receivers behind :func:`broadcast` under the dispatch-uid prefix ``uid`` (the
    app's own publishers use their own prefix, so a project's ``broadcast`` never replaces them)."""

    def receiver(sender: Any, instance: Any, **kwargs: Any) -> None:
        if kwargs.get("raw"):
            return  # loaddata: the data is not the app's to announce
        database = using or kwargs.get("using") or None
        for topic in dict.fromkeys(topics_for(instance)):
            publish(topic, using=database)

    def m2m_receiver(sender: Any, instance: Any, action: str, **kwargs: Any) -> None:
        if isinstance(instance, model):  # the forward side: group.permissions.add(...)
            if action in ("post_add", "post_remove", "post_clear"):
                receiver(sender, instance, using=kwargs.get("using"))
            return
        # The reverse side (permission.group_set.add(group)): ``pk_set`` names the instances of
        # ``model`` that changed, except on clear, where they are read before they are unlinked.
        database = kwargs.get("using")
        changed: Iterable[Any]
        if action in ("post_add", "post_remove") and kwargs.get("pk_set"):
            changed = model._default_manager.using(database).filter(pk__in=kwargs["pk_set"])
        elif action == "pre_clear":
            # Kept on the instance (not in this module) until its post_clear: nothing outlives it.
            setattr(instance, clearing, _reverse_side(sender, instance))
            return
        elif action == "post_clear":
            changed = instance.__dict__.pop(clearing, [])
        else:
            return
        for each in changed:
            receiver(sender, each, using=database)

    clearing = f"_{uid.replace('.', '_')}_clearing"
    post_save.connect(receiver, sender=model, weak=False, dispatch_uid=f"{uid}.save")
    post_delete.connect(receiver, sender=model, weak=False, dispatch_uid=f"{uid}.delete")
    for field in model._meta.many_to_many:
        through = field.remote_field.through
        m2m_changed.connect(
            m2m_receiver, sender=through, weak=False, dispatch_uid=f"{uid}.m2m.{field.name}"
        )
