"""The demo's pages render the shared base template."""

import pytest
from django.test import Client
from pytest_django.asserts import assertTemplateUsed


@pytest.mark.django_db
def test_home_renders_base(client: Client) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assertTemplateUsed(response, "base.html")
    assert b"Every page live" in response.content


def test_favicon_is_served(client: Client) -> None:
    response = client.get("/favicon.ico")
    assert response.status_code == 301
    assert response["Location"] == "/static/favicon.svg"
    assert b'rel="icon"' in client.get("/login/").content
