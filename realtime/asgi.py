"""ASGI middleware that refuses request bodies over a limit before Django reads them.

Django's ``ASGIHandler`` reads a request's whole body into a temporary file (in memory up to
``FILE_UPLOAD_MAX_MEMORY_SIZE``, then on disk) before any middleware or view runs, so a view's
403 or Django's own ``DATA_UPLOAD_MAX_MEMORY_SIZE`` check comes after an anonymous client has made
the server store 100 MB. :class:`RequestBodyLimit` wraps the ASGI application and answers
``413 Request Entity Too Large`` itself:

- at once, from ``Content-Length``, without reading a byte of the body (a client that sent
  ``Expect: 100-continue`` never sends it: uvicorn only asks for it when the app first reads);
- while reading, for bodies without a length (chunked): the chunk that crosses the limit is not
  passed on; the application is told the client went away (``http.disconnect``, on which Django
  stops reading and answers nothing) and the 413 goes out instead.

An HTTP/1 request with neither ``Content-Length`` nor ``Transfer-Encoding`` has no body (a
stream's ``GET``): it is passed through untouched.

The answer has the JSON shape of a command's other 4xx answers, ``{"message": ..., "errors": {}}``.

The limit is ``max_body_size`` when given, else Django's ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (2.5 MB by
default, the size Django already refuses for non-file bodies, read on each request so
``override_settings`` works); ``None`` there means no limit. A project that accepts file uploads
larger than that passes a larger ``max_body_size`` (the limit is per request, uploads included).

It is pure ASGI: it keeps no state between requests, passes ``websocket`` and ``lifespan`` scopes
through untouched, and never reads a body it does not pass on. It is not a replacement for the
reverse proxy's limit (``client_max_body_size`` in nginx), which also bounds slow uploads.
"""

from __future__ import annotations

import json
from contextlib import suppress

from django.conf import settings

from realtime.asgi_types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["RequestBodyLimit"]


class RequestBodyLimit:
    """``RequestBodyLimit(app, max_body_size=None)``: ``app`` with request bodies bounded.

    Use it around Django's application in ``asgi.py``::

        application = RequestBodyLimit(get_asgi_application())

    ``max_body_size``: bytes; ``None`` (the default) reads ``DATA_UPLOAD_MAX_MEMORY_SIZE``.
    """

    def __init__(self, app: ASGIApp, max_body_size: int | None = None) -> None:
        if max_body_size is not None and (
            isinstance(max_body_size, bool)
            or not isinstance(max_body_size, int)
            or max_body_size < 0
        ):
            raise ValueError("max_body_size must be None or a non-negative number of bytes.")
        self.app = app
        self.max_body_size = max_body_size

    def limit(self) -> int | None:
        """The largest body accepted now, in bytes (``None``: any)."""
        if self.max_body_size is not None:
            return self.max_body_size
        value = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return None if value is None else int(value)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self.limit() if scope["type"] == "http" else None
        if limit is None:
            await self.app(scope, receive, send)
            return
        length, chunked = _body_framing(scope)
        if length is not None and length > limit:
            await _refuse(send, limit)
            return
        if length is None and not chunked and scope.get("http_version") in ("1.0", "1.1"):
            # An HTTP/1 request with neither header has no body (a stream's GET): nothing to
            # watch, and no wrappers held for as long as the response lasts.
            await self.app(scope, receive, send)
            return

        received = 0
        over = False
        started = False

        async def bounded_receive() -> Message:
            nonlocal received, over
            if over:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    over = True
                    return {"type": "http.disconnect"}
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, bounded_receive, watched_send)
        if over and not started:
            await _refuse(send, limit)


def _body_framing(scope: Scope) -> tuple[int | None, bool]:
    """The request's ``Content-Length`` (``None`` without one) and whether it is chunked."""
    length, chunked = None, False
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            # A malformed length (the server refuses it first) is bounded while reading.
            with suppress(ValueError):
                length = int(value)
        elif name == b"transfer-encoding":
            chunked = True
    return length, chunked


async def _refuse(send: Send, limit: int) -> None:
    body = json.dumps(
        {"message": f"The request body is too large (the limit is {limit} bytes).", "errors": {}}
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
