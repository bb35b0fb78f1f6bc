"""Webhook receiver hardening: no secret in tracebacks or pickles, 400 (never 500) for any
body, body and head timeouts, bounded handler concurrency, shutdown with a deadline, and
rate-limited warnings. Everything runs on loopback, on ephemeral ports, with bounded loops."""

from __future__ import annotations

import asyncio
import json
import logging
import pickle
import random
import time
import traceback
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict

from flinkey_async.auth import Secret
from flinkey_async.errors import WebhookAuthenticationError, WebhookError, WebhookPayloadError
from flinkey_async.models.assignments import create_key
from flinkey_async.operations import PendingOperation, body_checksum
from flinkey_async.webhooks import (
    WEBHOOK_RECEIVER_KEY,
    AssignmentEvent,
    HeaderTimeoutSite,
    OperationTracker,
    WebhookReceiver,
    parse_webhook,
    start_webhook_server,
    verify_secret,
    webhook_app,
)

# Built at run time so that no test frame needs the plain value as a constant of its code.
SECRET = "".join(["hook-", "S3cr3t", "-q7Zx"])
PATH = "/webhooks/flinkey"
LOGGER = "flinkey_async.webhooks"


def payload(**over: Any) -> dict[str, Any]:
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


def dumps(data: Any) -> bytes:
    return json.dumps(data).encode()


def rendered(exc: BaseException, *, drop_callers: int = 0) -> str:
    """The traceback of ``exc`` with every frame's locals, as a log formatter with
    ``capture_locals`` would print it (the first ``drop_callers`` frames, the test's own,
    are left out: they hold the plain string they passed)."""
    tb = exc.__traceback__
    for _ in range(drop_callers):
        assert tb is not None
        tb = tb.tb_next
    te = traceback.TracebackException.from_exception(exc.with_traceback(tb), capture_locals=True)
    return "".join(te.format())


def raised(call: Callable[[], object]) -> BaseException:
    try:
        call()
    except Exception as exc:
        return exc
    raise AssertionError("expected an exception")


# -- 1. the secret stays out of tracebacks, pickles and reprs -----------------------------------

PAYLOAD_ERRORS = [
    b"{broken",
    b"[]",
    dumps(payload(operationSucceeded="yes")),
    dumps(payload(start="9999-12-31T23:59:59-05:00")),
    b"x" * 70_000,
]


@pytest.mark.parametrize(
    "headers",
    [
        {"Secret": "guess"},
        {},
        CIMultiDict([("Secret", SECRET), ("secret", "guess")]),  # one right, one wrong
    ],
)
def test_parse_webhook_mismatch_traceback_has_no_secret(headers: Any) -> None:
    exc = raised(lambda: parse_webhook(headers, dumps(payload()), secret=SECRET))
    assert isinstance(exc, WebhookAuthenticationError)
    text = rendered(exc, drop_callers=2)  # raised() and the lambda hold the plain string
    assert "parse_webhook" in text and "secret = Secret('***')" in text
    assert SECRET not in text
    exc = raised(lambda: verify_secret(headers, SECRET))
    text = rendered(exc, drop_callers=2)
    assert "verify_secret" in text and SECRET not in text


@pytest.mark.parametrize("data", PAYLOAD_ERRORS)
def test_parse_webhook_payload_error_traceback_has_no_secret(data: bytes) -> None:
    # The right secret: the headers hold it, and the error comes after the check.
    exc = raised(lambda: parse_webhook({"Secret": SECRET}, data, secret=SECRET))
    assert isinstance(exc, WebhookPayloadError)
    text = rendered(exc, drop_callers=2)
    assert "parse_webhook" in text
    assert SECRET not in text
    assert SECRET not in str(exc)


def refusals(records: list[logging.LogRecord]) -> list[BaseException]:
    return [
        arg
        for r in records
        if isinstance(r.args, tuple)
        for arg in r.args
        if isinstance(arg, BaseException)
    ]


