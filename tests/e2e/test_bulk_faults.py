"""Bulk writes against hostile input and hostile answers: a bad item raises before anything is
sent, naming its index; an answer that cannot be read ends one item, never the run; and an
exception no item should raise stops the rest of the run instead of leaving it sending."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web

from flinkey_async import FlinkeyClient, JsonPatch, Limits, RetryPolicy
from flinkey_async.bulk import BulkReport, run_bulk
from flinkey_async.errors import (
    ClientClosedError,
    DecodeError,
    JournalError,
    ResponseTooLargeError,
    ServerError,
    ValidationError,
)
from flinkey_async.models import NewAssignment
from flinkey_async.operations import PendingOperation
from tests.support.recording import API_KEY, CUSTOMER_ID, TOKEN, Recorded, RecordingServer

START = datetime(2031, 1, 1, 8, tzinfo=UTC)
PATCH = JsonPatch().replace("/lifetime", 604_800)


def client_for(server: RecordingServer, **kw: Any) -> FlinkeyClient:
    return FlinkeyClient(
        API_KEY,
        CUSTOMER_ID,
        token=TOKEN,
        base_url=server.url,
        retry=RetryPolicy(max_retries=0),
        **kw,
    )


def answer(status: int, body: bytes = b"") -> Callable[[web.Request, Recorded], web.Response]:
    def handler(_: web.Request, __: Recorded) -> web.Response:
        return web.Response(status=status, body=body, content_type="application/json")

    return handler


def assignment(assignment_id: int) -> bytes:
    return (
        b'{"id": %d, "carId": 5, "userId": 6, "start": "2031-01-01T08:00:00Z", "end": null, '
        b'"lifetime": 604800, "renewableAfter": 302400}' % assignment_id
    )


NOT_FOUND = b'{"statusCode": 404, "message": "Unable to find an assignment"}'


def writes(server: RecordingServer) -> list[tuple[str, str]]:
    return [(r.method, r.path.removeprefix("/v3")) for r in server.requests if r.method != "GET"]


# -- bad input: raised before anything is sent, naming the item ---------------------------------
@pytest.mark.parametrize(
    ("bad", "error", "match"),
    [
        ("not a patch", TypeError, r"^items\[2\]: patch must be a flinkey_async\.JsonPatch"),
        (0, ValidationError, r"^items\[2\]\.assignment_id: must be a positive id"),
        ("pair", TypeError, r"^items\[2\]: must be an \(assignment_id, patch\) pair"),
    ],
    ids=["patch-not-a-JsonPatch", "id-zero", "not-a-pair"],
)
async def test_update_many_checks_every_item_before_sending_any(
    server: RecordingServer, bad: Any, error: type[Exception], match: str
) -> None:
    server.on("PATCH", "/assignments/1", answer(204))
    server.on("PATCH", "/assignments/2", answer(204))
    server.on("PATCH", "/assignments/4", answer(204))
    if bad == "pair":
        items: list[Any] = [(1, PATCH), (2, PATCH), "pair", (4, PATCH)]
    elif isinstance(bad, int):
        items = [(1, PATCH), (2, PATCH), (bad, PATCH), (4, PATCH)]
    else:
        items = [(1, PATCH), (2, PATCH), (3, bad), (4, PATCH)]
    report: BulkReport[Any] = BulkReport()
    async with client_for(server) as client:
        with pytest.raises(error, match=match):
            await client.assignments.update_many(items, wait=False, report=report)
        await asyncio.sleep(0.3)  # a write still running after the exception would show here
    assert server.requests == []
    assert report.results == []


async def test_delete_many_checks_every_id_before_reading_or_deleting_any(
    server: RecordingServer,
) -> None:
    server.on("GET", "/assignments/1", answer(200, assignment(1)))
    server.on("DELETE", "/assignments/1", answer(204))
    async with client_for(server) as client:
        with pytest.raises(ValidationError, match=r"^assignment_ids\[2\]: must be an int id") as e:
            await client.assignments.delete_many([1, 2, True, 4], wait=False)
        assert e.value.argument == "assignment_ids[2]"
        with pytest.raises(ValidationError, match=r"^assignment_ids\[1\]: must be a positive"):
            await client.assignments.delete_many([1, -5], wait=False)
        await asyncio.sleep(0.3)
    assert server.requests == []


async def test_create_many_names_the_bad_item() -> None:
    async with FlinkeyClient(API_KEY, CUSTOMER_ID, token=TOKEN, base_url="http://127.0.0.1:9") as c:
        with pytest.raises(ValidationError, match=r"^items\[1\]\.user_id: ") as caught:
            await c.assignments.create_many(
                [NewAssignment(5, 6, START), NewAssignment(5, 0, START)]
            )
        assert caught.value.argument == "items[1].user_id"
        with pytest.raises(TypeError, match=r"^items\[0\]: items must be NewAssignment"):
            await c.assignments.create_many(["car 5"])  # type: ignore[list-item]


@pytest.mark.parametrize(
    ("argument", "value"),
    [("timeout", "5"), ("timeout", float("nan")), ("on_progress", 5), ("concurrency", 0)],
)
async def test_bad_run_arguments_raise_before_anything_is_sent(
    server: RecordingServer, argument: str, value: Any
) -> None:
    server.on("PUT", "/assignments", answer(204))
    async with client_for(server) as client:
        with pytest.raises(ValidationError, match=rf"^{argument}: ") as caught:
            await client.assignments.create_many(
                [NewAssignment(5, 6, START), NewAssignment(5, 7, START)], **{argument: value}
            )
        await asyncio.sleep(0.2)
    assert caught.value.argument == argument
    assert server.requests == []


async def test_a_bad_poll_interval_is_refused_by_run_bulk() -> None:
    sent: list[int] = []

    async def send(item: int) -> PendingOperation:
        sent.append(item)
        raise AssertionError("never sent")

    with pytest.raises(ValidationError, match=r"^poll_interval: "):
        await run_bulk([1, 2], send, poll_interval=0)
    with pytest.raises(ValidationError, match=r"^report: must be a BulkReport"):
        await run_bulk([1, 2], send, report=[])  # type: ignore[arg-type]
    assert sent == []


# -- answers that cannot be read end one item, never the run -------------------------------------
async def test_create_many_whose_polls_get_a_malformed_body_reports_each_as_unknown(
    server: RecordingServer,
) -> None:
    server.on("PUT", "/assignments", answer(204))
    server.on("GET", "/cars/5/assignments", answer(200, b"{not json"))
    async with client_for(server) as client:
        report = await asyncio.wait_for(
            client.assignments.create_many(
                [NewAssignment(5, 6, START), NewAssignment(5, 7, START)], timeout=5
            ),
            20,
        )
    assert writes(server) == [("PUT", "/assignments")] * 2
    assert [r.status for r in report.results] == ["unknown", "unknown"]
    for result in report.results:
        assert isinstance(result.error, DecodeError)
        assert result.operation is not None  # still awaitable
        assert "outcome could not be confirmed" in (result.reason or "")


async def test_a_write_answered_with_an_unreadable_2xx_is_unknown(server: RecordingServer) -> None:
    # The first create's 2xx body is over the client's limit: flinkey received it.
    server.queue("PUT", "/assignments", answer(200, b'{"padding": "' + b"x" * 4096 + b'"}'))
    server.on("PUT", "/assignments", answer(204))
    async with client_for(server, max_response_bytes=1024) as client:
        report = await client.assignments.create_many(
            [NewAssignment(5, 6, START), NewAssignment(5, 7, START)], concurrency=1, wait=False
        )
    assert writes(server) == [("PUT", "/assignments")] * 2
    first, second = report.results
    assert first.status == "unknown" and isinstance(first.error, ResponseTooLargeError)
    assert first.operation is not None  # it can still be awaited
    assert first.operation is first.error.operation
    assert "unreadable body" in (first.reason or "")
    assert second.status == "unknown" and second.operation is not None


async def test_delete_many_whose_read_first_fails_fails_that_item_unsent(
    server: RecordingServer,
) -> None:
    server.on("GET", "/assignments/1", answer(200, b"[]"))  # 2xx, not an assignment
    server.queue("GET", "/assignments/2", answer(200, assignment(2)))
    server.on("GET", "/assignments/2", answer(404, NOT_FOUND))  # polled: gone
    server.on("GET", "/assignments/3", answer(500, b'{"message": "boom"}'))
    server.on("GET", "/assignments/4", answer(404, NOT_FOUND))
    server.on("DELETE", "/assignments/2", answer(204))
    async with client_for(server) as client:
        report = await asyncio.wait_for(client.assignments.delete_many([1, 2, 3, 4], timeout=5), 20)
    assert writes(server) == [("DELETE", "/assignments/2")]
    one, two, three, four = report.results
    assert one.status == "failed" and isinstance(one.error, DecodeError)
    assert (one.reason or "").startswith("not sent: the read before it failed")
    assert two.status == "succeeded"
    assert three.status == "failed" and isinstance(three.error, ServerError)
    assert (three.reason or "").startswith("not sent")
    assert four.status == "failed" and four.reason == "Unable to find an assignment"
    assert all(r.operation is None for r in (one, three, four))


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (JournalError("cannot write to the journal 'j': No space left on device"), "failed"),
        (ClientClosedError("closed while the request was in flight"), "unknown"),
        (DecodeError("response body is not valid JSON"), "unknown"),
    ],
    ids=["journal", "client-closed", "decode"],
)
async def test_any_error_of_the_sdk_from_a_send_ends_only_its_item(
    error: Exception, status: str
) -> None:
    sent: list[int] = []

    async def send(item: int) -> PendingOperation:
        sent.append(item)
        if item == 2:
            raise error
        await asyncio.sleep(0.01)
        return None  # type: ignore[return-value]  # run with wait=False: never awaited

    report = await run_bulk([1, 2, 3], send, wait=False, concurrency=1)
    assert sent == [1, 2, 3]
    assert [r.status for r in report.results] == ["unknown", status, "unknown"]
    assert report.results[1].error is error


# -- an exception no item should raise stops the run ---------------------------------------------
async def test_an_exception_from_a_callback_cancels_what_is_still_running(
    server: RecordingServer,
) -> None:
    async def slow(_: web.Request, __: Recorded) -> web.Response:
        await asyncio.sleep(0.1)
        return web.Response(status=204)

    for i in range(1, 5):
        server.on("PATCH", f"/assignments/{i}", slow)

    def on_progress(done: int, total: int) -> None:
        raise RuntimeError("the caller's progress bar broke")

    report: BulkReport[Any] = BulkReport()
    async with client_for(server) as client:
        with pytest.raises(RuntimeError, match="progress bar broke"):
            await client.assignments.update_many(
                [(i, PATCH) for i in range(1, 5)],
                concurrency=1,
                wait=False,
                on_progress=on_progress,
                report=report,
            )
        await asyncio.sleep(0.6)  # unstopped, the three others would all be sent by now
    assert len(writes(server)) <= 2  # the first, and the second if it had left already
    assert [r.status for r in report.results][2:] == ["not_attempted"] * 2
    assert report.results[0].status == "unknown"  # sent, not awaited (wait=False)


async def test_an_unexpected_exception_from_send_is_raised_itself_and_stops_the_rest() -> None:
    started: list[int] = []
    finished: list[int] = []

    async def send(item: int) -> PendingOperation:
        started.append(item)
        if item == 1:
            raise KeyError("a bug in the caller's send")
        await asyncio.sleep(0.2)
        finished.append(item)
        return None  # type: ignore[return-value]

    with pytest.raises(KeyError, match="a bug"):
        await run_bulk([1, 2, 3, 4], send, wait=False, concurrency=2)
    await asyncio.sleep(0.4)
    assert finished == []  # those in flight were cancelled
    assert 4 not in started  # and the last one never started


# -- cancelled in flight: what may have arrived is unknown, what did not is not_attempted --------
async def cancelled_once_arrived(
    server: RecordingServer, items: int, arrivals: int, **client_options: Any
) -> BulkReport[Any]:
    """``update_many`` of ``items`` patches (2 at once) to a server that never answers,
    cancelled once ``arrivals`` of them have reached it (and a moment more)."""
    arrived = asyncio.Event()

    async def hang(_: web.Request, __: Recorded) -> web.Response:
        if len(writes(server)) == arrivals:
            arrived.set()
        await asyncio.sleep(30)
        return web.Response(status=204)

    for i in range(1, items + 1):
        server.on("PATCH", f"/assignments/{i}", hang)
    report: BulkReport[Any] = BulkReport()
    async with client_for(server, **client_options) as client:
        run = asyncio.ensure_future(
            client.assignments.update_many(
                [(i, PATCH) for i in range(1, items + 1)],
                concurrency=2,
                wait=False,
                report=report,
            )
        )
        await asyncio.wait_for(arrived.wait(), 5)
        await asyncio.sleep(0.05)  # what could leave next (it must not) has had its chance
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run
    return report


async def test_a_run_cancelled_with_writes_in_flight_reports_them_unknown(
    server: RecordingServer,
) -> None:
    report = await cancelled_once_arrived(server, items=4, arrivals=2)
    assert writes(server) == [("PATCH", "/assignments/1"), ("PATCH", "/assignments/2")]
    assert [r.status for r in report.results] == ["unknown", "unknown"] + ["not_attempted"] * 2
    assert report.results[0].reason == "cancelled while it was being sent: it may have arrived"
    assert report.results[0].operation is None


async def test_a_write_waiting_for_the_clients_concurrency_slot_is_not_attempted(
    server: RecordingServer,
) -> None:
    # The second item is inside send, waiting for the client's only slot, when cancelled.
    report = await cancelled_once_arrived(server, items=2, arrivals=1, limits=Limits(concurrency=1))
    assert writes(server) == [("PATCH", "/assignments/1")]
    assert [r.status for r in report.results] == ["unknown", "not_attempted"]


async def test_a_write_cancelled_between_refused_connections_is_not_attempted(
    unused_tcp_port: int,
) -> None:
    client = FlinkeyClient(
        API_KEY,
        CUSTOMER_ID,
        token=TOKEN,
        base_url=f"http://127.0.0.1:{unused_tcp_port}",
        retry=RetryPolicy(max_retries=5, backoff_base=5.0, jitter=0),
    )
    report: BulkReport[Any] = BulkReport()
    async with client:
        run = asyncio.ensure_future(
            client.assignments.update_many([(1, PATCH)], wait=False, report=report)
        )
        await asyncio.sleep(0.3)  # refused once, sleeping before the retry
        assert client.stats.requests == 1
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run
    assert [r.status for r in report.results] == ["not_attempted"]


async def test_a_write_answered_429_and_cancelled_before_its_retry_is_not_attempted(
    server: RecordingServer,
) -> None:
    """A 429 says the write was not applied: cancelled while it waits for its retry, the item
    is safe to send again (not_attempted), like one that never left."""
    limited = asyncio.Event()

    def too_many(_: web.Request, __: Recorded) -> web.Response:
        limited.set()
        return web.Response(status=429, headers={"Retry-After": "5"})

    server.on("PATCH", "/assignments/1", too_many)
    report: BulkReport[Any] = BulkReport()
    async with FlinkeyClient(
        API_KEY, CUSTOMER_ID, token=TOKEN, base_url=server.url, retry=RetryPolicy(jitter=0)
    ) as client:
        run = asyncio.ensure_future(
            client.assignments.update_many([(1, PATCH)], wait=False, report=report)
        )
        await asyncio.wait_for(limited.wait(), 5)
        await asyncio.sleep(0.05)  # waiting the Retry-After now
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run
    assert writes(server) == [("PATCH", "/assignments/1")]
    assert [r.status for r in report.results] == ["not_attempted"]
