"""Request throughput of the SDK against raw aiohttp doing the same requests.

An aiohttp server runs in another process (started and stopped by this script, on a free port
of 127.0.0.1) and answers two routes with fixed bodies: ``GET /v3/assignments/1`` (one
assignment) and ``GET /v3/cars/7/assignments`` (a list of 100). Each round, in turn:

* **flinkey_async**: ``client.assignments.get(1)`` / ``client.assignments.list_for_car(7)``
  (the whole pipeline: auth headers, URL, retry loop, deadline, bounded read, typed models);
* **raw aiohttp + attrs**: one ``aiohttp.ClientSession``, the same headers, ``orjson.loads``
  and the same attrs models built by hand (datetimes parsed with ``fromisoformat``);
* **raw aiohttp, dicts**: the same without building models.

at concurrency 1 and 64 (that many coroutines sharing one client/session). The median of the
rounds' requests per second is reported; the rounds interleave the contenders so that a slow
phase of the machine hits them all alike.

Run: ``python benchmarks/throughput.py [rounds] [requests-per-round]``. Target: the SDK at
least 0.95 x raw aiohttp + attrs in every cell.
"""

from __future__ import annotations

import asyncio
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp
import orjson

from flinkey_async import FlinkeyClient
from flinkey_async.models import Assignment, CarAssignment

API_KEY = "bench-key"
TOKEN = "bench-token"
CUSTOMER = 1


def _bodies() -> tuple[bytes, bytes]:
    one = {
        "id": 1,
        "carId": 7,
        "userId": 9,
        "start": "2026-03-01T08:00:00Z",
        "end": "2026-03-08T08:00:00Z",
        "lifetime": 604800,
        "renewableAfter": 302400,
    }
    items = [
        {
            "id": i,
            "userId": 1000 + i,
            "start": f"2026-03-{1 + i % 28:02d}T08:{i % 60:02d}:00Z",
            "end": None if i % 3 else f"2026-04-{1 + i % 28:02d}T08:00:00Z",
        }
        for i in range(1, 101)
    ]
    return orjson.dumps(one), orjson.dumps(items)


def serve() -> None:
    """The server process: print the port, serve until SIGTERM."""
    from aiohttp import web

    one, many = _bodies()

    async def get_one(_: web.Request) -> web.Response:
        return web.Response(body=one, content_type="application/json")

    async def get_many(_: web.Request) -> web.Response:
        return web.Response(body=many, content_type="application/json")

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/v3/assignments/1", get_one)
        app.router.add_get("/v3/cars/7/assignments", get_many)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        print(runner.addresses[0][1], flush=True)
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        await runner.cleanup()

    asyncio.run(main())


def _dt(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo is UTC else parsed.astimezone(UTC)


def _assignment(d: dict[str, Any]) -> Assignment:
    end = d["end"]
    return Assignment(
        d["id"],
        d["carId"],
        d["userId"],
        _dt(d["start"]),
        None if end is None else _dt(end),
        d["lifetime"],
        d["renewableAfter"],
    )


def _car_assignment(d: dict[str, Any]) -> CarAssignment:
    end = d["end"]
    return CarAssignment(d["id"], d["userId"], _dt(d["start"]), None if end is None else _dt(end))


Call = Callable[[], Awaitable[Any]]


async def run_round(call: Call, concurrency: int, requests: int) -> float:
    """Requests per second of ``requests`` calls spread over ``concurrency`` coroutines."""
    per_worker = requests // concurrency

    async def worker() -> None:
        for _ in range(per_worker):
            await call()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return per_worker * concurrency / (time.perf_counter() - started)


async def measure(port: int, rounds: int, requests: int) -> None:
    base = f"http://127.0.0.1:{port}/v3"
    headers = {
        "flinkey-API-Key": API_KEY,
        "Authorization": f"Bearer {TOKEN}",
        "Customer-ID": str(CUSTOMER),
        "Accept": "application/json",
    }
    one_url, many_url = f"{base}/assignments/1", f"{base}/cars/7/assignments"
    async with (
        FlinkeyClient(API_KEY, CUSTOMER, token=TOKEN, base_url=base) as client,
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100)) as session,
    ):

        async def raw(url: str) -> Any:
            async with session.get(url, headers=headers) as response:
                return orjson.loads(await response.read())

        async def raw_one_attrs() -> Assignment:
            return _assignment(await raw(one_url))

        async def raw_many_attrs() -> list[CarAssignment]:
            return [_car_assignment(d) for d in await raw(many_url)]

        # Same results, or the comparison means nothing.
        assert await client.assignments.get(1) == await raw_one_attrs()
        assert await client.assignments.list_for_car(7) == await raw_many_attrs()

        cells: dict[tuple[str, int], dict[str, list[float]]] = {}
        contenders: dict[str, dict[str, Call]] = {
            "GET one": {
                "flinkey_async": lambda: client.assignments.get(1),
                "raw aiohttp + attrs": raw_one_attrs,
                "raw aiohttp, dicts": lambda: raw(one_url),
            },
            "list 100": {
                "flinkey_async": lambda: client.assignments.list_for_car(7),
                "raw aiohttp + attrs": raw_many_attrs,
                "raw aiohttp, dicts": lambda: raw(many_url),
            },
        }
        for calls in contenders.values():  # warm up connections and code paths
            for call in calls.values():
                await run_round(call, 64, 256)
        for _ in range(rounds):
            for name, calls in contenders.items():
                for concurrency in (1, 64):
                    count = requests if concurrency == 64 else max(requests // 4, 64)
                    cell = cells.setdefault((name, concurrency), {})
                    for who, call in calls.items():
                        cell.setdefault(who, []).append(await run_round(call, concurrency, count))

    print(
        f"requests/s, median of {rounds} interleaved rounds "
        f"(python {sys.version.split()[0]}, aiohttp {aiohttp.__version__}, "
        f"{os.cpu_count()} CPUs)"
    )
    print(
        f"{'cell':22} {'flinkey_async':>14} {'raw + attrs':>12} {'raw dicts':>10} "
        f"{'vs attrs':>9} {'vs dicts':>9}"
    )
    worst = float("inf")
    for (name, concurrency), results in cells.items():
        sdk = statistics.median(results["flinkey_async"])
        attrs_rate = statistics.median(results["raw aiohttp + attrs"])
        dicts = statistics.median(results["raw aiohttp, dicts"])
        worst = min(worst, sdk / attrs_rate)
        print(
            f"{name + f', concurrency {concurrency}':22} {sdk:14,.0f} {attrs_rate:12,.0f} "
            f"{dicts:10,.0f} {sdk / attrs_rate:8.2f}x {sdk / dicts:8.2f}x"
        )
    print(
        f"target >= 0.95 x raw aiohttp + attrs in every cell: worst {worst:.2f} "
        f"({'met' if worst >= 0.95 else 'NOT met'})"
    )


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        serve()
        return
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    requests = int(sys.argv[2]) if len(sys.argv) > 2 else 2048
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        asyncio.run(measure(port, rounds, requests))
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.communicate()


if __name__ == "__main__":
    main()
