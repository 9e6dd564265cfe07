"""Template tags for live pages: ``{% load realtime %}``.

- ``{% datastar_script %}`` loads the Datastar runtime: the app's bundled copy through
  ``{% static %}``, or ``REALTIME['DATASTAR_URL']`` with its Subresource Integrity hash.
- ``{% realtime_page stream_url %}`` goes on the page's root element: it gives the tab a private
  id, keeps the CSRF token in a local signal (``$_csrf``, never sent as a signal) and opens the
  stream with ``data-init``, reconnecting whenever the stream ends or fails.
- ``{% command_post url %}`` is the Datastar action that posts a command with the CSRF header; it
  holds no secret (it reads ``$_csrf``), so it is safe inside streamed, shared partials.
- ``{{ value|datastar_json }}`` writes data (user text included) for a Datastar attribute, e.g.
  ``data-signals:note="{{ ticket.note|datastar_json }}"``: JSON in which Datastar's expression
  rewriting finds nothing to rewrite (``@name(``, ``$name``), escaped for the attribute.
  Never paste user text into an expression any other way, not even quoted or with ``escapejs``.

For htmx pages (htmx and its SSE extension loaded with django-htmx's
``{% htmx_script extensions="hx-sse" %}``; see :mod:`realtime.formats` for the events):

- ``{% realtime_htmx_page stream_url %}`` goes on the page's root element (``<body>`` or
  ``<main>``): ``hx-ext="sse"`` and ``sse-connect="<stream_url>?tab=<id>"`` open the stream with a
  fresh private tab id; ``hx-headers`` sends the CSRF token with every htmx request inside, and
  ``hx-vals`` the tab id (as the ``tab`` form value), so a command's errors come back on this
  tab's stream. It holds the CSRF token: use it in the page, never in a streamed partial.
- ``{% realtime_htmx_notices %}`` goes inside that element: the sinks of a command's notices,
  ``<div id="realtime-toasts" sse-swap="toast" hx-swap="beforeend">`` (toasts) and a hidden
  ``sse-swap="errors" hx-swap="none"`` element whose out-of-band swaps fill the page's
  ``<span id="errors-<field>"></span>`` elements.

Example::

    {% load django_htmx realtime %}{% url "tasks:stream" as stream_url %}
    <head>{% htmx_script extensions="hx-sse" %}</head>
    <body {% realtime_htmx_page stream_url %}>
      <div sse-swap="patch">{% include "tasks/list.html" %}</div>
      <form hx-post="{% url 'tasks:add' %}">
        <input name="title"> <span id="errors-title"></span> <button>Add</button>
      </form>
      {% realtime_htmx_notices %}
    </body>
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

from django import template
from django.middleware.csrf import get_token
from django.template.context import Context
from django.templatetags.static import static
from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe

from realtime.conf import BUNDLED_DATASTAR, KNOWN_DATASTAR_INTEGRITY, get_config
from realtime.expressions import js_literal
from realtime.request_data import SIGNAL_NAME
from realtime.tabs import new_tab_id

register = template.Library()


@register.simple_tag
def datastar_script() -> SafeString:
    """``<script type="module">`` for the Datastar runtime.

    By default the copy bundled in the app's static files (no network needed); with
    ``DATASTAR_URL`` set, that URL with its SRI hash (``DATASTAR_INTEGRITY``, else the known hash
    of that URL, if any).
    """
    config = get_config()
    if config.DATASTAR_URL is None:
        url, integrity = static(BUNDLED_DATASTAR), config.DATASTAR_INTEGRITY
    else:
        url = config.DATASTAR_URL
        integrity = config.DATASTAR_INTEGRITY or KNOWN_DATASTAR_INTEGRITY.get(url)
    if integrity:
        return format_html(
            '<script type="module" src="{}" integrity="{}" crossorigin="anonymous"></script>',
            url,
            integrity,
        )
    return format_html('<script type="module" src="{}"></script>', url)


def _js(value: str) -> str:
    """A JavaScript string literal that no Datastar rewriting touches (see realtime.expressions)."""
    return js_literal(value)


def _new_tab(context: Context) -> tuple[str, str]:
    """A fresh random id for the tab being rendered, and the request's CSRF token (or "")."""
    request = context.get("request")
    return new_tab_id(request), get_token(request) if request is not None else ""


