"""Template tags for live pages: ``{% load realtime %}``.

- ``{% datastar_script %}`` loads the Datastar runtime (``REALTIME['DATASTAR_URL']``).
- ``{% realtime_page stream_url %}`` goes on the page's root element: it gives the tab a private
  id, keeps the CSRF token in a local signal (``$_csrf``, never sent as a signal) and opens the
  stream with ``data-init``, reconnecting whenever the stream ends or fails.
- ``{% command_post url %}`` is the Datastar action that posts a command with the CSRF header; it
  holds no secret (it reads ``$_csrf``), so it is safe inside streamed, shared partials.
"""

from __future__ import annotations

import json
import secrets

from django import template
from django.middleware.csrf import get_token
from django.template.context import Context
from django.utils.html import format_html
from django.utils.safestring import SafeString

from realtime.conf import get_config

register = template.Library()


@register.simple_tag
def datastar_script() -> SafeString:
    """``<script type="module">`` for the Datastar runtime, with its SRI hash when configured."""
    config = get_config()
    if config.DATASTAR_INTEGRITY:
        return format_html(
            '<script type="module" src="{}" integrity="{}" crossorigin="anonymous"></script>',
            config.DATASTAR_URL,
            config.DATASTAR_INTEGRITY,
        )
    return format_html('<script type="module" src="{}"></script>', config.DATASTAR_URL)


def _js(value: str) -> str:
    """A JavaScript string literal (single-quoted-safe JSON) for use inside an HTML attribute."""
    return json.dumps(value).replace("'", "\\u0027")


@register.simple_tag(takes_context=True)
def realtime_page(context: Context, stream_url: str) -> SafeString:
    """Attributes that give this tab an id and open its stream (``data-signals`` + ``data-init``)."""
    request = context.get("request")
    tab = secrets.token_urlsafe(16)
    csrf = get_token(request) if request is not None else ""
    signals = f"{{{get_config().TAB_SIGNAL}: {_js(tab)}, _csrf: {_js(csrf)}}}"
    action = (
        f"@get({_js(stream_url)}, {{retry: 'always', retryMaxCount: 1000, openWhenHidden: true}})"
    )
    return format_html('data-signals="{}" data-init="{}"', signals, action)


@register.simple_tag
def command_post(url: str) -> SafeString:
    """The Datastar action posting to ``url`` with the CSRF header (for ``data-on:*``)."""
    return format_html("{}", f"@post({_js(url)}, {{headers: {{'X-CSRFToken': $_csrf}}}})")
