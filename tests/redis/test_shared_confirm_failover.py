"""Redis stopped mid-run: writes keep working, none is lost or sent twice, and every wait()
ends with a clear outcome: confirmed by webhook, observed by polling (with the reason), or for
a rejected write flinkey's failure or a timeout saying that Redis was unavailable."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from flinkey_async import FlinkeyClient, webhook_app
from flinkey_async.errors import OperationFailedError, OperationTimeoutError
from flinkey_async.sandbox import USER_NOT_FOUND, Sandbox, SandboxConfig
from flinkey_async.shared.confirmations import RedisWebhookBus, SharedTracker
from flinkey_async.webhooks import WEBHOOK_RECEIVER_KEY, start_webhook_server
from tests.support.redis_server import RedisServer

SECRET = "failover-secret"
START = datetime(2032, 1, 1, tzinfo=UTC)


async def test_redis_killed_mid_run_falls_back_to_polling_and_loses_no_write(
    own_redis_server: RedisServer,
) -> None:
    url = own_redis_server.url
    async with (
        Sandbox(SandboxConfig(write_delay=0.02, webhook_secret=SECRET)) as sandbox,
        RedisWebhookBus.from_url(url, prefix="fo", timeout=0.5) as bus,
    ):
        app = webhook_app(secret=SECRET, publisher=bus, publish_timeout=1.0)
        runner = await start_webhook_server(app, "127.0.0.1", 0)
        sandbox.webhook_url = f"http://127.0.0.1:{runner.addresses[0][1]}/webhooks/flinkey"
        tracker = SharedTracker.connect(
            url,
            prefix="fo",
            timeout=0.5,
            read_block=0.2,
            poll_interval=0.05,
            max_poll_interval=0.2,
        )
        try:
            async with (
                tracker,
                FlinkeyClient(
                    sandbox.config.api_key,
                    1,
                    username=sandbox.config.username,
                    password=sandbox.config.password,
                    base_url=str(sandbox.url),
                    tracker=tracker,
                ) as client,
            ):
                results: list[tuple[str, Any]] = []

                async def write(n: int) -> None:
                    rejected = n % 5 == 4
                    op = await client.assignments.create(
                        car_id=101 + n % 10,
                        user_id=999_999 if rejected else 1001 + n % 20,
                        start=START + timedelta(hours=n),
                    )
                    try:
                        outcome = await op.wait(timeout=3)
                    except (OperationFailedError, OperationTimeoutError) as exc:
                        results.append(("rejected" if rejected else "ok", exc))
                    else:
                        results.append(("rejected" if rejected else "ok", outcome))

                before = [asyncio.create_task(write(n)) for n in range(20)]
                await asyncio.gather(*before)
                own_redis_server.stop(kill=True)
                await tracker.wait_available(False, timeout=5)
                async with asyncio.timeout(15):  # no hang
                    await asyncio.gather(*(write(n) for n in range(20, 60)))
                await sandbox.drain()
        finally:
            await runner.cleanup()

        receiver = app[WEBHOOK_RECEIVER_KEY]
        assert receiver.stats.unavailable > 0  # answered 503 while Redis was down
        early, late = results[:20], results[20:]
        for expected, result in early:  # before the loss: every one confirmed by webhook
            if expected == "ok":
                assert result.confirmed and result.fallback_reason is None
            else:
                assert isinstance(result, OperationFailedError)
                assert result.error_message == USER_NOT_FOUND
        for expected, result in late:
            if expected == "ok":  # observed by polling, and says why
                assert not result.confirmed
                assert result.fallback_reason.startswith("Redis unavailable")
            else:  # polling cannot see a rejection: a timeout that names the cause
                assert isinstance(result, OperationTimeoutError)
                assert "Redis unavailable" in str(result)
        assert tracker.fallbacks == 40
        # no write lost or sent twice: one assignment per successful create
        made = [
            a
            for car in range(101, 111)
            for a in sandbox.store.assignments_for_car(car)
            if a.start >= START
        ]
        assert len(made) == 48 == len({a.start for a in made})
        assert len(sandbox.outcomes) == 60
