"""The session layer: the one place that talks to the network.

One request goes through :meth:`SessionLayer.request`: URL from the base URL and path segments
(each segment percent-encoded by yarl, so an argument can never change the path), the encoded
OData query appended verbatim (``URL(..., encoded=True)``: ``%20`` stays ``%20``, nothing is
encoded twice), the three auth headers, the JSON body, the timeout, the retry loop (decisions
from :class:`~flinkey_async.retry.RetryPolicy`), one token refresh after a 401 "Access token is
missing or invalid", and the mapping of errors (:func:`~flinkey_async.errors.from_response`).

Logging (logger ``flinkey_async``) records method, path and status at DEBUG, and retries at
INFO. It never records headers, bodies or query strings, so no secret reaches a log.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import aiohttp
import attrs
from yarl import URL

from . import __version__
from ._converter import decode
from .auth import Secret, TokenProvider, TokenResponse, parse_token_response
from .errors import (
    DecodeError,
    InvalidTokenError,
    RateLimitError,
    RequestTimeoutError,
    TransportError,
    from_response,
)
from .retry import Failure, RetryPolicy

__all__ = ["DEFAULT_TIMEOUT", "Response", "SessionLayer"]

T = TypeVar("T")

logger = logging.getLogger("flinkey_async")

#: 30 s for a whole request, 10 s to connect.
DEFAULT_TIMEOUT: aiohttp.ClientTimeout = aiohttp.ClientTimeout(total=30, connect=10)

_USER_AGENT = f"flinkey_async/{__version__}"


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


class RedactedHeaders(dict[str, str]):
    """Request headers whose ``repr`` masks the credentials, so that a debugger, a traceback
    printed with its local variables or an error tracker capturing frames shows no secret."""

    SENSITIVE = frozenset({"flinkey-api-key", "authorization"})

    def __repr__(self) -> str:
        shown = {k: ("***" if k.lower() in self.SENSITIVE else v) for k, v in self.items()}
        return f"RedactedHeaders({shown!r})"

    __str__ = __repr__


def encode_json(body: Any) -> bytes:
    """Compact JSON bytes, as sent on the wire."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


