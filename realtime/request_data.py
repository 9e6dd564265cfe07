"""What a request carries: Datastar signals, read by one bounded parser for commands and streams.

Signals are a JSON object: the ``datastar`` query parameter of a stream's GET, the body of a
command's POST. :func:`parse_signals` is the only place they are decoded, so a stream and a command
accept and refuse exactly the same input: not JSON, not an object, nested deeper than allowed,
longer than allowed, or holding a lone surrogate (``"\\ud800"`` parses, but no database, template
or response can encode it) raise :class:`BadSignals` with a message for the client. Nothing here
reads settings: the bounds are the caller's.
"""

from __future__ import annotations

import json
import re
from typing import Any

#: A signal name as the page tags accept it (letters and digits; Datastar's ``_local`` signals,
#: which start with ``_``, are never sent to the server).
SIGNAL_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]*")


class BadSignals(ValueError):
    """The request's signals are not a bounded JSON object; the message says why, for the client."""


def parse_signals(raw: str | bytes, *, what: str, max_bytes: int, max_depth: int) -> dict[str, Any]:
    """Decode ``raw`` (empty: ``{}``) as a JSON object of signals, within the bounds given.

    ``what`` names the input in messages ("The request body", "The stream's signals").
    """
    if not raw:
        return {}
    size = len(raw.encode() if isinstance(raw, str) else raw)
    if size > max_bytes:
        raise BadSignals(f"{what} is {size} bytes; at most {max_bytes} are accepted.")
    try:
        signals = json.loads(raw)
        json.dumps(signals, ensure_ascii=False).encode()  # refuses lone surrogates
    except RecursionError as exc:
        raise BadSignals(f"{what} is nested too deeply.") from exc
    except (ValueError, UnicodeError) as exc:
        raise BadSignals(f"{what} is not valid JSON: {exc}.") from exc
    if not isinstance(signals, dict):
        raise BadSignals(f"{what} must be a JSON object of signals.")
    if _depth(signals) > max_depth:
        raise BadSignals(f"{what} is nested too deeply (at most {max_depth} levels).")
    return signals


def _depth(value: Any) -> int:
    """How deeply ``value``'s objects and arrays nest (a scalar is 0), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        children = (
            node.values() if isinstance(node, dict) else node if isinstance(node, list) else None
        )
        if children is None:
            continue
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in children)
    return deepest
