"""Shared confirmations on a real Redis: the bus (publish, read, repeats, trimming), the
SharedTracker (round trip, early events, reconnects) and the receivers' 503."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis

from flinkey_async.errors import RedisUnavailableError
from flinkey_async.operations import PendingOperation
from flinkey_async.shared.confirmations import RedisWebhookBus, SharedTracker
from flinkey_async.webhooks import (
    WEBHOOK_RECEIVER_KEY,
    ASGIWebhookReceiver,
    AssignmentEvent,
    parse_webhook,
    start_webhook_server,
    webhook_app,
)
from tests.support.redis_server import RedisServer

SECRET = "shared-secret-value"
START = datetime(2030, 1, 1, 8, tzinfo=UTC)


def payload(assignment_id: int | None = 5001, *, ok: bool = True, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "checksum": "0" * 32,
        "assignmentId": assignment_id,
        "customerId": 1,
        "operationSucceeded": ok,
        "errorMessage": None if ok else "rejected",
    }
    body.update(extra)
    return body


def event_of(body: dict[str, Any]) -> AssignmentEvent:
    return parse_webhook({}, json.dumps(body), secret=None)


def update_op(assignment_id: int = 5001) -> PendingOperation:
    return PendingOperation(
        kind="update",
        customer_id=1,
        assignment_id=assignment_id,
        body=[],
        checksum="F" * 32,
        sent_at=datetime.now(UTC),
    )


def prefix() -> str:
    return f"t-{secrets.token_hex(5)}"


@asynccontextmanager
async def tracker_on(url: str, key: str, **options: Any) -> AsyncIterator[SharedTracker]:
    async with SharedTracker.connect(url, prefix=key, timeout=1.0, **options) as tracker:
        yield tracker


@asynccontextmanager
async def receiver_on(bus: RedisWebhookBus, handled: list[AssignmentEvent]) -> AsyncIterator[str]:
    """A webhook_app publishing to ``bus``, served; yields its URL."""

    def handler(event: AssignmentEvent) -> None:
        handled.append(event)

    app = webhook_app(secret=SECRET, publisher=bus, handler=handler, publish_timeout=1.5)
    runner = await start_webhook_server(app, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/webhooks/flinkey"
    finally:
        await runner.cleanup()


async def post(url: str, body: dict[str, Any]) -> aiohttp.ClientResponse:
    async with (
        aiohttp.ClientSession() as http,
        http.post(url, json=body, headers={"Secret": SECRET}) as response,
    ):
        await response.read()
        return response


# -- the bus and the tracker -----------------------------------------------------------------
async def test_a_published_event_resolves_the_operation_of_a_tracker_reading_the_stream(
    redis_server: RedisServer,
) -> None:
    key = prefix()
    async with (
        RedisWebhookBus.from_url(redis_server.url, prefix=key) as bus,
        tracker_on(redis_server.url, key) as tracker,
    ):
        op = update_op()
        tracker.expect(op)
        assert await bus.publish(event_of(payload(end="2030-02-01T08:00:00Z"))) is True
        outcome = await tracker.wait(op, 5)
        assert outcome.confirmed and outcome.assignment_id == 5001
        assert outcome.event.end == datetime(2030, 2, 1, 8, tzinfo=UTC)
        assert outcome.fallback_reason is None
        assert tracker.pending == 0 and tracker.entries_read == 1
        assert await bus.length() == 1


async def test_an_event_published_before_the_tracker_started_or_expected_still_resolves(
    redis_server: RedisServer,
) -> None:
    key = prefix()
    async with RedisWebhookBus.from_url(redis_server.url, prefix=key) as bus:
        op = update_op(7001)  # sent (its sent_at) before its outcome was published
        await bus.publish(event_of(payload(7001)))
        # the 204 race across processes: published, then the writer's tracker starts
        async with tracker_on(redis_server.url, key, orphan_ttl=30.0) as tracker:
            await tracker.sync()
            assert [e.assignment_id for e in tracker.orphans()] == [7001]
            tracker.expect(op)  # claims the orphan (in Redis, then settles the operation)
            assert (await tracker.wait(op, 1)).confirmed
            assert tracker.claims == 1 and list(tracker.orphans()) == []
            # and read while running, before expect
            late = update_op(7002)
            await bus.publish(event_of(payload(7002, ok=False)))
            await tracker.sync()
            tracker.expect(late)
            with pytest.raises(Exception, match="rejected"):
                await tracker.wait(late, 1)
        # a tracker that reads back less than the event's age does not see it
        async with tracker_on(redis_server.url, key, lookback=0.0) as fresh:
            await fresh.sync()
            assert list(fresh.orphans()) == [] and fresh.entries_read == 0


async def test_a_delivery_to_two_receivers_resolves_once_and_reaches_one_handler(
    redis_server: RedisServer,
) -> None:
    key = prefix()
    handled_a: list[AssignmentEvent] = []
    handled_b: list[AssignmentEvent] = []
    async with (
        RedisWebhookBus.from_url(redis_server.url, prefix=key) as bus_a,
        RedisWebhookBus.from_url(redis_server.url, prefix=key) as bus_b,
        receiver_on(bus_a, handled_a) as url_a,
        receiver_on(bus_b, handled_b) as url_b,
        tracker_on(redis_server.url, key) as tracker,
    ):
        op = update_op(8001)
        tracker.expect(op)
        body = payload(8001)
        assert (await post(url_a, body)).status == 204
        assert (await post(url_b, body)).status == 204  # flinkey delivered it twice
        await tracker.sync()
        assert (await tracker.wait(op, 1)).confirmed
        assert tracker.duplicates == 1 and tracker.unsolicited == 0
        assert len(handled_a) + len(handled_b) == 1
        assert (bus_a.repeats, bus_b.repeats) == (0, 1)
        client = aioredis.Redis.from_url(redis_server.url)
        try:
            entries: Any = await client.xrange(bus_a.stream_key)
        finally:
            await client.aclose()
        assert [fields[b"repeat"] for _, fields in entries] == [b"0", b"1"]


async def test_a_reader_that_lost_redis_resumes_after_the_last_entry_it_read(
    own_redis_server: RedisServer,
) -> None:
    key = prefix()
    url = own_redis_server.url
    async with tracker_on(url, key, lookback=0.0) as tracker:
        first = update_op(9000)
        tracker.expect(first)
        async with RedisWebhookBus.from_url(url, prefix=key) as bus:
            await bus.publish(event_of(payload(9000)))
        assert (await tracker.wait(first, 5)).confirmed
        seen = tracker.last_id
        own_redis_server.stop(kill=True)
        await tracker.wait_available(False, timeout=10)
        assert tracker.unavailable_reason is not None
        own_redis_server.start()
        ops = [update_op(9001 + i) for i in range(20)]
        for op in ops:
            tracker.expect(op)
        async with RedisWebhookBus.from_url(url, prefix=key) as bus:
            for op in ops:
                await bus.publish(event_of(payload(op.assignment_id)))
        outcomes = [await tracker.wait(op, 10) for op in ops]
        assert all(o.confirmed for o in outcomes)
        assert tracker.available and tracker.disconnections == 1
        # the entry read before the loss (kept by Redis) was not read again
        assert tracker.duplicates == 0 and tracker.entries_read == 21
        assert tracker.last_id > seen


async def test_trimming_bounds_the_stream_by_length_and_by_age(
    redis_server: RedisServer,
) -> None:
    async with RedisWebhookBus.from_url(redis_server.url, prefix=prefix(), max_len=50) as bus:
        for n in range(1000):
            await bus.publish(event_of(payload(10_000 + n)))
        assert await bus.length() <= 250  # approximate: whole nodes of 100 entries
    async with RedisWebhookBus.from_url(
        redis_server.url, prefix=prefix(), retention=1.5, dedupe_ttl=5
    ) as bus:
        for n in range(200):
            await bus.publish(event_of(payload(20_000 + n)))
        assert await bus.length() == 200
        await asyncio.sleep(1.6)  # let the entries age past the retention
        await bus.publish(event_of(payload(30_000)))
        assert await bus.length() < 150
        client = aioredis.Redis.from_url(redis_server.url)
        try:
            marks = [k async for k in client.scan_iter(match=f"{{{bus.prefix}}}:seen:*")]
            assert len(marks) == 201
            assert 0 < await client.ttl(marks[0]) <= 5
        finally:
            await client.aclose()


# -- failures ------------------------------------------------------------------------------------
async def test_receivers_answer_503_while_redis_is_down_and_publish_the_retry(
    own_redis_server: RedisServer,
) -> None:
    key = prefix()
    handled: list[AssignmentEvent] = []
    async with RedisWebhookBus.from_url(own_redis_server.url, prefix=key, timeout=0.5) as bus:
        async with receiver_on(bus, handled) as url:
            own_redis_server.stop(kill=True)
            async with (
                aiohttp.ClientSession() as http,
                http.post(url, json=payload(4001), headers={"Secret": SECRET}) as response,
            ):
                assert response.status == 503
                assert response.headers["Retry-After"] == "1"
                assert SECRET not in await response.text()
            assert handled == []
            own_redis_server.start()
            assert (await post(url, payload(4001))).status == 204  # flinkey's retry
            assert len(handled) == 1
        entries = await bus.read("0-0", block=0)
        assert [e.assignment_id for _, e in entries if e is not None] == [4001]
        assert bus.repeats == 0  # the refused attempt left no mark


async def test_asgi_receiver_answers_503_when_redis_does_not_answer_in_time(
    own_redis_server: RedisServer,
) -> None:
    """A Redis that stops answering (SIGSTOP) gets ``timeout`` seconds, then 503: no hang."""
    async with RedisWebhookBus.from_url(own_redis_server.url, prefix=prefix(), timeout=0.3) as bus:
        receiver = ASGIWebhookReceiver(secret=SECRET, publisher=bus)
        sent: list[dict[str, Any]] = []
        body = json.dumps(payload(4100)).encode()
        messages = [{"type": "http.request", "body": body, "more_body": False}]

        async def receive() -> dict[str, Any]:
            return messages.pop(0)

        async def send(message: Any) -> None:
            sent.append(dict(message))

        scope = {
            "type": "http",
            "method": "POST",
            "path": "/webhooks/flinkey",
            "headers": [(b"secret", SECRET.encode())],
        }
        assert own_redis_server.process is not None
        os.kill(own_redis_server.process.pid, signal.SIGSTOP)
        try:
            began = time.monotonic()
            await receiver(scope, receive, send)
            took = time.monotonic() - began
        finally:
            os.kill(own_redis_server.process.pid, signal.SIGCONT)
        assert sent[0]["status"] == 503 and took < 2.0
        assert (b"retry-after", b"1") in sent[0]["headers"]
        assert receiver.stats.unavailable == 1 and receiver.stats.delivered == 0
        await receiver.aclose()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_starting_without_redis_is_a_clear_error_that_shows_no_password() -> None:
    url = f"redis://:hunter2-password@127.0.0.1:{closed_port()}/0"
    tracker = SharedTracker.connect(url, timeout=0.5)
    began = time.monotonic()
    with pytest.raises(RedisUnavailableError) as caught:
        async with tracker:
            pytest.fail("started without Redis")
    assert time.monotonic() - began < 3
    message = str(caught.value)
    assert "127.0.0.1" in message and "unavailable" in message
    assert "hunter2" not in message and "hunter2" not in repr(tracker)
    assert not tracker.available
    with pytest.raises(RedisUnavailableError, match="unavailable"):
        async with RedisWebhookBus.from_url(url, timeout=0.5):
            pytest.fail("started without Redis")


async def test_a_receiver_with_a_publisher_keeps_its_answers_for_bad_requests(
    redis_server: RedisServer,
) -> None:
    handled: list[AssignmentEvent] = []
    async with (
        RedisWebhookBus.from_url(redis_server.url, prefix=prefix()) as bus,
        receiver_on(bus, handled) as url,
    ):
        async with aiohttp.ClientSession() as http:
            async with http.post(url, json=payload(), headers={"Secret": "wrong"}) as r:
                assert r.status == 401
            async with http.post(url, data=b"{", headers={"Secret": SECRET}) as r:
                assert r.status == 400
        assert await bus.length() == 0 and handled == []
    app = webhook_app(secret=SECRET)
    assert app[WEBHOOK_RECEIVER_KEY].publisher is None
    with pytest.raises(ValueError, match="publisher"):
        from aiohttp import web

        await start_webhook_server(web.Application(), "127.0.0.1", 0, publisher=bus)
