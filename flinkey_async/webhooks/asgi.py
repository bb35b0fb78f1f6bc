"""The ASGI receiver of flinkey's webhooks: a plain ASGI application, for FastAPI, Starlette,
Litestar or any ASGI server (no framework is imported).

It makes the same checks and gives the same answers as the aiohttp receiver (both share
:mod:`._receiving`): 401 when the ``Secret`` header is missing or wrong (compared in constant
time, before the body is read), 413 when the body is larger than ``max_bytes`` (announced or
counted while reading), 408 when it does not arrive within ``body_timeout`` (the connection is
then closed), 400 when it is not a webhook payload, else 204 at once; the event then goes to
the tracker and, once per distinct event, to the handler in a bounded number of background
tasks. In FastAPI (or Starlette)::

    from fastapi import FastAPI
    from starlette.routing import Route

    tracker = OperationTracker()
    receiver = ASGIWebhookReceiver(secret=os.environ["FLINKEY_WEBHOOK_SECRET"], tracker=tracker)
    app = FastAPI(routes=[Route("/webhooks/flinkey", receiver, methods=["POST"])])

Frameworks do not pass their lifespan on to a routed application: call
``await receiver.aclose()`` when yours shuts down (served on its own, as the whole ASGI
application, the receiver does that on the ``lifespan`` shutdown itself).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, MutableMapping
from typing import Any, TypeAlias

from multidict import CIMultiDict

from .._wire import SECRET_HEADER
from ..auth import Secret
from ..errors import WebhookError, WebhookPayloadError
from ._receiving import (
    DEFAULT_BODY_TIMEOUT,
    DEFAULT_PUBLISH_TIMEOUT,
    KIND_ROUTES,
    ReceiverCore,
    WebhookPublisher,
    check_path,
    collect_body,
)
from .events import DEFAULT_MAX_BYTES, EventHandler, EventKind
from .tracker import OperationTracker

__all__ = ["ASGIWebhookReceiver"]

#: The ASGI types, as the specification describes them.
Scope: TypeAlias = MutableMapping[str, Any]
Message: TypeAlias = MutableMapping[str, Any]
Receive: TypeAlias = Callable[[], Awaitable[Message]]
Send: TypeAlias = Callable[[Message], Awaitable[None]]

_SECRET_NAME = SECRET_HEADER.lower().encode("latin-1")


class ASGIWebhookReceiver(ReceiverCore):
    """An ASGI application that receives flinkey's webhooks (``POST`` requests).

    Route it at the URL registered in the flinkey Portal, for example with Starlette's or
    FastAPI's ``Route("/webhooks/flinkey", receiver, methods=["POST"])`` (a ``Mount`` answers
    only the paths below its own, and a redirect would not be followed by flinkey), or serve
    it on its own (``uvicorn`` with the receiver as the application; give ``path`` then).

    The answers are those of :class:`~flinkey_async.webhooks.WebhookReceiver`, which takes
    the same arguments; see its documentation. Besides:

    * a route whose last path segment is ``created``, ``updated`` or ``deleted`` takes the
      events of that operation only (for a Portal configured with a URL per operation), unless
      ``per_kind_routes`` is false;
    * other methods than ``POST`` get 405, WebSocket connections are refused;
    * as the whole application, the receiver answers the ``lifespan`` protocol, and on
      shutdown waits for running handler calls (at most ``shutdown_timeout`` seconds, see
      :meth:`aclose`); routed inside a framework, call :meth:`aclose` from your own shutdown.

    Args:
        secret: the ``Secret`` header's expected value (a string or a ``Secret``, wrapped on
            entry), or None to accept unauthenticated requests.
        tracker: the :class:`~flinkey_async.webhooks.OperationTracker` that resolves
            operations from the events.
        handler: called once per distinct event (sync, or async in a background task).
        path: answer only this path and, with ``per_kind_routes``, its ``/created``,
            ``/updated`` and ``/deleted`` (404 elsewhere); None (default): every path the
            framework routes here. Compared after the ``root_path`` of a mount.
        per_kind_routes: tell the kind from a last path segment ``created``, ``updated`` or
            ``deleted``.
        max_bytes: largest body accepted.
        memory: events remembered to recognise repeated deliveries without a tracker.
        body_timeout: seconds to read the body in; a body still incomplete then is answered
            408 and its connection closed.
        max_handler_tasks: async handler calls running at once.
        max_handler_backlog: handler calls waiting for a slot at most; beyond, a call is
            dropped (counted in ``stats.handler_dropped``).
        shutdown_timeout: seconds :meth:`aclose` waits for running handler calls before
            cancelling them.
        warning_interval: seconds between two warnings of the same kind.
        publisher: records every verified event before it is answered (204 once recorded,
            503 with ``Retry-After: 1`` when it cannot be within ``publish_timeout``), for
            trackers in other processes; see
            :class:`~flinkey_async.shared.confirmations.RedisWebhookBus`.
        publish_timeout: seconds the publisher gets per event.
    """

    def __init__(
        self,
        *,
        secret: str | Secret | None,
        tracker: OperationTracker | None = None,
        handler: EventHandler | None = None,
        path: str | None = None,
        per_kind_routes: bool = True,
        max_bytes: int = DEFAULT_MAX_BYTES,
        memory: int = 10_000,
        body_timeout: float = DEFAULT_BODY_TIMEOUT,
        max_handler_tasks: int = 100,
        max_handler_backlog: int = 1000,
        shutdown_timeout: float = 10.0,
        warning_interval: float = 60.0,
        publisher: WebhookPublisher | None = None,
        publish_timeout: float = DEFAULT_PUBLISH_TIMEOUT,
    ) -> None:
        super().__init__(
            secret=secret,
            tracker=tracker,
            handler=handler,
            max_bytes=max_bytes,
            memory=memory,
            body_timeout=body_timeout,
            max_handler_tasks=max_handler_tasks,
            max_handler_backlog=max_handler_backlog,
            shutdown_timeout=shutdown_timeout,
            warning_interval=warning_interval,
            publisher=publisher,
            publish_timeout=publish_timeout,
        )
        self.path = None if path is None else check_path(path)
        self.per_kind_routes = per_kind_routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI entry point."""
        kind = scope["type"]
        if kind == "http":
            found, route_kind = self._route(scope)
            if not found:
                await _respond(send, 404, "not found")
            elif scope["method"] != "POST":
                await _respond(send, 405, "method not allowed", allow=True)
            else:
                headers = scope["headers"]
                problem = self._secret_problem(_secret_headers(headers))
                length = _content_length(headers)
                client = scope.get("client")
                remote = f"{client[0]}" if client else None
                # What is needed is taken: while the request is served, no local of this
                # frame holds the headers (the Secret header among them) or the scope.
                del scope, headers, client
                await self._serve(route_kind, problem, length, remote, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "websocket":
            await send({"type": "websocket.close", "code": 1008})

    async def _serve(
        self,
        kind: EventKind | None,
        problem: str | None,
        length: int | None,
        remote: str | None,
        receive: Receive,
        send: Send,
    ) -> None:
        """Answer one POST (the request's headers and scope are not locals of this frame, nor
        of any frame an error passes through)."""
        self.stats.received += 1

        async def read() -> bytes:
            async with contextlib.aclosing(_chunks(receive)) as chunks:
                return await collect_body(chunks, length, self.max_bytes)

        try:
            event = await self._accept(problem, read, kind)
        except WebhookError as exc:
            refusal = self._refusal(exc, remote)
            await _respond(send, refusal.status, refusal.text, close=refusal.close)
            return
        refused = await self.take(event, remote)
        if refused is not None:
            await _respond(send, refused.status, refused.text, retry_after=refused.retry_after)
            return
        await _respond(send, 204)

    def _route(self, scope: Scope) -> tuple[bool, EventKind | None]:
        """Whether the request's path is served here, and the kind it tells (None: any)."""
        path: str = scope.get("path", "")
        root = scope.get("root_path", "")
        if root and path.startswith(root):  # a mount: compare what is below it
            path = path[len(root) :]
        path = path.rstrip("/") or "/"
        base, _, last = path.rpartition("/")
        kind = KIND_ROUTES.get(last) if self.per_kind_routes else None
        if self.path is None:
            return True, kind
        if path == self.path:
            return True, None
        if kind is not None and (base or "/") == self.path:
            return True, kind
        return False, None

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return


def _secret_headers(headers: Iterable[tuple[bytes, bytes]]) -> CIMultiDict[str]:
    """The request's ``Secret`` headers (decoded as aiohttp does), every one of them."""
    return CIMultiDict(
        (SECRET_HEADER, value.decode("utf-8", "surrogateescape"))
        for name, value in headers
        if name.lower() == _SECRET_NAME
    )


def _content_length(headers: Iterable[tuple[bytes, bytes]]) -> int | None:
    for name, value in headers:
        if name.lower() == b"content-length":
            with contextlib.suppress(ValueError):
                return int(value)
            return None
    return None


async def _chunks(receive: Receive) -> AsyncGenerator[bytes, None]:
    """The request body's chunks, as the server hands them over."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise WebhookPayloadError("webhook body could not be read: the client disconnected")
        body = message.get("body", b"")
        if body:
            yield body
        if not message.get("more_body", False):
            return


async def _respond(
    send: Send,
    status: int,
    text: str | None = None,
    *,
    close: bool = False,
    allow: bool = False,
    retry_after: int | None = None,
) -> None:
    """Send a complete answer (a client that went away meanwhile is not an error)."""
    headers: list[tuple[bytes, bytes]] = []
    body = b""
    if text is not None:
        body = text.encode()
        headers.append((b"content-type", b"text/plain; charset=utf-8"))
        headers.append((b"content-length", str(len(body)).encode()))
    if allow:
        headers.append((b"allow", b"POST"))
    if retry_after is not None:
        headers.append((b"retry-after", str(retry_after).encode()))
    if close:
        headers.append((b"connection", b"close"))
    with contextlib.suppress(OSError):
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
