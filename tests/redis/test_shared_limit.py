"""RedisRateLimit against a real Redis: units taken and waited for, the shared pause and the
learnt rate after a 429, failures at start and recovery, and keys that never name the API key."""

from __future__ import annotations

import asyncio
import logging
import socket
import time

import pytest
import redis.asyncio as aioredis

from flinkey_async.errors import FlinkeyError, RedisUnavailableError
from flinkey_async.limits import Limiter, Limits
from flinkey_async.shared.limiter import RedisRateLimit, alone_rate
from tests.support.redis_server import RedisServer


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


#: The command timeout of the tests of what is shared while Redis works: a stall of this
#: machine past the default 0.25 s would turn them into tests of an outage.
STEADY = 2.0


def state_of(shared: RedisRateLimit) -> str:
    """The state, read afresh (it changes under mypy's narrowing)."""
    return shared.state


async def test_processes_take_units_from_one_window(redis_server: RedisServer) -> None:
    """Two backends (two processes) with one name share 5 units a second: the first 5
    acquires go at once, the next 5 wait for the window."""
    limits = Limits(rate=5)
    async with (
        RedisRateLimit(redis_server.url, name="units", timeout=STEADY) as a,
        RedisRateLimit(redis_server.url, name="units", timeout=STEADY) as b,
    ):
        a.attach(limits)
        b.attach(limits)
        began = time.monotonic()
        times = []
        for i in range(10):
            await (a if i % 2 else b).acquire()
            times.append(time.monotonic() - began)
    assert times[4] < 0.3, times
    assert 1.0 <= times[5] < 1.5, times
    assert times[9] < 1.6, times


async def test_other_names_have_their_own_window(redis_server: RedisServer) -> None:
    limits = Limits(rate=3)
    async with (
        RedisRateLimit(redis_server.url, name="own-a", timeout=STEADY) as a,
        RedisRateLimit(redis_server.url, name="own-b", timeout=STEADY) as b,
    ):
        a.attach(limits)
        b.attach(limits)
        began = time.monotonic()
        for _ in range(3):
            await a.acquire()
            await b.acquire()
    assert time.monotonic() - began < 0.5


async def test_a_429_pauses_every_process_and_the_rate_is_learnt_together(
    redis_server: RedisServer,
) -> None:
    limits = Limits()  # adaptive
    async with (
        RedisRateLimit(redis_server.url, name="learn", settle=0.1, timeout=STEADY) as a,
        RedisRateLimit(redis_server.url, name="learn", settle=0.1, timeout=STEADY) as b,
    ):
        a.attach(limits)
        b.attach(limits)
        for i in range(24):  # 24 sent in the last second, all processes together
            await (a if i % 2 else b).acquire()
        assert a.rate is None and b.rate is None
        a.answered(429, 1.0)  # one refused: a stray 429 teaches nothing
        await asyncio.sleep(0.2)
        assert a.rate is None and b.rate is None
        for _ in range(4):  # a burst: 5 of 24 refused, a fifth
            a.answered(429, 1.0)
        await asyncio.sleep(0.3)  # settle: the decision is published
        began = time.monotonic()
        await b.acquire()  # the other process waits for the pause
        waited = time.monotonic() - began
        assert 0.4 <= waited < 1.3, waited
        # 0.9 x (24 sent - 5 refused), plus what it grew since (5 % of it per second)
        assert b.rate == pytest.approx(0.9 * 19, abs=1.2)
        assert a.rate == pytest.approx(b.rate, abs=0.1)


async def test_a_stray_429_under_a_configured_rate_pauses_nobody(redis_server: RedisServer) -> None:
    limits = Limits(rate=50)
    async with (
        RedisRateLimit(redis_server.url, name="stray", timeout=STEADY) as a,
        RedisRateLimit(redis_server.url, name="stray", timeout=STEADY) as b,
    ):
        a.attach(limits)
        b.attach(limits)
        for _ in range(20):
            await a.acquire()
        a.answered(429, 5.0)
        await asyncio.sleep(0.05)
        began = time.monotonic()
        await b.acquire()
        assert time.monotonic() - began < 0.3
        for _ in range(4):  # a burst (5 of 21): everybody pauses
            a.answered(429, 1.0)
        await asyncio.sleep(0.05)
        began = time.monotonic()
        await b.acquire()
        assert time.monotonic() - began >= 0.7


