"""An open stream never outlives the authority that opened it (realtime.access, StreamView)."""

from __future__ import annotations

import time

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.contrib.sessions.models import Session
from django.test import Client

from realtime.access import GROUPS_TOPIC, session_topic, user_topic
from realtime.testing import EventStream, LiveServer, SSEEvent, open_stream
from tests.helpers import wait_for
from tests.realtime.helpers import PRIVATE, add_group, override_realtime, shows

STAFF = "/hooks/staff/"
PERMISSION = "/hooks/permission/"


def reloads(event: SSEEvent) -> bool:
    return "window.location.reload()" in event.elements


def logged_in(user: User) -> tuple[Client, dict[str, str]]:
    client = Client()
    client.force_login(user)
    return client, {"sessionid": client.cookies["sessionid"].value}


def ends_with_a_reload(stream: EventStream, within: float) -> None:
    """The stream's next event reloads the page, and then the stream ends."""
    stream.next_event(reloads, timeout=within)
    wait_for(lambda: stream.ended, timeout=within)


def stays_live(stream: EventStream, name: str) -> None:
    add_group(name)
    stream.next_event(shows(*sorted(Group.objects.values_list("name", flat=True))), timeout=5)
    assert not stream.ended


@pytest.fixture
def agent(server: LiveServer) -> User:
    return User.objects.create_user("agent", is_staff=True)


def test_logout_ends_every_stream_of_that_session_within_a_second(
    server: LiveServer, agent: User
) -> None:
    client, session = logged_in(agent)
    _other_client, other_session = logged_in(agent)  # the same user, another browser
    with (
        open_stream(server.url + STAFF, cookies=session) as first,
        open_stream(server.url + PRIVATE, cookies=session) as second,
        open_stream(server.url + STAFF, cookies=other_session) as other,
    ):
        for stream in (first, second, other):
            stream.next_event(shows(), timeout=5)
        started = time.monotonic()
        client.logout()
        ends_with_a_reload(first, within=1.0)
        ends_with_a_reload(second, within=1.0)
        assert time.monotonic() - started < 1.5
        stays_live(other, "after-logout")
        assert not any(reloads(event) for event in other.drain())


def test_a_deleted_session_gets_nothing_more(server: LiveServer, agent: User) -> None:
    _client, session = logged_in(agent)
    with open_stream(server.url + STAFF, cookies=session) as stream:
        stream.next_event(shows(), timeout=5)
        Session.objects.filter(session_key=session["sessionid"]).delete()
        ends_with_a_reload(stream, within=1.0)
        add_group("unseen")
        time.sleep(0.3)
        assert not any("unseen" in event.elements for event in stream.drain())


@pytest.mark.parametrize(
    "change", [{"is_active": False}, {"is_staff": False}], ids=["deactivated", "unstaffed"]
)
def test_a_user_who_loses_access_gets_no_further_render(
    server: LiveServer, agent: User, change: dict[str, bool]
) -> None:
    _client, session = logged_in(agent)
    with open_stream(server.url + STAFF, cookies=session) as stream:
        stream.next_event(shows(), timeout=5)
        for field, value in change.items():
            setattr(agent, field, value)
        agent.save()  # from a shell, the admin, another process: a save of the user
        add_group("secret")  # committed after the change: must never reach this stream
        ends_with_a_reload(stream, within=2.0)
        assert not any("secret" in event.elements for event in stream.drain())
        assert "secret" not in stream.raw.decode()


def test_a_change_that_keeps_access_keeps_the_stream(server: LiveServer, agent: User) -> None:
    _client, session = logged_in(agent)
    with open_stream(server.url + STAFF, cookies=session) as stream:
        stream.next_event(shows(), timeout=5)
        agent.first_name = "Ada"
        agent.save()
        stays_live(stream, "still-here")
        assert not any(reloads(event) for event in stream.drain())


def test_a_permission_lost_through_a_group_ends_the_stream(server: LiveServer) -> None:
    user = User.objects.create_user("viewer")
    viewers = Group.objects.create(name="viewers")
    permission = Permission.objects.get(codename="view_group")
    viewers.permissions.add(permission)
    user.groups.add(viewers)
    _client, session = logged_in(user)
    with open_stream(server.url + PERMISSION, cookies=session) as stream:
        stream.next_event(shows("viewers"), timeout=5)
        permission.group_set.remove(viewers)  # the reverse side of the relation
        ends_with_a_reload(stream, within=2.0)


def test_leaving_a_group_ends_the_stream(server: LiveServer) -> None:
    user = User.objects.create_user("member")
    viewers = Group.objects.create(name="viewers")
    viewers.permissions.add(Permission.objects.get(codename="view_group"))
    user.groups.add(viewers)
    _client, session = logged_in(user)
    with open_stream(server.url + PERMISSION, cookies=session) as stream:
        stream.next_event(shows("viewers"), timeout=5)
        viewers.user_set.remove(user)
        ends_with_a_reload(stream, within=2.0)


def test_streams_end_at_their_maximum_age_and_reconnect(server: LiveServer, agent: User) -> None:
    _client, session = logged_in(agent)
    with override_realtime(MAX_STREAM_AGE=0.5):
        with open_stream(server.url + STAFF, cookies=session) as stream:
            stream.next_event(shows(), timeout=5)
            wait_for(lambda: stream.ended, timeout=2)
            assert not any(reloads(event) for event in stream.drain())  # access still holds
        with open_stream(server.url + STAFF, cookies=session) as again:
            again.next_event(shows(), timeout=5)


def test_an_expired_session_ends_at_its_expiry(server: LiveServer, agent: User) -> None:
    client, session = logged_in(agent)
    store = client.session
    store.set_expiry(1)
    store.save()
    with open_stream(server.url + STAFF, cookies=session) as stream:
        stream.next_event(shows(), timeout=5)
        ends_with_a_reload(stream, within=3.0)


def test_control_topics_carry_no_secret() -> None:
    topic = session_topic("abcdefghijklmnopqrstuvwxyz012345")
    assert "abcdefghijklmnop" not in topic
    assert topic == session_topic("abcdefghijklmnopqrstuvwxyz012345")
    assert topic != session_topic("abcdefghijklmnopqrstuvwxyz012346")
    assert user_topic(42) == "realtime-auth.user.42"
    assert GROUPS_TOPIC == "realtime-auth.groups"


def test_an_htmx_stream_is_told_to_reload_too(server: LiveServer, agent: User) -> None:
    client, session = logged_in(agent)
    with open_stream(server.url + STAFF, cookies=session, htmx=True) as stream:
        stream.next_event(lambda e: e.event == "patch", timeout=5)
        client.logout()
        toast = stream.next_event(lambda e: e.event == "toast", timeout=1.0)
        assert 'hx-on::load="window.location.reload()"' in toast.data
        wait_for(lambda: stream.ended, timeout=1.0)
