"""The request pipeline: the one place that talks to the network.

One request goes through :meth:`Pipeline.request`: URL from the base URL and path segments
(each segment percent-encoded completely, ``/`` and dot segments included, so an argument can
never change the path), the encoded OData query appended verbatim (``URL(..., encoded=True)``:
``%20`` stays ``%20``, nothing is encoded twice), the three auth headers, the JSON body, the
timeout, the retry loop (decisions from :class:`~flinkey_async.retry.RetryPolicy`), one token
refresh after a 401 "Access token is missing or invalid", and the mapping of errors
(:func:`~flinkey_async.errors.from_response`).

What it guarantees beneath the SDK, whatever aiohttp's defaults:

* **Redirects are never followed** (``allow_redirects=False``): a 3xx raises
  :class:`~flinkey_async.errors.UnexpectedRedirectError` naming the target's origin, so the
  API key, the token and the password never travel to another origin.
* **No hidden resend.** aiohttp re-sends a request once on a new connection when a kept-alive
  one breaks, for ``PUT`` and ``DELETE`` too; a middleware turns that failure into our own, so
  only the retry policy repeats a request, and a write whose connection broke after sending
  raises :class:`~flinkey_async.errors.OutcomeUnknownError` instead of being sent twice.
* **Bounded responses**: bodies are read in chunks up to ``max_response_bytes``, counted after
  decompression (a small gzip body cannot expand without bound); error bodies up to 64 KiB.
* **A deadline per call**: retries, backoff and the token fetch included, no call takes longer
  than ``deadline`` seconds.
* **No environment lookups per request**: aiohttp's ``trust_env`` costs two thread-pool round
  trips per request (``.netrc`` and proxy variables); here ``trust_env=True`` reads the proxy
  for the base URL once, when the connection pool is made.
* **Nothing of aiohttp's frames in tracebacks**: an exception raised inside aiohttp (a
  cancellation or a caller's timeout included) leaves without the frames whose locals hold the
  request headers.

Logging (logger ``flinkey_async``, DEBUG) records every answer (method, path with its query
string, status, attempt, duration) and every retry. It never records headers or bodies, so no
secret reaches a log (no secret ever travels in a path or a query).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import random
import time
from asyncio import current_task
from collections.abc import Callable, Coroutine, Mapping, Sequence
from math import ceil
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

import aiohttp
import attrs
from aiohttp import hdrs
from aiohttp.helpers import get_env_proxy_for_url
from multidict import CIMultiDict
from yarl import URL

from ._converter import decode, loads
from ._sending import current_mark
from ._validate import check_seconds
from ._version import __version__
from ._wire import API_KEY_HEADER, AUTHORIZATION_HEADER, CUSTOMER_ID_HEADER, dumps
from .auth import Secret, TokenProvider, TokenResponse, parse_token_response, redacted
from .errors import (
    BadRequestError,
    ClientClosedError,
    DecodeError,
    FlinkeyApiError,
    InvalidCredentialsError,
    InvalidTokenError,
    OutcomeUnknownError,
    RateLimitError,
    RequestTimeoutError,
    ResponseTooLargeError,
    TransportError,
    UnexpectedRedirectError,
    ValidationError,
    from_response,
)
from .limits import Limiter, Limits
from .retry import Failure, RetryPolicy

__all__ = [
    "DEFAULT_DEADLINE",
    "DEFAULT_MAX_RESPONSE_BYTES",
    "DEFAULT_TIMEOUT",
    "MAX_ERROR_BODY_BYTES",
    "Response",
    "Pipeline",
    "encode_segment",
]

T = TypeVar("T")

logger = logging.getLogger("flinkey_async")

#: 30 s for one attempt, 10 s to connect.
DEFAULT_TIMEOUT: aiohttp.ClientTimeout = aiohttp.ClientTimeout(total=30, connect=10)
#: The longest a call may take, retries and waits included (seconds).
DEFAULT_DEADLINE = 60.0
#: What aiohttp raises only before a request is written (with ClientConnectorError and
#: ConnectionTimeoutError, which the pipeline names on their own).
_NOT_SENT = (aiohttp.ClientHttpProxyError, aiohttp.ServerFingerprintMismatch, aiohttp.InvalidURL)

#: The largest response body read (after decompression): 64 MiB.
DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024
#: How much of an error body is read (the rest is discarded): 64 KiB.
MAX_ERROR_BODY_BYTES = 64 * 1024
_CHUNK = 64 * 1024

_USER_AGENT = f"flinkey_async/{__version__}"
#: How the retry loop waits (a name of its own, so tests can record the waits).
_sleep = asyncio.sleep
_WRITE_METHODS = frozenset({"PUT", "PATCH", "DELETE", "POST"})


@attrs.frozen
class Response:
    """A 2xx answer: status, headers and the raw body."""

    status: int
    headers: Mapping[str, str] = attrs.field(repr=False)
    body: bytes = attrs.field(repr=False)

    def decode(self, tp: type[T] | Any) -> T:
        """The body decoded into ``tp`` (a model or ``list[Model]``) by the converter."""
        result: T = decode(self.body, tp)
        return result


class RedactedHeaders(CIMultiDict[str]):
    """Request headers whose ``repr`` masks the credentials, so that a debugger, a traceback
    printed with its local variables or an error tracker capturing frames shows no secret.

    A ``CIMultiDict``, the type aiohttp keeps headers in: aiohttp takes it as it is, where a
    ``dict`` is first converted on every request."""

    __slots__ = ()

    SENSITIVE = frozenset({API_KEY_HEADER.lower(), AUTHORIZATION_HEADER.lower()})

    def __repr__(self) -> str:
        shown = {k: ("***" if k.lower() in self.SENSITIVE else v) for k, v in self.items()}
        return f"RedactedHeaders({shown!r})"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("request headers cannot be pickled: they hold credentials")


class SecretBody(bytes):
    """A request body that holds a credential (the token request's form): its ``repr`` shows
    only its length, so no frame holding it shows the password."""

    def __repr__(self) -> str:
        return f"SecretBody(<{len(self)} bytes>)"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("a SecretBody cannot be pickled: it holds a credential")


#: Compact JSON bytes, as sent on the wire.
encode_json = dumps


#: Encoded forms of the path segments seen so far (resource names mostly), bounded.
_ENCODED_SEGMENTS: dict[str, str] = {}
_MAX_ENCODED_SEGMENTS = 4096
#: How many URLs a client keeps (see :meth:`Pipeline.url`).
_MAX_URLS = 4096


def _encode_and_keep(segment: str | int) -> str:
    encoded = encode_segment(segment)
    if type(segment) is str and len(_ENCODED_SEGMENTS) < _MAX_ENCODED_SEGMENTS:
        _ENCODED_SEGMENTS[segment] = encoded
    return encoded


def encode_segment(segment: str | int) -> str:
    """One path segment, percent-encoded so that it stays one segment: ``/``, ``?``, ``#``,
    ``%`` and non-ASCII are encoded, and ``.``/``..`` become ``%2E``/``%2E%2E`` (which no
    client or server may collapse). An empty segment raises ``ValueError``; a segment that is
    neither a ``str`` nor an ``int`` (a ``bool``, ``None``, ...) raises ``TypeError`` rather
    than being sent as ``True`` or ``None``. A subclass of ``str`` or ``int`` is sent as its
    value, whatever its ``__str__`` says."""
    if type(segment) is str:
        text = segment
    elif isinstance(segment, str):
        text = str.__str__(segment)
    elif isinstance(segment, int) and not isinstance(segment, bool):
        text = int.__repr__(segment)
    else:
        raise TypeError(f"a path segment must be a str or an int, got {type(segment).__name__}")
    if not text:
        raise ValueError("a path segment must not be empty")
    encoded = quote(text, safe="", errors="strict")
    if encoded in (".", ".."):
        return encoded.replace(".", "%2E")
    return encoded


class _ConnectionLost(Exception):
    """The connection broke after the request may have been sent (raised by
    :func:`_no_hidden_resend` instead of aiohttp's own errors, which aiohttp would answer by
    sending the request once more)."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(type(cause).__name__)
        self.cause_name = type(cause).__name__


async def _no_hidden_resend(
    request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType
) -> aiohttp.ClientResponse:
    """aiohttp middleware: a connection that breaks once the request is on its way surfaces
    to the pipeline (as :class:`_ConnectionLost`) instead of aiohttp's silent resend."""
    try:
        return await handler(request)
    except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError):
        raise  # nothing was sent: the retry policy may repeat it
    except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
        raise _ConnectionLost(exc) from None


