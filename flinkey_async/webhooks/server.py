"""Serving the webhook app with a timeout on request heads (aiohttp's server has none).

:func:`start_webhook_server` runs an app (usually :func:`~flinkey_async.webhooks.webhook_app`)
on a :class:`HeaderTimeoutSite`, which closes connections that have not delivered a complete
request head within ``header_timeout`` seconds, so slow senders cannot hold connections.
"""

from __future__ import annotations

import asyncio
import ssl
import weakref
from typing import TYPE_CHECKING, Any, Final

from aiohttp import web
from yarl import URL

from ._tasks import Warnings, positive

if TYPE_CHECKING:
    from ._receiving import WebhookPublisher

__all__ = ["DEFAULT_HEADER_TIMEOUT", "HeaderTimeoutSite", "start_webhook_server"]

#: Default seconds for a connection to deliver a complete request head
#: (:func:`start_webhook_server`).
DEFAULT_HEADER_TIMEOUT: Final = 10.0

# -- serving, with a timeout on request heads ----------------------------------------------------

#: aiohttp Servers whose request handler tells :class:`_HeadDeadline` when a head is complete.
_MARKED_SERVERS: weakref.WeakSet[web.Server] = weakref.WeakSet()


def _mark_heads(server: web.Server) -> None:
    """Wrap the server's request handler so that each request, once aiohttp has parsed its
    head and starts handling it, disarms its connection's :class:`_HeadDeadline`."""
    if server in _MARKED_SERVERS:
        return
    handle = server.request_handler

    async def marking(request: web.BaseRequest) -> web.StreamResponse:
        transport = request.transport
        deadline = transport.get_protocol() if transport is not None else None
        if not isinstance(deadline, _HeadDeadline):
            return await handle(request)
        deadline.head_received()
        try:
            return await handle(request)
        finally:
            deadline.request_done()

    server.request_handler = marking
    _MARKED_SERVERS.add(server)


class _HeadDeadline(asyncio.Protocol):
    """Wraps aiohttp's protocol of one connection: aborts the connection when no complete
    request head arrived ``header_timeout`` seconds after it opened, or after the end of the
    previous request on a kept-alive connection."""

    __slots__ = ("_in_request", "_inner", "_site", "_timer", "_transport")

    def __init__(self, inner: asyncio.Protocol, site: HeaderTimeoutSite) -> None:
        self._inner = inner
        self._site = site
        self._timer: asyncio.TimerHandle | None = None
        self._transport: asyncio.BaseTransport | None = None
        self._in_request = False

    def _arm(self) -> None:
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self._site.header_timeout, self._expired)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expired(self) -> None:
        self._timer = None
        transport = self._transport
        if self._in_request or transport is None or transport.is_closing():
            return
        self._site._head_timed_out(transport)
        if isinstance(transport, asyncio.WriteTransport):
            transport.abort()
        else:  # pragma: no cover - stream servers give write transports
            transport.close()

    def head_received(self) -> None:
        self._in_request = True
        self._disarm()

    def request_done(self) -> None:
        # Armed whether or not bytes of the next request already came (a pipelined partial
        # head arrives before this request's handler even started).
        self._in_request = False
        if self._transport is not None and self._timer is None:
            self._arm()

    # -- asyncio.Protocol, forwarded ---------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport
        self._arm()
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self._transport = None
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()


