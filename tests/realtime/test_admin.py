"""The live admin (realtime.admin): live changelists, who is editing, and the stale-edit guard."""

from __future__ import annotations

import html
import re
import threading
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group, Permission, User
from django.contrib.staticfiles import finders
from django.db import connection, transaction
from django.test import Client, RequestFactory

from realtime.admin import object_topic
from realtime.admin.streams import row_id
from realtime.admin.versions import (
    BadVersion,
    changes,
    edited_fields,
    make_token,
    read_token,
    snapshot,
    version_hash,
)
from realtime.testing import EventStream, LiveServer, SSEEvent, open_stream
from tests.realtime.liveapp.admin import NoteAdmin
from tests.realtime.liveapp.models import Note

CHANGELIST = "/admin/liveapp/note/"
LIVE = "/admin/liveapp/note/live/"


def staff(username: str, *codenames: str) -> User:
    user = User.objects.create_user(username, first_name=username.title(), is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="liveapp", codename__in=codenames)
    )
    return user


def logged_in(user: User) -> tuple[Client, dict[str, str]]:
    client = Client()
    client.force_login(user)
    return client, {"sessionid": client.cookies["sessionid"].value}


def titles(event: SSEEvent) -> list[str]:
    """The note titles a changelist render shows, in order."""
    return re.findall(r'/change/">([^<]*)</a>', event.elements)


def rows_showing(*expected: str) -> Any:
    return lambda event: (
        'id="realtime-admin-results"' in event.elements and titles(event) == list(expected)
    )


def form_page(client: Client, note: Note) -> tuple[str, str]:
    """The change form's HTML and its version token."""
    page = client.get(f"/admin/liveapp/note/{note.pk}/change/").content.decode()
    token = re.search(r'name="realtime_version" value="([^"]*)"', page)
    assert token, "the change form carries its version"
    return page, html.unescape(token.group(1))


def form_data(note: Note, **changes: Any) -> dict[str, Any]:
    data = {
        "title": note.title,
        "body": note.body,
        "status": note.status,
        "owner": note.owner_id or "",
        "groups": [str(g.pk) for g in note.groups.all()],
        # The comments inline's management form (no comment rows).
        "comments-TOTAL_FORMS": "0",
        "comments-INITIAL_FORMS": "0",
        "comments-MIN_NUM_FORMS": "0",
        "comments-MAX_NUM_FORMS": "1000",
    }
    if note.pinned:
        data["pinned"] = "on"
    data.update(changes)
    return data


def saved_elsewhere(note: Note, **values: Any) -> None:
    """Another person's save, committed in its own transaction (another thread)."""

    def save() -> None:
        fresh = Note.objects.get(pk=note.pk)
        for name, value in values.items():
            setattr(fresh, name, value)
        fresh.save()
        connection.close()

    thread = threading.Thread(target=save)
    thread.start()
    thread.join()


# Versions --------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_versions_snapshot_sign_and_compare() -> None:
    owner = User.objects.create_user("owner", first_name="Olga")
    group = Group.objects.create(name="Support")
    note = Note.objects.create(title="Printer", body="x" * 500, owner=owner)
    note.groups.add(group)
    fields = edited_fields(Note, ["title", "body", "status", "pinned", "owner", "groups", "nope"])
    assert [f.name for f in fields] == ["title", "body", "status", "pinned", "owner", "groups"]
    before = snapshot(note, fields)
    assert before["owner"] == str(owner.pk)
    assert before["groups"] == [str(group.pk)]

    token = make_token(note, before)
    assert read_token(token, note) == before
    other = Note.objects.create(title="Other")
    for bad in ("", token[:-2] + "xx", make_token(other, before)):
        with pytest.raises(BadVersion):
            read_token(bad, note)

    note.status, note.pinned, note.owner, note.body = "done", True, None, "short"
    note.save()
    note.groups.clear()
    after = snapshot(note, fields)
    assert version_hash(after) != version_hash(before)
    assert version_hash(dict(reversed(after.items()))) == version_hash(after)
    shown = {c.name: (c.old, c.new) for c in changes(Note, fields, before, after)}
    assert shown["status"] == ("Open", "Done")
    assert shown["pinned"] == ("no", "yes")
    assert shown["owner"] == ("owner", "(empty)")
    assert shown["groups"] == ("Support", "(empty)")
    assert shown["body"][0].endswith("…")
    assert len(shown["body"][0]) <= 120
    assert "title" not in shown
    owner.delete()
    assert changes(Note, fields, before, after)[-2].old == f"#{before['owner']} (deleted)"


