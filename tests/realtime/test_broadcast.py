"""``broadcast``: model saves, deletes and m2m changes publish, from any process, at commit."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.core import serializers
from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.test import Client

from realtime import InvalidTopic, broadcast
from realtime.conf import get_config
from realtime.relay.publish import observers
from realtime.testing import LiveServer, open_stream
from tests.helpers import ROOT, server_env
from tests.realtime.helpers import GROUPS, notifications, raw_listener, shows


@contextmanager
def capture_publishes() -> Iterator[list[tuple[str, Any]]]:
    """What the project publishes, without the app's own authority topics (see test_access)."""
    captured: list[tuple[str, Any]] = []

    def record(topic: str, payload: Any) -> None:
        if not topic.startswith("realtime-auth."):
            captured.append((topic, payload))

    observers.append(record)
    try:
        yield captured
    finally:
        observers.remove(record)


UID = "realtime.broadcast.auth.Group"


def disconnect_group_broadcast() -> None:
    post_save.disconnect(sender=Group, dispatch_uid=f"{UID}.save")
    post_delete.disconnect(sender=Group, dispatch_uid=f"{UID}.delete")
    m2m_changed.disconnect(sender=Group.permissions.through, dispatch_uid=f"{UID}.m2m.permissions")


def save_receivers() -> int:
    """How many post_save receivers broadcast(Group) connected (entries start with their key)."""
    return sum(1 for entry in post_save.receivers if entry[0][0] == f"{UID}.save")


@pytest.fixture
def broadcasting() -> Iterator[None]:
    broadcast(Group, topics=["groups"])
    try:
        yield
    finally:
        disconnect_group_broadcast()


@pytest.fixture
def permission(db: None) -> Permission:
    return Permission.objects.get(codename="add_group")


@pytest.mark.django_db
@pytest.mark.usefixtures("broadcasting")
class TestWhatPublishes:
    def test_create_update_delete(self) -> None:
        with capture_publishes() as captured:
            group = Group.objects.create(name="a")
        assert captured == [("groups", None)]
        with capture_publishes() as captured:
            group.name = "b"
            group.save()
        assert captured == [("groups", None)]
        with capture_publishes() as captured:
            group.delete()
        assert captured == [("groups", None)]

    def test_m2m_add_remove_clear(self, permission: Permission) -> None:
        group = Group.objects.create(name="a")
        with capture_publishes() as captured:
            group.permissions.add(permission)
            group.permissions.remove(permission)
            group.permissions.set([permission])
            group.permissions.clear()
        # add, remove, set (= add here), clear: one publish each, none for pre_* actions.
        assert captured == [("groups", None)] * 4

    def test_m2m_from_the_reverse_side(self, permission: Permission) -> None:
        group = Group.objects.create(name="a")
        other = Group.objects.create(name="b")
        with capture_publishes() as captured:
            permission.group_set.add(group)
        assert captured == [("groups", None)]
        with capture_publishes() as captured:
            permission.group_set.add(other)
            permission.group_set.remove(group)
        assert captured == [("groups", None)] * 2
        with capture_publishes() as captured:
            permission.group_set.clear()  # unlinks `other`, read before the clear
        assert captured == [("groups", None)]
        with capture_publishes() as captured:
            permission.group_set.clear()  # nothing left to unlink
        assert captured == []

    def test_m2m_reverse_side_publishes_each_changed_instance(self, permission: Permission) -> None:
        disconnect_group_broadcast()  # the fixture's static topics, replaced by computed ones
        broadcast(Group, topics=lambda g: [f"group.{g.pk}"])
        a, b = Group.objects.create(name="a"), Group.objects.create(name="b")
        with capture_publishes() as captured:
            permission.group_set.add(a, b)
        assert sorted(captured) == sorted([(f"group.{a.pk}", None), (f"group.{b.pk}", None)])
        with capture_publishes() as captured:
            permission.group_set.clear()
        assert sorted(captured) == sorted([(f"group.{a.pk}", None), (f"group.{b.pk}", None)])

    def test_other_models_do_not_publish(self) -> None:
        with capture_publishes() as captured:
            User.objects.create(username="u")
        assert captured == []

    def test_raw_saves_do_not_publish(self) -> None:
        # loaddata saves with raw=True: fixtures are not the app's news.
        data = serializers.serialize("json", [Group(pk=4242, name="fixture")])
        with capture_publishes() as captured:
            for obj in serializers.deserialize("json", data):
                obj.save()
        assert captured == []
        assert Group.objects.filter(name="fixture").exists()

    def test_queryset_update_does_not_send_signals(self) -> None:
        # A documented limit of Django's signals, pinned so nobody is surprised.
        Group.objects.create(name="a")
        with capture_publishes() as captured:
            Group.objects.update(name="b")
        assert captured == []


@pytest.mark.django_db
def test_computed_topics_deduplicated() -> None:
    broadcast(Group, topics=lambda g: ["groups", f"groups.{g.pk}", "groups"])
    try:
        with capture_publishes() as captured:
            group = Group.objects.create(name="a")
        assert captured == [("groups", None), (f"groups.{group.pk}", None)]
    finally:
        disconnect_group_broadcast()


@pytest.mark.django_db
def test_computed_topics_are_validated_on_publish() -> None:
    broadcast(Group, topics=lambda g: [f"groups {g.name}"])
    try:
        with pytest.raises(InvalidTopic), transaction.atomic():
            Group.objects.create(name="a")
        assert not Group.objects.exists()  # the invalid topic failed the save's transaction
    finally:
        disconnect_group_broadcast()


def test_static_topics_are_validated_at_once() -> None:
    with pytest.raises(InvalidTopic):
        broadcast(Group, topics=["groups", "not valid"])
    assert save_receivers() == 0


def test_registering_twice_connects_once() -> None:
    broadcast(Group, topics=["groups"])
    broadcast(Group, topics=["groups"])
    try:
        assert save_receivers() == 1
    finally:
        disconnect_group_broadcast()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("broadcasting")
def test_delivered_at_commit_and_not_on_rollback() -> None:
    with raw_listener(get_config().CHANNEL) as conn:
        with transaction.atomic():
            Group.objects.create(name="kept")
            Group.objects.create(name="also-kept")
            assert notifications(conn) == []
        assert notifications(conn) == ["groups"]  # two saves, one transaction: one NOTIFY
        with transaction.atomic():
            Group.objects.create(name="dropped")
            transaction.set_rollback(True)
        assert notifications(conn) == []


@pytest.mark.usefixtures("broadcasting")
def test_admin_edit_shows_live(server: LiveServer) -> None:
    admin = User.objects.create(username="boss", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(admin)
    with open_stream(server.url + GROUPS) as stream:
        stream.next_event(shows(), timeout=5)
        response = client.post("/admin/auth/group/add/", {"name": "from-admin"})
        assert response.status_code == 302
        stream.next_event(shows("from-admin"), timeout=5)


SHELL_WRITE = """
from django.contrib.auth.models import Group
from realtime import broadcast
broadcast(Group, topics=["groups"])
Group.objects.create(name="from-another-process")
print("written")
"""


def test_write_from_another_process_reaches_an_open_stream(server: LiveServer) -> None:
    with open_stream(server.url + GROUPS) as stream:
        stream.next_event(shows(), timeout=5)
        # `django-admin shell -c`, on the test database (DATABASE_URL), with these settings.
        result = subprocess.run(
            [sys.executable, "-m", "django", "shell", "-c", SHELL_WRITE],
            cwd=ROOT,
            env=server_env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert "written" in result.stdout
        stream.next_event(shows("from-another-process"), timeout=10)
