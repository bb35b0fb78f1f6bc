"""The sandbox server: an ``aiohttp.web`` application emulating the flinkey API v3.

Routes (under ``config.base_path``, ``/v3`` by default):

======================================  ==================================================
``POST /oauth2/token``                  password grant (form body), ``expires_in`` a string
``GET /customers``                      no ``Customer-ID`` needed; ids are JSON numbers
``GET /cars``, ``GET /cars/{carId}``    the ``Car`` schema
``GET /users``, ``GET /users/{userId}`` the ``User`` schema
``GET /assignments/{assignmentId}``     all seven fields
``GET /cars/{carId}/assignments``       items ``id, userId, start, end``
``GET /users/{userId}/assignments``     items ``id, carId, start, end``
``PUT /assignments``                    204, applied after ``write_delay``, webhook
``PATCH /assignments/{assignmentId}``   JSON-Patch array, 204, applied later, webhook
``DELETE /assignments/{assignmentId}``  204, applied later, webhook
======================================  ==================================================

Every GET takes OData query options (:mod:`flinkey_async.sandbox.odata_eval`): lists all of
them, single objects ``$select`` only; an invalid query gets 400 ``Invalid OData query: ...``.

Checks, in this order: injected faults (:mod:`~flinkey_async.sandbox.faults`);
``flinkey-API-Key`` (401 ``{"statusCode": 401, "message": "Access denied due to invalid
subscription key..."}``); the rate limit (429 ``{"status": "429", "message": "Rate limit is
exceeded. Try again in N seconds."}`` with ``Retry-After: N``); ``Authorization: Bearer`` (401
``... Access token is missing or invalid.``); ``Customer-ID`` (404 text ``Unable to find a manager
for the given OAuth ID claim data.`` when missing, not an integer or not a customer of the
manager); then the route's own checks. Bare-text answers are ``text/plain; charset=utf-8``.

Path ids that are not integers in ``1..2147483647`` get the resource's 404 text, as an unknown
id does. The request body of ``PUT``/``PATCH`` must be ``application/json`` (or
``application/*+json``), else 415 with an RFC 7231 problem object (``application/problem+json``);
bodies above ``max_body_bytes`` get 413; a malformed body gets 400 with a readable text. Unknown
routes get 404 and wrong methods 405 (aiohttp's own answers). An unexpected error gets 500
``Internal server error.``; the server keeps serving.

Writes are queued in arrival order and applied one after the other ``write_delay`` seconds after
arrival (:mod:`~flinkey_async.sandbox.writes`); each outcome is appended to
:attr:`Sandbox.outcomes` and, when a webhook URL is set, POSTed there with
``Content-Type: application/json`` and the ``Secret`` header. Every delivery attempt is recorded
in :attr:`Sandbox.deliveries`. The sender never follows redirects: a 3xx answer is recorded as
the delivery's status, like any other non-2xx one, and the body and its ``Secret`` go nowhere
else. It ignores proxy settings from the environment (``trust_env=False``).

Memory stays bounded: at most ``config.max_tokens`` live access tokens (the oldest is forgotten
first, expired ones as they expire) and at most ``config.max_records`` entries in each of
:attr:`Sandbox.outcomes` and :attr:`Sandbox.deliveries` (:class:`RecordLog`).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import math
import random
import secrets
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Awaitable, Callable, Hashable, Iterable
from heapq import heapify, heappop, heappush
from types import TracebackType
from typing import Any, SupportsIndex, TypeVar, overload

import aiohttp
import attrs
from aiohttp import web

from .config import RateLimit, RateLimiter, SandboxConfig
from .faults import FaultConfig, FaultInjector, RequestFault, WebhookFault
from .messages import (
    ASSIGNMENT_NOT_FOUND,
    CAR_NOT_FOUND,
    INTERNAL_SERVER_ERROR,
    INVALID_API_KEY,
    INVALID_TOKEN,
    MANAGER_NOT_FOUND,
    USER_NOT_FOUND,
    rate_limit_message,
)
from .odata_eval import EntitySchema, ODataError, QueryOptions, parse_query
from .store import (
    ASSIGNMENT_SCHEMA,
    CAR_ASSIGNMENT_SCHEMA,
    CAR_SCHEMA,
    CUSTOMER_SCHEMA,
    MAX_ID,
    USER_ASSIGNMENT_SCHEMA,
    USER_SCHEMA,
    SandboxStore,
    assignment_wire,
    car_assignment_wire,
    car_wire,
    customer_wire,
    delete_checksum,
    user_assignment_wire,
    user_wire,
)
from .writes import (
    BodyError,
    CreateWrite,
    DeleteWrite,
    UpdateWrite,
    Write,
    body_checksum,
    parse_create,
    parse_patch,
)

__all__ = ["SANDBOX_KEY", "Delivery", "RecordLog", "Sandbox", "make_app", "sandbox_of", "serve"]

log = logging.getLogger("flinkey_async.sandbox")

_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_JSON = "application/json; charset=utf-8"
_TEXT = "text/plain; charset=utf-8"
_PROBLEM = "application/problem+json; charset=utf-8"
_UNSUPPORTED_MEDIA_TYPE_URI = "https://tools.ietf.org/html/rfc7231#section-6.5.13"


def _dumps(value: Any) -> bytes:
    """Compact JSON, UTF-8."""
    return _ENCODER.encode(value).encode()


_INVALID_API_KEY_BODY = _dumps({"statusCode": 401, "message": INVALID_API_KEY})
_INVALID_TOKEN_BODY = _dumps({"statusCode": 401, "message": INVALID_TOKEN})
_TEXT_BODIES = {text: text.encode() for text in (
    MANAGER_NOT_FOUND, ASSIGNMENT_NOT_FOUND, CAR_NOT_FOUND, USER_NOT_FOUND, INTERNAL_SERVER_ERROR,
)}


def _json_response(body: bytes, status: int = 200,
                   headers: dict[str, str] | None = None) -> web.Response:
    response = web.Response(body=body, status=status, headers=headers)
    response.headers["Content-Type"] = _JSON
    return response


def _text_response(text: str, status: int) -> web.Response:
    body = _TEXT_BODIES.get(text)
    return web.Response(body=body if body is not None else text.encode(), status=status,
                        headers={"Content-Type": _TEXT})


def _path_id(text: str) -> int | None:
    """A path id as an int in ``1..MAX_ID``, or None."""
    if not (text.isascii() and text.isdigit()) or len(text) > 12:
        return None
    value = int(text)
    return value if 0 < value <= MAX_ID else None


def _is_json(request: web.Request) -> bool:
    mime = request.content_type
    return mime == "application/json" or (mime.startswith("application/")
                                          and mime.endswith("+json"))


@attrs.define
class Delivery:
    """One webhook delivery attempt.

    Attributes:
        payload: the JSON payload (as a dict).
        body: the exact bytes POSTed.
        url: the target URL.
        status: the receiver's HTTP status, or None when nothing was received (an error, or a
            dropped delivery).
        error: the transport error, if any.
        duplicate: this is the second delivery of a duplicated payload (fault injection).
        delayed: extra seconds this delivery was held back (fault injection).
        dropped: the delivery was dropped (fault injection) and never sent.
        at: wall-clock time of the attempt (``time.time()``).
    """

    payload: dict[str, Any]
    body: bytes
    url: str
    status: int | None = None
    error: str | None = None
    duplicate: bool = False
    delayed: float = 0.0
    dropped: bool = False
    at: float = attrs.field(factory=time.time)


_T = TypeVar("_T")


class RecordLog(deque[_T]):
    """A ``collections.deque`` with a ``maxlen`` that reads like a list.

    Appending to a full log drops its oldest entry. Indexing, ``len``, iteration and ``in``
    work as on a deque; a slice gives a list (``log[2:]``), and a log equals a list (or
    deque) with the same items (``sandbox.outcomes == []``).
    """

    @overload
    def __getitem__(self, index: SupportsIndex) -> _T: ...

    @overload
    def __getitem__(self, index: slice) -> list[_T]: ...

    def __getitem__(self, index: SupportsIndex | slice) -> _T | list[_T]:
        if isinstance(index, slice):
            return list(self)[index]
        return super().__getitem__(index)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, list | deque):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    def __repr__(self) -> str:
        return f"RecordLog({list(self)!r}, maxlen={self.maxlen})"


def _close_connection(request: web.Request) -> None:
    """Close the connection without an answer; a response returned afterwards is never
    written (aiohttp notices the closed transport and drops it silently)."""
    transport = request.transport
    if transport is not None:
        transport.close()


Handler = Callable[[web.Request, int], Awaitable[web.StreamResponse]]


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

    def __init__(self, config: SandboxConfig | None = None, *,
                 store: SandboxStore | None = None) -> None:
        self.config = config = config if config is not None else SandboxConfig()
        if store is None:
            store = SandboxStore()
            if config.fixture is not None:
                store.load_fixture(config.fixture)
        self.store = store
        self.webhook_url: str | None = config.webhook_url
        self.webhook_secret: str | None = config.webhook_secret
        self.outcomes: RecordLog[dict[str, Any]] = RecordLog(maxlen=config.max_records)
        self.deliveries: RecordLog[Delivery] = RecordLog(maxlen=config.max_records)
        self.request_counts: Counter[str] = Counter()
        self.url: str | None = None
        # live tokens ("Bearer ..." -> monotonic expiry), oldest first, and a heap of
        # (expiry, key) to forget them as they expire (entries of forgotten tokens are skipped)
        self._tokens: OrderedDict[str, float] = OrderedDict()
        self._token_expiries: list[tuple[float, str]] = []
        self._injector = FaultInjector(config.faults, config.seed)
        self._limiter = RateLimiter(config.rate_limit) if config.rate_limit else None
        self._trace_random = random.Random(config.seed)
        self._allowed = frozenset(config.customer_ids) if config.customer_ids is not None else None
        self._writes: asyncio.Queue[tuple[float, Write]] = asyncio.Queue()
        self._outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._delayed: set[asyncio.Task[None]] = set()
        self._workers: list[asyncio.Task[None]] = []
        self._client: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None
        self._cache: dict[Hashable, bytes] = {}
        self._cache_version = -1
        self._queries: dict[tuple[str, str, bool], QueryOptions] = {}
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

    def auth_headers(self, customer_id: int | None = None,
                     token: str | None = None) -> dict[str, str]:
        """Headers of an authorised request: API key, a fresh (or the given) bearer token and,
        when given, the ``Customer-ID``."""
        headers = {"flinkey-API-Key": self.config.api_key,
                   "Authorization": f"Bearer {token or self.issue_token()}"}
        if customer_id is not None:
            headers["Customer-ID"] = str(customer_id)
        return headers

    @property
    def faults(self) -> FaultConfig | None:
        """The injected faults; assign a :class:`FaultConfig` (or None) to change them at run
        time. Assigning reseeds the random generator."""
        return self._injector.config

    @faults.setter
    def faults(self, value: FaultConfig | None) -> None:
        self._injector = FaultInjector(value, self.config.seed)

    @property
    def rate_limit(self) -> RateLimit | None:
        """The rate limit; assign a :class:`RateLimit` (or None) to change it (counts reset)."""
        return self._limiter.limit if self._limiter is not None else None

    @rate_limit.setter
    def rate_limit(self, value: RateLimit | None) -> None:
        self._limiter = RateLimiter(value) if value is not None else None

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
            if self._delayed:
                await asyncio.gather(*list(self._delayed), return_exceptions=True)
                continue
            if self._writes.empty() and self._outbox.empty():
                return

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on ``host:port`` (0: a free port); returns the base URL (also :attr:`url`)."""
        if self._runner is not None:
            raise RuntimeError("the sandbox is already started")
        runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
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
        """Stop serving (pending writes and deliveries are abandoned; see :meth:`drain`)."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> Sandbox:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.stop()

    async def _on_startup(self, _app: web.Application) -> None:
        self._client = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.config.webhook_timeout), trust_env=False)
        self._workers = [asyncio.create_task(self._write_worker()),
                         asyncio.create_task(self._delivery_worker())]

    async def _on_cleanup(self, _app: web.Application) -> None:
        tasks = [*self._workers, *self._delayed]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._workers = []
        if self._client is not None:
            await self._client.close()
            self._client = None

    # -- app -------------------------------------------------------------------------------------

    def _build_app(self) -> web.Application:
        app = web.Application(client_max_size=self.config.max_body_bytes)
        app[SANDBOX_KEY] = self
        app.on_startup.append(self._on_startup)
        app.on_cleanup.append(self._on_cleanup)
        routes: list[tuple[str, str, Handler, bool, bool]] = [
            ("POST", "/oauth2/token", self._token, False, False),
            ("GET", "/customers", self._customers, True, False),
            ("GET", "/cars", self._cars, True, True),
            ("GET", "/cars/{carId}", self._car, True, True),
            ("GET", "/cars/{carId}/assignments", self._car_assignments, True, True),
            ("GET", "/users", self._users, True, True),
            ("GET", "/users/{userId}", self._user, True, True),
            ("GET", "/users/{userId}/assignments", self._user_assignments, True, True),
            ("GET", "/assignments/{assignmentId}", self._assignment, True, True),
            ("PUT", "/assignments", self._create, True, True),
            ("PATCH", "/assignments/{assignmentId}", self._update, True, True),
            ("DELETE", "/assignments/{assignmentId}", self._delete, True, True),
        ]
        for method, template, handler, token, customer in routes:
            app.router.add_route(method, self.config.base_path + template,
                                 self._endpoint(method, template, handler, token, customer))
        return app

    def _endpoint(self, method: str, template: str, handler: Handler, needs_token: bool,
                  needs_customer: bool) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        """Wrap a route handler with the request count, faults, API key, rate limit, token and
        customer checks."""
        api_key = self.config.api_key
        route_key = f"{method} {template}"

        async def answer(request: web.Request) -> web.StreamResponse:
            try:
                headers = request.headers
                if headers.get("flinkey-API-Key") != api_key:
                    return _json_response(_INVALID_API_KEY_BODY, 401)
                limiter = self._limiter
                if limiter is not None:
                    wait = limiter.check(api_key)
                    if wait is not None:
                        return self._rate_limited(wait)
                if needs_token and not self._token_valid(headers.get("Authorization")):
                    return _json_response(_INVALID_TOKEN_BODY, 401)
                customer_id = 0
                if needs_customer:
                    found = self._customer(headers.get("Customer-ID"))
                    if found is None:
                        return _text_response(MANAGER_NOT_FOUND, 404)
                    customer_id = found
                return await handler(request, customer_id)
            except web.HTTPException:
                raise
            except ODataError as exc:
                return _text_response(str(exc), 400)
            except Exception:
                log.exception("sandbox: unexpected error on %s %s", method, template)
                return _text_response(INTERNAL_SERVER_ERROR, 500)

        async def endpoint(request: web.Request) -> web.StreamResponse:
            self.request_counts[route_key] += 1
            injector = self._injector
            if injector.active:
                fault = injector.decide(method, template)
                if fault is not None:
                    injected = await self._inject(request, fault)
                    if injected is not None:
                        return injected
                    if fault.action == "reset_after":
                        try:
                            return await answer(request)
                        finally:
                            _close_connection(request)
            return await answer(request)

        endpoint.__name__ = handler.__name__
        return endpoint

    async def _inject(self, request: web.Request,
                      fault: RequestFault) -> web.StreamResponse | None:
        """Apply the latency and a fault answering in place of the route (None otherwise;
        ``reset_after`` is the caller's, once the route has answered)."""
        if fault.latency > 0:
            await asyncio.sleep(fault.latency)
        if fault.action == "reset":
            _close_connection(request)
            return web.Response(status=500)
        if fault.action == "rate_limit":
            return self._rate_limited(fault.retry_after)
        if fault.action == "server_error":
            return _text_response(INTERNAL_SERVER_ERROR, 500)
        return None

    def _rate_limited(self, seconds: int) -> web.Response:
        body = _dumps({"status": "429", "message": rate_limit_message(seconds)})
        return _json_response(body, 429, {"Retry-After": str(seconds)})

    def _unsupported_media_type(self) -> web.Response:
        trace = (f"00-{self._trace_random.getrandbits(128):032x}-"
                 f"{self._trace_random.getrandbits(64):016x}-00")
        body = _dumps({"type": _UNSUPPORTED_MEDIA_TYPE_URI, "title": "Unsupported Media Type",
                       "status": "415", "traceId": trace})
        response = web.Response(body=body, status=415)
        response.headers["Content-Type"] = _PROBLEM
        return response

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
            self._allowed is None or customer_id in self._allowed)

    def _customer(self, header: str | None) -> int | None:
        if header is None:
            return None
        customer_id = _path_id(header.strip())
        if customer_id is None or not self._customer_allowed(customer_id):
            return None
        return customer_id

    # -- reads -----------------------------------------------------------------------------------

    def _options(self, request: web.Request, schema: EntitySchema,
                 single: bool) -> QueryOptions:
        key = (schema.name, request.rel_url.raw_query_string, single)
        options = self._queries.get(key)
        if options is None:
            options = parse_query(request.query.items(), schema, single=single)
            if len(self._queries) >= 1024:
                self._queries.clear()
            self._queries[key] = options
        return options

    def _list(self, request: web.Request, cache_key: Hashable, schema: EntitySchema,
              records: Callable[[], Iterable[dict[str, Any]]]) -> web.Response:
        if not request.query_string:
            store = self.store
            if self._cache_version != store.version:
                self._cache.clear()
                self._cache_version = store.version
            body = self._cache.get(cache_key)
            if body is None:
                body = self._cache[cache_key] = _dumps(list(records()))
            return _json_response(body)
        options = self._options(request, schema, single=False)
        return _json_response(_dumps(options.apply(list(records()))))

    def _single(self, request: web.Request, schema: EntitySchema,
                record: dict[str, Any]) -> web.Response:
        if request.query_string:
            record = dict(self._options(request, schema, single=True).select_one(record))
        return _json_response(_dumps(record))

    async def _customers(self, request: web.Request, _customer_id: int) -> web.StreamResponse:
        store = self.store
        return self._list(request, ("customers",), CUSTOMER_SCHEMA, lambda: (
            customer_wire(store.customers[c]) for c in self.customer_ids))

    async def _cars(self, request: web.Request, customer_id: int) -> web.StreamResponse:
        return self._list(request, ("cars", customer_id), CAR_SCHEMA, lambda: (
            car_wire(c) for c in self.store.cars_of(customer_id)))

    async def _users(self, request: web.Request, customer_id: int) -> web.StreamResponse:
        return self._list(request, ("users", customer_id), USER_SCHEMA, lambda: (
            user_wire(u) for u in self.store.users_of(customer_id)))

    async def _car(self, request: web.Request, customer_id: int) -> web.StreamResponse:
        car_id = _path_id(request.match_info["carId"])
        car = self.store.get_car(car_id, customer_id) if car_id else None
        if car is None:
            return _text_response(CAR_NOT_FOUND, 404)
        return self._single(request, CAR_SCHEMA, car_wire(car))

    async def _user(self, request: web.Request, customer_id: int) -> web.StreamResponse:
        user_id = _path_id(request.match_info["userId"])
        user = self.store.get_user(user_id, customer_id) if user_id else None
        if user is None:
            return _text_response(USER_NOT_FOUND, 404)
        return self._single(request, USER_SCHEMA, user_wire(user))

    async def _assignment(self, request: web.Request, customer_id: int) -> web.StreamResponse:
        assignment_id = _path_id(request.match_info["assignmentId"])
        record = self.store.get_assignment(assignment_id, customer_id) if assignment_id else None
        if record is None:
            return _text_response(ASSIGNMENT_NOT_FOUND, 404)
        return self._single(request, ASSIGNMENT_SCHEMA, assignment_wire(record))

    async def _car_assignments(self, request: web.Request,
                               customer_id: int) -> web.StreamResponse:
        car_id = _path_id(request.match_info["carId"])
        store = self.store
        if car_id is None or store.get_car(car_id, customer_id) is None:
            return _text_response(CAR_NOT_FOUND, 404)
        return self._list(request, ("car", car_id), CAR_ASSIGNMENT_SCHEMA, lambda: (
            car_assignment_wire(a) for a in store.assignments_for_car(car_id)))

    async def _user_assignments(self, request: web.Request,
                                customer_id: int) -> web.StreamResponse:
        user_id = _path_id(request.match_info["userId"])
        store = self.store
        if user_id is None or store.get_user(user_id, customer_id) is None:
            return _text_response(USER_NOT_FOUND, 404)
        return self._list(request, ("user", user_id), USER_ASSIGNMENT_SCHEMA, lambda: (
            user_assignment_wire(a) for a in store.assignments_for_user(user_id)))

    # -- token -----------------------------------------------------------------------------------

    async def _token(self, request: web.Request, _customer_id: int) -> web.StreamResponse:
        if request.content_type != "application/x-www-form-urlencoded":
            return self._unsupported_media_type()
        try:
            form = await request.post()
        except (ValueError, LookupError):  # LookupError: an unknown charset
            return self._oauth_error("invalid_request", "The request body could not be read.")
        username, password = form.get("username"), form.get("password")
        grant_type = form.get("grant_type")
        if not all(isinstance(v, str) for v in (username, password, grant_type)):
            return self._oauth_error(
                "invalid_request", "username, password and grant_type are required.")
        if grant_type != "password":
            return self._oauth_error(
                "unsupported_grant_type", "Only grant_type=password is supported.")
        assert isinstance(username, str) and isinstance(password, str)
        config = self.config
        user_ok = hmac.compare_digest(username.encode(), config.username.encode())
        password_ok = hmac.compare_digest(password.encode(), config.password.encode())
        if not (user_ok and password_ok):
            return self._oauth_error("invalid_grant", "The user name or password is incorrect.")
        token = self.issue_token()
        return _json_response(_dumps({
            "token_type": "Bearer",
            "expires_in": str(math.ceil(config.token_lifetime)),
            "access_token": token,
        }))

    @staticmethod
    def _oauth_error(error: str, description: str) -> web.Response:
        # Not documented by flinkey: wrong credentials are answered in the RFC 6749 (section
        # 5.2) style an OAuth2 server uses, with status 400.
        return _json_response(_dumps({"error": error, "error_description": description}), 400)

    # -- writes ----------------------------------------------------------------------------------

    def _enqueue(self, write: Write) -> web.Response:
        due = asyncio.get_running_loop().time() + self.config.write_delay
        self._writes.put_nowait((due, write))
        return web.Response(status=204)

    async def _create(self, request: web.Request, customer_id: int) -> web.StreamResponse:
        if not _is_json(request):
            return self._unsupported_media_type()
        body = await request.read()
        try:
            create = parse_create(body)
        except BodyError as exc:
            return _text_response(str(exc), 400)
        return self._enqueue(CreateWrite(customer_id, body_checksum(body), create))

    async def _update(self, request: web.Request, customer_id: int) -> web.StreamResponse:
        assignment_id = _path_id(request.match_info["assignmentId"])
        if assignment_id is None:
            return _text_response(ASSIGNMENT_NOT_FOUND, 404)
        if not _is_json(request):
            return self._unsupported_media_type()
        body = await request.read()
        try:
            operations = parse_patch(body)
        except BodyError as exc:
            return _text_response(str(exc), 400)
        return self._enqueue(
            UpdateWrite(customer_id, body_checksum(body), assignment_id, operations))

    async def _delete(self, request: web.Request, customer_id: int) -> web.StreamResponse:
        assignment_id = _path_id(request.match_info["assignmentId"])
        if assignment_id is None:
            return _text_response(ASSIGNMENT_NOT_FOUND, 404)
        return self._enqueue(
            DeleteWrite(customer_id, delete_checksum(assignment_id), assignment_id))

    async def _write_worker(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due, write = await self._writes.get()
            try:
                delay = due - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                self._emit(write.apply(self.store))
            except Exception:
                log.exception("sandbox: applying a %s failed", write.kind)
            finally:
                self._writes.task_done()

    # -- webhooks --------------------------------------------------------------------------------

    def _emit(self, payload: dict[str, Any]) -> None:
        self.outcomes.append(payload)
        if self.webhook_url is not None:
            self._outbox.put_nowait(payload)

    async def _delivery_worker(self) -> None:
        while True:
            payload = await self._outbox.get()
            try:
                url = self.webhook_url
                if url is None:
                    continue
                secret = self.webhook_secret
                fault = self._injector.decide_webhook()
                if fault.drop:
                    self.deliveries.append(Delivery(payload, _dumps(payload), url, dropped=True))
                elif fault.delay > 0:
                    task = asyncio.create_task(self._deliver(url, secret, payload, fault))
                    self._delayed.add(task)
                    task.add_done_callback(self._delayed.discard)
                else:
                    await self._deliver(url, secret, payload, fault)
            except Exception:
                log.exception("sandbox: webhook delivery failed")
            finally:
                self._outbox.task_done()

    async def _deliver(self, url: str, secret: str | None, payload: dict[str, Any],
                       fault: WebhookFault) -> None:
        if fault.delay > 0:
            await asyncio.sleep(fault.delay)
        await self._post(url, secret, payload, duplicate=False, delayed=fault.delay)
        if fault.duplicate:
            await self._post(url, secret, payload, duplicate=True, delayed=fault.delay)

    async def _post(self, url: str, secret: str | None, payload: dict[str, Any], *,
                    duplicate: bool, delayed: float) -> None:
        body = _dumps(payload)
        headers = {"Content-Type": "application/json"}
        if secret is not None:
            headers["Secret"] = secret
        delivery = Delivery(payload, body, url, duplicate=duplicate, delayed=delayed)
        client = self._client
        try:
            if client is None:
                raise RuntimeError("the sandbox is not running")
            # never follow a redirect: it would re-POST the body and its Secret elsewhere
            async with client.post(url, data=body, headers=headers,
                                   allow_redirects=False) as response:
                await response.read()
                delivery.status = response.status
            if delivery.status >= 300:
                log.warning("sandbox: webhook %s answered %s", url, delivery.status)
        except (aiohttp.ClientError, TimeoutError, OSError, RuntimeError) as exc:
            delivery.error = f"{type(exc).__name__}: {exc}"
            log.warning("sandbox: webhook delivery to %s failed: %s", url, delivery.error)
        self.deliveries.append(delivery)


#: Where an application made by :class:`Sandbox` keeps its sandbox.
SANDBOX_KEY = web.AppKey("flinkey_sandbox", Sandbox)


def make_app(config: SandboxConfig | None = None, *,
             store: SandboxStore | None = None) -> web.Application:
    """The sandbox as an ``aiohttp.web.Application`` (its :class:`Sandbox` is
    ``sandbox_of(app)``)."""
    return Sandbox(config, store=store).app


def sandbox_of(app: web.Application) -> Sandbox:
    """The :class:`Sandbox` behind an application made by :func:`make_app`."""
    return app[SANDBOX_KEY]


async def serve(config: SandboxConfig | None = None, host: str = "127.0.0.1", port: int = 8080,
                *, on_ready: Callable[[Sandbox], None] | None = None) -> None:
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
