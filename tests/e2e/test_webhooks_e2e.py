"""End to end: the real client writes to the sandbox over HTTP, the sandbox applies the writes
asynchronously and POSTs webhooks to a real receiver, and every ``op.wait()`` resolves with the
right outcome; with webhook faults (duplicated, delayed, dropped deliveries); and the polling
fallback with webhooks switched off."""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from flinkey_async import FlinkeyClient, JsonPatch, OperationTracker, parse_webhook, webhook_app
from flinkey_async.errors import OperationFailedError, OperationTimeoutError
from flinkey_async.operations import OperationKind, OperationOutcome, PendingOperation
from flinkey_async.sandbox import (
    ASSIGNMENT_NOT_FOUND,
    CAR_NOT_FOUND,
    END_NOT_AFTER_START,
    RENEWABLE_AFTER_OUT_OF_RANGE,
    USER_NOT_FOUND,
    FaultConfig,
    Sandbox,
    SandboxConfig,
    WebhookFaults,
)
from flinkey_async.webhooks import (
    DEFAULT_PATH,
    WEBHOOK_RECEIVER_KEY,
    AssignmentEvent,
    WebhookReceiver,
)

SECRET = "e2e-webhook-secret"
CUSTOMER = 1
CARS = list(range(101, 111))
USERS = list(range(1001, 1021))
OTHER_CUSTOMERS_CAR = 205
CREATE_BASE = datetime(2026, 6, 1, 8, tzinfo=UTC)
SEED_BASE = datetime(2027, 6, 1, 8, tzinfo=UTC)
UNKNOWN = 1_900_000


@attrs.define
class Env:
    sandbox: Sandbox
    client: FlinkeyClient
    tracker: OperationTracker
    receiver: WebhookReceiver
    events: list[AssignmentEvent]
    foreign_checksums: bool = False


@asynccontextmanager
async def environment(*, foreign_checksums: bool = False) -> AsyncIterator[Env]:
    """Sandbox, receiver and client. With ``foreign_checksums`` every webhook's checksum is
    replaced on the way in, as if flinkey computed it differently from the SDK: correlation
    must then rely on assignment ids and create keys alone."""
    tracker = OperationTracker()
    events: list[AssignmentEvent] = []

    async def handler(event: AssignmentEvent) -> None:
        events.append(event)

    app = webhook_app(secret=SECRET, tracker=tracker, handler=handler)
    receiver = app[WEBHOOK_RECEIVER_KEY]
    if foreign_checksums:

        async def rewrite(request: web.Request) -> web.Response:
            data = json.loads(await request.read())
            data["checksum"] = "F" * 32
            receiver.deliver(parse_webhook(request.headers, json.dumps(data), secret=SECRET))
            return web.Response(status=204)

        app = web.Application()
        app.router.add_post(DEFAULT_PATH, rewrite)
    async with TestServer(app) as hooks:
        config = SandboxConfig(
            write_delay=0.005,
            webhook_url=str(hooks.make_url(DEFAULT_PATH)),
            webhook_secret=SECRET,
            seed=11,
        )
        async with Sandbox(config) as sandbox, client_for(sandbox, tracker) as client:
            yield Env(sandbox, client, tracker, receiver, events, foreign_checksums)


def client_for(sandbox: Sandbox, tracker: OperationTracker | None = None) -> FlinkeyClient:
    config = sandbox.config
    assert sandbox.url is not None
    return FlinkeyClient(
        config.api_key,
        CUSTOMER,
        username=config.username,
        password=config.password,
        base_url=sandbox.url,
        tracker=tracker,
    )


# A job sends one write and checks its outcome: ``check(outcome)`` for a write expected to
# succeed, or the sandbox's errorMessage for one expected to fail.
Check = Callable[[OperationOutcome], None]


