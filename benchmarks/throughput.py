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

The rounds run in several client processes, one after another, against the same server:
a process's hash seed and memory layout shift its speed by a few per cent for the whole run
(as pyperf's workers account for), which one process cannot average away.

Reported per cell: the median requests per second of each contender over all rounds, and the
ratios. A ratio is the median over all rounds of that round's ratio (paired: the contenders
of a round ran interleaved, in the same phases of the machine, which makes it much steadier on
a shared machine than the ratio of two medians); in brackets, the lowest and the highest of
the processes' own medians. Each cell's ratio to raw aiohttp + attrs is what the target is
checked on.

Run: ``python benchmarks/throughput.py [processes] [rounds] [requests]`` (default 5 client
processes of 5 rounds, 4,096 requests per contender and round at concurrency 64, a quarter of
that at concurrency 1). Target: the SDK at least 0.95 x raw aiohttp + attrs in every cell.
"""

from __future__ import annotations

import asyncio
import json
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


async def measure(port: int, rounds: int, requests: int) -> dict[str, dict[str, list[float]]]:
    """``rounds`` rounds in this process: each cell's rates per contender, one per round."""
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

        cells: dict[str, dict[str, list[float]]] = {}
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
                    cell = cells.setdefault(f"{name}, concurrency {concurrency}", {})
                    for who, rate in rates.items():
                        cell.setdefault(who, []).append(rate)
    return cells


def paired(numerators: list[float], denominators: list[float]) -> list[float]:
    return [a / b for a, b in zip(numerators, denominators, strict=True)]


def report(runs: list[dict[str, dict[str, list[float]]]], rounds: int) -> None:
    """The table over every round of every client process."""
    print(
        f"requests/s, {len(runs)} client processes x {rounds} interleaved rounds "
        f"(python {sys.version.split()[0]}, aiohttp {aiohttp.__version__}, "
        f"{os.cpu_count()} CPUs)"
    )
    print(
        "ratios: median of all rounds' paired ratios; in brackets, the lowest and highest of "
        "the processes' medians"
    )
    print(
        f"{'cell':25} {'flinkey_async':>13} {'raw + attrs':>12} {'raw dicts':>10} "
        f"{'vs attrs':>18} {'vs dicts':>18}"
    )
    worst = float("inf")
    for cell in runs[0]:
        column: dict[str, list[float]] = {}
        vs: dict[str, list[float]] = {"attrs": [], "dicts": []}
        spread: dict[str, list[float]] = {"attrs": [], "dicts": []}
        for run in runs:
            results = run[cell]
            for who, rates in results.items():
                column.setdefault(who, []).extend(rates)
            for key, baseline in (
                ("attrs", "raw aiohttp + attrs"),
                ("dicts", "raw aiohttp, dicts"),
            ):
                ratios = paired(results["flinkey_async"], results[baseline])
                vs[key].extend(ratios)
                spread[key].append(statistics.median(ratios))
        medians = {key: statistics.median(values) for key, values in vs.items()}
        worst = min(worst, medians["attrs"])
        texts = {
            key: f"{medians[key]:5.2f}x ({min(spread[key]):.2f}-{max(spread[key]):.2f})"
            for key in vs
        }
        print(
            f"{cell:25} {statistics.median(column['flinkey_async']):13,.0f} "
            f"{statistics.median(column['raw aiohttp + attrs']):12,.0f} "
            f"{statistics.median(column['raw aiohttp, dicts']):10,.0f} "
            f"{texts['attrs']:>18} {texts['dicts']:>18}"
        )
    print(
        f"target >= 0.95 x raw aiohttp + attrs in every cell: worst {worst:.2f} "
        f"({'met' if worst >= 0.95 else 'NOT met'})"
    )


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        serve()
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        port, rounds, requests = (int(arg) for arg in sys.argv[2:5])
        print(json.dumps(asyncio.run(measure(port, rounds, requests))))
        return
    usage = "usage: python benchmarks/throughput.py [processes] [rounds] [requests]"
    if any(arg in ("-h", "--help") for arg in sys.argv[1:]):
        print(f"{usage}\n\n{__doc__}")
        return
    try:
        processes, rounds, requests = (
            int(sys.argv[i]) if len(sys.argv) > i else default
            for i, default in ((1, 5), (2, 5), (3, 4096))
        )
    except ValueError:
        sys.exit(f"{usage} (whole numbers)")
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        runs = []
        for _ in range(processes):  # one after another: each has its own hash seed and layout
            client = subprocess.run(
                [sys.executable, __file__, "--client", str(port), str(rounds), str(requests)],
                stdout=subprocess.PIPE,
                text=True,
                check=True,
                timeout=1800,
            )
            runs.append(json.loads(client.stdout))
        report(runs, rounds)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.communicate()


if __name__ == "__main__":
    main()
