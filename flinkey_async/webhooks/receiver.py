"""The aiohttp receiver of flinkey's webhooks (the SDK side's only ``aiohttp.web`` import,
with :mod:`flinkey_async.webhooks.server`).

For each request: 401 when the ``Secret`` header is missing or wrong, 413 when the body is
too large, 408 when it does not arrive in time, 400 when it is not a webhook payload, else 204
at once; the event then goes to the tracker and the user's handler. Typical use::

    tracker = OperationTracker()
    app = webhook_app(secret=os.environ["FLINKEY_WEBHOOK_SECRET"], tracker=tracker,
                      handler=on_event)        # optional: async def on_event(event): ...
    runner = await start_webhook_server(app, "127.0.0.1", 8080)  # behind a TLS proxy
    # register https://your.host/webhooks/flinkey in the Portal
    async with FlinkeyClient(..., tracker=tracker) as client:
        op = await client.assignments.create(car_id=7, user_id=9, start=start)
        outcome = await op.wait()              # confirmed by the webhook
    await runner.cleanup()

Against misbehaving clients the receiver bounds what a request can cost: the secret is checked
before the body is read, bodies must arrive within ``body_timeout`` (else 408) and be at most
``max_bytes`` (else 413), handler calls run at most ``max_handler_tasks`` at once, and a
rejection logs at most one warning per reason per ``warning_interval`` (all are counted in
:class:`ReceiverStats`).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Final

from aiohttp import web

from ..auth import Secret
from ..errors import WebhookError, WebhookPayloadError
from ._receiving import (
    DEFAULT_BODY_TIMEOUT,
    DEFAULT_PATH,
    DEFAULT_PUBLISH_TIMEOUT,
    KIND_ROUTES,
    ReceiverCore,
    ReceiverStats,
    Refusal,
    WebhookPublisher,
    check_path,
    collect_body,
)
from .events import DEFAULT_MAX_BYTES, AssignmentEvent, EventHandler, EventKind, wrap_secret
from .tracker import OperationTracker

__all__ = [
    "DEFAULT_BODY_TIMEOUT",
    "DEFAULT_PATH",
    "WEBHOOK_RECEIVER_KEY",
    "ReceiverStats",
    "WebhookReceiver",
    "add_webhook_routes",
    "webhook_app",
]


class WebhookReceiver(ReceiverCore):
    """Receives flinkey's webhook requests; usually made by :func:`webhook_app` or
    :func:`add_webhook_routes`.

    For each request: 401 when the ``Secret`` header is missing or wrong, 408 when the body
    is not read within ``body_timeout`` (the connection is then closed), 413 when the body is
    larger than ``max_bytes``, 400 when it is not a webhook payload, else 204 at once; the
    event then goes to the tracker (which resolves the matching operation) and, once per
    distinct event, to ``handler`` as a background task (its exceptions are logged; they never
    affect the answer). Rejected requests deliver nothing, are counted in :attr:`stats`, and
    log at most one warning per reason every ``warning_interval`` seconds; the receiver keeps
    serving.

    Without a tracker, repeated deliveries are recognised by their fingerprint alone (the last
    ``memory`` events are remembered).

    :meth:`deliver` is the framework-free entry point: another web framework can call
    :func:`parse_webhook` and hand the event to :meth:`deliver` (for ASGI frameworks,
    :class:`~flinkey_async.webhooks.ASGIWebhookReceiver` does all of this).

    The secret is held as a :class:`~flinkey_async.auth.Secret`; a receiver never shows it in
    its ``repr`` and refuses to be pickled.

    Args:
        secret: the ``Secret`` header's expected value (a string or a ``Secret``, wrapped on
            entry), or None to accept unauthenticated requests.
        tracker: the :class:`OperationTracker` that resolves operations from the events.
        handler: called once per distinct event (sync, or async in a background task).
        max_bytes: largest body accepted.
        memory: events remembered to recognise repeated deliveries without a tracker.
        body_timeout: seconds to read the body in, from when the handler starts reading it;
            a body still incomplete then is answered 408 and its connection closed.
        max_handler_tasks: async handler calls running at once; further calls wait for a
            slot.
        max_handler_backlog: handler calls waiting for a slot at most; beyond, a call is
            dropped (counted in ``stats.handler_dropped``, with a rate-limited warning; the
            event still reached the tracker).
        shutdown_timeout: seconds :meth:`aclose` (and so the app's cleanup) waits for running
            handler calls before cancelling them.
        warning_interval: seconds between two warnings of the same kind (rejections, dropped
            handler calls); the next warning says how many were not logged.
        publisher: records every verified event before it is answered, for trackers in other
            processes (a :class:`~flinkey_async.shared.confirmations.RedisWebhookBus`): the
            answer is 204 once it is recorded, 503 (with ``Retry-After: 1``, so that flinkey
            delivers it again) when it cannot be within ``publish_timeout`` seconds. A
            repeated delivery it recognises (from any process) is not handed to ``handler``
            again.
        publish_timeout: seconds the publisher gets per event.
    """

    def __init__(
        self,
        *,
        secret: str | Secret | None,
        tracker: OperationTracker | None = None,
        handler: EventHandler | None = None,
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

    async def handle(self, request: web.Request, kind: EventKind | None = None) -> web.Response:
        """The aiohttp handler (``kind`` forces the event kind, for per-operation routes)."""
        self.stats.received += 1
        try:
            event = await self._receive(request, kind)
        except WebhookError as exc:
            return await self._refuse(request, exc)
        refusal = await self.take(event, request.remote)
        if refusal is not None:
            return _refused(refusal)
        return web.Response(status=204)

    async def _receive(self, request: web.Request, kind: EventKind | None) -> AssignmentEvent:
        """Verify, read and parse one request (the headers never become a local here)."""
        problem = self._secret_problem(request.headers)

        async def read() -> bytes:
            return await self._read(request)

        return await self._accept(problem, read, kind)

    async def _refuse(self, request: web.Request, exc: WebhookError) -> web.Response:
        refusal = self._refusal(exc, request.remote)
        response = _refused(refusal)
        if refusal.close:
            response.force_close()
            # Answer now, then drop the connection (aiohttp would otherwise keep reading the
            # rest of the body for up to its lingering time).
            with contextlib.suppress(ConnectionError):
                await response.prepare(request)
                await response.write_eof()
            transport = request.transport
            if transport is not None:
                transport.close()
        return response

    async def _read(self, request: web.Request) -> bytes:
        """The body, at most ``max_bytes`` of it (else ``BodyTooLarge``)."""
        chunks: AsyncIterator[bytes] = request.content.iter_any()
        try:
            return await collect_body(chunks, request.content_length, self.max_bytes)
        except (web.RequestPayloadError, ConnectionError):
            raise WebhookPayloadError("webhook body could not be read") from None

    async def _on_cleanup(self, _app: web.Application) -> None:
        await self.aclose()


def _refused(refusal: Refusal) -> web.Response:
    headers = {"Retry-After": str(refusal.retry_after)} if refusal.retry_after is not None else None
    return web.Response(status=refusal.status, text=refusal.text, headers=headers)


#: Where :func:`webhook_app` keeps its :class:`WebhookReceiver` (``app[WEBHOOK_RECEIVER_KEY]``).
WEBHOOK_RECEIVER_KEY: Final = web.AppKey("flinkey_webhook_receiver", WebhookReceiver)


def add_webhook_routes(
    target: web.Application | web.UrlDispatcher,
    *,
    secret: str | Secret | None,
    tracker: OperationTracker | None = None,
    handler: EventHandler | None = None,
    path: str = DEFAULT_PATH,
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
) -> WebhookReceiver:
    """Add the webhook routes to your own aiohttp application (or router).

    ``POST {path}`` takes every event. With ``per_kind_routes`` (default), ``POST
    {path}/created``, ``{path}/updated`` and ``{path}/deleted`` take the events of one
    operation each, for a Portal configured with a URL per operation: the route then tells the
    event's kind. ``secret`` is required: pass ``None`` only to accept unauthenticated requests
    (flinkey sends no ``Secret`` header when no secret is set in the Portal).

    The other arguments are the :class:`WebhookReceiver`'s: ``max_bytes``, ``memory``,
    ``body_timeout`` (seconds to read a body in, else 408), ``max_handler_tasks`` and
    ``max_handler_backlog`` (handler calls running and waiting at most), ``shutdown_timeout``
    (seconds the cleanup waits for handler calls before cancelling them) and
    ``warning_interval`` (seconds between two warnings of one kind), ``publisher`` and
    ``publish_timeout`` (record every verified event, e.g. in Redis, before answering 204;
    503 when it cannot be recorded).

    Returns the :class:`WebhookReceiver`. When ``target`` is an application, the receiver
    waits for running handler calls (at most ``shutdown_timeout`` seconds) on the
    application's cleanup; with a bare router, call :meth:`WebhookReceiver.aclose` yourself.
    Serve the application with :func:`start_webhook_server` for a timeout on request heads.
    """
    secret = wrap_secret(secret)
    check_path(path)
    receiver = WebhookReceiver(
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
    router = target.router if isinstance(target, web.Application) else target

    async def any_kind(request: web.Request) -> web.Response:
        return await receiver.handle(request)

    router.add_post(path, any_kind)
    if per_kind_routes:
        base = path.rstrip("/")
        for suffix, kind in KIND_ROUTES.items():
            router.add_post(f"{base}/{suffix}", _route_for(receiver, kind))
    if isinstance(target, web.Application):
        target.on_cleanup.append(receiver._on_cleanup)
    return receiver


def _route_for(
    receiver: WebhookReceiver, kind: EventKind
) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def one_kind(request: web.Request) -> web.Response:
        return await receiver.handle(request, kind)

    return one_kind


def webhook_app(
    *,
    secret: str | Secret | None,
    tracker: OperationTracker | None = None,
    handler: EventHandler | None = None,
    path: str = DEFAULT_PATH,
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
) -> web.Application:
    """A ready aiohttp application that receives flinkey's webhooks (see
    :func:`add_webhook_routes` for the routes and arguments). Its receiver is
    ``app[WEBHOOK_RECEIVER_KEY]``; serve it with :func:`start_webhook_server`."""
    secret = wrap_secret(secret)
    app = web.Application(client_max_size=max_bytes)
    app[WEBHOOK_RECEIVER_KEY] = add_webhook_routes(
        app,
        secret=secret,
        tracker=tracker,
        handler=handler,
        path=path,
        per_kind_routes=per_kind_routes,
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
    return app
