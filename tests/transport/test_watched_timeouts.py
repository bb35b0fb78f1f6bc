"""The total timeout the pipeline keeps itself (one loop timer per second for every attempt due
in it, instead of aiohttp's timer per request), against a real server that does not answer."""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from flinkey_async import FlinkeyClient, RetryPolicy
from flinkey_async.errors import OutcomeUnknownError, RequestTimeoutError
from tests.support.recording import API_KEY, CUSTOMER_ID, json_response

ASSIGNMENT = {"id": 1, "carId": 7, "userId": 9, "start": "2026-03-01T08:00:00Z", "end": None}
# Above its ceil_threshold, so rounded up to a whole second and kept by the pipeline.
WATCHED = aiohttp.ClientTimeout(total=0.6, ceil_threshold=0.3)


class Silent:
    """A server whose ``/assignments/1`` and ``PUT /assignments`` answer only when released;
    ``/assignments/2`` answers at once; ``/assignments/3`` answers its first request 503 at
    once, the others only when released."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.holding = asyncio.Event()  # a held request has arrived
        self.arrived: list[str] = []
        self.server: TestServer | None = None

    async def start(self) -> str:
        async def held(request: web.Request) -> web.Response:
            self.arrived.append(f"{request.method} {request.path}")
            self.holding.set()
            await self.release.wait()
            return json_response(ASSIGNMENT)

        async def quick(request: web.Request) -> web.Response:
            self.arrived.append(f"{request.method} {request.path}")
            return json_response({**ASSIGNMENT, "id": 2})

        async def failing_then_held(request: web.Request) -> web.Response:
            if f"{request.method} {request.path}" not in self.arrived:
                self.arrived.append(f"{request.method} {request.path}")
                return json_response({"statusCode": 503, "message": "busy"}, status=503)
            return await held(request)

        app = web.Application()
        app.router.add_get("/v3/assignments/1", held)
        app.router.add_get("/v3/assignments/3", failing_then_held)
        app.router.add_put("/v3/assignments", held)
        app.router.add_get("/v3/assignments/2", quick)
        self.server = TestServer(app)
        await self.server.start_server()
        return str(self.server.make_url("/v3"))

    async def close(self) -> None:
        self.release.set()
        if self.server is not None:
            await self.server.close()


@pytest.fixture
async def silent() -> AsyncIterator[tuple[Silent, str]]:
    server = Silent()
    url = await server.start()
    try:
        yield server, url
    finally:
        await server.close()


def client_for(url: str, **kw: Any) -> FlinkeyClient:
    options: dict[str, Any] = {"timeout": WATCHED, "retry": RetryPolicy.disabled(), **kw}
    return FlinkeyClient(API_KEY, CUSTOMER_ID, token="t", base_url=url, **options)


@contextlib.contextmanager
def counting_timers(
    loop: asyncio.AbstractEventLoop, due: tuple[float, float]
) -> Iterator[list[float]]:
    """Within the block, count the loop's timers due between ``due`` seconds from when they
    are made (by anyone: aiohttp's per-request timers included)."""
    seen: list[float] = []
    original = loop.call_at

    def call_at(when: float, callback: Any, *args: Any, **kw: Any) -> asyncio.TimerHandle:
        if due[0] <= when - loop.time() <= due[1]:
            seen.append(when)
        return original(when, callback, *args, **kw)

    loop.call_at = call_at  # type: ignore[method-assign,assignment]
    try:
        yield seen
    finally:
        del loop.call_at


async def all_time_out(client: FlinkeyClient, calls: int) -> None:
    """``calls`` concurrent reads of the held assignment: each raises RequestTimeoutError."""
    results = await asyncio.gather(
        *(client.assignments.get(1) for _ in range(calls)), return_exceptions=True
    )
    assert all(isinstance(r, RequestTimeoutError) for r in results), [repr(r) for r in results]


async def test_a_read_times_out_at_the_whole_second_its_total_rounds_up_to(
    silent: tuple[Silent, str],
) -> None:
    _, url = silent
    loop = asyncio.get_running_loop()
    async with client_for(url) as client:
        started = loop.time()
        with pytest.raises(RequestTimeoutError, match="GET /assignments/1 timed out"):
            await client.assignments.get(1)
        ended = loop.time()
    due = math.ceil(started + WATCHED.total)  # type: ignore[operator]
    assert due - 0.02 <= ended < due + 0.5
    assert ended - started >= 0.6


async def test_concurrent_attempts_share_one_timer_per_second(
    silent: tuple[Silent, str],
) -> None:
    server, url = silent
    loop = asyncio.get_running_loop()
    async with client_for(url) as client:
        await client.assignments.get(2)  # connections, the token and the clock set up
        with counting_timers(loop, due=(0.3, 2.0)) as timers:  # the total: 0.6 s, rounded up
            await all_time_out(client, 32)
    assert server.arrived.count("GET /v3/assignments/1") == 32
    # aiohttp's own total timeout would have made 32. The warm-up call's second may serve
    # them all (no new timer), or they may straddle one more.
    assert len(timers) <= 2, timers
    assert all(when == int(when) for when in timers)


async def test_calls_one_after_another_share_their_seconds_timer(
    silent: tuple[Silent, str],
) -> None:
    server, url = silent
    loop = asyncio.get_running_loop()
    async with client_for(url) as client:
        await client.assignments.get(2)
        with counting_timers(loop, due=(0.3, 2.0)) as timers:
            for _ in range(20):  # each ends before the next starts: its watch is left empty
                assert (await client.assignments.get(2)).id == 2
        watches = client._pipeline._watches
        assert watches is not None and not any(watches.values())
    assert server.arrived.count("GET /v3/assignments/2") == 21
    assert len(timers) <= 2, timers  # one per call, the way aiohttp keeps it


async def test_a_deadline_shorter_than_the_total_is_kept_the_same_way(
    silent: tuple[Silent, str],
) -> None:
    _, url = silent
    loop = asyncio.get_running_loop()
    long_total = aiohttp.ClientTimeout(total=30, ceil_threshold=0.3)
    async with client_for(url, timeout=long_total, deadline=0.8) as client:
        await client.assignments.get(2)
        started = loop.time()
        with counting_timers(loop, due=(0.3, 2.0)) as timers:
            await all_time_out(client, 16)
        ended = loop.time()
    assert len(timers) <= 2, timers  # aiohttp's own: one per call
    assert ended < math.ceil(started + 0.8) + 0.5


async def test_a_retry_is_kept_within_the_time_left(silent: tuple[Silent, str]) -> None:
    server, url = silent
    loop = asyncio.get_running_loop()
    retrying = RetryPolicy(max_retries=2, backoff_base=0.01, backoff_max=0.01, jitter=0)
    long_total = aiohttp.ClientTimeout(total=30, ceil_threshold=0.3)
    async with client_for(url, timeout=long_total, deadline=1.5, retry=retrying) as client:
        await client.assignments.get(2)
        started = loop.time()
        with (
            counting_timers(loop, due=(0.3, 3.0)) as timers,
            pytest.raises(RequestTimeoutError),
        ):
            await client.assignments.get(3)  # a 503, then a retry that gets no answer
        ended = loop.time()
    assert server.arrived.count("GET /v3/assignments/3") == 2
    # Both attempts end at the deadline's second: its timer, or the warm-up call's (aiohttp's
    # own: one timer per attempt).
    assert len(timers) <= 1 and all(when == int(when) for when in timers), timers
    assert ended < math.ceil(started + 1.5) + 0.5


async def test_a_retry_without_a_deadline_is_kept_too(silent: tuple[Silent, str]) -> None:
    server, url = silent
    loop = asyncio.get_running_loop()
    retrying = RetryPolicy(max_retries=1, backoff_base=0.01, backoff_max=0.01, jitter=0)
    async with client_for(url, deadline=None, retry=retrying) as client:
        warmed = loop.time()
        await client.assignments.get(2)
        # Start just after a second the warm-up's timer is past: both attempts are then due
        # at the same fresh second.
        await asyncio.sleep(math.ceil(warmed + 0.7) + 0.05 - loop.time())
        with (
            counting_timers(loop, due=(0.3, 2.0)) as timers,
            pytest.raises(RequestTimeoutError),
        ):
            await client.assignments.get(3)  # a 503, then a retry that gets no answer
    assert server.arrived.count("GET /v3/assignments/3") == 2
    # One timer for both attempts (aiohttp's own would add one for the retry).
    assert len(timers) == 1 and timers[0] == int(timers[0]), timers


async def test_a_write_that_times_out_is_not_sent_again(silent: tuple[Silent, str]) -> None:
    server, url = silent
    start = datetime(2026, 3, 1, 8, tzinfo=UTC)
    async with client_for(url, retry=RetryPolicy(max_retries=3, jitter=0)) as client:
        with pytest.raises(OutcomeUnknownError) as caught:
            await client.assignments.create(
                car_id=7, user_id=9, start=start, end=start + timedelta(days=1)
            )
    assert caught.value.timed_out
    assert server.arrived.count("PUT /v3/assignments") == 1


async def test_a_task_that_timed_out_goes_on_uncancelled(silent: tuple[Silent, str]) -> None:
    _, url = silent
    async with client_for(url) as client:
        with pytest.raises(RequestTimeoutError):
            await client.assignments.get(1)
        task = asyncio.current_task()
        assert task is not None and task.cancelling() == 0
        await asyncio.sleep(0.05)  # no cancellation left pending
        assert (await client.assignments.get(2)).id == 2
        watches = client._pipeline._watches
        assert watches is not None and not any(watches.values())  # no task left watched


async def test_the_callers_cancellation_stays_a_cancellation(silent: tuple[Silent, str]) -> None:
    server, url = silent
    async with client_for(url) as client:
        call = asyncio.create_task(client.assignments.get(1))
        await asyncio.wait_for(server.holding.wait(), 5)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call


async def test_a_cancellation_arriving_with_the_expiry_stays_a_cancellation(
    silent: tuple[Silent, str],
) -> None:
    server, url = silent
    async with client_for(url) as client:
        call = asyncio.create_task(client.assignments.get(1))
        await asyncio.wait_for(server.holding.wait(), 5)
        watches = client._pipeline._watches
        assert watches is not None and len(watches) == 1
        (second,) = watches
        watches.expire(second)  # the timer, and the caller's cancel in the same loop step
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call


async def test_the_callers_shorter_timeout_is_the_callers(silent: tuple[Silent, str]) -> None:
    _, url = silent
    async with client_for(url) as client:
        with pytest.raises(TimeoutError) as caught:
            async with asyncio.timeout(0.2):
                await client.assignments.get(1)
    assert not isinstance(caught.value, RequestTimeoutError)


async def test_closing_the_client_cancels_its_timers(silent: tuple[Silent, str]) -> None:
    server, url = silent
    client = client_for(url)
    async with client:
        call = asyncio.create_task(client.assignments.get(1))
        await asyncio.wait_for(server.holding.wait(), 5)
        watches = client._pipeline._watches
        assert watches is not None and len(watches) == 1
        handles = [watch.handle for watch in watches.values()]
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
    assert not watches
    assert all(handle.cancelled() for handle in handles)


async def test_a_short_total_is_left_to_aiohttp(silent: tuple[Silent, str]) -> None:
    _, url = silent
    short = aiohttp.ClientTimeout(total=0.2)  # below the default ceil_threshold of 5 s
    loop = asyncio.get_running_loop()
    async with client_for(url, timeout=short) as client:
        started = loop.time()
        with pytest.raises(RequestTimeoutError):
            await client.assignments.get(1)
        assert loop.time() - started < 0.6  # not rounded up to a second
        assert not client._pipeline._watches
