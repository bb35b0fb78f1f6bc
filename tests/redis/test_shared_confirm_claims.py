"""Claims: one stream entry resolves at most one operation across all the SharedTrackers of a
prefix. Two trackers on one prefix stand in for two processes (each has its own random
claimant id): identical creates get two ids, updates of one assignment one event each, on
the reader's path and on the orphans' (events read before ``expect()``); a claim Redis does
not answer loses no event. The regressions at the end: fingerprints of entries that resolved
nothing, claims retried after their orphan expired, operations settled by polling, claims
outlived by their entries, restarts, and unreadable entries."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
import redis
import redis.asyncio as aioredis

from flinkey_async.errors import OperationFailedError, RedisUnavailableError
from flinkey_async.models.assignments import create_key
from flinkey_async.operations import OperationOutcome, PendingOperation
from flinkey_async.shared.confirmations import RedisWebhookBus, SharedTracker, _entry
from flinkey_async.webhooks import AssignmentEvent, parse_webhook
from tests.support.redis_server import RedisServer

START = datetime(2033, 1, 1, 8, tzinfo=UTC)
END = START + timedelta(days=7)
CHECKSUM = "F" * 32


def prefix() -> str:
    return f"c-{secrets.token_hex(5)}"


def create_op(**options: Any) -> PendingOperation:
    """A create of (car 7, user 9, START, END): every call is an identical request."""
    return PendingOperation(
        kind="create",
        customer_id=1,
        assignment_id=None,
        body={},
        checksum=CHECKSUM,
        sent_at=datetime.now(UTC),
        create_key=create_key(1, 7, 9, START, END),
        **options,
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


def add_user(admin: redis.Redis, name: str) -> None:
    """A Redis user ``name`` (password ``pw``) allowed everything, so that the default user's
    rights can be taken away from the trackers alone."""
    admin.acl_setuser(
        name,
        enabled=True,
        reset=True,
        passwords=["+pw"],
        keys=["*"],
        channels=["*"],
        categories=["+@all"],
    )


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
        add_user(admin, "publisher")
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


# -- regressions ------------------------------------------------------------------------------
async def test_an_entry_that_resolved_nothing_here_leaves_a_later_identical_write_its_own(
    redis_server: RedisServer,
) -> None:
    """A reads B's update while it has nothing pending; its own identical update, later, gets
    an identical event, which the stream publishes as a repeat: it is A's outcome, not a
    duplicate of an event A saw (the same for an identical rejected create)."""
    async with on_one_stream(redis_server.url, lookback=0.0) as (bus, (a, b)):
        op_b = update_op()
        b.expect(op_b)
        await bus.publish(updated(5001, END))
        assert (await b.wait(op_b, 5)).confirmed
        await a.sync()
        assert a.unsolicited == 1 and len(list(a.orphans())) == 1  # a first delivery: kept
        op_a = update_op()  # sent after B's event reached A: never its outcome
        a.expect(op_a)
        assert await bus.publish(updated(5001, END)) is False  # repeat=1
        outcome = await a.wait(op_a, 2)
        assert outcome.confirmed and a.claims == 1 and a.duplicates == 0

        rejected_b = create_op()
        b.expect(rejected_b)
        await bus.publish(created(None, ok=False))
        with pytest.raises(OperationFailedError):
            await b.wait(rejected_b, 5)
        await a.sync()
        rejected_a = create_op()
        a.expect(rejected_a)
        await bus.publish(created(None, ok=False))  # a repeat of B's
        with pytest.raises(OperationFailedError):
            await a.wait(rejected_a, 2)
        assert a.claims == 2 and a.duplicates == 0


async def test_a_repeat_that_resolves_nothing_is_a_duplicate_and_a_first_delivery_is_kept(
    redis_server: RedisServer,
) -> None:
    """With nothing pending: a repeat (its first delivery published before the tracker
    started) is a duplicate, neither reported to ``on_unsolicited`` nor kept; a first
    delivery is unsolicited, reported and kept with its stream entry (and still claimable)."""
    key = prefix()
    reported: list[AssignmentEvent] = []
    async with RedisWebhookBus.from_url(redis_server.url, prefix=key) as bus:
        await bus.publish(updated(5001, END))
        await asyncio.sleep(0.01)  # not in the tracker's first millisecond (lookback=0)
        async with trackers(
            redis_server.url, key, count=1, lookback=0.0, on_unsolicited=reported.append
        ) as (tracker,):
            assert await bus.publish(updated(5001, END)) is False
            await tracker.sync()
            assert tracker.duplicates == 1 and tracker.unsolicited == 0
            assert reported == [] and list(tracker.orphans()) == []
            sent_at = datetime.now(UTC)  # a write sent before its event was read
            await asyncio.sleep(0.01)
            assert await bus.publish(updated(5002, END)) is True
            await tracker.sync()
            assert tracker.unsolicited == 1 and [e.assignment_id for e in reported] == [5002]
            assert [e.assignment_id for e in tracker.orphans()] == [5002]
            assert tracker.claims == 0
            late = PendingOperation(
                kind="update",
                customer_id=1,
                assignment_id=5002,
                body=[],
                checksum=CHECKSUM,
                sent_at=sent_at,
            )
            tracker.expect(late)
            assert (await tracker.wait(late, 2)).confirmed and tracker.claims == 1


async def test_an_orphans_claim_is_retried_after_it_expired_during_the_outage(
    own_redis_server: RedisServer,
) -> None:
    """Redis is down for longer than ``orphan_ttl`` while a kept event's claim is retried:
    the event, in the stream and known to the task, still resolves the operation."""
    key = prefix()
    url = own_redis_server.url
    async with trackers(url, key, count=1, lookback=0.0, timeout=0.5, orphan_ttl=0.2) as (tracker,):
        op = update_op()  # sent before its webhook was read
        await asyncio.sleep(0.01)
        async with RedisWebhookBus.from_url(url, prefix=key) as bus:
            await bus.publish(updated(5001, END))
            await tracker.sync()
        assert len(list(tracker.orphans())) == 1
        own_redis_server.stop(kill=True)
        tracker.expect(op)  # its claim gets no answer, and is retried
        await asyncio.sleep(0.6)
        assert list(tracker.orphans()) == [] and not op.done()  # expired meanwhile
        own_redis_server.start()
        outcome = await tracker.wait(op, 3)
        assert outcome.confirmed and outcome.event is not None and outcome.event.end == END
        assert tracker.claims == 1 and tracker.pending == 0


def polled_create(assignment_id: int) -> PendingOperation:
    """A create that polling observes at once, as ``assignment_id``."""

    async def probe(op: PendingOperation) -> tuple[OperationOutcome | None, str]:
        return OperationOutcome(op, assignment_id, False), "seen"

    return create_op(probe=probe)


async def test_an_operation_settled_by_polling_claims_no_later_entry(
    own_redis_server: RedisServer,
) -> None:
    """A's create is settled by polling while Redis is down: once Redis is back, the next
    identical create's event is no outcome of A's (which would claim it and leave B's create,
    expected late, to report A's id): it is B's."""
    key = prefix()
    url = own_redis_server.url
    options: dict[str, Any] = {"lookback": 0.0, "timeout": 0.5}
    options.update(poll_interval=0.05, max_poll_interval=0.05)
    async with trackers(url, key, count=2, **options) as (a, b):
        op_a, op_b = polled_create(124), create_op()  # B expects its create late
        a.expect(op_a)
        own_redis_server.stop(kill=True)
        await a.wait_available(False, timeout=5)
        out_a = await a.wait(op_a, 3)
        assert not out_a.confirmed and out_a.fallback_reason is not None
        assert a.pending == 0 and not a.is_pending(op_a)
        own_redis_server.start()
        await a.wait_available(True, timeout=5)
        await b.wait_available(True, timeout=5)
        async with RedisWebhookBus.from_url(url, prefix=key) as bus:
            await bus.publish(created(123))
            await a.sync()
            await b.sync()
            assert a.claims == 0 and a.unsolicited == 1
            b.expect(op_b)
            assert (await b.wait(op_b, 2)).assignment_id == 123
            assert b.claims == 1 and b.claims_lost == 0
            assert len(await claims_of(url, bus)) == 1  # B's


async def test_an_operation_settled_otherwise_is_no_entrys_target(
    redis_server: RedisServer,
) -> None:
    """An operation polled directly (``op.poll()``) stays in the tracker until it is
    forgotten: the entry it would have matched goes to the next identical one."""
    async with on_one_stream(redis_server.url, count=1, lookback=0.0) as (bus, (tracker,)):
        first, second = polled_create(99), create_op()
        tracker.expect(first)
        tracker.expect(second)
        assert (await first.poll(2, poll_interval=0.01, max_poll_interval=0.01)).assignment_id == 99
        await bus.publish(created(123))
        assert (await tracker.wait(second, 2)).assignment_id == 123
        assert tracker.claims == 1 and first.result().assignment_id == 99


async def test_a_claim_is_made_until_its_entrys_time_plus_the_ttl(
    redis_server: RedisServer,
) -> None:
    """The claim of an entry expires ``ttl`` after the entry's time, not after the claim;
    an entry too old for that (less the margin) is not claimed at all."""
    key = prefix()
    client = aioredis.Redis.from_url(redis_server.url)
    try:
        async with RedisWebhookBus.from_url(redis_server.url, prefix=key) as bus:
            now = await bus.server_time_ms()
            recent, old, older = f"{now - 2000}-0", f"{now - 4700}-0", f"{now - 10_000}-0"
            assert await bus.claim(recent, "me", 5.0) is True
            assert 2000 < await client.pttl(bus.claim_key(recent)) <= 3000
            assert await bus.claim(recent, "me", 5.0) is True  # already mine
            assert await bus.claim(recent, "you", 5.0) is False
            # within the margin (a tenth of 5 s) of, or past, the expiry: refused, not made
            assert await bus.claim(old, "me", 5.0) is False
            assert await bus.claim(older, "me", 5.0) is False
            assert await client.exists(bus.claim_key(old), bus.claim_key(older)) == 0
            assert await bus.claim(older, "me", 20.0) is True
            assert 9000 < await client.pttl(bus.claim_key(older)) <= 10_000
    finally:
        await client.aclose()


async def test_an_entry_outliving_its_claim_resolves_no_second_operation(
    own_redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """B's reader is cut off while A claims an entry; the stream (trimmed approximately)
    keeps it after its claim expired: B, back, skips it as too old instead of taking it."""
    key = prefix()
    url = own_redis_server.url
    port = own_redis_server.port
    admin = redis.Redis(host="127.0.0.1", port=port)
    add_user(admin, "bob")
    options: dict[str, Any] = {"prefix": key, "retention": 0.2, "orphan_ttl": 0.1}
    options.update(timeout=0.5, read_block=0.1, lookback=0.0)
    try:
        async with (
            RedisWebhookBus.from_url(url, prefix=key, retention=0.2) as bus,
            SharedTracker.connect(url, **options) as a,
            SharedTracker.connect(f"redis://bob:pw@127.0.0.1:{port}/0", **options) as b,
        ):
            assert a.claim_ttl == pytest.approx(0.5)
            op_a, op_b = create_op(), create_op()
            a.expect(op_a)
            b.expect(op_b)
            admin.acl_setuser("bob", commands=["-xread"])  # B's reader cut off
            await b.wait_available(False, timeout=5)
            await bus.publish(created(123))
            assert (await a.wait(op_a, 2)).assignment_id == 123
            await asyncio.sleep(a.claim_ttl + 0.2)
            assert await bus.length() == 1 and await claims_of(url, bus) == {}
            admin.acl_setuser("bob", enabled=True, categories=["+@all"])  # B back
            await b.wait_available(True, timeout=5)
            await b.sync()
            assert not op_b.done() and b.claims == 0
            assert "too old to be claimed" in caplog.text
            await bus.publish(created(124))
            assert (await b.wait(op_b, 2)).assignment_id == 124
    finally:
        admin.acl_setuser("bob", enabled=True, categories=["+@all"])
        admin.close()


async def test_a_tracker_started_again_reads_no_entry_twice(redis_server: RedisServer) -> None:
    key = prefix()
    async with RedisWebhookBus.from_url(redis_server.url, prefix=key) as bus:
        tracker = SharedTracker(bus, lookback=5.0, read_block=0.2)
        await tracker.start()
        try:
            first = update_op()
            tracker.expect(first)
            await bus.publish(updated(5001, END))
            assert (await tracker.wait(first, 2)).confirmed
            last = tracker.last_id
            await tracker.aclose()
            await asyncio.sleep(0.01)
            second = update_op()  # identical, sent after the first's event was published
            tracker.expect(second)
            await tracker.start()
            await tracker.sync()
            assert tracker.last_id == last and tracker.entries_read == 1
            assert not second.done() and tracker.claims == 1
            await bus.publish(updated(5001, END))  # its own event: read after the restart
            assert (await tracker.wait(second, 2)).confirmed and tracker.claims == 2
        finally:
            await tracker.aclose()


async def test_a_tracker_started_again_claims_the_kept_events_of_its_operations(
    redis_server: RedisServer,
) -> None:
    """An operation expected just before ``aclose()`` (its claim cancelled) or while closed
    is resolved by its kept event once the tracker is started again."""
    key = prefix()
    async with RedisWebhookBus.from_url(redis_server.url, prefix=key) as bus:
        tracker = SharedTracker(bus, lookback=5.0, read_block=0.2, orphan_ttl=30.0)
        await tracker.start()
        try:
            cancelled, while_closed = update_op(5001), update_op(5002)  # sent: events follow
            await asyncio.sleep(0.01)
            await bus.publish(updated(5001, END))
            await bus.publish(updated(5002, END))
            await tracker.sync()
            tracker.expect(cancelled)  # its claiming task is cancelled before it ran
            await tracker.aclose()
            tracker.expect(while_closed)
            await tracker.start()
            got = await asyncio.gather(tracker.wait(cancelled, 2), tracker.wait(while_closed, 2))
            assert all(o.confirmed for o in got) and tracker.claims == 2
            assert tracker.entries_read == 2 and tracker.duplicates == 0
        finally:
            await tracker.aclose()


async def test_a_claim_in_flight_at_aclose_is_made_again_after_a_restart(
    own_redis_server: RedisServer,
) -> None:
    """A kept event's claim gets no answer (Redis down) until it is no longer kept, then the
    tracker is closed and started again: the claim is made then, and resolves the operation."""
    key = prefix()
    url = own_redis_server.url
    async with RedisWebhookBus.from_url(url, prefix=key, timeout=0.5) as bus:
        tracker = SharedTracker(bus, lookback=0.0, read_block=0.2, orphan_ttl=0.2)
        await tracker.start()
        try:
            op = update_op()
            await asyncio.sleep(0.01)
            await bus.publish(updated(5001, END))
            await tracker.sync()
            own_redis_server.stop(kill=True)
            tracker.expect(op)
            await asyncio.sleep(0.5)
            assert list(tracker.orphans()) == [] and not op.done()
            await tracker.aclose()
            own_redis_server.start()
            await tracker.start()
            assert (await tracker.wait(op, 2)).confirmed and tracker.claims == 1
        finally:
            await tracker.aclose()


async def test_an_entry_that_cannot_be_read_is_skipped_and_reading_goes_on(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    key = prefix()
    raw = aioredis.Redis.from_url(redis_server.url)
    try:
        async with (
            RedisWebhookBus.from_url(redis_server.url, prefix=key) as bus,
            SharedTracker(bus, lookback=0.0, read_block=0.2) as tracker,
        ):
            first, second = update_op(5001), update_op(5002)
            tracker.expect(first)
            tracker.expect(second)
            poison: dict[Any, Any] = {"v": "1", "kind": b"\xff", "repeat": "0", "body": b"{}"}
            await raw.xadd(bus.stream_key, poison)
            # a kind that is not UTF-8 is no kind: the body still reads
            body = orjson.dumps(dict(updated(5001, END).payload or {}))
            unknown_kind: dict[Any, Any] = {"v": "1", "kind": b"\xfe", "body": body}
            await raw.xadd(bus.stream_key, unknown_kind)
            await bus.publish(updated(5002, END))
            await tracker.sync(timeout=2)
            assert tracker.available and tracker.entries_read == 3
            assert first.done() and second.done() and tracker.claims == 2
            assert "skipped stream entry" in caplog.text
    finally:
        await raw.aclose()
    # whatever an entry holds, reading it raises nothing
    record = _entry(b"1-0", {b"v": b"1", b"body": object()})
    assert record.id == "1-0" and record.event is None
    assert _entry(b"2-0", None).event is None


async def test_a_claim_failing_in_the_claiming_task_alone_leaves_the_tracker_available(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reader reads on: a kept event's claim that gets no answer twice is retried, and
    the tracker is not counted as lost meanwhile (waits do not fall back to polling)."""
    async with on_one_stream(redis_server.url, count=1, lookback=0.0) as (bus, (tracker,)):
        op = update_op()
        await asyncio.sleep(0.01)
        await bus.publish(updated(5001, END))
        await tracker.sync()
        real = tracker.bus._claim
        calls: list[bool] = []

        async def flaky(entry_id: str, owner: str, ttl: float) -> int:
            calls.append(tracker.available)
            if len(calls) <= 2:
                raise RedisUnavailableError("no answer (test)")
            return await real(entry_id, owner, ttl)

        monkeypatch.setattr(tracker.bus, "_claim", flaky)
        tracker.expect(op)
        assert (await tracker.wait(op, 2)).confirmed
        assert calls == [True, True, True]
        assert tracker.available and tracker.disconnections == 0 and tracker.claims == 1


async def test_an_error_in_the_claiming_task_is_logged(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async with on_one_stream(redis_server.url, count=1, lookback=0.0) as (bus, (tracker,)):
        op = update_op()
        await asyncio.sleep(0.01)
        await bus.publish(updated(5001, END))
        await tracker.sync()

        called = asyncio.Event()

        async def broken(entry_id: str, owner: str, ttl: float) -> int:
            called.set()  # (the task goes on to fail before this test's resumes)
            raise RuntimeError("a bug (test)")

        monkeypatch.setattr(tracker.bus, "_claim", broken)
        tracker.expect(op)
        await asyncio.wait_for(called.wait(), 2)
        assert "claiming a kept event for the update of 5001 failed" in caplog.text
        assert "RuntimeError: a bug (test)" in caplog.text
        assert not op.done() and tracker.is_pending(op) and tracker.available