_MIDDLEWARES = (_no_hidden_resend,)


def _scrub(exc: BaseException) -> None:
    """Drop the frames below the current one from ``exc``'s traceback, and every frame from
    the exceptions chained to it: they are aiohttp's, and their locals hold the headers."""
    tb = exc.__traceback__
    if tb is not None:
        tb.tb_next = None
    seen = {id(exc)}
    chained = exc.__cause__ or exc.__context__
    while chained is not None and id(chained) not in seen:
        seen.add(id(chained))
        chained.__traceback__ = None
        chained = chained.__cause__ or chained.__context__


def _origin(response_url: URL, location: str | None) -> str | None:
    if not location:
        return None
    try:
        target = response_url.join(URL(location))
        origin = target.origin()
    except (ValueError, TypeError):
        return "an unreadable Location"
    return str(origin)


class _Watch(set[asyncio.Task[Any]]):
    """The tasks whose attempts end at the same whole second of the loop's clock."""

    __slots__ = ("expired", "handle")

    def __init__(self, handle: asyncio.TimerHandle) -> None:
        super().__init__()
        self.expired = False
        self.handle = handle


class _Watches(dict[int, _Watch]):
    """The total timeout of attempts, kept with one loop timer per second rather than one per
    attempt (aiohttp's own total timeout makes a timer, a heap entry and a cancellation per
    request; kept by the pipeline, they cost about a tenth of a GET on loopback).

    A total above the timeout's ``ceil_threshold`` is rounded up to a whole second of the
    loop's clock, as aiohttp does with it: every attempt due at that second is in one
    :class:`_Watch`, whose timer cancels the tasks still in it, and the pipeline turns that
    cancellation into the ``TimeoutError`` aiohttp would have raised (a cancellation of the
    task by anyone else stays a cancellation, as with :func:`asyncio.timeout`). An attempt's
    total is the configured one, or the time left before the call's deadline when that is
    shorter; a total too short to be rounded is left to aiohttp."""

    __slots__ = ("loop",)

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self.loop = loop

    def open(self, second: int) -> _Watch:
        """The watch of the attempts due at ``second``, made with its timer."""
        watch = self[second] = _Watch(self.loop.call_at(second, self.expire, second))
        return watch

    def expire(self, second: int) -> None:
        """The timer of ``second``: cancel the tasks whose attempts are still running."""
        watch = self.pop(second, None)
        if watch is not None:
            watch.expired = True
            for task in watch:
                task.cancel()

    def close(self) -> None:
        """Cancel every timer (the attempts they watch end with the session)."""
        for watch in self.values():
            watch.handle.cancel()
        self.clear()


