"""``flinkey demo``: a guided tour of the SDK against an in-process sandbox.

It starts a sandbox and a webhook receiver on free ports of 127.0.0.1, then walks through an
assignment's life, each write awaited to flinkey's (the sandbox's) confirmation, and shows what a
rejected write and a typo in a query look like. Nothing leaves this machine.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

from aiohttp import web

from . import F, FlinkeyClient, JsonPatch, OperationTracker, Query, webhook_app
from .errors import NotFoundError, OperationFailedError, ValidationError

__all__ = ["run_demo"]


def _say(text: str) -> None:
    print(text, flush=True)


async def run_demo(write_delay: float = 0.2) -> int:
    """Run the tour; returns the process exit status (0 on success)."""
    from .sandbox import Sandbox, SandboxConfig

    secret = secrets.token_urlsafe(16)
    tracker = OperationTracker()
    events: list[str] = []

    async def on_event(event: object) -> None:
        events.append(repr(event))

    receiver = web.AppRunner(
        webhook_app(secret=secret, tracker=tracker, handler=on_event), access_log=None
    )
    await receiver.setup()
    site = web.TCPSite(receiver, "127.0.0.1", 0)
    await site.start()
    hook_port = receiver.addresses[0][1]
    hook_url = f"http://127.0.0.1:{hook_port}/webhooks/flinkey"
    config = SandboxConfig(write_delay=write_delay, webhook_url=hook_url, webhook_secret=secret)
    try:
        async with Sandbox(config) as sandbox:
            assert sandbox.url is not None
            _say(f"sandbox: {sandbox.url}   webhook receiver: {hook_url}")
            async with FlinkeyClient(
                config.api_key,
                1,
                username=config.username,
                password=config.password,
                base_url=sandbox.url,
                tracker=tracker,
            ) as client:
                await _tour(client)
            _say(f"\n{len(events)} webhook events received and verified (Secret header).")
    finally:
        await receiver.cleanup()
    return 0


async def _tour(client: FlinkeyClient) -> None:
    car_id, user_id = 101, 1001
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)

    _say("\n1. Create an assignment (PUT /assignments answers 204; the outcome comes by webhook)")
    op = await client.assignments.create(
        car_id=car_id, user_id=user_id, start=start, end=start + timedelta(days=7), lifetime=1209600
    )
    _say(f"   sent: {op.describe()}, checksum {op.checksum}")
    outcome = await op.wait(timeout=10)
    assignment_id = outcome.assignment_id
    assert assignment_id is not None
    _say(f"   confirmed by webhook: assignment {assignment_id} created")

    _say("\n2. Read it back, and list the car's upcoming assignments with OData")
    _say(f"   {await client.assignments.get(assignment_id)!r}")
    upcoming = Query().filter(F.start >= start - timedelta(hours=1)).orderby("start").top(5)
    _say(f"   query: {upcoming}")
    for item in await client.assignments.list_for_car(car_id, query=upcoming):
        _say(f"   - {item!r}")

    _say("\n3. Update it with a JSON Patch: no end date any more, a shorter lifetime")
    op = await client.assignments.update(
        assignment_id, JsonPatch().remove("/end").replace("/lifetime", 691200)
    )
    await op.wait(timeout=10)
    _say(f"   confirmed: {await client.assignments.get(assignment_id)!r}")

    _say("\n4. A write flinkey rejects: the user does not exist (only the server can know)")
    op = await client.assignments.create(car_id=car_id, user_id=999_999, start=start)
    try:
        await op.wait(timeout=10)
    except OperationFailedError as exc:
        _say(f"   OperationFailedError: {exc.error_message}")

    _say("\n5. Mistakes caught before anything is sent")
    for attempt in (
        lambda: client.assignments.create(
            car_id=car_id, user_id=user_id, start=datetime(2026, 3, 1, 8)
        ),
        lambda: client.assignments.create(car_id=car_id, user_id=user_id, start=start, lifetime=60),
        lambda: client.assignments.list_for_car(car_id, query=Query().filter(F.usr_id == 1)),
    ):
        try:
            await attempt()
        except ValidationError as exc:
            _say(f"   ValidationError: {exc}")

    _say("\n6. Delete it, and see that it is gone")
    op = await client.assignments.delete(assignment_id)
    await op.wait(timeout=10)
    try:
        await client.assignments.get(assignment_id)
    except NotFoundError as exc:
        _say(f"   NotFoundError: {exc.message}")