def test_object_topics_are_valid_topic_names() -> None:
    assert object_topic(Note, 42) == "admin.liveapp.note.42"
    odd = object_topic(Note, "a b/ç")
    assert re.fullmatch(r"admin\.liveapp\.note\.[0-9a-f]{32}", odd)
    assert row_id(Note, 42) == "realtime-row-admin-liveapp-note-42"


# Pages -----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_changelist_page_opens_its_stream_with_its_query() -> None:
    client, _ = logged_in(staff("ann", "view_note", "change_note", "delete_note"))
    note = Note.objects.create(title="Printer")
    page = client.get(CHANGELIST + "?status__exact=open&o=1").content.decode()
    assert 'id="realtime-admin-results"' in page
    assert "/admin/liveapp/note/live/\\u003fstatus__exact\\u003dopen\\u0026o\\u003d1" in page
    assert f'id="{row_id(Note, note.pk)}"' in page  # ticked rows keep their object
    assert "datastar" in page  # the Datastar script
    # A ModelAdmin that does not opt in is the stock admin.
    stock = client.get("/admin/auth/group/")
    assert stock.status_code in (200, 403)
    assert b"realtime-admin" not in stock.content


@pytest.mark.django_db
def test_the_changelist_keeps_the_stock_actions_script_in_step_with_its_rows() -> None:
    """The stock actions.js counts the rows it found at load; changelist.js, loaded after it,
    keeps its counter and "select all" with the rows a render brings (the browser tests,
    tests/e2e/test_live_admin.py, show it), and the rows carry the total it shows."""
    client, _ = logged_in(staff("ann", "view_note", "delete_note"))
    for i in range(7):
        Note.objects.create(title=f"n{i}")
    page = client.get(CHANGELIST).content.decode()
    script = re.search(r'<script src="([^"]*realtime/admin/changelist\.js)"></script>', page)
    assert script, "the changelist loads changelist.js"
    assert page.index("admin/js/actions.js") < script.start(), "after actions.js"
    assert finders.find("realtime/admin/changelist.js")
    assert '<div id="realtime-admin-results" data-result-count="7">' in page


@pytest.mark.django_db(transaction=True)
def test_a_stale_save_is_refused_with_the_difference_then_overwritten_on_purpose() -> None:
    client, _ = logged_in(staff("ann", "view_note", "change_note"))
    note = Note.objects.create(title="Printer", body="")
    url = f"/admin/liveapp/note/{note.pk}/change/"
    _, token = form_page(client, note)

    saved_elsewhere(note, body="Bob's answer", status="done")
    response = client.post(url, {**form_data(note, body="Ann's answer"), "realtime_version": token})
    assert response.status_code == 200, "refused: the form comes back"
    page = response.content.decode()
    assert "Someone else changed this since you opened it" in page
    assert "Bob&#x27;s answer" in page
    assert "Done" in page
    note.refresh_from_db()
    assert note.body == "Bob's answer", "nothing was written"
    seen = re.search(r'name="realtime_seen" value="([^"]+)"', page)
    assert seen
    assert 'name="realtime_overwrite"' in page
    # The live notice now reports changes made after the version the refusal shows, so it does
    # not tell the user that ticking "Save mine anyway" would be refused.
    assert f"live/\\u003fv\\u003d{seen.group(1)}&quot;" in page  # the URL, in datastar_json

    # Saving again without ticking the box is still refused.
    again = {**form_data(note, body="Ann's answer"), "realtime_version": token}
    assert client.post(url, {**again, "realtime_seen": seen.group(1)}).status_code == 200
    # Ticked, on the version that was shown: saved.
    overwrite = {**again, "realtime_seen": seen.group(1), "realtime_overwrite": "on"}
    assert client.post(url, overwrite).status_code == 302
    note.refresh_from_db()
    assert note.body == "Ann's answer"


