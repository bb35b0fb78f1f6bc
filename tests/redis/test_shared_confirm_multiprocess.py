"""Shared confirmations across processes: one relay process (``flinkey webhooks serve``)
receives the sandbox's webhooks and publishes them to Redis; three writer processes send
1,000 writes in all (creates, updates, deletes, some rejected by the sandbox), each with a
SharedTracker, and every ``wait()`` resolves with the right outcome. Mid-run the relay is
killed (SIGKILL) and restarted: no event it acknowledged is lost. Webhooks are delivered twice
(and late) at random: they resolve once.

Between the sandbox and the relay sits a small forwarder playing flinkey's retries: the
sandbox delivers each webhook once, flinkey delivers again what was not acknowledged with a
2xx (a refused connection while the relay restarts, a 503).

Two more writer processes ("twins") send the same creates at the same moment (identical
requests: same car, user, start and end): each create gets an assignment of its own, none is
reported twice, whichever twin's tracker reads an event first.

Run as ``python -m tests.redis.test_shared_confirm_multiprocess writer ARGS`` it is one writer
(``twin ARGS``: one twin).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

import aiohttp
import redis.asyncio as aioredis
from aiohttp import web

from flinkey_async import FlinkeyClient, JsonPatch, webhook_app
from flinkey_async.errors import OperationFailedError
from flinkey_async.sandbox import (
    ASSIGNMENT_NOT_FOUND,
    USER_NOT_FOUND,
    FaultConfig,
    Sandbox,
    SandboxConfig,
    WebhookFaults,
)
from flinkey_async.shared.confirmations import RedisWebhookBus, SharedTracker
from flinkey_async.webhooks import start_webhook_server
from tests.support.redis_server import RedisServer

ROOT = Path(__file__).resolve().parents[2]
SECRET_VAR = "FLINKEY_TEST_RELAY_SECRET"
SECRET = "multiprocess-relay-secret"
WRITERS = 3
WRITES = 1000
CARS = list(range(101, 111))
USERS = list(range(1001, 1021))
UNKNOWN = 1_900_000
START = datetime(2031, 1, 1, tzinfo=UTC)
WAIT = 20.0
PREFIX = "mp"


# -- one writer process --------------------------------------------------------------------------
def plan(writer: int, count: int) -> list[str]:
    """The units of one writer: ``chain`` (create, update, delete: 3 writes),
    ``bad-create`` and ``bad-update`` (1 write each, rejected)."""
    units: list[str] = []
    left = count
    while left > 0:
        for unit, size in (("chain", 3), ("bad-create", 1), ("chain", 3), ("bad-update", 1)):
            if left >= size:
                units.append(unit)
                left -= size
            elif left > 0:
                units.append("bad-create")
                left -= 1
    return units


def sandbox_client(url: str, tracker: SharedTracker) -> FlinkeyClient:
    """A client of the sandbox's customer 1 (password grant), confirming through ``tracker``."""
    return FlinkeyClient(
        "sandbox-api-key",
        1,
        username="manager@example.com",
        password="sandbox-password",
        base_url=url,
        tracker=tracker,
    )


async def writer_main(args: dict[str, Any]) -> None:
    writer: int = args["writer"]
    out = sys.stdout
    async with (
        SharedTracker.connect(
            args["redis"], prefix=args["prefix"], max_orphans=5000, read_block=0.5
        ) as tracker,
        sandbox_client(args["sandbox"], tracker) as client,
    ):
        slots = asyncio.Semaphore(12)

        def report(**fields: Any) -> None:
            out.write(json.dumps({"writer": writer, **fields}) + "\n")

        async def chain(n: int) -> None:
            start = START + timedelta(minutes=writer * 100_000 + n)
            car, user = CARS[n % len(CARS)], USERS[(n + writer) % len(USERS)]
            op = await client.assignments.create(car_id=car, user_id=user, start=start)
            created = await op.wait(timeout=WAIT)
            report(kind="create", ok=created.confirmed, id=created.assignment_id)
            assert created.assignment_id is not None
            end = start + timedelta(days=1)
            op = await client.assignments.update(
                created.assignment_id, JsonPatch().replace("/end", end)
            )
            updated = await op.wait(timeout=WAIT)
            report(
                kind="update",
                ok=updated.confirmed and updated.event.end == end,
                id=updated.assignment_id,
            )
            op = await client.assignments.delete(created.assignment_id)
            deleted = await op.wait(timeout=WAIT)
            report(kind="delete", ok=deleted.confirmed, id=deleted.assignment_id)

        async def rejected(kind: str, n: int) -> None:
            if kind == "bad-create":
                start = START + timedelta(minutes=writer * 100_000 + 50_000 + n)
                op = await client.assignments.create(car_id=CARS[0], user_id=UNKNOWN, start=start)
                expected = USER_NOT_FOUND
            else:
                op = await client.assignments.update(
                    UNKNOWN + writer * 10_000 + n, JsonPatch().replace("/end", START)
                )
                expected = ASSIGNMENT_NOT_FOUND
            try:
                await op.wait(timeout=WAIT)
            except OperationFailedError as exc:
                report(kind=kind, ok=exc.error_message == expected and exc.event is not None)
            else:
                report(kind=kind, ok=False)

        async def run(unit: str, n: int) -> None:
            async with slots:
                try:
                    if unit == "chain":
                        await chain(n)
                    else:
                        await rejected(unit, n)
                except Exception as exc:
                    report(kind=unit, ok=False, error=f"{type(exc).__name__}: {exc}")

        units = plan(writer, args["count"])
        await asyncio.gather(*(run(unit, n) for n, unit in enumerate(units)))
        report(
            kind="summary",
            ok=True,
            duplicates=tracker.duplicates,
            fallbacks=tracker.fallbacks,
            pending=tracker.pending,
        )
    out.flush()


