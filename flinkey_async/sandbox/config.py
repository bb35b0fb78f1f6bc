"""Configuration of the sandbox (:class:`SandboxConfig`) and its rate limit (:class:`RateLimit`)."""

from __future__ import annotations

import math
import os
import time
from collections import deque
from collections.abc import Callable
from importlib import resources

import attrs

from .faults import FaultConfig

__all__ = ["DEFAULT_FIXTURE", "RateLimit", "RateLimiter", "SandboxConfig", "default_fixture_path"]


def default_fixture_path() -> str:
    """Path of the bundled ``fixture.json`` (2 customers, their cars, users and assignments)."""
    return str(resources.files(__package__ or "flinkey_async.sandbox").joinpath("fixture.json"))


#: The bundled fixture: 2 customers with 10 cars, 20 users and 30 assignments each, their
#: products, services, events and groups, and the keyfob catalog.
DEFAULT_FIXTURE = default_fixture_path()


@attrs.frozen
class RateLimit:
    """At most ``requests`` requests per ``window`` seconds per API key.

    ``sliding=False`` counts in fixed windows (``[k*window, (k+1)*window)``); ``sliding=True``
    counts the requests of the last ``window`` seconds. A refused request gets 429 with
    ``Retry-After: N`` (whole seconds until a request would be accepted, at least 1) and the
    documented body ("... Try again in N seconds.") and is not counted. flinkey's reference
    shows the body only: ``retry_after_header=False`` leaves the header out, so that a client
    must read the wait from the message.
    """

    requests: int = attrs.field(validator=attrs.validators.ge(1))
    window: float = attrs.field(default=1.0, validator=attrs.validators.gt(0))
    sliding: bool = False
    retry_after_header: bool = True


class RateLimiter:
    """Counts requests per key against a :class:`RateLimit` (``clock`` in seconds)."""

    def __init__(self, limit: RateLimit, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.clock = clock
        self._fixed: dict[str, tuple[int, int]] = {}
        self._sliding: dict[str, deque[float]] = {}

    def check(self, key: str) -> int | None:
        """Count one request of ``key``: None when allowed, else the seconds to wait (>= 1)."""
        now = self.clock()
        limit = self.limit
        if limit.sliding:
            times = self._sliding.setdefault(key, deque())
            while times and times[0] <= now - limit.window:
                times.popleft()
            if len(times) >= limit.requests:
                return max(1, math.ceil(times[0] + limit.window - now))
            times.append(now)
            return None
        window_index = math.floor(now / limit.window)
        index, count = self._fixed.get(key, (window_index, 0))
        if index != window_index:
            count = 0
        if count >= limit.requests:
            return max(1, math.ceil((window_index + 1) * limit.window - now))
        self._fixed[key] = (window_index, count + 1)
        return None


def _optional_tuple(value: object) -> tuple[int, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list | tuple | set | frozenset):
        raise TypeError("customer_ids must be a collection of ints or None")
    return tuple(sorted(int(v) for v in value))


def _base_path(_instance: object, _attribute: object, value: str) -> None:
    if value and (not value.startswith("/") or value.endswith("/")):
        raise ValueError(f"base_path must be '' or start with '/' and not end with '/': {value!r}")


@attrs.frozen
class SandboxConfig:
    """How the sandbox behaves. Every field has a default suitable for tests.

    Attributes:
        api_key: the only accepted ``flinkey-API-Key``.
        username, password: the API manager's credentials for ``POST /oauth2/token``.
        sdk_key: the only accepted ``sdkKey`` of ``POST /sdk/token`` (the SDK Key of the
            Portal's Developer page).
        token_lifetime: seconds an access token stays valid (``expires_in`` is this, rounded
            up, as a string).
        customer_ids: the customers the API manager may act for; None means every customer
            of the store (the fixture's customers by default).
        write_delay: seconds between a write's 204 and its application (and webhook).
        webhook_url: where outcome webhooks are POSTed; None means no deliveries.
        webhook_secret: sent as the ``Secret`` header; None means no such header.
        webhook_timeout: total timeout of one webhook delivery, in seconds.
        rate_limit: requests allowed per window and API key; None means unlimited.
        max_body_bytes: larger request bodies get 413.
        faults: request and webhook faults to inject; None means none.
        seed: seed of the fault decisions (unless ``faults.seed`` is set) and trace ids.
        fixture: JSON fixture loaded at start (the bundled one by default); None means an
            empty store.
        base_path: path prefix of every route (``/v3``, as in the production base URL).
        max_tokens: at most this many live access tokens are kept; issuing one more forgets
            the oldest (expired tokens are forgotten as they expire).
        max_records: at most this many entries are kept in ``Sandbox.outcomes`` and in
            ``Sandbox.deliveries`` each; the oldest are dropped first.
    """

    api_key: str = attrs.field(default="sandbox-api-key", repr=False)
    username: str = "manager@example.com"
    password: str = attrs.field(default="sandbox-password", repr=False)
    sdk_key: str = attrs.field(default="sandbox-sdk-key", repr=False)
    token_lifetime: float = attrs.field(default=3600.0, validator=attrs.validators.gt(0))
    customer_ids: tuple[int, ...] | None = attrs.field(default=None, converter=_optional_tuple)
    write_delay: float = attrs.field(default=0.05, validator=attrs.validators.ge(0))
    webhook_url: str | None = None
    webhook_secret: str | None = attrs.field(default=None, repr=False)
    webhook_timeout: float = attrs.field(default=5.0, validator=attrs.validators.gt(0))
    rate_limit: RateLimit | None = None
    max_body_bytes: int = attrs.field(default=64 * 1024, validator=attrs.validators.ge(1))
    faults: FaultConfig | None = None
    seed: int | None = None
    fixture: str | os.PathLike[str] | None = DEFAULT_FIXTURE
    base_path: str = attrs.field(default="/v3", validator=_base_path)
    max_tokens: int = attrs.field(default=10_000, validator=attrs.validators.ge(1))
    max_records: int = attrs.field(default=10_000, validator=attrs.validators.ge(1))
