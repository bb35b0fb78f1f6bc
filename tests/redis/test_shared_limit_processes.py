"""Three worker processes, one API key, one sandbox limited to 20 requests/s: with the rate
shared in Redis they stay under the limit together (configured and adaptive), and a client
whose Redis dies mid-run keeps working.

The workers are this module run as a program (``python -m tests.redis.test_shared_limit_processes``,
settings in the environment); each prints ``ready``, waits for ``go <end>`` on stdin, loads the
sandbox until the wall-clock time ``end``, and prints its stats as JSON.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import attrs
import pytest
from aiohttp import web

from flinkey_async import FlinkeyClient, RetryPolicy
from flinkey_async.limits import Limits
from flinkey_async.sandbox import RateLimit, Sandbox, SandboxConfig
from flinkey_async.shared.limiter import RedisRateLimit
from tests.support.redis_server import RedisServer

LIMIT = 20  # requests per second, the sandbox's and the shared one
WORKERS = 3
LOAD_SECONDS = 9.0
ASSIGNMENT_ID = 50001  # of customer 1 in the bundled fixture
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def state_of(shared: RedisRateLimit) -> str:
    """The state, read afresh (it changes under mypy's narrowing)."""
    return shared.state


@attrs.define
class Answers:
    """What the sandbox answered, with the time (monotonic) of each answer."""

    log: list[tuple[float, int]] = attrs.Factory(list)

    def between(self, start: float, end: float) -> tuple[int, int]:
        """(answers, 429s) between ``start`` and ``end``."""
        window = [status for at, status in self.log if start <= at < end]
        return len(window), sum(1 for status in window if status == 429)


def counting(answers: Answers) -> Callable[..., Awaitable[web.StreamResponse]]:
    @web.middleware
    async def middleware(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        response = await handler(request)
        answers.log.append((time.monotonic(), response.status))
        return response

    return middleware


@pytest.fixture
async def limited_sandbox() -> AsyncIterator[tuple[Sandbox, Answers]]:
    answers = Answers()
    sandbox = Sandbox(SandboxConfig(rate_limit=RateLimit(LIMIT, 1.0, sliding=True), seed=7))
    sandbox.app.middlewares.append(counting(answers))
    async with sandbox:
        yield sandbox, answers


async def _run_workers(
    sandbox: Sandbox, redis_url: str, *, rate: float | None, name: str
) -> tuple[float, float, list[dict[str, int]]]:
    """Start the workers, let them load the sandbox for LOAD_SECONDS, and return the load's
    monotonic start and end and the workers' stats."""
    assert sandbox.url is not None
    env = {k: v for k, v in os.environ.items() if k != "PYTHONASYNCIODEBUG"}
    env.update(
        SHARED_TEST_SANDBOX=sandbox.url,
        SHARED_TEST_REDIS=redis_url,
        SHARED_TEST_NAME=name,
        SHARED_TEST_RATE="" if rate is None else str(rate),
        FLINKEY_TEST_API_KEY=sandbox.config.api_key,
        FLINKEY_TEST_TOKEN=sandbox.issue_token(),
    )
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.redis.test_shared_limit_processes",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            cwd=ROOT,
            env=env,
        )
        for _ in range(WORKERS)
    ]
    try:
        async with asyncio.timeout(30):
            for process in processes:
                assert process.stdout is not None
                assert (await process.stdout.readline()).strip() == b"ready"
        end = time.time() + LOAD_SECONDS
        start_mono = time.monotonic()
        for process in processes:
            assert process.stdin is not None
            process.stdin.write(f"go {end!r}\n".encode())
            await process.stdin.drain()
        stats = []
        async with asyncio.timeout(LOAD_SECONDS + 30):
            for process in processes:
                out, _ = await process.communicate()
                assert process.returncode == 0, out
                stats.append(json.loads(out))
        return start_mono, start_mono + LOAD_SECONDS, stats
    finally:
        for process in processes:
            if process.returncode is None:
                os.kill(process.pid, 9)
                await process.wait()


def _check(answers: Answers, start: float, end: float, stats: list[dict[str, int]]) -> None:
    total, limited = answers.between(start, end + 0.5)
    accepted = total - limited
    throughput = accepted / (end - start)
    print(
        f"\n{WORKERS} workers, {end - start:.1f} s: {total} answers, {limited} x 429 "
        f"({100 * limited / max(total, 1):.1f} %), {throughput:.1f} accepted/s "
        f"({throughput / LIMIT:.2f} x the limit); workers: {stats}"
    )
    assert limited <= 0.05 * total, (total, limited)
    assert throughput >= 0.8 * LIMIT, (throughput, total, limited)
    assert sum(s["requests"] for s in stats) >= total - 5  # what they sent is what it counted