# -- one twin process ----------------------------------------------------------------------------
TWIN_START = datetime(2034, 1, 1, tzinfo=UTC)


async def twin_main(args: dict[str, Any]) -> None:
    """Once told to go (a line on stdin), send ``count`` creates at once, the n-th for
    (car 101, user 1001, TWIN_START + n days): the other twin sends the same ones."""
    out = sys.stdout

    def report(**fields: Any) -> None:
        out.write(json.dumps(fields) + "\n")

    async with (
        SharedTracker.connect(args["redis"], prefix=args["prefix"], read_block=0.5) as tracker,
        sandbox_client(args["sandbox"], tracker) as client,
    ):
        out.write("ready\n")
        out.flush()
        await asyncio.to_thread(sys.stdin.readline)

        async def create(n: int) -> None:
            try:
                op = await client.assignments.create(
                    car_id=CARS[0], user_id=USERS[0], start=TWIN_START + timedelta(days=n)
                )
                outcome = await op.wait(timeout=WAIT)
            except Exception as exc:
                report(kind="create", n=n, ok=False, error=f"{type(exc).__name__}: {exc}")
            else:
                report(kind="create", n=n, ok=outcome.confirmed, id=outcome.assignment_id)

        await asyncio.gather(*(create(n) for n in range(args["count"])))
        report(
            kind="summary",
            claims=tracker.claims,
            claims_lost=tracker.claims_lost,
            pending=tracker.pending,
            fallbacks=tracker.fallbacks,
        )
    out.flush()


# -- the forwarder: flinkey's retries ------------------------------------------------------------
class Forwarder:
    """Takes the sandbox's webhook POSTs (answers 200 at once) and delivers each to
    :attr:`target` until it answers 2xx, retrying refused connections and 5xx (bounded)."""

    def __init__(self, threshold: int) -> None:
        self.threshold = threshold
        #: Set once ``threshold`` deliveries were acknowledged.
        self.reached = asyncio.Event()
        self.target = ""
        self.acknowledged: list[bytes] = []
        self.retried = 0
        #: Set at each refused delivery (cleared by whoever waits for the next one).
        self.refused = asyncio.Event()
        self.failed = 0
        self.tasks: set[asyncio.Task[None]] = set()
        self.http: aiohttp.ClientSession | None = None

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        task = asyncio.create_task(self._deliver(body, request.headers.get("Secret", "")))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return web.Response(status=200)

    async def _deliver(self, body: bytes, secret: str) -> None:
        assert self.http is not None
        deadline = time.monotonic() + 25
        delay = 0.02
        while time.monotonic() < deadline:
            try:
                async with self.http.post(
                    self.target,
                    data=body,
                    headers={"Secret": secret, "Content-Type": "application/json"},
                ) as response:
                    await response.read()
                    if response.status < 300:
                        self.acknowledged.append(body)
                        if len(self.acknowledged) >= self.threshold:
                            self.reached.set()
                        return
            except (aiohttp.ClientError, OSError):
                pass
            self.retried += 1
            self.refused.set()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.2)
        self.failed += 1


