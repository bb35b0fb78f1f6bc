"""The SDK against the sandbox over real HTTP: every documented error arrives typed."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import aiohttp
import pytest

from flinkey_async import FlinkeyClient, RetryPolicy
from flinkey_async.errors import (
    InvalidApiKeyError,
    InvalidTokenError,
    NotFoundError,
    RateLimitError,
    ServerError,
    UnsupportedMediaTypeError,
)
from flinkey_async.sandbox import (
    ASSIGNMENT_NOT_FOUND,
    CAR_NOT_FOUND,
    INTERNAL_SERVER_ERROR,
    INVALID_API_KEY,
    INVALID_TOKEN,
    MANAGER_NOT_FOUND,
    USER_NOT_FOUND,
    FaultConfig,
    RateLimit,
    RouteFaults,
    Sandbox,
    SandboxConfig,
)

NO_RETRY = RetryPolicy.disabled()


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with Sandbox(SandboxConfig(write_delay=0.01)) as sb:
        yield sb


def client(
    sandbox: Sandbox,
    *,
    customer_id: int = 1,
    api_key: str | None = None,
    password: str | None = None,
    **kw: object,
) -> FlinkeyClient:
    assert sandbox.url is not None
    config = sandbox.config
    return FlinkeyClient(
        api_key or config.api_key,
        customer_id,
        username=config.username,
        password=password or config.password,
        base_url=sandbox.url,
        **kw,  # type: ignore[arg-type]
    )


async def test_invalid_api_key(sandbox: Sandbox) -> None:
    async with client(sandbox, api_key="wrong-key") as c:
        with pytest.raises(InvalidApiKeyError) as info:
            await c.assignments.get(50001)
    assert info.value.status == 401 and info.value.message == INVALID_API_KEY


async def test_static_invalid_token(sandbox: Sandbox) -> None:
    assert sandbox.url is not None
    async with FlinkeyClient(
        sandbox.config.api_key, 1, token="not-a-token", base_url=sandbox.url
    ) as c:
        with pytest.raises(InvalidTokenError) as info:
            await c.assignments.get(50001)
    assert info.value.message == INVALID_TOKEN


async def test_expired_token_is_refreshed_transparently(sandbox: Sandbox) -> None:
    async with client(sandbox) as c:
        first = await c.assignments.get(50001)
        sandbox.expire_tokens()  # the server forgets every token it issued
        assert await c.assignments.get(50001) == first


async def test_unknown_customer_is_manager_not_found(sandbox: Sandbox) -> None:
    async with client(sandbox, customer_id=999) as c:
        with pytest.raises(NotFoundError) as info:
            await c.assignments.list_for_car(101)
    assert info.value.message == MANAGER_NOT_FOUND


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda c: c.assignments.get(987654), ASSIGNMENT_NOT_FOUND),
        (lambda c: c.assignments.list_for_car(987654), CAR_NOT_FOUND),
        (lambda c: c.assignments.list_for_user(987654), USER_NOT_FOUND),
        # car 201 belongs to customer 2, not to customer 1
        (lambda c: c.assignments.list_for_car(201), CAR_NOT_FOUND),
    ],
)
async def test_documented_not_found_texts(sandbox: Sandbox, call: object, message: str) -> None:
    async with client(sandbox) as c:
        with pytest.raises(NotFoundError) as info:
            await call(c)  # type: ignore[operator]
    assert info.value.status == 404 and info.value.message == message


async def test_415_problem_object(sandbox: Sandbox) -> None:
    async with client(sandbox) as c:
        # The resource methods always send JSON; the session layer can send a bare PUT.
        with pytest.raises(UnsupportedMediaTypeError) as info:
            await c._pipeline.request("PUT", ("assignments",))
    assert info.value.status == 415
    assert info.value.message == "Unsupported Media Type"
    assert info.value.trace_id


async def test_429_from_rate_limit_is_retried_then_raised_when_too_long(sandbox: Sandbox) -> None:
    sandbox.rate_limit = RateLimit(requests=2, window=30, sliding=True)  # no window edge to cross
    async with client(sandbox, retry=RetryPolicy(max_retries=2, max_retry_after=5)) as c:
        await c.assignments.get(50001)  # the token request counts as well
        with pytest.raises(RateLimitError) as info:
            await c.assignments.get(50001)
    assert info.value.retry_after is not None and 1 <= info.value.retry_after <= 30
    assert info.value.message.startswith("Rate limit is exceeded. Try again in ")


async def test_a_429_without_retry_after_is_waited_out_by_its_message(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """flinkey's reference shows the 429 body only: the wait then comes from its "Try again
    in N seconds" (the sleep is recorded, and the limit lifted, instead of slept)."""
    assert sandbox.url is not None
    sandbox.rate_limit = RateLimit(requests=1, window=5, sliding=True, retry_after_header=False)
    async with aiohttp.ClientSession() as http:
        headers = sandbox.auth_headers(customer_id=1)
        statuses = []
        for _ in range(2):
            async with http.get(f"{sandbox.url}/assignments/50001", headers=headers) as answer:
                statuses.append(answer.status)
                assert "Retry-After" not in answer.headers
                body = await answer.read()
    assert statuses == [200, 429]
    assert b"Try again in " in body
    sandbox.rate_limit = RateLimit(requests=1, window=5, sliding=True, retry_after_header=False)
    waits: list[float] = []

    async def lift(delay: float, *args: object) -> None:
        waits.append(delay)
        sandbox.rate_limit = None

    monkeypatch.setattr("flinkey_async._pipeline._sleep", lift)
    async with FlinkeyClient(
        sandbox.config.api_key, 1, token=sandbox.issue_token(), base_url=sandbox.url
    ) as c:
        await c.assignments.get(50001)
        assert (await c.assignments.get(50001)).id == 50001
        assert c.stats.rate_limited == 1
    assert len(waits) == 1 and waits[0] in {1.0, 2.0, 3.0, 4.0, 5.0}  # the message's whole seconds


