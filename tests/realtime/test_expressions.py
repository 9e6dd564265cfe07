"""Data inside Datastar expressions: ``js_literal`` and the ``datastar_json`` filter."""

from __future__ import annotations

import html
import json
import re

import pytest
from django.template import Context, Template
from hypothesis import given
from hypothesis import strategies as st

from realtime.expressions import js_literal

HOSTILE = [
    "ping @bob(re: invoice)",
    "$20 $note ${x} ${$note}",
    "`backticks` and `${x}`",
    "</script><script>alert(1)</script>",
    "' \" \\ ; \\' \\\" \\\\",
    "🖕JS_DS🚀 escaped 🖕JS_ x _DS🚀",
    "\n\r\t\x00\u2028\u2029",
    "&amp; <b> =",
]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    # Lone surrogates have no UTF-8 form (json.loads of the escapes would return them all the same).
    | st.text(st.characters(blacklist_categories=("Cs",))),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(st.characters(blacklist_categories=("Cs",))), inner, max_size=4)
    ),
    max_leaves=12,
)

# Inside a string: nothing Datastar 1.0's expression compiler rewrites (``@name(``, ``$name``),
# nothing that could end the literal, the attribute or a script element early.
PLAIN_STRING = re.compile(r"([A-Za-z0-9 .,:_/-]|\\u[0-9a-f]{4})*")


@pytest.mark.parametrize("text", HOSTILE)
def test_strings_round_trip_with_nothing_special_left(text: str) -> None:
    literal = js_literal(text)
    assert json.loads(literal) == text
    inner = literal[1:-1]
    assert PLAIN_STRING.fullmatch(inner), literal


@given(json_values)
def test_any_json_value_round_trips(value: object) -> None:
    literal = js_literal(value)
    assert json.loads(literal) == value
    assert literal.isascii()
    for string in re.findall(r'"((?:[^"\\]|\\u[0-9a-f]{4})*)"', literal):
        assert PLAIN_STRING.fullmatch(string)
    assert not re.search(r"[@$`'<>&;]", literal)


def test_characters_outside_the_bmp_are_surrogate_pairs() -> None:
    assert js_literal("🚀") == '"\\ud83d\\ude80"'


def test_structures() -> None:
    value = {"filter": {"status": "open", "page": 2, "ticket": None}, "on": True, "x": [1.5, "@"]}
    assert json.loads(js_literal(value)) == value


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (object(), TypeError),
        (b"bytes", TypeError),
        ({1: "non-string key"}, TypeError),
        (float("nan"), ValueError),
        (float("inf"), ValueError),
    ],
)
def test_values_without_a_json_form_are_refused(value: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        js_literal(value)


@pytest.mark.parametrize("autoescape", ["on", "off"])
@pytest.mark.parametrize("text", HOSTILE)
def test_datastar_json_filter_is_one_attribute_value(text: str, autoescape: str) -> None:
    source = (
        "{% load realtime %}{% autoescape " + autoescape + " %}"
        '<form data-signals:note="{{ note|datastar_json }}" data-signals="{{ all|datastar_json }}">'
        "{% endautoescape %}"
    )
    out = Template(source).render(Context({"note": text, "all": {"note": text, "n": 1}}))
    match = re.fullmatch(r'<form data-signals:note="([^"]*)" data-signals="([^"]*)">', out)
    assert match, out
    assert json.loads(html.unescape(match[1])) == text
    assert json.loads(html.unescape(match[2])) == {"note": text, "n": 1}
    assert PLAIN_STRING.fullmatch(html.unescape(match[1])[1:-1])