@pytest.mark.parametrize(
    ("secret_header", "data", "status"),
    [
        ("guess", dumps(payload()), 401),
        (SECRET, b"{broken", 400),
        (SECRET, dumps(payload(end="0001-01-01T00:00:00+05:00")), 400),
    ],
)
async def test_receiver_refusal_traceback_has_no_secret(
    caplog: pytest.LogCaptureFixture, secret_header: str, data: bytes, status: int
) -> None:
    app = webhook_app(secret=SECRET, tracker=OperationTracker())
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        async with TestClient(TestServer(app)) as client:
            headers = {"Secret": secret_header, "Content-Type": "application/json"}
            async with client.post(PATH, data=data, headers=headers) as response:
                assert response.status == status
                assert SECRET not in await response.text()
    (exc,) = refusals(caplog.records)
    text = rendered(exc)
    assert "in handle" in text and "request = <Request POST /webhooks/flinkey >" in text
    assert SECRET not in text
    assert SECRET not in caplog.text


async def test_receiver_refuses_pickling_and_hides_the_secret() -> None:
    receiver = WebhookReceiver(secret=SECRET)
    with pytest.raises(TypeError, match="secret"):
        pickle.dumps(receiver)
    app = webhook_app(secret=SECRET)
    with pytest.raises(TypeError):
        pickle.dumps(app[WEBHOOK_RECEIVER_KEY])
    assert SECRET not in repr(receiver)
    # Wrapped on entry: no attribute holds the plain string.
    assert SECRET not in repr(vars(receiver))
    assert isinstance(receiver._secret, Secret)


def test_secret_may_be_given_wrapped_and_must_be_a_string() -> None:
    wrapped = Secret(SECRET)
    assert parse_webhook({"Secret": SECRET}, dumps(payload()), secret=wrapped).customer_id == 42
    verify_secret({"secret": SECRET}, wrapped)
    with pytest.raises(WebhookAuthenticationError):
        verify_secret({"secret": "guess"}, wrapped)
    WebhookReceiver(secret=wrapped)
    with pytest.raises(TypeError):
        WebhookReceiver(secret=123)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        parse_webhook({}, b"{}", secret=Secret(""))


def test_header_values_with_lone_surrogates_are_just_wrong() -> None:
    with pytest.raises(WebhookAuthenticationError):
        verify_secret({"Secret": "\ud800" + SECRET}, SECRET)


# -- 2. any body: a WebhookError (400), never another exception (500) ---------------------------


@pytest.mark.parametrize("field", ["start", "end"])
@pytest.mark.parametrize("value", ["9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00"])
def test_datetime_out_of_range_in_utc_is_a_payload_error(field: str, value: str) -> None:
    with pytest.raises(WebhookPayloadError, match=field):
        parse_webhook({}, dumps(payload(**{field: value})), secret=None)


def test_datetimes_are_utc_even_at_the_edges() -> None:
    event = parse_webhook(
        {},
        dumps(payload(start="9999-12-31T23:59:59+05:00", end="0001-01-01T00:00:00-05:00")),
        secret=None,
    )
    assert event.start == datetime(9999, 12, 31, 18, 59, 59, tzinfo=UTC)
    assert event.end is not None and event.end.tzinfo is UTC


def test_text_body_that_is_not_utf8_is_a_payload_error() -> None:
    with pytest.raises(WebhookPayloadError):
        parse_webhook({}, '{"checksum": "\ud800"}', secret=None)


KEYS = [
    "checksum",
    "assignmentId",
    "customerId",
    "operationSucceeded",
    "errorMessage",
    "carId",
    "userId",
    "start",
    "end",
    "lifetime",
    "renewableAfter",
]
OFFSETS = st.integers(-1439, 1439).map(lambda m: timezone(timedelta(minutes=m)))
TIMESTAMPS = st.builds(
    lambda d, tz: d.replace(tzinfo=tz).isoformat(),
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)),
    OFFSETS,
)
EDGE_TIMES = st.sampled_from(
    [
        "9999-12-31T23:59:59-00:01",
        "0001-01-01T00:00:00+00:01",
        "9999-12-31T23:59:59Z",
        "0001-01-01",
        "2026-02-30T00:00:00Z",
        "2026-03-01T08:00:00.123456789Z",
        "T",
        "",
    ]
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(["42", " 42 ", "٤٢", "9" * 5000, "-1", "1e3"])
    | TIMESTAMPS
    | EDGE_TIMES
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)
MOMENTS = st.fixed_dictionaries(
    {}, optional={"start": TIMESTAMPS | EDGE_TIMES, "end": TIMESTAMPS | EDGE_TIMES | st.none()}
)
OBJECTS = st.builds(
    lambda base, over, moments: {**base, **over, **moments},
    st.sampled_from([{}, payload(), payload(assignmentId=None)]),
    st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=6),
    MOMENTS,
)
# Any code point, lone surrogates included (st.text() leaves them out).
ANY_TEXT = st.lists(st.integers(0, 0x10FFFF) | st.integers(0xD800, 0xDFFF), max_size=40).map(
    lambda points: "".join(map(chr, points))
)


