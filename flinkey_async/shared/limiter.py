"""The client's rate limit shared across processes, on Redis (extra ``flinkey_async[redis]``).

flinkey limits an API key, not a process: a job split across worker processes (Celery, Arq,
RQ, ...) with one :class:`~flinkey_async.limits.Limiter` each overruns the limit together.
With a :class:`RedisRateLimit` the rate is kept for all of them::

    async with RedisRateLimit("redis://127.0.0.1:6379/0", name="prod") as shared:
        limits = Limits(rate=20, shared=shared)          # 20/s for all the workers together
        async with FlinkeyClient(api_key, 42, token=token, limits=limits) as client:
            ...

``Limits(shared=shared)`` without a ``rate`` learns the limit together (below). The
concurrency limit and the retry budget stay per process.

**How.** Every attempt of every process takes one unit from a *moving window* of one second
kept in Redis (the ``limits`` package's ``MovingWindowRateLimiter`` storage,
:class:`limits.aio.storage.RedisStorage`: an atomic Lua script over a list of timestamps, so at
most ``rate`` units are taken in any second, by all the processes together). When none is free
the request sleeps until the oldest unit of the window expires (plus ``margin``, which absorbs
the jitter between taking a unit and the request reaching flinkey), then tries again; one
request per process negotiates at a time (the others queue behind it), so a window freeing
wakes one request per process, not all of them. Each process also paces its own requests at the
rate, which spreads its units over the window.

**Adaptive, together** (no ``rate``): the window then only counts what is sent. The first burst
of 429s (five or more, a fifth or more of at least twenty requests sent in the last second, all
processes together, as :class:`~flinkey_async.limits.Limiter` asks alone) stops everybody (a
*pause* key, ``Retry-After`` long, read by every process on each acquire); ``settle`` seconds
later one process (``SET NX``) measures what flinkey accepted
in the last second, *all the processes together* (units taken minus 429s, both counted in
Redis), and publishes the new rate: ``backoff`` times that (the *ceiling*). Every process then
computes the same rate from that record: it grows by ``increase`` requests per second per second
up to 95 % of the ceiling, beyond after ``probe_after`` quiet seconds (as
:class:`~flinkey_async.limits.Limiter` does alone). Later bursts pause everybody and lower the
rate again (once per second at most); a stray 429 does neither.
With a configured ``rate``, many 429s pause everybody and the rate stays.

**Keys** (all share the hash tag ``{prefix:name}``, one Redis Cluster slot): ``...:window``
(units taken), ``...:limited`` (429s), ``...:pause`` (pause-until timestamp, expiring with
it), ``...:state`` (the learnt rate, expiring an hour after it was last changed) and
``...:decide``. ``name`` is yours to choose (one per API key, e.g. ``"prod"``); never put the
API key itself in it -- :meth:`RedisRateLimit.name_for` derives a name from it by hashing.
Timestamps are the processes' wall clocks: keep the hosts' clocks synchronised (NTP); skew
between them eats into ``margin``.

**Failures.**

* Redis unreachable at start (``async with``, :meth:`RedisRateLimit.start`, or the first
  request when it was not started): :class:`~flinkey_async.errors.RedisUnavailableError`,
  naming the server by host, port and database only (never a password of the URL).
* Lost while running (an error, or no answer within ``timeout``): requests keep going, paced
  by this process alone at its share of the rate after one window's wait (the window it no
  longer sees may be full): ``rate / expected_workers`` rounded down to whole requests per
  window, spread over the window and ``margin`` (:func:`alone_rate`), so that the workers
  together stay within the rate even when their paces fall in step (the adaptive rate last
  known, likewise;
  unpaced until a 429 if none was learnt yet, each ``Retry-After`` then pausing this process).
  One WARNING is logged per outage (logger ``flinkey_async.shared``); every ``retry_every``
  seconds a request's acquire starts one ``PING`` in the background, and when Redis answers
  the rate is shared again (logged at INFO; until a window after the last request it sent
  without Redis, the process also keeps its own pace, as the window does not know those).
* Slow: every Redis command has a deadline (``timeout``, default 0.25 s), after which Redis
  counts as lost (above); no request waits on Redis longer. A request waits for a unit at most
  ``max_wait`` seconds in all; after that it is sent anyway (flinkey's 429 and the retry policy
  take over).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
import time
from collections.abc import Coroutine
from types import TracebackType
from typing import Any, Final, Literal, NoReturn

import redis.asyncio as aioredis
from limits.aio.storage import RedisStorage
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from yarl import URL

from ..auth import Secret
from ..errors import RedisUnavailableError
from ..limits import Limits, is_burst
from ._urls import URL_HINT, misplaced_at, server_of

__all__ = ["DEFAULT_PREFIX", "RedisRateLimit", "alone_rate"]

logger = logging.getLogger("flinkey_async.shared")

#: The default prefix of the keys (the hash tag is ``{prefix:name}``).
DEFAULT_PREFIX: Final = "flinkey-rate"

_WINDOW: Final = 1  # seconds: the moving window (the ``limits`` storage takes whole seconds)
_TRACK: Final = 1000  # entries kept when no rate is in force: what is sent is still counted
_STATE_TTL: Final = 3600  # seconds the learnt rate is kept after it last changed
_MAX_ROUNDS: Final = 10_000  # tries of one acquire (each sleeps or returns): a bound only
_MAX_REPORTS: Final = 32  # 429 reports in flight at most (more are not counted)
_ERRORS: Final = (RedisError, OSError, TimeoutError)

State = Literal["stopped", "shared", "local", "closed"]


def alone_rate(rate: float, workers: int, margin: float) -> float:
    """The pace of one of ``workers`` processes that share ``rate`` without Redis.

    A pace of ``rate / workers`` fits one request more than that into some windows (3
    processes at 6.33/s each send 7 in a second when their paces fall in step: 21 for a
    rate of 19). Instead each process keeps a whole number of requests per window, its share
    of the window's units rounded down, spread over the window plus ``margin``: no window of
    any process holds more than its share, so the workers together stay within the rate.
    A share below one request per window is paced at ``rate / workers``.
    """
    share = int(rate * _WINDOW) // workers
    if share < 1:
        return rate / workers
    return share / (_WINDOW + margin)


def _scheme(url: str) -> str | None:
    """The scheme of a well-formed Redis URL, else None (the parser's error is not raised:
    its text and its frames' locals show the URL)."""
    with contextlib.suppress(TypeError, ValueError):
        if not misplaced_at(url):
            return URL(url).scheme
    return None


def _positive(value: float, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    return float(value)


def _float(raw: Any) -> float | None:
    if raw is None:
        return None
    try:
        return float(raw)
    except (TypeError, ValueError):
        return None


def _learnt(raw: Any) -> tuple[float, float, float] | None:
    """The learnt rate's record: ``base ceiling since`` (None when absent or malformed)."""
    if raw is None:
        return None
    try:
        text = raw.decode() if isinstance(raw, bytes) else str(raw)
        base, ceiling, since = (float(part) for part in text.split())
    except (TypeError, ValueError, UnicodeDecodeError):
        return None
    if not (base > 0 and ceiling > 0 and math.isfinite(since)):
        return None
    return base, ceiling, since


class RedisRateLimit:
    """A rate limit kept in Redis for every process using one API key: give it to
    :class:`~flinkey_async.limits.Limits` as ``shared=`` (see the module for how it works
    and what happens when Redis fails).

    Use it as an async context manager (or :meth:`start` and :meth:`aclose`); it is not
    closed by the client. One instance serves the clients of one process with the same
    :class:`~flinkey_async.limits.Limits` (views of a client, or clients for other customers).

    Args:
        url: ``redis://[:password@]host:port/db``, ``rediss://`` for TLS, ``unix:///path``
            (a string or a :class:`~flinkey_async.auth.Secret`, wrapped on entry: no
            ``repr``, frame or pickle shows its password).
        name: names the API key in Redis (letters, digits, ``-_.:``; at most 100): the same in
            every process sharing the limit. Never the API key itself (see :meth:`name_for`).
        expected_workers: how many processes share the rate, for the rate each one keeps
            alone while Redis is lost (``rate / expected_workers``; default 1).
        prefix: the keys' prefix.
        timeout: seconds one Redis command may take before Redis counts as lost.
        connect_timeout: seconds to connect (and for the first ``PING``).
        max_wait: seconds a request waits for a unit at most (then it is sent anyway).
        margin: seconds waited beyond a unit's expiry before taking it again.
        retry_every: seconds between checks whether a lost Redis answers again.
        settle: seconds after a burst of 429s (:func:`~flinkey_async.limits.is_burst`: five
            or more, a fifth or more of the last second's requests; a stray 429 counts for
            nothing) before what flinkey accepted is measured (the answers of requests
            already in flight arrive meanwhile); the first burst without a ``Retry-After``
            also pauses everybody that long.
    """

    def __init__(
        self,
        url: str | Secret,
        *,
        name: str,
        expected_workers: int = 1,
        prefix: str = DEFAULT_PREFIX,
        timeout: float = 0.25,
        connect_timeout: float = 2.0,
        max_wait: float = 30.0,
        margin: float = 0.02,
        retry_every: float = 1.0,
        settle: float = 0.2,
    ) -> None:
        secret = url if isinstance(url, Secret) else Secret(url) if isinstance(url, str) else None
        del url
        if not secret:
            raise TypeError("url must be a non-empty Redis URL string")
        where = server_of(secret.reveal())
        if _scheme(secret.reveal()) not in ("redis", "rediss", "unix"):
            raise ValueError(f"not a Redis URL ({where}): {URL_HINT}")
        for label, text in (("name", name), ("prefix", prefix)):
            if (
                not isinstance(text, str)
                or not 0 < len(text) <= 100
                or not all(c.isascii() and (c.isalnum() or c in "-_.:") for c in text)
            ):
                raise ValueError(
                    f"{label} must be 1 to 100 letters, digits or '-_.:', got {text!r}"
                )
        if type(expected_workers) is not int or expected_workers < 1:
            raise ValueError(f"expected_workers must be an int >= 1, got {expected_workers!r}")
        if isinstance(margin, bool) or not isinstance(margin, int | float) or not margin >= 0:
            raise ValueError(f"margin must be a number of seconds >= 0, got {margin!r}")
        self._url = secret
        self.where = where
        self.name = name
        self.expected_workers = expected_workers
        self.timeout = _positive(timeout, "timeout")
        self.connect_timeout = _positive(connect_timeout, "connect_timeout")
        self.max_wait = _positive(max_wait, "max_wait")
        self.margin = float(margin)
        self.retry_every = _positive(retry_every, "retry_every")
        self.settle = _positive(settle, "settle")
        tag = f"{{{prefix}:{name}}}"
        #: The Redis keys: ``window``, ``limited``, ``pause``, ``state``, ``decide``.
        self.keys: Final = {
            part: f"{tag}:{part}" for part in ("window", "limited", "pause", "state", "decide")
        }
        self._limits: Limits | None = None
        self._client: aioredis.Redis | None = None
        self._storage: RedisStorage | None = None
        self._starting: asyncio.Lock | None = None
        self._turn: asyncio.Lock | None = None  # one acquire per process talks to Redis
        self._tasks: set[asyncio.Task[None]] = set()
        self._state: State = "stopped"
        self._learnt: tuple[float, float, float] | None = None  # base, ceiling, since
        self._pause_until = 0.0  # wall clock
        self._fallback: float | None = None  # this process's rate while Redis is lost
        self._fallback_next = 0.0
        self._next_probe = 0.0
        self._probing = False
        # Until when the window misses what this process sent alone: one window after its
        # last request sent without Redis (back in "shared", it keeps its own pace till then).
        self._rejoin_until = 0.0

    @staticmethod
    def name_for(api_key: str | Secret) -> str:
        """A name for ``api_key`` that does not reveal it: ``key-`` and 24 hex digits of its
        SHA-256 (the same in every process)."""
        text = api_key.reveal() if isinstance(api_key, Secret) else api_key
        if not isinstance(text, str) or not text:
            raise TypeError("api_key must be a non-empty str or Secret")
        digest = hashlib.sha256(b"flinkey-rate-limit\0" + text.encode()).hexdigest()
        return f"key-{digest[:24]}"

    def __repr__(self) -> str:
        try:
            where, name, state = self.where, self.name, self._state
        except AttributeError:  # half-built: its constructor raised
            return f"{type(self).__name__}(<not set up>)"
        return f"{type(self).__name__}({where}, name={name!r}, state={state!r})"

    def __reduce__(self) -> NoReturn:
        raise TypeError("a RedisRateLimit cannot be pickled: its URL may hold a password")

    # -- what the limiter sees --------------------------------------------------------------

    @property
    def state(self) -> State:
        """``"stopped"`` (not started yet), ``"shared"`` (Redis keeps the rate), ``"local"``
        (Redis lost: this process paces alone) or ``"closed"``."""
        return self._state

    @property
    def rate(self) -> float | None:
        """Requests per second for all the processes together (``None``: not limited); while
        Redis is lost, this process's own rate."""
        if self._state == "local":
            return self._fallback
        return self._shared_rate(time.time())

    def attach(self, limits: Limits) -> None:
        """Take the limits of a client (its ``rate`` is for all the processes together)."""
        if self._limits is not None and self._limits != limits:
            raise ValueError("a RedisRateLimit serves clients with the same Limits only")
        self._limits = limits

    async def acquire(self) -> None:
        """Wait for a unit of the shared rate and for a shared pause (at most ``max_wait``
        seconds; without Redis, for this process's own pace)."""
        if self._state != "shared" and self._state != "local":
            await self.start()
        assert self._turn is not None
        loop = asyncio.get_running_loop()
        async with self._turn:
            give_up = loop.time() + self.max_wait
            for _ in range(_MAX_ROUNDS):
                if self._state == "local":
                    await self._pace_alone(give_up - loop.time())
                    # sent without a unit, even when Redis answered again meanwhile
                    self._rejoin_until = max(self._rejoin_until, time.time() + _WINDOW)
                    return
                if self._rejoin_until and time.time() < self._rejoin_until:
                    await self._pace_alone(give_up - loop.time(), probe=False)
                wait = await self._take()
                if wait is None:
                    continue  # Redis was lost just now: pace alone
                remaining = give_up - loop.time()
                if wait <= 0 or remaining <= 0:
                    if wait > 0:
                        logger.debug(
                            "shared rate %r: no unit in %g s; sent", self.name, self.max_wait
                        )
                    return
                await asyncio.sleep(min(wait, remaining))

    def answered(self, status: int, retry_after: float | None) -> None:
        """Learn from an answer: a 429 is counted in Redis and may pause and slow down every
        process (see the module)."""
        if status != 429:
            return
        now = time.time()
        pause = retry_after if retry_after is not None and retry_after > 0 else 0.0
        if self._state != "shared":
            if pause:  # alone: every Retry-After pauses this process
                self._pause_until = max(self._pause_until, now + pause)
            return
        if len(self._tasks) < _MAX_REPORTS:
            self._spawn(self._report(now, pause))

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect and check that Redis answers (within ``connect_timeout``):
        :class:`~flinkey_async.errors.RedisUnavailableError` when it does not."""
        if self._state == "closed":
            raise RedisUnavailableError(f"the shared rate limit {self.name!r} is closed")
        if self._starting is None:
            self._starting = asyncio.Lock()
        async with self._starting:
            if self._client is not None:
                return
            client: aioredis.Redis | None = None
            with contextlib.suppress(ValueError):  # its text would quote the URL
                client = aioredis.Redis.from_url(
                    self._url.reveal(),
                    socket_timeout=self.timeout,
                    socket_connect_timeout=self.connect_timeout,
                    retry=Retry(NoBackoff(), 0),
                    decode_responses=False,
                )
            if client is None:
                raise ValueError(f"not a Redis URL ({self.where}): {URL_HINT}")
            failure: str | None = None
            try:
                async with asyncio.timeout(self.connect_timeout + self.timeout):
                    await client.ping()
            except _ERRORS as exc:
                failure = type(exc).__name__
            if failure is not None:
                # Raised outside the handler: no chained exception keeps redis-py's, whose
                # frames hold the password.
                await client.aclose()
                raise RedisUnavailableError(
                    f"shared rate limit {self.name!r}: Redis at {self.where} cannot be reached "
                    f"({failure})"
                )
            self._storage = RedisStorage(
                # The connections are the pool's: the storage gets a URL without credentials.
                "async+redis://localhost:6379",
                implementation="redispy",
                key_prefix="flinkey",
                # limits types its options as scalars; redis-py takes the pool as is
                connection_pool=client.connection_pool,  # type: ignore[arg-type]
            )
            self._client = client
            self._turn = asyncio.Lock()
            self._state = "shared"

    async def aclose(self) -> None:
        """Stop the background reports and close the connections to Redis."""
        self._state = "closed"
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        client, self._client, self._storage = self._client, None, None
        if client is not None:
            await client.aclose()

    async def __aenter__(self) -> RedisRateLimit:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- the shared rate ------------------------------------------------------------------------

    def _shared_rate(self, now: float) -> float | None:
        limits = self._limits
        if limits is not None and limits.rate is not None:
            return limits.rate
        learnt = self._learnt
        if learnt is None or limits is None:
            return None
        base, ceiling, since = learnt
        step = limits.increase or max(0.5, 0.05 * base)
        rate = base + step * max(0.0, now - since)
        if now - since < limits.probe_after:
            rate = min(rate, max(0.95 * ceiling, base))
        return rate

    async def _take(self) -> float | None:
        """Try to take a unit: 0 when taken (or no rate is in force), else the seconds to wait
        before trying again; None when Redis was lost."""
        client, storage = self._client, self._storage
        assert client is not None and storage is not None
        keys, margin = self.keys, self.margin
        guess = self._window_limit(time.time())  # the state is read at the same time
        try:
            async with asyncio.timeout(self.timeout):
                (learnt, pause), (oldest, count) = await asyncio.gather(
                    client.mget(keys["state"], keys["pause"]),
                    storage.get_moving_window(keys["window"], guess or _TRACK, _WINDOW),
                )
            self._learnt = _learnt(learnt)
            now = time.time()
            until = max(self._pause_until, _float(pause) or 0.0)
            if until > now:
                self._pause_until = until
                return until - now
            limit = self._window_limit(now)
            if limit is not None and limit == guess and count >= limit:
                # full: a unit frees ``margin`` after the window lets it go, so that a
                # request sent a little late does not meet its predecessor at flinkey
                free_at = oldest + _WINDOW + margin
                if free_at > now:
                    return min(free_at - now, float(_WINDOW))
            async with asyncio.timeout(self.timeout):
                if await storage.acquire_entry(keys["window"], limit or _TRACK, _WINDOW):
                    return 0.0
                if limit is None:
                    return 0.0  # no rate in force: only counted (past _TRACK a second: not)
                oldest, _ = await storage.get_moving_window(keys["window"], limit, _WINDOW)
        except _ERRORS as exc:
            self._lost(exc)
            return None
        return min(max(oldest + _WINDOW + margin - time.time(), 0.002), float(_WINDOW))

    def _window_limit(self, now: float) -> int | None:
        """Units per window at the shared rate now (None: no rate in force)."""
        rate = self._shared_rate(now)
        return None if rate is None else max(1, int(rate * _WINDOW))

    async def _report(self, at: float, pause: float) -> None:
        """Count a 429 in Redis; when it is a sign of the limit, pause everybody and (adaptive)
        publish the new rate."""
        client, storage, limits = self._client, self._storage, self._limits
        if client is None or storage is None or limits is None:
            return
        keys = self.keys
        try:
            async with asyncio.timeout(self.timeout):
                await storage.acquire_entry(keys["limited"], _TRACK, _WINDOW)
                limited = (await storage.get_moving_window(keys["limited"], _TRACK, 1))[1]
                sent = (await storage.get_moving_window(keys["window"], _TRACK, 1))[1]
                if not is_burst(limited, sent):
                    return  # a stray 429 (the first included): its request's retry waits
                first = limits.rate is None and self._learnt is None
                if pause or first:
                    until = at + (pause or self.settle)
                    self._pause_until = max(self._pause_until, until)
                    await client.set(
                        keys["pause"], repr(until), px=max(1, int((until - at) * 1000))
                    )
                if limits.rate is not None:
                    return  # a configured rate is the caller's decision
                if not await client.set(keys["decide"], b"1", nx=True, px=1000):
                    return  # another process decides for this burst
            await asyncio.sleep(self.settle)  # the answers of requests in flight come in
            async with asyncio.timeout(self.timeout):
                limited = (await storage.get_moving_window(keys["limited"], _TRACK, 1))[1]
                sent = (await storage.get_moving_window(keys["window"], _TRACK, 1))[1]
                self._learnt = _learnt(await client.get(keys["state"]))
                now = time.time()
                accepted = float(max(0, sent - limited))
                current = self._shared_rate(now)
                ceiling = accepted if current is None else min(current, accepted or current)
                ceiling = max(limits.min_rate, ceiling)
                base = max(limits.min_rate, ceiling * limits.backoff)
                await client.set(keys["state"], f"{base!r} {ceiling!r} {now!r}", ex=_STATE_TTL)
            self._learnt = (base, ceiling, now)
            logger.info(
                "shared rate %r: flinkey accepted %d requests in the last second (all "
                "processes); pacing at %.1f/s",
                self.name,
                int(accepted),
                base,
            )
        except _ERRORS as exc:
            self._lost(exc)

    # -- without Redis --------------------------------------------------------------------------

    def _lost(self, exc: BaseException) -> None:
        if self._state != "shared":
            return
        now = time.time()
        self._state = "local"
        shared = self._shared_rate(now)
        self._fallback = (
            None if shared is None else alone_rate(shared, self.expected_workers, self.margin)
        )
        # the last window, which this process no longer sees, may be full: let it pass first
        self._fallback_next = now + _WINDOW if shared is not None else 0.0
        self._next_probe = asyncio.get_running_loop().time() + self.retry_every
        what = "did not answer in time" if isinstance(exc, TimeoutError) else type(exc).__name__
        logger.warning(
            "shared rate %r: Redis at %s is unavailable (%s); this process paces alone at %s "
            "until it answers again",
            self.name,
            self.where,
            what,
            "no set rate" if self._fallback is None else f"{self._fallback:.3g}/s",
        )

    async def _pace_alone(self, remaining: float, *, probe: bool = True) -> None:
        loop = asyncio.get_running_loop()
        if probe and not self._probing and loop.time() >= self._next_probe:
            self._probing = True
            self._next_probe = loop.time() + self.retry_every
            self._spawn(self._probe())
        now = time.time()
        slot = max(now, self._pause_until)
        rate = self._fallback
        if rate is not None:
            slot = max(slot, self._fallback_next)
            self._fallback_next = slot + 1 / rate
        wait = min(slot - now, remaining)
        if wait > 0:
            await asyncio.sleep(wait)

    async def _probe(self) -> None:
        try:
            client = self._client
            if client is None:
                return
            try:
                async with asyncio.timeout(self.timeout):
                    await client.ping()
            except _ERRORS:
                return
            if self._state == "local":
                # What this process sent alone is not in the window: every such request
                # set _rejoin_until, so acquire keeps its own pace too until a window after
                # the last of them, or the window's full rate would come on top of them.
                self._state = "shared"
                logger.info("shared rate %r: Redis at %s answers again", self.name, self.where)
        finally:
            self._probing = False

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
