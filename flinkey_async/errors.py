"""Exception hierarchy of flinkey_async.

Everything the SDK raises derives from :class:`FlinkeyError`:

``FlinkeyError``
    ``ValidationError`` (also a ``ValueError``): an argument was rejected before anything was sent.
    ``FlinkeyApiError``: the API answered with a non-2xx status. Carries ``status``, ``message``
    and ``trace_id``. One subclass per documented status:
    ``BadRequestError`` (400), ``AuthenticationError`` (401; split into ``InvalidApiKeyError``
    and ``InvalidTokenError``; and ``InvalidCredentialsError`` for a refused username or
    password at the token endpoint), ``PermissionDeniedError`` (403), ``NotFoundError`` (404),
    ``ConflictError`` (409; the documented texts of ``PUT /installations`` split into
    ``ProductAlreadyInstalledError``, ``ProductHasNoServiceError`` and
    ``ProductTypeAlreadyInstalledError``), ``UnsupportedMediaTypeError`` (415),
    ``RateLimitError`` (429, with ``retry_after``), ``ServerError`` (5xx).
    ``UnexpectedRedirectError`` (a ``FlinkeyApiError``): the API answered with a 3xx; the SDK
    never follows redirects (flinkey documents none, and credentials never leave its origin).
    ``DecodeError``: a 2xx body did not have the documented shape (``ResponseTooLargeError``:
    it was larger than the client's limit).
    ``TransportError``: the request did not complete (connection refused or reset, ...);
    ``RequestTimeoutError`` when it timed out; ``OutcomeUnknownError`` when a write may have
    reached the server before the connection broke or the time ran out (it is never sent
    again: check its outcome); ``ClientClosedError`` when the client was closed.
    ``OperationError``: an asynchronous write was not confirmed as applied
    (``OperationFailedError`` with the server's ``errorMessage``, ``OperationTimeoutError``).
    ``WebhookError``: an incoming webhook was rejected (``WebhookAuthenticationError``,
    ``WebhookPayloadError``).
    ``RedisUnavailableError``: Redis, which holds what processes share, could not be reached
    or did not answer in time.

:func:`from_response` is pure: it maps a status line, headers and body to the right exception, so
it can be tested (and reused by other transports) without any I/O. Exception texts never contain
request headers, so credentials cannot leak through them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import orjson

__all__ = [
    "AuthenticationError",
    "BadRequestError",
    "ClientClosedError",
    "ConflictError",
    "DecodeError",
    "FlinkeyApiError",
    "FlinkeyError",
    "InvalidApiKeyError",
    "InvalidCredentialsError",
    "InvalidTokenError",
    "NotFoundError",
    "OperationError",
    "OperationFailedError",
    "OperationTimeoutError",
    "OutcomeUnknownError",
    "PermissionDeniedError",
    "ProductAlreadyInstalledError",
    "ProductHasNoServiceError",
    "ProductTypeAlreadyInstalledError",
    "RateLimitError",
    "JournalError",
    "RedisUnavailableError",
    "RequestTimeoutError",
    "ResponseTooLargeError",
    "ServerError",
    "TransportError",
    "UnexpectedRedirectError",
    "UnsupportedMediaTypeError",
    "ValidationError",
    "WebhookAuthenticationError",
    "WebhookError",
    "WebhookPayloadError",
    "excerpt",
    "from_response",
    "parse_retry_after",
]

#: How many characters of an unexpected body an exception shows.
EXCERPT_CHARS = 200
#: How many characters of an error answer's message (or body) an exception shows.
MESSAGE_CHARS = 1000


class FlinkeyError(Exception):
    """Base class of every exception raised by flinkey_async.

    Every subclass pickles and unpickles with its attributes (for task queues and process
    pools), whatever its constructor's signature.
    """

    #: For an ambiguous write (a 5xx, a timeout, a connection broken after sending), the
    #: :class:`~flinkey_async.PendingOperation` that can still be awaited; else ``None``.
    operation: Any = None

    def __reduce__(self) -> tuple[Any, ...]:
        # The operation holds a probe bound to a live client: it stays in this process.
        state = dict(self.__dict__)
        if "operation" in state:
            state["operation"] = None
        return (_rebuild, (type(self), self.args, state))


def _rebuild(cls: type[FlinkeyError], args: tuple[Any, ...], state: dict[str, Any]) -> FlinkeyError:
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


class ValidationError(FlinkeyError, ValueError):
    """An argument was rejected on the client side; nothing was sent.

    ``argument`` names the offending argument (for example ``"lifetime"`` or ``"end"``).
    """

    def __init__(self, argument: str, message: str) -> None:
        self.argument = argument
        self.message = message
        super().__init__(f"{argument}: {message}")


class FlinkeyApiError(FlinkeyError):
    """The API answered with a non-2xx status.

    Attributes:
        status: the HTTP status code (from the status line, never from the body).
        message: the server's message, or the raw body text when it had no message field
            (at most 1000 characters, then ``…``).
        trace_id: the ``traceId`` of a problem-details body, when the server sent one.
        method, path: what was requested (no query string, no headers), when known.
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        trace_id: str | None = None,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        self.status = status
        self.message = message
        self.trace_id = trace_id
        self.method = method
        self.path = path
        super().__init__(self._describe())

    def _describe(self) -> str:
        where = f" on {self.method} {self.path}" if self.method and self.path else ""
        trace = f" (trace id {self.trace_id})" if self.trace_id else ""
        return f"HTTP {self.status}{where}: {self.message or '<empty body>'}{trace}"


