"""Claims: one stream entry resolves at most one operation across all the SharedTrackers of a
prefix. Two trackers on one prefix stand in for two processes (each has its own random
claimant id): identical creates get two ids, updates of one assignment one event each, on
the reader's path and on the orphans' (events read before ``expect()``); a claim Redis does
not answer loses no event."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
import redis.asyncio as aioredis

from flinkey_async.models.assignments import create_key
from flinkey_async.operations import OperationOutcome, PendingOperation
from flinkey_async.shared.confirmations import RedisWebhookBus, SharedTracker
from flinkey_async.webhooks import AssignmentEvent, parse_webhook
from tests.support.redis_server import RedisServer

START = datetime(2033, 1, 1, 8, tzinfo=UTC)
END = START + timedelta(days=7)
CHECKSUM = "F" * 32


def prefix() -> str:
    return f"c-{secrets.token_hex(5)}"


def create_op() -> PendingOperation:
    """A create of (car 7, user 9, START, END): every call is an identical request."""
    return PendingOperation(
        kind="create",
        customer_id=1,
        assignment_id=None,
        body={},
        checksum=CHECKSUM,
        sent_at=datetime.now(UTC),
        create_key=create_key(1, 7, 9, START, END),
    )


def update_op(assignment_id: int = 5001) -> PendingOperation:
    return PendingOperation(
        kind="update",
        customer_id=1,
        assignment_id=assignment_id,
        body=[],
        checksum=CHECKSUM,
        sent_at=datetime.now(UTC),
    )


def created(assignment_id: int | None, *, ok: bool = True) -> AssignmentEvent:
    """The webhook of a create of (car 7, user 9, START, END)."""
    body: dict[str, Any] = {
        "checksum": CHECKSUM,
        "assignmentId": assignment_id,
        "customerId": 1,
        "operationSucceeded": ok,
        "errorMessage": None if ok else "rejected",
        "carId": 7,
        "userId": 9,
        "start": START.isoformat().replace("+00:00", "Z"),
        "end": END.isoformat().replace("+00:00", "Z"),
    }
    return parse_webhook({}, json.dumps(body), secret=None)


def updated(assignment_id: int, end: datetime) -> AssignmentEvent:
    """The webhook of an update of ``assignment_id`` that set its end to ``end``."""
    body = {
        "checksum": CHECKSUM,
        "assignmentId": assignment_id,
        "customerId": 1,
        "operationSucceeded": True,
        "errorMessage": None,
        "end": end.isoformat().replace("+00:00", "Z"),
    }
    return parse_webhook({}, json.dumps(body), secret=None)


@asynccontextmanager
async def trackers(
    url: str, key: str, count: int = 2, **options: Any
) -> AsyncIterator[list[SharedTracker]]:
    """``count`` started trackers on one prefix (as many processes would have)."""
    options.setdefault("timeout", 1.0)
    options.setdefault("read_block", 0.2)
    async with AsyncExitStack() as stack:
        started = [
            await stack.enter_async_context(SharedTracker.connect(url, prefix=key, **options))
            for _ in range(count)
        ]
        yield started


@asynccontextmanager
async def on_one_stream(
    url: str, count: int = 2, **options: Any
) -> AsyncIterator[tuple[RedisWebhookBus, list[SharedTracker]]]:
    """A bus and ``count`` started trackers on one new prefix."""
    key = prefix()
    async with (
        RedisWebhookBus.from_url(url, prefix=key) as bus,
        trackers(url, key, count, **options) as started,
    ):
        yield bus, started


async def claims_of(url: str, bus: RedisWebhookBus) -> dict[str, str]:
    """The claims in Redis: entry id -> claimant."""
    client = aioredis.Redis.from_url(url)
    try:
        found: dict[str, str] = {}
        async for raw in client.scan_iter(match=f"{{{bus.prefix}}}:claim:*"):
            value = await client.get(raw)
            assert isinstance(raw, bytes) and isinstance(value, bytes)
            found[raw.decode().rsplit(":", 1)[1]] = value.decode()
        return found
    finally:
        await client.aclose()


async def outcomes(pairs: list[tuple[SharedTracker, PendingOperation]]) -> list[OperationOutcome]:
    return list(await asyncio.gather(*(t.wait(op, 5) for t, op in pairs)))


def ids(got: list[OperationOutcome]) -> list[int]:
    """The assignment ids of the outcomes, sorted."""
    found = [o.assignment_id for o in got]
    assert None not in found
    return sorted(i for i in found if i is not None)


# -- the reader's path: operations expected before their events -------------------------------
async def test_identical_creates_in_two_trackers_get_an_id_each(
    redis_server: RedisServer,
) -> None:
    async with on_one_stream(redis_server.url, lookback=0.0) as (bus, (a, b)):
        op_a, op_b = create_op(), create_op()
        a.expect(op_a)
        b.expect(op_b)
        await bus.publish(created(123))
        await bus.publish(created(124))
        got = await outcomes([(a, op_a), (b, op_b)])
        assert all(o.confirmed for o in got)
        assert ids(got) == [123, 124]  # never both the same
        assert (a.claims, b.claims) == (1, 1)
        assert a.claims_lost + b.claims_lost == 1  # the first entry, for its loser
        owners = await claims_of(redis_server.url, bus)
        assert len(owners) == 2 and len(set(owners.values())) == 2


async def test_two_updates_of_one_assignment_in_two_trackers_take_an_event_each(
    redis_server: RedisServer,
) -> None:
    ends = [END + timedelta(days=1), END + timedelta(days=2)]
    async with on_one_stream(redis_server.url, lookback=0.0) as (bus, (a, b)):
        op_a, op_b = update_op(), update_op()
        a.expect(op_a)
        b.expect(op_b)
        for end in ends:
            await bus.publish(updated(5001, end))
        got = await outcomes([(a, op_a), (b, op_b)])
        assert sorted(o.event.end for o in got if o.event is not None) == ends
        assert (a.claims, b.claims) == (1, 1)
        entries = await bus.read("0-0", block=0)
        owners = await claims_of(redis_server.url, bus)
        assert sorted(owners) == sorted(entry_id for entry_id, _ in entries)
        assert len(set(owners.values())) == 2  # one entry each


async def test_identical_update_events_the_second_a_repeat_resolve_one_operation_each(
    redis_server: RedisServer,
) -> None:
    """Two identical updates have identical events: the stream marks the second a repeat, and
    it is still the outcome of the operation that did not take the first."""
    async with on_one_stream(redis_server.url, lookback=0.0) as (bus, (a, b)):
        op_a, op_b = update_op(), update_op()
        a.expect(op_a)
        b.expect(op_b)
        assert await bus.publish(updated(5001, END)) is True
        assert await bus.publish(updated(5001, END)) is False  # repeat=1
        got = await outcomes([(a, op_a), (b, op_b)])
        assert all(o.confirmed for o in got)
        assert (a.claims, b.claims) == (1, 1)
        entries = await bus.read("0-0", block=0)
        owners = await claims_of(redis_server.url, bus)
        assert sorted(owners) == sorted(entry_id for entry_id, _ in entries)
        assert len(set(owners.values())) == 2


async def test_a_redelivered_create_event_is_not_taken_by_the_tracker_that_lost_it(
    redis_server: RedisServer,
) -> None:
    """flinkey delivers the first create's webhook twice: the repeat (a new entry, unclaimed)
    is no create of the tracker that lost the first entry: an id is created once."""
    async with on_one_stream(redis_server.url, lookback=0.0) as (bus, (a, b)):
        op_a, op_b = create_op(), create_op()
        a.expect(op_a)
        b.expect(op_b)
        await bus.publish(created(123))
        assert await bus.publish(created(123)) is False  # the redelivery
        await a.sync()
        await b.sync()
        assert [op_a.done(), op_b.done()].count(True) == 1
        await bus.publish(created(124))
        got = await outcomes([(a, op_a), (b, op_b)])
        assert ids(got) == [123, 124]
        assert a.duplicates + b.duplicates == 2  # the repeat, in each


async def test_identical_rejected_creates_in_two_trackers_get_a_failure_each(
    redis_server: RedisServer,
) -> None:
    async with on_one_stream(redis_server.url, lookback=0.0) as (bus, (a, b)):
        op_a, op_b = create_op(), create_op()
        a.expect(op_a)
        b.expect(op_b)
        await bus.publish(created(None, ok=False))
        await bus.publish(created(None, ok=False))  # identical: a repeat
        results = await asyncio.gather(a.wait(op_a, 5), b.wait(op_b, 5), return_exceptions=True)
        assert [type(r).__name__ for r in results] == ["OperationFailedError"] * 2
        assert (a.claims, b.claims) == (1, 1)


# -- the orphans' path: events read before expect() -------------------------------------------
async def test_identical_creates_expected_after_their_events_get_an_id_each(
    redis_server: RedisServer,
) -> None:
    async with on_one_stream(redis_server.url, lookback=0.0, orphan_ttl=30.0) as (bus, (a, b)):
        op_a, op_b = create_op(), create_op()  # sent before their webhooks arrived
        await bus.publish(created(123))
        await bus.publish(created(124))
        for tracker in (a, b):
            await tracker.sync()
            assert [e.assignment_id for e in tracker.orphans()] == [123, 124]
        a.expect(op_a)  # both claim the oldest orphan at once: one gets it, one the next
        b.expect(op_b)
        got = await outcomes([(a, op_a), (b, op_b)])
        assert all(o.confirmed for o in got)
        assert ids(got) == [123, 124]
        assert (a.claims, b.claims) == (1, 1)
        assert a.claims_lost + b.claims_lost == 1
        # the event each took is no orphan of its own any more; the other's still is
        assert len(list(a.orphans())) == len(list(b.orphans())) == 1
        assert a.unsolicited == b.unsolicited == 1


async def test_an_orphan_another_tracker_claimed_leaves_the_operation_waiting(
    redis_server: RedisServer,
) -> None:
    async with on_one_stream(redis_server.url, lookback=0.0, orphan_ttl=30.0) as (bus, (a, b)):
        op_a, op_b = create_op(), create_op()
        await bus.publish(created(123))
        await a.sync()
        await b.sync()
        a.expect(op_a)
        assert (await a.wait(op_a, 5)).assignment_id == 123
        b.expect(op_b)  # its only orphan is a's: it waits for an event of its own
        await asyncio.sleep(0.2)
        assert not op_b.done() and b.claims_lost == 1
        await bus.publish(created(124))
        assert (await b.wait(op_b, 5)).assignment_id == 124
        # the identical creates of one process still take an entry each
        one, two = create_op(), create_op()
        a.expect(one)
        a.expect(two)
        await bus.publish(created(125))
        await bus.publish(created(126))
        assert ids(await outcomes([(a, one), (a, two)])) == [125, 126]


async def test_two_updates_of_one_assignment_expected_after_their_events_take_one_each(
    redis_server: RedisServer,
) -> None:
    ends = [END + timedelta(days=1), END + timedelta(days=2)]
    async with on_one_stream(redis_server.url, lookback=0.0, orphan_ttl=30.0) as (bus, (a, b)):
        op_a, op_b = update_op(), update_op()
        for end in ends:
            await bus.publish(updated(5001, end))
        for tracker in (a, b):
            await tracker.sync()
            assert [e.end for e in tracker.orphans()] == ends
        a.expect(op_a)
        b.expect(op_b)
        got = await outcomes([(a, op_a), (b, op_b)])
        assert sorted(o.event.end for o in got if o.event is not None) == ends


# -- Redis failing at the claim ----------------------------------------------------------------
async def test_a_claim_redis_refuses_is_retried_from_its_entry_until_it_is_made(
    own_redis_server: RedisServer,
) -> None:
    """Redis answers the reads but refuses the claim (the tracker's user may not run scripts
    for a while): the tracker counts Redis as lost, reads again from that entry, and once
    claims work the event resolves the operation; nothing was skipped."""
    key = prefix()
    url = own_redis_server.url
    admin = redis.Redis(host="127.0.0.1", port=own_redis_server.port)
    try:
        admin.acl_setuser(
            "publisher",
            enabled=True,
            reset=True,
            passwords=["+pw"],
            keys=["*"],
            channels=["*"],
            categories=["+@all"],
        )
        publisher_url = f"redis://publisher:pw@127.0.0.1:{own_redis_server.port}/0"
        async with (
            RedisWebhookBus.from_url(publisher_url, prefix=key) as bus,
            trackers(url, key, count=1, lookback=0.0, timeout=0.5) as (tracker,),
        ):
            op = update_op()
            tracker.expect(op)
            admin.acl_setuser("default", enabled=True, commands=["-eval", "-evalsha"])
            await bus.publish(updated(5001, END))
            await tracker.wait_available(False, timeout=5)
            assert "claim" in (tracker.unavailable_reason or "")
            await asyncio.sleep(0.3)  # a few retries, refused too
            assert not op.done() and tracker.entries_read == 0 and tracker.claims == 0
            admin.acl_setuser("default", enabled=True, categories=["+@all"])
            outcome = await tracker.wait(op, 10)
            assert outcome.confirmed and outcome.event is not None
            assert outcome.event.end == END
            await tracker.wait_available(True, timeout=5)
            assert tracker.entries_read == 1 and tracker.claims == 1
            assert tracker.unsolicited == 0 and tracker.duplicates == 0
            assert len(await claims_of(url, bus)) == 1
    finally:
        admin.acl_setuser("default", enabled=True, categories=["+@all"])
        admin.close()


async def test_an_orphans_claim_while_redis_is_down_resolves_once_it_is_back(
    own_redis_server: RedisServer,
) -> None:
    key = prefix()
    url = own_redis_server.url
    async with trackers(url, key, count=1, lookback=0.0, timeout=0.5, orphan_ttl=60.0) as (
        tracker,
    ):
        op = update_op()
        async with RedisWebhookBus.from_url(url, prefix=key) as bus:
            await bus.publish(updated(5001, END))
            await tracker.sync()
        assert len(list(tracker.orphans())) == 1
        own_redis_server.stop(kill=True)
        tracker.expect(op)  # the claim cannot be made now
        await tracker.wait_available(False, timeout=5)
        await asyncio.sleep(0.3)
        assert not op.done() and tracker.claims == 0
        own_redis_server.start()
        outcome = await tracker.wait(op, 10)
        assert outcome.confirmed and tracker.claims == 1
        assert list(tracker.orphans()) == []
        async with RedisWebhookBus.from_url(url, prefix=key) as bus:
            assert len(await claims_of(url, bus)) == 1


# -- one tracker: as before ---------------------------------------------------------------------
async def test_one_tracker_still_resolves_identical_writes_with_an_entry_each(
    redis_server: RedisServer,
) -> None:
    async with on_one_stream(redis_server.url, count=1, lookback=0.0) as (bus, (tracker,)):
        creates = [create_op(), create_op()]
        updates = [update_op(), update_op()]
        for op in creates + updates:
            tracker.expect(op)
        for event in (created(123), created(124), updated(5001, END), updated(5001, END)):
            await bus.publish(event)
        got = await outcomes([(tracker, op) for op in creates + updates])
        assert [o.assignment_id for o in got] == [123, 124, 5001, 5001]
        assert tracker.claims == 4 and tracker.claims_lost == 0
        assert tracker.duplicates == tracker.unsolicited == 0
