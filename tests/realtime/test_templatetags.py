"""Template tags: the Datastar script, the live page's attributes, the command action."""

from __future__ import annotations

import json
import re

import pytest
from django.middleware.csrf import _unmask_cipher_token, get_token
from django.template import Context, Template, TemplateSyntaxError
from django.test import RequestFactory, override_settings

from realtime import conf
from tests.realtime.helpers import Elements


def render(source: str, **context: object) -> str:
    return Template("{% load realtime %}" + source).render(Context(context))


def only_tag(html: str) -> tuple[str, dict[str, str | None]]:
    [tag] = Elements(html).tags
    return tag


def test_datastar_script_default_is_the_bundled_client() -> None:
    html = render("{% datastar_script %}")
    assert html == '<script type="module" src="/static/realtime/datastar/datastar.js"></script>'


def test_datastar_script_follows_static_url() -> None:
    with override_settings(STATIC_URL="https://static.example/assets/"):
        _tag, attrs = only_tag(render("{% datastar_script %}"))
    assert attrs == {
        "type": "module",
        "src": "https://static.example/assets/realtime/datastar/datastar.js",
    }


def test_datastar_script_cdn_url_gets_its_known_integrity(monkeypatch: pytest.MonkeyPatch) -> None:
    url = "https://cdn.example/datastar@1.0.1/datastar.js"
    monkeypatch.setitem(conf.KNOWN_DATASTAR_INTEGRITY, url, "sha384-known")
    with override_settings(REALTIME={"DATASTAR_URL": url}):
        _tag, attrs = only_tag(render("{% datastar_script %}"))
    assert attrs["integrity"] == "sha384-known"
    assert attrs["crossorigin"] == "anonymous"
    with override_settings(REALTIME={"DATASTAR_URL": "https://cdn.example/other.js"}):
        _tag, attrs = only_tag(render("{% datastar_script %}"))
    assert "integrity" not in attrs  # an unknown build: no guessed hash


def test_datastar_script_with_integrity() -> None:
    realtime = {"DATASTAR_URL": "https://cdn.example/d.js", "DATASTAR_INTEGRITY": "sha384-abc+/="}
    with override_settings(REALTIME=realtime):
        tag, attrs = only_tag(render("{% datastar_script %}"))
    assert tag == "script"
    assert attrs == {
        "type": "module",
        "src": "https://cdn.example/d.js",
        "integrity": "sha384-abc+/=",
        "crossorigin": "anonymous",
    }


def test_datastar_script_self_hosted_url_is_escaped() -> None:
    with override_settings(REALTIME={"DATASTAR_URL": '/static/d.js?a=1&b="x"'}):
        html = render("{% datastar_script %}")
    assert "&amp;" in html
    assert '"x"' not in html
    assert only_tag(html)[1]["src"] == '/static/d.js?a=1&b="x"'


def page_attrs(url: str, request: object = None, only: str = "") -> dict[str, str | None]:
    html = render(
        "<main {% realtime_page url only=only %}></main>", url=url, request=request, only=only
    )
    tag, attrs = only_tag(html)
    assert tag == "main"
    return attrs


SIGNALS = re.compile(r"^\{tab: (\"[^\"]+\"), _csrf: (\"[^\"]*\")\}$")


def test_realtime_page_gives_a_tab_id_and_the_csrf_token() -> None:
    request = RequestFactory().get("/")
    attrs = page_attrs("/stream/", request)
    match = SIGNALS.match(attrs["data-signals"] or "")
    assert match, attrs["data-signals"]
    tab, csrf = json.loads(match[1]), json.loads(match[2])
    assert re.fullmatch(r"[A-Za-z0-9_-]{16,64}", tab)
    # A masked token for this request's CSRF secret (which the response will set as a cookie).
    assert len(csrf) == 64
    assert _unmask_cipher_token(csrf) == request.META["CSRF_COOKIE"]