@attrs.define
class Job:
    kind: OperationKind
    assignment_id: int = 0
    create: dict[str, Any] = attrs.field(factory=dict)
    patch: JsonPatch | None = None
    check: Check | None = None
    error: str | None = None

    async def send(self, client: FlinkeyClient) -> PendingOperation:
        if self.kind == "create":
            return await client.assignments.create(**self.create)
        if self.kind == "update":
            assert self.patch is not None
            return await client.assignments.update(self.assignment_id, self.patch)
        return await client.assignments.delete(self.assignment_id)


def build_mix(env: Env, rng: random.Random) -> list[Job]:
    """500 writes: creates (some identical, some invalid), updates (some only invalid against
    the stored data), deletes (some of unknown ids)."""
    store = env.sandbox.store
    jobs: list[Job] = []
    created_ids: set[int] = set()

    def seeded(i: int) -> int:
        start = SEED_BASE + timedelta(hours=i)
        return store.add_assignment(
            rng.choice(CARS), rng.choice(USERS), start, start + timedelta(days=2), lifetime=604800
        ).id

    def valid_create(car: int, user: int, start: datetime, end: datetime | None) -> Job:
        def check(outcome: OperationOutcome) -> None:
            assert outcome.confirmed and outcome.assignment_id is not None
            assert outcome.assignment_id not in created_ids, "an id was given to two creates"
            created_ids.add(outcome.assignment_id)
            record = store.get_assignment(outcome.assignment_id)
            assert record is not None
            assert (record.car_id, record.user_id, record.start, record.end) == (
                car,
                user,
                start,
                end,
            )
            assert outcome.event is not None and outcome.event.kind == "create"
            if not env.foreign_checksums:
                assert outcome.event.checksum == outcome.operation.checksum

        return Job(
            "create",
            create={"car_id": car, "user_id": user, "start": start, "end": end},
            check=check,
        )

    def valid_update(aid: int, new_end: datetime) -> Job:
        def check(outcome: OperationOutcome) -> None:
            assert outcome.confirmed and outcome.assignment_id == aid
            assert outcome.event is not None and outcome.event.kind == "update"
            record = store.get_assignment(aid)
            assert record is not None and record.end == new_end

        return Job("update", aid, patch=JsonPatch().replace("/end", new_end), check=check)

    def valid_delete(aid: int) -> Job:
        def check(outcome: OperationOutcome) -> None:
            assert outcome.confirmed and outcome.assignment_id == aid
            assert outcome.event is not None and outcome.event.kind == "delete"
            assert store.get_assignment(aid) is None

        return Job("delete", aid, check=check)

    # 180 distinct valid creates, plus 4 groups of 5 identical ones
    for i in range(180):
        start = CREATE_BASE + timedelta(hours=i)
        end = start + timedelta(days=1) if i % 3 else None
        jobs.append(valid_create(rng.choice(CARS), rng.choice(USERS), start, end))
    for g in range(4):
        start = CREATE_BASE - timedelta(days=10 + g)
        jobs.extend(valid_create(CARS[g], USERS[g], start, None) for _ in range(5))
    # 30 creates for an unknown user (10 distinct requests, each sent 3 times), 10 for an
    # unknown car
    for i in range(30):
        start = CREATE_BASE - timedelta(days=30 + i % 10)
        jobs.append(
            Job(
                "create",
                create={"car_id": CARS[0], "user_id": UNKNOWN, "start": start},
                error=USER_NOT_FOUND,
            )
        )
    for i in range(10):
        start = CREATE_BASE - timedelta(days=50 + i)
        jobs.append(
            Job(
                "create",
                create={"car_id": UNKNOWN + i, "user_id": USERS[0], "start": start},
                error=CAR_NOT_FOUND,
            )
        )

    # 100 valid updates, each of its own assignment
    for i in range(100):
        jobs.append(valid_update(seeded(i), SEED_BASE + timedelta(hours=i, days=5)))
    # 20 updates the client cannot reject: renewableAfter above the *stored* lifetime
    for i in range(100, 120):
        jobs.append(
            Job(
                "update",
                seeded(i),
                patch=JsonPatch().replace("/renewableAfter", 700_000),
                error=RENEWABLE_AFTER_OUT_OF_RANGE,
            )
        )
    # 10 updates whose end is before the *stored* start
    for i in range(120, 130):
        jobs.append(
            Job(
                "update",
                seeded(i),
                patch=JsonPatch().replace("/end", SEED_BASE - timedelta(days=1)),
                error=END_NOT_AFTER_START,
            )
        )
    # 10 updates of unknown assignments
    for i in range(10):
        jobs.append(
            Job(
                "update",
                UNKNOWN + i,
                patch=JsonPatch().replace("/end", SEED_BASE),
                error=ASSIGNMENT_NOT_FOUND,
            )
        )

    # 100 valid deletes, 20 of unknown assignments
    for i in range(130, 230):
        jobs.append(valid_delete(seeded(i)))
    for i in range(20):
        jobs.append(Job("delete", UNKNOWN + 100 + i, error=ASSIGNMENT_NOT_FOUND))
    assert len(jobs) == 500
    rng.shuffle(jobs)
    return jobs


