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
from flinkey_async.shared.limiter import RedisRateLimit
from tests.support.redis_server import RedisServer


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def state_of(shared: RedisRateLimit) -> str:
    """The state, read afresh (it changes under mypy's narrowing)."""
    return shared.state


async def test_processes_take_units_from_one_window(redis_server: RedisServer) -> None:
    """Two backends (two processes) with one name share 5 units a second: the first 5
    acquires go at once, the next 5 wait for the window."""
    limits = Limits(rate=5)
    async with (
        RedisRateLimit(redis_server.url, name="units") as a,
        RedisRateLimit(redis_server.url, name="units") as b,
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
        RedisRateLimit(redis_server.url, name="own-a") as a,
        RedisRateLimit(redis_server.url, name="own-b") as b,
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
        RedisRateLimit(redis_server.url, name="learn", settle=0.1) as a,
        RedisRateLimit(redis_server.url, name="learn", settle=0.1) as b,
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
        RedisRateLimit(redis_server.url, name="stray") as a,
        RedisRateLimit(redis_server.url, name="stray") as b,
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
        assert state_of(shared) == "local" and shared.rate == 10  # 40 / 4 workers
        assert 1.0 <= elapsed < 2.5, elapsed  # a window's wait, then 10/s
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