def check_any_body(data: bytes | str) -> None:
    tracker = OperationTracker()
    receiver = WebhookReceiver(secret=None, tracker=tracker)
    try:
        event = parse_webhook({}, data, secret=None)
    except WebhookError:
        return
    for moment in (event.start, event.end):
        assert moment is None or moment.tzinfo is UTC
    receiver.deliver(event)  # the tracker's keys must not overflow either
    receiver.deliver(event)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(OBJECTS)
@example(payload(start="9999-12-31T23:59:59-05:00"))
@example(payload(assignmentId=None, operationSucceeded=False, end="0001-01-01T00:00:00+00:01"))
def test_random_objects_raise_only_webhook_errors(data: dict[str, Any]) -> None:
    check_any_body(json.dumps(data).encode())


@settings(max_examples=100, deadline=None)
@given(
    st.binary(max_size=200)
    | ANY_TEXT
    | st.builds(lambda text: json.dumps({**payload(), "checksum": text}), ANY_TEXT)
)
@example('{"checksum": "\ud800"}')
def test_random_bytes_raise_only_webhook_errors(data: bytes | str) -> None:
    check_any_body(data)


def random_body(rng: random.Random) -> bytes:
    pool: list[Any] = [
        None,
        True,
        0,
        -1,
        2**63,
        1.5,
        "",
        "x",
        "42",
        [],
        {},
        "9999-12-31T23:59:59-05:00",
        "0001-01-01T00:00:00+05:00",
        "2026-03-01T08:00:00Z",
        "2026-13-01T00:00:00Z",
    ]
    choice = rng.randrange(3)
    if choice == 0:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(60)))
    data = payload() if choice == 1 else {}
    for key in rng.sample(KEYS, rng.randrange(1, 6)):
        data[key] = rng.choice(pool)
    return json.dumps(data).encode()


async def test_random_bodies_over_http_never_get_500() -> None:
    rng = random.Random(20260301)
    tracker = OperationTracker()
    op = PendingOperation(
        kind="create",
        customer_id=42,
        assignment_id=None,
        body=None,
        checksum=body_checksum(b"c"),
        sent_at=datetime.now(UTC),
        create_key=create_key(42, 7, 9, datetime(9999, 12, 31, 23, tzinfo=UTC), None),
        watcher=tracker,
    )
    tracker.expect(op)
    app = webhook_app(secret=SECRET, tracker=tracker)
    statuses: list[int] = []
    async with TestClient(TestServer(app)) as client:
        for _ in range(40):
            async with client.post(
                PATH, data=random_body(rng), headers={"Secret": SECRET}
            ) as response:
                statuses.append(response.status)
        overflow = dumps(
            payload(assignmentId=None, operationSucceeded=False, start="9999-12-31T23:59:59-05:00")
        )
        async with client.post(PATH, data=overflow, headers={"Secret": SECRET}) as response:
            statuses.append(response.status)
    assert statuses[-1] == 400
    assert set(statuses) <= {204, 400} and 400 in statuses
    stats = app[WEBHOOK_RECEIVER_KEY].stats
    assert stats.malformed + stats.delivered + stats.duplicates == 41


# -- 3. body and head timeouts --------------------------------------------------------------------


