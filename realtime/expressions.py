"""Data inside Datastar expressions: literals that Datastar's expression compiler cannot rewrite.

Every ``data-*`` attribute value Datastar reads (``data-signals``, ``data-on:*``, ``data-init``...)
is an expression that Datastar 1.0 rewrites with regular expressions before it compiles it with
``Function``: ``@name(`` becomes ``__action("name",evt,`` anywhere in the text, string literals
included, and ``$name`` outside a string becomes a signal read. So user text must never be pasted
into an expression, not even inside quotes (Django's ``escapejs`` keeps ``@`` as it is): the note
``ping @bob(re: invoice)`` comes back as ``ping __action("bob",evt,re: invoice)``.

:func:`js_literal` writes a value as JSON (a JavaScript literal too) in which every character of a
string other than ASCII letters, digits, space and ``.,:_-/`` is a ``\\uXXXX`` escape: no ``@``,
``$``, quote, backtick, backslash, semicolon or ``<`` is left for any rewriting or HTML parser to
see, and the browser decodes the escapes back to exactly the original text. The result is plain
ASCII; put it in an attribute with HTML escaping (the ``datastar_json`` template filter does).

What this is not: a way to put user text into *code*. Use it for values (``data-signals``, an
argument of an action); element content and ``value`` attributes need nothing but Django's
autoescaping.
"""

from __future__ import annotations

import json
import math
import string
from collections.abc import Mapping, Sequence

__all__ = ["js_literal"]

_PLAIN = frozenset(string.ascii_letters + string.digits + " .,:_-/")


def _string(text: str) -> str:
    parts = ['"']
    for char in text:
        if char in _PLAIN:
            parts.append(char)
            continue
        code = ord(char)
        if code > 0xFFFF:  # outside the BMP: a UTF-16 surrogate pair, as JavaScript strings hold it
            code -= 0x10000
            parts.append(f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}")
        else:
            parts.append(f"\\u{code:04x}")
    parts.append('"')
    return "".join(parts)


def js_literal(value: object) -> str:
    """``value`` (str, int, float, bool, None, and lists or str-keyed mappings of them) as JSON
    whose strings hold only letters, digits, space, ``.,:_-/`` and ``\\uXXXX`` escapes.

    Raises :class:`TypeError` for other types and :class:`ValueError` for NaN or infinities
    (JSON has neither).
    """
    if isinstance(value, str):
        return _string(value)
    if value is None or isinstance(value, bool | int):
        return json.dumps(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} has no JSON form.")
        return json.dumps(value)
    if isinstance(value, Mapping):
        items = []
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"Object keys must be strings, got {key!r}.")
            items.append(f"{_string(key)}: {js_literal(item)}")
        return "{" + ", ".join(items) + "}"
    if isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        return "[" + ", ".join(js_literal(item) for item in value) + "]"
    raise TypeError(f"{type(value).__name__} has no JSON form for a Datastar expression.")
