"""The ASGI receiver, mounted in a real FastAPI application served by uvicorn on 127.0.0.1:
writes confirmed end to end against the sandbox, and the same checks as the aiohttp receiver
(secret, size, body timeout, malformed bodies, duplicates, bounded handlers, rate-limited
warnings, no secret in tracebacks), plus routing, methods and the lifespan protocol."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import traceback
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from starlette.routing import Route

from flinkey_async import FlinkeyClient, JsonPatch
from flinkey_async.errors import OperationFailedError
from flinkey_async.sandbox import (
    USER_NOT_FOUND,
    FaultConfig,
    Sandbox,
    SandboxConfig,
    WebhookFaults,
)
from flinkey_async.webhooks import (
    DEFAULT_PATH,
    ASGIWebhookReceiver,
    AssignmentEvent,
    OperationTracker,
)

SECRET = "asgi-Secret-5kQ2"
LOGGER = "flinkey_async.webhooks"
START = datetime(2026, 9, 1, 8, tzinfo=UTC)


def payload(**over: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "checksum": "12AB34567C8DE9012F3A45BCDE678901",
        "assignmentId": 5001,
        "carId": 7,
        "userId": 9,
        "start": "2026-03-01T08:00:00Z",
        "end": None,
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


@asynccontextmanager
async def served(
    app: Any, *, lifespan: Literal["auto", "on", "off"] = "auto"
) -> AsyncIterator[str]:
    """``app`` served by uvicorn on a free port of 127.0.0.1, in this event loop; yields its
    base URL and stops the server cleanly."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="warning", lifespan=lifespan, ws="none"
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(10):
            while not server.started:
                if serving.done():
                    serving.result()  # raises what made the server fail
                    raise RuntimeError("uvicorn stopped before it started")
                await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await serving


def fastapi_app(receiver: ASGIWebhookReceiver) -> FastAPI:
    """A FastAPI application with the receiver routed at the default path (and a route of
    its own, as a real application has)."""
    app = FastAPI(routes=[Route(DEFAULT_PATH, receiver, methods=["POST"])])

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


@asynccontextmanager
async def http_client(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=base_url, trust_env=False, timeout=10) as client:
        yield client


def client_for(sandbox: Sandbox, tracker: OperationTracker) -> FlinkeyClient:
    config = sandbox.config
    assert sandbox.url is not None
    return FlinkeyClient(
        config.api_key,
        1,
        username=config.username,
        password=config.password,
        base_url=sandbox.url,
        tracker=tracker,
    )


# -- end to end: FastAPI + uvicorn + the sandbox's webhooks ----------------------------------


async def test_a_fastapi_app_confirms_writes_end_to_end() -> None:
    tracker = OperationTracker()
    events: list[AssignmentEvent] = []
    receiver = ASGIWebhookReceiver(secret=SECRET, tracker=tracker, handler=events.append)
    async with served(fastapi_app(receiver)) as base:
        async with http_client(base) as http:
            assert (await http.get("/health")).json() == {"status": "ok"}
        config = SandboxConfig(
            write_delay=0.005, webhook_url=base + DEFAULT_PATH, webhook_secret=SECRET, seed=7
        )
        async with Sandbox(config) as sandbox, client_for(sandbox, tracker) as client:
            store = sandbox.store
            sandbox.faults = FaultConfig(
                webhooks=WebhookFaults(duplicate=0.5, delay=0.3, delay_seconds=(0.01, 0.1)),
                seed=3,
            )
            seeded = [
                store.add_assignment(101, 1001, START + timedelta(days=i), None).id
                for i in range(20)
            ]
            creates = [
                client.assignments.create(
                    car_id=102, user_id=1002, start=START + timedelta(hours=i)
                )
                for i in range(20)
            ]
            updates = [
                client.assignments.update(
                    aid, JsonPatch().replace("/end", START + timedelta(days=40))
                )
                for aid in seeded[:10]
            ]
            deletes = [client.assignments.delete(aid) for aid in seeded[10:]]
            ops = await asyncio.gather(*creates, *updates, *deletes)
            failing = await client.assignments.create(car_id=102, user_id=1_900_000, start=START)
            async with asyncio.timeout(20):
                outcomes = await asyncio.gather(*(op.wait(10) for op in ops))
                with pytest.raises(OperationFailedError) as failed:
                    await failing.wait(10)
                await sandbox.drain()
                await receiver.drain()
            assert failed.value.error_message == USER_NOT_FOUND
            assert all(outcome.confirmed for outcome in outcomes)
            created = [o.assignment_id for o in outcomes[:20]]
            assert len(set(created)) == 20 and None not in created
            assert [o.assignment_id for o in outcomes[20:]] == seeded
            assert {o.event.kind for o in outcomes if o.event is not None} == {
                "create",
                "update",
                "delete",
            }
            for aid in seeded[:10]:
                record = store.get_assignment(aid)
                assert record is not None and record.end == START + timedelta(days=40)
            assert all(store.get_assignment(aid) is None for aid in seeded[10:])
            deliveries = sandbox.deliveries
            assert deliveries and all(d.status == 204 for d in deliveries)
            assert sum(d.duplicate for d in deliveries) > 5
            assert receiver.stats.duplicates == sum(d.duplicate for d in deliveries)
            assert receiver.stats.delivered == len(sandbox.outcomes) == len(events) == 41
            assert tracker.pending == 0
    await receiver.aclose()


