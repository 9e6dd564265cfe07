"""Command views over real HTTP: every status, nothing written on failure, errors to the acting tab."""

from __future__ import annotations

import http.client
import json
import time
from typing import Any

import pytest
from django import forms
from django.contrib.auth.models import AnonymousUser, Group, Permission, User
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from django.test import Client, RequestFactory

from realtime import CommandError, CommandView, command
from realtime.commands import wait_for_detached_commands
from realtime.conf import get_config
from realtime.testing import (
    TEST_CSRF_TOKEN,
    EventStream,
    LiveServer,
    SSEEvent,
    capture_publishes,
    open_stream,
    post_command,
)
from tests.helpers import REALTIME_SETTINGS, ServerProcess, database_url
from tests.realtime.helpers import (
    ADD,
    ADD_LATER,
    ADD_PRIVATE,
    GROUPS,
    add_group,
    group_names,
    is_patch,
    raw_listener,
    shows,
    tab_id,
)

TAB_A, TAB_B = tab_id(1), tab_id(2)


def names() -> list[str]:
    return sorted(Group.objects.values_list("name", flat=True))


def post_raw(
    server: LiveServer, path: str, body: bytes, content_type: str | None
) -> tuple[int, bytes]:
    """POST arbitrary bytes with a valid CSRF cookie and header."""
    headers = {"Cookie": f"csrftoken={TEST_CSRF_TOKEN}", "X-CSRFToken": TEST_CSRF_TOKEN}
    if content_type is not None:
        headers["Content-Type"] = content_type
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def is_toast(message: str) -> Any:
    def predicate(event: SSEEvent) -> bool:
        return (
            event.event == "datastar-patch-elements"
            and event.selector == "#realtime-toasts"
            and message in event.elements
        )

    return predicate


def is_field_errors(event: SSEEvent) -> bool:
    return event.event == "datastar-patch-signals" and "errors" in event.signals


#: The group nothing_private commits.
MARKER = "marker"


def nothing_private(stream: EventStream) -> bool:
    """No toast or error signals reach ``stream`` before a group committed now (``MARKER``).

    Notifications reach every stream in commit order: a notice published before the marker would
    be read before the marker's render.
    """
    add_group(MARKER)
    read = []
    while not (read and is_patch(read[-1]) and MARKER in group_names(read[-1])):
        read.append(stream.next_event(timeout=5))
    return not [e for e in read if e.selector == "#realtime-toasts" or is_field_errors(e)]


# Status codes ------------------------------------------------------------------------------


def test_success_is_204_and_written(server: LiveServer) -> None:
    response = post_command(server.url + ADD, {"name": "admins"})
    assert (response.status, response.body) == (204, b"")
    assert names() == ["admins"]


def test_get_is_405_with_allow(server: LiveServer) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        connection.request("GET", ADD)
        response = connection.getresponse()
        response.read()
    finally:
        connection.close()
    assert response.status == 405
    assert response.getheader("Allow") == "POST"


def test_missing_csrf_is_403(server: LiveServer) -> None:
    response = post_command(server.url + ADD, {"name": "admins"}, csrf=False)
    assert response.status == 403
    assert names() == []


def test_wrong_csrf_is_403(server: LiveServer) -> None:
    response = post_command(
        server.url + ADD,
        {"name": "admins"},
        cookies={"csrftoken": TEST_CSRF_TOKEN},
        headers={"X-CSRFToken": "x" * 32},
    )
    assert response.status == 403
    assert names() == []


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (b'{"name": ', "application/json", b"not valid JSON"),
        (b"\xff\xfe", "application/json", b"not valid JSON"),
        (b'["admins"]', "application/json", b"must be a JSON object"),
        (b'"admins"', "application/json", b"must be a JSON object"),
        (b"null", "application/json", b"must be a JSON object"),
        (b"name=admins", "text/plain", b"Unsupported content type"),
        (b"<name>admins</name>", "application/xml", b"Unsupported content type"),
    ],
)
def test_malformed_input_is_400(
    server: LiveServer, body: bytes, content_type: str, message: bytes
) -> None:
    status, answer = post_raw(server, ADD, body, content_type)
    assert status == 400
    assert message in answer
    assert names() == []


def test_json_without_content_type_is_read_as_json(server: LiveServer) -> None:
    status, _ = post_raw(server, ADD, b'{"name": "admins"}', None)
    assert status == 204
    assert names() == ["admins"]


