"""PendingOperation.wait(): confirmation by a tracker, and the polling fallback against a real
local HTTP server."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web

from flinkey_async import FlinkeyClient, JsonPatch, OperationTracker, RetryPolicy
from flinkey_async.errors import (
    BadRequestError,
    NotFoundError,
    OperationFailedError,
    OperationTimeoutError,
    ValidationError,
)
from flinkey_async.models import Assignment, CarAssignment
from flinkey_async.operations import PendingOperation, body_checksum
from flinkey_async.resources.assignments import expected_after_patch
from flinkey_async.webhooks import AssignmentEvent, parse_webhook
from tests.support.recording import (
    API_KEY,
    CUSTOMER_ID,
    TOKEN,
    Recorded,
    RecordingServer,
    json_response,
)

START = datetime(2026, 3, 1, 8, tzinfo=UTC)
END = datetime(2026, 3, 8, 8, tzinfo=UTC)
FAST = {"poll_interval": 0.01, "max_poll_interval": 0.02}


def client_for(server: RecordingServer, **kw: Any) -> FlinkeyClient:
    return FlinkeyClient(
        API_KEY, CUSTOMER_ID, token=TOKEN, base_url=server.url, retry=RetryPolicy.disabled(), **kw
    )


def no_content(_: web.Request, __: Recorded) -> web.Response:
    return web.Response(status=204)


def text(status: int, message: str) -> Any:
    return lambda _r, _rec: web.Response(status=status, text=message)


def webhook(**fields: Any) -> AssignmentEvent:
    data: dict[str, Any] = {
        "checksum": "0" * 32,
        "customerId": CUSTOMER_ID,
        "operationSucceeded": True,
        "errorMessage": None,
    }
    data.update(fields)
    return parse_webhook({}, json.dumps(data).encode(), secret=None)


def created(assignment_id: int | None = 501, **over: Any) -> AssignmentEvent:
    fields: dict[str, Any] = {
        "assignmentId": assignment_id,
        "carId": 7,
        "userId": 9,
        "start": "2026-03-01T08:00:00Z",
        "end": None,
    }
    fields.update(over)
    return webhook(**fields)


def assignment_json(**over: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": 5,
        "carId": 7,
        "userId": 9,
        "start": "2026-03-01T08:00:00Z",
        "end": "2026-03-08T08:00:00Z",
        "lifetime": 604800,
        "renewableAfter": 302400,
    }
    data.update(over)
    return data


# -- with a tracker --------------------------------------------------------------------------------


async def test_create_is_confirmed_by_its_webhook(server: RecordingServer) -> None:
    server.on("PUT", "/assignments", no_content)
    tracker = OperationTracker()
    async with client_for(server, tracker=tracker) as client:
        op = await client.assignments.create(car_id=7, user_id=9, start=START)
        assert tracker.is_pending(op) and not op.done()
        assert op.checksum == body_checksum(server.requests[0].body)
        tracker.resolve(created(501, checksum=op.checksum))
        outcome = await op.wait(1)
    assert (outcome.confirmed, outcome.assignment_id) == (True, 501)
    assert outcome.event is not None and outcome.event.kind == "create"
    assert outcome.operation is op
    assert await op.wait(1) is outcome
    assert len(server.requests) == 1  # nothing polled


async def test_event_arriving_before_the_204_resolves_the_operation(
    server: RecordingServer,
) -> None:
    tracker = OperationTracker()

    def apply_then_answer(_request: web.Request, rec: Recorded) -> web.Response:
        resolution = tracker.resolve(created(502, checksum=body_checksum(rec.body)))
        assert resolution.operation is not None  # the operation was expected before sending
        return web.Response(status=204)

    server.on("PUT", "/assignments", apply_then_answer)
    async with client_for(server, tracker=tracker) as client:
        op = await client.assignments.create(car_id=7, user_id=9, start=START)
    assert op.done() and tracker.pending == 0
    assert (await op.wait(0)).assignment_id == 502


async def test_failed_send_is_discarded_by_the_tracker(server: RecordingServer) -> None:
    server.on("DELETE", "/assignments/5", text(400, "bad"))
    tracker = OperationTracker()
    async with client_for(server, tracker=tracker) as client:
        with pytest.raises(BadRequestError):
            await client.assignments.delete(5)
    assert tracker.pending == 0


async def test_update_failure_reported_by_webhook(server: RecordingServer) -> None:
    server.on("PATCH", "/assignments/5", no_content)
    tracker = OperationTracker()
    async with client_for(server, tracker=tracker) as client:
        op = await client.assignments.update(5, JsonPatch().replace("/renewableAfter", 700000))
        message = "The renewableAfter must be greater than 0 and less than the lifetime."
        tracker.resolve(webhook(assignmentId=5, operationSucceeded=False, errorMessage=message))
        with pytest.raises(OperationFailedError) as info:
            await op.wait(1)
    assert info.value.error_message == message
    assert info.value.event is not None and info.value.event.kind == "update"
    assert str(info.value) == f"update of assignment 5 failed: {message}"


async def test_timeout_with_a_tracker_names_the_operation(server: RecordingServer) -> None:
    server.on("DELETE", "/assignments/5", no_content)
    async with client_for(server, tracker=OperationTracker()) as client:
        op = await client.assignments.delete(5)
        with pytest.raises(OperationTimeoutError) as info:
            await op.wait(0.05)
    assert "delete of assignment 5 was not confirmed within 0.05 s" in str(info.value)
    assert isinstance(info.value, TimeoutError)


async def test_tracker_can_be_attached_later(server: RecordingServer) -> None:
    server.on("DELETE", "/assignments/5", no_content)
    server.on("DELETE", "/assignments/6", no_content)
    server.on("GET", "/assignments/5", lambda _r, _rec: json_response(assignment_json()))
    tracker = OperationTracker()
    async with client_for(server) as client:
        before = await client.assignments.delete(5)  # polled: read first
        assert client.tracker is None
        client.tracker = tracker
        after = await client.assignments.delete(6)
    assert not tracker.is_pending(before) and tracker.is_pending(after)


# -- polling --------------------------------------------------------------------------------------


def assert_authenticated(rec: Recorded) -> None:
    assert rec.headers["flinkey-API-Key"] == API_KEY
    assert rec.headers["Authorization"] == f"Bearer {TOKEN}"
    assert rec.headers["Customer-ID"] == str(CUSTOMER_ID)


async def test_polled_delete_is_observed_once_the_assignment_is_gone(
    server: RecordingServer,
) -> None:
    server.on("DELETE", "/assignments/5", no_content)
    present = lambda _r, _rec: json_response(assignment_json())  # noqa: E731
    server.queue("GET", "/assignments/5", present, present)
    server.on("GET", "/assignments/5", text(404, "Unable to find an assignment."))
    async with client_for(server) as client:
        op = await client.assignments.delete(5)
        outcome = await op.wait(2, **FAST)
        assert await op.wait(2, **FAST) is outcome
    assert (outcome.confirmed, outcome.assignment_id, outcome.event) == (False, 5, None)
    requests = server.for_path("/v3/assignments/5")
    # Read first (it exists), sent, then polled until the 404.
    assert [r.method for r in requests] == ["GET", "DELETE", "GET", "GET"]
    for rec in requests:
        assert_authenticated(rec)


async def test_polled_delete_of_an_assignment_that_does_not_exist_sends_nothing(
    server: RecordingServer,
) -> None:
    """Polling would take the 404 of an assignment that never existed for a delete's success:
    without a tracker, delete() reads first and raises flinkey's 404 instead."""
    server.on("GET", "/assignments/5", text(404, "Unable to find an assignment."))
    server.on("DELETE", "/assignments/5", no_content)
    async with client_for(server) as client:
        with pytest.raises(NotFoundError, match="Unable to find an assignment"):
            await client.assignments.delete(5)
    assert [r.method for r in server.for_path("/v3/assignments/5")] == ["GET"]