async def test_injected_429s_are_retried_transparently(
    sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="flinkey_async")
    sandbox.faults = FaultConfig(
        routes={"GET /cars/{carId}/assignments": RouteFaults(rate_limit=0.5, retry_after=1)}, seed=3
    )
    policy = RetryPolicy(max_retries=10, max_retry_after=1)
    async with client(sandbox, retry=policy) as c:  # Retry-After is 1 s: few calls
        results = [await c.assignments.list_for_car(101) for _ in range(3)]
        stats = c.stats
    assert all(r == results[0] for r in results) and results[0]
    retries = [r for r in caplog.records if "failed (429)" in r.getMessage()]
    assert retries, "the seeded faults should have answered 429 at least once"
    assert stats.rate_limited == stats.retries == len(retries)
    assert stats.requests == 3 + len(retries) + 1  # the calls, their retries, the token


async def test_500_read_retried_write_raised_and_not_repeated(
    sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="flinkey_async")
    fast = RetryPolicy(max_retries=8, backoff_base=0.001, jitter=0)
    async with client(sandbox, retry=fast) as c:
        await c.assignments.get(50001)  # token fetched before faults start
        sandbox.faults = FaultConfig(routes={"*": RouteFaults(server_error=0.5)}, seed=11)
        for _ in range(6):
            assert (await c.assignments.get(50001)).id == 50001
        assert any("failed (500)" in r.getMessage() for r in caplog.records)
        sandbox.faults = FaultConfig(routes={"PUT /assignments": RouteFaults(server_error=1.0)})
        with pytest.raises(ServerError) as info:
            await c.assignments.create(
                car_id=101, user_id=1001, start=datetime(2030, 1, 1, tzinfo=UTC)
            )
    assert info.value.message == INTERNAL_SERVER_ERROR
    assert not any("PUT /assignments failed" in r.getMessage() for r in caplog.records)
    await sandbox.drain()
    assert sandbox.outcomes == []  # the failed PUT was neither applied nor repeated
