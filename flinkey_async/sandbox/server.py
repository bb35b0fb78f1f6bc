"""The sandbox server: an ``aiohttp.web`` application emulating the flinkey API v3.

:class:`Sandbox` ties the parts together: the data (:mod:`~flinkey_async.sandbox.store`), the
checks every request goes through (:mod:`~flinkey_async.sandbox.middleware`), one route module
per resource (:mod:`~flinkey_async.sandbox.routes`), the write queue
(:mod:`~flinkey_async.sandbox.writes`) and the webhook outbox
(:mod:`~flinkey_async.sandbox.outbox`). It also keeps the access tokens.

The request body limit is ``config.max_body_bytes`` (larger bodies get 413, aiohttp's own
answer). Writes are queued in arrival order and applied one after the other ``write_delay``
seconds after arrival; each outcome is appended to :attr:`Sandbox.outcomes` and, when a webhook
URL is set, POSTed there; every delivery attempt is recorded in :attr:`Sandbox.deliveries`.

Memory stays bounded: at most ``config.max_tokens`` live access tokens (the oldest is forgotten
first, expired ones as they expire) and at most ``config.max_records`` entries in each of
:attr:`Sandbox.outcomes` and :attr:`Sandbox.deliveries` (:class:`RecordLog`).
"""

from __future__ import annotations

import asyncio
import functools
import secrets
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from heapq import heapify, heappop, heappush
from types import TracebackType
from typing import Any

from aiohttp import web

from .._wire import API_KEY_HEADER, AUTHORIZATION_HEADER, CUSTOMER_ID_HEADER
from .config import RateLimit, RateLimiter, SandboxConfig
from .faults import FaultConfig, FaultInjector, WebhookFault
from .middleware import Gate
from .outbox import Delivery, Outbox, RecordLog
from .routes import ROUTES, RouteContext
from .store import SandboxStore
from .writes.queue import WriteQueue

__all__ = ["SANDBOX_KEY", "Sandbox", "make_app", "sandbox_of", "serve"]

#: Seconds :meth:`Sandbox.stop` lets requests in flight finish (aiohttp's default: 60).
_SHUTDOWN_TIMEOUT = 2.0


