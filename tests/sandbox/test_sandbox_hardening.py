"""Hardening of the sandbox: the webhook sender never follows redirects nor proxies from the
environment, the ``reset_after`` fault (a write applied although its answer is lost), the
per-route request counts, bounded memory (tokens, outcomes, deliveries), and 400, never 500,
for malformed input (which changes nothing)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import operator
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from yarl import URL

from flinkey_async.sandbox import FaultConfig, RecordLog, RouteFaults, Sandbox, SandboxConfig
from flinkey_async.sandbox.faults import FaultInjector
from tests.support.sandbox_helpers import Receiver, drained, odata_url

MakeSandbox = Callable[..., Awaitable[Sandbox]]

CREATE = {"carId": 101, "userId": 1001, "start": "2026-02-01T08:00:00Z"}
LOST_ANSWER = (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)


class Recorder:
    """A local server recording every request it gets, whatever the method and path."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        self.server: TestServer | None = None

    def url(self, path: str = "/") -> str:
        assert self.server is not None
        return str(self.server.make_url(path))

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append(
            (request.method, str(request.rel_url), dict(request.headers), await request.read())
        )
        return web.Response(status=200)


@pytest.fixture
async def recorder() -> AsyncIterator[Recorder]:
    rec = Recorder()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", rec.handle)
    rec.server = TestServer(app, host="127.0.0.1")
    await rec.server.start_server()
    yield rec
    await rec.server.close()


def json_headers(sandbox: Sandbox) -> dict[str, str]:
    return {**sandbox.auth_headers(1), "Content-Type": "application/json"}


async def put(sandbox: Sandbox, http: aiohttp.ClientSession, body: dict[str, Any]) -> int:
    async with http.put(
        f"{sandbox.url}/assignments", data=json.dumps(body).encode(), headers=json_headers(sandbox)
    ) as response:
        await response.read()
        return response.status


