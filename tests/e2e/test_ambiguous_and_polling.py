"""Ambiguous writes keep their operation, and polling many creates costs one list per car and
round (against the sandbox, with its faults)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from flinkey_async import FlinkeyClient, JsonPatch, RetryPolicy
from flinkey_async.errors import (
    OperationFailedError,
    OperationTimeoutError,
    OutcomeUnknownError,
    ServerError,
)
from flinkey_async.models import NewAssignment
from flinkey_async.sandbox import FaultConfig, RouteFaults, Sandbox, SandboxConfig

START = datetime(2031, 1, 1, tzinfo=UTC)


def client(sandbox: Sandbox, **kw: object) -> FlinkeyClient:
    assert sandbox.url is not None
    return FlinkeyClient(
        sandbox.config.api_key,
        1,
        token=sandbox.issue_token(),
        base_url=sandbox.url,
        **kw,  # type: ignore[arg-type]
    )


async def test_a_write_reset_after_sending_keeps_its_operation_which_polling_confirms() -> None:
    faults = FaultConfig({"PUT /assignments": RouteFaults(reset_after=1.0)})
    async with Sandbox(SandboxConfig(write_delay=0.01, faults=faults)) as sandbox:
        async with client(sandbox) as c:
            with pytest.raises(OutcomeUnknownError) as info:
                await c.assignments.create(car_id=101, user_id=1001, start=START)
            op = info.value.operation
            assert op is not None and op.kind == "create"
            outcome = await op.wait(5, poll_interval=0.05, max_poll_interval=0.2)
            assert outcome.confirmed is False and outcome.assignment_id is not None
            assert sandbox.store.get_assignment(outcome.assignment_id) is not None
        assert sandbox.request_counts["PUT /assignments"] == 1  # never sent again


async def test_a_write_answered_500_keeps_its_operation() -> None:
    faults = FaultConfig({"PUT /assignments": RouteFaults(server_error=1.0)})
    async with Sandbox(SandboxConfig(write_delay=0.01, faults=faults)) as sandbox:
        c = client(sandbox)
        async with c:
            with pytest.raises(ServerError) as info:
                await c.assignments.create(car_id=101, user_id=1001, start=START)
    assert info.value.operation is not None
    assert info.value.operation.describe() == "create of an assignment (car 101, user 1001)"


async def test_polling_an_identical_older_assignment_is_not_taken_for_the_new_one() -> None:
    async with Sandbox(SandboxConfig(write_delay=0.01)) as sandbox:
        old = sandbox.store.add_assignment(101, 1001, START)
        async with client(sandbox) as c:
            resource = c.assignments
            # A create whose identical twin already exists (known from a read): flinkey
            # applies it here, and polling must find the *new* id, not the old one.
            op = await resource._create(
                NewAssignment(101, 1001, START), baseline=frozenset({old.id})
            )
            outcome = await op.wait(5, poll_interval=0.05, max_poll_interval=0.2)
    assert outcome.assignment_id is not None and outcome.assignment_id != old.id


async def test_a_create_polled_after_an_identical_one_is_not_confirmed_by_its_read() -> None:
    """The first create's last poll read the car's list; the second create (same key) must
    not be confirmed by that read, made before it was sent: it finds its own assignment."""
    async with Sandbox(SandboxConfig(write_delay=0.01)) as sandbox:
        async with client(sandbox) as c:
            first = await c.assignments.create(car_id=101, user_id=1001, start=START)
            one = await first.wait(5, poll_interval=0.05, max_poll_interval=0.2)
            second = await c.assignments.create(
                car_id=101, user_id=1001, start=START, lifetime=2_419_200
            )
            two = await second.wait(5, poll_interval=0.05, max_poll_interval=0.2)
        assert one.assignment_id is not None and two.assignment_id is not None
        assert two.assignment_id > one.assignment_id
        made = sandbox.store.get_assignment(two.assignment_id)
        assert made is not None and made.lifetime == 2_419_200


async def test_an_update_followed_by_this_clients_delete_is_not_reported_failed() -> None:
    """Both are applied; polling the update then sees the delete's 404, which says nothing
    of the update: it is not reported failed (it stays unobserved and times out)."""
    async with Sandbox(SandboxConfig(write_delay=0.01)) as sandbox:
        made = sandbox.store.add_assignment(101, 1001, START)
        async with client(sandbox) as c:
            update = await c.assignments.update(
                made.id, JsonPatch().replace("/lifetime", 1_209_600)
            )
            delete = await c.assignments.delete(made.id)
            assert (await delete.wait(5, poll_interval=0.05, max_poll_interval=0.2)).assignment_id
            with pytest.raises(OperationTimeoutError, match="later delete of this client"):
                await update.wait(0.5, poll_interval=0.05, max_poll_interval=0.1)
        applied = [o for o in sandbox.outcomes if o["assignmentId"] == made.id]
        assert [o["operationSucceeded"] for o in applied] == [True, True]


async def test_an_update_of_an_assignment_that_does_not_exist_still_fails_by_polling() -> None:
    async with Sandbox(SandboxConfig(write_delay=0.01)) as sandbox, client(sandbox) as c:
        update = await c.assignments.update(1_999_999, JsonPatch().replace("/lifetime", 1_209_600))
        with pytest.raises(OperationFailedError, match="does not exist"):
            await update.wait(5, poll_interval=0.05, max_poll_interval=0.2)


async def test_polling_many_creates_costs_one_list_per_car_and_round() -> None:
    """100 creates over 10 cars, confirmed by polling: at most 2 requests per write."""
    cars = [101 + i for i in range(10)]
    async with Sandbox(SandboxConfig(write_delay=0.05)) as sandbox:  # noqa: SIM117
        async with client(sandbox, retry=RetryPolicy(max_retries=5)) as c:
            semaphore = asyncio.Semaphore(16)

            async def create_and_wait(i: int) -> int | None:
                async with semaphore:
                    op = await c.assignments.create(
                        car_id=cars[i % 10], user_id=1001, start=START + timedelta(hours=i)
                    )
                outcome = await op.wait(10, poll_interval=0.2, max_poll_interval=0.4)
                return outcome.assignment_id

            ids = await asyncio.gather(*(create_and_wait(i) for i in range(100)))
            requests = c.stats.requests
    assert len(set(ids)) == 100 and None not in ids
    assert requests <= 2 * 100, requests
    lists = sum(n for route, n in sandbox.request_counts.items() if "/cars/" in route)
    assert lists <= 100, lists