async def test_redis_unreachable_at_start_is_a_typed_error_without_the_password() -> None:
    url = f"redis://:hunter2-secret@127.0.0.1:{_free_port()}/0"
    shared = RedisRateLimit(url, name="down", connect_timeout=0.5)
    assert "hunter2" not in repr(shared)
    began = time.monotonic()
    with pytest.raises(RedisUnavailableError) as info:
        async with shared:
            pass
    assert time.monotonic() - began < 2
    assert isinstance(info.value, FlinkeyError)
    assert "hunter2" not in str(info.value) and "127.0.0.1" in str(info.value)
    lazy = RedisRateLimit(url, name="down", connect_timeout=0.5)
    limiter = Limiter(Limits(rate=10, shared=lazy))
    with pytest.raises(RedisUnavailableError):
        await limiter.acquire()  # not started: the first request finds out
    await lazy.aclose()


def _fullest_second(times: list[float], *, closed: bool = False) -> int:
    """The most of ``times`` in any second ``[t, t + 1)`` (``closed``: ``[t, t + 1]``)."""
    times = sorted(times)
    return max(
        sum(1 for u in times if t <= u and (u <= t + 1.0 if closed else u < t + 1.0)) for t in times
    )


def _most_in_a_window(rate: float, horizon: float = 5.0) -> int:
    """The most requests a pace of ``rate`` puts into any closed window of one second
    within ``horizon`` seconds."""
    return _fullest_second([n / rate for n in range(int(horizon * rate) + 1)], closed=True)


@pytest.mark.parametrize(
    ("rate", "workers"),
    [
        (rate, workers)
        for rate in (3.0, 19.0, 20.0, 40.0, 99.5)
        for workers in (1, 2, 3, 4, 7)
        if int(rate) // workers >= 1  # at least one request a window each
    ],
)
def test_workers_pacing_alone_stay_within_the_rate_even_in_step(rate: float, workers: int) -> None:
    margin = 0.02
    alone = alone_rate(rate, workers, margin)
    # in step (Redis lost for all of them at once): every worker's fullest window together
    assert workers * _most_in_a_window(alone) <= int(rate), alone
    # a share rounded down, not less: at most one request a window lost per worker
    assert alone * workers * (1 + margin) >= int(rate) - (workers - 1) - 1e-9
    # the plain share puts one request more into some window of each worker
    assert workers * _most_in_a_window(rate / workers) > int(rate)


def test_a_share_below_one_request_a_window_is_the_plain_share() -> None:
    assert alone_rate(2.0, 3, 0.02) == pytest.approx(2 / 3)
    assert alone_rate(0.5, 1, 0.02) == pytest.approx(0.5)


async def test_lost_redis_paces_alone_warns_once_and_recovers(
    own_redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="flinkey_async.shared")
    async with RedisRateLimit(
        own_redis_server.url, name="lost", expected_workers=4, retry_every=0.2, timeout=0.2
    ) as shared:
        limiter = Limiter(Limits(rate=40, shared=shared))
        await limiter.acquire()
        limiter.release()
        own_redis_server.stop(kill=True)
        began = time.monotonic()
        async with asyncio.timeout(5):
            for _ in range(6):
                await limiter.acquire()
                limiter.release()
        elapsed = time.monotonic() - began
        # 40 / 4 workers: 10 a window, spread over the window and the margin
        assert state_of(shared) == "local" and shared.rate == pytest.approx(10 / 1.02)
        assert 1.0 <= elapsed < 2.5, elapsed  # a window's wait, then 9.8/s
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1
        own_redis_server.start()
        async with asyncio.timeout(5):
            for _ in range(40):
                await limiter.acquire()
                limiter.release()
                if state_of(shared) == "shared":
                    break
                await asyncio.sleep(0.05)
        assert state_of(shared) == "shared"
        assert shared.rate == 40
        assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1