# --- the webhook sender ---------------------------------------------------------------------


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_webhook_sender_never_follows_redirects(
    make_sandbox: MakeSandbox,
    http: aiohttp.ClientSession,
    recorder: Recorder,
    status: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    hits: list[bytes] = []

    async def redirect(request: web.Request) -> web.Response:
        hits.append(await request.read())
        return web.Response(status=status, headers={"Location": recorder.url("/stolen")})

    app = web.Application()
    app.router.add_post("/hook", redirect)
    first = TestServer(app, host="127.0.0.1")
    await first.start_server()
    try:
        sb = await make_sandbox(webhook_url=str(first.make_url("/hook")), webhook_secret="s3cret")
        with caplog.at_level(logging.WARNING, logger="flinkey_async.sandbox"):
            assert await put(sb, http, CREATE) == 204
            await drained(sb)
    finally:
        await first.close()
    assert len(hits) == 1 and json.loads(hits[0]) == sb.outcomes[0]
    assert recorder.requests == []  # neither the body nor the Secret went anywhere else
    (delivery,) = sb.deliveries
    assert (delivery.status, delivery.error) == (status, None)
    assert any(
        r.levelno == logging.WARNING and str(status) in r.getMessage() for r in caplog.records
    )


async def test_webhook_sender_ignores_proxy_variables(
    make_sandbox: MakeSandbox,
    http: aiohttp.ClientSession,
    receiver: Receiver,
    recorder: Recorder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, recorder.url())
    sb = await make_sandbox(webhook_url=receiver.url)
    assert await put(sb, http, CREATE) == 204
    await drained(sb)
    assert recorder.requests == []
    assert len(receiver.received) == 1 and [d.status for d in sb.deliveries] == [200]


# --- reset_after: the write is applied, the answer is lost ------------------------------------


async def send(sandbox: Sandbox, method: str, path: str, body: Any = None) -> int | None:
    """Exactly one HTTP/1.1 request on its own connection, written by hand (aiohttp's client
    sends an idempotent request again when the connection breaks); the answer's status, or None
    when the connection was closed without an answer."""
    url = URL(sandbox.url or "")
    data = json.dumps(body).encode() if body is not None else b""
    lines = [
        f"{method} {url.path}{path} HTTP/1.1",
        f"Host: {url.host}:{url.port}",
        "Connection: close",
        f"Content-Length: {len(data)}",
        *(f"{name}: {value}" for name, value in json_headers(sandbox).items()),
    ]
    async with asyncio.timeout(5):
        reader, writer = await asyncio.open_connection(url.host, url.port)
        try:
            writer.write("\r\n".join(lines).encode() + b"\r\n\r\n" + data)
            await writer.drain()
            answer = await reader.read()  # until the server closes (Connection: close)
        except ConnectionResetError:
            answer = b""
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
    if not answer:
        return None
    assert answer.startswith(b"HTTP/1.1 "), answer[:40]
    return int(answer.split(b" ", 2)[1])


WRITES: list[tuple[str, str, Any]] = [
    ("PUT", "/assignments", CREATE),
    (
        "PATCH",
        "/assignments/{assignmentId}",
        [{"op": "replace", "path": "/end", "value": "2026-12-24T18:00:00Z"}],
    ),
    ("DELETE", "/assignments/{assignmentId}", None),
]


async def lost_write(
    make_sandbox: MakeSandbox, receiver: Receiver, kind: str, method: str, template: str, body: Any
) -> tuple[Sandbox, dict[str, Any]]:
    """Send one write under the fault ``kind`` (probability 1); the sandbox, drained, and its
    store's content from before."""
    route = RouteFaults(**{kind: 1.0})  # type: ignore[arg-type]
    sb = await make_sandbox(
        webhook_url=receiver.url, faults=FaultConfig({f"{method} {template}": route})
    )
    before = sb.store.dump_fixture()
    path = template.replace("{assignmentId}", "50001")
    assert await send(sb, method, path, body) is None  # no answer
    await drained(sb)
    assert sb.request_counts[f"{method} {template}"] == 1  # sent once, not retried
    return sb, before


@pytest.mark.parametrize(("method", "template", "body"), WRITES)
async def test_reset_after_applies_the_write(
    make_sandbox: MakeSandbox, receiver: Receiver, method: str, template: str, body: Any
) -> None:
    sb, before = await lost_write(make_sandbox, receiver, "reset_after", method, template, body)
    assert sb.store.dump_fixture() != before
    (outcome,) = sb.outcomes
    assert outcome["operationSucceeded"] is True
    assert receiver.payloads() == [outcome]
    if method == "PUT":
        record = sb.store.get_assignment(outcome["assignmentId"], 1)
        assert record is not None and record.car_id == 101 and record.user_id == 1001
        assert record.start == datetime(2026, 2, 1, 8, tzinfo=UTC)
    elif method == "PATCH":
        record = sb.store.get_assignment(50001, 1)
        assert record is not None and record.end == datetime(2026, 12, 24, 18, tzinfo=UTC)
    else:
        assert sb.store.get_assignment(50001) is None


@pytest.mark.parametrize(("method", "template", "body"), WRITES)
async def test_reset_before_applies_nothing(
    make_sandbox: MakeSandbox, receiver: Receiver, method: str, template: str, body: Any
) -> None:
    sb, before = await lost_write(make_sandbox, receiver, "reset", method, template, body)
    assert sb.store.dump_fixture() == before
    assert sb.outcomes == [] and receiver.received == []


async def test_reset_after_on_a_put_sent_with_aiohttp(sb: Sandbox) -> None:
    sb.faults = FaultConfig({"PUT /assignments": RouteFaults(reset_after=1.0)})
    before = set(sb.store.assignments)
    with pytest.raises(LOST_ANSWER):
        async with aiohttp.ClientSession() as http:
            await put(sb, http, CREATE)
    await drained(sb)
    # aiohttp may send an idempotent PUT again on a broken connection: every PUT that
    # arrived was applied, once, and reported
    sent = sb.request_counts["PUT /assignments"]
    assert sent >= 1 and len(sb.outcomes) == sent
    assert all(o["operationSucceeded"] and o["carId"] == 101 for o in sb.outcomes)
    created = {o["assignmentId"] for o in sb.outcomes}
    assert set(sb.store.assignments) - before == created and len(created) == sent
    # other routes answer; without the fault the PUT answers again
    assert await send(sb, "GET", "/cars") == 200
    sb.faults = None
    assert await send(sb, "PUT", "/assignments", {**CREATE, "start": "2026-02-02T08:00:00Z"}) == 204


async def test_reset_after_on_a_get(sb: Sandbox) -> None:
    sb.faults = FaultConfig({"GET /cars": RouteFaults(reset_after=1.0)})
    assert await send(sb, "GET", "/cars") is None
    # the answer was computed, then dropped; an invalid one as well
    assert await send(sb, "GET", "/cars?$top=x") is None
    assert sb.request_counts["GET /cars"] == 2
    assert await send(sb, "GET", "/cars/101") == 200


def test_reset_after_decisions() -> None:
    def action(**faults: float) -> str | None:
        route = RouteFaults(**faults)  # type: ignore[arg-type]
        fault = FaultInjector(FaultConfig({"*": route}, seed=1)).decide("GET", "/x")
        assert fault is not None
        return fault.action

    assert action(reset_after=1.0) == "reset_after"
    assert action(reset_after=1.0, reset=1.0) == "reset"
    assert action(reset_after=1.0, rate_limit=1.0) == "rate_limit"
    assert action(reset_after=1.0, server_error=1.0) == "server_error"
    assert action() is None
    with pytest.raises(ValueError, match="probability"):
        RouteFaults(reset_after=1.01)
    # six draws per request whatever the outcome, the same sequence for the same seed
    mixed = FaultConfig({"*": RouteFaults(reset=0.2, reset_after=0.5)}, seed=5)
    one, two = FaultInjector(mixed), FaultInjector(mixed)
    none = FaultInjector(FaultConfig({"*": RouteFaults()}, seed=5))
    runs = [
        [f.action for f in (inj.decide("PUT", "/assignments") for _ in range(50)) if f]
        for inj in (one, two)
    ]
    for _ in range(50):
        none.decide("PUT", "/assignments")
    assert runs[0] == runs[1] and {"reset", "reset_after", None} <= set(runs[0])
    assert one.random.random() == two.random.random() == none.random.random()


async def test_seeded_reset_after_is_reproducible(make_sandbox: MakeSandbox) -> None:
    faults = FaultConfig({"PUT /assignments": RouteFaults(reset_after=0.4, reset=0.3)}, seed=4)
    predictor = FaultInjector(faults)
    actions = [
        f.action if f else None
        for f in (predictor.decide("PUT", "/assignments") for _ in range(12))
    ]
    assert {None, "reset", "reset_after"} <= set(actions)
    starts = [f"2026-03-{day:02d}T08:00:00Z" for day in range(1, 13)]
    for _ in range(2):
        sb = await make_sandbox(faults=faults)
        statuses = [
            await send(sb, "PUT", "/assignments", {**CREATE, "start": start}) for start in starts
        ]
        await drained(sb)
        assert sb.request_counts["PUT /assignments"] == 12
        assert statuses == [204 if action is None else None for action in actions]
        # a reset_after write was applied although its answer was lost; a reset one was not
        assert [o["start"] for o in sb.outcomes] == [
            start
            for start, action in zip(starts, actions, strict=True)
            if action in (None, "reset_after")
        ]


# --- request counts -------------------------------------------------------------------------


async def test_request_counts(sb: Sandbox, http: aiohttp.ClientSession) -> None:
    assert sb.request_counts == {}
    for path in ("/cars", "/cars", "/cars/101", "/cars/999999", "/nowhere"):
        async with http.get(f"{sb.url}{path}", headers=sb.auth_headers(1)) as response:
            await response.read()
    async with http.get(f"{sb.url}/users") as response:  # refused: no API key
        assert response.status == 401
    async with http.post(f"{sb.url}/cars") as response:  # wrong method: not counted
        assert response.status == 405
    sb.faults = FaultConfig({"PUT /assignments": RouteFaults(server_error=1.0)})
    assert await put(sb, http, CREATE) == 500
    assert sb.request_counts == {
        "GET /cars": 2,
        "GET /cars/{carId}": 2,
        "GET /users": 1,
        "PUT /assignments": 1,
    }
    assert sb.request_counts["DELETE /assignments/{assignmentId}"] == 0
    sb.request_counts.clear()
    async with http.get(f"{sb.url}/customers", headers=sb.auth_headers()) as response:
        assert response.status == 200
    assert sb.request_counts == {"GET /customers": 1}


# --- bounded memory -------------------------------------------------------------------------


async def token_status(sandbox: Sandbox, http: aiohttp.ClientSession, token: str) -> int:
    async with http.get(
        f"{sandbox.url}/cars", headers=sandbox.auth_headers(1, token=token)
    ) as response:
        return response.status


async def test_live_tokens_are_bounded(
    make_sandbox: MakeSandbox, http: aiohttp.ClientSession
) -> None:
    sb = await make_sandbox(max_tokens=3)
    tokens = [sb.issue_token() for _ in range(4)]
    assert [await token_status(sb, http, t) for t in tokens] == [401, 200, 200, 200]
    for _ in range(1000):
        sb.issue_token()
    assert len(sb._tokens) == 3
    assert len(sb._token_expiries) <= 2 * 3 + 16
    # a token obtained over HTTP counts as well
    async with http.post(
        f"{sb.url}/oauth2/token",
        headers={"flinkey-API-Key": sb.config.api_key},
        data={
            "username": sb.config.username,
            "password": sb.config.password,
            "grant_type": "password",
        },
    ) as response:
        fetched = (await response.json())["access_token"]
    assert await token_status(sb, http, fetched) == 200
    assert len(sb._tokens) == 3


async def test_expired_tokens_are_forgotten_first(
    make_sandbox: MakeSandbox, http: aiohttp.ClientSession
) -> None:
    sb = await make_sandbox(max_tokens=2)
    old = sb.issue_token()
    short = sb.issue_token(lifetime=0.05)
    await asyncio.sleep(0.1)
    new = sb.issue_token()  # makes room by forgetting the expired token, not the oldest
    assert [await token_status(sb, http, t) for t in (old, short, new)] == [200, 401, 200]
    assert len(sb._tokens) == 2
    sb.expire_tokens()
    assert (sb._tokens, sb._token_expiries) == ({}, [])
    assert await token_status(sb, http, new) == 401


async def test_outcomes_and_deliveries_are_bounded(
    make_sandbox: MakeSandbox, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    sb = await make_sandbox(max_records=3, webhook_url=receiver.url)
    for day in range(1, 6):
        assert await put(sb, http, {**CREATE, "start": f"2026-04-{day:02d}T08:00:00Z"}) == 204
    await drained(sb)
    assert len(receiver.received) == 5  # everything is delivered, only the records are bounded
    kept = [f"2026-04-{day:02d}T08:00:00Z" for day in (3, 4, 5)]
    assert [o["start"] for o in sb.outcomes] == kept
    assert [d.payload["start"] for d in sb.deliveries] == kept
    assert sb.outcomes == receiver.payloads()[2:] and sb.outcomes != receiver.payloads()
    assert sb.deliveries[-1].payload == sb.outcomes[-1] == receiver.payloads()[-1]
    assert [d.status for d in sb.deliveries[1:]] == [200, 200]
    assert isinstance(sb.outcomes, RecordLog) and sb.outcomes.maxlen == 3


async def test_default_record_bound(sb: Sandbox) -> None:
    assert sb.config.max_records == 10_000 and sb.config.max_tokens == 10_000
    assert sb.outcomes.maxlen == sb.deliveries.maxlen == 10_000
    for n in range(10_005):
        sb._emit({"n": n})
    assert len(sb.outcomes) == 10_000 and sb.outcomes[0] == {"n": 5}


def test_record_log_reads_like_a_list() -> None:
    log: RecordLog[int] = RecordLog(maxlen=3)
    assert log == [] and not log and log != [1]
    for n in range(5):
        log.append(n)
    assert log == [2, 3, 4] and log == deque([2, 3, 4])
    assert operator.eq([2, 3, 4], log)  # the list on the left: reflected
    assert log != [2, 3] and log != [2, 3, 5] and operator.ne(log, [2, 3, 4]) is False
    assert operator.ne([2, 3, 4], log) is False and operator.ne([2, 3], log) is True
    assert log != (2, 3, 4)  # like a list, not equal to a tuple
    assert (log[0], log[-1], log[1:], log[::-1]) == (2, 4, [3, 4], [4, 3, 2])
    assert len(log) == 3 and list(log) == [2, 3, 4] and 3 in log
    (a, b, c) = log
    assert (a, b, c) == (2, 3, 4)
    assert repr(log) == "RecordLog([2, 3, 4], maxlen=3)"
    with pytest.raises(IndexError):
        log[3]
    with pytest.raises(TypeError):
        hash(log)
    with pytest.raises(ValueError):
        SandboxConfig(max_records=0)
    with pytest.raises(ValueError):
        SandboxConfig(max_tokens=0)


# --- malformed input: 400, never 500 ------------------------------------------------------------

DIGITS = "9" * 5000  # more than int() converts (sys.get_int_max_str_digits() is 4300)
LATE = "9999-12-31T23:59:59-05:00"  # after 9999-12-31T23:59:59Z in UTC
EARLY = "0001-01-01T00:00:00+05:00"  # before 0001-01-01T00:00:00Z in UTC
RANGE = "out of range (0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z in UTC)."
INVALID = "Invalid OData query: "


def replace(path: str, value: Any) -> list[dict[str, Any]]:
    return [{"op": "replace", "path": path, "value": value}]


# (method, path, OData options or JSON body, the start of the 400 text)
MALFORMED: list[tuple[str, str, Any, str]] = [
    (
        "GET",
        "/cars",
        {"top": "99999999999999999999999"},
        INVALID + "$top must be at most 2147483647, got 99999999999999999999... (23 digits)",
    ),
    ("GET", "/cars", {"skip": "99999999999999999999999"}, INVALID + "$skip must be at most"),
    (
        "GET",
        "/cars",
        {"top": "2147483648"},
        INVALID + "$top must be at most 2147483647, got 2147483648",
    ),
    ("GET", "/cars", {"top": DIGITS}, INVALID + "$top must be at most 2147483647"),
    ("GET", "/cars", {"skip": DIGITS}, INVALID + "$skip must be at most 2147483647"),
    (
        "GET",
        "/cars",
        {"filter": f"id eq {DIGITS}"},
        INVALID + "integer literal of 5000 characters is out of range",
    ),
    ("GET", "/cars", {"filter": f"id eq -{DIGITS}"}, INVALID + "integer literal of"),
    ("GET", "/cars", {"filter": f"id in (1,{DIGITS})"}, INVALID + "integer literal of"),
    (
        "GET",
        "/cars/101/assignments",
        {"filter": "start ge 9999-12-31T23:59:59-23:59"},
        INVALID + "date-time literal '9999-12-31T23:59:59-23:59' is out of range in UTC",
    ),
    ("GET", "/cars/101/assignments", {"filter": f"end lt {LATE}"}, INVALID + "date-time literal"),
    ("GET", "/users/1001/assignments", {"filter": f"start ge {EARLY}"}, INVALID),
    ("PUT", "/assignments", {**CREATE, "start": LATE}, f"The field 'start' is {RANGE}"),
    ("PUT", "/assignments", {**CREATE, "start": EARLY}, f"The field 'start' is {RANGE}"),
    ("PUT", "/assignments", {**CREATE, "end": LATE}, f"The field 'end' is {RANGE}"),
    (
        "PATCH",
        "/assignments/50001",
        replace("/start", LATE),
        f"Patch operation 0: the value of /start is {RANGE}",
    ),
    (
        "PATCH",
        "/assignments/50001",
        replace("/end", EARLY),
        f"Patch operation 0: the value of /end is {RANGE}",
    ),
    (
        "PATCH",
        "/assignments/50001",
        replace("/lifetime", DIGITS),
        "Patch operation 0: the value of /lifetime is out of range.",
    ),
    (
        "PATCH",
        "/assignments/50001",
        replace("/renewableAfter", "-" + DIGITS),
        "Patch operation 0: the value of /renewableAfter is out of range.",
    ),
]


async def request(
    sandbox: Sandbox, http: aiohttp.ClientSession, method: str, path: str, payload: Any
) -> tuple[int, str]:
    if method == "GET":
        async with http.get(
            odata_url(sandbox.url or "", path, **payload), headers=sandbox.auth_headers(1)
        ) as response:
            return response.status, await response.text()
    async with http.request(
        method,
        f"{sandbox.url}{path}",
        data=json.dumps(payload).encode(),
        headers={**sandbox.auth_headers(1), "Content-Type": "application/json"},
    ) as response:
        return response.status, await response.text()


@pytest.mark.parametrize(("method", "path", "payload", "message"), MALFORMED)
async def test_malformed_input_gets_400(
    sb: Sandbox, http: aiohttp.ClientSession, method: str, path: str, payload: Any, message: str
) -> None:
    before = sb.store.dump_fixture()
    status, text = await request(sb, http, method, path, payload)
    assert status == 400, text
    assert text.startswith(message), text
    await drained(sb)
    assert sb.store.dump_fixture() == before
    assert sb.outcomes == []


async def test_boundaries_still_accepted(sb: Sandbox, http: aiohttp.ClientSession) -> None:
    for options in (
        {"top": "2147483647"},
        {"skip": "2147483647"},
        {"top": "000000000000003"},
        {"filter": "id eq 99999999999999999999999"},
    ):
        status, _ = await request(sb, http, "GET", "/cars", options)
        assert status == 200, options
    for start in ("9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59+05:00"):
        status, text = await request(sb, http, "PUT", "/assignments", {**CREATE, "start": start})
        assert status == 204, text
    await drained(sb)
    assert [o["start"] for o in sb.outcomes] == [
        "9999-12-31T23:59:59Z",
        "0001-01-01T00:00:00Z",
        "9999-12-31T18:59:59Z",
    ]


async def test_unknown_form_charset_gets_400(sb: Sandbox, http: aiohttp.ClientSession) -> None:
    body = f"username={sb.config.username}&password={sb.config.password}&grant_type=password"
    form = "application/x-www-form-urlencoded; charset=no-such-codec"
    async with http.post(
        f"{sb.url}/oauth2/token",
        data=body.encode(),
        headers={"flinkey-API-Key": sb.config.api_key, "Content-Type": form},
    ) as response:
        assert response.status == 400
        assert (await response.json())["error"] == "invalid_request"


# --- fuzzing ----------------------------------------------------------------------------------

ATOMS = [
    "id",
    "carId",
    "userId",
    "start",
    "end",
    "name",
    "vin",
    "userData/firstName",
    "userData",
    " eq ",
    " ne ",
    " lt ",
    " ge ",
    " and ",
    " or ",
    "not ",
    " in ",
    "(",
    ")",
    ",",
    "'",
    "''",
    "null",
    "true",
    "1",
    "-",
    "1.5",
    "1e999",
    DIGITS[:30],
    DIGITS,
    " asc",
    " desc",
    "2026-01-01T00:00:00Z",
    LATE,
    EARLY,
    "9999-12-31T23:59:59-23:59",
    "contains(",
    "year(",
    "length(",
    "tolower(",
    "any(",
    "/",
    "$it",
    "@p",
    "x:y",
    "duration'P1D'",
    "2026-01-01",
    "12:00:00",
    " add ",
    "é",
    "%",
    "+",
    "&",
    "=",
    "#",
    "\x00",
]
TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)
HOSTILE = [
    DIGITS,
    "99999999999999999999999",
    "2147483648",
    f"id eq {DIGITS}",
    f"start ge {LATE}",
    f"end lt {EARLY}",
    "start ge 9999-12-31T23:59:59-23:59",
    f"length(name) eq -{DIGITS}",
]
QUERY_TEXT = (
    st.sampled_from(HOSTILE) | st.lists(st.sampled_from(ATOMS), max_size=8).map("".join) | TEXT
)
QUERIES = st.tuples(
    st.sampled_from(
        [
            "/cars",
            "/users",
            "/cars/101/assignments",
            "/customers",
            "/users/1001/assignments",
            "/cars/101",
        ]
    ),
    st.dictionaries(
        st.sampled_from(["filter", "orderby", "top", "skip", "select", "count"]),
        QUERY_TEXT,
        min_size=1,
        max_size=3,
    ),
)

JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.floats(allow_nan=False)
    | TEXT
    | st.integers(-(2**40), 2**40)
    | st.sampled_from(
        [
            101,
            1001,
            604800,
            2**31,
            DIGITS,
            "-" + DIGITS,
            " 5 ",
            LATE,
            EARLY,
            "2026-02-01T08:00:00Z",
            "9999-12-31T23:59:59Z",
            "2026-02-01",
        ]
    )
)
JSON = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)
FIELDS = st.sampled_from(["carId", "userId", "start", "end", "lifetime", "renewableAfter"])
CREATE_BODIES = st.dictionaries(FIELDS, JSON_SCALARS, max_size=6) | JSON
OPERATIONS = st.lists(
    st.fixed_dictionaries(
        {
            "op": st.sampled_from(["replace", "remove", "add"]),
            "path": st.sampled_from(
                ["/carId", "/userId", "/start", "/end", "/lifetime", "/renewableAfter", "/id"]
            ),
        },
        optional={"value": JSON_SCALARS},
    ),
    max_size=4,
)
PATCH_BODIES = OPERATIONS | JSON


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def _fuzz(
    queries: list[tuple[str, dict[str, str]]], creates: list[Any], patches: list[Any]
) -> None:
    errors = _Errors()
    logger = logging.getLogger("flinkey_async.sandbox")
    logger.addHandler(errors)
    try:
        async with (
            Sandbox(SandboxConfig(write_delay=0.0)) as sandbox,
            aiohttp.ClientSession() as http,
        ):
            for path, options in queries:
                status, text = await request(sandbox, http, "GET", path, options)
                assert status in (200, 400), (path, options, status, text)
            for body in creates:
                status, text = await request(sandbox, http, "PUT", "/assignments", body)
                assert status in (204, 400), (body, status, text)
            for body in patches:
                status, text = await request(sandbox, http, "PATCH", "/assignments/50001", body)
                assert status in (204, 400), (body, status, text)
            async with asyncio.timeout(10):
                await sandbox.drain()
    finally:
        logger.removeHandler(errors)
    assert errors.records == []  # no unexpected error, also none when applying a write


@settings(
    max_examples=6,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    st.lists(QUERIES, min_size=20, max_size=20),
    st.lists(CREATE_BODIES, min_size=10, max_size=10),
    st.lists(PATCH_BODIES, min_size=10, max_size=10),
)
def test_random_input_never_gets_500(
    queries: list[tuple[str, dict[str, str]]], creates: list[Any], patches: list[Any]
) -> None:
    asyncio.run(_fuzz(queries, creates, patches))
