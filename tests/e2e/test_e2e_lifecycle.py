"""An assignment's whole life through the SDK, against the sandbox, confirmed by webhooks."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp.test_utils import TestServer

from flinkey_async import (
    AssignmentEvent,
    F,
    FlinkeyClient,
    JsonPatch,
    OperationTracker,
    Query,
    webhook_app,
)
from flinkey_async.errors import NotFoundError
from flinkey_async.models import CarAssignment
from flinkey_async.sandbox import Sandbox, SandboxConfig

START = datetime(2031, 5, 1, 8, tzinfo=UTC)


@pytest.fixture
async def setup() -> AsyncIterator[tuple[Sandbox, FlinkeyClient, list[AssignmentEvent]]]:
    secret = secrets.token_hex(8)
    tracker = OperationTracker()
    events: list[AssignmentEvent] = []

    async def handler(event: AssignmentEvent) -> None:
        events.append(event)

    receiver = TestServer(webhook_app(secret=secret, tracker=tracker, handler=handler))
    await receiver.start_server()
    config = SandboxConfig(
        write_delay=0.02,
        webhook_secret=secret,
        webhook_url=str(receiver.make_url("/webhooks/flinkey")),
    )
    try:
        async with Sandbox(config) as sandbox:
            assert sandbox.url is not None
            async with FlinkeyClient(
                config.api_key,
                1,
                username=config.username,
                password=config.password,
                base_url=sandbox.url,
                tracker=tracker,
            ) as client:
                yield sandbox, client, events
    finally:
        await receiver.close()


async def test_create_list_update_delete_each_confirmed_by_webhook(
    setup: tuple[Sandbox, FlinkeyClient, list[AssignmentEvent]],
) -> None:
    sandbox, client, events = setup

    op = await client.assignments.create(
        car_id=102, user_id=1003, start=START, end=START + timedelta(days=10), lifetime=1209600
    )
    created = await op.wait(timeout=10)
    assert created.confirmed and created.event is not None
    new_id = created.assignment_id
    assert new_id is not None and created.event.operation_succeeded
    assert created.event.checksum == op.checksum  # the sandbox hashes the bytes sent

    mine = Query().filter((F.user_id == 1003) & (F.start >= START)).orderby("start")
    assert await client.assignments.list_for_car(102, query=mine) == [
        CarAssignment(id=new_id, user_id=1003, start=START, end=START + timedelta(days=10))
    ]

    op = await client.assignments.update(
        new_id, JsonPatch().replace("/end", START + timedelta(days=20)).remove("/lifetime")
    )
    updated = await op.wait(timeout=10)
    assert updated.confirmed and updated.assignment_id == new_id
    fetched = await client.assignments.get(new_id)
    assert fetched.end == START + timedelta(days=20) and fetched.lifetime == 604800

    op = await client.assignments.delete(new_id)
    deleted = await op.wait(timeout=10)
    assert deleted.confirmed and deleted.assignment_id == new_id
    with pytest.raises(NotFoundError):
        await client.assignments.get(new_id)
    assert await client.assignments.list_for_car(102, query=mine) == []

    await sandbox.drain()
    assert [(e.kind, e.assignment_id, e.operation_succeeded) for e in events] == [
        ("create", new_id, True),
        ("update", new_id, True),
        ("delete", new_id, True),
    ]
    assert all(d.status == 204 for d in sandbox.deliveries)