@pytest.mark.parametrize(
    ("data", "field_error"),
    [
        ({"name": "ab"}, "at least 3 characters"),
        ({}, "required"),
        ({"name": ""}, "required"),
        ({"name": ["a", "list"]}, "Expected a single value."),
        ({"name": {"nested": "object"}}, "Expected a single value."),
    ],
)
def test_invalid_input_is_422_with_field_errors(
    server: LiveServer, data: dict[str, Any], field_error: str
) -> None:
    response = post_command(server.url + ADD, data)
    assert response.status == 422
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["message"] == "Please correct the errors below."
    assert list(body["errors"]) == ["name"]
    assert field_error in body["errors"]["name"][0]
    assert names() == []


def test_business_rule_is_409_and_nothing_is_written(server: LiveServer) -> None:
    # The handler creates the group *before* raising CommandError: the rollback must undo it.
    response = post_command(server.url + ADD, {"name": "forbidden"})
    assert response.status == 409
    assert response.json() == {"message": "That name is forbidden.", "errors": {}}
    assert names() == []


def test_form_encoded_commands(server: LiveServer) -> None:
    assert post_command(server.url + ADD, {"name": "htmx"}, form=True).status == 204
    invalid = post_command(server.url + ADD, {"name": "ab"}, form=True)
    assert invalid.status == 422
    assert "name" in invalid.json()["errors"]
    assert post_command(server.url + ADD, {"name": "forbidden"}, form=True).status == 409
    assert names() == ["htmx"]


def test_tab_signal_is_not_form_input(server: LiveServer) -> None:
    # The tab id rides along with the signals; the form never sees it.
    response = post_command(server.url + ADD, {"name": "admins", "tab": TAB_A})
    assert response.status == 204


def test_login_required_command(server: LiveServer) -> None:
    assert post_command(server.url + ADD_PRIVATE, {"name": "private"}).status == 403
    user = User.objects.create(username="ada")
    client = Client()
    client.force_login(user)
    session = {"sessionid": client.cookies["sessionid"].value}
    assert (
        post_command(server.url + ADD_PRIVATE, {"name": "private"}, cookies=session).status == 204
    )
    assert names() == ["private"]


# The acting tab, and only it, hears about its errors ----------------------------------------


def test_409_reaches_only_the_acting_tab(server: LiveServer) -> None:
    with (
        open_stream(server.url + GROUPS, signals={"tab": TAB_A}) as a,
        open_stream(server.url + GROUPS, signals={"tab": TAB_B}) as b,
    ):
        a.next_event(shows(), timeout=5)
        b.next_event(shows(), timeout=5)
        response = post_command(server.url + ADD, {"name": "forbidden", "tab": TAB_A})
        assert response.status == 409
        toast = a.next_event(is_toast("That name is forbidden."), timeout=5)
        assert 'role="alert"' in toast.elements
        assert nothing_private(b)


def test_422_field_errors_reach_only_the_acting_tab(server: LiveServer) -> None:
    with (
        open_stream(server.url + GROUPS, signals={"tab": TAB_A}) as a,
        open_stream(server.url + GROUPS, signals={"tab": TAB_B}) as b,
    ):
        a.next_event(shows(), timeout=5)
        b.next_event(shows(), timeout=5)
        assert post_command(server.url + ADD, {"name": "ab", "tab": TAB_A}).status == 422
        errors = a.next_event(is_field_errors, timeout=5).signals["errors"]
        assert "at least 3 characters" in errors["name"]
        assert nothing_private(b)
        # A later success clears nothing by itself, but renders for everyone.
        assert post_command(server.url + ADD, {"name": "fine", "tab": TAB_A}).status == 204
        a.next_event(shows("fine", MARKER), timeout=5)
        b.next_event(shows("fine", MARKER), timeout=5)


def test_form_encoded_errors_reach_the_tab(server: LiveServer) -> None:
    with open_stream(server.url + GROUPS, signals={"tab": TAB_A}) as a:
        a.next_event(shows(), timeout=5)
        response = post_command(server.url + ADD, {"name": "forbidden", "tab": TAB_A}, form=True)
        assert response.status == 409
        a.next_event(is_toast("That name is forbidden."), timeout=5)