def _check_type(value: object, cls: type, argument: str, expected: str) -> None:
    """A constructor argument that must be ``None`` or an instance of ``cls``."""
    if value is not None and not isinstance(value, cls):
        raise TypeError(f"{argument} must be {expected} or None, got {type(value).__name__}")


def _checked_timeout(timeout: object) -> aiohttp.ClientTimeout:
    """The ``timeout`` argument as an ``aiohttp.ClientTimeout``: a number of seconds is the
    total of one attempt, ``aiohttp.ClientTimeout(total=seconds)``."""
    if isinstance(timeout, aiohttp.ClientTimeout):
        for field in ("total", "connect", "sock_read", "sock_connect", "ceil_threshold"):
            value = getattr(timeout, field)
            check_seconds(value, f"timeout.{field}", low="any", finite=False, optional=True)
        return timeout
    if not isinstance(timeout, int | float):
        raise TypeError(
            "timeout must be an aiohttp.ClientTimeout or a number of seconds, "
            f"got {type(timeout).__name__}"
        )
    return aiohttp.ClientTimeout(total=float(check_seconds(timeout, "timeout", low=">0")))


def _checked_proxy(proxy: object) -> URL | None:
    """The ``proxy`` argument as a URL: an absolute ``http://`` or ``https://`` URL."""
    if proxy is None:
        return None
    if isinstance(proxy, str):
        try:
            url = URL(proxy)
        except (TypeError, ValueError) as exc:
            raise ValidationError("proxy", f"is not a URL: {exc}") from None
    elif isinstance(proxy, URL):
        url = proxy
    else:
        raise TypeError(f"proxy must be a str or yarl.URL or None, got {type(proxy).__name__}")
    if not url.is_absolute() or url.scheme not in ("http", "https") or not url.host:
        raise ValidationError("proxy", "must be an absolute http:// or https:// URL with a host")
    return url