async def test_three_workers_stay_within_the_rate_through_a_redis_outage(
    own_redis_server: RedisServer,
) -> None:
    """Three workers (three RedisRateLimits, as three processes would have) share 10/s and take
    every unit they can, while Redis dies and comes back: in no second, before, during or
    after the outage, do they take more than 10 together (alone, each keeps 3 a window; a pace
    of 10/3 each would let them take 12 in some second)."""
    rate, units = 10.0, 10
    limits = Limits(rate=rate)
    shared = [
        RedisRateLimit(
            own_redis_server.url, name="outage", expected_workers=3, retry_every=0.2, timeout=0.2
        )
        for _ in range(3)
    ]
    taken: list[float] = []

    async def worker(backend: RedisRateLimit, until: float) -> None:
        for _ in range(200):
            if time.time() >= until:
                return
            await backend.acquire()
            taken.append(time.time())

    for backend in shared:
        backend.attach(limits)
        await backend.start()
    try:
        async with asyncio.timeout(20):
            until = time.time() + 1.0
            await asyncio.gather(*(worker(b, until) for b in shared))
            own_redis_server.stop(kill=True)
            until = time.time() + 1.5
            await asyncio.gather(*(worker(b, until) for b in shared))
            assert [state_of(b) for b in shared] == ["local"] * 3
            own_redis_server.start()
            until = time.time() + 2.5
            await asyncio.gather(*(worker(b, until) for b in shared))
        assert [state_of(b) for b in shared] == ["shared"] * 3
    finally:
        for backend in shared:
            await backend.aclose()
    assert _fullest_second(taken) <= units, sorted(round(t - taken[0], 3) for t in taken)
    assert len(taken) >= 0.6 * rate * 5.0  # paced, not stopped


async def test_a_request_paced_alone_after_redis_answered_again_still_counts(
    own_redis_server: RedisServer,
) -> None:
    """A request that started pacing alone while Redis was lost, and went out after Redis
    answered again, took no unit: the window does not know it. For a window after it, the
    process keeps pacing alone; trusting the window at once would let a full window's units
    go within a second of it."""
    units = 10
    backend = RedisRateLimit(
        own_redis_server.url, name="rejoin", expected_workers=14, retry_every=0.1, timeout=1.0
    )
    # alone: one request every 1.4 s, so the one paced alone goes out more than a window
    # after Redis answered again
    backend.attach(Limits(rate=units))
    await backend.start()
    try:
        async with asyncio.timeout(20):
            await backend.acquire()
            own_redis_server.stop(kill=True)
            await backend.acquire()  # Redis lost: after a window's wait, alone
            assert state_of(backend) == "local"
            own_redis_server.start()
            await backend.acquire()  # paced alone; Redis answers meanwhile
            alone_at = time.time()
            assert state_of(backend) == "shared"
            taken = [alone_at]
            for _ in range(units + 1):
                await backend.acquire()
                taken.append(time.time())
    finally:
        await backend.aclose()
    assert taken[1] - alone_at >= 1.3  # the next one waits for the pace, not the window
    assert _fullest_second(taken) <= units, [round(t - alone_at, 3) for t in taken]


async def test_keys_name_the_key_by_a_name_or_a_hash_never_the_api_key(
    redis_server: RedisServer,
) -> None:
    api_key = "sk-live-0123456789abcdef"
    name = RedisRateLimit.name_for(api_key)
    assert api_key not in name and name == RedisRateLimit.name_for(api_key)
    assert name != RedisRateLimit.name_for(api_key + "x")
    async with RedisRateLimit(redis_server.url, name=name) as shared:
        shared.attach(Limits(rate=5))
        await shared.acquire()
        shared.answered(429, 1.0)
        for _ in range(3):
            shared.answered(429, 1.0)
        await asyncio.sleep(0.1)
        assert all(key.startswith(f"{{flinkey-rate:{name}}}:") for key in shared.keys.values())
    client = aioredis.Redis.from_url(redis_server.url)
    try:
        keys = [k.decode() if isinstance(k, bytes) else k for k in await client.keys("*")]
    finally:
        await client.aclose()
    assert any(name in k for k in keys)
    assert not any(api_key in k for k in keys)


def test_arguments_are_checked() -> None:
    with pytest.raises(TypeError):
        Limits(shared=object())  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        RedisRateLimit("http://127.0.0.1:1", name="x")
    for bad in ("", "has space", "x" * 101, "{tag}"):
        with pytest.raises(ValueError):
            RedisRateLimit("redis://127.0.0.1:1/0", name=bad)
    with pytest.raises(ValueError):
        RedisRateLimit("redis://127.0.0.1:1/0", name="x", expected_workers=0)
    shared = RedisRateLimit("redis://127.0.0.1:1/0", name="x")
    shared.attach(Limits(rate=5, shared=shared))
    with pytest.raises(ValueError):
        shared.attach(Limits(rate=6, shared=shared))