def test_malformed_tab_ids_are_ignored(server: LiveServer) -> None:
    with open_stream(server.url + GROUPS, signals={"tab": TAB_A}) as a:
        a.next_event(shows(), timeout=5)
        for bad in ("short", TAB_A + "\n", "../" + TAB_A, 42):
            assert post_command(server.url + ADD, {"name": "forbidden", "tab": bad}).status == 409
        assert nothing_private(a)


@pytest.mark.django_db(transaction=True)
def test_the_error_notice_payload() -> None:
    with raw_listener(get_config().CHANNEL) as conn:
        client = Client()
        client.cookies["csrftoken"] = TEST_CSRF_TOKEN  # the browser the tab ids belong to
        response = client.post(ADD, {"name": "ab", "tab": TAB_A}, content_type="application/json")
        assert response.status_code == 422
        [note] = [n.payload for n in conn.notifies(timeout=5, stop_after=1)]
    topic, _, body = note.partition(" ")
    assert topic == f"tab.{TAB_A}"
    assert json.loads(body) == {
        "kind": "command-error",
        "command": "AddGroup",
        "status": 422,
        "message": "Please correct the errors below.",
        "errors": {"name": ["Ensure this value has at least 3 characters (it has 2)."]},
        "fields": ["name"],
    }


def test_errors_reach_the_tab_across_two_server_processes(server: LiveServer) -> None:
    # The stream is served by this process, the command by another one (a uvicorn subprocess).
    with (
        ServerProcess(
            database_url(), settings_module=REALTIME_SETTINGS, app="tests.realtime.asgi:application"
        ) as other,
        open_stream(server.url + GROUPS, signals={"tab": TAB_A}) as a,
        open_stream(server.url + GROUPS, signals={"tab": TAB_B}) as b,
    ):
        a.next_event(shows(), timeout=5)
        b.next_event(shows(), timeout=5)
        assert post_command(other.url + ADD, {"name": "forbidden", "tab": TAB_A}).status == 409
        a.next_event(is_toast("That name is forbidden."), timeout=5)
        assert post_command(other.url + ADD, {"name": "ab", "tab": TAB_A}).status == 422
        a.next_event(is_field_errors, timeout=5)
        assert nothing_private(b)
        # Successes cross over too: both tabs re-render.
        assert post_command(other.url + ADD, {"name": "remote", "tab": TAB_A}).status == 204
        a.next_event(shows("remote", MARKER), timeout=5)
        b.next_event(shows("remote", MARKER), timeout=5)


# Detached commands ----------------------------------------------------------------------------


def test_detached_command_answers_at_once_then_its_effect_shows(server: LiveServer) -> None:
    with open_stream(server.url + GROUPS, signals={"tab": TAB_A}) as a:
        a.next_event(shows(), timeout=5)
        response = post_command(server.url + ADD_LATER, {"name": "later", "tab": TAB_A})
        assert response.status == 204
        a.next_event(shows("later"), timeout=5)
    assert names() == ["later"]


def test_detached_command_rule_error_reaches_the_tab(server: LiveServer) -> None:
    with (
        open_stream(server.url + GROUPS, signals={"tab": TAB_A}) as a,
        open_stream(server.url + GROUPS, signals={"tab": TAB_B}) as b,
    ):
        a.next_event(shows(), timeout=5)
        b.next_event(shows(), timeout=5)
        response = post_command(server.url + ADD_LATER, {"name": "forbidden", "tab": TAB_A})
        assert response.status == 204  # it was valid: the rule runs later
        a.next_event(is_toast("That name is forbidden."), timeout=5)
        assert nothing_private(b)
    wait_for_detached_commands()
    assert names() == [MARKER]


def test_detached_command_still_validates_first(server: LiveServer) -> None:
    response = post_command(server.url + ADD_LATER, {"name": "ab", "tab": TAB_A})
    assert response.status == 422
    assert "name" in response.json()["errors"]
    wait_for_detached_commands()
    assert names() == []


# The view itself (RequestFactory: no middleware, no server) ----------------------------------


class ChoiceForm(forms.Form):
    tags = forms.MultipleChoiceField(choices=[("a", "a"), ("b", "b")])


def json_post(data: Any, user: Any = None) -> Any:
    request = RequestFactory().post("/", data=data, content_type="application/json")
    request.META["CSRF_COOKIE"] = TEST_CSRF_TOKEN  # what CsrfViewMiddleware reads from the cookie
    request.user = user or AnonymousUser()
    return request


