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

import asyncio
import contextlib
import math
from collections.abc import Awaitable, Callable
from typing import Final, NoReturn

import attrs
from aiohttp import web

from ..auth import Secret
from ..errors import WebhookAuthenticationError, WebhookError, WebhookPayloadError
from ._tasks import LRU, Callbacks, Warnings, logger, positive
from .events import (
    DEFAULT_MAX_BYTES,
    AssignmentEvent,
    EventHandler,
    EventKind,
    parse_body,
    secret_problem,
    wrap_secret,
)
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

#: Default path of the receiver's route.
DEFAULT_PATH: Final = "/webhooks/flinkey"

#: Default seconds to read a request body in (:class:`WebhookReceiver`).
DEFAULT_BODY_TIMEOUT: Final = 10.0
#: Default seconds for a connection to deliver a complete request head
#: (:func:`start_webhook_server`).
DEFAULT_HEADER_TIMEOUT: Final = 10.0
#: How long cancelled handler calls get to finish once cancelled, at shutdown.
_CANCEL_GRACE: Final = 1.0


@attrs.define
class ReceiverStats:
    """Counters of a :class:`WebhookReceiver`."""

    #: Requests received.
    received: int = 0
    #: Events handed on (to the tracker and the handler).
    delivered: int = 0
    #: Repeated deliveries recognised and not handed on again.
    duplicates: int = 0
    #: Requests refused with 401 (wrong or missing secret).
    unauthorized: int = 0
    #: Requests refused with 413 (body too large).
    too_large: int = 0
    #: Requests refused with 400 (malformed body).
    malformed: int = 0
    #: Requests refused with 408 (body not read within ``body_timeout``).
    timed_out: int = 0
    #: Handler calls dropped because ``max_handler_tasks`` + ``max_handler_backlog`` calls
    #: were running or waiting (the event still reached the tracker).
    handler_dropped: int = 0


class _BodyTooLarge(WebhookPayloadError):
    """The body is larger than ``max_bytes`` (413)."""


class _BodyTimeout(WebhookPayloadError):
    """The body was not read within ``body_timeout`` (408)."""


