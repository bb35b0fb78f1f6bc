"""The retry pipeline against exact sequences of failures, on a real loopback server.

Each case queues answers for one route in order (an error status, a reset connection, an
answer that never comes, a 429 with or without ``Retry-After``) and checks what the pipeline
did: how many requests reached the server, what it returned or raised, and (sleeps are
recorded instead of slept) how long it waited before each retry.

(aioresponses, the usual mock for this, cannot build responses for aiohttp 3.14; real servers
give the same exactness and also exercise the real connection handling.)
"""

from __future__ import annotations

import asyncio
import socket
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from flinkey_async import FlinkeyClient, RetryPolicy
from flinkey_async.errors import (
    OutcomeUnknownError,
    RateLimitError,
    RequestTimeoutError,
    ServerError,
    TransportError,
)
from tests.support.recording import (
    API_KEY,
    CUSTOMER_ID,
    TOKEN,
    Recorded,
    RecordingServer,
    json_response,
)

ASSIGNMENT = {"id": 1, "carId": 7, "userId": 9, "start": "2026-03-01T08:00:00Z", "end": None}
START = datetime(2026, 3, 1, 8, tzinfo=UTC)
POLICY = RetryPolicy(max_retries=3, backoff_base=0.5, backoff_max=8.0, jitter=0, min_delay=0.05)
LIMITED = {"status": "429", "message": "Rate limit is exceeded. Try again in 2 seconds."}
ATTEMPT_TIMEOUT = 0.3


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Every delay the pipeline sleeps before a retry, recorded instead of slept."""
    recorded: list[float] = []
    real_sleep = asyncio.sleep

    async def fake_sleep(delay: float, *args: Any) -> None:
        recorded.append(delay)
        await real_sleep(0)

    monkeypatch.setattr("flinkey_async._pipeline._sleep", fake_sleep)
    return recorded


def client(url: str) -> FlinkeyClient:
    import aiohttp

    return FlinkeyClient(
        API_KEY,
        CUSTOMER_ID,
        token=TOKEN,
        base_url=url,
        retry=POLICY,
        timeout=aiohttp.ClientTimeout(total=ATTEMPT_TIMEOUT),
    )


def ok(_: web.Request, __: Recorded) -> web.Response:
    return json_response(ASSIGNMENT)


def status(code: int, body: str = "Internal server error.") -> Any:
    return lambda r, _: web.Response(status=code, text=body)


def limited(retry_after: str | None, message: dict[str, str] = LIMITED) -> Any:
    headers = {"Retry-After": retry_after} if retry_after is not None else None
    return lambda r, _: json_response(message, 429, headers)


def reset(request: web.Request, _: Recorded) -> web.Response:
    """Read the request, then close the connection without an answer."""
    assert request.transport is not None
    request.transport.close()
    return web.Response(status=204)


def unreadable(_: web.Request, __: Recorded) -> web.Response:
    """Answer with a header over aiohttp's size limit (8190 bytes), as a gateway might add:
    the request arrived, and what came back cannot be read."""
    return web.Response(status=204, headers={"X-Trace": "a" * 9000})


async def silent(_: web.Request, __: Recorded) -> web.Response:
    """Never answer within the client's attempt timeout."""
    await asyncio.sleep(ATTEMPT_TIMEOUT * 10)
    return web.Response(status=204)


async def test_500_then_200_is_retried_for_a_read(
    server: RecordingServer, sleeps: list[float]
) -> None:
    server.queue("GET", "/assignments/1", status(500), ok)
    async with client(server.url) as c:
        assert (await c.assignments.get(1)).id == 1
    assert len(server.requests) == 2
    assert sleeps == [0.5]


async def test_resets_then_200_for_a_read(server: RecordingServer, sleeps: list[float]) -> None:
    server.queue("GET", "/assignments/1", reset, reset, ok)
    async with client(server.url) as c:
        assert (await c.assignments.get(1)).id == 1
    assert len(server.requests) == 3
    assert sleeps == [0.5, 1.0]


async def test_an_unreadable_answer_then_200_for_a_read(
    server: RecordingServer, sleeps: list[float]
) -> None:
    server.queue("GET", "/assignments/1", unreadable, ok)
    async with client(server.url) as c:
        assert (await c.assignments.get(1)).id == 1
    assert len(server.requests) == 2
    assert sleeps == [0.5]


async def test_timeout_then_200_for_a_read(server: RecordingServer, sleeps: list[float]) -> None:
    server.queue("GET", "/assignments/1", silent, ok)
    async with client(server.url) as c:
        assert (await c.assignments.get(1)).id == 1
    assert len(server.requests) == 2
    assert sleeps == [0.5]