async def test_polled_update_waits_for_the_patched_values(server: RecordingServer) -> None:
    new_end = END + timedelta(days=3)
    server.on("PATCH", "/assignments/5", no_content)
    old = lambda _r, _rec: json_response(assignment_json())  # noqa: E731
    half = lambda _r, _rec: json_response(assignment_json(end="2026-03-11T08:00:00Z"))  # noqa: E731
    server.queue("GET", "/assignments/5", old, half)
    server.on(
        "GET",
        "/assignments/5",
        lambda _r, _rec: json_response(
            assignment_json(end="2026-03-11T08:00:00+00:00", lifetime=1209600, userId=None)
        ),
    )
    patch = JsonPatch().replace("/end", new_end).replace("/lifetime", 1209600).remove("/userId")
    async with client_for(server) as client:
        op = await client.assignments.update(5, patch)
        outcome = await op.wait(2, **FAST)
    assert outcome.confirmed is False
    assert outcome.assignment == Assignment(5, 7, None, START, new_end, 1209600, 302400)
    assert len([r for r in server.requests if r.method == "GET"]) == 3


async def test_polled_create_finds_the_new_item(server: RecordingServer) -> None:
    server.on("PUT", "/assignments", no_content)
    other = {"id": 40, "userId": 9, "start": "2026-03-01T08:00:00Z", "end": "2026-03-02T08:00:00Z"}
    mine = {"id": 41, "userId": 9, "start": "2026-03-01T08:00:00Z", "end": None}
    server.queue("GET", "/cars/7/assignments", lambda _r, _rec: json_response([other]))
    server.on("GET", "/cars/7/assignments", lambda _r, _rec: json_response([other, mine]))
    async with client_for(server) as client:
        op = await client.assignments.create(car_id=7, user_id=9, start=START)
        outcome = await op.wait(2, **FAST)
    assert (outcome.assignment_id, outcome.confirmed) == (41, False)
    assert outcome.assignment == CarAssignment(41, 9, START, None)
    for rec in server.for_path("/v3/cars/7/assignments"):
        assert_authenticated(rec)