class WebhookReceiver:
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
    :func:`parse_webhook` and hand the event to :meth:`deliver`.

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
    ) -> None:
        secret = wrap_secret(secret)
        if max_bytes < 1:
            raise ValueError("max_bytes must be positive")
        if not shutdown_timeout >= 0:
            raise ValueError("shutdown_timeout must be a number of seconds >= 0")
        self._secret = secret
        self.tracker = tracker
        self.handler = handler
        self.max_bytes = max_bytes
        self.body_timeout = positive(body_timeout, "body_timeout")
        self.shutdown_timeout = shutdown_timeout
        self.stats = ReceiverStats()
        self._recent = LRU(memory)
        self._warnings = Warnings(warning_interval)
        self._callbacks = Callbacks(
            "handler", limit=max_handler_tasks, backlog=max_handler_backlog, warnings=self._warnings
        )

    def __repr__(self) -> str:
        secured = "with secret" if self._secret is not None else "without secret"
        return f"WebhookReceiver({secured}, tracker={self.tracker is not None})"

    def __reduce__(self) -> NoReturn:
        raise TypeError("a WebhookReceiver cannot be pickled: it holds the webhook secret")

    @property
    def _tasks(self) -> set[asyncio.Task[None]]:
        """The running and waiting handler calls."""
        return self._callbacks.tasks

    def deliver(self, event: AssignmentEvent) -> bool:
        """Hand one parsed event to the tracker and the handler; False for a repeated
        delivery (nothing is handed on)."""
        if self.tracker is not None:
            resolution = self.tracker.resolve(event)
            if resolution.duplicate:
                self.stats.duplicates += 1
                return False
            event = resolution.event
        else:
            fingerprint = event.fingerprint
            if fingerprint in self._recent:
                self._recent.move_to_end(fingerprint)
                self.stats.duplicates += 1
                return False
            self._recent.put(fingerprint, None)
        self.stats.delivered += 1
        if self.handler is not None and not self._callbacks.call(self.handler, event):
            self.stats.handler_dropped += 1
        return True

    async def handle(self, request: web.Request, kind: EventKind | None = None) -> web.Response:
        """The aiohttp handler (``kind`` forces the event kind, for per-operation routes)."""
        self.stats.received += 1
        try:
            event = await self._receive(request, kind)
        except WebhookError as exc:
            return await self._refuse(request, exc)
        self.deliver(event)
        return web.Response(status=204)

    async def _receive(self, request: web.Request, kind: EventKind | None) -> AssignmentEvent:
        """Verify, read and parse one request (the headers never become a local here)."""
        if self._secret is not None:
            problem = secret_problem(request.headers, self._secret)
            if problem is not None:
                raise WebhookAuthenticationError(problem)
        try:
            async with asyncio.timeout(self.body_timeout):
                body = await self._read(request)
        except TimeoutError:
            raise _BodyTimeout(
                f"webhook body not received within {self.body_timeout:g} s"
            ) from None
        return parse_body(body, kind, self.max_bytes)

    async def _refuse(self, request: web.Request, exc: WebhookError) -> web.Response:
        remote = request.remote
        if isinstance(exc, WebhookAuthenticationError):
            self.stats.unauthorized += 1
            self._warnings.warn("unauthorized", "webhook from %s refused: %s", remote, exc)
            return web.Response(status=401, text="missing or wrong Secret header")
        if isinstance(exc, _BodyTooLarge):
            self.stats.too_large += 1
            self._warnings.warn("too_large", "webhook from %s refused: %s", remote, exc)
            return web.Response(status=413, text=f"body larger than {self.max_bytes} bytes")
        if isinstance(exc, _BodyTimeout):
            self.stats.timed_out += 1
            self._warnings.warn("timed_out", "webhook from %s refused: %s", remote, exc)
            response = web.Response(status=408, text=str(exc))
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
        self.stats.malformed += 1
        self._warnings.warn("malformed", "webhook from %s refused: %s", remote, exc)
        return web.Response(status=400, text=str(exc))

    async def _read(self, request: web.Request) -> bytes:
        """The body; :class:`_BodyTooLarge` when it is larger than ``max_bytes``."""
        limit = self.max_bytes
        length = request.content_length
        if length is not None and length > limit:
            raise _BodyTooLarge(f"body of {length} bytes, more than the {limit} accepted")
        chunks: list[bytes] = []
        size = 0
        try:
            async for chunk in request.content.iter_any():
                size += len(chunk)
                if size > limit:
                    raise _BodyTooLarge(f"body larger than the {limit} bytes accepted")
                chunks.append(chunk)
        except (web.RequestPayloadError, ConnectionError):
            raise WebhookPayloadError("webhook body could not be read") from None
        return b"".join(chunks)

    def _all_tasks(self) -> set[asyncio.Task[None]]:
        tasks = set(self._callbacks.tasks)
        if self.tracker is not None:
            tasks |= self.tracker._callbacks.tasks
        return tasks

    async def drain(self) -> None:
        """Wait until the handler (and ``on_unsolicited``) calls started so far are done."""
        while True:
            tasks = self._all_tasks()
            if not tasks:
                return
            await asyncio.gather(*tasks, return_exceptions=True)

    async def aclose(self, timeout: float | None = None) -> None:  # noqa: ASYNC109
        """Let running handler (and ``on_unsolicited``) calls finish, for at most ``timeout``
        seconds (called on the app's cleanup); then cancel those still running or waiting,
        and wait for them to end (a call that ignores its cancellation is given up after a
        second, with an error logged).

        Args:
            timeout: seconds to wait; None means the receiver's ``shutdown_timeout``;
                ``math.inf`` waits as long as it takes.
        """
        limit = self.shutdown_timeout if timeout is None else timeout
        if not limit >= 0:
            raise ValueError("timeout must be a number of seconds >= 0")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        while tasks := self._all_tasks():
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            await asyncio.wait(tasks, timeout=None if remaining == math.inf else remaining)
        if not tasks:
            return
        logger.warning(
            "cancelling %d webhook handler calls still running after %g s", len(tasks), limit
        )
        for task in tasks:
            task.cancel()
        _done, stuck = await asyncio.wait(tasks, timeout=_CANCEL_GRACE)
        if stuck:
            logger.error("%d webhook handler calls ignored their cancellation", len(stuck))

    async def _on_cleanup(self, _app: web.Application) -> None:
        await self.aclose()


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
    ``warning_interval`` (seconds between two warnings of one kind).

    Returns the :class:`WebhookReceiver`. When ``target`` is an application, the receiver
    waits for running handler calls (at most ``shutdown_timeout`` seconds) on the
    application's cleanup; with a bare router, call :meth:`WebhookReceiver.aclose` yourself.
    Serve the application with :func:`start_webhook_server` for a timeout on request heads.
    """
    secret = wrap_secret(secret)
    if not path.startswith("/") or (path.endswith("/") and path != "/"):
        raise ValueError(f"path must start with '/' and not end with '/', got {path!r}")
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
    )
    router = target.router if isinstance(target, web.Application) else target

    async def any_kind(request: web.Request) -> web.Response:
        return await receiver.handle(request)

    router.add_post(path, any_kind)
    if per_kind_routes:
        base = path.rstrip("/")
        routes: tuple[tuple[str, EventKind], ...] = (
            ("created", "create"),
            ("updated", "update"),
            ("deleted", "delete"),
        )
        for suffix, kind in routes:
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
    )
    return app
