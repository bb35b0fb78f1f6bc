"""Credentials and access-token providers.

Two ways to authenticate:

* :class:`StaticToken`: a bearer token obtained elsewhere; it cannot be refreshed.
* :class:`PasswordGrant`: an API manager's username and password, exchanged at
  ``POST /oauth2/token`` (RFC 6749 password grant). The token is fetched lazily on first use,
  refreshed shortly before it expires, fetched **once** when many coroutines need it at the same
  moment, and dropped when the API answers 401 "Access token is missing or invalid" so that the
  next request fetches a new one.

No secret (API key, token, password) appears in any ``repr``, log line or exception text:
they are held in :class:`Secret` wrappers.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hmac
import html
import json
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, NoReturn, Protocol, TypeVar
from urllib.parse import quote, quote_plus

import attrs

from ._validate import check_seconds
from .errors import DecodeError, FlinkeyApiError, ValidationError

__all__ = [
    "MAX_TOKEN_LIFETIME",
    "MIN_TOKEN_LIFETIME",
    "PasswordGrant",
    "Secret",
    "StaticToken",
    "TokenProvider",
    "TokenResponse",
    "as_secret",
    "is_header_safe",
    "parse_token_response",
]


class Secret:
    """A string that never shows itself: ``repr`` and ``str`` print ``'***'``.

    Call :meth:`reveal` to get the value (the request pipeline does, to build headers). A
    ``Secret`` is immutable, compares equal to another ``Secret`` with the same value (in
    constant time), refuses to be pickled (so a secret cannot reach a cache, a queue or a file
    by accident) and is no attrs class (``attrs.asdict`` of an object holding one shows the
    wrapper, not the value). ``Secret(secret)`` returns an equal wrapper.
    """

    __slots__ = ("_value",)
    _value: str

    def __init__(self, value: str | Secret) -> None:
        if isinstance(value, Secret):
            value = value._value
        if not isinstance(value, str):
            raise TypeError(f"a secret must be a str, got {type(value).__name__}")
        object.__setattr__(self, "_value", value)

    def reveal(self) -> str:
        """The secret value."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(
            self._value.encode("utf-8", "surrogatepass"),
            other._value.encode("utf-8", "surrogatepass"),
        )

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    def __bool__(self) -> bool:
        return bool(self._value)

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError("Secret objects are immutable")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError("Secret objects are immutable")

    def __reduce__(self) -> NoReturn:
        raise TypeError("a Secret cannot be pickled: secrets never leave the process")

    def __copy__(self) -> Secret:
        return self

    def __deepcopy__(self, memo: object) -> Secret:
        return self


def as_secret(value: str | Secret | None, argument: str) -> Secret | None:
    """Wrap a credential on entry (``None`` stays ``None``); a non-string raises
    :class:`TypeError` naming ``argument`` and never quoting the value."""
    if value is None or isinstance(value, Secret):
        return value
    if not isinstance(value, str):
        raise TypeError(f"{argument} must be a str, got {type(value).__name__}")
    return Secret(value)


#: The longest token lifetime accepted from the server (a year); longer is a malformed answer.
MAX_TOKEN_LIFETIME = 365 * 24 * 3600.0
#: A token is kept at least this long (seconds) whatever ``expires_in`` says, so that a server
#: answering a tiny ``expires_in`` does not cost a token request per call; a token that really
#: expired earlier is replaced after the API's 401.
MIN_TOKEN_LIFETIME = 30.0

# RFC 6750 b64token, leniently: printable ASCII without spaces (no CR, LF or other control
# character can reach a header).
_HEADER_SAFE = re.compile(r"[\x21-\x7e]+")


def is_header_safe(value: str) -> bool:
    """Whether ``value`` can be sent in a header as it is (printable ASCII, no whitespace)."""
    return _HEADER_SAFE.fullmatch(value) is not None


@attrs.frozen(repr=False)
class TokenResponse:
    """A parsed ``POST /oauth2/token`` answer: the token and its lifetime in seconds."""

    access_token: Secret
    expires_in: float

    def __repr__(self) -> str:
        return f"TokenResponse(access_token=***, expires_in={self.expires_in})"

    def __reduce__(self) -> NoReturn:
        raise TypeError("a TokenResponse cannot be pickled: it holds a secret")


