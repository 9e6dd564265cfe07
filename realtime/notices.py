"""The private notice a rejected command sends to the tab that sent it.

One typed value, written by :mod:`realtime.commands` and read by :mod:`realtime.streams`, so the
two sides cannot drift apart. It travels as the JSON payload of a ``tab.<id>`` notification, so
it is bounded to fit PostgreSQL's NOTIFY limit and holds no secret: a status, messages, field names.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from realtime.relay.topics import MAX_MESSAGE_BYTES

#: The ``kind`` every command notice carries, so other payloads on a tab topic are told apart.
KIND = "command-error"
#: The largest payload a notice may encode to: a notification's limit, less a topic and a space.
MAX_PAYLOAD_BYTES = MAX_MESSAGE_BYTES - 250


@dataclass(frozen=True)
class CommandNotice:
    """A command's rejection: its HTTP status, a message, and errors per form field."""

    command: str
    status: int
    message: str
    #: Messages per field name (``__all__`` for the form's own errors).
    errors: dict[str, list[str]] = field(default_factory=dict)
    #: Every field of the command's form: their error sinks are cleared when they have no error.
    fields: list[str] = field(default_factory=list)

    def bounded(self) -> CommandNotice:
        """This notice cut to sizes that always fit a notification: each message and list is
        capped, then the last fields' errors, and then the last fields, are left out until the
        whole payload fits :data:`MAX_PAYLOAD_BYTES` (the message and the first errors stay)."""
        notice = CommandNotice(
            command=self.command[:200],
            status=self.status,
            message=self.message[:500],
            errors={
                name[:100]: [m[:300] for m in messages][:5]
                for name, messages in list(self.errors.items())[:50]
            },
            fields=[name[:100] for name in self.fields][:50],
        )
        while notice.encoded_size() > MAX_PAYLOAD_BYTES and notice.errors:
            notice = replace(notice, errors=dict(list(notice.errors.items())[:-1]))
        while notice.encoded_size() > MAX_PAYLOAD_BYTES and notice.fields:
            notice = replace(notice, fields=notice.fields[:-1])
        return notice

    def encoded_size(self) -> int:
        """The bytes of :meth:`to_payload` as a notification carries it."""
        payload = json.dumps(self.to_payload(), separators=(",", ":"), ensure_ascii=False)
        return len(payload.encode())

    def to_payload(self) -> dict[str, Any]:
        """The JSON payload published on the tab's topic."""
        return {"kind": KIND, **asdict(self)}

    @classmethod
    def from_payload(cls, payload: Any) -> CommandNotice | None:
        """The notice in ``payload``, or ``None`` when it is not a well-formed command notice."""
        if not isinstance(payload, dict) or payload.get("kind") != KIND:
            return None
        command, status, message = (payload.get(k) for k in ("command", "status", "message"))
        errors, fields = payload.get("errors"), payload.get("fields")
        if not (
            isinstance(command, str)
            and isinstance(status, int)
            and isinstance(message, str)
            and isinstance(errors, dict)
            and all(
                isinstance(k, str) and isinstance(v, list) and all(isinstance(m, str) for m in v)
                for k, v in errors.items()
            )
            and isinstance(fields, list)
            and all(isinstance(f, str) for f in fields)
        ):
            return None
        return cls(command, status, message, errors, fields)

    @property
    def toast(self) -> str:
        """The message to show as a toast: the form's own errors for an invalid form (its field
        errors show beside their fields), else the message."""
        if self.status == 422:
            return " ".join(self.errors.get("__all__", []))
        return self.message

    def field_messages(self) -> dict[str, str]:
        """One message per form field, ``""`` for a field without error (clears its sink)."""
        return {name: " ".join(self.errors.get(name, [])) for name in self.fields}