# -- the checks, over HTTP ------------------------------------------------------------------


@asynccontextmanager
async def receiving(**options: Any) -> AsyncIterator[tuple[ASGIWebhookReceiver, httpx.AsyncClient]]:
    """A receiver routed in a FastAPI app served by uvicorn, and an HTTP client to it."""
    options.setdefault("secret", SECRET)
    receiver = ASGIWebhookReceiver(**options)
    async with served(fastapi_app(receiver)) as base, http_client(base) as http:
        yield receiver, http
    await receiver.aclose()


def secret_headers(secret: str = SECRET) -> dict[str, str]:
    return {"Secret": secret, "Content-Type": "application/json"}


async def test_the_secret_is_checked_and_never_echoed() -> None:
    async with receiving(tracker=OperationTracker()) as (receiver, http):
        for headers in ({"Secret": "guess"}, {}, {"secret": SECRET.upper()}):
            response = await http.post(DEFAULT_PATH, content=dumps(payload()), headers=headers)
            assert response.status_code == 401
            assert SECRET not in response.text
        # the header name is case-insensitive; every Secret header must match
        response = await http.post(
            DEFAULT_PATH, content=dumps(payload()), headers={"sEcReT": SECRET}
        )
        assert response.status_code == 204
        both = httpx.Headers([("Secret", SECRET), ("Secret", "guess")])
        response = await http.post(DEFAULT_PATH, content=dumps(payload()), headers=both)
        assert response.status_code == 401
        assert receiver.stats.unauthorized == 4 and receiver.stats.delivered == 1


async def test_bodies_over_max_bytes_get_413_announced_or_streamed() -> None:
    async with receiving(max_bytes=1024) as (receiver, http):
        big = b"x" * 5000
        response = await http.post(DEFAULT_PATH, content=big, headers=secret_headers())
        assert response.status_code == 413

        async def chunked() -> AsyncIterator[bytes]:
            for _ in range(10):
                yield b"y" * 300

        response = await http.post(DEFAULT_PATH, content=chunked(), headers=secret_headers())
        assert response.status_code == 413
        assert receiver.stats.too_large == 2 and receiver.stats.delivered == 0
        # the receiver keeps serving
        response = await http.post(DEFAULT_PATH, content=dumps(payload()), headers=secret_headers())
        assert response.status_code == 204


@pytest.mark.parametrize(
    "body",
    [
        b"{broken",
        b"[]",
        dumps(payload(operationSucceeded="yes")),
        dumps(payload(start="9999-12-31T23:59:59-05:00")),
        dumps(payload(assignmentId=None, carId=None)),
        b"",
    ],
)
async def test_malformed_bodies_get_400(body: bytes) -> None:
    async with receiving() as (receiver, http):
        response = await http.post(DEFAULT_PATH, content=body, headers=secret_headers())
        assert response.status_code == 400
        assert response.text.startswith("webhook ")
        assert receiver.stats.malformed == 1 and receiver.stats.delivered == 0