@pytest.mark.django_db
def test_multiple_choice_needs_a_list() -> None:
    handled: list[Any] = []

    @command(ChoiceForm)
    def tag(request: HttpRequest, form: forms.Form) -> None:
        handled.append(form.cleaned_data["tags"])

    response = tag(json_post({"tags": "a"}))
    assert response.status_code == 422
    assert json.loads(response.content)["errors"] == {"tags": ["Expected a list of values."]}
    assert tag(json_post({"tags": ["a", "b"]})).status_code == 204
    assert handled == [["a", "b"]]


@pytest.mark.django_db
def test_function_command_gets_url_kwargs_and_its_name() -> None:
    seen: dict[str, Any] = {}

    @command(name="renamed")
    def rename(request: HttpRequest, form: forms.Form, pk: int) -> None:
        """Rename something."""
        seen["pk"] = pk
        raise CommandError("No.", status=423)

    with capture_publishes() as captured:
        response = rename(json_post({"tab": TAB_A}), pk=7)
    assert seen == {"pk": 7}
    assert response.status_code == 423
    [(topic, payload)] = captured
    assert (topic, payload["command"], payload["status"]) == (f"tab.{TAB_A}", "renamed", 423)
    assert rename.view_class.__doc__ == "Rename something."  # type: ignore[attr-defined]
    assert rename.view_class.name == "renamed"  # type: ignore[attr-defined]


@pytest.mark.django_db
def test_permission_required_command() -> None:
    @command(permission_required="auth.add_group")
    def guarded(request: HttpRequest, form: forms.Form) -> None:
        pass

    user = User.objects.create(username="u")
    with pytest.raises(PermissionDenied):
        guarded(json_post({}, user))
    user.user_permissions.add(Permission.objects.get(codename="add_group"))
    user = User.objects.get(pk=user.pk)  # fresh permission cache
    assert guarded(json_post({}, user)).status_code == 204


def test_permission_required_must_name_something() -> None:
    with pytest.raises(ImproperlyConfigured, match="at least one permission"):
        command(permission_required=())


@pytest.mark.django_db
def test_a_command_without_handle_says_so() -> None:
    class Incomplete(CommandView):
        pass

    with pytest.raises(NotImplementedError, match="Incomplete must define handle"):
        Incomplete.as_view()(json_post({}))


@pytest.mark.django_db
def test_http404_in_a_handler_is_a_rejection() -> None:
    @command()
    def find(request: HttpRequest, form: forms.Form) -> None:
        get_object_or_404(Group, name="missing")

    response = find(json_post({}))
    assert response.status_code == 404
    assert "No Group matches" in json.loads(response.content)["message"]


@pytest.mark.django_db(transaction=True)
def test_detached_failure_reaches_the_tab_and_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    @command(detached=True)
    def explode(request: HttpRequest, form: forms.Form) -> None:
        raise RuntimeError("boom")

    with raw_listener(get_config().CHANNEL) as conn:
        assert explode(json_post({"tab": TAB_A})).status_code == 204
        wait_for_detached_commands()
        [note] = [n.payload for n in conn.notifies(timeout=5, stop_after=1)]
    assert note.startswith(f"tab.{TAB_A} ")
    payload = json.loads(note.partition(" ")[2])
    assert (payload["status"], payload["message"]) == (
        500,
        "Something went wrong; please try again.",
    )
    assert "detached command explode failed" in caplog.text
    assert "boom" in caplog.text


@pytest.mark.django_db(transaction=True)
def test_wait_for_detached_commands_waits() -> None:
    @command(detached=True)
    def slow(request: HttpRequest, form: forms.Form) -> None:
        time.sleep(0.3)
        Group.objects.create(name="slow")

    assert slow(json_post({})).status_code == 204
    wait_for_detached_commands()
    assert names() == ["slow"]
    wait_for_detached_commands()  # nothing pending: returns at once


def test_command_from_a_model_and_its_fields() -> None:
    from django.forms import ModelForm

    from realtime import command

    view = command(Group, fields=["name"])(lambda request, form: form.save())
    form_class = view.view_class.form_class  # type: ignore[attr-defined]
    assert issubclass(form_class, ModelForm)
    assert list(form_class.base_fields) == ["name"]
    with pytest.raises(ImproperlyConfigured, match=r"command\(Group\) needs fields="):
        command(Group)
    with pytest.raises(ImproperlyConfigured, match="fields= goes with a model"):
        command(fields=["name"])