async def test_polling_times_out_when_the_change_never_appears(server: RecordingServer) -> None:
    server.on("PUT", "/assignments", no_content)
    server.on("GET", "/cars/7/assignments", lambda _r, _rec: json_response([]))
    async with client_for(server) as client:
        op = await client.assignments.create(car_id=7, user_id=9, start=START)
        with pytest.raises(OperationTimeoutError) as info:
            await op.wait(0.2, **FAST)
    message = str(info.value)
    assert "create of an assignment (car 7, user 9) was not observed within 0.2 s" in message
    assert "no assignment of car 7 has user 9" in message
    assert len(server.for_path("/v3/cars/7/assignments")) >= 3


async def test_polled_update_of_a_missing_assignment_fails(server: RecordingServer) -> None:
    server.on("PATCH", "/assignments/5", no_content)
    server.on("GET", "/assignments/5", text(404, "Unable to find an assignment."))
    async with client_for(server) as client:
        op = await client.assignments.update(5, JsonPatch().replace("/end", END))
        for _ in range(2):
            with pytest.raises(OperationFailedError) as info:
                await op.wait(2, **FAST)
            assert info.value.event is None
            assert "assignment 5 does not exist" in str(info.value)
    assert len(server.for_path("/v3/assignments/5")) == 2  # PATCH + one GET


async def test_polled_create_on_a_missing_car_fails(server: RecordingServer) -> None:
    server.on("PUT", "/assignments", no_content)
    server.on("GET", "/cars/7/assignments", text(404, "Unable to find a car."))
    async with client_for(server) as client:
        op = await client.assignments.create(car_id=7, user_id=9, start=START)
        with pytest.raises(OperationFailedError, match="car 7 does not exist"):
            await op.wait(2, **FAST)