class Sandbox:
    """A flinkey API v3 emulator with its data, tokens, write queue and webhook sender.

    Use it as an async context manager (``async with Sandbox(config) as sandbox:`` starts it on
    a free port of 127.0.0.1; ``sandbox.url`` is then the base URL, ``.../v3``), or call
    :meth:`start` / :meth:`stop`, or hand :attr:`app` to ``aiohttp.test_utils.TestServer``.
    A sandbox serves once: after :meth:`stop`, make a new one (it may share the store).

    Attributes:
        config: the :class:`SandboxConfig`.
        store: the data (:class:`SandboxStore`); seed it directly from tests.
        app: the ``aiohttp.web.Application``.
        url: the base URL once started (``http://127.0.0.1:PORT/v3``), else None.
        webhook_url, webhook_secret: where outcome webhooks go (initially from the config;
            may be changed at any time).
        outcomes: every webhook payload produced (also without a webhook URL), in order; a
            :class:`RecordLog` keeping the last ``config.max_records``.
        deliveries: every delivery attempt (:class:`Delivery`), in order; a
            :class:`RecordLog` keeping the last ``config.max_records``.
        request_counts: how many requests reached each route, keyed like fault routes
            (``"PUT /assignments"``, ``"GET /cars/{carId}"``; no base path), faulted and
            refused ones included; requests to unknown routes or with a wrong method (404,
            405) are not counted. A ``collections.Counter``: a route never called counts 0.
    """

    def __init__(
        self, config: SandboxConfig | None = None, *, store: SandboxStore | None = None
    ) -> None:
        self.config = config = config if config is not None else SandboxConfig()
        if store is None:
            store = SandboxStore()
            if config.fixture is not None:
                store.load_fixture(config.fixture)
        self.store = store
        self.outcomes: RecordLog[dict[str, Any]] = RecordLog(maxlen=config.max_records)
        self.deliveries: RecordLog[Delivery] = RecordLog(maxlen=config.max_records)
        self.request_counts: Counter[str] = Counter()
        self.url: str | None = None
        # live tokens ("Bearer ..." -> monotonic expiry), oldest first, and a heap of
        # (expiry, key) to forget them as they expire (entries of forgotten tokens are skipped)
        self._tokens: OrderedDict[str, float] = OrderedDict()
        self._token_expiries: list[tuple[float, str]] = []
        self._allowed = frozenset(config.customer_ids) if config.customer_ids is not None else None
        self._gate = Gate(
            config,
            token_valid=self._token_valid,
            customer_allowed=self._customer_allowed,
            request_counts=self.request_counts,
        )
        self._writes = WriteQueue(config.write_delay)
        self._outbox = Outbox(
            self.outcomes,
            self.deliveries,
            url=config.webhook_url,
            secret=config.webhook_secret,
            timeout=config.webhook_timeout,
            decide=self._decide_webhook,
        )
        self._write_worker: asyncio.Task[None] | None = None
        self._runner: web.AppRunner | None = None
        store.subscribe(self._emit)
        self.app = self._build_app()

    # -- public helpers ------------------------------------------------------------------------

    def issue_token(self, lifetime: float | None = None) -> str:
        """A valid access token without a round-trip (``lifetime`` seconds, default the
        config's ``token_lifetime``).

        At most ``config.max_tokens`` tokens are kept: expired ones are forgotten, and when
        that is not enough the oldest live one is."""
        token = secrets.token_urlsafe(32)
        lifetime = self.config.token_lifetime if lifetime is None else lifetime
        now = time.monotonic()
        tokens, expiries = self._tokens, self._token_expiries
        while expiries and expiries[0][0] <= now:
            expiry, key = heappop(expiries)
            if tokens.get(key) == expiry:
                del tokens[key]
        limit = self.config.max_tokens
        while len(tokens) >= limit:
            tokens.popitem(last=False)
        key = "Bearer " + token
        tokens[key] = expiry = now + lifetime
        heappush(expiries, (expiry, key))
        if len(expiries) > 2 * limit + 16:  # mostly entries of forgotten tokens: rebuild
            self._token_expiries = [(e, k) for k, e in tokens.items()]
            heapify(self._token_expiries)
        return token

    def expire_tokens(self) -> None:
        """Invalidate every access token issued so far."""
        self._tokens.clear()
        self._token_expiries.clear()

    def auth_headers(
        self, customer_id: int | None = None, token: str | None = None
    ) -> dict[str, str]:
        """Headers of an authorised request: API key, a fresh (or the given) bearer token and,
        when given, the ``Customer-ID``."""
        headers = {
            API_KEY_HEADER: self.config.api_key,
            AUTHORIZATION_HEADER: f"Bearer {token or self.issue_token()}",
        }
        if customer_id is not None:
            headers[CUSTOMER_ID_HEADER] = str(customer_id)
        return headers

    @property
    def webhook_url(self) -> str | None:
        """Where outcome webhooks go (None: nowhere); may be changed at any time."""
        return self._outbox.url

    @webhook_url.setter
    def webhook_url(self, value: str | None) -> None:
        self._outbox.url = value

    @property
    def webhook_secret(self) -> str | None:
        """The ``Secret`` header of webhook deliveries (None: no such header)."""
        return self._outbox.secret

    @webhook_secret.setter
    def webhook_secret(self, value: str | None) -> None:
        self._outbox.secret = value

    @property
    def faults(self) -> FaultConfig | None:
        """The injected faults; assign a :class:`FaultConfig` (or None) to change them at run
        time. Assigning reseeds the random generator."""
        return self._gate.injector.config

    @faults.setter
    def faults(self, value: FaultConfig | None) -> None:
        self._gate.injector = FaultInjector(value, self.config.seed)

    @property
    def rate_limit(self) -> RateLimit | None:
        """The rate limit; assign a :class:`RateLimit` (or None) to change it (counts reset)."""
        limiter = self._gate.limiter
        return limiter.limit if limiter is not None else None

    @rate_limit.setter
    def rate_limit(self, value: RateLimit | None) -> None:
        self._gate.limiter = RateLimiter(value) if value is not None else None

    @property
    def customer_ids(self) -> list[int]:
        """The customers the API manager may act for."""
        return [c for c in sorted(self.store.customers) if self._customer_allowed(c)]

    async def drain(self) -> None:
        """Wait until every queued write is applied and every webhook delivery (delayed ones
        included) is done. Bound the wait with ``asyncio.timeout`` where needed."""
        while True:
            await self._writes.join()
            await self._outbox.join()
            if self._writes.empty() and self._outbox.idle:
                return

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on ``host:port`` (0: a free port); returns the base URL (also :attr:`url`)."""
        if self._runner is not None:
            raise RuntimeError("the sandbox is already started")
        runner = web.AppRunner(
            self.app,
            access_log=None,
            handle_signals=False,
            shutdown_timeout=_SHUTDOWN_TIMEOUT,
        )
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        bound_port = runner.addresses[0][1]
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{bound_port}{self.config.base_path}"
        return self.url

    async def stop(self) -> None:
        """Stop serving (pending writes and deliveries are abandoned; see :meth:`drain`);
        requests in flight get 2 seconds to be answered, then are cancelled."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> Sandbox:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _on_startup(self, _app: web.Application) -> None:
        self._outbox.start()
        self._write_worker = asyncio.create_task(self._writes.run(self.store, self._emit))

    async def _on_cleanup(self, _app: web.Application) -> None:
        worker, self._write_worker = self._write_worker, None
        if worker is not None:
            worker.cancel()
            await asyncio.gather(worker, return_exceptions=True)
        await self._outbox.stop()

    # -- what the checks, the writes and the outbox use ----------------------------------

    def _token_valid(self, header: str | None) -> bool:
        if header is None:
            return False
        tokens = self._tokens
        expiry = tokens.get(header)
        if expiry is None:
            scheme, _, token = header.strip().partition(" ")
            if scheme.lower() != "bearer":
                return False
            header = "Bearer " + token.strip()
            expiry = tokens.get(header)
            if expiry is None:
                return False
        if expiry <= time.monotonic():
            tokens.pop(header, None)
            return False
        return True

    def _customer_allowed(self, customer_id: int) -> bool:
        return customer_id in self.store.customers and (
            self._allowed is None or customer_id in self._allowed
        )

    def _emit(self, payload: dict[str, Any]) -> None:
        self._outbox.emit(payload)

    def _decide_webhook(self) -> WebhookFault:
        return self._gate.injector.decide_webhook()

    # -- app -------------------------------------------------------------------------------------

    def _build_app(self) -> web.Application:
        config = self.config
        app = web.Application(client_max_size=config.max_body_bytes)
        app[SANDBOX_KEY] = self
        app.on_startup.append(self._on_startup)
        app.on_cleanup.append(self._on_cleanup)
        context = RouteContext(
            config,
            self.store,
            self._writes,
            issue_token=self.issue_token,
            customer_ids=lambda: self.customer_ids,
        )
        for route in ROUTES:
            answer = functools.update_wrapper(
                functools.partial(route.handler, context), route.handler
            )
            endpoint = self._gate.endpoint(
                route.method, route.template, answer, token=route.token, customer=route.customer
            )
            app.router.add_route(route.method, config.base_path + route.template, endpoint)
        return app


#: Where an application made by :class:`Sandbox` keeps its sandbox.
SANDBOX_KEY = web.AppKey("flinkey_sandbox", Sandbox)


def make_app(
    config: SandboxConfig | None = None, *, store: SandboxStore | None = None
) -> web.Application:
    """The sandbox as an ``aiohttp.web.Application`` (its :class:`Sandbox` is
    ``sandbox_of(app)``)."""
    return Sandbox(config, store=store).app


def sandbox_of(app: web.Application) -> Sandbox:
    """The :class:`Sandbox` behind an application made by :func:`make_app`."""
    return app[SANDBOX_KEY]


async def serve(
    config: SandboxConfig | None = None,
    host: str = "127.0.0.1",
    port: int = 8080,
    *,
    on_ready: Callable[[Sandbox], None] | None = None,
) -> None:
    """Run a sandbox on ``host:port`` until cancelled; ``on_ready(sandbox)`` is called once it
    listens (``sandbox.url`` is the base URL)."""
    sandbox = Sandbox(config)
    await sandbox.start(host, port)
    try:
        if on_ready is not None:
            on_ready(sandbox)
        await asyncio.Event().wait()
    finally:
        await sandbox.stop()