async def test_a_read_gives_up_after_max_retries(
    server: RecordingServer, sleeps: list[float]
) -> None:
    server.on("GET", "/assignments/1", status(503, "busy"))
    async with client(server.url) as c:
        with pytest.raises(ServerError) as info:
            await c.assignments.get(1)
    assert info.value.status == 503
    assert len(server.requests) == 4
    assert sleeps == [0.5, 1.0, 2.0]


async def test_a_read_timing_out_every_time_raises_a_timeout(
    server: RecordingServer, sleeps: list[float]
) -> None:
    server.on("GET", "/assignments/1", silent)
    async with client(server.url) as c:
        with pytest.raises(RequestTimeoutError):
            await c.assignments.get(1)
    assert len(server.requests) == 4


async def test_429_waits_retry_after_then_succeeds(
    server: RecordingServer, sleeps: list[float]
) -> None:
    server.queue("GET", "/assignments/1", limited("3"), ok)
    async with client(server.url) as c:
        assert (await c.assignments.get(1)).id == 1
    assert sleeps == [3.0]  # the header wins over the body's "2 seconds"


async def test_429_without_retry_after_reads_the_message(
    server: RecordingServer, sleeps: list[float]
) -> None:
    server.queue("GET", "/assignments/1", limited(None), ok)
    async with client(server.url) as c:
        assert (await c.assignments.get(1)).id == 1
    assert sleeps == [2.0]


async def test_429_with_nothing_to_go_by_backs_off(
    server: RecordingServer, sleeps: list[float]
) -> None:
    vague = {"status": "429", "message": "slow down"}
    server.queue("GET", "/assignments/1", limited(None, vague), limited(None, vague), ok)
    async with client(server.url) as c:
        assert (await c.assignments.get(1)).id == 1
    assert sleeps == [0.5, 1.0]


async def test_a_retry_after_beyond_the_cap_is_raised_at_once(
    server: RecordingServer, sleeps: list[float]
) -> None:
    server.on("GET", "/assignments/1", limited("600"))
    async with client(server.url) as c:
        with pytest.raises(RateLimitError) as info:
            await c.assignments.get(1)
    assert info.value.retry_after == 600
    assert sleeps == [] and len(server.requests) == 1


async def test_429_is_retried_for_a_write(server: RecordingServer, sleeps: list[float]) -> None:
    server.queue("PUT", "/assignments", limited("1"), lambda r, _: web.Response(status=204))
    async with client(server.url) as c:
        await c.assignments.create(car_id=7, user_id=9, start=START)
    assert len(server.requests) == 2
    assert sleeps == [1.0]


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (status(500), ServerError),
        (status(503, "busy"), ServerError),
        (reset, OutcomeUnknownError),
        (silent, OutcomeUnknownError),
        (unreadable, OutcomeUnknownError),
    ],
)
async def test_a_write_is_never_repeated_after_it_may_have_arrived(
    server: RecordingServer, sleeps: list[float], answer: Any, error: type[Exception]
) -> None:
    server.queue("PUT", "/assignments", answer, lambda r, _: web.Response(status=204))
    async with client(server.url) as c:
        with pytest.raises(error):
            await c.assignments.create(car_id=7, user_id=9, start=START)
    assert len(server.requests) == 1
    assert sleeps == []


async def test_a_refused_connection_is_retried_for_a_write(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing listens at first (the write cannot have arrived): the pipeline retries, and the
    server that starts during the backoff receives the write exactly once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    received: list[bytes] = []

    async def accept(request: web.Request) -> web.Response:
        received.append(await request.read())
        return web.Response(status=204)

    app = web.Application()
    app.router.add_put("/v3/assignments", accept)
    server = TestServer(app, host="127.0.0.1", port=port)
    real_sleep = asyncio.sleep
    started: list[float] = []

    async def start_during_backoff(delay: float, *args: Any) -> None:
        if not started:
            started.append(delay)
            await server.start_server()
        await real_sleep(0)

    monkeypatch.setattr("flinkey_async._pipeline._sleep", start_during_backoff)
    try:
        async with client(f"http://127.0.0.1:{port}/v3") as c:
            await c.assignments.create(car_id=7, user_id=9, start=START)
    finally:
        await server.close()
    assert started == [0.5]
    assert len(received) == 1


async def test_connection_refused_every_time_is_a_transport_error(sleeps: list[float]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with client(f"http://127.0.0.1:{port}/v3") as c:
        with pytest.raises(TransportError, match="cannot connect"):
            await c.assignments.get(1)
    assert sleeps == [0.5, 1.0, 2.0]
