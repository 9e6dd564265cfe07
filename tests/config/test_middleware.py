"""The demo's Content-Security-Policy middleware: HTML responses only, sync and async."""

from __future__ import annotations

import pytest
from asgiref.sync import iscoroutinefunction
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.test import Client, RequestFactory, override_settings

from config.middleware import HEADER, ContentSecurityPolicyMiddleware, build_policy

POLICY = {"default-src": ["'self'"], "script-src": ["'self'", "'unsafe-eval'"]}
EXPECTED = "default-src 'self'; script-src 'self' 'unsafe-eval'"


def page(request: HttpRequest) -> HttpResponse:
    return HttpResponse("<p>hi</p>")


async def async_page(request: HttpRequest) -> HttpResponse:
    return HttpResponse("<p>hi</p>")


def test_build_policy() -> None:
    assert build_policy(POLICY) == EXPECTED


@override_settings(SECURE_CSP=POLICY)
def test_sync_html_gets_the_policy() -> None:
    middleware = ContentSecurityPolicyMiddleware(page)
    assert not iscoroutinefunction(middleware)
    response = middleware(RequestFactory().get("/"))
    assert isinstance(response, HttpResponse)
    assert response[HEADER] == EXPECTED


@override_settings(SECURE_CSP=POLICY)
async def test_async_html_gets_the_policy() -> None:
    middleware = ContentSecurityPolicyMiddleware(async_page)
    assert iscoroutinefunction(middleware)
    response = await middleware(RequestFactory().get("/"))  # type: ignore[misc]
    assert response[HEADER] == EXPECTED


@override_settings(SECURE_CSP=POLICY)
@pytest.mark.parametrize(
    "response",
    [
        JsonResponse({"message": "x", "errors": {}}),
        StreamingHttpResponse(iter([b"data: x\n\n"]), content_type="text/event-stream"),
        HttpResponse("<p>own</p>", headers={HEADER: "default-src 'none'"}),
    ],
)
def test_other_responses_are_left_alone(response: HttpResponse) -> None:
    before = response.get(HEADER)
    ContentSecurityPolicyMiddleware(lambda request: response)(RequestFactory().get("/"))
    assert response.get(HEADER) == before


@override_settings(SECURE_CSP={})
def test_no_policy_no_header() -> None:
    response = ContentSecurityPolicyMiddleware(page)(RequestFactory().get("/"))
    assert isinstance(response, HttpResponse)
    assert HEADER not in response


@pytest.mark.django_db
def test_the_demo_pages_send_the_policy(client: Client) -> None:
    csp = client.get("/")[HEADER]
    directives = dict(d.split(" ", 1) for d in csp.split("; "))
    assert directives["script-src"] == "'self' 'unsafe-eval'"
    assert directives["object-src"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"
    assert "'unsafe-inline'" not in csp