async def run_job(client: FlinkeyClient, job: Job, limit: asyncio.Semaphore) -> str:
    async with limit:
        op = await job.send(client)
        assert op.kind == job.kind
        if job.error is None:
            outcome = await op.wait(10)
            assert job.check is not None
            job.check(outcome)
            assert await op.wait(0) is outcome
            return "ok"
        with pytest.raises(OperationFailedError) as info:
            await op.wait(10)
        assert info.value.error_message == job.error
        assert info.value.event is not None
        assert info.value.event.kind == job.kind
        return "failed"


async def run_mix(env: Env, seed: int) -> None:
    sandbox = env.sandbox
    jobs = build_mix(env, random.Random(seed))
    uninstalled = len(sandbox.store.assignments_for_car(OTHER_CUSTOMERS_CAR))
    assert uninstalled > 0
    limit = asyncio.Semaphore(32)

    async def uninstall_midway() -> None:
        await asyncio.sleep(0.05)
        sandbox.store.remove_car_assignments(OTHER_CUSTOMERS_CAR)

    async with asyncio.timeout(25):
        results, _ = await asyncio.gather(
            asyncio.gather(*(run_job(env.client, job, limit) for job in jobs)), uninstall_midway()
        )
        await sandbox.drain()
        receiver = env.receiver
        await receiver.drain()
    assert Counter(results) == {"ok": 400, "failed": 100}
    tracker = env.tracker
    assert tracker.pending == 0
    assert tracker.unsolicited == uninstalled
    # every distinct event reached the handler exactly once, repeats were recognised
    deliveries = sandbox.deliveries
    assert all(d.status == 204 for d in deliveries)
    assert len(env.events) == len(sandbox.outcomes) == 500 + uninstalled
    assert receiver.stats.delivered == len(sandbox.outcomes)
    assert receiver.stats.duplicates == sum(d.duplicate for d in deliveries)
    unsolicited = [e for e in env.events if e.customer_id != CUSTOMER]
    assert len(unsolicited) == uninstalled


async def test_500_mixed_writes_resolve_through_webhooks() -> None:
    async with environment() as env:
        await run_mix(env, seed=1)
        assert not any(d.duplicate or d.delayed for d in env.sandbox.deliveries)


FAULTS = WebhookFaults(duplicate=0.3, delay=0.3, delay_seconds=(0.01, 0.15))


@pytest.mark.parametrize(
    "foreign_checksums", [False, True], ids=["sdk-checksums", "foreign-checksums"]
)
async def test_500_mixed_writes_with_duplicated_and_delayed_deliveries(
    foreign_checksums: bool,
) -> None:
    async with environment(foreign_checksums=foreign_checksums) as env:
        env.sandbox.faults = FaultConfig(webhooks=FAULTS, seed=5)
        await run_mix(env, seed=2)
        deliveries = env.sandbox.deliveries
        assert sum(d.duplicate for d in deliveries) > 50
        assert sum(d.delayed > 0 for d in deliveries) > 50