class BadRequestError(FlinkeyApiError):
    """400: the server rejected the request as invalid."""


class AuthenticationError(FlinkeyApiError):
    """401: the API key or the access token was rejected."""


class InvalidApiKeyError(AuthenticationError):
    """401 with "invalid subscription key": check the ``flinkey-API-Key``."""


class InvalidTokenError(AuthenticationError):
    """401 with "Access token is missing or invalid": the bearer token was rejected."""


class InvalidCredentialsError(AuthenticationError):
    """The token endpoint refused the API manager's username or password (flinkey documents
    no answer for this; OAuth2 servers answer 400 ``invalid_grant``, whatever the status,
    ``except AuthenticationError`` catches it)."""


class PermissionDeniedError(FlinkeyApiError):
    """403: the credentials are valid but not allowed to do this."""


class NotFoundError(FlinkeyApiError):
    """404: the manager, customer, car, user or assignment does not exist (see ``message``)."""


class ConflictError(FlinkeyApiError):
    """409: the request conflicts with the current state."""


class ProductAlreadyInstalledError(ConflictError):
    """409 "The product is already installed into a car." (``PUT /installations``): uninstall
    it from that car first."""


class ProductHasNoServiceError(ConflictError):
    """409 "The product has no service assigned." (``PUT /installations``): pair a service
    with the product first (``client.pairings.pair``)."""


class ProductTypeAlreadyInstalledError(ConflictError):
    """409 "There is already installed a product of the same type in the car."
    (``PUT /installations``): a car holds one product of each type."""


class UnsupportedMediaTypeError(FlinkeyApiError):
    """415: a body was sent without ``Content-Type: application/json``."""


