"""Client-side limits: concurrency, a configured rate, the adaptive rate against a sandbox that
answers 429, and the retry budget."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp import web

from flinkey_async import FlinkeyClient, JsonPatch, RetryPolicy
from flinkey_async.errors import RequestTimeoutError, ServerError
from flinkey_async.limits import Limiter, Limits
from flinkey_async.operations import PendingOperation
from flinkey_async.sandbox import RateLimit, Sandbox, SandboxConfig
from tests.support.recording import API_KEY, CUSTOMER_ID, TOKEN, RecordingServer, json_response

ASSIGNMENT = {"id": 1, "carId": 7, "userId": 9, "start": "2026-03-01T08:00:00Z", "end": None}


def test_limits_are_checked() -> None:
    for bad in ({"rate": 0}, {"rate": -1.0}, {"concurrency": 0}, {"backoff": 1.0}):
        with pytest.raises(ValueError):
            Limits(**bad)


async def test_waiters_cancelled_with_the_holder_raise_their_cancellation() -> None:
    """The slot's holder and its waiters cancelled at once (a cancelled gather): the holder's
    release drops a cancelled waiter, which must still leave with its CancelledError (it once
    raised ValueError from the queue), and the slot is free again."""
    limiter = Limiter(Limits(concurrency=1))
    await limiter.acquire()

    async def holder() -> None:
        try:
            await asyncio.sleep(30)
        finally:
            limiter.release()

    tasks = [asyncio.ensure_future(holder())]
    tasks += [asyncio.ensure_future(limiter.acquire()) for _ in range(2)]
    await asyncio.sleep(0.01)
    for task in tasks:
        task.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert [type(r) for r in results] == [asyncio.CancelledError] * 3
    await asyncio.wait_for(limiter.acquire(), 1)  # the slot was given back


async def test_cancelled_waiters_give_their_turns_in_the_pace_back() -> None:
    """Twenty requests waiting for their turn at 2 per second, cancelled: the next request
    waits at most one interval, not the ten seconds of the turns they had reserved."""
    limiter = Limiter(Limits(rate=2))
    await limiter.acquire()
    limiter.release()
    waiting = [asyncio.ensure_future(limiter.acquire()) for _ in range(20)]
    await asyncio.sleep(0.05)
    for task in waiting:
        task.cancel()
    await asyncio.gather(*waiting, return_exceptions=True)
    began = time.monotonic()
    await asyncio.wait_for(limiter.acquire(), 5)
    assert time.monotonic() - began <= 0.6


async def test_a_turn_later_than_the_deadline_is_not_waited_for_and_nothing_is_sent(
    server: RecordingServer,
) -> None:
    """At 0.5 requests per second and a 1 s deadline, the second and third of three writes
    would leave after their deadline: they fail at once, not sent, instead of waiting 2 and
    4 s and then being sent with no time left (an outcome unknown)."""
    for i in (1, 2, 3):
        server.on("PATCH", f"/assignments/{i}", lambda _, __: web.Response(status=204))
    patch = JsonPatch().replace("/lifetime", 604_800)
    async with FlinkeyClient(
        API_KEY,
        CUSTOMER_ID,
        token=TOKEN,
        base_url=server.url,
        deadline=1.0,
        limits=Limits(rate=0.5),
    ) as client:
        began = time.monotonic()
        results = await asyncio.gather(
            *(client.assignments.update(i, patch) for i in (1, 2, 3)), return_exceptions=True
        )
        took = time.monotonic() - began
    assert isinstance(results[0], PendingOperation)
    for late in results[1:]:
        assert isinstance(late, RequestTimeoutError) and "not sent" in str(late)
    assert took < 0.9
    assert [r.path for r in server.requests] == ["/v3/assignments/1"]


def test_the_adaptive_rate_decreases_on_429_and_increases_again() -> None:
    now = [100.0]
    limiter = Limiter(Limits(), clock=lambda: now[0])
    assert limiter.rate is None  # not limited before the first 429
    for i in range(30):  # the server accepted 30 answers in the last second
        now[0] = 100.0 + i / 30
        limiter.answered(200)
    limiter.answered(429, retry_after=1.0)
    assert limiter.rate is None  # one 429 among many answers: a stray one
    for _ in range(7):  # a burst: 8 of 38 answers
        limiter.answered(429, retry_after=1.0)
    assert limiter.rate == pytest.approx(27.0)  # 0.9 x what was accepted
    limiter.answered(429, retry_after=1.0)  # the same burst: no second decrease
    assert limiter.rate == pytest.approx(27.0)
    now[0] += 1.0
    limiter.answered(200)  # a quiet second: + 5 % of the rate
    assert limiter.rate == pytest.approx(27.0 + 1.35)
    now[0] += 5.0
    limiter.answered(200)  # but not past 95 % of the limit found (30)
    assert limiter.rate == pytest.approx(28.5)
    now[0] += 40.0
    limiter.answered(200)  # long quiet: it may probe beyond, in case the limit was raised
    assert limiter.rate is not None and limiter.rate > 30
    assert limiter.stats.rate_limited == 9


def test_scattered_429s_and_a_few_requests_meeting_429s_teach_no_rate() -> None:
    now = [100.0]
    limiter = Limiter(Limits(), clock=lambda: now[0])
    for i in range(400):  # 100 answers a second, one in twenty a 429 (5 %)
        now[0] = 100.0 + i / 100
        limiter.answered(429 if i % 20 == 19 else 200, retry_after=1.0)
    assert limiter.rate is None and limiter.try_acquire()  # no pause, no pace
    limiter.release()
    quiet = Limiter(Limits(), clock=lambda: now[0])
    for status in (200, 429, 200, 429, 429, 200):  # a handful of requests, half 429
        quiet.answered(status, retry_after=1.0)
    assert quiet.rate is None  # too few answers to tell a limit (it would learn 3/s)


def test_a_configured_rate_is_kept() -> None:
    limiter = Limiter(Limits(rate=5))
    limiter.answered(429, retry_after=0.5)
    assert limiter.rate == 5


def test_the_retry_budget_refuses_beyond_its_window() -> None:
    now = [0.0]
    limiter = Limiter(Limits(retries=3, retry_window=10), clock=lambda: now[0])
    assert [limiter.allow_retry() for _ in range(4)] == [True, True, True, False]
    now[0] = 10.5
    assert limiter.allow_retry()
    assert (limiter.stats.retries, limiter.stats.retries_refused) == (4, 1)


def test_successful_answers_earn_retries_beyond_the_budget_and_failures_do_not() -> None:
    now = [0.0]
    limiter = Limiter(Limits(retries=2, retry_window=10, retry_ratio=0.5), clock=lambda: now[0])
    for _ in range(20):
        limiter.answered(500)  # failures earn nothing
    assert [limiter.allow_retry() for _ in range(3)] == [True, True, False]
    for _ in range(6):
        limiter.answered(200)  # 6 x 0.5: three more retries
    assert [limiter.allow_retry() for _ in range(4)] == [True, True, True, False]
    for _ in range(1000):
        limiter.answered(204)  # saved up to 10 x retries only
    assert sum(limiter.allow_retry() for _ in range(50)) == 20
    assert limiter.stats.retries_refused == 2 + 30


async def test_slots_are_handed_over_in_order_and_survive_a_cancelled_waiter() -> None:
    limiter = Limiter(Limits(concurrency=1))
    assert limiter.try_acquire()
    assert not limiter.try_acquire()  # the one slot is taken
    order: list[str] = []

    async def take(name: str) -> None:
        await limiter.acquire()
        order.append(name)

    first = asyncio.create_task(take("first"))
    second = asyncio.create_task(take("second"))
    third = asyncio.create_task(take("third"))
    await asyncio.sleep(0)  # all three queue up
    limiter.release()  # handed to "first"...
    first.cancel()  # ...which is cancelled before it runs: the slot goes on to "second"
    with pytest.raises(asyncio.CancelledError):
        await first
    await asyncio.wait_for(second, 1)
    assert order == ["second"]
    assert not third.done()
    limiter.release()
    await asyncio.wait_for(third, 1)
    assert order == ["second", "third"]
    limiter.release()
    assert limiter.try_acquire()  # the slot is free again, and only one
    assert not limiter.try_acquire()
    assert limiter.stats.requests == 4  # the cancelled waiter never counted


async def test_a_pause_after_a_429_holds_new_requests_until_it_ends() -> None:
    now = [100.0]
    limiter = Limiter(Limits(), clock=lambda: now[0])
    assert limiter.try_acquire()  # nothing to wait for
    limiter.release()
    for _ in range(20):
        limiter.answered(200)
    for _ in range(5):
        limiter.answered(429, retry_after=0.05)  # a burst of 429s: everybody pauses
    limiter._rate = None  # (the pause alone, not the rate it learnt, is under test)
    assert not limiter.try_acquire()  # a pause is kept: the waiting path
    started = time.monotonic()
    await limiter.acquire()
    assert time.monotonic() - started >= 0.04
    limiter.release()


async def test_concurrency_is_bounded(server: RecordingServer) -> None:
    inflight = peak = 0

    async def slow(_: web.Request, __: object) -> web.Response:
        nonlocal inflight, peak
        inflight += 1
        peak = max(peak, inflight)
        await asyncio.sleep(0.02)
        inflight -= 1
        return json_response(ASSIGNMENT)

    server.on("GET", "/assignments/1", slow)
    async with FlinkeyClient(
        API_KEY, CUSTOMER_ID, token=TOKEN, base_url=server.url, limits=Limits(concurrency=3)
    ) as client:
        await asyncio.gather(*(client.assignments.get(1) for _ in range(12)))
    assert peak == 3


async def test_a_configured_rate_paces_requests(server: RecordingServer) -> None:
    server.on("GET", "/assignments/1", lambda r, _: json_response(ASSIGNMENT))
    async with FlinkeyClient(
        API_KEY, CUSTOMER_ID, token=TOKEN, base_url=server.url, limits=Limits(rate=50)
    ) as client:
        began = time.monotonic()
        await asyncio.gather(*(client.assignments.get(1) for _ in range(26)))
        elapsed = time.monotonic() - began
    assert 0.45 <= elapsed < 1.5  # 25 intervals of 20 ms after the first request


async def test_the_retry_budget_stops_a_retry_storm(server: RecordingServer) -> None:
    server.on("GET", "/assignments/1", lambda r, _: web.Response(status=503, text="busy"))
    policy = RetryPolicy(max_retries=5, backoff_base=0.001, jitter=0, min_delay=0)
    async with FlinkeyClient(
        API_KEY,
        CUSTOMER_ID,
        token=TOKEN,
        base_url=server.url,
        retry=policy,
        limits=Limits(retries=4),
    ) as client:
        results = await asyncio.gather(
            *(client.assignments.get(1) for _ in range(10)), return_exceptions=True
        )
        assert all(isinstance(r, ServerError) for r in results)
        assert client.stats.retries == 4
    assert len(server.requests) == 10 + 4  # not 10 x 6


async def test_the_adaptive_rate_stays_just_under_the_sandbox_limit() -> None:
    """400 writes against 40 requests/s with no rate configured: at most 5 % of the requests
    are answered 429, and the job takes at most 1.25 x the time the limit allows."""
    writes, limit = 400, 40
    config = SandboxConfig(write_delay=0.01, rate_limit=RateLimit(limit, 1.0, sliding=True))
    start = datetime(2031, 1, 1, tzinfo=UTC)
    async with Sandbox(config) as sandbox:
        assert sandbox.url is not None
        async with FlinkeyClient(
            sandbox.config.api_key,
            1,
            token=sandbox.issue_token(),
            base_url=sandbox.url,
            retry=RetryPolicy(max_retries=10, max_retry_after=5),
        ) as client:
            semaphore = asyncio.Semaphore(16)

            async def create(i: int) -> None:
                async with semaphore:
                    await client.assignments.create(
                        car_id=101 + i % 10, user_id=1001, start=start + timedelta(minutes=i)
                    )

            began = time.monotonic()
            await asyncio.gather(*(create(i) for i in range(writes)))
            elapsed = time.monotonic() - began
            stats = client.stats
    assert stats.requests == writes + stats.retries
    assert stats.rate_limited <= 0.05 * stats.requests, stats
    assert elapsed <= 1.25 * writes / limit, (elapsed, stats)
