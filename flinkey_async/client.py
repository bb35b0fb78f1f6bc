"""FlinkeyClient: the entry point. Owns the request pipeline and exposes the resources.

Resources are made on first use (``client.assignments``) and share a
:class:`~flinkey_async.resources._base.Context` with the client: the pipeline and the tracker.
Nothing below the client imports it or holds it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, TypeVar, overload

import aiohttp
from yarl import URL

from ._converter import decode, loads, unstructure
from ._pipeline import (
    DEFAULT_DEADLINE,
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_TIMEOUT,
    Pipeline,
    encode_json,
)
from ._validate import check_id
from .auth import PasswordGrant, Secret, StaticToken, as_secret, is_header_safe
from .errors import ValidationError
from .limits import Limits, RequestStats
from .odata import Query, encode_component
from .operations import Tracker
from .resources import Context, Resources
from .retry import RetryPolicy

T = TypeVar("T")

__all__ = ["DEFAULT_BASE_URL", "UAT_BASE_URL", "FlinkeyClient"]

#: Production API.
DEFAULT_BASE_URL = "https://api.flinkey.de/v3"
#: flinkey's test environment (access on request from flinkey).
UAT_BASE_URL = "https://api-uat.flinkey.de/v3"


class FlinkeyClient(Resources):
    """An asyncio client for the flinkey API v3.

    Use it as ``async with FlinkeyClient(...) as client:`` or call :meth:`aclose` when done;
    create one per application and share it: it keeps one connection pool.

    Args:
        api_key: the ``flinkey-API-Key`` from the flinkey Portal's Developer page.
        customer_id: the customer database id sent as ``Customer-ID``.
        token: a bearer token obtained elsewhere (cannot be refreshed); or else
        username: an API manager's username, with ``password``: tokens are then fetched and
            refreshed automatically.
        password: that API manager's password.
        base_url: defaults to production; :data:`UAT_BASE_URL` or a sandbox URL also work.
        session: an ``aiohttp.ClientSession`` to use; the client never closes it.
        timeout: timeout of one attempt, an ``aiohttp.ClientTimeout`` or a number of seconds
            (``aiohttp.ClientTimeout(total=seconds)``); default 30 s total, 10 s to connect.
            It applies on a caller's ``session`` too.
        retry: a :class:`RetryPolicy` (default: 3 retries, never duplicating a write).
        connection_limit: size of the connection pool the client creates (``0``: no limit).
        deadline: the longest one call may take, retries, backoff and the token fetch
            included (default 60 s; ``None``: no limit beyond ``timeout`` per attempt).
        max_response_bytes: the largest response body read, counted after decompression
            (default 64 MiB); a larger one raises
            :class:`~flinkey_async.errors.ResponseTooLargeError`.
        trust_env: read the proxy for ``base_url`` from ``HTTPS_PROXY``/``HTTP_PROXY``/
            ``NO_PROXY`` (and its credentials from ``.netrc``) once, when the connection pool
            is made. Off by default: aiohttp's own ``trust_env`` costs two thread-pool round
            trips per request. Through a proxy, an ``http://`` base URL sends the API key
            and the token to the proxy in clear text; use ``https://``.
        proxy: a proxy URL for every request (instead of ``trust_env``).
        limits: :class:`~flinkey_async.limits.Limits`: requests in flight at most (64), a
            rate in requests per second (default: adaptive, learnt from the server's 429s), and
            the client-wide retry budget.
        tracker: an :class:`~flinkey_async.webhooks.OperationTracker` fed by a webhook
            receiver; writes are then confirmed by flinkey's webhooks. Without one,
            ``PendingOperation.wait()`` polls the read endpoints. Also settable later as
            :attr:`tracker`.
    """

    def __init__(
        self,
        api_key: str | Secret,
        customer_id: int,
        *,
        token: str | Secret | None = None,
        username: str | None = None,
        password: str | Secret | None = None,
        base_url: str | URL = DEFAULT_BASE_URL,
        session: aiohttp.ClientSession | None = None,
        timeout: aiohttp.ClientTimeout | float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        connection_limit: int = 100,
        tracker: Tracker | None = None,
        deadline: float | None = DEFAULT_DEADLINE,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        trust_env: bool = False,
        proxy: str | URL | None = None,
        limits: Limits | None = None,
    ) -> None:
        # Credentials are wrapped first, so that no frame of ours holds them as plain strings
        # (a traceback printed with its locals, an error tracker capturing frames).
        key = as_secret(api_key, "api_key")
        token_secret = as_secret(token, "token")
        password_secret = as_secret(password, "password")
        del api_key, token, password
        if not key or not is_header_safe(key.reveal()):
            raise ValidationError(
                "api_key",
                "must be a non-empty string of printable ASCII "
                "characters without spaces (as sent in a header)",
            )
        check_id(customer_id, "customer_id")
        if token_secret is not None and (username is not None or password_secret is not None):
            raise TypeError("give either token= or username= and password=, not both")
        if token_secret is None and (not username or not password_secret):
            raise TypeError("credentials missing: give token= or both username= and password=")
        _check_tracker(tracker)
        pipeline = Pipeline(
            api_key=key,
            customer_id=customer_id,
            base_url=base_url,
            session=session,
            timeout=timeout,
            retry=retry,
            connection_limit=connection_limit,
            deadline=deadline,
            max_response_bytes=max_response_bytes,
            trust_env=trust_env,
            proxy=proxy,
            limits=limits,
        )
        if token_secret is not None:
            pipeline.token_provider = StaticToken(token_secret)
        else:
            assert username is not None and password_secret is not None
            pipeline.token_provider = PasswordGrant(username, password_secret, pipeline.fetch_token)
        self._pipeline = pipeline
        self._context = Context(pipeline, tracker)

    @property
    def tracker(self) -> Tracker | None:
        """The :class:`~flinkey_async.webhooks.OperationTracker` that confirms writes from
        webhooks, or ``None`` (``PendingOperation.wait()`` then polls). Setting it affects
        writes sent afterwards."""
        return self._context.tracker

    @tracker.setter
    def tracker(self, value: Tracker | None) -> None:
        _check_tracker(value)
        self._context.tracker = value

    @property
    def stats(self) -> RequestStats:
        """What this client (and its views) did so far: requests, 429s, retries."""
        return self._pipeline.limiter.stats

    @property
    def customer_id(self) -> int:
        """The ``Customer-ID`` this client sends."""
        return self._pipeline.customer_id

    @property
    def base_url(self) -> URL:
        """The API's base URL."""
        return self._pipeline.base_url

    def for_customer(self, customer_id: int) -> FlinkeyClient:
        """A client for another customer of the same API manager: it sends ``customer_id`` as
        its ``Customer-ID`` and shares this client's connection pool, token, retry policy,
        limits and tracker. Closing this client closes every view; closing a view only stops
        the view (its calls then raise :class:`~flinkey_async.errors.ClientClosedError`)."""
        check_id(customer_id, "customer_id")
        view = object.__new__(type(self))
        view._pipeline = self._pipeline.for_customer(customer_id)
        view._context = Context(view._pipeline, self._context.tracker)
        return view

    @overload
    async def request(
        self,
        method: str,
        path: str | Sequence[str | int],
        *,
        query: Query | Mapping[str, str | int] | None = None,
        json: Any = None,
        model: type[T],
        customer_scoped: bool = True,
    ) -> T: ...

    @overload
    async def request(
        self,
        method: str,
        path: str | Sequence[str | int],
        *,
        query: Query | Mapping[str, str | int] | None = None,
        json: Any = None,
        model: None = None,
        customer_scoped: bool = True,
    ) -> Any: ...

    async def request(
        self,
        method: str,
        path: str | Sequence[str | int],
        *,
        query: Query | Mapping[str, str | int] | None = None,
        json: Any = None,
        model: type[Any] | None = None,
        customer_scoped: bool = True,
    ) -> Any:
        """Call any endpoint through the same pipeline as the resource methods (auth, limits,
        retries, deadline, bounded reads, typed errors) — for operations the SDK has no method
        for (see the operations table in the docs).

        Args:
            method: ``GET``, ``PUT``, ``PATCH``, ``DELETE`` or ``POST``.
            path: below the base URL: ``"cars/7/events"`` (split at ``/``) or segments
                ``("brands", "VW/Audi")`` (each one segment, whatever it contains).
            query: a :class:`~flinkey_async.Query`, or name/value pairs (encoded here).
            json: a JSON-ready body (attrs models are written by the converter), sent with
                ``Content-Type: application/json``.
            model: decode a 2xx body into this type (a model or ``list[Model]``); without
                it, the parsed JSON is returned (``None`` for an empty body).
            customer_scoped: send the ``Customer-ID`` header (default) or not.

        Writes sent this way are not confirmed: the SDK does not know what they do. The same
        rules as everywhere apply: a write is never repeated after it may have arrived.
        """
        verb = method.upper() if isinstance(method, str) else method
        if verb not in ("GET", "PUT", "PATCH", "DELETE", "POST"):
            raise ValidationError(
                "method", f"must be GET, PUT, PATCH, DELETE or POST, got {method!r}"
            )
        if isinstance(path, str):
            segments: Sequence[str | int] = [
                _segment(part) for part in path.strip("/").split("/") if part
            ]
        elif isinstance(path, Sequence) and not isinstance(path, bytes | bytearray | memoryview):
            segments = [_segment(part) for part in path]
        else:
            raise TypeError(
                f"path must be a str or a sequence of str and int segments, "
                f"got {type(path).__name__}"
            )
        if not segments:
            raise ValidationError("path", "needs at least one segment below the base URL")
        if isinstance(query, Query):
            query_text: str | None = query.encoded() or None
        elif isinstance(query, Mapping):
            query_text = (
                "&".join(
                    f"{encode_component(_query_name(name))}={encode_component(_query_value(value))}"
                    for name, value in query.items()
                )
                or None
            )
        elif query is None:
            query_text = None
        else:
            raise TypeError(
                "query must be a flinkey_async.Query, a mapping of names to values or None, "
                f"got {type(query).__name__}"
            )
        body = None if json is None else _encode_body(json)
        response = await self._pipeline.request(
            verb, segments, query=query_text, json_bytes=body, customer_scoped=customer_scoped
        )
        if model is not None:
            return decode(response.body, model)
        return loads(response.body) if response.body.strip() else None

    async def aclose(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Close the client: new calls raise :class:`~flinkey_async.errors.ClientClosedError`,
        calls in flight get up to ``timeout`` seconds to finish, then the connection pool is
        closed (a caller-supplied session is left open)."""
        await self._pipeline.aclose(timeout)

    async def __aenter__(self) -> FlinkeyClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        pipeline = getattr(self, "_pipeline", None)
        if pipeline is None:  # a constructor that raised: repr must still work
            return "FlinkeyClient(<not set up>)"
        return (
            f"FlinkeyClient(base_url={str(pipeline.base_url)!r}, "
            f"customer_id={pipeline.customer_id})"
        )

    def __reduce__(self) -> Any:
        raise TypeError(
            "a FlinkeyClient cannot be pickled: it holds credentials and a "
            "connection pool; make one per process"
        )


def _check_tracker(tracker: object) -> None:
    """``tracker=``: ``None`` or an object with the :class:`~flinkey_async.operations.Tracker`
    methods (``expect``, ``discard``, ``wait``)."""
    if tracker is not None and not all(
        callable(getattr(tracker, name, None)) for name in ("expect", "discard", "wait")
    ):
        raise TypeError(
            "tracker must be an OperationTracker (an object with expect(), discard() and "
            f"wait()) or None, got {type(tracker).__name__}"
        )


def _segment(part: object) -> str | int:
    """One path segment of :meth:`FlinkeyClient.request`: a non-empty ``str`` or an ``int``
    (not a ``bool``), as its plain value (a subclass's ``__str__`` is not asked)."""
    if isinstance(part, str):
        text = str.__str__(part)
        if not text:
            raise ValidationError("path", "a path segment must not be empty")
        try:
            text.encode()
        except UnicodeEncodeError:
            raise ValidationError(
                "path", "a path segment is not valid Unicode (lone surrogate)"
            ) from None
        return text
    if isinstance(part, int) and not isinstance(part, bool):
        return int.__int__(part)
    raise TypeError(f"path segments must be str or int, got {type(part).__name__}")


def _query_name(name: object) -> str:
    if not isinstance(name, str):
        raise TypeError(f"query names must be str, got {type(name).__name__}")
    return str.__str__(name)


def _query_value(value: object) -> str:
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return int.__repr__(value)
    raise TypeError(f"query values must be str or int, got {type(value).__name__}")


def _encode_body(json: Any) -> bytes:
    """The ``json=`` body of :meth:`FlinkeyClient.request` as JSON bytes; what JSON cannot
    express raises :class:`ValidationError` (or ``TypeError`` for a value of no JSON type)
    before anything is sent."""
    try:
        return encode_json(unstructure(json))
    except ValidationError:
        raise
    except RecursionError:
        raise ValidationError("json", "is nested too deeply to be encoded") from None
    except UnicodeEncodeError:
        raise ValidationError(
            "json", "holds text that is not valid Unicode (lone surrogate)"
        ) from None
    except ValueError as exc:
        if "Out of range float" in str(exc):
            raise ValidationError(
                "json", "holds NaN or an infinite number, which JSON cannot express"
            ) from None
        raise ValidationError("json", f"cannot be encoded as JSON: {exc}") from None
    except TypeError as exc:
        raise TypeError(f"json must be JSON-ready data: {exc}") from None