async def test_dropped_delivery_times_out_and_others_still_resolve() -> None:
    async with environment() as env:
        client, sandbox = env.client, env.sandbox
        sandbox.faults = FaultConfig(webhooks=WebhookFaults(drop=1.0))
        lost = await client.assignments.create(car_id=CARS[0], user_id=USERS[0], start=CREATE_BASE)
        expected = r"create of an assignment \(car 101, user 1001\) was not confirmed"
        with pytest.raises(OperationTimeoutError, match=expected):
            await lost.wait(0.5)
        sandbox.faults = None
        op = await client.assignments.create(car_id=CARS[1], user_id=USERS[1], start=CREATE_BASE)
        outcome = await op.wait(5)
        assert outcome.confirmed and sandbox.store.get_assignment(outcome.assignment_id or 0)
        assert env.tracker.pending == 1  # the lost one, until its pending_ttl
        assert env.tracker.is_pending(lost)


# -- polling, webhooks off ----------------------------------------------------------------------


async def test_polling_fallback_against_the_sandbox() -> None:
    config = SandboxConfig(write_delay=0.02, seed=3)
    fast = {"poll_interval": 0.01, "max_poll_interval": 0.05}
    async with Sandbox(config) as sandbox:
        store = sandbox.store
        async with client_for(sandbox) as client:
            assert client.tracker is None
            seeded = [
                store.add_assignment(CARS[i % 10], USERS[i % 20], SEED_BASE + timedelta(hours=i)).id
                for i in range(20)
            ]

            async def create(i: int) -> None:
                start = CREATE_BASE + timedelta(hours=i)
                end = start + timedelta(days=1) if i % 2 else None
                op = await client.assignments.create(
                    car_id=CARS[i % 10], user_id=USERS[i], start=start, end=end
                )
                outcome = await op.wait(5, **fast)
                assert not outcome.confirmed and outcome.event is None
                record = store.get_assignment(outcome.assignment_id or 0)
                assert record is not None
                assert (record.car_id, record.user_id, record.start, record.end) == (
                    CARS[i % 10],
                    USERS[i],
                    start,
                    end,
                )

            async def update(aid: int, i: int) -> None:
                new_end = SEED_BASE + timedelta(days=30 + i)
                op = await client.assignments.update(
                    aid, JsonPatch().replace("/end", new_end).replace("/lifetime", 1209600)
                )
                outcome = await op.wait(5, **fast)
                assert not outcome.confirmed and outcome.assignment_id == aid
                record = store.get_assignment(aid)
                assert record is not None and (record.end, record.lifetime) == (new_end, 1209600)

            async def delete(aid: int) -> None:
                op = await client.assignments.delete(aid)
                outcome = await op.wait(5, **fast)
                assert not outcome.confirmed and store.get_assignment(aid) is None

            async def invalid_create() -> None:
                op = await client.assignments.create(
                    car_id=CARS[0], user_id=UNKNOWN, start=CREATE_BASE
                )
                with pytest.raises(OperationTimeoutError, match="was not observed"):
                    await op.wait(0.4, **fast)

            async def update_unknown() -> None:
                op = await client.assignments.update(
                    UNKNOWN, JsonPatch().replace("/end", SEED_BASE)
                )
                with pytest.raises(OperationFailedError, match="does not exist"):
                    await op.wait(5, **fast)

            async with asyncio.timeout(15):
                await asyncio.gather(
                    *(create(i) for i in range(20)),
                    *(update(aid, i) for i, aid in enumerate(seeded[:10])),
                    *(delete(aid) for aid in seeded[10:]),
                    invalid_create(),
                    update_unknown(),
                )
            assert sandbox.deliveries == []