# -- the relay process ---------------------------------------------------------------------------
def child_env() -> dict[str, str]:
    env = {**os.environ, SECRET_VAR: SECRET, "PYTHONPATH": str(ROOT)}
    env.pop("PYTHONASYNCIODEBUG", None)  # the children serve the whole test: fast
    return env


def start_relay(redis_url: str, log: TextIO) -> tuple[subprocess.Popen[str], str]:
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
            SECRET_VAR,
            "--redis",
            redis_url,
            "--prefix",
            PREFIX,
        ],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        env=child_env(),
        cwd=ROOT,
    )
    assert process.stdout is not None
    line = process.stdout.readline()  # the banner's first line, or EOF if it failed
    assert line.startswith("flinkey webhooks relay listening on http://127.0.0.1:"), line
    return process, line.split(" on ", 1)[1].strip()


def start_writer(args: dict[str, Any], log: TextIO, mode: str = "writer") -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", __name__, mode, json.dumps(args)],
        stdin=subprocess.PIPE if mode == "twin" else None,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        env=child_env(),
        cwd=ROOT,
    )


def stop(process: subprocess.Popen[str], sig: int = signal.SIGTERM) -> int:
    """Stop one child by its PID, and close its pipe."""
    if process.poll() is None:
        process.send_signal(sig)
    try:
        return process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait(timeout=10)
    finally:
        if process.stdout is not None:
            process.stdout.close()


def canonical(body: bytes) -> str:
    return json.dumps(json.loads(body), sort_keys=True)


async def stream_bodies(redis_url: str) -> list[tuple[bytes, bytes]]:
    client = aioredis.Redis.from_url(redis_url)
    try:
        entries: Any = await client.xrange(f"{{{PREFIX}}}:events")
    finally:
        await client.aclose()
    return [(fields[b"body"], fields[b"repeat"]) for _, fields in entries]


