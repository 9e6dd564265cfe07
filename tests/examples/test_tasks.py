"""The live task list: the smallest page built on ``realtime``."""

from __future__ import annotations

import json

import httpx
import pytest
from django.test import Client

from examples.tasks.models import Task
from realtime.testing import LiveServer, capture_publishes, open_stream


@pytest.mark.django_db
def test_the_page_lists_tasks_and_opens_the_stream(client: Client) -> None:
    Task.objects.create(title="Water the plants")
    html = client.get("/tasks/").content.decode()
    assert "Water the plants" in html
    assert 'data-init="@get(&quot;/tasks/stream/&quot;' in html
    assert '<ul id="tasks">' in html


@pytest.mark.django_db
def test_add_task_creates_and_publishes(client: Client) -> None:
    with capture_publishes() as published:
        response = client.post(
            "/tasks/add/", json.dumps({"title": "Buy milk"}), content_type="application/json"
        )
    assert response.status_code == 204
    assert list(Task.objects.values_list("title", flat=True)) == ["Buy milk"]
    assert published == [("tasks", None)]


@pytest.mark.django_db
def test_an_empty_title_is_422(client: Client) -> None:
    response = client.post("/tasks/add/", {"title": ""})
    assert response.status_code == 422
    assert not Task.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_every_open_tab_sees_a_new_task() -> None:
    with LiveServer() as server, httpx.Client(base_url=server.url, timeout=5) as browser:
        browser.get("/tasks/")
        headers = {"X-CSRFToken": browser.cookies["csrftoken"]}
        with (
            open_stream(f"{server.url}/tasks/stream/") as one,
            open_stream(f"{server.url}/tasks/stream/") as two,
        ):
            for tab in (one, two):
                first = tab.next_event()
                assert first.elements.strip().startswith('<ul id="tasks">')
                assert "Nothing to do yet." in first.elements
            response = browser.post("/tasks/add/", json={"title": "Ship it"}, headers=headers)
            assert response.status_code == 204
            for tab in (one, two):
                assert "<li>Ship it</li>" in tab.next_event().elements


@pytest.mark.django_db
def test_the_shared_list_keeps_only_the_newest_tasks(client: Client) -> None:
    from examples.tasks.views import MAX_TASKS

    Task.objects.bulk_create(Task(title=f"old {n}") for n in range(MAX_TASKS + 20))
    for n in range(3):
        response = client.post(
            "/tasks/add/", json.dumps({"title": f"new {n}"}), content_type="application/json"
        )
        assert response.status_code == 204
    titles = list(Task.objects.order_by("id").values_list("title", flat=True))
    assert len(titles) == MAX_TASKS
    assert titles[-3:] == ["new 0", "new 1", "new 2"]
    html = client.get("/tasks/").content.decode()
    assert html.count("<li>") == MAX_TASKS
    assert "<li>new 2</li>" in html
    first_kept = (MAX_TASKS + 20) - (MAX_TASKS - 3)
    assert f"<li>old {first_kept}</li>" in html
    assert f"<li>old {first_kept - 1}</li>" not in html


@pytest.mark.django_db
def test_pages_and_streams_render_no_more_than_the_bound() -> None:
    from examples.tasks.views import MAX_TASKS, TaskStream, newest_tasks

    Task.objects.bulk_create(Task(title=f"t {n}") for n in range(MAX_TASKS * 3))
    tasks = newest_tasks()
    assert [t.title for t in tasks] == [f"t {n}" for n in range(MAX_TASKS * 2, MAX_TASKS * 3)]
    assert len(TaskStream().get_context_data()["tasks"]) == MAX_TASKS
