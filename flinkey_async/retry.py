"""Retry decisions (pure): which failures are retried, and how long to wait.

flinkey applies writes asynchronously, and ``PUT /assignments`` is not idempotent (two PUTs
create two assignments), so the policy never risks a duplicate write:

* every method is retried after a **429** (the request was refused, not processed) and after a
  **connection failure before the request was sent** (connect refused, DNS);
* reads (``GET``) are also retried after 408, 500, 502, 503, 504, timeouts and broken
  connections;
* writes (``PUT``, ``PATCH``, ``DELETE``) are **not** retried after a 5xx, a timeout or a
  connection that broke after the request may have reached the server: the error is raised and
  the caller decides (the operation's webhook may still arrive).

The wait is the server's ``Retry-After`` (header, else "Try again in N seconds") when it gave
one, capped by ``max_retry_after`` (a longer wait raises :class:`RateLimitError` at once), else
exponential backoff with jitter; never less than ``min_delay``, so a ``Retry-After`` of 0, a
negative one or a date in the past cannot make the client retry back to back. The client also
bounds the whole call, retries included, by its ``deadline``.

aiohttp itself re-sends a request on a new connection when a kept-alive one breaks (for every
method it deems idempotent, ``PUT`` and ``DELETE`` included); the request pipeline switches that
off, so these decisions are the only ones that ever repeat a request.
"""

from __future__ import annotations

import random
from typing import Literal

import attrs

__all__ = ["Failure", "RetryPolicy"]

#: What went wrong with one attempt: an HTTP status, or a transport failure.
#: ``"connect"``: the request was never sent; ``"timeout"`` / ``"disconnect"``: it may have been.
Failure = int | Literal["connect", "timeout", "disconnect"]

_READ_STATUSES = frozenset({408, 500, 502, 503, 504})  # 429: retried for every method
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@attrs.frozen
class RetryPolicy:
    """How a client retries failed requests (each attribute is also an argument).

    Attributes:
        max_retries: retries after the first attempt (0 disables retrying).
        backoff_base: first backoff in seconds; doubled on each retry.
        backoff_max: cap of a single backoff.
        max_retry_after: the longest ``Retry-After`` the client will wait; a longer one is
            raised as :class:`~flinkey_async.errors.RateLimitError` for the caller to schedule.
        jitter: fraction of the backoff that is randomised (0 to 1).
        min_delay: the shortest wait before any retry, in seconds (also when the server asks
            for less).
    """

    max_retries: int = attrs.field(default=3, validator=attrs.validators.ge(0))
    backoff_base: float = attrs.field(default=0.5, validator=attrs.validators.ge(0))
    backoff_max: float = attrs.field(default=8.0, validator=attrs.validators.ge(0))
    max_retry_after: float = attrs.field(default=60.0, validator=attrs.validators.ge(0))
    jitter: float = attrs.field(
        default=0.25, validator=[attrs.validators.ge(0), attrs.validators.le(1)]
    )
    min_delay: float = attrs.field(default=0.05, validator=attrs.validators.ge(0))

    @classmethod
    def disabled(cls) -> RetryPolicy:
        """A policy that never retries."""
        return cls(max_retries=0)

    def is_retryable(self, method: str, failure: Failure) -> bool:
        """Whether this failure of this method may be retried without duplicating a write."""
        if failure == 429 or failure == "connect":
            return True
        if method.upper() not in _SAFE_METHODS:
            return False
        if isinstance(failure, str):
            return True
        return failure in _READ_STATUSES

    def delay(
        self,
        method: str,
        failure: Failure,
        attempt: int,
        retry_after: float | None = None,
        *,
        rng: random.Random | None = None,
    ) -> float | None:
        """Seconds to wait before retry number ``attempt`` (1-based), or ``None`` to give up."""
        if attempt > self.max_retries or not self.is_retryable(method, failure):
            return None
        if retry_after is not None:
            if not retry_after <= self.max_retry_after:  # also NaN
                return None
            return max(retry_after, self.min_delay)
        backoff = min(self.backoff_max, self.backoff_base * 2.0 ** (attempt - 1))
        spread: float = (rng or random).random() * self.jitter
        return max(backoff * (1 - spread), self.min_delay)