def test_realtime_page_opens_the_stream_retrying_always() -> None:
    init = page_attrs("/stream/")["data-init"] or ""
    assert init.startswith('@get("/stream/", {')
    assert "retry: 'always'" in init
    assert "openWhenHidden: true" in init


def test_a_restart_does_not_push_tabs_into_long_backoffs() -> None:
    init = page_attrs("/stream/")["data-init"] or ""
    # Datastar's own backoff reaches 30 s between attempts; a tab waits at most 4 s, and keeps
    # trying for about eight hours (7,200 x 4 s) as it did with 1,000 x 30 s.
    assert "retryMaxWait: 4000" in init
    assert "retryMaxCount: 7200" in init


def test_every_page_render_is_a_new_tab() -> None:
    tabs = {page_attrs("/s/")["data-signals"] for _ in range(5)}
    assert len(tabs) == 5


def test_without_a_request_the_csrf_signal_is_empty() -> None:
    assert (page_attrs("/s/")["data-signals"] or "").endswith('_csrf: ""}')


@override_settings(REALTIME={"TAB_SIGNAL": "browserTab"})
def test_the_tab_signal_name_follows_the_setting() -> None:
    assert (page_attrs("/s/")["data-signals"] or "").startswith("{browserTab: ")


@pytest.mark.parametrize(
    "url",
    [
        "/s/?a=1&b=2",
        "/s/'); alert(1); ('",
        '/s/"><script>alert(1)</script>',
        "/s/\\u0027</main>",
    ],
)
def test_realtime_page_escapes_hostile_urls(url: str) -> None:
    html = render("<main {% realtime_page url %}></main>", url=url)
    # The markup stays one element with two attributes...
    [(tag, attrs)] = Elements(html).tags
    assert (tag, sorted(attrs)) == ("main", ["data-init", "data-signals"])
    assert "<script" not in html
    # ...and the JavaScript holds the URL as one string literal that decodes back to it.
    init = attrs["data-init"] or ""
    literal = init.removeprefix("@get(").split(", {retry:")[0]
    assert "'" not in literal
    assert json.loads(literal) == url


def test_command_post_holds_no_secret() -> None:
    request = RequestFactory().get("/")
    secret = _unmask_cipher_token(get_token(request))
    html = render('<button data-on:click="{% command_post url %}">', url="/cmd/", request=request)
    [(_tag, attrs)] = Elements(html).tags
    action = attrs["data-on:click"]
    assert action == (
        "@post(\"/cmd/\", {headers: {'X-CSRFToken': $_csrf}, "
        "requestCancellation: 'disabled', retry: 'never'})"
    )
    assert secret not in html
    assert "csrf" not in html.lower().replace("x-csrftoken", "").replace("$_csrf", "")


def test_command_post_escapes_hostile_urls() -> None:
    html = render('<b data-x="{% command_post url %}">', url="/c/\"><i>'x")
    [(tag, attrs)] = Elements(html).tags
    assert tag == "b"
    action = attrs["data-x"] or ""
    literal = action.removeprefix("@post(").split(", {headers")[0]
    assert json.loads(literal) == "/c/\"><i>'x"


def test_realtime_page_only_sends_the_named_signals_and_the_tab() -> None:
    init = page_attrs("/stream/", only="filter, page")["data-init"] or ""
    assert r"filterSignals: {include: /^(tab|filter|page)(\.|$)/}" in init
    assert "retry: 'always'" in init


def test_stream_get_reopens_with_the_same_options() -> None:
    [action] = re.findall(
        r'x="([^"]*)"', render("<p x=\"{% stream_get url only='filter' %}\">", url="/s/")
    )
    reopened = Elements(f'<p x="{action}">').tags[0][1]["x"] or ""
    assert reopened == (page_attrs("/s/", only="filter")["data-init"] or "")


def test_only_rejects_what_is_not_a_signal_name() -> None:
    with pytest.raises(TemplateSyntaxError, match="signal names"):
        render("{% stream_get '/s/' only='a)|(.*' %}")
