"""``publish`` / ``apublish``: pg_notify in the writer's transaction, watched by a raw LISTEN."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from asgiref.sync import async_to_sync
from django.db import transaction
from django.test import override_settings

from realtime import InvalidTopic, PayloadTooLarge, apublish, publish, stats
from tests.realtime.helpers import notifications, raw_listener

CHANNEL = "realtime_test_publish"

committing = pytest.mark.django_db(transaction=True)


@pytest.fixture
def listener() -> Iterator[psycopg.Connection[Any]]:
    with override_settings(REALTIME={"CHANNEL": CHANNEL}), raw_listener(CHANNEL) as conn:
        yield conn


@committing
def test_delivered_at_commit_not_before(listener: psycopg.Connection[Any]) -> None:
    with transaction.atomic():
        publish("groups")
        assert notifications(listener) == []
    assert notifications(listener) == ["groups"]


@committing
def test_dropped_on_rollback(listener: psycopg.Connection[Any]) -> None:
    with transaction.atomic():
        publish("groups")
        transaction.set_rollback(True)
    assert notifications(listener) == []


@committing
def test_dropped_with_a_rolled_back_savepoint(listener: psycopg.Connection[Any]) -> None:
    with transaction.atomic():
        publish("kept")
        try:
            with transaction.atomic():
                publish("dropped")
                raise RuntimeError
        except RuntimeError:
            pass
    assert notifications(listener) == ["kept"]


@committing
def test_identical_publishes_in_one_transaction_arrive_once(
    listener: psycopg.Connection[Any],
) -> None:
    with transaction.atomic():
        for _ in range(50):
            publish("groups")
        publish("tickets.1")
        publish("groups")
        publish("tab.abcdefgh", {"message": "a"})
        publish("tab.abcdefgh", {"message": "a"})
        publish("tab.abcdefgh", {"message": "b"})
    assert notifications(listener) == [
        "groups",
        "tickets.1",
        'tab.abcdefgh {"message":"a"}',
        'tab.abcdefgh {"message":"b"}',
    ]


@committing
def test_separate_transactions_each_deliver(listener: psycopg.Connection[Any]) -> None:
    for _ in range(3):
        with transaction.atomic():
            publish("groups")
    assert notifications(listener) == ["groups"] * 3


@committing
def test_outside_a_transaction_delivered_at_once(listener: psycopg.Connection[Any]) -> None:
    publish("groups", {"n": 1})
    assert notifications(listener) == ['groups {"n":1}']


@committing
def test_data_is_visible_when_the_notification_arrives(listener: psycopg.Connection[Any]) -> None:
    from django.contrib.auth.models import Group

    with transaction.atomic():
        Group.objects.create(name="visible")
        publish("groups")
    [message] = [n.payload for n in listener.notifies(timeout=2, stop_after=1)]
    assert message == "groups"
    # The listener's own connection (another session) already sees the committed row.
    row = listener.execute("SELECT name FROM auth_group WHERE name = 'visible'").fetchone()
    assert row == ("visible",)


@committing
def test_payload_too_large_is_refused_and_the_transaction_goes_on(
    listener: psycopg.Connection[Any],
) -> None:
    with transaction.atomic():
        with pytest.raises(PayloadTooLarge, match="PostgreSQL allows 7999"):
            publish("tab.abcdefgh", {"message": "x" * 8000})
        publish("groups")
    assert notifications(listener) == ["groups"]


@pytest.mark.parametrize("topic", ["", "bad topic", "tickets.*", "a..b", "x" * 201, "tab\n"])
def test_invalid_topics_are_refused_before_any_query(topic: str) -> None:
    # No database access is allowed here: the name is checked before anything is sent.
    with pytest.raises(InvalidTopic):
        publish(topic)


def test_unserialisable_payload_is_refused_before_any_query() -> None:
    with pytest.raises(TypeError, match="not JSON-serialisable"):
        publish("groups", {"when": object()})


@committing
def test_publishes_counter(listener: psycopg.Connection[Any]) -> None:
    before = stats()["publishes"]
    publish("groups")
    publish("groups")
    assert stats()["publishes"] == before + 2


@committing
def test_using_names_the_database_alias(listener: psycopg.Connection[Any]) -> None:
    publish("groups", using="default")
    assert notifications(listener) == ["groups"]
    with pytest.raises(Exception, match="missing"):
        publish("groups", using="missing")


@committing
def test_the_channel_is_a_setting() -> None:
    with raw_listener("realtime") as default, raw_listener(CHANNEL) as custom:
        publish("on.default")
        with override_settings(REALTIME={"CHANNEL": CHANNEL}):
            publish("on.custom")
        assert notifications(default) == ["on.default"]
        assert notifications(custom) == ["on.custom"]


@committing
def test_apublish_runs_in_the_callers_transaction(listener: psycopg.Connection[Any]) -> None:
    # async_to_sync runs apublish on a loop whose sync_to_async comes back to this thread, the
    # one holding Django's connection and its open transaction: as in an async view or consumer.
    with transaction.atomic():
        async_to_sync(apublish)("groups", {"from": "async"})
        assert notifications(listener) == []
    assert notifications(listener) == ['groups {"from":"async"}']

    with transaction.atomic():
        async_to_sync(apublish)("dropped")
        transaction.set_rollback(True)
    assert notifications(listener) == []

    with pytest.raises(InvalidTopic):
        async_to_sync(apublish)("bad topic")