async def test_three_workers_share_a_configured_rate(
    redis_server: RedisServer, limited_sandbox: tuple[Sandbox, Answers]
) -> None:
    sandbox, answers = limited_sandbox
    start, end, stats = await _run_workers(
        sandbox, redis_server.url, rate=LIMIT, name="procs-configured"
    )
    _check(answers, start, end, stats)


async def test_three_workers_learn_the_limit_together(
    redis_server: RedisServer, limited_sandbox: tuple[Sandbox, Answers]
) -> None:
    sandbox, answers = limited_sandbox
    start, end, stats = await _run_workers(
        sandbox, redis_server.url, rate=None, name="procs-adaptive"
    )
    _check(answers, start, end, stats)


async def test_requests_keep_succeeding_when_redis_stops_mid_run(
    own_redis_server: RedisServer,
    limited_sandbox: tuple[Sandbox, Answers],
    caplog: pytest.LogCaptureFixture,
) -> None:
    sandbox, _answers = limited_sandbox
    assert sandbox.url is not None
    caplog.set_level(logging.INFO, logger="flinkey_async.shared")
    async with (
        # The outage is a killed server, refused at once: the command deadline only has to
        # outlast a slow moment of the machine while Redis is up (the default 0.25 s did not,
        # once, and the first second then ran at the pace kept alone).
        RedisRateLimit(
            own_redis_server.url,
            name="lost-mid-run",
            expected_workers=2,
            retry_every=0.2,
            timeout=2.0,
        ) as shared,
        FlinkeyClient(
            sandbox.config.api_key,
            1,
            token=sandbox.issue_token(),
            base_url=sandbox.url,
            limits=Limits(rate=LIMIT, concurrency=4, shared=shared),
        ) as client,
    ):

        async def load(seconds: float) -> int:
            done = 0
            until = time.monotonic() + seconds
            for _ in range(1000):
                if time.monotonic() >= until:
                    break
                await asyncio.gather(*(client.assignments.get(ASSIGNMENT_ID) for _ in range(4)))
                done += 4
            return done

        assert await load(1.0) >= 10
        assert state_of(shared) == "shared"
        own_redis_server.stop(kill=True)
        began = time.monotonic()
        async with asyncio.timeout(10):
            during = await load(2.0)
        assert time.monotonic() - began < 4
        assert state_of(shared) == "local" and shared.rate == pytest.approx(LIMIT / 2 / 1.02)
        assert during >= 0.6 * 2.0 * LIMIT / 2  # half the rate: expected_workers=2
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1, [r.getMessage() for r in warnings]
        assert "unavailable" in warnings[0].getMessage()
        own_redis_server.start()
        async with asyncio.timeout(10):
            await load(1.0)
        assert state_of(shared) == "shared"
        assert any("answers again" in r.getMessage() for r in caplog.records)
        assert client.stats.rate_limited == 0


# -- the worker ---------------------------------------------------------------------------------


async def _worker() -> dict[str, int]:
    env = os.environ
    rate = float(env["SHARED_TEST_RATE"]) if env["SHARED_TEST_RATE"] else None
    loop = asyncio.get_running_loop()
    # As deployed: each worker knows how many share the rate, for the pace it keeps alone
    # should Redis not answer in time.
    shared = RedisRateLimit(
        env["SHARED_TEST_REDIS"], name=env["SHARED_TEST_NAME"], expected_workers=WORKERS
    )
    async with (
        shared,
        FlinkeyClient(
            env["FLINKEY_TEST_API_KEY"],
            1,
            token=env["FLINKEY_TEST_TOKEN"],
            base_url=env["SHARED_TEST_SANDBOX"],
            retry=RetryPolicy(max_retries=20, max_retry_after=5),
            limits=Limits(rate=rate, concurrency=2, shared=shared),
        ) as client,
    ):
        await client.assignments.get(ASSIGNMENT_ID)  # connections warm
        before = client.stats.snapshot()
        sys.stdout.write("ready\n")
        sys.stdout.flush()
        line = await loop.run_in_executor(None, sys.stdin.readline)
        end = float(line.split()[1])

        async def task() -> None:
            for _ in range(10_000):
                if time.time() >= end:
                    return
                await client.assignments.get(ASSIGNMENT_ID)

        await asyncio.gather(*(task() for _ in range(2)))
        spent = client.stats - before
    return {"requests": spent.requests, "rate_limited": spent.rate_limited}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(_worker())))