async def test_three_writer_processes_confirm_1000_writes_through_one_relay_process(
    own_redis_server: RedisServer, tmp_path: Path
) -> None:
    faults = FaultConfig(
        webhooks=WebhookFaults(duplicate=0.1, delay=0.05, delay_seconds=(0.01, 0.05)), seed=7
    )
    forwarder = Forwarder(threshold=350)
    app = web.Application()
    app.router.add_post("/hook", forwarder.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    hook = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    logs = (tmp_path / "relay.log").open("w")
    writers: list[subprocess.Popen[str]] = []
    relay: subprocess.Popen[str] | None = None
    began = time.monotonic()
    try:
        async with (
            aiohttp.ClientSession() as http,
            Sandbox(
                SandboxConfig(
                    write_delay=0.002, faults=faults, webhook_url=hook, webhook_secret=SECRET
                )
            ) as sandbox,
        ):
            forwarder.http = http
            relay, forwarder.target = start_relay(own_redis_server.url, logs)
            counts = [
                WRITES // WRITERS + (1 if w < WRITES % WRITERS else 0) for w in range(WRITERS)
            ]
            for w, count in enumerate(counts):
                args = {
                    "writer": w,
                    "count": count,
                    "sandbox": sandbox.url,
                    "redis": own_redis_server.url,
                    "prefix": PREFIX,
                }
                writers.append(start_writer(args, logs))
            # kill the relay once it has acknowledged a third of the webhooks, then restart it
            async with asyncio.timeout(20):
                await forwarder.reached.wait()
            acknowledged_before = len(forwarder.acknowledged)
            forwarder.refused.clear()
            stop(relay, signal.SIGKILL)
            retried_before = forwarder.retried
            # Let deliveries meet the dead relay (starting the next one blocks this loop).
            async with asyncio.timeout(10):
                await forwarder.refused.wait()
            relay, forwarder.target = start_relay(own_redis_server.url, logs)

            outputs = await asyncio.gather(
                *(asyncio.to_thread(p.communicate, timeout=35) for p in writers)
            )
            codes = [p.returncode for p in writers]
            async with asyncio.timeout(10):
                await sandbox.drain()
                while forwarder.tasks:
                    await asyncio.gather(*forwarder.tasks)
            bodies = await stream_bodies(own_redis_server.url)
            outcomes = list(sandbox.outcomes)
    finally:
        for process in writers:
            if process.poll() is None:
                stop(process, signal.SIGKILL)
        relay_status = stop(relay) if relay is not None else None
        logs.close()
        await runner.cleanup()
    took = time.monotonic() - began

    assert codes == [0, 0, 0], (tmp_path / "relay.log").read_text()
    reports = [json.loads(line) for out, _err in outputs for line in out.splitlines()]
    summaries = [r for r in reports if r["kind"] == "summary"]
    writes = [r for r in reports if r["kind"] != "summary"]
    assert len(summaries) == WRITERS
    assert len(writes) == WRITES
    assert [r for r in writes if not r["ok"]] == []
    by_kind = Counter(r["kind"] for r in writes)
    assert by_kind["create"] == by_kind["update"] == by_kind["delete"] > 200
    assert by_kind["bad-create"] > 0 and by_kind["bad-update"] > 0
    # no write was sent twice: one outcome per write in the sandbox
    assert len(outcomes) == WRITES
    # every acknowledged webhook is in Redis, the ones before the kill included
    published = {canonical(body) for body, _ in bodies}
    assert {canonical(body) for body in forwarder.acknowledged} <= published
    assert acknowledged_before < len(forwarder.acknowledged)
    assert forwarder.failed == 0 and forwarder.retried > retried_before  # the restart was seen
    # deliveries twice resolved once (each writer saw repeats, and no wait failed)
    repeats = sum(1 for _, repeat in bodies if repeat == b"1")
    assert repeats > 0
    assert all(s["duplicates"] > 0 and s["pending"] == 0 for s in summaries)
    assert all(s["fallbacks"] == 0 for s in summaries)
    assert relay_status == 0
    assert took < 60


async def test_two_writer_processes_sending_identical_creates_get_an_assignment_each(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    count = 25
    key = f"twins-{os.getpid()}"
    logs = (tmp_path / "twins.log").open("w")
    twins: list[subprocess.Popen[str]] = []
    began = time.monotonic()
    async with RedisWebhookBus.from_url(redis_server.url, prefix=key) as bus:
        runner = await start_webhook_server(
            webhook_app(secret=SECRET, publisher=bus), "127.0.0.1", 0
        )
        hook = f"http://127.0.0.1:{runner.addresses[0][1]}/webhooks/flinkey"
        try:
            async with Sandbox(
                SandboxConfig(write_delay=0.1, webhook_url=hook, webhook_secret=SECRET)
            ) as sandbox:
                args = {"count": count, "sandbox": sandbox.url, "redis": redis_server.url}
                twins = [start_writer({**args, "prefix": key}, logs, "twin") for _ in range(2)]
                for twin in twins:  # both trackers started
                    assert twin.stdout is not None
                    async with asyncio.timeout(20):
                        line = await asyncio.to_thread(twin.stdout.readline)
                    assert line == "ready\n", (tmp_path / "twins.log").read_text()
                for twin in twins:  # go, both at once
                    assert twin.stdin is not None
                    twin.stdin.write("go\n")
                    twin.stdin.flush()
                outputs = await asyncio.gather(
                    *(asyncio.to_thread(twin.communicate, timeout=30) for twin in twins)
                )
                async with asyncio.timeout(10):
                    await sandbox.drain()
                made = {
                    a.id
                    for a in sandbox.store.assignments_for_car(CARS[0])
                    if a.start >= TWIN_START
                }
        finally:
            for twin in twins:
                if twin.poll() is None:
                    stop(twin, signal.SIGKILL)
            logs.close()
            await runner.cleanup()
    took = time.monotonic() - began

    assert [twin.returncode for twin in twins] == [0, 0], (tmp_path / "twins.log").read_text()
    reports = [[json.loads(line) for line in out.splitlines()] for out, _err in outputs]
    creates = [[r for r in rs if r["kind"] == "create"] for rs in reports]
    summaries = [r for rs in reports for r in rs if r["kind"] == "summary"]
    assert [len(c) for c in creates] == [count, count]
    assert [r for c in creates for r in c if not r["ok"]] == []
    ids = [r["id"] for c in creates for r in c]
    # one assignment each: no id reported twice, and every one made is someone's
    assert len(set(ids)) == len(ids) == 2 * count
    assert set(ids) == made
    assert sum(s["claims"] for s in summaries) == 2 * count
    assert sum(s["claims_lost"] for s in summaries) > 0  # the twins raced for the events
    assert all(s["pending"] == 0 and s["fallbacks"] == 0 for s in summaries)
    assert took < 20


if __name__ == "__main__" and sys.argv[1:2] == ["writer"]:
    asyncio.run(writer_main(json.loads(sys.argv[2])))
elif __name__ == "__main__" and sys.argv[1:2] == ["twin"]:
    asyncio.run(twin_main(json.loads(sys.argv[2])))
