"""``PasswordGrant``'s failure backoff: it doubles up to its cap and stays there however many
fetches fail in a row (``2.0 ** 1024`` overflows: the count of doublings is capped), and its
arguments are checked when the grant is made."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest

from flinkey_async.auth import PasswordGrant, Secret, TokenResponse
from flinkey_async.errors import ServerError, ValidationError


class FailingEndpoint:
    """A token endpoint that always answers 503, and a clock the test moves."""

    def __init__(self) -> None:
        self.now = 0.0
        self.fetches = 0

    def clock(self) -> float:
        return self.now

    async def fetch(self, username: str, password: Secret) -> TokenResponse:
        self.fetches += 1
        raise ServerError(503, "token endpoint down")


async def fails(grant: PasswordGrant) -> None:
    with pytest.raises(ServerError, match="token endpoint down"):
        await grant.token()


async def measure_backoff(grant: PasswordGrant, endpoint: FailingEndpoint) -> float:
    """Fail one fetch now, then the seconds until the grant fetches again (probed every half
    second, at most 62 probes: the longest backoff here is 30 s)."""
    fetched = endpoint.fetches
    await fails(grant)
    assert endpoint.fetches == fetched + 1, "the backoff of an earlier failure was not over"
    waited = 0.0
    for _ in range(62):
        endpoint.now += 0.5
        waited += 0.5
        await fails(grant)
        if endpoint.fetches == fetched + 2:
            endpoint.now += 31.0  # leave the backoff of the probe's failure behind
            return waited
    raise AssertionError("no fetch within 31 s")


async def test_backoff_doubles_to_its_cap_and_stays_there_after_any_number_of_failures() -> None:
    loop = asyncio.get_running_loop()
    reported: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    try:
        endpoint = FailingEndpoint()
        grant = PasswordGrant("manager", "secret", endpoint.fetch, clock=endpoint.clock)
        # failure_backoff (1 s) doubling per failure in a row, up to max_failure_backoff (30 s).
        # (Each measure_backoff fails twice: the 1st, 3rd, 5th, ... failure is measured.)
        assert [await measure_backoff(grant, endpoint) for _ in range(5)] == [
            1.0,
            4.0,
            16.0,
            30.0,
            30.0,
        ]
        for _ in range(1_100):  # past the 1,025 failures after which 2.0 ** n overflowed
            endpoint.now += 31.0  # past the longest backoff: each call fetches
            await fails(grant)
        assert endpoint.fetches == 1_110
        assert reported == []  # no callback failed in the loop

        # 100 calls at one instant: the remembered failure answers them all, no fetch.
        for _ in range(100):
            await fails(grant)
        assert endpoint.fetches == 1_110

        # Still the cap, neither more nor less.
        endpoint.now += 31.0
        assert await measure_backoff(grant, endpoint) == 30.0
        assert reported == []
    finally:
        loop.set_exception_handler(None)


@pytest.mark.parametrize(
    ("argument", "value", "error"),
    [
        ("failure_backoff", math.nan, ValidationError),
        ("failure_backoff", -1.0, ValidationError),
        ("failure_backoff", math.inf, ValidationError),
        ("max_failure_backoff", math.nan, ValidationError),
        ("max_failure_backoff", math.inf, ValidationError),
        ("refresh_margin", -5, ValidationError),
        ("refresh_margin", True, ValidationError),
        ("failure_backoff", "1", TypeError),
        ("max_failure_backoff", None, TypeError),
    ],
)
def test_grant_refuses_backoff_arguments_that_are_no_seconds(
    argument: str, value: object, error: type[Exception]
) -> None:
    endpoint = FailingEndpoint()
    with pytest.raises(error, match=argument):
        PasswordGrant("manager", "secret", endpoint.fetch, **{argument: value})  # type: ignore[arg-type]


def test_grant_refuses_a_clock_or_fetch_that_cannot_be_called() -> None:
    endpoint = FailingEndpoint()
    with pytest.raises(TypeError, match="clock must be callable"):
        PasswordGrant("manager", "secret", endpoint.fetch, clock=3.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="fetch must be callable"):
        PasswordGrant("manager", "secret", "https://example.invalid")  # type: ignore[arg-type]


async def test_closing_keeps_the_cancellation_of_the_task_that_closes() -> None:
    """The grant's close waits for the cancelled fetch to unwind; a cancellation of the
    closing task meanwhile propagates (an outer timeout or task group still works)."""

    async def slow_to_unwind(username: str, password: Secret) -> TokenResponse:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            await asyncio.shield(asyncio.sleep(0.2))
            raise
        raise AssertionError("never answered")

    grant = PasswordGrant("manager", Secret("pw-Zq7"), slow_to_unwind)
    waiter = asyncio.ensure_future(grant.token())
    await asyncio.sleep(0.05)
    waiter.cancel()  # the fetch runs on, for nobody
    await asyncio.gather(waiter, return_exceptions=True)
    closer = asyncio.ensure_future(grant.aclose())
    await asyncio.sleep(0.05)  # closing: the fetch is unwinding
    closer.cancel()
    await asyncio.gather(closer, return_exceptions=True)
    assert closer.cancelled()
