"""Topic names and the wire message that carries them on the one NOTIFY channel.

A topic is a dotted name (``tickets``, ``tickets.42``, ``tab.3f2a``); a subscription may watch a
prefix with a trailing ``.*`` (``tickets.*``). The message is the topic, then, when there is a
payload, one space and the payload as compact JSON. Nothing else travels: notifications say *what*
changed, never the state itself.
"""

from __future__ import annotations

import json
import re
from typing import Any

#: PostgreSQL rejects NOTIFY payloads of 8000 bytes or more.
MAX_MESSAGE_BYTES = 7999

_SEGMENT = r"[A-Za-z0-9_-]+"
_TOPIC = re.compile(rf"^{_SEGMENT}(\.{_SEGMENT})*$")
_PATTERN = re.compile(rf"^{_SEGMENT}(\.{_SEGMENT})*(\.\*)?$")


class InvalidTopic(ValueError):
    """A topic name that is not dotted segments of letters, digits, ``_`` and ``-``."""


class PayloadTooLarge(ValueError):
    """A notification whose message would not fit PostgreSQL's 8000-byte NOTIFY limit."""


def validate_topic(topic: str, *, pattern: bool = False) -> str:
    """Return ``topic`` if it is a valid name (or, with ``pattern``, a ``prefix.*``); else raise."""
    regex = _PATTERN if pattern else _TOPIC
    if not isinstance(topic, str) or len(topic) > 200 or not regex.fullmatch(topic):
        kind = "topic pattern" if pattern else "topic"
        raise InvalidTopic(
            f"Invalid {kind} {topic!r}: use dotted segments of letters, digits, '_' and '-'"
            + (", optionally ending in '.*'" if pattern else "")
            + " (e.g. 'tickets.42'), at most 200 characters."
        )
    return topic


def encode(topic: str, payload: Any = None) -> str:
    """Build the NOTIFY message for ``topic`` (validated) and an optional JSON-able payload."""
    validate_topic(topic)
    if payload is None:
        return topic
    try:
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"The payload for {topic!r} is not JSON-serialisable: {exc}") from exc
    message = f"{topic} {body}"
    size = len(message.encode())
    if size > MAX_MESSAGE_BYTES:
        raise PayloadTooLarge(
            f"The notification for {topic!r} is {size} bytes; PostgreSQL allows {MAX_MESSAGE_BYTES}. "
            "Send a small notice (an id, a message) and let the stream re-read the state."
        )
    return message


def decode(message: str) -> tuple[str, Any]:
    """Split a NOTIFY message into its topic and payload (``None`` when absent)."""
    topic, _, body = message.partition(" ")
    return topic, (json.loads(body) if body else None)