@pytest.fixture
async def served() -> AsyncIterator[tuple[web.AppRunner, int, list[AssignmentEvent]]]:
    events: list[AssignmentEvent] = []
    app = webhook_app(secret=SECRET, handler=events.append, body_timeout=0.5)
    runner = await start_webhook_server(app, "127.0.0.1", 0, header_timeout=0.5)
    try:
        port = runner.addresses[0][1]
        yield runner, port, events
    finally:
        await runner.cleanup()


def head(length: int, *, close: bool = False) -> bytes:
    connection = "close" if close else "keep-alive"
    return (
        f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nSecret: {SECRET}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {length}\r\n"
        f"Connection: {connection}\r\n\r\n"
    ).encode()


async def read_until_closed(reader: asyncio.StreamReader, limit: float) -> bytes:
    """Everything the server sends until it closes the connection (bounded in time)."""
    chunks: list[bytes] = []
    async with asyncio.timeout(limit):
        while chunk := await reader.read(65536):
            chunks.append(chunk)
    return b"".join(chunks)


async def post_webhook(port: int, data: bytes) -> int:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"http://127.0.0.1:{port}{PATH}",
            data=data,
            headers={"Secret": SECRET, "Content-Type": "application/json"},
            timeout=aiohttp.ClientTimeout(total=5),
        ) as response,
    ):
        return response.status


async def test_trickled_body_gets_408_and_the_connection_is_dropped(
    served: tuple[web.AppRunner, int, list[AssignmentEvent]],
) -> None:
    runner, port, events = served
    data = dumps(payload())
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()
    try:
        writer.write(head(len(data)) + data[:10])
        await writer.drain()
        answer = await read_until_closed(reader, 3.0)
    finally:
        writer.close()
    elapsed = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408")
    assert 0.4 <= elapsed < 1.5  # body_timeout 0.5, then closed at once (no lingering)
    receiver = runner.app[WEBHOOK_RECEIVER_KEY]
    assert receiver.stats.timed_out == 1 and events == []
    assert await post_webhook(port, data) == 204


async def test_slow_heads_are_closed_while_webhooks_still_get_through(
    served: tuple[web.AppRunner, int, list[AssignmentEvent]],
) -> None:
    runner, port, events = served
    partial = f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nSec".encode()
    conns = [await asyncio.open_connection("127.0.0.1", port) for _ in range(60)]
    started = time.monotonic()
    try:
        for _reader, writer in conns:
            writer.write(partial)
        await asyncio.gather(*(w.drain() for _r, w in conns))
        assert await post_webhook(port, dumps(payload())) == 204  # meanwhile
        answers = await asyncio.gather(*(read_until_closed(r, 3.0) for r, _w in conns))
    finally:
        for _reader, writer in conns:
            writer.close()
    elapsed = time.monotonic() - started
    assert answers == [b""] * 60  # closed without an answer
    assert elapsed < 0.5 + 1.0
    (site,) = runner.sites
    assert isinstance(site, HeaderTimeoutSite) and site.timed_out == 60
    assert len(events) == 1


async def test_a_head_trickled_byte_by_byte_is_closed_in_time(
    served: tuple[web.AppRunner, int, list[AssignmentEvent]],
) -> None:
    _runner, port, _events = served
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()
    closed_after: float | None = None
    try:
        for byte in head(10)[:40]:  # a byte every 50 ms: 2 s if it were let through
            if reader.at_eof() or writer.is_closing():
                break
            writer.write(bytes([byte]))
            try:
                await writer.drain()
                async with asyncio.timeout(0.05):
                    if await reader.read(1) == b"":
                        closed_after = time.monotonic() - started
                        break
            except TimeoutError:
                continue
            except ConnectionError:
                closed_after = time.monotonic() - started
                break
    finally:
        writer.close()
    assert closed_after is not None and closed_after < 0.5 + 0.5


