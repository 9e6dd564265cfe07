"""The demo's Content-Security-Policy, on Django 5.2 and 6 alike.

Django 6 has ``django.middleware.csp.ContentSecurityPolicyMiddleware``; Django 5.2 has none. This
middleware reads the same setting, ``SECURE_CSP`` (a dict of directive -> list of sources, as in
Django 6), and sends it as the ``Content-Security-Policy`` header of HTML responses (pages, admin,
error pages) that do not set one themselves. Streams (``text/event-stream``) and JSON answers run
no script, so they get none. On Django 6 only, a project may swap in Django's middleware instead,
with the same setting; nonces (``CSP.NONCE``) need Django's.

It is sync- and async-capable, so streams stay async end to end.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.http import HttpRequest
from django.http.response import HttpResponseBase

HEADER = "Content-Security-Policy"

Response = HttpResponseBase
GetResponse = Callable[[HttpRequest], Response] | Callable[[HttpRequest], Awaitable[Response]]


def build_policy(policy: dict[str, list[str]]) -> str:
    """``{"default-src": ["'self'"], ...}`` as a header value: ``default-src 'self'; ...``."""
    return "; ".join(" ".join([directive, *sources]) for directive, sources in policy.items())


class ContentSecurityPolicyMiddleware:
    """Send ``settings.SECURE_CSP`` as the ``Content-Security-Policy`` of HTML responses."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Response | Awaitable[Response]:
        if self.async_mode:
            return self.__acall__(request)
        response = self.get_response(request)
        assert isinstance(response, HttpResponseBase)
        return self.add_policy(response)

    async def __acall__(self, request: HttpRequest) -> Response:
        response = await self.get_response(request)  # type: ignore[misc]
        return self.add_policy(response)

    @staticmethod
    def add_policy(response: Response) -> Response:
        """Set the header on an HTML ``response`` that has none."""
        policy = getattr(settings, "SECURE_CSP", None)
        if (
            policy
            and HEADER not in response
            and response.get("Content-Type", "").startswith("text/html")
        ):
            response[HEADER] = build_policy(policy)
        return response
