"""Client-side limits shared by every coroutine of one client (and its views).

* **Concurrency**: at most ``concurrency`` requests in flight at once.
* **Rate**: at most ``rate`` requests per second, paced smoothly: each request is given the
  next free slot, ``1 / rate`` seconds after the one before. (A leaky bucket such as
  aiolimiter's fixes its rate when it is made; the adaptive rate below changes while
  requests wait, and waiters queued on a replaced bucket would double the pace.)
* **Adaptive rate** (when no ``rate`` is given): flinkey does not publish its limits, so the
  limiter learns them. It sends freely until a burst of 429s (five or more, a fifth of at least
  twenty answers in two seconds: a stray 429 only waits its own ``Retry-After``); the rate the
  server accepted during the second before it is taken as the limit (the *ceiling*), the
  client paces at ``backoff`` times that (multiplicative decrease), waits the ``Retry-After``
  once for everybody, and then speeds up by ``increase`` requests per second per second of
  answers without a 429 (additive increase), up to 95 % of the ceiling; after
  ``probe_after`` quiet seconds it may go beyond, in case the limit was raised. A job thus
  runs just under the server's limit instead of bouncing off it.
* **Retry budget**: at most ``retries`` retries per ``retry_window`` seconds for the whole
  client, so a failing API is not hammered by every coroutine's own retry loop.
* **Shared rate** (``shared=``): flinkey limits an API key, not a process. Given a
  :class:`SharedRate` (such as :class:`flinkey_async.shared.limiter.RedisRateLimit`), the rate
  -- configured or adaptive, with its pauses -- is kept by that backend for every process using
  the key, while concurrency and the retry budget stay per client.

Use :class:`Limits` to configure them (``FlinkeyClient(..., limits=Limits(rate=20))``); the
:class:`Limiter` is the running state, and ``client.stats`` counts what happened.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol, runtime_checkable

import attrs

__all__ = ["Limiter", "Limits", "RequestStats", "SharedRate", "is_burst"]

#: Width of the buckets the limiter counts recent answers in (seconds).
_BUCKET = 0.1


@runtime_checkable
class SharedRate(Protocol):
    """A rate limit kept for several clients at once (typically one per process, all using
    one API key). :class:`Limiter` hands it the rate of every request of its client:

    * :meth:`attach` once, with the client's :class:`Limits` (``rate`` is the rate for all the
      processes together; ``None``: adaptive, learnt together);
    * :meth:`acquire` before each attempt, once the client's concurrency slot is taken: wait
      (bounded) for a unit of the shared rate and for a shared pause;
    * :meth:`answered` with each 429 (and its ``Retry-After``), to slow everybody down.

    :attr:`rate` is the shared pace now (``None``: not limited). The client also paces its own
    requests at that rate, which spreads each process's share of a window over it.
    """

    @property
    def rate(self) -> float | None:
        """Requests per second for all the processes together (``None``: not limited)."""
        ...

    def attach(self, limits: Limits) -> None:
        """Take the limits of a client that will use this backend."""
        ...

    async def acquire(self) -> None:
        """Wait for a unit of the shared rate (and any shared pause)."""
        ...

    def answered(self, status: int, retry_after: float | None) -> None:
        """Learn from an answer (the limiter passes its 429s only); must not block."""
        ...


def _shared_or_none(
    _instance: object, attribute: attrs.Attribute[SharedRate | None], value: object
) -> None:
    if value is not None and not isinstance(value, SharedRate):
        raise TypeError(
            f"{attribute.name} must be a SharedRate (such as RedisRateLimit) or None, "
            f"got {type(value).__name__}"
        )


def _positive_or_none(
    _instance: object, attribute: attrs.Attribute[float | None], value: float | None
) -> None:
    if value is not None and not value > 0:
        raise ValueError(f"{attribute.name} must be positive or None, got {value!r}")


def is_burst(limited: int, answers: int) -> bool:
    """Whether ``limited`` 429s among ``answers`` (429s included) are the sign of a rate limit,
    as an overshoot past it produces: five or more, a fifth or more of at least twenty. Fewer
    answers say nothing (a handful of requests meeting a few 429s by chance would teach a rate
    as low as their demand); a smaller share is stray 429s. Shared by :class:`Limiter` and the
    shared backends, so that one process and many read 429s alike."""
    return limited >= 5 and answers >= 20 and limited >= 0.2 * answers


@attrs.frozen
class Limits:
    """How fast one client may go.

    Attributes:
        rate: requests per second at most; ``None`` (default): adaptive (see the module).
        concurrency: requests in flight at most (default 64).
        min_rate: the adaptive rate never goes below this (requests per second).
        backoff: the adaptive rate after a 429, as a fraction of what the server accepted in
            the last second (0.9).
        increase: how much the adaptive rate grows, in requests per second, per second of
            answers without a 429 (5 % of the rate found, at least 0.5, by default).
        probe_after: seconds without a 429 after which the adaptive rate may grow past 95 %
            of the limit it found.
        retries: retries at most per ``retry_window`` seconds, for the whole client, plus
            those earned by successful answers (``retry_ratio``).
        retry_window: seconds.
        retry_ratio: each 2xx answer earns this much of one more retry beyond ``retries``
            (0.5; saved up to ``10 * retries``), so that a busy client meeting scattered
            failures keeps retrying them while an API that fails everything gets only
            ``retries`` per window.
        shared: keep the rate (``rate``, or the adaptive one) together with other processes
            using the same API key: a :class:`SharedRate` such as
            :class:`flinkey_async.shared.limiter.RedisRateLimit`; ``None`` (default): this
            client alone.
    """

    rate: float | None = attrs.field(default=None, validator=_positive_or_none)
    concurrency: int = attrs.field(default=64, validator=attrs.validators.ge(1))
    min_rate: float = attrs.field(default=1.0, validator=attrs.validators.gt(0))
    backoff: float = attrs.field(
        default=0.9, validator=[attrs.validators.gt(0), attrs.validators.lt(1)]
    )
    increase: float | None = attrs.field(default=None, validator=_positive_or_none)
    probe_after: float = attrs.field(default=30.0, validator=attrs.validators.gt(0))
    retries: int = attrs.field(default=100, validator=attrs.validators.ge(0))
    retry_window: float = attrs.field(default=10.0, validator=attrs.validators.gt(0))
    retry_ratio: float = attrs.field(default=0.5, validator=attrs.validators.ge(0))
    shared: SharedRate | None = attrs.field(default=None, validator=_shared_or_none)


@attrs.define
class RequestStats:
    """What a client did (counters only grow; subtract two snapshots for a job's share).

    Attributes:
        requests: attempts sent (each retry is one more).
        rate_limited: answers with status 429.
        retries: retries made by the retry policy.
        retries_refused: retries the retry budget refused (the error was raised instead).
    """

    requests: int = 0
    rate_limited: int = 0
    retries: int = 0
    retries_refused: int = 0

    def snapshot(self) -> RequestStats:
        """A copy, to subtract later."""
        return attrs.evolve(self)

    def __sub__(self, other: RequestStats) -> RequestStats:
        return RequestStats(
            self.requests - other.requests,
            self.rate_limited - other.rate_limited,
            self.retries - other.retries,
            self.retries_refused - other.retries_refused,
        )


class Limiter:
    """The running limits of one client (see the module). Use from one event loop."""

    def __init__(self, limits: Limits, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self.stats = RequestStats()
        self._clock = clock
        self._free = limits.concurrency  # slots not taken
        self._waiters: deque[asyncio.Future[None]] = deque()  # for a slot, first come first
        self._rate: float | None = limits.rate
        self._next_slot = 0.0
        self._paused_until = 0.0
        # Recent non-429 answers, counted in buckets of _BUCKET seconds (no object kept per
        # answer): the one being filled, and the finished ones of the last two seconds.
        self._bucket_start = float("-inf")
        self._bucket_count = 0
        self._buckets: deque[tuple[float, int]] = deque()
        self._last_adjust = 0.0
        self._ceiling: float | None = None  # the limit found at the last 429
        self._limited: deque[float] = deque()  # times of recent 429s
        self._last_limited = float("-inf")
        self._retries: deque[float] = deque()
        self._retry_credit = 0.0  # retries earned by successful answers
        self._retry_credit_cap = 10.0 * limits.retries
        self._shared = limits.shared
        if self._shared is not None:
            self._shared.attach(limits)

    @property
    def rate(self) -> float | None:
        """The current pace in requests per second (``None``: not limited yet); with a shared
        rate, the pace of all the processes together."""
        shared = self._shared
        return self._rate if shared is None else shared.rate

    def try_acquire(self) -> bool:
        """Take a slot at once when nothing needs waiting for (a free slot, nobody queued, no
        pace and no pause to keep); ``False``: :meth:`acquire` it instead. Call
        :meth:`release` when the answer is in."""
        if (
            self._free
            and not self._waiters
            and self._rate is None
            and not self._paused_until
            and self._shared is None
        ):
            self._free -= 1
            self.stats.requests += 1
            return True
        return False

    async def acquire(self, timeout: float | None = None) -> None:  # noqa: ASYNC109
        """Wait for a slot and for the pace; call :meth:`release` when the answer is in.

        ``timeout``: raise ``TimeoutError`` (holding nothing) when the slot or the turn in the
        pace would come later than that many seconds from now."""
        deadline = None if timeout is None else self._clock() + timeout
        if self._free and not self._waiters:
            self._free -= 1
        else:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                if timeout is None:
                    await waiter
                else:
                    await asyncio.wait((waiter,), timeout=max(0.0, timeout))
                    if not waiter.done():
                        waiter.cancel()
                        raise TimeoutError
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    self.release()  # a slot was handed over as this task was cancelled
                elif waiter in self._waiters:  # (a release may have dropped it, cancelled)
                    self._waiters.remove(waiter)
                raise
        reserved = 0.0
        try:
            now = self._clock()
            if self._paused_until and self._paused_until <= now:
                self._paused_until = 0.0
            slot = max(now, self._paused_until)
            shared = self._shared
            rate = self._rate if shared is None else shared.rate
            if rate is not None:
                slot = max(slot, self._next_slot)
                reserved = 1 / rate
                self._next_slot = slot + reserved
            if deadline is not None and slot > deadline:
                raise TimeoutError
            if slot > now:
                await asyncio.sleep(slot - now)
            if shared is not None:
                await shared.acquire()
        except BaseException:
            # Cancelled (or failed) before sending: its turn in the pace is given back, or
            # the turns of a cancelled crowd of waiters would delay every later request.
            if reserved:
                self._next_slot = max(self._clock(), self._next_slot - reserved)
            self.release()
            raise
        self.stats.requests += 1

    def release(self, answer: int = 0, *, slot: bool = True) -> None:
        """Give a slot back: to the first task waiting for one, else to the free ones.

        ``answer``: the status the slot's request was answered with, other than 429 (``0``:
        no answer), learnt from first as :meth:`answered` does, so that a request ends with
        one call; ``slot=False`` only learns (what :meth:`answered` does with it)."""
        if answer:
            now = self._clock()
            if 200 <= answer < 300:
                credit = self._retry_credit
                cap = self._retry_credit_cap
                if credit < cap:
                    credit += self.limits.retry_ratio
                    self._retry_credit = credit if credit < cap else cap
            if now - self._bucket_start < _BUCKET:
                self._bucket_count += 1
            else:
                self._next_bucket(now)
            if self._rate is not None and self.limits.rate is None and now - self._last_adjust >= 1:
                self._speed_up(now, self._rate)
        if not slot:
            return
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._free += 1

    def answered(self, status: int, retry_after: float | None = None) -> None:
        """Learn from one answer: a 429 slows the client down, others let it speed up."""
        if status != 429:
            self.release(status, slot=False)
            return
        self.stats.rate_limited += 1
        self._rate_limited(self._clock(), retry_after)

    def _speed_up(self, now: float, current: float) -> None:
        """A second or more without a 429 at the ``current`` learnt rate: raise it (not past
        95 % of the limit found, until ``probe_after`` has passed since)."""
        step = self.limits.increase or max(0.5, 0.05 * current)
        rate = current + step * (now - self._last_adjust)
        ceiling = self._ceiling
        if ceiling is not None and now - self._last_limited < self.limits.probe_after:
            rate = min(rate, max(0.95 * ceiling, current))
        self._set_rate(rate)
        self._last_adjust = now

    def _next_bucket(self, now: float) -> None:
        """Close the bucket being filled and start one at ``now`` with this answer."""
        buckets = self._buckets
        if self._bucket_count:
            buckets.append((self._bucket_start, self._bucket_count))
        self._bucket_start, self._bucket_count = now, 1
        while buckets and buckets[0][0] < now - 2.0:
            buckets.popleft()

    def _answers_since(self, since: float) -> int:
        """Non-429 answers since ``since`` (to a bucket's width; at most two seconds back)."""
        count = sum(n for start, n in self._buckets if start >= since)
        return count + (self._bucket_count if self._bucket_start >= since else 0)

    def _rate_limited(self, now: float, retry_after: float | None) -> None:
        if self._shared is not None:
            self._shared.answered(429, retry_after)  # it decides for every process
            return
        limited = self._limited
        limited.append(now)
        while limited and limited[0] < now - 2.0:
            limited.popleft()
        if self.limits.rate is not None:
            if self._many_limited(now):
                self._pause(now, retry_after)
            return  # a configured rate is the caller's decision
        if not self._is_limit_signal(now):
            return  # a stray 429 below the limit found: the request's own retry waits
        self._pause(now, retry_after)
        last, self._last_limited = self._last_limited, now
        if now - last < 1.0:
            return  # one decrease per burst of 429s (they answer requests sent together)
        accepted_rate = float(self._answers_since(now - 1.0))
        ceiling = (
            accepted_rate if self._rate is None else min(self._rate, accepted_rate or self._rate)
        )
        self._ceiling = max(self.limits.min_rate, ceiling)
        self._set_rate(max(self.limits.min_rate, ceiling * self.limits.backoff))
        self._last_adjust = now

    def _is_limit_signal(self, now: float) -> bool:
        """Whether a 429 says the client is at the server's limit: one of several (five or
        more) making a fifth or more of at least twenty answers of the last two seconds, as an
        overshoot past the limit produces. A stray 429 (an overloaded gateway, one request in
        many), the first one included, neither pauses everybody nor lowers the rate, so
        scattered 429s cannot throttle a job down to nothing; its own request waits its
        ``Retry-After``."""
        return self._many_limited(now)

    def _many_limited(self, now: float) -> bool:
        limited = len(self._limited)
        return is_burst(limited, limited + self._answers_since(now - 2.0))

    def _pause(self, now: float, retry_after: float | None) -> None:
        if retry_after is not None and retry_after > 0:
            self._paused_until = max(self._paused_until, now + retry_after)

    def _set_rate(self, rate: float) -> None:
        self._rate = rate

    def allow_retry(self) -> bool:
        """Whether the client-wide retry budget allows one more retry now (and count it)."""
        now = self._clock()
        window = self._retries
        while window and window[0] < now - self.limits.retry_window:
            window.popleft()
        if len(window) >= self.limits.retries:
            if self._retry_credit < 1.0:
                self.stats.retries_refused += 1
                return False
            self._retry_credit -= 1.0  # one earned by successful answers
        window.append(now)
        self.stats.retries += 1
        return True