@pytest.mark.django_db(transaction=True)
def test_an_overwrite_never_covers_a_third_change() -> None:
    client, _ = logged_in(staff("ann", "view_note", "change_note"))
    note = Note.objects.create(title="Printer")
    url = f"/admin/liveapp/note/{note.pk}/change/"
    _, token = form_page(client, note)
    saved_elsewhere(note, title="Printer (Bob)")
    page = client.post(url, {**form_data(note, title="Ann"), "realtime_version": token})
    seen = re.search(r'name="realtime_seen" value="([^"]+)"', page.content.decode())
    assert seen
    saved_elsewhere(note, title="Printer (Carl)")
    data = {**form_data(note, title="Ann"), "realtime_version": token, "realtime_overwrite": "on"}
    assert client.post(url, {**data, "realtime_seen": seen.group(1)}).status_code == 200
    assert Note.objects.get(pk=note.pk).title == "Printer (Carl)"


@pytest.mark.django_db
def test_saves_without_a_valid_version_are_refused_like_stale_ones() -> None:
    """A script (or a page from before the guard) cannot overwrite silently either."""
    client, _ = logged_in(staff("ann", "view_note", "change_note"))
    note = Note.objects.create(title="Printer")
    other = Note.objects.create(title="Other")
    url = f"/admin/liveapp/note/{note.pk}/change/"
    for version in (
        {},
        {"realtime_version": "forged"},
        {"realtime_version": form_page(client, other)[1]},
    ):
        response = client.post(url, {**form_data(note, title="Scripted"), **version})
        assert response.status_code == 200
        assert "does not say which version it edits" in response.content.decode()
    assert Note.objects.get(pk=note.pk).title == "Printer"


@pytest.mark.django_db(transaction=True)
def test_a_fresh_save_goes_through_and_unrelated_changes_do_not_block_it() -> None:
    client, _ = logged_in(staff("ann", "view_note", "change_note"))
    note = Note.objects.create(title="Printer")
    url = f"/admin/liveapp/note/{note.pk}/change/"
    _, token = form_page(client, note)
    # updated_at is read-only in the form: a save that only moved it edits nothing of Ann's.
    saved_elsewhere(note)
    response = client.post(url, {**form_data(note, title="Fixed"), "realtime_version": token})
    assert response.status_code == 302
    assert Note.objects.get(pk=note.pk).title == "Fixed"
    # A form with other errors keeps the version it was opened from.
    _, token = form_page(client, Note.objects.get(pk=note.pk))
    invalid = client.post(url, {**form_data(note, title=""), "realtime_version": token})
    assert invalid.status_code == 200
    assert (
        html.unescape(
            re.search(r'name="realtime_version" value="([^"]*)"', invalid.content.decode()).group(1)  # type: ignore[union-attr]
        )
        == token
    )


@pytest.mark.django_db(transaction=True)
def test_inlines_save_with_the_form_and_a_stale_form_saves_none_of_them() -> None:
    client, _ = logged_in(staff("ann", "view_note", "change_note", "add_comment"))
    note = Note.objects.create(title="Printer")
    url = f"/admin/liveapp/note/{note.pk}/change/"
    comment = {
        "comments-TOTAL_FORMS": "1",
        "comments-0-text": "Tried turning it off and on",
        "comments-0-note": str(note.pk),
    }
    _, token = form_page(client, note)
    saved_elsewhere(note, title="Printer (Bob)")
    refused = client.post(url, {**form_data(note), **comment, "realtime_version": token})
    assert refused.status_code == 200
    assert not note.comments.exists()
    _, token = form_page(client, Note.objects.get(pk=note.pk))
    saved = client.post(url, {**form_data(note), **comment, "realtime_version": token})
    assert saved.status_code == 302
    assert list(note.comments.values_list("text", flat=True)) == ["Tried turning it off and on"]


@pytest.mark.django_db(transaction=True)
def test_admin_actions_work_and_publish(server: LiveServer) -> None:
    client, session = logged_in(staff("ann", "view_note", "delete_note"))
    keep, drop = Note.objects.create(title="Keep"), Note.objects.create(title="Drop")
    with open_stream(server.url + LIVE, cookies=session) as stream:
        stream.next_event(rows_showing("Keep", "Drop"), timeout=5)
        response = client.post(
            CHANGELIST,
            {"action": "delete_selected", "_selected_action": [str(drop.pk)], "post": "yes"},
        )
        assert response.status_code == 302
        stream.next_event(rows_showing("Keep"), timeout=2)
    assert list(Note.objects.values_list("pk", flat=True)) == [keep.pk]