class HeaderTimeoutSite(web.BaseSite):
    """An aiohttp TCP site that closes connections which do not deliver a complete request
    head in time (aiohttp's server has no such timeout: a client sending its headers byte by
    byte would hold a connection for as long as it likes).

    How: the site listens with ``loop.create_server`` itself, and wraps the protocol aiohttp
    makes for each connection in a small forwarding protocol with a timer. The timer starts
    when the connection opens, and again when a request's handler returns (for the next
    request on a kept-alive connection); it is cancelled when aiohttp, having parsed a head,
    starts handling the request (the site wraps the runner's ``Server.request_handler`` for
    that: the one point where aiohttp's public API says "a head was parsed"). When it fires,
    the connection is aborted. This leaves aiohttp's parsing, keep-alive and shutdown
    untouched and relies on no private attribute of aiohttp's ``RequestHandler``. Counting
    from a request's end rather than from the next request's first byte also catches a
    partial head pipelined behind a complete request, but it means an idle kept-alive
    connection is closed after ``header_timeout`` too (as Go's server does when only its
    ``ReadHeaderTimeout`` is set); a client or proxy then opens a new connection. Why not
    aiohttp's ``keepalive_timeout``: only aiohttp 3.14 and later start it when a connection
    opens (the project accepts aiohttp 3.9), and it fires only while no request is being
    handled, so it bounds no head that it did not also bound as idle time. Bodies are bounded
    by the receiver's ``body_timeout``.

    Args:
        runner: a set-up ``web.AppRunner`` (or any runner).
        host: the address to listen on.
        port: the port (0: any free port; see :attr:`port`).
        header_timeout: seconds a connection has to deliver a complete request head, from
            when it opens and from the end of each request.
        ssl_context: for HTTPS (the TLS handshake then gets ``header_timeout`` too).
        backlog: the listen backlog.
        warning_interval: seconds between two warnings about closed connections.

    Attributes:
        timed_out: connections closed for an incomplete head so far.
    """

    __slots__ = ("_bound_port", "_host", "_port", "_warnings", "header_timeout", "timed_out")

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str | None,
        port: int,
        *,
        header_timeout: float = DEFAULT_HEADER_TIMEOUT,
        ssl_context: ssl.SSLContext | None = None,
        backlog: int = 128,
        warning_interval: float = 60.0,
    ) -> None:
        super().__init__(runner, ssl_context=ssl_context, backlog=backlog)
        self._host = host
        self._port = port
        self._bound_port: int | None = None
        self.header_timeout = positive(header_timeout, "header_timeout")
        self.timed_out = 0
        self._warnings = Warnings(warning_interval)

    @property
    def name(self) -> str:
        scheme = "https" if self._ssl_context else "http"
        return str(URL.build(scheme=scheme, host=self._host or "0.0.0.0", port=self.port))

    @property
    def port(self) -> int:
        """The port listened on (the one bound, once started)."""
        return self._bound_port if self._bound_port is not None else self._port

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None
        _mark_heads(server)
        loop = asyncio.get_running_loop()

        def connection() -> asyncio.Protocol:
            return _HeadDeadline(server(), self)

        listening = await loop.create_server(
            connection,
            self._host,
            self._port,
            ssl=self._ssl_context,
            backlog=self._backlog,
            ssl_handshake_timeout=self.header_timeout if self._ssl_context else None,
        )
        self._server = listening
        sockets = listening.sockets
        self._bound_port = sockets[0].getsockname()[1] if sockets else self._port

    def _head_timed_out(self, transport: asyncio.BaseTransport) -> None:
        self.timed_out += 1
        self._warnings.warn(
            "head",
            "closed a connection from %s: no complete request head within %g s",
            transport.get_extra_info("peername"),
            self.header_timeout,
        )


async def start_webhook_server(
    app: web.Application,
    host: str | None,
    port: int,
    *,
    header_timeout: float = DEFAULT_HEADER_TIMEOUT,
    ssl_context: ssl.SSLContext | None = None,
    publisher: WebhookPublisher | None = None,
    **runner_kwargs: Any,
) -> web.AppRunner:
    """Serve ``app`` (e.g. a :func:`webhook_app`) on ``host:port`` with a timeout on request
    heads (see :class:`HeaderTimeoutSite`), and return its started runner; stop it with
    ``await runner.cleanup()`` (which also closes the receiver, see
    :meth:`WebhookReceiver.aclose`).

    Args:
        app: the application; it must not have been started yet.
        host: the address to listen on (None: every interface).
        port: the port (0: any free one; ``runner.addresses[0][1]`` tells which).
        header_timeout: seconds a connection has to deliver a complete request head, from
            when it opens and from the end of each request (so an idle kept-alive
            connection is closed after it too). Bodies are bounded by the receiver's
            ``body_timeout``.
        ssl_context: serve HTTPS (the secret travels in a header: use HTTPS, or a TLS
            terminating proxy in front).
        publisher: set as the ``publisher`` of the app's receiver (``app[WEBHOOK_RECEIVER_KEY]``,
            as :func:`webhook_app` makes it): every verified event is recorded there (e.g. in
            Redis, for trackers of other processes) before it is answered 204, and answered
            503 when it cannot be. ``ValueError`` when the app has no such receiver.
        **runner_kwargs: passed to ``web.AppRunner`` (``access_log``, ``keepalive_timeout``,
            ``shutdown_timeout``, ...).
    """
    if publisher is not None:
        from .receiver import WEBHOOK_RECEIVER_KEY

        receiver = app.get(WEBHOOK_RECEIVER_KEY)
        if receiver is None:
            raise ValueError(
                "publisher= needs an app made by webhook_app() (app[WEBHOOK_RECEIVER_KEY]); "
                "with add_webhook_routes(), pass publisher= to it instead"
            )
        receiver.publisher = publisher
    runner = web.AppRunner(app, **runner_kwargs)
    await runner.setup()
    try:
        site = HeaderTimeoutSite(
            runner, host, port, header_timeout=header_timeout, ssl_context=ssl_context
        )
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner
