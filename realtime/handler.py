"""An ASGI handler that opens a stream, or runs a command, in one hop to a thread pool, not fifteen.

Django's ASGI handler runs a request's synchronous parts one at a time from the event loop: the
``request_started`` receivers, each ``MiddlewareMixin`` middleware's ``process_request``,
``process_view`` and ``process_response``, then a synchronous view such as a
:class:`~realtime.StreamView`. Each is a hop to a thread and back, and the thread is a new OS
thread per request (asgiref's ``ThreadSensitiveContext``). A stream's ``GET`` costs about fifteen
hops and a thread start, so when thousands of tabs reconnect at once (a deploy, a restart) the
process opens a few hundred streams a second.

:class:`ASGIHandler` is Django's handler with one change. A ``GET`` whose URL resolves to a stream
view (one whose view function has ``opens_stream = True``, as ``StreamView.as_view()`` gives) runs
the ``request_started`` receivers, the project's middleware and the view in **one** call on the
render pool (:func:`realtime.rendering.pool`), as a WSGI server would run them: the same middleware
in the same order (loaded a second time, in synchronous mode), the same view, its mixins and
access checks, all in one thread, in a copy of the request's context. The response then streams
from the event loop, which listens for the client going away; the stream's end (``close()``, with
``request_finished``) runs on the pool too.

A ``POST`` to a command view (``CommandView.as_view()`` and :func:`~realtime.command` set
``runs_command = True``) is answered the same way, in one call on the command pool
(:func:`command_pool`, apart from the render pool so a command waiting on a row lock never holds
up renders): its 204 then goes out from the event loop. Every other request is Django's,
untouched.

What it is not: a way around any check. The choice is made from the URL before any middleware
runs; a middleware that sets ``request.urlconf`` may make it wrong, which costs speed only (both
paths run the same middleware and the same view). Asynchronous-only middleware is adapted as Django
adapts it under WSGI. Threading: the pool's threads each keep their own database connections,
closed or kept per ``CONN_MAX_AGE`` after each call, as after a request.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import IO, Any
from weakref import WeakKeyDictionary

import django
from asgiref.sync import sync_to_async
from django.conf import settings
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers import asgi as django_asgi
from django.core.handlers.base import BaseHandler
from django.db import close_old_connections
from django.http import HttpRequest
from django.http.response import HttpResponseBase, ResponseHeaders, StreamingHttpResponse
from django.urls import Resolver404, get_resolver, set_script_prefix

from realtime.conf import get_config
from realtime.rendering import pool, pool_size

__all__ = ["ASGIHandler", "get_asgi_application"]

#: Streams that may be opening at once per render thread (asking for a request, dispatching it).
OPENING_PER_THREAD = 2

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[Mapping[str, Any]]]
Send = Callable[[Mapping[str, Any]], Awaitable[None]]


class ASGIHandler(django_asgi.ASGIHandler):
    """Django's ASGI handler, opening stream views in one hop (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self._sync_handler = BaseHandler()
        self._sync_handler.load_middleware(is_async=False)
        # Made once: asgiref's wrappers cost more to make than to call.
        self._respond_on_pool = _on_pool(self._respond)
        self._close_on_pool = _on_pool(_close)
        self._command_on_pool = _on_pool(self._respond, command_pool())
        self._close_on_commands = _on_pool(_close, command_pool())
        #: Per event loop, how many streams may be opening at once (see _handle_stream).
        self._opening: WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            WeakKeyDictionary()
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("GET", "POST"):
            kind = _view_kind(scope)
            if kind == STREAM and scope["method"] == "GET":
                await self._handle_stream(scope, receive, send)
                return
            if kind == COMMAND and scope["method"] == "POST":
                await self._handle_command(scope, receive, send)
                return
        await super().__call__(scope, receive, send)

    async def _handle_command(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer a command in one call on the command pool, then send its (complete) response."""
        body_file = await self._read_body(scope, receive)
        if body_file is None:
            return
        try:
            response = await self._respond_with(self._command_on_pool, scope, body_file)
            try:
                await self.send_response(response, send)
            finally:
                await self._close_on_commands(response)
        finally:
            body_file.close()

    async def _handle_stream(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Open the stream in one call on the pool, then send it until it ends or the client goes
        away (in this one coroutine: a frame fewer for each open stream).

        The sending is Django's ``send_response`` and disconnect listener, with less held per
        open stream: one task listens (and cancels this one when the client leaves), the headers
        are not kept once sent, the content is iterated once.
        """
        body_file = await self._read_body(scope, receive)
        if body_file is None:
            return
        try:
            # A burst of opens (every tab after a restart) waits here, before its request is
            # made, rather than thousands of requests waiting for the pool at once: the pool
            # is kept busy, and far less memory is held while they wait.
            async with self._gate():
                response = await self._respond_with(self._respond_on_pool, scope, body_file)
            try:
                if not (isinstance(response, StreamingHttpResponse) and response.is_async):
                    await self.send_response(response, send)
                    return
                task = asyncio.current_task()
                assert task is not None
                # The server's receive() itself (not Django's listener around it): the only
                # message left to come is the client going away.
                listener = asyncio.ensure_future(receive())
                watch = _ClientWatch(task)
                listener.add_done_callback(watch)
                try:
                    await send(
                        {
                            "type": "http.response.start",
                            "status": response.status_code,
                            "headers": _headers(response),
                        }
                    )
                    # Sent: a stream keeps its response for hours, and needs them no more.
                    response.headers = ResponseHeaders({})
                    content: AsyncIterator[bytes] = response.streaming_content  # type: ignore[assignment]
                    await _send_content(content, send)
                except asyncio.CancelledError:
                    if not watch.left or task.uncancel():
                        raise
                finally:
                    watch.over = True
                    listener.cancel()
                if watch.left:
                    message = listener.result()  # raises what receive() raised
                    # Anything but a disconnect breaks the protocol: Django asserts, so do we.
                    assert message["type"] == "http.disconnect", (
                        f"Invalid ASGI message after request body: {message['type']}"
                    )
            finally:
                await self._close_on_pool(response)
        finally:
            body_file.close()

    async def _respond_with(
        self,
        respond: Callable[[HttpRequest, Scope], Awaitable[HttpResponseBase]],
        scope: Scope,
        body_file: IO[bytes],
    ) -> HttpResponseBase:
        """The request's response from ``respond`` (one call on a pool), or Django's answer to a
        request it cannot read."""
        request, error = self.create_request(scope, body_file)
        if request is None:
            assert error is not None
            return error
        response = await respond(request, scope)
        response._handler_class = type(self)  # type: ignore[attr-defined]
        return response

    async def _read_body(self, scope: Scope, receive: Receive) -> IO[bytes] | None:
        """The request's body, or None when the client left before sending it all; the script
        prefix is set for the request, as Django's handler does once the body is read.

        The body is an empty buffer when there is none (a stream's ``GET``), else Django's spool
        (which each open stream would otherwise keep, empty, for its life)."""
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        if not message.get("body") and not message.get("more_body"):
            body_file: IO[bytes] = io.BytesIO()
        else:
            pending = [message]

            async def replayed() -> Mapping[str, Any]:
                return pending.pop() if pending else await receive()

            try:
                body_file = await self.read_body(replayed)
            except RequestAborted:
                return None
        set_script_prefix(django_asgi.get_script_prefix(scope))
        return body_file

    def _gate(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        gate = self._opening.get(loop)
        if gate is None:
            gate = self._opening[loop] = asyncio.Semaphore(OPENING_PER_THREAD * pool_size())
        return gate

    def _respond(self, request: HttpRequest, scope: Scope) -> HttpResponseBase:
        """Everything synchronous of opening the stream, on one pool thread."""
        signals.request_started.send(sender=type(self), scope=scope)
        try:
            response: HttpResponseBase = self._sync_handler.get_response(request)
        finally:
            # The request goes on without this thread, which serves others next.
            close_old_connections()
        return response


async def _send_content(content: AsyncIterator[bytes], send: Send) -> None:
    """Send a streaming response's body, as Django's ``send_response`` does, then end it.

    Django cuts every part into chunks with a generator of its own; a stream's parts are events,
    far smaller than a chunk, so that generator (one per event, for each open stream) is made
    only for a larger part."""
    chunk_size = ASGIHandler.chunk_size
    try:
        async for part in content:
            if len(part) <= chunk_size:
                await send({"type": "http.response.body", "body": part, "more_body": True})
                continue
            for chunk, _ in ASGIHandler.chunk_bytes(part):
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
    finally:
        await content.aclose()  # type: ignore[attr-defined]
    await send({"type": "http.response.body"})


class _ClientWatch:
    """The disconnect listener's callback: cancels the stream's task when the client left (not
    once the stream is over: the callback may run after it)."""

    __slots__ = ("left", "over", "task")

    def __init__(self, task: asyncio.Task[Any]) -> None:
        self.task, self.left, self.over = task, False, False

    def __call__(self, listener: asyncio.Future[Any]) -> None:
        if not listener.cancelled() and not self.over:
            self.left = True
            self.task.cancel()


def _headers(response: HttpResponseBase) -> list[tuple[bytes, bytes]]:
    """The response's headers and cookies for ``http.response.start`` (as Django encodes them)."""
    headers = [
        (
            bytes(name.encode("ascii") if isinstance(name, str) else name),
            bytes(value.encode("latin1") if isinstance(value, str) else value),
        )
        for name, value in response.items()
    ]
    headers += [
        (b"Set-Cookie", cookie.OutputString().encode("ascii"))
        for cookie in response.cookies.values()
    ]
    return headers


def _on_pool(
    fn: Callable[..., Any], executor: ThreadPoolExecutor | None = None
) -> Callable[..., Awaitable[Any]]:
    """``fn`` run on ``executor`` (the render pool by default), in (and updating) the caller's
    context, as asgiref's ``sync_to_async`` runs a function."""
    return sync_to_async(fn, thread_sensitive=False, executor=executor or pool())


def _close(response: HttpResponseBase) -> None:
    response.close()


STREAM, COMMAND = "stream", "command"


def _view_kind(scope: Mapping[str, Any]) -> str | None:
    """:data:`STREAM` or :data:`COMMAND` when ``scope``'s path resolves to a stream or a command
    view (in the root URLconf), else None."""
    path: str = scope["path"]
    script_name = django_asgi.get_script_prefix(scope).rstrip("/")
    if script_name and (path.startswith(script_name + "/") or path == script_name):
        path = path[len(script_name) :]  # path_info, as ASGIRequest has it
    return _path_kind(settings.ROOT_URLCONF, path)


@lru_cache(maxsize=1024)
def _path_kind(urlconf: str, path_info: str) -> str | None:
    try:
        match = get_resolver(urlconf).resolve(path_info)
    except Resolver404:
        return None
    if getattr(match.func, "opens_stream", False):
        return STREAM
    if getattr(match.func, "runs_command", False):
        return COMMAND
    return None


_command_executor: ThreadPoolExecutor | None = None


def command_pool() -> ThreadPoolExecutor:
    """The threads commands run on (created on first use): ``REALTIME["COMMAND_THREADS"]``, or as
    many as the render pool. Apart from the render pool, so commands waiting on row locks or
    slow services never hold up renders and stream opens."""
    global _command_executor
    if _command_executor is None:
        _command_executor = ThreadPoolExecutor(
            max_workers=get_config().COMMAND_THREADS or pool_size(),
            thread_name_prefix="realtime-command",
        )
    return _command_executor


def get_asgi_application() -> ASGIHandler:
    """Django's ``get_asgi_application()``, with :class:`ASGIHandler` as the handler.

    In a project's ``asgi.py``, instead of Django's::

        from realtime.handler import get_asgi_application

        application = get_asgi_application()
    """
    django.setup(set_prefix=False)
    return ASGIHandler()
