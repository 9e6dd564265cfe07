"""Keeping an open stream's authority current: the topics that announce a change of it.

A stream is authorized when it opens; this module makes sure it hears when that may no longer
hold, from any process:

- Logging out (Django's ``user_logged_out``) and deleting a session row publish the session's
  topic: every stream of that session ends.
- Saving or deleting a user, changing its groups or permissions (from either side of the
  relation), publish the user's topic; changing a group's permissions publishes
  :data:`GROUPS_TOPIC`. Streams of those users re-run their view's access checks with a freshly
  loaded user before they send anything more.

Topic names carry no secret: a session's topic holds a keyed digest of its key, never the key.
The receivers are connected by the app's ``ready()`` (:func:`connect`).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from django.apps import apps
from django.conf import settings
from django.http import HttpRequest
from django.utils.crypto import salted_hmac

from realtime.broadcasting import connect_publisher
from realtime.relay.publish import publish

#: Published when any group's permissions change: every signed-in stream re-checks.
GROUPS_TOPIC = "realtime-auth.groups"


def session_topic(session_key: str) -> str:
    """The topic announcing the end of the session ``session_key`` (a digest, not the key)."""
    digest = salted_hmac("realtime.access.session", session_key, algorithm="sha256").hexdigest()
    return f"realtime-auth.session.{digest[:40]}"


def user_topic(pk: Any) -> str:
    """The topic announcing a change to the user with primary key ``pk``."""
    return f"realtime-auth.user.{pk}"


def control_topics(request: HttpRequest) -> tuple[str | None, list[str]]:
    """The session topic (or ``None``) and every control topic a stream of ``request`` watches."""
    session = getattr(request, "session", None)
    key = getattr(session, "session_key", None)
    session_name = session_topic(key) if key else None
    topics = [session_name] if session_name else []
    user = getattr(request, "user", None)
    if user is not None and getattr(user, "is_authenticated", False):
        topics += [user_topic(user.pk), GROUPS_TOPIC]
    return session_name, topics


def reload_user(request: HttpRequest) -> None:
    """Give ``request`` its session and user as they are in the database now.

    The session is read again from its store (a deleted or expired one is empty), and the user
    loaded again through it (a logged-out session, or a changed password, gives the anonymous
    user); without sessions, the user is loaded again by primary key.
    """
    session = getattr(request, "session", None)
    if session is not None:
        engine = import_module(settings.SESSION_ENGINE)
        request.session = engine.SessionStore(session.session_key)
    user = getattr(request, "user", None)
    if user is None or not apps.is_installed("django.contrib.auth"):
        return
    from django.contrib.auth import get_user
    from django.contrib.auth.models import AnonymousUser

    if session is not None:
        request.user = get_user(request)
    elif user.is_authenticated:
        fresh = type(user)._default_manager.filter(pk=user.pk).first()
        request.user = fresh if fresh is not None else AnonymousUser()


def _logged_out(sender: Any, request: HttpRequest | None = None, **kwargs: Any) -> None:
    key = getattr(getattr(request, "session", None), "session_key", None)
    if key:
        publish(session_topic(key))


def _session_deleted(sender: Any, instance: Any, **kwargs: Any) -> None:
    publish(session_topic(instance.session_key), using=kwargs.get("using"))


def _group_permissions_changed(sender: Any, action: str, **kwargs: Any) -> None:
    if action in ("post_add", "post_remove", "post_clear"):
        publish(GROUPS_TOPIC, using=kwargs.get("using"))


def _group_deleted(sender: Any, **kwargs: Any) -> None:
    publish(GROUPS_TOPIC, using=kwargs.get("using"))


def connect() -> None:
    """Connect the receivers that publish the control topics (from ``AppConfig.ready``)."""
    if not apps.is_installed("django.contrib.auth"):
        return
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.contrib.auth.signals import user_logged_out
    from django.db.models.signals import m2m_changed, post_delete

    user_logged_out.connect(_logged_out, dispatch_uid="realtime.access.logged_out")
    connect_publisher(
        get_user_model(), lambda user: [user_topic(user.pk)], uid="realtime.access.user"
    )
    # A group's permissions changed (from either side), or a group was deleted (its members lost
    # them, without any signal about the members): every signed-in stream re-checks.
    m2m_changed.connect(
        _group_permissions_changed,
        sender=Group.permissions.through,
        dispatch_uid="realtime.access.group_permissions",
    )
    post_delete.connect(_group_deleted, sender=Group, dispatch_uid="realtime.access.group_deleted")
    if apps.is_installed("django.contrib.sessions"):
        from django.contrib.sessions.models import Session

        post_delete.connect(
            _session_deleted, sender=Session, dispatch_uid="realtime.access.session_deleted"
        )