async def test_a_slow_second_head_on_a_kept_alive_connection_is_closed(
    served: tuple[web.AppRunner, int, list[AssignmentEvent]],
) -> None:
    _runner, port, events = served
    data = dumps(payload())
    for pipelined in (False, True):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            second = b"POST / HTTP/1.1\r\nHo"  # never completed
            writer.write(head(len(data)) + data + (second if pipelined else b""))
            await writer.drain()
            async with asyncio.timeout(3):
                status_line = await reader.readline()
                await reader.readuntil(b"\r\n\r\n")
            assert status_line.startswith(b"HTTP/1.1 204")
            started = time.monotonic()
            if not pipelined:
                await asyncio.sleep(0.1)
                writer.write(second)
                await writer.drain()
            assert await read_until_closed(reader, 3.0) == b""
            assert time.monotonic() - started < 0.5 + 0.5
        finally:
            writer.close()
    assert len(events) == 1  # the same event twice: a duplicate


async def test_an_idle_kept_alive_connection_is_closed_after_the_head_timeout(
    served: tuple[web.AppRunner, int, list[AssignmentEvent]],
) -> None:
    _runner, port, _events = served
    data = dumps(payload(assignmentId=8))
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for _ in range(3):  # requests in a row on one connection are fine
            writer.write(head(len(data)) + data)
            await writer.drain()
            async with asyncio.timeout(3):
                assert (await reader.readline()).startswith(b"HTTP/1.1 204")
                await reader.readuntil(b"\r\n\r\n")
            await asyncio.sleep(0.2)
        started = time.monotonic()
        assert await read_until_closed(reader, 3.0) == b""
        assert time.monotonic() - started < 0.5
    finally:
        writer.close()