async def test_repeated_deliveries_are_handed_on_once_without_a_tracker() -> None:
    events: list[AssignmentEvent] = []
    async with receiving(handler=events.append, memory=2) as (receiver, http):
        for assignment_id in (1, 1, 2, 1, 3, 4, 1):
            response = await http.post(
                DEFAULT_PATH,
                content=dumps(payload(assignmentId=assignment_id)),
                headers=secret_headers(),
            )
            assert response.status_code == 204
        # memory=2: 1 is forgotten once 3 and 4 came after it
        assert [e.assignment_id for e in events] == [1, 2, 3, 4, 1]
        assert receiver.stats.duplicates == 2 and len(receiver._recent) == 2


async def test_a_trickled_body_gets_408_and_the_connection_is_closed() -> None:
    receiver = ASGIWebhookReceiver(secret=SECRET, body_timeout=0.2)
    async with served(fastapi_app(receiver)) as base:
        port = int(base.rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        head = (
            f"POST {DEFAULT_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nSecret: {SECRET}\r\n"
            "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
        )
        writer.write(head.encode() + b'{"checksum"')
        await writer.drain()
        async with asyncio.timeout(5):
            answer = await reader.read()  # up to EOF: the server closes the connection
        writer.close()
        await writer.wait_closed()
        assert answer.startswith(b"HTTP/1.1 408 ")
        assert b"connection: close" in answer.lower()
        assert receiver.stats.timed_out == 1
    await receiver.aclose()


async def test_handler_calls_are_bounded_and_extra_ones_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    release = asyncio.Event()
    running: list[int | None] = []

    async def handler(event: AssignmentEvent) -> None:
        running.append(event.assignment_id)
        await release.wait()

    async with receiving(handler=handler, max_handler_tasks=1, max_handler_backlog=1) as (
        receiver,
        http,
    ):
        with caplog.at_level(logging.WARNING, logger=LOGGER):
            for assignment_id in (1, 2, 3):
                response = await http.post(
                    DEFAULT_PATH,
                    content=dumps(payload(assignmentId=assignment_id)),
                    headers=secret_headers(),
                )
                assert response.status_code == 204  # fast, whatever the handler does
        await asyncio.sleep(0.05)
        assert running == [1] and len(receiver._tasks) == 2
        assert receiver.stats.handler_dropped == 1 and receiver.stats.delivered == 3
        assert "was not called" in caplog.text
        release.set()
        await receiver.drain()
        assert running == [1, 2]


async def test_a_flood_of_wrong_secrets_logs_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    async with receiving() as (receiver, http):
        with caplog.at_level(logging.WARNING, logger=LOGGER):
            for _ in range(30):
                response = await http.post(
                    DEFAULT_PATH, content=dumps(payload()), headers={"Secret": "guess"}
                )
                assert response.status_code == 401
        warnings = [r for r in caplog.records if r.name == LOGGER]
        assert len(warnings) == 1 and receiver.stats.unauthorized == 30
        assert SECRET not in caplog.text


def rendered(exc: BaseException) -> str:
    """The traceback of ``exc`` with every frame's locals (``capture_locals``)."""
    te = traceback.TracebackException.from_exception(exc, capture_locals=True)
    return "".join(te.format())


@pytest.mark.parametrize(
    ("secret", "body", "status"),
    [
        ("guess", dumps(payload()), 401),
        (SECRET, b"{broken", 400),  # the right secret: the request's headers hold it
        (SECRET, dumps(payload(end="0001-01-01T00:00:00+05:00")), 400),
    ],
)
async def test_a_refusals_traceback_has_no_secret(
    caplog: pytest.LogCaptureFixture, secret: str, body: bytes, status: int
) -> None:
    async with receiving(tracker=OperationTracker()) as (_receiver, http):
        with caplog.at_level(logging.WARNING, logger=LOGGER):
            response = await http.post(DEFAULT_PATH, content=body, headers={"Secret": secret})
            assert response.status_code == status
    (exc,) = [
        arg
        for record in caplog.records
        for arg in (record.args if isinstance(record.args, tuple) else ())
        if isinstance(arg, BaseException)
    ]
    text = rendered(exc)
    assert "in _serve" in text and "receive = " in text
    assert SECRET not in text and SECRET not in caplog.text


# -- routing, methods, lifespan: the receiver served on its own -------------------------------


async def test_served_on_its_own_with_a_path_and_per_kind_routes() -> None:
    events: list[AssignmentEvent] = []
    receiver = ASGIWebhookReceiver(secret=SECRET, handler=events.append, path=DEFAULT_PATH)
    async with served(receiver, lifespan="on") as base, http_client(base) as http:
        response = await http.get(DEFAULT_PATH)
        assert response.status_code == 405 and response.headers["allow"] == "POST"
        response = await http.post("/elsewhere", content=dumps(payload()), headers=secret_headers())
        assert response.status_code == 404
        ok = await http.post(
            DEFAULT_PATH + "/created", content=dumps(payload()), headers=secret_headers()
        )
        assert ok.status_code == 204
        # a create-shaped failure without an id cannot be a delete
        failed_create = dumps(payload(assignmentId=None, operationSucceeded=False))
        response = await http.post(
            DEFAULT_PATH + "/deleted", content=failed_create, headers=secret_headers()
        )
        assert response.status_code == 400 and "delete route" in response.text
        response = await http.post(
            DEFAULT_PATH + "/", content=dumps(payload(assignmentId=8)), headers=secret_headers()
        )
        assert response.status_code == 204
    assert [(e.kind, e.assignment_id) for e in events] == [("create", 5001), (None, 8)]
    assert receiver.stats.received == 3


async def test_routed_below_a_mount_the_kind_comes_from_the_last_segment() -> None:
    events: list[AssignmentEvent] = []
    receiver = ASGIWebhookReceiver(secret=SECRET, handler=events.append)
    app = FastAPI()
    app.mount("/hooks", receiver)
    async with served(app) as base, http_client(base) as http:
        for suffix in ("/updated", "/", "/deleted"):
            response = await http.post(
                "/hooks" + suffix, content=dumps(payload(checksum=suffix)), headers=secret_headers()
            )
            assert response.status_code == 204
    assert [e.kind for e in events] == ["update", None, "delete"]
    await receiver.aclose()


async def test_the_lifespan_shutdown_waits_for_running_handler_calls() -> None:
    finished: list[int | None] = []

    async def slow(event: AssignmentEvent) -> None:
        await asyncio.sleep(0.2)
        finished.append(event.assignment_id)

    receiver = ASGIWebhookReceiver(secret=SECRET, handler=slow)
    async with served(receiver, lifespan="on") as base, http_client(base) as http:
        response = await http.post(DEFAULT_PATH, content=dumps(payload()), headers=secret_headers())
        assert response.status_code == 204
        assert finished == []
    assert finished == [5001] and receiver._tasks == set()


async def test_plain_asgi_calls_websockets_and_disconnects() -> None:
    receiver = ASGIWebhookReceiver(secret=SECRET)
    sent: list[dict[str, Any]] = []

    async def send(message: Any) -> None:
        sent.append(dict(message))

    async def disconnect() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    websocket: dict[str, Any] = {"type": "websocket", "path": DEFAULT_PATH, "headers": []}
    await receiver(websocket, disconnect, send)
    assert sent == [{"type": "websocket.close", "code": 1008}]
    sent.clear()
    scope: dict[str, Any] = {
        "type": "http",
        "method": "POST",
        "path": DEFAULT_PATH,
        "headers": [(b"secret", SECRET.encode())],
        "client": ("127.0.0.1", 5000),
    }
    await receiver(scope, disconnect, send)
    assert sent[0]["status"] == 400 and receiver.stats.malformed == 1


def test_receiver_refuses_pickling_and_checks_its_arguments() -> None:
    import pickle

    receiver = ASGIWebhookReceiver(secret=SECRET)
    assert SECRET not in repr(receiver) and SECRET not in repr(vars(receiver))
    assert repr(receiver) == "ASGIWebhookReceiver(with secret, tracker=False)"
    with pytest.raises(TypeError, match="secret"):
        pickle.dumps(receiver)
    with pytest.raises(ValueError, match="path"):
        ASGIWebhookReceiver(secret=SECRET, path="webhooks/")
    with pytest.raises(ValueError, match="body_timeout"):
        ASGIWebhookReceiver(secret=SECRET, body_timeout=0)
    with pytest.raises(ValueError):
        ASGIWebhookReceiver(secret="")


def test_importing_the_asgi_receiver_imports_no_web_framework() -> None:
    code = (
        "import sys\n"
        "from flinkey_async import ASGIWebhookReceiver\n"
        "from flinkey_async.webhooks import ASGIWebhookReceiver as same\n"
        "assert ASGIWebhookReceiver is same\n"
        "bad = [m for m in ('aiohttp.web', 'starlette', 'fastapi') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