@pytest.mark.django_db
def test_a_note_deleted_while_its_form_was_open() -> None:
    client, _ = logged_in(staff("ann", "view_note", "change_note"))
    note = Note.objects.create(title="Printer")
    _, token = form_page(client, note)
    Note.objects.filter(pk=note.pk).delete()
    response = client.post(
        f"/admin/liveapp/note/{note.pk}/change/", {**form_data(note), "realtime_version": token}
    )
    assert response.status_code == 302  # the admin's own "doesn't exist" redirect
    assert not Note.objects.filter(pk=note.pk).exists()


# Streams ---------------------------------------------------------------------------------------


def test_the_changelist_stream_follows_every_change_with_the_page_query(
    server: LiveServer,
) -> None:
    _, session = logged_in(staff("ann", "view_note", "delete_note"))
    Note.objects.create(title="Alpha")
    Note.objects.create(title="Done one", status="done")
    url = server.url + LIVE + "?status__exact=open&q=a"
    with open_stream(url, cookies=session) as stream:
        stream.next_event(rows_showing("Alpha"), timeout=5)
        beta = Note.objects.create(title="Beta")  # a save in any transaction
        stream.next_event(rows_showing("Alpha", "Beta"), timeout=2)
        Note.objects.create(title="Zulu done", status="done")  # outside the filter: no new row
        with transaction.atomic():
            beta.status = "done"
            beta.save()
        stream.next_event(rows_showing("Alpha"), timeout=2)
        # Delete actions delete through QuerySet.delete(): each row still publishes.
        Note.objects.filter(title="Alpha").delete()
        stream.next_event(rows_showing(), timeout=2)


def search_count(html_text: str, where: str = 'id="realtime-admin-search-count" hidden>') -> str:
    """The search bar's count span after ``where`` ("" when there is none)."""
    found = re.search(re.escape(where) + r'\s*(<span class="small quiet">.*?</span>)?', html_text)
    assert found is not None, html_text
    return found.group(1) or ""


def text(markup: str) -> str:
    """What ``markup`` reads as."""
    return html.unescape(re.sub("<[^>]+>", "", markup))


def test_the_changelist_stream_carries_the_search_bar_count(server: LiveServer) -> None:
    client, session = logged_in(staff("ann", "view_note"))
    Note.objects.create(title="Alpha")
    Note.objects.create(title="Zulu")
    with open_stream(server.url + LIVE + "?q=a", cookies=session) as stream:
        first = stream.next_event(rows_showing("Alpha"), timeout=5)
        # The stock search bar's own markup for the same query, to the byte.
        page = client.get(CHANGELIST + "?q=a").content.decode()
        assert search_count(page, where='value="Search">') == search_count(first.elements)
        assert text(search_count(first.elements)) == "1 result (2 total)"
        Note.objects.create(title="Bravo")
        later = stream.next_event(rows_showing("Alpha", "Bravo"), timeout=2)
        assert text(search_count(later.elements)) == "2 results (3 total)"
    # Nothing narrows the list: no count, as on the stock page.
    with open_stream(server.url + LIVE, cookies=session) as stream:
        every = stream.next_event(lambda e: "realtime-admin-results" in e.elements, timeout=5)
        assert search_count(every.elements) == ""


def test_the_changelist_stream_paginates_like_the_page(server: LiveServer) -> None:
    _, session = logged_in(staff("ann", "view_note"))
    for i in range(7):
        Note.objects.create(title=f"n{i}")
    with open_stream(server.url + LIVE + "?p=2", cookies=session) as stream:
        stream.next_event(rows_showing("n5", "n6"), timeout=5)
        footer = stream.next_event(lambda e: "paginator" in e.data, timeout=5)
        assert "#changelist .paginator" in footer.data
        assert "7 notes" in footer.elements
        Note.objects.create(title="n7")
        rows = stream.next_event(rows_showing("n5", "n6", "n7"), timeout=2)
        assert 'data-result-count="8"' in rows.elements  # the total the action counter shows
        stream.next_event(lambda e: "8 notes" in e.elements, timeout=2)