class RateLimitError(FlinkeyApiError):
    """429: rate limit exceeded. ``retry_after`` is the wait in seconds the server asked for,
    from the ``Retry-After`` header or the "Try again in N seconds" text, else ``None``."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        retry_after: float | None = None,
        trace_id: str | None = None,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        self.retry_after = retry_after
        super().__init__(status, message, trace_id=trace_id, method=method, path=path)


class ServerError(FlinkeyApiError):
    """5xx: the server failed."""


class UnexpectedRedirectError(FlinkeyApiError):
    """3xx: the API answered with a redirect, which the SDK never follows.

    flinkey documents no redirects; following one would send the API key, the token (and, for
    the token request, the password) to wherever the ``Location`` points. ``location_origin`` is
    the origin the redirect pointed at (scheme, host and port only), or ``None`` without a
    ``Location`` header. Check ``base_url``: it may name an old or a wrong host.
    """

    def __init__(
        self,
        status: int,
        location_origin: str | None,
        *,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        self.location_origin = location_origin
        target = f"a redirect to {location_origin}" if location_origin else "a redirect"
        super().__init__(
            status,
            f"the API answered with {target}, which is not followed (flinkey documents no "
            "redirects, and credentials are only sent to the API's own origin); check base_url",
            method=method,
            path=path,
        )


class DecodeError(FlinkeyError):
    """A response body (or webhook body) did not have the documented shape.

    ``excerpt`` holds at most the first 200 characters of the body, for diagnosis.
    """

    def __init__(self, message: str, *, body: bytes | str | None = None) -> None:
        self.excerpt = excerpt(body) if body is not None else None
        text = message if self.excerpt is None else f"{message}; body starts: {self.excerpt!r}"
        super().__init__(text)


class ResponseTooLargeError(DecodeError):
    """A response body was larger than the client's ``max_response_bytes`` (counted after
    decompression, while reading: the rest is never read into memory)."""


class TransportError(FlinkeyError):
    """The request could not be completed (DNS, connection refused or reset, ...)."""


class RequestTimeoutError(TransportError):
    """The request timed out."""


class OutcomeUnknownError(TransportError):
    """A write (``PUT``, ``PATCH``, ``DELETE``) may have reached the server, but no answer
    arrived: the connection broke after the request was sent, or the time ran out.

    The SDK never sends such a write again (flinkey's create is not idempotent: a second
    ``PUT`` would be a second assignment). flinkey may have applied it: confirm its outcome
    (a webhook may still arrive) before deciding to send it again. ``timed_out`` tells the
    two cases apart; ``operation`` is the pending write when the SDK can still confirm it.
    """

    def __init__(self, message: str, *, timed_out: bool = False, operation: Any = None) -> None:
        self.timed_out = timed_out
        self.operation = operation
        super().__init__(message)


class ClientClosedError(FlinkeyError, RuntimeError):
    """The client was used after :meth:`~flinkey_async.FlinkeyClient.aclose`, or closed while
    the request was in flight."""


class OperationError(FlinkeyError):
    """An asynchronous write (create, update, delete) was not confirmed as applied."""


class OperationFailedError(OperationError):
    """flinkey reported that an asynchronous write failed; ``error_message`` is its reason and
    ``event`` the webhook event (or ``None`` when the failure was observed by polling)."""

    def __init__(self, description: str, error_message: str | None, event: Any = None) -> None:
        self.description = description
        self.error_message = error_message
        self.event = event
        super().__init__(f"{description} failed: {error_message or 'no reason given'}")


class OperationTimeoutError(OperationError, TimeoutError):
    """No confirmation of an asynchronous write arrived in time."""


class JournalError(FlinkeyError):
    """A journal of sent writes (:mod:`flinkey_async.journal`) cannot be read or written: a
    corrupt record, a file that cannot be opened or appended to."""


class RedisUnavailableError(FlinkeyError):
    """Redis, where state shared across processes lives (:mod:`flinkey_async.shared`), could
    not be reached or did not answer in time. The message names the server by host and port
    only (never a password of its URL)."""


class WebhookError(FlinkeyError):
    """An incoming webhook request was rejected."""


class WebhookAuthenticationError(WebhookError):
    """The webhook's ``Secret`` header was missing or wrong."""


class WebhookPayloadError(WebhookError, DecodeError):
    """The webhook body was malformed, oversized or of an unknown shape."""


