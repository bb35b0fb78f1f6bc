"""Sync jobs at full size, against the sandbox (in this process, on a free port of 127.0.0.1).

Three measurements:

1. **Reconcile** 2,000 desired assignments over 200 cars, from a starting state where some
   match, some differ in ``end`` or ``lifetime``, some are stale and some duplicated; without
   faults (the control) and with faults (20 % of requests answered 429 or 500: 5 % and 15 %;
   5 % connection resets, before or after the request was handled; 10 % of webhooks delayed
   or duplicated);
   confirmed by webhooks (a receiver and a tracker) and by polling. For each: the end state
   checked exact (every desired assignment once, other cars untouched), the time, writes per
   second, requests per write, 429s and retries.
2. **A rate-limited job**: 500 creates against a sandbox limited to 20 requests/s, no rate
   configured (the client's adaptive limiter): the share of requests answered 429 and the time
   against what the limit allows (requests / 20).
3. **Polling confirmation** of 500 creates over 50 cars: requests per write.

Run: ``python benchmarks/reconcile.py [--cars 200] [--per-car 10] [--quick]``
(``--quick``: a tenth of the size, for a smoke run).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import secrets
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flinkey_async import DesiredAssignment, FlinkeyClient, RetryPolicy
from flinkey_async.sandbox import (
    FaultConfig,
    RateLimit,
    RouteFaults,
    Sandbox,
    SandboxConfig,
    WebhookFaults,
)
from flinkey_async.webhooks import OperationTracker, start_webhook_server, webhook_app

BASE = datetime(2031, 1, 1, tzinfo=UTC)
OTHER_CAR = 101  # a car of the bundled data the jobs must not touch
SECRET = secrets.token_hex(16)
ROUNDS = 8  # a write left unknown is planned again from a fresh read, at most this often


def seed(sandbox: Sandbox, cars: list[int], per_car: int, rnd: random.Random) -> list[Any]:
    """The starting state, and the desired list (``per_car`` items per car)."""
    store = sandbox.store
    desired: list[DesiredAssignment] = []
    users = list(range(1001, 1011))
    for car in cars:
        store.add_car(1, car, name=f"Car {car}")
        for slot in range(per_car):
            user = users[(car + slot) % len(users)]
            start = BASE + timedelta(days=slot, hours=car % 24)
            end = start + timedelta(days=3) if slot % 2 else None
            lifetime = 1_209_600 if slot % 3 == 0 else None
            desired.append(DesiredAssignment(car, user, start, end, lifetime))
            state = rnd.random()
            if state < 0.3:
                store.add_assignment(car, user, start, end, lifetime=lifetime or 604_800)
            elif state < 0.45:
                store.add_assignment(car, user, start, start + timedelta(days=9))
            elif state < 0.55:
                store.add_assignment(car, user, start, end, lifetime=2_000_000)
            elif state < 0.65:
                store.add_assignment(car, user, start, end, lifetime=lifetime or 604_800)
                store.add_assignment(car, user, start, end)
        store.add_assignment(car, users[0], BASE - timedelta(days=30))
    return desired


def state_of(sandbox: Sandbox, cars: list[int]) -> Counter[tuple[Any, ...]]:
    found: Counter[tuple[Any, ...]] = Counter()
    for car in cars:
        for a in sandbox.store.assignments_for_car(car):
            found[(car, a.user_id, a.start, a.end)] += 1
    return found


def faults() -> FaultConfig:
    return FaultConfig(
        {
            "*": RouteFaults(
                rate_limit=0.05, server_error=0.15, reset=0.03, reset_after=0.02, retry_after=1
            )
        },
        webhooks=WebhookFaults(delay=0.05, delay_seconds=(0.2, 1.0), duplicate=0.05),
        seed=5,
    )


@asynccontextmanager
async def environment(
    *, webhooks: bool, faulty: bool, rate_limit: int | None = None
) -> AsyncIterator[tuple[Sandbox, FlinkeyClient]]:
    """A sandbox (faulty or not), a receiver when ``webhooks``, and a client."""
    tracker = OperationTracker() if webhooks else None
    runner = None
    url = None
    if tracker is not None:
        runner = await start_webhook_server(
            webhook_app(secret=SECRET, tracker=tracker), "127.0.0.1", 0
        )
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/webhooks/flinkey"
    config = SandboxConfig(
        write_delay=0.02,
        webhook_url=url,
        webhook_secret=SECRET if url else None,
        rate_limit=RateLimit(rate_limit, 1.0, sliding=True) if rate_limit else None,
        faults=faults() if faulty else None,
        seed=7,
    )
    try:
        async with Sandbox(config) as sandbox:
            assert sandbox.url is not None
            async with FlinkeyClient(
                sandbox.config.api_key,
                1,
                token=sandbox.issue_token(),
                base_url=sandbox.url,
                tracker=tracker,
                retry=RetryPolicy(max_retries=8, backoff_base=0.02, max_retry_after=2),
            ) as client:
                yield sandbox, client
    finally:
        if runner is not None:
            await runner.cleanup()


async def reconcile_run(cars: int, per_car: int, *, webhooks: bool, faulty: bool) -> str:
    car_ids = list(range(2001, 2001 + cars))
    async with environment(webhooks=webhooks, faulty=faulty) as (sandbox, client):
        desired = seed(sandbox, car_ids, per_car, random.Random(11))
        untouched = state_of(sandbox, [OTHER_CAR])
        began = time.monotonic()
        report = await client.assignments.reconcile(
            desired, cars=car_ids, concurrency=32, timeout=10, rounds=ROUNDS
        )
        elapsed = time.monotonic() - began
        sandbox.faults = None
        await sandbox.drain()
        final = state_of(sandbox, car_ids)
        wanted = Counter((d.car_id, d.user_id, d.start, d.end) for d in desired)
        exact = final == wanted and state_of(sandbox, [OTHER_CAR]) == untouched
    rounds = [*report.previous, report]
    writes = sum(len(r.created) + len(r.updated) + len(r.deleted) for r in rounds)
    stats = report.stats
    print("  unknown per round:", [len(r.unknown) for r in rounds])
    if not (exact and report.ok):
        missing, extra = wanted - final, final - wanted
        print(f"  not exact: {sum(missing.values())} missing, {sum(extra.values())} extra")
        for result in report.failed + report.unknown:
            print(f"  {result.status}: {result.reason}")
    return (
        f"{'webhooks' if webhooks else 'polling':9} {'faults' if faulty else 'control':8}"
        f" {len(desired):6} {writes:6} {elapsed:7.1f} {writes / elapsed:8.1f}"
        f" {stats.requests / max(writes, 1):9.2f} {stats.rate_limited:6} {stats.retries:7}"
        f" {len(rounds):6}  {'exact' if exact and report.ok else 'NOT EXACT'}"
    )


async def rate_limited_job(writes: int, limit: int) -> str:
    async with environment(webhooks=True, faulty=False, rate_limit=limit) as (_, client):
        semaphore = asyncio.Semaphore(16)

        async def create(i: int) -> None:
            async with semaphore:
                op = await client.assignments.create(
                    car_id=101 + i % 10, user_id=1001, start=BASE + timedelta(minutes=i)
                )
            await op.wait(60)

        began = time.monotonic()
        await asyncio.gather(*(create(i) for i in range(writes)))
        elapsed = time.monotonic() - began
        stats = client.stats
    allowed = stats.requests / limit
    return (
        f"{writes} creates at {limit} req/s, no rate configured: {stats.requests} requests, "
        f"{stats.rate_limited} answered 429 ({100 * stats.rate_limited / stats.requests:.1f} %, "
        f"target <= 5 %); {elapsed:.1f} s = {elapsed / allowed:.2f} x the {allowed:.1f} s the "
        "limit allows (target <= 1.25 x)"
    )


async def polling_confirmation(writes: int, cars: int) -> str:
    car_ids = [101 + i for i in range(cars)]
    async with environment(webhooks=False, faulty=False) as (sandbox, client):
        for car in car_ids:
            if sandbox.store.get_car(car) is None:
                sandbox.store.add_car(1, car, name=f"Car {car}")
        semaphore = asyncio.Semaphore(32)

        async def create_and_wait(i: int) -> int | None:
            async with semaphore:
                op = await client.assignments.create(
                    car_id=car_ids[i % cars], user_id=1001, start=BASE + timedelta(hours=i)
                )
            return (await op.wait(60, poll_interval=0.2, max_poll_interval=0.8)).assignment_id

        before = client.stats.requests
        ids = await asyncio.gather(*(create_and_wait(i) for i in range(writes)))
        requests = client.stats.requests - before
    assert len(set(ids)) == writes
    return (
        f"{writes} creates over {cars} cars confirmed by polling: {requests} requests, "
        f"{requests / writes:.2f} per write (target <= 2)"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cars", type=int, default=200)
    parser.add_argument("--per-car", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="a tenth of the size")
    args = parser.parse_args()
    cars, scale = (max(args.cars // 10, 2), 10) if args.quick else (args.cars, 1)
    print(f"reconcile of {cars * args.per_car} desired assignments over {cars} cars")
    print(
        f"{'confirm':9} {'mode':8} {'wanted':>6} {'writes':>6} {'seconds':>7} {'writes/s':>8}"
        f" {'req/write':>9} {'429s':>6} {'retries':>7} {'rounds':>6}  end state"
    )
    for webhooks in (True, False):
        for faulty in (False, True):
            print(await reconcile_run(cars, args.per_car, webhooks=webhooks, faulty=faulty))
    print(await rate_limited_job(500 // scale, 20))
    print(await polling_confirmation(500 // scale, max(50 // scale, 5)))


if __name__ == "__main__":
    asyncio.run(main())
