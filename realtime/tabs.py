"""Tab ids: the private id each page gives its tab, bound to the browser it was issued to.

A page tag (``{% realtime_page %}``) issues a fresh id per rendered page; the tab sends it with its
stream's GET and with every command (the ``TAB_SIGNAL`` signal or form field). A command's
rejection is published on the tab's topic (``tab.<id>``), which only that tab's stream watches.

An id is a random nonce and a signature of it keyed with ``SECRET_KEY`` and the browser's CSRF
secret (the CSRF cookie, which Django rotates at login). A stream or command presenting an id
signed for another browser, or forged, is treated as having no tab: it receives no private
notice, and cannot make its own rejections appear in someone else's tab. Tab ids travel in a
stream's URL, so they may land in access logs; without the browser's cookie they are useless.
"""

from __future__ import annotations

import base64
import secrets
from typing import Any

from django.http import HttpRequest
from django.middleware.csrf import get_token
from django.utils.crypto import constant_time_compare, salted_hmac

from realtime.conf import get_config

_NONCE_CHARS = 16  # token_urlsafe(12)
_SIGNATURE_CHARS = 22  # 132 bits of an HMAC-SHA256, base64url


def _signature(secret: str, nonce: str) -> str:
    digest = salted_hmac("realtime.tabs", f"{secret}:{nonce}", algorithm="sha256").digest()
    return base64.urlsafe_b64encode(digest).decode()[:_SIGNATURE_CHARS]


def _browser_secret(request: HttpRequest) -> str | None:
    """The request's CSRF secret, as Django's CSRF middleware read it (or ``None``)."""
    secret = request.META.get("CSRF_COOKIE")
    return secret if isinstance(secret, str) and secret else None


def new_tab_id(request: HttpRequest | None) -> str:
    """A fresh id for a tab being rendered for ``request``'s browser (sets its CSRF cookie when
    it has none). Without a request the id is bound to nothing any browser holds: it works for
    no stream, which is the safe failure."""
    if request is None:
        return issue_tab_id(secrets.token_urlsafe(32))
    get_token(request)
    return issue_tab_id(_browser_secret(request) or "")


def issue_tab_id(csrf_secret: str) -> str:
    """A fresh tab id for the browser whose CSRF secret (cookie) is ``csrf_secret``."""
    nonce = secrets.token_urlsafe(12)
    return nonce + _signature(csrf_secret, nonce)


def verify_tab(request: HttpRequest, value: Any) -> str | None:
    """``value`` if it is a tab id issued to ``request``'s browser, else ``None``."""
    if not isinstance(value, str) or len(value) != _NONCE_CHARS + _SIGNATURE_CHARS:
        return None
    secret = _browser_secret(request)
    if secret is None:
        return None
    nonce, signature = value[:_NONCE_CHARS], value[_NONCE_CHARS:]
    if not constant_time_compare(signature, _signature(secret, nonce)):
        return None
    return value


def pop_tab(request: HttpRequest, data: Any) -> str | None:
    """Remove the tab id from ``data`` (signals, or a form's ``QueryDict``) and return it when it
    was issued to ``request``'s browser."""
    name = get_config().TAB_SIGNAL
    value = data.get(name)
    data.pop(name, None)
    return verify_tab(request, value)


def tab_topic(tab: str) -> str:
    """The private topic of one browser tab (errors of its commands travel on it)."""
    return f"tab.{tab}"
