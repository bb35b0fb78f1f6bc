"""Throughput of the sandbox's hot path against a bare aiohttp handler, measured in one run.

Both servers run in this process on 127.0.0.1 and answer ``GET /v3/cars/{carId}/assignments``
for a car with 5 assignments with the same JSON bytes; the bare one does nothing else, the
sandbox checks the API key, the bearer token and the Customer-ID first. One aiohttp
ClientSession fires the requests (20,000 per server, concurrency 64, in alternating rounds so
that both see the same machine load) and the script prints requests/second for each and their
ratio. It fails (exit status 1) on any request error or when the ratio is below the target.

Run: ``python benchmarks/sandbox.py``
"""

from __future__ import annotations

import asyncio
import sys
import time

import aiohttp
from aiohttp import web

from flinkey_async.sandbox import Sandbox, SandboxConfig

REQUESTS = 20_000
CONCURRENCY = 64
ROUNDS = 4
WARMUP = 500
TARGET_RATIO = 0.5
CAR_ID = 101  # has 5 assignments in the bundled fixture
CUSTOMER_ID = 1


async def fire(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str], count: int, expected: bytes
) -> tuple[float, int]:
    """Send ``count`` GETs with ``CONCURRENCY`` workers; returns (seconds, errors)."""
    remaining = count
    errors = 0

    async def worker() -> None:
        nonlocal remaining, errors
        while remaining > 0:
            remaining -= 1
            try:
                async with session.get(url, headers=headers) as response:
                    body = await response.read()
                    if response.status != 200 or body != expected:
                        errors += 1
            except aiohttp.ClientError:
                errors += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return time.perf_counter() - started, errors


async def start_bare(body: bytes) -> tuple[web.AppRunner, str]:
    """A bare aiohttp server answering the same bytes for the same path."""

    async def handler(_request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json", charset="utf-8")

    app = web.Application()
    app.router.add_get("/v3/cars/{carId}/assignments", handler)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}/v3/cars/{CAR_ID}/assignments"


async def main() -> int:
    sandbox = Sandbox(SandboxConfig())
    base = await sandbox.start("127.0.0.1", 0)
    sandbox_url = f"{base}/cars/{CAR_ID}/assignments"
    headers = sandbox.auth_headers(CUSTOMER_ID)
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    try:
        async with aiohttp.ClientSession(connector=connector) as session:
            async with session.get(sandbox_url, headers=headers) as response:
                expected = await response.read()
                assert response.status == 200, response.status
            bare_runner, bare_url = await start_bare(expected)
            try:
                targets = {"bare aiohttp": bare_url, "sandbox": sandbox_url}
                totals = dict.fromkeys(targets, 0.0)
                errors = dict.fromkeys(targets, 0)
                for url in targets.values():  # warm up connections and caches
                    await fire(session, url, headers, WARMUP, expected)
                per_round = REQUESTS // ROUNDS
                for _ in range(ROUNDS):
                    for name, url in targets.items():
                        seconds, failed = await fire(session, url, headers, per_round, expected)
                        totals[name] += seconds
                        errors[name] += failed
            finally:
                await bare_runner.cleanup()
    finally:
        await sandbox.stop()

    rates = {name: (REQUESTS // ROUNDS * ROUNDS) / seconds for name, seconds in totals.items()}
    print(
        f"GET /cars/{{carId}}/assignments, {len(expected)} bytes, "
        f"{REQUESTS} requests per server, concurrency {CONCURRENCY}"
    )
    for name, rate in rates.items():
        print(f"  {name:13s} {rate:9.0f} requests/s   errors: {errors[name]}")
    ratio = rates["sandbox"] / rates["bare aiohttp"]
    print(f"  ratio sandbox/bare: {ratio:.2f} (target >= {TARGET_RATIO})")
    if any(errors.values()):
        print("FAILED: some requests failed")
        return 1
    if ratio < TARGET_RATIO:
        print("FAILED: below target")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
