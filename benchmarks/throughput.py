"""Request throughput of the SDK against raw aiohttp doing the same requests.

An aiohttp server runs in another process (started and stopped by this script, on a free port
of 127.0.0.1) and answers two routes with fixed bodies: ``GET /v3/assignments/1`` (one
assignment) and ``GET /v3/cars/7/assignments`` (a list of 100). Each round, in turn:

* **flinkey_async**: ``client.assignments.get(1)`` / ``client.assignments.list_for_car(7)``
  (the whole pipeline: auth headers, URL, retry loop, deadline, bounded read, typed models);
* **raw aiohttp + attrs**: one ``aiohttp.ClientSession``, the same headers, ``orjson.loads``
  and the same attrs models built by hand (datetimes parsed with ``fromisoformat``);
* **raw aiohttp, dicts**: the same without building models.

at concurrency 1 and 64 (that many coroutines sharing one client/session). Within a round the
contenders take turns in slices (8 slices of 512 requests each at concurrency 64), the order
rotating from slice to slice, so that a slow phase of a shared machine, which lasts longer
than a slice, hits them all alike; a contender's rate in a round is its requests over the
time its slices took.

Reported per cell: the median requests per second of each contender over the rounds, and the
ratios. A ratio is the median over the rounds of that round's ratio (paired: the contenders
of a round ran interleaved, in the same phases of the machine, which makes it much steadier
on a shared machine than the ratio of two medians); the ratio of the medians is printed
beside it. Each cell's ratio to raw aiohttp + attrs is what the target is checked on.

Run: ``python benchmarks/throughput.py [rounds] [requests-per-round]`` (default 11 rounds of
4,096 requests per contender at concurrency 64, a quarter of that at concurrency 1). Target:
the SDK at least 0.95 x raw aiohttp + attrs in every cell.
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
#: Each round's requests of a contender go out in this many slices, taking turns.
SLICES = 8


async def timed(call: Call, concurrency: int, requests: int) -> tuple[int, float]:
    """``requests`` calls spread over ``concurrency`` coroutines: how many ran, in what time."""
    per_worker = requests // concurrency

    async def worker() -> None:
        for _ in range(per_worker):
            await call()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return per_worker * concurrency, time.perf_counter() - started


async def run_round(
    calls: dict[str, Call], concurrency: int, requests: int, first: int
) -> dict[str, float]:
    """One round: each contender's requests per second over ``requests`` calls, sent in
    ``SLICES`` slices that take turns with the other contenders' slices (the order rotating
    from slice to slice, starting at contender ``first``). A slow phase of a shared machine
    lasts longer than a slice, so it hits every contender alike."""
    names = list(calls)
    done = dict.fromkeys(names, 0)
    spent = dict.fromkeys(names, 0.0)
    for index in range(SLICES):
        start = (first + index) % len(names)
        for name in names[start:] + names[:start]:
            count, seconds = await timed(calls[name], concurrency, requests // SLICES)
            done[name] += count
            spent[name] += seconds
    return {name: done[name] / spent[name] for name in names}


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
                await timed(call, 64, 256)
        for index in range(rounds):
            for name, calls in contenders.items():
                for concurrency in (1, 64):
                    count = requests if concurrency == 64 else max(requests // 4, 64 * SLICES)
                    rates = await run_round(calls, concurrency, count, index)
                    cell = cells.setdefault((name, concurrency), {})
                    for who, rate in rates.items():
                        cell.setdefault(who, []).append(rate)

    print(
        f"requests/s, median of {rounds} interleaved rounds "
        f"(python {sys.version.split()[0]}, aiohttp {aiohttp.__version__}, "
        f"{os.cpu_count()} CPUs); ratios: median of the rounds' ratios "
        "(ratio of the medians in brackets)"
    )
    print(
        f"{'cell':25} {'flinkey_async':>13} {'raw + attrs':>12} {'raw dicts':>10} "
        f"{'vs attrs':>15} {'vs dicts':>15}"
    )
    worst = float("inf")
    for (name, concurrency), results in cells.items():
        sdk_rates = results["flinkey_async"]
        attrs_rates = results["raw aiohttp + attrs"]
        dict_rates = results["raw aiohttp, dicts"]
        sdk = statistics.median(sdk_rates)
        attrs_rate = statistics.median(attrs_rates)
        dicts = statistics.median(dict_rates)
        vs_attrs = statistics.median(a / b for a, b in zip(sdk_rates, attrs_rates, strict=True))
        vs_dicts = statistics.median(a / b for a, b in zip(sdk_rates, dict_rates, strict=True))
        worst = min(worst, vs_attrs)
        print(
            f"{name + f', concurrency {concurrency}':25} {sdk:13,.0f} {attrs_rate:12,.0f} "
            f"{dicts:10,.0f} {vs_attrs:7.2f}x ({sdk / attrs_rate:.2f}) "
            f"{vs_dicts:7.2f}x ({sdk / dicts:.2f})"
        )
    print(
        f"target >= 0.95 x raw aiohttp + attrs in every cell: worst {worst:.2f} "
        f"({'met' if worst >= 0.95 else 'NOT met'})"
    )


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        serve()
        return
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 11
    requests = int(sys.argv[2]) if len(sys.argv) > 2 else 4096
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