def _expires_in(raw: Any) -> float:
    if isinstance(raw, bool):
        raise DecodeError("token response has an invalid expires_in (bool)")
    expires_in: float | None = None
    with contextlib.suppress(TypeError, ValueError, OverflowError):
        expires_in = float(raw)
    if expires_in is None:  # raised outside the handler: no chained exception quotes raw
        raise DecodeError(f"token response has an invalid expires_in ({type(raw).__name__})")
    if not 0 < expires_in <= MAX_TOKEN_LIFETIME:  # also NaN and infinities
        raise DecodeError(
            "token response has an expires_in that is not a number of seconds between 0 and "
            f"{MAX_TOKEN_LIFETIME:.0f}"
        )
    return expires_in


def _take_token(data: Mapping[str, Any]) -> Secret | None:
    """The ``access_token`` of ``data``, wrapped; None when it is missing, not a string or not
    a valid header value (the plain value never outlives this frame)."""
    value = data.get("access_token")
    if isinstance(value, str) and value and is_header_safe(value):
        return Secret(value)
    return None


def parse_token_response(data: Any) -> TokenResponse:
    """Validate a token answer; ``expires_in`` arrives as a string (``"3600"``) or a number.

    The token must be a valid header value (printable ASCII, no whitespace: a CR or LF could
    otherwise reach a header); ``expires_in`` must be a positive number of seconds of at most
    :data:`MAX_TOKEN_LIFETIME`. Errors never quote the body: it holds the token. ``data`` is
    neither changed nor kept: this frame lets go of it before anything can raise, so that a
    traceback showing its locals shows no token.
    """
    fields: Mapping[str, Any] | None = data if isinstance(data, Mapping) else None
    del data
    if fields is None:
        raise DecodeError("token response is not a JSON object")
    token = _take_token(fields)
    expires_in = fields.get("expires_in", 3600)
    del fields
    if token is None:
        raise DecodeError(
            "token response has no access_token that can be sent as a header "
            "(missing, empty, not a string, or with spaces or control characters)"
        )
    return TokenResponse(token, _expires_in(expires_in))


class TokenProvider(Protocol):
    """Supplies bearer tokens to the request pipeline."""

    def cached(self) -> str | None:
        """A currently valid token if one is at hand without waiting, else ``None``."""
        ...

    async def token(self) -> str:
        """A currently valid token."""
        ...

    def invalidate(self, token: str) -> bool:
        """The API rejected ``token``. Return ``True`` if a fresh one can be fetched (then the
        request is retried once), ``False`` if not (the 401 is raised)."""
        ...


class StaticToken:
    """A fixed bearer token. It cannot be refreshed: a 401 is raised to the caller."""

    __slots__ = ("_token",)

    def __init__(self, token: str | Secret) -> None:
        secret = as_secret(token, "token")
        del token
        if not secret or not is_header_safe(secret.reveal()):
            raise ValidationError(
                "token",
                "must be a non-empty string of printable ASCII "
                "characters without spaces (as sent in a header)",
            )
        self._token = secret

    def cached(self) -> str:
        return self._token._value  # reveal(), without its frame: asked on every request

    async def token(self) -> str:
        return self._token.reveal()

    def invalidate(self, token: str) -> bool:
        return False

    def __repr__(self) -> str:
        return "StaticToken(***)"

    def __reduce__(self) -> NoReturn:
        raise TypeError("a StaticToken cannot be pickled: it holds a secret")


#: Fetches a token for (username, password); provided by the request pipeline.
TokenFetcher = Callable[[str, Secret], Awaitable[TokenResponse]]

#: The most times a failed fetch doubles its backoff: 2.0 ** 1023 is the largest power of two
#: a float holds.
_MAX_DOUBLINGS = 1023


