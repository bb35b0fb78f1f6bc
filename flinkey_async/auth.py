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
import hmac
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, NoReturn, Protocol

import attrs

from .errors import DecodeError

__all__ = ["PasswordGrant", "Secret", "StaticToken", "TokenProvider", "TokenResponse",
           "as_secret", "parse_token_response"]


class Secret:
    """A string that never shows itself: ``repr`` and ``str`` print ``'***'``.

    Call :meth:`reveal` to get the value (the session layer does, to build headers). A
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
        return hmac.compare_digest(self._value.encode("utf-8", "surrogatepass"),
                                   other._value.encode("utf-8", "surrogatepass"))

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


@attrs.frozen(repr=False)
class TokenResponse:
    """A parsed ``POST /oauth2/token`` answer: the token and its lifetime in seconds."""

    access_token: Secret
    expires_in: float

    def __repr__(self) -> str:
        return f"TokenResponse(access_token=***, expires_in={self.expires_in})"


def parse_token_response(data: Any) -> TokenResponse:
    """Validate a token answer; ``expires_in`` arrives as a string (``"3600"``) or a number.

    Errors never quote the body: it holds the token.
    """
    if not isinstance(data, Mapping):
        raise DecodeError("token response is not a JSON object")
    token = data.get("access_token")
    if not isinstance(token, str) or not token:
        raise DecodeError("token response has no access_token")
    raw = data.get("expires_in", 3600)
    try:
        expires_in = float(raw) if not isinstance(raw, bool) else float("nan")
    except (TypeError, ValueError):
        raise DecodeError(
            f"token response has an invalid expires_in ({type(raw).__name__})") from None
    if not expires_in > 0 or expires_in == float("inf"):
        raise DecodeError("token response has a non-positive or invalid expires_in")
    return TokenResponse(Secret(token), expires_in)


class TokenProvider(Protocol):
    """Supplies bearer tokens to the session layer."""

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

    def __init__(self, token: str) -> None:
        if not isinstance(token, str) or not token:
            raise TypeError("token must be a non-empty string")
        self._token = Secret(token)

    async def token(self) -> str:
        return self._token.reveal()

    def invalidate(self, token: str) -> bool:
        return False

    def __repr__(self) -> str:
        return "StaticToken(***)"


#: Fetches a token for (username, password); provided by the session layer.
TokenFetcher = Callable[[str, Secret], Awaitable[TokenResponse]]


class PasswordGrant:
    """Tokens from ``POST /oauth2/token`` with an API manager's username and password.

    Args:
        username, password: the API manager's credentials.
        fetch: the coroutine function that performs the token request (the session layer's).
        refresh_margin: refresh this many seconds before expiry (at most a tenth of the token's
            lifetime, so short-lived tokens are not refreshed on every call).
        clock: monotonic clock, replaceable in tests.
    """

    def __init__(
        self,
        username: str,
        password: str,
        fetch: TokenFetcher,
        *,
        refresh_margin: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._username = username
        self._password = Secret(password)
        self._fetch = fetch
        self._refresh_margin = refresh_margin
        self._clock = clock
        self._token: Secret | None = None
        self._refresh_at = 0.0
        self._lock = asyncio.Lock()

    async def token(self) -> str:
        current = self._token
        if current is not None and self._clock() < self._refresh_at:
            return current.reveal()
        async with self._lock:
            current = self._token
            if current is not None and self._clock() < self._refresh_at:
                return current.reveal()
            response = await self._fetch(self._username, self._password)
            margin = min(self._refresh_margin, response.expires_in / 10)
            self._token = response.access_token
            self._refresh_at = self._clock() + response.expires_in - margin
            return response.access_token.reveal()

    def invalidate(self, token: str) -> bool:
        current = self._token
        if current is not None and current.reveal() == token:
            self._token = None
        return True

    def __repr__(self) -> str:
        return f"PasswordGrant(username={self._username!r}, password=***)"