#: How a tab retries while its server is unreachable (a restart): after 1, 2 and 4 s as Datastar's
#: default, then every 4 s instead of backing off to 8, 16 and 30 s, so a deploy that takes 10 s
#: does not leave tabs waiting 16 s more (bench/results/connect.md); 7,200 errors in a row (about
#: eight hours) before it gives up.
RECONNECT_OPTIONS = "retryMaxWait: 4000, retryMaxCount: 7200"


def _stream_get(stream_url: str, only: str) -> str:
    """The Datastar action that (re)opens a stream, reconnecting whenever it ends or fails.

    ``only`` names the signals sent with it (comma-separated top-level names; the tab id is always
    sent): what the stream renders from, and so what its render key holds. Empty: every signal.
    """
    # 'always' reopens a stream that ended (server restart, shutdown); every Datastar 1.0.x client
    # reads these names the same. Cancellation stays Datastar's default ('auto'): reopening from the
    # same element (new filter signals) replaces the previous stream on 1.0.1 (which cancels per
    # element) and on 1.0.2+ (per method and URL) alike.
    options = f"retry: 'always', {RECONNECT_OPTIONS}, openWhenHidden: true"
    names = [name.strip() for name in only.split(",") if name.strip()]
    if names:
        if not all(SIGNAL_NAME.fullmatch(name) for name in names):
            raise template.TemplateSyntaxError(f"only= takes signal names, got {only!r}.")
        pattern = "|".join([get_config().TAB_SIGNAL, *names])
        options += f", filterSignals: {{include: /^({pattern})(\\.|$)/}}"
    return f"@get({_js(stream_url)}, {{{options}}})"


@register.simple_tag(takes_context=True)
def realtime_page(context: Context, stream_url: str, only: str = "") -> SafeString:
    """Attributes that give this tab an id and open its stream (``data-signals`` + ``data-init``).

    ``only="filter,page"`` sends just those signals (and the tab id) with the stream's GET.
    """
    tab, csrf = _new_tab(context)
    signals = f"{{{get_config().TAB_SIGNAL}: {_js(tab)}, _csrf: {_js(csrf)}}}"
    return format_html('data-signals="{}" data-init="{}"', signals, _stream_get(stream_url, only))


@register.simple_tag
def stream_get(stream_url: str, only: str = "") -> SafeString:
    """The action that re-opens a stream, e.g. with new filter signals (same options as
    ``realtime_page``): ``data-on-signal-patch="{% stream_get url only='filter' %}"``."""
    return format_html("{}", _stream_get(stream_url, only))


#: A command's fetch options, alike on every Datastar 1.0.x client: no request cancels another
#: (1.0.2+ would abort an in-flight POST when the same command is sent again; 1.0.1 one sent from
#: the element that holds the stream would abort the stream), and no automatic retry (1.0.2+ retries
#: a 5xx; a command is not idempotent, so a failed one is the user's to send again).
COMMAND_OPTIONS = "requestCancellation: 'disabled', retry: 'never'"


@register.simple_tag
def command_post(url: str) -> SafeString:
    """The Datastar action posting to ``url`` with the CSRF header (for ``data-on:*``)."""
    return format_html(
        "{}", f"@post({_js(url)}, {{headers: {{'X-CSRFToken': $_csrf}}, {COMMAND_OPTIONS}}})"
    )


@register.simple_tag(takes_context=True)
def realtime_htmx_page(context: Context, stream_url: str) -> SafeString:
    """Attributes that open this tab's stream for htmx and send its id and CSRF token with forms."""
    tab, csrf = _new_tab(context)
    name = get_config().TAB_SIGNAL
    separator = "&" if "?" in stream_url else "?"
    return format_html(
        'hx-ext="sse" sse-connect="{}" hx-headers="{}" hx-vals="{}"',
        f"{stream_url}{separator}{urlencode({name: tab})}",
        json.dumps({"X-CSRFToken": csrf}),
        json.dumps({name: tab}),
    )


@register.simple_tag
def realtime_htmx_notices() -> SafeString:
    """The elements that show a command's toasts and field errors on an htmx page."""
    return mark_safe(
        '<div id="realtime-toasts" sse-swap="toast" hx-swap="beforeend" aria-live="polite"></div>'
        '<div sse-swap="errors" hx-swap="none" hidden></div>'
    )


@register.filter
def datastar_json(value: object) -> SafeString:
    """``value`` as data for a Datastar attribute: JSON (see :func:`realtime.expressions.js_literal`)
    that Datastar's expression rewriting cannot change, escaped for a quoted HTML attribute."""
    return mark_safe(escape(js_literal(value)))