async def test_polling_survives_a_transient_server_error(server: RecordingServer) -> None:
    server.on("DELETE", "/assignments/5", no_content)
    present = lambda _r, _rec: json_response(assignment_json())  # noqa: E731
    server.queue("GET", "/assignments/5", present, text(500, "Internal server error."))
    server.on("GET", "/assignments/5", text(404, "gone"))
    async with client_for(server) as client:
        op = await client.assignments.delete(5)
        outcome = await op.wait(2, **FAST)
    assert outcome.assignment_id == 5
    assert [r.method for r in server.for_path("/v3/assignments/5")] == [
        "GET",
        "DELETE",
        "GET",
        "GET",
    ]


async def test_polling_interval_is_validated(server: RecordingServer) -> None:
    server.on("DELETE", "/assignments/5", no_content)
    server.on("GET", "/assignments/5", lambda _r, _rec: json_response(assignment_json()))
    nan, inf = float("nan"), float("inf")
    async with client_for(server) as client:
        op = await client.assignments.delete(5)
        polled = len(server.requests)
        for bad in (
            {"poll_interval": 0},
            {"poll_interval": 1, "max_poll_interval": 0.5},
            {"poll_interval": nan},
            {"max_poll_interval": nan},
            {"poll_interval": inf, "max_poll_interval": inf},
            {"poll_interval": True},
            {"timeout": nan},
            {"timeout": "5"},
        ):
            arguments = {"timeout": 1.0, **bad}
            with pytest.raises(ValidationError):
                await op.wait(**arguments)  # type: ignore[arg-type]
            with pytest.raises(ValidationError):
                await op.poll(**arguments)  # type: ignore[arg-type]
        assert len(server.requests) == polled  # nothing polled
    # A NaN deadline would sit in the loop's timers: the trackers refuse it too.
    tracker = OperationTracker()
    async with client_for(server, tracker=tracker) as client:
        op = await client.assignments.delete(5)
        with pytest.raises(ValidationError, match="timeout"):
            await op.wait(nan)
        with pytest.raises(ValidationError, match="timeout"):
            await tracker.wait(op, nan)
        assert not op.done()


async def test_operation_without_client_or_tracker_cannot_wait() -> None:
    op = PendingOperation(
        kind="delete", customer_id=1, assignment_id=5, body=None, checksum="0" * 32, sent_at=START
    )
    with pytest.raises(RuntimeError, match="no probe to poll with"):
        await op.wait(0.1)


def test_operations_compare_by_identity() -> None:
    a = PendingOperation(
        kind="delete", customer_id=1, assignment_id=5, body=[1], checksum="0" * 32, sent_at=START
    )
    b = PendingOperation(
        kind="delete", customer_id=1, assignment_id=5, body=[1], checksum="0" * 32, sent_at=START
    )
    assert a != b and len({a, b}) == 2
    assert "client" not in repr(a) and "state" not in repr(a)


def test_expected_after_patch() -> None:
    body = (
        JsonPatch()
        .replace("/carId", 8)
        .replace("/end", END)
        .remove("/userId")
        .replace("/lifetime", 1209600)
        .replace("/renewableAfter", 600000)
        .to_json()
    )
    assert expected_after_patch(body) == {
        "car_id": 8,
        "end": END,
        "user_id": None,
        "lifetime": 1209600,
        "renewable_after": 600000,
    }
    # removing lifetime/renewableAfter resets them to server defaults: nothing is expected
    assert expected_after_patch(JsonPatch().remove("/lifetime").to_json()) == {}
    assert expected_after_patch([{"op": "remove", "path": "/start"}]) == {"start": None}
    assert expected_after_patch(None) == {}