class PasswordGrant:
    """Tokens from ``POST /oauth2/token`` with an API manager's username and password.

    One fetch at a time, shared by every waiter: when many coroutines need a token at once,
    one request is made and all of them get its result, success or failure. A failure is
    remembered for a short, growing time (``failure_backoff``, doubling up to
    ``max_failure_backoff``) during which callers get the same error at once instead of
    hitting a failing token endpoint again; no lock is held while waiting. A waiter that is
    cancelled does not cancel the fetch the others wait for.

    Args:
        username: the API manager's username.
        password: that API manager's password (a string or a :class:`Secret`, wrapped in a
            :class:`Secret` at once).
        fetch: the coroutine function that performs the token request (the pipeline's).
        refresh_margin: refresh this many seconds before expiry (at most a tenth of the token's
            lifetime, so short-lived tokens are not refreshed on every call).
        failure_backoff: seconds a failed fetch is remembered after the first failure in a
            row; each further failure doubles it.
        max_failure_backoff: the longest a failed fetch is remembered, in seconds.
        clock: monotonic clock, replaceable in tests.
    """

    def __init__(
        self,
        username: str,
        password: str | Secret,
        fetch: TokenFetcher,
        *,
        refresh_margin: float = 60.0,
        failure_backoff: float = 1.0,
        max_failure_backoff: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        secret = as_secret(password, "password")
        del password
        if not isinstance(username, str) or not username:
            raise ValidationError("username", "must be a non-empty string")
        if not secret:
            raise ValidationError("password", "must be a non-empty string")
        for name, value in (
            ("refresh_margin", refresh_margin),
            ("failure_backoff", failure_backoff),
            ("max_failure_backoff", max_failure_backoff),
        ):
            check_seconds(value, name, wrong_type=TypeError)
        if not callable(fetch) or not callable(clock):
            culprit, value = ("fetch", fetch) if not callable(fetch) else ("clock", clock)
            raise TypeError(f"{culprit} must be callable, got {type(value).__name__}")
        self._username = username
        self._password = secret
        self._fetch = fetch
        self._refresh_margin = refresh_margin
        self._failure_backoff = failure_backoff
        self._max_failure_backoff = max_failure_backoff
        self._clock = clock
        self._token: Secret | None = None
        self._refresh_at = 0.0
        self._inflight: asyncio.Future[Secret] | None = None
        self._failure: BaseException | None = None
        self._failed_until = 0.0
        self._failures = 0

    def cached(self) -> str | None:
        current = self._token
        if current is not None and self._clock() < self._refresh_at:
            return current._value  # reveal(), without its frame: asked on every request
        return None

    async def token(self) -> str:
        current = self._token
        if current is not None and self._clock() < self._refresh_at:
            return current.reveal()
        inflight = self._inflight
        if inflight is None:
            failure = self._failure
            if failure is not None and self._clock() < self._failed_until:
                raise copy.copy(failure).with_traceback(None)
            inflight = self._inflight = asyncio.ensure_future(self._refresh())
            inflight.add_done_callback(self._fetched)
        # shield: a cancelled waiter leaves the fetch running for the others.
        secret = await asyncio.shield(inflight)
        return secret.reveal()

    async def _refresh(self) -> Secret:
        response = await self._fetch(self._username, self._password)
        lifetime = max(response.expires_in, MIN_TOKEN_LIFETIME)
        margin = min(self._refresh_margin, lifetime / 10)
        self._token = response.access_token
        self._refresh_at = self._clock() + lifetime - margin
        return response.access_token

    def _fetched(self, future: asyncio.Future[Secret]) -> None:
        self._inflight = None
        if future.cancelled():
            return
        error = future.exception()  # also marks it retrieved when nobody waits any more
        if error is None:
            self._failure = None
            self._failures = 0
            return
        # Counted up to _MAX_DOUBLINGS + 1 only: 2.0 ** 1024 overflows (OverflowError), and
        # long before that the backoff is at its cap (a product too large is inf, then capped).
        self._failures = min(self._failures + 1, _MAX_DOUBLINGS + 1)
        backoff = min(
            self._max_failure_backoff, self._failure_backoff * 2.0 ** (self._failures - 1)
        )
        self._failure = error
        self._failed_until = self._clock() + backoff

    def invalidate(self, token: str) -> bool:
        current = self._token
        if current is not None and current.reveal() == token:
            self._token = None
        return True

    async def aclose(self) -> None:
        """Cancel a fetch in flight (called when the client closes)."""
        inflight = self._inflight
        if inflight is not None and not inflight.done():
            inflight.cancel()
            # Waits for it to end without taking its outcome: a cancellation of the task that
            # closes still propagates (awaiting the fetch under suppress() swallowed it).
            await asyncio.wait((inflight,))
            if not inflight.cancelled():
                inflight.exception()  # retrieved: no "never retrieved" warning

    def __repr__(self) -> str:
        return f"PasswordGrant(username={self._username!r}, password=***)"

    def __reduce__(self) -> NoReturn:
        raise TypeError("a PasswordGrant cannot be pickled: it holds a password")


# -- masking what a server echoes ----------------------------------------------------------

_E = TypeVar("_E", bound=FlinkeyApiError | DecodeError)
_PERCENT = re.compile("%[0-9A-F]{2}")


def _secret_forms(value: str) -> list[str]:
    """The ways a server echoing a request may show ``value``: as it is, percent-encoded as
    in a path, a query or a form (once or twice, either case of hex digit), JSON- (also with
    ``\\/``), repr- and HTML-escaped; longest first."""
    encoded = {quote(value, safe=""), quote(value), quote_plus(value)}
    encoded |= {quote(form, safe="") for form in encoded}
    escaped_html = html.escape(value)
    forms = {value, escaped_html, escaped_html.replace("&#x27;", "&#39;"), repr(value)[1:-1]}
    forms |= encoded
    forms |= {_PERCENT.sub(lambda m: m.group().lower(), form) for form in encoded}
    for ascii_only in (True, False):
        escaped = json.dumps(value, ensure_ascii=ascii_only)[1:-1]
        forms |= {escaped, escaped.replace("/", "\\/")}
    return sorted((form for form in forms if form), key=len, reverse=True)


#: Secrets shorter than this are masked only where they stand alone (see mask_secrets).
_SHORT_SECRET = 8
#: The shortest start of a secret masked at the end of a text cut off with "…".
_CUT_START = 4


def mask_secrets(text: str, secrets: Sequence[Secret]) -> str:
    """``text`` with every form of each of ``secrets`` (see :func:`_secret_forms`) shown as
    ``***``. A text cut off with ``…`` (an excerpt) also loses what, just before the cut,
    may be the start of one (4 characters or more).

    A secret shorter than 8 characters (a test's token ``"t"``) is masked only where no
    letter or digit touches it, so that it does not mask parts of words ("In***ernal")."""
    forms: list[str] = []
    short: list[str] = []
    for secret in secrets:
        value = secret.reveal()
        (forms if len(value) >= _SHORT_SECRET else short).extend(_secret_forms(value))
    forms.sort(key=len, reverse=True)
    for form in forms:
        text = text.replace(form, "***")
    if short:
        alone = "|".join(re.escape(form) for form in sorted(short, key=len, reverse=True))
        text = re.sub(f"(?<![0-9A-Za-z])(?:{alone})(?![0-9A-Za-z])", "***", text)
    if text.endswith("…"):
        head = text[:-1]
        for form in forms:
            # (a start of at least 4 characters: 1 - 3 would mask the ends of plain words)
            for size in range(min(len(form) - 1, len(head)), _CUT_START - 1, -1):
                if head.endswith(form[:size]):
                    head = head[:-size] + "***"
                    break
        text = head + "…"
    return text


def redacted(error: _E, secrets: Sequence[Secret]) -> _E:
    """A copy of ``error`` (without its traceback and chained exceptions) that shows none of
    ``secrets``, for answers a server may have written quoting the request: an API error's
    message and trace id, a :class:`~flinkey_async.errors.DecodeError`'s text and excerpt."""
    copied = copy.copy(error)
    if isinstance(copied, FlinkeyApiError):
        copied.message = mask_secrets(copied.message, secrets)
        if copied.trace_id is not None:
            copied.trace_id = mask_secrets(copied.trace_id, secrets)
        copied.args = (copied._describe(),)
    else:
        if copied.excerpt is not None:
            copied.excerpt = mask_secrets(copied.excerpt, secrets)
        copied.args = tuple(
            mask_secrets(a, secrets) if isinstance(a, str) else a for a in copied.args
        )
    return copied