def test_the_changelist_stream_is_for_staff_with_a_right_on_the_model(server: LiveServer) -> None:
    refused = [
        {},  # anonymous
        logged_in(User.objects.create_user("customer"))[1],
        logged_in(staff("nobody"))[1],  # staff, no right on notes
    ]
    for cookies in refused:
        with open_stream(server.url + LIVE, cookies=cookies) as stream:
            assert stream.status == 403
    bad = open_stream(
        server.url + LIVE + "?nonsense=1", cookies=logged_in(staff("v", "view_note"))[1]
    )
    with bad:
        assert bad.status == 400


def test_losing_the_view_permission_ends_the_changelist_stream(server: LiveServer) -> None:
    viewer = staff("ann", "view_note")
    _, session = logged_in(viewer)
    with open_stream(server.url + LIVE, cookies=session) as stream:
        stream.next_event(rows_showing(), timeout=5)
        viewer.user_permissions.clear()
        stream.next_event(lambda e: "window.location.reload()" in e.elements, timeout=5)


def test_staff_with_the_same_view_share_renders(rf: RequestFactory) -> None:
    model_admin = NoteAdmin(Note, admin.site)

    def key(user: User, query: str = "") -> Any:
        request = rf.get("/" + query)
        request.user = user
        return model_admin.live_render_key(request, sorted(request.GET.items()))

    ann = User(pk=1, username="ann", is_staff=True, is_superuser=True)
    bob = User(pk=2, username="bob", is_staff=True, is_superuser=True)
    assert key(ann, "?q=x") == key(bob, "?q=x")
    assert key(ann, "?q=x") != key(ann, "?q=y")

    class MineOnly(NoteAdmin):
        def get_queryset(self, request: Any) -> Any:
            return super().get_queryset(request).filter(owner=request.user)

    model_admin = MineOnly(Note, admin.site)
    assert key(ann) != key(bob), "rows that depend on the user are rendered per user"
    model_admin.live_shared_renders = True
    assert key(ann) == key(bob)


def editing(event: SSEEvent) -> bool:
    return 'id="realtime-admin-editing"' in event.elements


def change_stream(
    server: LiveServer, note: Note, client: Client, session: dict[str, str]
) -> EventStream:
    page, _ = form_page(client, note)
    path = re.search(r"@get\(&quot;([^&]+)&quot;", page)
    assert path
    url = path.group(1).encode().decode("unicode_escape")
    return open_stream(server.url + url, cookies=session)


def test_the_change_form_shows_who_else_is_editing_and_what_changed(server: LiveServer) -> None:
    note = Note.objects.create(title="Printer")
    ann_client, ann = logged_in(staff("ann", "view_note", "change_note"))
    bob_client, bob = logged_in(staff("bob", "view_note", "change_note"))
    viewer_client, viewer = logged_in(staff("vic", "view_note"))
    with change_stream(server, note, ann_client, ann) as ann_stream:
        first = ann_stream.next_event(editing, timeout=5)
        assert "Bob" not in first.elements
        with change_stream(server, note, bob_client, bob) as bob_stream:
            ann_stream.next_event(
                lambda e: "<strong>Bob</strong>" in e.elements and "editing" in e.elements,
                timeout=3,
            )
            bob_stream.next_event(lambda e: "<strong>Ann</strong>" in e.elements, timeout=3)
            with change_stream(server, note, viewer_client, viewer):
                bob_stream.next_event(lambda e: "<strong>Vic</strong>" in e.elements, timeout=3)
            saved_elsewhere(note, status="done", title="Printer!")
            changed = ann_stream.next_event(
                lambda e: "Changed by someone else" in e.elements, timeout=3
            )
            assert "“Open” → “Done”" in changed.elements
            assert "“Printer” → “Printer!”" in changed.elements
        ann_stream.next_event(lambda e: editing(e) and "Bob" not in e.elements, timeout=3)
        Note.objects.filter(pk=note.pk).delete()
        ann_stream.next_event(lambda e: "was deleted by someone else" in e.elements, timeout=3)


def test_the_change_form_stream_is_refused_without_rights(server: LiveServer) -> None:
    note = Note.objects.create(title="Printer")
    url = server.url + f"/admin/liveapp/note/{note.pk}/live/?v=x"
    for cookies in ({}, logged_in(staff("nobody"))[1]):
        with open_stream(url, cookies=cookies) as stream:
            assert stream.status == 403
    with open_stream(
        server.url + "/admin/liveapp/note/999999/live/",
        cookies=logged_in(staff("v", "view_note"))[1],
    ) as stream:
        assert stream.status == 404