_BY_STATUS: dict[int, type[FlinkeyApiError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    415: UnsupportedMediaTypeError,
    429: RateLimitError,
}

#: 409 subclasses by a phrase of their documented text (matched case-insensitively).
_CONFLICTS: tuple[tuple[str, type[ConflictError]], ...] = (
    ("product is already installed into a car", ProductAlreadyInstalledError),
    ("product has no service assigned", ProductHasNoServiceError),
    ("product of the same type in the car", ProductTypeAlreadyInstalledError),
)

_TRY_AGAIN = re.compile(r"try again in (\d+(?:\.\d+)?) seconds?", re.IGNORECASE)


def excerpt(body: bytes | str, limit: int = EXCERPT_CHARS) -> str:
    """The first ``limit`` characters of a body, decoded leniently (only the bytes that can
    hold them are decoded, however large the body)."""
    if isinstance(body, bytes):
        cut = len(body) > limit * 4  # a character is at most 4 bytes of UTF-8
        text = body[: limit * 4].decode("utf-8", "replace")
        return text[:limit] + "…" if cut or len(text) > limit else text
    return body if len(body) <= limit else body[:limit] + "…"


def parse_retry_after(headers: Mapping[str, str], message: str = "") -> float | None:
    """Seconds to wait before retrying: the ``Retry-After`` header (delta-seconds or HTTP-date)
    first, else the number in "Try again in N seconds", else ``None``."""
    value = _get_header(headers, "Retry-After")
    if value is not None:
        seconds = _retry_after_header(value.strip())
        if seconds is not None:
            return seconds
    match = _TRY_AGAIN.search(message)
    return float(match.group(1)) if match else None


def _retry_after_header(value: str) -> float | None:
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return max(0.0, (when - datetime.now(UTC)).total_seconds())
    if seconds != seconds or seconds in (float("inf"), float("-inf")):
        return None
    return max(0.0, seconds)


def _get_header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is not None:
        return value
    lower = name.lower()
    for key, val in headers.items():
        if key.lower() == lower:
            return val
    return None


def _parse_body(body: bytes) -> tuple[str, str | None]:
    """(message, trace_id) from any documented error-body shape."""
    text = body.decode("utf-8", "replace").strip()
    if not text:
        return "", None
    try:
        # orjson refuses nesting deeper than 1024 levels with a ValueError (json.loads would
        # raise RecursionError) and parses a hostile body in linear time.
        data = orjson.loads(text)
    except (ValueError, RecursionError):
        return excerpt(text, MESSAGE_CHARS), None
    if isinstance(data, str):
        return data, None
    if isinstance(data, dict):
        trace = data.get("traceId")
        trace_id = str(trace) if trace is not None else None
        for key in ("message", "Message", "detail", "title", "error_description", "error"):
            value = data.get(key)
            if isinstance(value, str) and value:
                return value, trace_id
        return excerpt(text, MESSAGE_CHARS), trace_id
    return excerpt(text, MESSAGE_CHARS), None


def from_response(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    method: str | None = None,
    path: str | None = None,
) -> FlinkeyApiError:
    """Map a non-2xx response to its typed exception (pure; never raises itself).

    Accepts every documented body shape: JSON ``{statusCode, message}``, ``{status: "429",
    message}``, RFC 7231 problem objects (``title``, ``traceId``), a JSON string, bare text, an
    empty body or non-JSON garbage. The status always comes from the status line. The message
    and the trace id are cut to 1000 characters (``MESSAGE_CHARS``, then ``…``); the type
    and ``retry_after`` are told from the whole message.
    """
    message, trace_id = _parse_body(body)
    if trace_id is not None:
        trace_id = excerpt(trace_id, MESSAGE_CHARS)
    if status == 429:
        return RateLimitError(
            status,
            excerpt(message, MESSAGE_CHARS),
            retry_after=parse_retry_after(headers, message),
            trace_id=trace_id,
            method=method,
            path=path,
        )
    cls: type[FlinkeyApiError]
    if status == 401:
        lowered = message.lower()
        if "subscription key" in lowered:
            cls = InvalidApiKeyError
        elif "access token" in lowered:
            cls = InvalidTokenError
        else:
            cls = AuthenticationError
    elif status == 409:
        lowered = message.lower()
        cls = next((c for phrase, c in _CONFLICTS if phrase in lowered), ConflictError)
    elif status >= 500:
        cls = ServerError
    else:
        cls = _BY_STATUS.get(status, FlinkeyApiError)
    return cls(status, excerpt(message, MESSAGE_CHARS), trace_id=trace_id, method=method, path=path)