async def test_a_complete_head_is_not_cut_by_the_head_timeout() -> None:
    events: list[AssignmentEvent] = []
    app = webhook_app(secret=SECRET, handler=events.append, body_timeout=5)
    runner = await start_webhook_server(app, "127.0.0.1", 0, header_timeout=0.3)
    try:
        port = runner.addresses[0][1]
        data = dumps(payload())
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(head(len(data), close=True))
            for i in range(0, len(data), len(data) // 4 + 1):  # body over ~0.8 s
                await asyncio.sleep(0.2)
                writer.write(data[i : i + len(data) // 4 + 1])
            await writer.drain()
            answer = await read_until_closed(reader, 3.0)
        finally:
            writer.close()
        assert answer.startswith(b"HTTP/1.1 204")
        assert len(events) == 1
    finally:
        await runner.cleanup()


def test_timeouts_must_be_positive() -> None:
    for bad in (0, -1.0, float("nan")):
        with pytest.raises(ValueError):
            WebhookReceiver(secret=None, body_timeout=bad)


# -- 4. bounded handler concurrency ---------------------------------------------------------------


class Blocking:
    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.running = 0
        self.most = 0
        self.done = 0

    async def __call__(self, event: AssignmentEvent) -> None:
        self.running += 1
        self.most = max(self.most, self.running)
        try:
            await self.release.wait()
            self.done += 1
        finally:
            self.running -= 1


def events(count: int) -> list[AssignmentEvent]:
    return [
        parse_webhook({}, dumps(payload(assignmentId=i)), secret=None) for i in range(1, count + 1)
    ]


async def test_handler_calls_are_bounded_and_extra_ones_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    handler = Blocking()
    tracker = OperationTracker()
    receiver = WebhookReceiver(
        secret=None, tracker=tracker, handler=handler, max_handler_tasks=3, max_handler_backlog=2
    )
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        for event in events(10):
            assert receiver.deliver(event) is True
        for _ in range(5):
            await asyncio.sleep(0)
    assert handler.running == 3 and len(receiver._tasks) == 5
    stats = receiver.stats
    assert (stats.delivered, stats.handler_dropped) == (10, 5)
    assert tracker.unsolicited == 10  # the tracker saw every event
    drops = [r for r in caplog.records if "was not called" in r.getMessage()]
    assert len(drops) == 1
    handler.release.set()
    async with asyncio.timeout(5):
        await receiver.drain()
    assert handler.done == 5 and handler.most == 3


async def test_on_unsolicited_calls_are_bounded() -> None:
    handler = Blocking()
    tracker = OperationTracker(on_unsolicited=handler, max_callback_tasks=1, max_callback_backlog=1)
    for event in events(4):
        tracker.resolve(event)
    await asyncio.sleep(0)
    assert handler.running == 1 and tracker.callbacks_dropped == 2
    handler.release.set()
    async with asyncio.timeout(5):
        await WebhookReceiver(secret=None, tracker=tracker).drain()
    assert handler.done == 2 and handler.most == 1


# -- 5. shutdown with a deadline ------------------------------------------------------------------


class Forever:
    def __init__(self) -> None:
        self.started = 0
        self.cancelled = 0

    async def __call__(self, event: AssignmentEvent) -> None:
        self.started += 1
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise


async def test_aclose_cancels_handlers_after_the_deadline() -> None:
    handler = Forever()
    receiver = WebhookReceiver(secret=None, handler=handler, max_handler_tasks=1)
    for event in events(2):  # one runs, one waits for its slot
        receiver.deliver(event)
    await asyncio.sleep(0)
    tasks = set(receiver._tasks)
    started = time.monotonic()
    await receiver.aclose(timeout=0.2)
    elapsed = time.monotonic() - started
    assert 0.2 <= elapsed < 0.2 + 0.5
    assert all(t.cancelled() for t in tasks) and receiver._tasks == set()
    assert (handler.started, handler.cancelled) == (1, 1)  # the waiting one never started


async def test_app_cleanup_uses_the_shutdown_timeout() -> None:
    handler = Forever()
    app = webhook_app(secret=None, handler=handler, shutdown_timeout=0.2)
    receiver = app[WEBHOOK_RECEIVER_KEY]
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        async with client.post(PATH, data=dumps(payload())) as response:
            assert response.status == 204
        await asyncio.sleep(0.01)
        tasks = set(receiver._tasks)
        assert len(tasks) == 1
    finally:
        started = time.monotonic()
        await client.close()
    assert time.monotonic() - started < 0.2 + 0.8
    assert all(t.cancelled() for t in tasks) and handler.cancelled == 1


async def test_aclose_returns_at_once_when_idle_and_waits_for_quick_handlers() -> None:
    done: list[int | None] = []

    async def quick(event: AssignmentEvent) -> None:
        await asyncio.sleep(0.05)
        done.append(event.assignment_id)

    receiver = WebhookReceiver(secret=None, handler=quick, shutdown_timeout=5)
    for event in events(3):
        receiver.deliver(event)
    async with asyncio.timeout(2):
        await receiver.aclose()
    assert sorted(d for d in done if d is not None) == [1, 2, 3]


# -- 6. rate-limited warnings ---------------------------------------------------------------------


async def test_a_flood_of_wrong_secrets_logs_a_couple_of_warnings(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = webhook_app(secret=SECRET)
    receiver = app[WEBHOOK_RECEIVER_KEY]

    async def wrong(client: TestClient[web.Request, web.Application], n: int) -> None:
        for _ in range(n):
            async with client.post(PATH, data=b"{}", headers={"Secret": "guess"}) as response:
                assert response.status == 401

    with caplog.at_level(logging.WARNING, logger=LOGGER):
        async with TestClient(TestServer(app)) as client:
            await asyncio.gather(*(wrong(client, 100) for _ in range(10)))
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert 1 <= len(warnings) <= 2
    assert receiver.stats.unauthorized == 1000 and receiver.stats.received == 1000


async def test_the_next_warning_counts_the_suppressed_ones(
    caplog: pytest.LogCaptureFixture,
) -> None:
    receiver = WebhookReceiver(secret=SECRET, warning_interval=60)
    now = [1000.0]
    receiver._warnings._clock = lambda: now[0]

    app = web.Application()
    app.router.add_post(PATH, receiver.handle)

    async def send(
        client: TestClient[web.Request, web.Application], secret: str, data: bytes = b"{}"
    ) -> int:
        async with client.post(PATH, data=data, headers={"Secret": secret}) as response:
            return response.status

    with caplog.at_level(logging.WARNING, logger=LOGGER):
        async with TestClient(TestServer(app)) as client:
            for _ in range(5):
                assert await send(client, "guess") == 401
            assert await send(client, SECRET, b"[]") == 400  # another reason: logged at once
            now[0] += 61
            assert await send(client, "guess") == 401
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 3
    assert "4 more like it" in messages[2]
    assert receiver.stats.unauthorized == 6 and receiver.stats.malformed == 1