class Pipeline:
    """Owns the aiohttp session, the credentials and the request lifecycle of one client."""

    def __init__(
        self,
        *,
        api_key: Secret,
        customer_id: int,
        base_url: str | URL,
        session: aiohttp.ClientSession | None = None,
        timeout: aiohttp.ClientTimeout | float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        connection_limit: int = 100,
        deadline: float | None = DEFAULT_DEADLINE,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        trust_env: bool = False,
        proxy: str | URL | None = None,
        limits: Limits | None = None,
    ) -> None:
        timeout = _checked_timeout(timeout)
        _check_type(session, aiohttp.ClientSession, "session", "an aiohttp.ClientSession")
        _check_type(retry, RetryPolicy, "retry", "a flinkey_async.RetryPolicy")
        _check_type(limits, Limits, "limits", "a flinkey_async.limits.Limits")
        if type(trust_env) is not bool:
            raise TypeError(f"trust_env must be a bool, got {type(trust_env).__name__}")
        if not isinstance(connection_limit, int):
            raise TypeError(
                f"connection_limit must be an int, got {type(connection_limit).__name__}"
            )
        if isinstance(connection_limit, bool) or connection_limit < 0:
            raise ValidationError(
                "connection_limit", f"must be an int >= 0 (0: no limit), got {connection_limit!r}"
            )
        check_seconds(
            deadline, "deadline", low=">0", finite=False, optional=True, wrong_type=TypeError
        )
        proxy_url = _checked_proxy(proxy)
        self._api_key = api_key
        self.customer_id = customer_id
        self._customer_text = str(customer_id)
        try:
            base = URL(base_url) if isinstance(base_url, str) else base_url
        except (TypeError, ValueError) as exc:
            raise ValueError(f"base_url is not a URL: {exc}") from None
        if not isinstance(base, URL):
            raise TypeError(f"base_url must be a str or yarl.URL, got {type(base).__name__}")
        if not base.is_absolute() or base.scheme not in ("http", "https") or not base.host:
            raise ValueError(f"base_url must be an absolute http(s) URL, got {str(base)!r}")
        if base.query_string or base.fragment or base.user or base.password:
            raise ValueError("base_url must not carry a query, a fragment or credentials")
        self.base_url = base
        self._base_text = str(base).rstrip("/")
        self._urls: dict[tuple[Any, str | None], URL] = {}  # shared with the views: same base
        if type(max_response_bytes) is not int or max_response_bytes < 1:
            raise ValueError(
                f"max_response_bytes must be a positive int, got {max_response_bytes!r}"
            )
        self._http_session = session
        self._owns_session = session is None
        self._timeout = timeout
        self.retry = retry if retry is not None else RetryPolicy()
        self._connection_limit = connection_limit
        self.deadline = deadline
        self.max_response_bytes = max_response_bytes
        self.trust_env = trust_env
        self._proxy: URL | None = proxy_url
        self._proxy_resolved = proxy is not None or not trust_env
        # A caller's session keeps its own middlewares; ours runs after them.
        self._middlewares: tuple[Any, ...] | None = None
        if session is not None:
            self._middlewares = (*getattr(session, "_middlewares", ()), _no_hidden_resend)
        self.token_provider: TokenProvider | None = None
        #: The client-side limits (concurrency, rate, retry budget), shared with every view.
        self.limiter = Limiter(limits if limits is not None else Limits())
        #: The pipeline that owns the connection pool and the token (itself, unless this is a
        #: view for another customer made by :meth:`for_customer`).
        self._root: Pipeline = self
        self._closed_flag = False
        self._clock: Callable[[], float] | None = None  # the loop's clock (see _call)
        self._watches: _Watches | None = None  # the loop's total timeouts (see _Watches)
        self._inflight = 0
        self._idle: asyncio.Event | None = None
        self._rng = random.Random()
        # The provider's token as last seen, its Authorization header, and the id() of the
        # string they were made from (0: none yet; no object has id 0).
        self._last_token = Secret("-")
        self._last_auth = RedactedHeaders()
        self._last_token_id = 0
        # The headers every request starts from. The API key goes with each request, never
        # into the session's defaults: aiohttp also writes those into the CONNECT request of
        # an https:// tunnel, which the proxy reads in clear text. The harmless headers that
        # never change are, on our own session, its defaults (aiohttp merges them without a
        # Python loop per header); a caller's session gets them with every request.
        plain = {"Accept": "application/json"}
        self._session_headers = RedactedHeaders({"User-Agent": _USER_AGENT, **plain})
        self._header_template = RedactedHeaders({API_KEY_HEADER: api_key.reveal()})
        if session is not None:
            self._header_template.update(plain)
        self._scoped_template = RedactedHeaders(self._header_template)
        self._scoped_template[CUSTOMER_ID_HEADER] = self._customer_text
        # Whether the first attempt of a call can use the configured timeout as it is (its
        # total is within the deadline), without working out the time left.
        self._timeout_within_deadline = deadline is None or (
            timeout.total is not None and timeout.total <= deadline
        )
        # The first attempt's total when the pipeline keeps it (see _Watches) and the
        # configured timeout applies as it is (other attempts: _watchable_total), and the
        # timeout aiohttp is given for a kept total: the same without the total.
        self._watched_total = (
            timeout.total
            if self._timeout_within_deadline
            and timeout.total is not None
            and timeout.total > timeout.ceil_threshold
            else None
        )
        self._unwatched_timeout = attrs.evolve(timeout, total=None)

    # -- session lifecycle -------------------------------------------------------------------
    @property
    def _closed(self) -> bool:
        return self._closed_flag or self._root._closed_flag

    def for_customer(self, customer_id: int) -> Pipeline:
        """A view of this pipeline that sends another ``Customer-ID``: it shares the
        connection pool, the token, the retry policy and the limits; closing this pipeline
        closes the view too (closing the view closes only the view)."""
        view = copy.copy(self)
        view.customer_id = customer_id
        view._customer_text = str(customer_id)
        view._scoped_template = RedactedHeaders(self._header_template)
        view._scoped_template[CUSTOMER_ID_HEADER] = view._customer_text
        view._root = self._root
        view._closed_flag = False
        return view

    def _http(self) -> aiohttp.ClientSession:
        # While the client is closing, the calls already in flight (one that waited for its
        # token, say) still get the session until aclose() lets it go; new calls are refused
        # by _call().
        session = self._root._http_session
        if session is not None:
            return session
        if self._closed:
            raise ClientClosedError("this FlinkeyClient is closed")
        root = self._root
        if root is not self:
            return root._http()
        if not self._proxy_resolved:
            self._resolve_proxy()
        if self._http_session is None:
            session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._connection_limit, keepalive_timeout=15),
                headers=self._session_headers,
            )
            if isinstance(getattr(session, "_retry_connection", None), bool):
                # aiohttp's own switch for its hidden resend (its test client turns it off the
                # same way): cheaper than the middleware, which a caller's session gets.
                session._retry_connection = False
            else:
                self._middlewares = _MIDDLEWARES
            self._http_session = session
        return self._http_session

    def _loop_clock(self) -> Callable[[], float]:
        """The running loop's clock, kept by the root pipeline with the loop's
        :class:`_Watches` (its session is bound to that loop): ``time.monotonic`` itself where
        the loop's ``time()`` is asyncio's, which returns just that, so that reading it costs
        no Python call; else ``loop.time``."""
        loop = asyncio.get_running_loop()
        root = self._root
        root._watches = _Watches(loop)
        clock = root._clock = (
            time.monotonic if type(loop).time is asyncio.BaseEventLoop.time else loop.time
        )
        return clock

    def _resolve_proxy(self) -> None:
        """``trust_env=True``: the proxy for the base URL from ``HTTPS_PROXY``/``HTTP_PROXY``
        and ``NO_PROXY`` (and its credentials from ``.netrc``), read once."""
        self._proxy_resolved = True
        try:
            proxy, auth = get_env_proxy_for_url(self.base_url)
        except (LookupError, ValueError, OSError):
            return
        if proxy is not None and auth is not None:
            # In the URL, as with an explicit proxy= (aiohttp 3.14 deprecates proxy_auth=, and
            # a Proxy-Authorization in proxy_headers= reaches only an https target's tunnel).
            proxy = proxy.with_user(auth.login).with_password(auth.password)
        self._proxy = proxy

    async def aclose(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Refuse new requests, let those in flight finish (up to ``timeout`` seconds), then
        close the aiohttp session if this pipeline created it (a caller's session stays open).
        A view made by :meth:`for_customer` only stops accepting requests."""
        self._closed_flag = True
        if self._root is not self:
            return
        if self._inflight:  # calls waiting for their token count too
            idle = self._idle = self._idle or asyncio.Event()
            try:
                async with asyncio.timeout(timeout):
                    await idle.wait()
            except TimeoutError:
                logger.warning(
                    "closing the client with %d requests still in flight", self._inflight
                )
        # Then a token fetch still running (past the timeout) is cancelled: its waiters get
        # ClientClosedError (see _token).
        provider_close = getattr(self.token_provider, "aclose", None)
        if provider_close is not None:
            await provider_close()
        session, self._http_session = self._http_session, None
        if self._watches is not None:
            self._watches.close()
        if session is not None and self._owns_session:
            await session.close()

    # -- URL building --------------------------------------------------------------------------
    def url(self, segments: Sequence[str | int], query: str | None = None) -> URL:
        """The base URL plus path segments, each encoded by :func:`encode_segment` (so none
        can change the path), plus an already-encoded query string.

        URLs made from a tuple of segments are kept (up to 4,096 per client; ids reach here
        validated, so a ``True`` never stands in for a ``1``): a request for the same resource
        again skips building and parsing its URL."""
        key = None
        if segments.__class__ is tuple:
            key = (segments, query)
            found = self._urls.get(key)
            if found is not None:
                return found
        encoded = _ENCODED_SEGMENTS
        text = self._base_text
        for s in segments:  # a plain loop: no comprehension frame on the hot path
            text += f"/{s}" if s.__class__ is int else "/" + (encoded.get(s) or _encode_and_keep(s))  # type: ignore[arg-type]
        if query:
            text = f"{text}?{query}"
        url = URL(text, encoded=True)
        if key is not None:
            urls = self._urls
            if len(urls) >= _MAX_URLS:
                urls.clear()
            urls[key] = url
        return url

    # -- token endpoint ------------------------------------------------------------------------
    async def fetch_token(self, username: str, password: Secret) -> TokenResponse:
        """``POST /oauth2/token`` with the password grant (form body, API-key header only)."""
        headers = self._headers(customer_scoped=False)
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        refused: FlinkeyApiError | None = None
        try:
            response = await self._call(
                "POST",
                self.url(("oauth2", "token")),
                headers,
                _token_form(username, password),
                ("oauth2", "token"),
                authenticate=False,
            )
        except FlinkeyApiError as exc:
            # A server may echo the form it was sent: what is raised masks the password and
            # the API key, and is raised outside the handler (no chained exception keeps the
            # original).
            refused = _token_refusal(exc, password, self._api_key)
        if refused is not None:
            raise refused
        # No local of this frame (nor of parse_token_response's) holds the parsed answer.
        return parse_token_response(_token_json(response.body))

    # -- the request pipeline ------------------------------------------------------------------
    def request(
        self,
        method: str,
        segments: Sequence[str | int],
        *,
        query: str | None = None,
        json_bytes: bytes | None = None,
        customer_scoped: bool = True,
    ) -> Coroutine[Any, Any, Response]:
        """Send one API request (``await`` it) and return its 2xx response; raise a typed error
        otherwise.

        A body, ``json_bytes``, is sent with ``Content-Type: application/json``;
        ``customer_scoped=False`` leaves out the ``Customer-ID`` header. (A plain function
        returning the call's coroutine: one level of ``await`` less on the hot path.)
        """
        headers = self._headers(customer_scoped)
        if json_bytes is not None:
            headers["Content-Type"] = "application/json"
        return self._call(method, self.url(segments, query), headers, json_bytes, segments)

    def get(
        self,
        segments: Sequence[str | int],
        model: Any,
        *,
        query: str | None = None,
        customer_scoped: bool = True,
    ) -> Coroutine[Any, Any, Any]:
        """``GET`` one API resource and decode its body into ``model`` (a model class or
        ``list[Model]``), as one coroutine (``await`` it)."""
        headers = RedactedHeaders(  # what _headers() makes, without its frame
            self._scoped_template if customer_scoped else self._header_template
        )
        # A URL made before (see url()), found without url()'s frame.
        url = self._urls.get((segments, query)) if segments.__class__ is tuple else None
        if url is None:
            url = self.url(segments, query)
        return self._call("GET", url, headers, None, segments, model=model)

    def _headers(self, customer_scoped: bool) -> RedactedHeaders:
        """A fresh copy of the headers every request starts from (with ``Customer-ID`` when
        ``customer_scoped``)."""
        return RedactedHeaders(self._scoped_template if customer_scoped else self._header_template)

    def _cached_token(self) -> Secret | None:
        """The provider's cached token, if it has one, kept with its ``Authorization``
        header (see :meth:`_remember`)."""
        provider = self.token_provider
        if provider is None:
            raise ClientClosedError("no credentials: the client is not set up")
        cached = provider.cached()
        return None if cached is None else self._remember(cached)

    async def _token(
        self, method: str, segments: Sequence[str | int], deadline_at: float | None
    ) -> Secret:
        """The bearer token, fetched from the provider (within the call's deadline) and kept
        with its ``Authorization`` header (see :meth:`_remember`)."""
        provider = self.token_provider
        if provider is None:
            raise ClientClosedError("no credentials: the client is not set up")
        try:
            async with asyncio.timeout_at(deadline_at):
                return self._remember(await provider.token())
        except asyncio.CancelledError:
            # The fetch was cancelled by the client's closing, not this call's task.
            task = asyncio.current_task()
            if not self._closed or task is None or task.cancelling():
                raise
        except TimeoutError as exc:
            if isinstance(exc, RequestTimeoutError):
                raise
            raise RequestTimeoutError(
                f"{method} {_path_text(segments)}: no access token within the client's deadline of "
                f"{self.deadline} s"
            ) from None
        raise ClientClosedError(
            f"{method} {_path_text(segments)}: the client was closed while the call waited for "
            "its access token"
        )

    def _remember(self, token: str) -> Secret:
        """``token`` as the root's last seen token (a :class:`Secret`) with its
        ``Authorization`` header, made anew only when the provider's string changed (by
        identity: the kept Secret holds the string, so its id is not reused meanwhile)."""
        root = self._root
        if id(token) != root._last_token_id:
            root._last_token = Secret(token)
            root._last_auth = RedactedHeaders({AUTHORIZATION_HEADER: "Bearer " + token})
            root._last_token_id = id(token)
        return root._last_token

    async def _call(
        self,
        method: str,
        url: URL,
        headers: RedactedHeaders,
        data: bytes | None,
        segments: Sequence[str | int],
        *,
        authenticate: bool = True,
        model: Any = None,
    ) -> Any:
        """One call: the retry loop around single attempts; the 2xx :class:`Response`, or its
        body decoded into ``model`` when one is given.

        The deadline bounds each attempt (aiohttp's total timeout is at most the time left) and
        each wait (a retry that would start after it is not made). This is the hot path of every
        call, written as one coroutine: each level of ``await`` costs on every resumption.
        """
        root = self._root  # (self for a client, the client's pipeline for a view)
        if self._closed_flag or root._closed_flag:
            raise ClientClosedError("this FlinkeyClient is closed")
        # The clock of the loop the client's session works on, kept: asyncio.get_running_loop()
        # costs a getpid() system call per call on CPython 3.11 (its fork check).
        clock = root._clock or self._loop_clock()
        deadline_at = None if self.deadline is None else clock() + self.deadline
        attempt = 0
        refreshed = False
        # A write watched by run_bulk (and the like) is marked as perhaps sent once handed to
        # a connection, so that a cancellation tells "never sent" from "perhaps applied".
        send_mark = current_mark() if authenticate and method in _WRITE_METHODS else None
        waited = False  # for a token or a turn of the limiter
        # Calls count as in flight for aclose(); the token request does not: it serves calls
        # that count, and one nobody waits for any more is cancelled by closing at once.
        # (counted on the root: closing the client waits for its views' calls too)
        inflight = 1 if authenticate else 0
        root._inflight += inflight
        try:
            while True:
                token: Secret | None = None
                if authenticate:
                    provider = self.token_provider
                    # The provider's cached token is the one last seen (by identity: no string
                    # holding a token is kept in this frame, whose locals a traceback may show).
                    if provider is not None and id(provider.cached()) == root._last_token_id:
                        token = root._last_token
                    else:
                        token = self._cached_token()
                        if token is None:
                            token = await self._token(method, segments, deadline_at)
                            waited = True
                    headers.update(root._last_auth)  # the header of the token just kept
                failure: Failure
                error: Exception
                retry_after: float | None = None
                limiter = self.limiter
                if not limiter.try_acquire():
                    waited = True
                    if deadline_at is None:
                        await limiter.acquire()
                    else:
                        try:
                            await limiter.acquire(timeout=deadline_at - clock())
                        except TimeoutError:
                            raise RequestTimeoutError(
                                f"{method} {_path_text(segments)}: no turn within the client's "
                                f"limits before its deadline of {self.deadline} s; not sent"
                            ) from None
                debug = logger.isEnabledFor(logging.DEBUG)
                sent_at = clock() if debug else 0.0
                answer = 0
                try:
                    http = root._http_session
                    if (
                        http is None
                        or self._closed_flag
                        or root._closed_flag
                        or not root._proxy_resolved
                    ):
                        http = self._http()
                    # The attempt's total timeout: kept by the pipeline, when it can (see
                    # _Watches), else by aiohttp.
                    watch = None
                    watches = root._watches
                    # (the precomputed first attempt's, unless waiting took part of the deadline)
                    if attempt == 0 and not waited and self._timeout_within_deadline:
                        total = self._watched_total  # None: too short to round, or no total
                    else:
                        total = self._watchable_total(clock, deadline_at)
                    if total is not None and watches is not None:
                        task = current_task(watches.loop)
                        if task is not None:
                            second = ceil(clock() + total)
                            watch = watches.get(second)
                            if watch is None:  # (an empty watch is falsy: no "or" here)
                                watch = watches.open(second)
                            cancelling = task.cancelling()
                            watch.add(task)
                    if watch is not None:
                        timeout = self._unwatched_timeout
                    elif attempt == 0 and not waited and self._timeout_within_deadline:
                        timeout = self._timeout
                    else:
                        timeout = self._attempt_timeout(clock, deadline_at)
                    if send_mark is not None:
                        send_mark.handed += 1
                    # One attempt, inline (one coroutine level less on every resumption).
                    try:
                        resp = await http.request(
                            method,
                            url,
                            headers=headers,
                            data=data,
                            timeout=timeout,
                            allow_redirects=False,
                            proxy=root._proxy,
                            middlewares=root._middlewares,
                        )
                        try:
                            status = resp.status
                            ok = 200 <= status < 300
                            limit = (
                                self.max_response_bytes
                                if ok
                                else min(self.max_response_bytes, MAX_ERROR_BODY_BYTES)
                            )
                            # resp.content_length without its frame (the parser checked it)
                            response_headers = resp.headers
                            length = response_headers.get(hdrs.CONTENT_LENGTH)
                            if (
                                length is not None
                                and int(length) <= limit
                                and hdrs.CONTENT_ENCODING not in response_headers
                            ):
                                body = await resp.read()  # bounded by Content-Length
                            else:
                                body = await _read_bounded(resp, limit, truncate=not ok)
                        finally:
                            # The connection back to the pool (or closed, when the body was
                            # not read to its end), and a request body still being written
                            # cancelled: what leaving ``async with`` does, without its frames.
                            resp.release()
                    except asyncio.CancelledError as exc:
                        _scrub(exc)
                        # The watch's timer cancelled the task, and nobody else did (as
                        # asyncio.timeout() tells them apart): the attempt timed out.
                        if (
                            watch is not None
                            and watch.expired
                            and task is not None
                            and task.uncancel() <= cancelling
                        ):
                            raise TimeoutError from None
                        raise
                    except BaseException as exc:
                        _scrub(exc)
                        raise
                    finally:
                        if watch is not None:
                            watch.discard(task)
                except aiohttp.ConnectionTimeoutError:
                    if send_mark is not None:  # no connection: nothing was written
                        send_mark.handed -= 1
                    failure = "connect"
                    error = RequestTimeoutError(
                        f"{method} {_path_text(segments)}: timed out connecting to {url.host}"
                    )
                except aiohttp.ClientConnectorError as exc:
                    if send_mark is not None:
                        send_mark.handed -= 1
                    failure = "connect"
                    error = TransportError(
                        f"cannot connect to {url.host}:{url.port}: "
                        f"{exc.os_error.strerror or type(exc.os_error).__name__}"
                    )
                except _ConnectionLost as exc:
                    failure = "disconnect"
                    error = self._lost(method, segments, f"the connection broke ({exc.cause_name})")
                except TimeoutError:
                    failure = "timeout"
                    error = (
                        self._unknown(method, segments, "no answer in time", timed_out=True)
                        if method in _WRITE_METHODS
                        else RequestTimeoutError(f"{method} {_path_text(segments)} timed out")
                    )
                except (
                    aiohttp.ServerDisconnectedError,
                    aiohttp.ClientOSError,
                    aiohttp.ClientPayloadError,
                ) as exc:
                    failure = "disconnect"
                    error = self._lost(
                        method, segments, f"the answer broke off ({type(exc).__name__})"
                    )
                except _NOT_SENT as exc:
                    # Refused before the request was written: by the proxy (no tunnel), the
                    # server's certificate, or the URL itself.
                    if send_mark is not None:
                        send_mark.handed -= 1
                    failure = "disconnect"
                    error = TransportError(
                        f"{method} {_path_text(segments)}: not sent ({type(exc).__name__})"
                    )
                except aiohttp.ClientError as exc:
                    # Anything else aiohttp raises may come after the request was written (an
                    # answer it cannot parse, a header over its size limit, a connection
                    # reset while the body was going out): a write's outcome is unknown.
                    failure = "disconnect"
                    error = self._lost(
                        method, segments, f"the answer could not be read ({type(exc).__name__})"
                    )
                except (AssertionError, RuntimeError):
                    if self._closed:  # aiohttp's state after its session was closed beneath us
                        raise ClientClosedError(
                            f"{method} {_path_text(segments)}: the client was closed while the "
                            "request was in flight"
                        ) from None
                    given = root._http_session
                    if given is not None and given.closed:  # the caller's, closed by the caller
                        raise ClientClosedError(
                            f"{method} {_path_text(segments)}: the aiohttp session given to "
                            "the client (session=) is closed"
                        ) from None
                    raise
                else:
                    if send_mark is not None:
                        # Answered: it arrived, unless flinkey refused it unapplied (429; a
                        # 401 for the token, which may be refreshed and the write sent again).
                        send_mark.handed -= 1
                        if status != 429 and status != 401:
                            send_mark.sent = True
                    if status != 429:
                        answer = status  # learnt from as the slot is given back
                    if debug:
                        _log_answer(method, url, status, attempt, clock() - sent_at)
                    if ok:
                        if model is None:
                            return Response(status, response_headers, body)
                        try:
                            return decode(body, model)
                        except DecodeError as exc:
                            # The body may quote the request: its excerpt masks the credentials.
                            body = b""
                            masked = redacted(exc, self._credentials(token))
                        raise masked
                    path = _path_text(segments)
                    if 300 <= status < 400:
                        raise UnexpectedRedirectError(
                            status,
                            _origin(url, response_headers.get("Location")),
                            method=method,
                            path=path,
                        )
                    # An answer may quote the request it was sent (a gateway's debug page):
                    # the error masks the credentials, and no frame keeps the body.
                    api_error = redacted(
                        from_response(status, response_headers, body, method=method, path=path),
                        self._credentials(token),
                    )
                    body = b""
                    del resp  # (whose _body is the answer too)
                    if (
                        isinstance(api_error, InvalidTokenError)
                        and token is not None
                        and not refreshed
                        and self.token_provider is not None
                        and self.token_provider.invalidate(token.reveal())
                    ):
                        refreshed = True
                        continue
                    failure, error = status, api_error
                    if isinstance(api_error, RateLimitError):
                        retry_after = api_error.retry_after
                        limiter.answered(429, retry_after)
                finally:
                    limiter.release(answer)
                attempt += 1
                delay = self.retry.delay(method, failure, attempt, retry_after, rng=self._rng)
                if (
                    delay is None
                    or (deadline_at is not None and clock() + delay >= deadline_at)
                    or not limiter.allow_retry()
                ):
                    raise error
                logger.debug(
                    "%s %s failed (%s); retry %d in %.2fs",
                    method,
                    url.raw_path_qs,
                    failure,
                    attempt,
                    delay,
                )
                await _sleep(delay)
        finally:
            root._inflight -= inflight
            if not root._inflight and root._idle is not None:
                root._idle.set()

    def _credentials(self, token: Secret | None) -> tuple[Secret, ...]:
        """What a request carried that an answer quoting it must not show."""
        return (self._api_key,) if token is None else (self._api_key, token)

    def _lost(self, method: str, segments: Sequence[str | int], what: str) -> TransportError:
        if method in _WRITE_METHODS:
            return self._unknown(method, segments, what)
        return TransportError(f"{method} {_path_text(segments)}: connection lost ({what})")

    @staticmethod
    def _unknown(
        method: str, segments: Sequence[str | int], what: str, *, timed_out: bool = False
    ) -> OutcomeUnknownError:
        return OutcomeUnknownError(
            f"{method} {_path_text(segments)}: {what} after the request was sent; flinkey may "
            "have applied it, so it is not sent again: confirm its outcome before repeating it",
            timed_out=timed_out,
        )

    def _watchable_total(
        self, clock: Callable[[], float], deadline_at: float | None
    ) -> float | None:
        """The total of a retry or of an attempt cut by the deadline (the configured total, or
        the time left before the deadline if that is shorter), when it is long enough for
        aiohttp to round it up to a whole second, so the pipeline may keep it; else ``None``."""
        total = self._timeout.total
        if deadline_at is not None:
            remaining = deadline_at - clock()
            if total is None or remaining < total:
                total = remaining
        if total is None or total <= self._timeout.ceil_threshold:
            return None
        return total

    def _attempt_timeout(
        self, clock: Callable[[], float], deadline_at: float | None
    ) -> aiohttp.ClientTimeout:
        timeout = self._timeout
        if deadline_at is None:
            return timeout
        remaining = max(deadline_at - clock(), 0.001)
        if timeout.total is not None and timeout.total <= remaining:
            return timeout
        return attrs.evolve(timeout, total=remaining)


def _log_answer(method: str, url: URL, status: int, retries: int, seconds: float) -> None:
    """One DEBUG line per answer: method, path with its query (no secret is ever in it),
    status, attempt and duration."""
    logger.debug(
        "%s %s -> %s (attempt %d, %.1f ms)",
        method,
        url.raw_path_qs,
        status,
        retries + 1,
        seconds * 1000,
    )


def _path_text(segments: Sequence[str | int]) -> str:
    """The path of a request for messages and logs (without the base URL or a query)."""
    return "/" + "/".join(str(s) for s in segments)


async def _read_bounded(resp: aiohttp.ClientResponse, limit: int, *, truncate: bool) -> bytes:
    """The body, at most ``limit`` bytes after decompression: beyond it, the rest is cut off
    (``truncate``) or :class:`ResponseTooLargeError` is raised; either way it is never read
    into memory."""
    length = resp.content_length
    if length is not None and length > limit and not truncate:
        resp.close()
        raise ResponseTooLargeError(
            f"the response announces {length} bytes, more than the client's limit of "
            f"{limit} (max_response_bytes)"
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_chunked(_CHUNK):
        size += len(chunk)
        if size > limit:
            resp.close()
            if truncate:
                chunks.append(chunk[: len(chunk) - (size - limit)])
                break
            raise ResponseTooLargeError(
                f"the response body is larger than the client's limit of {limit} bytes "
                "(max_response_bytes, counted after decompression)"
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _token_json(body: bytes) -> Any:
    """The token answer's JSON. When it is none, a :class:`DecodeError` without an excerpt
    (the body holds the token), raised outside the handler: no chained exception keeps the
    parser's, which quotes the body, and neither does this frame."""
    with contextlib.suppress(DecodeError):
        return loads(body)
    del body
    raise DecodeError("token response is not valid JSON")


def _token_refusal(error: FlinkeyApiError, *secrets: Secret) -> FlinkeyApiError:
    """What a refused token request raises: ``error`` with ``secrets`` masked, a 400 as
    :class:`InvalidCredentialsError` (what OAuth2 servers answer a wrong password)."""
    masked = redacted(error, secrets)
    if not isinstance(masked, BadRequestError):
        return masked
    return InvalidCredentialsError(
        masked.status,
        "the token endpoint refused the API manager's username or password "
        f"({masked.message or 'no reason given'})",
        trace_id=masked.trace_id,
        method=masked.method,
        path=masked.path,
    )


def _token_form(username: str, password: Secret) -> SecretBody:
    """The password grant's form body (``application/x-www-form-urlencoded``)."""
    return SecretBody(
        urlencode(
            {"username": username, "password": password.reveal(), "grant_type": "password"}
        ).encode()
    )
