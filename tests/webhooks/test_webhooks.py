"""Webhooks: parsing and verification (pure), duplicate detection, correlation by the
OperationTracker, and the aiohttp receiver over real HTTP."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from multidict import CIMultiDict

from flinkey_async.errors import (
    OperationFailedError,
    OperationTimeoutError,
    WebhookAuthenticationError,
    WebhookPayloadError,
)
from flinkey_async.models.assignments import create_key
from flinkey_async.operations import OperationKind, PendingOperation, body_checksum
from flinkey_async.webhooks import (
    DEFAULT_MAX_BYTES,
    WEBHOOK_RECEIVER_KEY,
    AssignmentEvent,
    OperationTracker,
    WebhookReceiver,
    add_webhook_routes,
    parse_webhook,
    verify_secret,
    webhook_app,
)

SECRET = "wh-Secret-7f3K9q"
START = datetime(2026, 3, 1, 8, tzinfo=UTC)
END = datetime(2026, 3, 8, 8, tzinfo=UTC)


def create_payload(**over: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "checksum": "12AB34567C8DE9012F3A45BCDE678901",
        "assignmentId": 5001,
        "carId": 7,
        "userId": 9,
        "start": "2026-03-01T08:00:00Z",
        "end": "2026-03-08T08:00:00Z",
        "customerId": 42,
        "operationSucceeded": True,
        "errorMessage": None,
        "lifetime": 604800,
        "renewableAfter": 302400,
    }
    data.update(over)
    return data


def short_payload(**over: Any) -> dict[str, Any]:
    """The documented start of an update payload (no assignment fields)."""
    data: dict[str, Any] = {
        "checksum": "AB" * 16,
        "assignmentId": 77,
        "customerId": 42,
        "operationSucceeded": True,
        "errorMessage": None,
    }
    data.update(over)
    return data


def body(data: Any) -> bytes:
    return json.dumps(data).encode()


def parse(data: Any, **kw: Any) -> AssignmentEvent:
    kw.setdefault("secret", SECRET)
    return parse_webhook({"Secret": SECRET}, body(data), **kw)


# -- verification ---------------------------------------------------------------------------------


def test_right_secret_parses_every_field() -> None:
    event = parse(
        create_payload(customerId="42", start="2026-03-01T10:00:00+02:00", extraField={"x": 1})
    )
    assert event.checksum == "12AB34567C8DE9012F3A45BCDE678901"
    assert event.assignment_id == 5001
    assert event.customer_id == 42
    assert (event.car_id, event.user_id) == (7, 9)
    assert event.start == START and event.start.tzinfo is UTC
    assert event.end == END
    assert (event.lifetime, event.renewable_after) == (604800, 302400)
    assert event.operation_succeeded is True and event.error_message is None
    assert event.payload["extraField"] == {"x": 1}


@pytest.mark.parametrize("name", ["Secret", "secret", "SECRET", "sEcReT"])
def test_header_name_is_case_insensitive(name: str) -> None:
    verify_secret({name: SECRET}, SECRET)
    verify_secret(CIMultiDict({name: SECRET}), SECRET)
    with pytest.raises(WebhookAuthenticationError):
        verify_secret({name: SECRET + "x"}, SECRET)


@pytest.mark.parametrize("headers", [{}, {"Secrets": SECRET}, {"X-Secret": SECRET}])
def test_missing_header_is_rejected(headers: dict[str, str]) -> None:
    with pytest.raises(WebhookAuthenticationError, match="no Secret header"):
        parse_webhook(headers, body(create_payload()), secret=SECRET)


@pytest.mark.parametrize(
    "wrong",
    ["", "wh-Secret-7f3K9", "wh-Secret-7f3K9qq", "WH-SECRET-7F3K9Q", "ünïcödé", SECRET + " "],
)
def test_wrong_secret_is_rejected_and_never_shown(wrong: str) -> None:
    with pytest.raises(WebhookAuthenticationError) as info:
        parse_webhook({"secret": wrong}, body(create_payload()), secret=SECRET)
    text = str(info.value) + repr(info.value) + repr(info.value.args)
    assert SECRET not in text
    assert not wrong.strip() or wrong not in text


def test_every_secret_header_must_match() -> None:
    headers = CIMultiDict([("Secret", SECRET), ("secret", "guess")])
    with pytest.raises(WebhookAuthenticationError):
        verify_secret(headers, SECRET)
    verify_secret(CIMultiDict([("Secret", SECRET), ("SECRET", SECRET)]), SECRET)


def test_no_secret_mode_accepts_any_or_no_header() -> None:
    assert parse_webhook({}, body(create_payload()), secret=None).assignment_id == 5001
    assert (
        parse_webhook({"Secret": "anything"}, body(create_payload()), secret=None).assignment_id
        == 5001
    )


def test_empty_configured_secret_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        verify_secret({"Secret": ""}, "")
    with pytest.raises(ValueError):
        WebhookReceiver(secret="")


def test_secret_is_checked_before_the_body() -> None:
    with pytest.raises(WebhookAuthenticationError):
        parse_webhook({"Secret": "nope"}, b"not json", secret=SECRET)


# -- size, JSON, types ----------------------------------------------------------------------------


def test_oversized_body_is_rejected() -> None:
    data = body(create_payload(padding="x" * DEFAULT_MAX_BYTES))
    with pytest.raises(WebhookPayloadError, match="more than the 65536"):
        parse_webhook({"Secret": SECRET}, data, secret=SECRET)
    small = body(create_payload())
    assert parse_webhook({}, small, secret=None, max_bytes=len(small)).assignment_id == 5001
    with pytest.raises(WebhookPayloadError):
        parse_webhook({}, small, secret=None, max_bytes=len(small) - 1)


@pytest.mark.parametrize(
    "raw", [b"", b"{", b"{'checksum': 1}", b"\xff\xfe", b"null", b"[]", b'"text"', b"42"]
)
def test_malformed_json_is_rejected(raw: bytes) -> None:
    with pytest.raises(WebhookPayloadError):
        parse_webhook({"Secret": SECRET}, raw, secret=SECRET)


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("checksum", 123, "'checksum'"),
        ("checksum", None, "'checksum'"),
        ("assignmentId", "5001", "'assignmentId'"),
        ("assignmentId", True, "'assignmentId'"),
        ("customerId", "forty-two", "'customerId'"),
        ("customerId", None, "'customerId'"),
        ("operationSucceeded", "true", "'operationSucceeded'"),
        ("operationSucceeded", 1, "'operationSucceeded'"),
        ("errorMessage", 5, "'errorMessage'"),
        ("carId", 7.5, "'carId'"),
        ("start", "yesterday", "'start'"),
        ("end", 20260301, "'end'"),
        ("lifetime", "604800", "'lifetime'"),
    ],
)
def test_wrong_field_types_are_rejected(field: str, value: Any, problem: str) -> None:
    with pytest.raises(WebhookPayloadError, match=problem):
        parse(create_payload(**{field: value}))


@pytest.mark.parametrize("field", ["checksum", "customerId", "operationSucceeded"])
def test_required_fields(field: str) -> None:
    data = create_payload()
    del data[field]
    with pytest.raises(WebhookPayloadError, match=field):
        parse(data)


def test_error_excerpt_does_not_carry_headers() -> None:
    with pytest.raises(WebhookPayloadError) as info:
        parse_webhook({"Secret": SECRET}, b"{broken", secret=SECRET)
    assert SECRET not in str(info.value)
    assert "{broken" in str(info.value)


# -- classification -------------------------------------------------------------------------------


def test_failed_create_is_recognised_by_its_null_id() -> None:
    event = parse(
        create_payload(
            assignmentId=None, operationSucceeded=False, errorMessage="Unable to find a car"
        )
    )
    assert event.kind == "create"
    assert event.possible_kinds == {"create"}
    assert event.error_message == "Unable to find a car"


def test_null_id_without_create_fields_is_malformed() -> None:
    with pytest.raises(WebhookPayloadError, match="failed create"):
        parse(short_payload(assignmentId=None, operationSucceeded=False))


def test_failed_event_with_id_is_update_or_delete() -> None:
    event = parse(create_payload(operationSucceeded=False, errorMessage="no"))
    assert event.kind is None
    assert event.possible_kinds == {"update", "delete"}


def test_event_without_assignment_fields_is_update_or_delete() -> None:
    event = parse(short_payload())
    assert event.kind is None and event.possible_kinds == {"update", "delete"}


def test_successful_event_with_fields_is_ambiguous_without_a_route() -> None:
    event = parse(create_payload())
    assert event.kind is None
    assert event.possible_kinds == {"create", "update", "delete"}


@pytest.mark.parametrize("kind", ["create", "update", "delete"])
def test_route_hint_forces_the_kind(kind: OperationKind) -> None:
    event = parse(create_payload(), kind=kind)
    assert event.kind == kind and event.possible_kinds == {kind}


@pytest.mark.parametrize(
    ("kind", "data", "problem"),
    [
        ("update", create_payload(assignmentId=None, operationSucceeded=False), "no assignmentId"),
        ("delete", create_payload(assignmentId=None, operationSucceeded=False), "no assignmentId"),
        ("create", short_payload(), "lacks carId"),
    ],
)
def test_route_hint_inconsistent_with_shape(
    kind: OperationKind, data: dict[str, Any], problem: str
) -> None:
    with pytest.raises(WebhookPayloadError, match=problem):
        parse(data, kind=kind)


def test_unknown_route_kind_is_rejected() -> None:
    with pytest.raises(ValueError):
        parse(create_payload(), kind="upsert")


def test_fingerprint_ignores_unknown_fields_and_kind() -> None:
    a = parse(create_payload())
    b = parse(create_payload(newField=1), kind="create")
    c = parse(create_payload(assignmentId=5002))
    assert a.fingerprint == b.fingerprint
    assert a.fingerprint != c.fingerprint


# -- duplicate detection without a tracker ---------------------------------------------------------


async def test_receiver_passes_each_event_on_once() -> None:
    seen: list[AssignmentEvent] = []
    receiver = WebhookReceiver(secret=None, handler=seen.append)
    first = parse(create_payload())
    assert receiver.deliver(first) is True
    assert receiver.deliver(parse(create_payload())) is False  # same delivery again
    assert receiver.deliver(parse(create_payload(assignmentId=5002))) is True
    assert receiver.deliver(parse(create_payload(operationSucceeded=False))) is True
    assert [e.assignment_id for e in seen] == [5001, 5002, 5001]
    assert receiver.stats.duplicates == 1 and receiver.stats.delivered == 3


async def test_duplicate_memory_is_bounded() -> None:
    seen: list[AssignmentEvent] = []
    receiver = WebhookReceiver(secret=None, handler=seen.append, memory=2)
    for i in (1, 2, 3):
        receiver.deliver(parse(short_payload(assignmentId=i)))
    assert len(receiver._recent) == 2
    assert receiver.deliver(parse(short_payload(assignmentId=1))) is True  # forgotten
    assert receiver.deliver(parse(short_payload(assignmentId=3))) is False  # remembered


# -- the tracker ----------------------------------------------------------------------------------


def make_op(
    kind: OperationKind,
    *,
    assignment_id: int | None = None,
    customer_id: int = 42,
    car_id: int | None = None,
    user_id: int | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    body_bytes: bytes | None = None,
    tracker: OperationTracker | None = None,
    sent_at: datetime = START,
) -> PendingOperation:
    if body_bytes is None:
        body_bytes = f"{kind} {assignment_id} {car_id} {user_id} {start}".encode()
    key = create_key(customer_id, car_id, user_id, start, end) if kind == "create" else None
    description = (
        f"create of an assignment (car {car_id}, user {user_id})"
        if kind == "create"
        else f"{kind} of assignment {assignment_id}"
    )
    op = PendingOperation(
        kind=kind,
        customer_id=customer_id,
        assignment_id=assignment_id,
        body=None,
        checksum=body_checksum(body_bytes),
        sent_at=sent_at,
        description=description,
        create_key=key,
        watcher=tracker,
    )
    if tracker is not None:
        tracker.expect(op)
    return op


def create_op(tracker: OperationTracker, **kw: Any) -> PendingOperation:
    kw.setdefault("car_id", 7)
    kw.setdefault("user_id", 9)
    kw.setdefault("start", START)
    kw.setdefault("end", END)
    return make_op("create", tracker=tracker, **kw)


def event_for(op: PendingOperation | None = None, **over: Any) -> AssignmentEvent:
    data = create_payload(**over)
    if op is not None and "checksum" not in over:
        data["checksum"] = "0" * 32  # flinkey's checksum need not be the SDK's
    return parse(data)


async def test_update_and_delete_are_matched_by_assignment_id() -> None:
    tracker = OperationTracker()
    update = make_op("update", assignment_id=5001, tracker=tracker)
    delete = make_op("delete", assignment_id=6001, tracker=tracker)
    assert tracker.pending == 2
    resolved = tracker.resolve(parse(short_payload(assignmentId=6001)))
    assert resolved.operation is delete and resolved.event.kind == "delete"
    assert delete.done() and not update.done()
    resolved = tracker.resolve(parse(short_payload(assignmentId=5001)))
    assert resolved.operation is update and resolved.event.kind == "update"
    outcome = await update.wait(1)
    assert (outcome.assignment_id, outcome.confirmed) == (5001, True)
    assert tracker.pending == 0


async def test_id_match_requires_the_same_customer() -> None:
    tracker = OperationTracker()
    op = make_op("delete", assignment_id=5001, customer_id=1, tracker=tracker)
    assert tracker.resolve(parse(short_payload(assignmentId=5001, customerId=2))).operation is None
    assert tracker.resolve(parse(short_payload(assignmentId=5001, customerId=1))).operation is op


async def test_checksum_picks_among_operations_on_one_assignment() -> None:
    tracker = OperationTracker()
    first = make_op("update", assignment_id=5, body_bytes=b"[1]", tracker=tracker)
    second = make_op("update", assignment_id=5, body_bytes=b"[2]", tracker=tracker)
    got = tracker.resolve(parse(short_payload(assignmentId=5, checksum=second.checksum)))
    assert got.operation is second
    # an unknown checksum falls back to the oldest pending operation
    got = tracker.resolve(parse(short_payload(assignmentId=5, checksum="F" * 32)))
    assert got.operation is first


async def test_update_then_delete_resolve_in_order_without_checksums() -> None:
    tracker = OperationTracker()
    update = make_op("update", assignment_id=5, tracker=tracker)
    delete = make_op("delete", assignment_id=5, tracker=tracker)
    e1 = tracker.resolve(parse(short_payload(assignmentId=5, checksum="1" * 32)))
    e2 = tracker.resolve(parse(short_payload(assignmentId=5, checksum="2" * 32)))
    assert (e1.operation, e2.operation) == (update, delete)
    assert (e1.event.kind, e2.event.kind) == ("update", "delete")


async def test_create_is_matched_by_key_with_normalised_datetimes() -> None:
    tracker = OperationTracker()
    plus_two = timezone(timedelta(hours=2))
    op = create_op(
        tracker, start=datetime(2026, 3, 1, 10, 0, 0, 999_000, tzinfo=plus_two), end=None
    )
    assert tracker.resolve(event_for(op, end="2026-03-08T08:00:00Z")).operation is None
    got = tracker.resolve(event_for(op, assignmentId=6001, end=None, checksum="A" * 32))
    assert got.operation is op and got.event.kind == "create"
    outcome = await op.wait(1)
    assert outcome.assignment_id == 6001 and outcome.event is got.event


async def test_create_key_includes_customer_car_user() -> None:
    tracker = OperationTracker()
    op = create_op(tracker)
    for over in (
        {"customerId": 43},
        {"carId": 8},
        {"userId": 10},
        {"start": "2026-03-01T08:00:01Z"},
    ):
        assert tracker.resolve(event_for(op, assignmentId=1, **over)).operation is None
    assert tracker.resolve(event_for(op, assignmentId=2)).operation is op


async def test_identical_creates_resolve_first_in_first_out() -> None:
    tracker = OperationTracker()
    ops = [create_op(tracker) for _ in range(3)]
    for assignment_id in (11, 12, 13):
        tracker.resolve(event_for(ops[0], assignmentId=assignment_id))
    assert [(await op.wait(1)).assignment_id for op in ops] == [11, 12, 13]


async def test_duplicate_success_is_not_given_to_an_identical_create() -> None:
    tracker = OperationTracker()
    a, b = create_op(tracker), create_op(tracker)
    first = event_for(a, assignmentId=11)
    assert tracker.resolve(first).operation is a
    again = tracker.resolve(event_for(a, assignmentId=11))
    assert again.duplicate and again.operation is None and again.event.kind == "create"
    assert not b.done()
    assert tracker.resolve(event_for(a, assignmentId=12)).operation is b
    assert tracker.duplicates == 1


async def test_identical_failures_resolve_each_identical_create() -> None:
    tracker = OperationTracker()
    a, b = create_op(tracker), create_op(tracker)
    failure = {"assignmentId": None, "operationSucceeded": False, "errorMessage": "no user"}
    r1 = tracker.resolve(event_for(a, **failure))
    r2 = tracker.resolve(event_for(a, **failure))
    r3 = tracker.resolve(event_for(a, **failure))
    assert (r1.operation, r2.operation, r3.operation) == (a, b, None)
    assert r3.duplicate and not r2.duplicate
    for op in (a, b):
        with pytest.raises(OperationFailedError, match="no user"):
            await op.wait(1)


async def test_duplicate_successful_delete_is_not_given_to_a_second_delete() -> None:
    tracker = OperationTracker()
    d1 = make_op("delete", assignment_id=5, tracker=tracker)
    d2 = make_op("delete", assignment_id=5, tracker=tracker)
    ok = short_payload(assignmentId=5, checksum=d1.checksum)
    assert tracker.resolve(parse(ok)).operation is d1
    assert tracker.resolve(parse(ok)).duplicate
    assert not d2.done()
    failed = short_payload(
        assignmentId=5,
        checksum=d2.checksum,
        operationSucceeded=False,
        errorMessage="Unable to find an assignment",
    )
    assert tracker.resolve(parse(failed)).operation is d2
    with pytest.raises(OperationFailedError, match="Unable to find an assignment"):
        await d2.wait(1)


async def test_event_for_an_already_created_id_is_not_a_create() -> None:
    tracker = OperationTracker()
    a = create_op(tracker)
    tracker.resolve(event_for(a, assignmentId=11))
    b = create_op(tracker)  # identical to a
    # a later update of assignment 11 whose payload carries the same fields
    later = tracker.resolve(event_for(a, assignmentId=11, lifetime=1209600))
    assert later.operation is None and not later.duplicate
    assert not b.done()


async def test_pending_update_on_the_id_wins_over_a_create_key() -> None:
    tracker = OperationTracker()
    create = create_op(tracker)
    update = make_op("update", assignment_id=11, tracker=tracker)
    got = tracker.resolve(event_for(create, assignmentId=11))
    assert got.operation is update and got.event.kind == "update"
    assert not create.done()


async def test_route_kind_restricts_matching() -> None:
    tracker = OperationTracker()
    update = make_op("update", assignment_id=11, tracker=tracker)
    got = tracker.resolve(parse(short_payload(assignmentId=11), kind="delete"))
    assert got.operation is None and not update.done()


async def test_strict_checksum() -> None:
    tracker = OperationTracker(strict_checksum=True)
    op = create_op(tracker)
    assert tracker.resolve(event_for(op, assignmentId=1)).operation is None
    assert tracker.resolve(event_for(op, assignmentId=2, checksum=op.checksum)).operation is op


async def test_event_before_expect_resolves_the_later_operation() -> None:
    tracker = OperationTracker()
    early = parse(short_payload(assignmentId=5001))
    assert tracker.resolve(early).operation is None
    assert tracker.unsolicited == 1 and list(tracker.orphans()) == [early]
    op = make_op("update", assignment_id=5001, tracker=tracker)
    assert op.done() and tracker.pending == 0
    assert tracker.unsolicited == 0 and list(tracker.orphans()) == []
    outcome = await op.wait(0)
    assert outcome.event is not None and outcome.event.kind == "update"
    # the claimed event is now known as the update's: a repeat is a duplicate
    assert tracker.resolve(parse(short_payload(assignmentId=5001))).duplicate


async def test_an_event_that_arrived_before_the_write_was_sent_is_not_its_outcome() -> None:
    """Another client's update of the assignment, or an uninstall's delete of an identical
    one, arrived before this write was sent: it cannot report this write."""
    tracker = OperationTracker()
    early = parse(short_payload(assignmentId=5002))
    tracker.resolve(early)
    twin = event_for(None, assignmentId=23)
    tracker.resolve(twin)
    now = datetime.now(UTC)
    update = make_op("update", assignment_id=5002, tracker=tracker, sent_at=now)
    create = create_op(tracker, sent_at=now)
    assert not update.done() and not create.done() and tracker.pending == 2
    assert list(tracker.orphans()) == [early, twin]


async def test_early_create_event_is_claimed_by_key_only() -> None:
    tracker = OperationTracker()
    tracker.resolve(event_for(None, assignmentId=21, userId=10))
    tracker.resolve(event_for(None, assignmentId=22))
    other = create_op(tracker, user_id=11)
    assert not other.done()
    op = create_op(tracker)
    assert op.done() and (await op.wait(0)).assignment_id == 22
    assert [e.assignment_id for e in tracker.orphans()] == [21]
    assert tracker.unsolicited == 1


async def test_unmatched_events_are_not_kept_for_ever() -> None:
    now = [0.0]
    tracker = OperationTracker(orphan_ttl=5.0, max_orphans=3, clock=lambda: now[0])
    tracker.resolve(parse(short_payload(assignmentId=1)))
    now[0] = 6.0
    op = make_op("update", assignment_id=1, tracker=tracker)
    assert not op.done()
    for i in range(10, 20):
        tracker.resolve(parse(short_payload(assignmentId=i)))
    tracker.resolve(parse(short_payload(assignmentId=99)))
    assert len(list(tracker.orphans())) <= 3


async def test_pending_operations_expire_and_memory_is_bounded() -> None:
    now = [0.0]
    tracker = OperationTracker(pending_ttl=60.0, memory=5, clock=lambda: now[0])
    old = make_op("update", assignment_id=1, tracker=tracker)
    now[0] = 61.0
    make_op("update", assignment_id=2, tracker=tracker)
    assert tracker.pending == 1 and not tracker.is_pending(old)
    for i in range(100, 120):
        tracker.resolve(parse(short_payload(assignmentId=i)))
    assert len(tracker._seen) == 5


async def test_discarded_operation_is_not_resolved() -> None:
    tracker = OperationTracker()
    op = make_op("delete", assignment_id=5, tracker=tracker)
    tracker.discard(op)
    assert tracker.pending == 0
    assert tracker.resolve(parse(short_payload(assignmentId=5))).operation is None


async def test_unsolicited_events_go_to_the_callback() -> None:
    sync_seen: list[AssignmentEvent] = []
    tracker = OperationTracker(on_unsolicited=sync_seen.append)
    tracker.resolve(parse(short_payload(assignmentId=1)))
    assert [e.assignment_id for e in sync_seen] == [1]

    async_seen: list[AssignmentEvent] = []

    async def collect(event: AssignmentEvent) -> None:
        async_seen.append(event)

    tracker = OperationTracker(on_unsolicited=collect)
    make_op("delete", assignment_id=2, tracker=tracker)
    tracker.resolve(parse(short_payload(assignmentId=2)))  # solicited
    tracker.resolve(parse(short_payload(assignmentId=3)))
    await asyncio.sleep(0)
    assert [e.assignment_id for e in async_seen] == [3]


async def test_callback_errors_are_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    def boom(event: AssignmentEvent) -> None:
        raise RuntimeError("callback bug")

    tracker = OperationTracker(on_unsolicited=boom)
    with caplog.at_level(logging.ERROR, logger="flinkey_async.webhooks"):
        tracker.resolve(parse(short_payload(assignmentId=1)))
    assert "callback bug" in caplog.text


async def test_wait_failure_carries_message_and_event() -> None:
    tracker = OperationTracker()
    op = create_op(tracker)
    event = event_for(
        op,
        assignmentId=None,
        operationSucceeded=False,
        errorMessage="The lifetime must be between 604800 and 2419200 seconds.",
    )
    tracker.resolve(event)
    for _ in range(2):
        with pytest.raises(OperationFailedError) as info:
            await op.wait(1)
        assert info.value.error_message == event.error_message
        assert info.value.event is not None and info.value.event.checksum == event.checksum
        assert "create of an assignment (car 7, user 9) failed" in str(info.value)


async def test_wait_twice_returns_the_same_outcome() -> None:
    tracker = OperationTracker()
    op = make_op("delete", assignment_id=5, tracker=tracker)
    waiter = asyncio.ensure_future(op.wait(5))
    await asyncio.sleep(0.01)
    assert not waiter.done()
    tracker.resolve(parse(short_payload(assignmentId=5)))
    first = await waiter
    assert await op.wait(0) is first
    assert op.result() is first


async def test_wait_times_out_with_a_description() -> None:
    tracker = OperationTracker()
    op = make_op("update", assignment_id=5, tracker=tracker)
    with pytest.raises(OperationTimeoutError, match="update of assignment 5 was not confirmed"):
        await op.wait(0.05)
    assert tracker.is_pending(op)  # a late webhook still resolves it
    tracker.resolve(parse(short_payload(assignmentId=5)))
    assert (await op.wait(0)).assignment_id == 5


async def test_wait_for_an_operation_the_tracker_never_saw() -> None:
    tracker = OperationTracker()
    op = make_op("delete", assignment_id=5)
    with pytest.raises(RuntimeError, match="not tracked"):
        await tracker.wait(op, 0.1)
    with pytest.raises(asyncio.InvalidStateError):
        op.result()


# -- the receiver over HTTP -----------------------------------------------------------------------


class Collected:
    def __init__(self) -> None:
        self.events: list[AssignmentEvent] = []

    async def __call__(self, event: AssignmentEvent) -> None:
        await asyncio.sleep(0)
        self.events.append(event)


@pytest.fixture
async def http() -> AsyncIterator[
    tuple[TestClient[web.Request, web.Application], Collected, OperationTracker]
]:
    tracker = OperationTracker()
    handler = Collected()
    app = webhook_app(secret=SECRET, tracker=tracker, handler=handler)
    async with TestClient(TestServer(app)) as client:
        yield client, handler, tracker


Http = tuple[TestClient[web.Request, web.Application], Collected, OperationTracker]


async def post(
    client: TestClient[web.Request, web.Application],
    data: bytes,
    *,
    path: str = "/webhooks/flinkey",
    secret: str | None = SECRET,
    header: str = "Secret",
) -> tuple[int, str]:
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers[header] = secret
    async with client.post(path, data=data, headers=headers) as response:
        return response.status, await response.text()


async def test_http_accepts_a_valid_event(http: Http) -> None:
    client, handler, tracker = http
    op = create_op(tracker)
    status, _ = await post(client, body(create_payload(assignmentId=77)), header="secret")
    assert status == 204
    assert (await op.wait(1)).assignment_id == 77
    await client.app[WEBHOOK_RECEIVER_KEY].drain()
    assert [(e.kind, e.assignment_id) for e in handler.events] == [("create", 77)]


async def test_http_rejections_deliver_nothing_and_keep_serving(http: Http) -> None:
    client, handler, tracker = http
    receiver = client.app[WEBHOOK_RECEIVER_KEY]
    ok = body(create_payload())
    status, text = await post(client, ok, secret="guess")
    assert status == 401 and SECRET not in text and "guess" not in text
    assert (await post(client, ok, secret=None))[0] == 401
    assert (await post(client, b"x" * (DEFAULT_MAX_BYTES + 1)))[0] == 413
    assert (await post(client, b"{not json"))[0] == 400
    status, text = await post(client, body(create_payload(operationSucceeded="yes")))
    assert status == 400 and "operationSucceeded" in text
    assert (await post(client, body(short_payload()), path="/webhooks/flinkey/created"))[0] == 400
    await receiver.drain()
    assert handler.events == [] and tracker.unsolicited == 0
    assert (await post(client, ok))[0] == 204
    await receiver.drain()
    assert len(handler.events) == 1
    stats = receiver.stats
    assert (
        stats.received,
        stats.unauthorized,
        stats.too_large,
        stats.malformed,
        stats.delivered,
    ) == (7, 2, 1, 3, 1)


async def test_http_oversized_chunked_body_gets_413(http: Http) -> None:
    client, _handler, _tracker = http

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(20):
            yield b" " * 8192

    headers = {"Secret": SECRET, "Content-Type": "application/json"}
    async with client.post("/webhooks/flinkey", data=chunks(), headers=headers) as response:
        assert response.status == 413
        assert "Content-Length" not in response.request_info.headers
    assert (await post(client, body(create_payload())))[0] == 204


async def test_http_duplicates_reach_the_handler_once(http: Http) -> None:
    client, handler, tracker = http
    op = make_op("delete", assignment_id=5, tracker=tracker)
    data = body(short_payload(assignmentId=5))
    statuses = [(await post(client, data))[0] for _ in range(3)]
    assert statuses == [204, 204, 204]
    receiver = client.app[WEBHOOK_RECEIVER_KEY]
    await receiver.drain()
    assert len(handler.events) == 1 and handler.events[0].kind == "delete"
    assert receiver.stats.duplicates == 2
    assert (await op.wait(0)).assignment_id == 5


@pytest.mark.parametrize(
    ("suffix", "kind"), [("created", "create"), ("updated", "update"), ("deleted", "delete")]
)
async def test_http_per_kind_routes(http: Http, suffix: str, kind: str) -> None:
    client, handler, _tracker = http
    status, _ = await post(client, body(create_payload()), path=f"/webhooks/flinkey/{suffix}")
    assert status == 204
    await client.app[WEBHOOK_RECEIVER_KEY].drain()
    assert [e.kind for e in handler.events] == [kind]


async def test_http_only_post(http: Http) -> None:
    client, _handler, _tracker = http
    async with client.get("/webhooks/flinkey") as response:
        assert response.status == 405


async def test_handler_errors_are_logged_and_later_events_still_arrive(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[int | None] = []

    async def handler(event: AssignmentEvent) -> None:
        if event.assignment_id == 1:
            raise ValueError("handler bug")
        seen.append(event.assignment_id)

    app = webhook_app(secret=SECRET, handler=handler)
    with caplog.at_level(logging.ERROR, logger="flinkey_async.webhooks"):
        async with TestClient(TestServer(app)) as client:
            assert (await post(client, body(short_payload(assignmentId=1))))[0] == 204
            assert (await post(client, body(short_payload(assignmentId=2))))[0] == 204
            await app[WEBHOOK_RECEIVER_KEY].drain()
    assert seen == [2]
    assert "handler bug" in caplog.text


async def test_handler_runs_in_the_background() -> None:
    release = asyncio.Event()
    done: list[int | None] = []

    async def slow(event: AssignmentEvent) -> None:
        await release.wait()
        done.append(event.assignment_id)

    app = webhook_app(secret=None, handler=slow)
    async with TestClient(TestServer(app)) as client:
        status, _ = await asyncio.wait_for(
            post(client, body(short_payload()), secret=None), timeout=2
        )
        assert status == 204 and done == []
        release.set()
        await app[WEBHOOK_RECEIVER_KEY].drain()
    assert done == [77]


async def test_routes_mounted_in_a_users_app() -> None:
    handler = Collected()
    app = web.Application()

    async def health(_request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app.router.add_get("/health", health)
    receiver = add_webhook_routes(
        app, secret=SECRET, handler=handler, path="/hooks", per_kind_routes=False
    )
    async with TestClient(TestServer(app)) as client:
        async with client.get("/health") as response:
            assert await response.text() == "ok"
        assert (await post(client, body(create_payload()), path="/hooks"))[0] == 204
        assert (await post(client, body(create_payload()), path="/hooks/created"))[0] == 404
        await receiver.drain()
    assert len(handler.events) == 1 and handler.events[0].kind is None


def test_route_path_must_be_absolute() -> None:
    for bad in ("hooks", "/hooks/"):
        with pytest.raises(ValueError):
            webhook_app(secret=None, path=bad)