class SessionLayer:
    """Owns the aiohttp session, the credentials and the request pipeline of one client."""

    def __init__(
        self,
        *,
        api_key: str,
        customer_id: int,
        base_url: str | URL,
        session: aiohttp.ClientSession | None = None,
        timeout: aiohttp.ClientTimeout = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        connection_limit: int = 100,
    ) -> None:
        self._api_key = Secret(api_key)
        self.customer_id = customer_id
        base = URL(base_url) if isinstance(base_url, str) else base_url
        if not base.is_absolute() or base.scheme not in ("http", "https"):
            raise ValueError(f"base_url must be an absolute http(s) URL, got {str(base)!r}")
        self.base_url = base
        self._session = session
        self._owns_session = session is None
        self._timeout = timeout
        self.retry = retry if retry is not None else RetryPolicy()
        self._connection_limit = connection_limit
        self.token_provider: TokenProvider | None = None
        self._closed = False
        self._rng = random.Random()

    # -- session lifecycle -------------------------------------------------------------------
    def _http(self) -> aiohttp.ClientSession:
        if self._closed:
            raise RuntimeError("this FlinkeyClient is closed")
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._connection_limit, keepalive_timeout=15),
                headers={"User-Agent": _USER_AGENT},
                trust_env=True,
            )
        return self._session

    async def aclose(self) -> None:
        """Close the aiohttp session if this layer created it (a caller's session stays open)."""
        self._closed = True
        session, self._session = self._session, None
        if session is not None and self._owns_session:
            await session.close()

    # -- URL building --------------------------------------------------------------------------
    def url(self, segments: Sequence[str | int], query: str | None = None) -> URL:
        """The base URL plus encoded path segments, plus an already-encoded query string."""
        url = self.base_url.joinpath(*(str(s) for s in segments)) if segments else self.base_url
        if query:
            return URL(f"{url}?{query}", encoded=True)
        return url

    # -- token endpoint ------------------------------------------------------------------------
    async def fetch_token(self, username: str, password: Secret) -> TokenResponse:
        """``POST /oauth2/token`` with the password grant (form body, API-key header only)."""
        url = self.url(("oauth2", "token"))
        headers = self._base_headers()
        form = aiohttp.FormData({"username": username, "password": password.reveal(),
                                 "grant_type": "password"})
        response = await self._send_with_retry(
            "POST", url, headers=headers, data=form(), path="/oauth2/token", authenticate=False,
        )
        try:
            data = json.loads(response.body)
        except ValueError:
            raise DecodeError("token response is not valid JSON") from None
        return parse_token_response(data)

    # -- the request pipeline ------------------------------------------------------------------
    async def request(
        self,
        method: str,
        segments: Sequence[str | int],
        *,
        query: str | None = None,
        json_bytes: bytes | None = None,
    ) -> Response:
        """Send one API request and return its 2xx response; raise a typed error otherwise.

        A body, ``json_bytes``, is sent with ``Content-Type: application/json``.
        """
        url = self.url(segments, query)
        path = "/" + "/".join(str(s) for s in segments)
        headers = self._base_headers()
        headers["Customer-ID"] = str(self.customer_id)
        if json_bytes is not None:
            headers["Content-Type"] = "application/json"
        return await self._send_with_retry(method, url, headers=headers, data=json_bytes,
                                           path=path)

    def _base_headers(self) -> RedactedHeaders:
        return RedactedHeaders({"flinkey-API-Key": self._api_key.reveal(),
                                "Accept": "application/json"})

    async def _send_with_retry(
        self,
        method: str,
        url: URL,
        *,
        headers: RedactedHeaders,
        data: Any,
        path: str,
        authenticate: bool = True,
    ) -> Response:
        attempt = 0
        refreshed = False
        while True:
            token: Secret | None = None
            if authenticate:
                if self.token_provider is None:
                    raise RuntimeError("no credentials: give a token or a username and password")
                token = Secret(await self.token_provider.token())
                headers["Authorization"] = "Bearer " + token.reveal()
            failure: Failure
            error: Exception
            retry_after: float | None = None
            try:
                response = await self._send_once(method, url, headers, data)
            except aiohttp.ConnectionTimeoutError:
                failure = "connect"
                error = RequestTimeoutError(f"{method} {path}: timed out connecting to {url.host}")
            except aiohttp.ClientConnectorError as exc:
                failure = "connect"
                error = TransportError(f"cannot connect to {url.host}:{url.port}: "
                                       f"{exc.os_error.strerror or type(exc.os_error).__name__}")
            except TimeoutError:
                failure = "timeout"
                error = RequestTimeoutError(f"{method} {path} timed out")
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError,
                    aiohttp.ClientPayloadError) as exc:
                failure = "disconnect"
                error = TransportError(f"{method} {path}: connection lost ({type(exc).__name__})")
            except aiohttp.ClientError as exc:
                failure = "disconnect"
                error = TransportError(f"{method} {path}: {type(exc).__name__}")
            else:
                status = response.status
                logger.debug("%s %s -> %s", method, path, status)
                if 200 <= status < 300:
                    return response
                api_error = from_response(status, response.headers, response.body,
                                          method=method, path=path)
                if (isinstance(api_error, InvalidTokenError) and token is not None
                        and not refreshed and self.token_provider is not None
                        and self.token_provider.invalidate(token.reveal())):
                    refreshed = True
                    continue
                failure, error = status, api_error
                if isinstance(api_error, RateLimitError):
                    retry_after = api_error.retry_after
            attempt += 1
            delay = self.retry.delay(method, failure, attempt, retry_after, rng=self._rng)
            if delay is None:
                raise error
            logger.info("%s %s failed (%s); retry %d in %.2fs", method, path, failure, attempt,
                        delay)
            await asyncio.sleep(delay)

    async def _send_once(
        self, method: str, url: URL, headers: Mapping[str, str], data: Any
    ) -> Response:
        async with self._http().request(method, url, headers=headers, data=data,
                                        timeout=self._timeout) as resp:
            body = await resp.read()
            return Response(resp.status, resp.headers, body)
