"""The pytest plugin's shared-mode fixtures: ``flinkey_shared_tracker`` on the Redis named by
``--flinkey-redis-url``, confirming the sandbox's webhooks through Redis; a clear failure
without a URL."""

from __future__ import annotations

import pytest

from tests.support.redis_server import RedisServer

pytest_plugins = ["pytester"]

USER_TEST = """
from datetime import UTC, datetime

from flinkey_async import FlinkeyClient, start_webhook_server, webhook_app


async def test_confirmed_through_redis(flinkey_sandbox, flinkey_shared_tracker):
    tracker = flinkey_shared_tracker
    assert tracker.available and tracker.bus.prefix.startswith("flinkey-test-")
    app = webhook_app(secret="s", publisher=tracker.bus)
    runner = await start_webhook_server(app, "127.0.0.1", 0)
    flinkey_sandbox.webhook_url = f"http://127.0.0.1:{runner.addresses[0][1]}/webhooks/flinkey"
    flinkey_sandbox.webhook_secret = "s"
    config = flinkey_sandbox.config
    try:
        async with FlinkeyClient(config.api_key, 1, username=config.username,
                                 password=config.password, base_url=flinkey_sandbox.url,
                                 tracker=tracker) as client:
            op = await client.assignments.create(car_id=101, user_id=1001,
                                                 start=datetime(2033, 1, 1, tzinfo=UTC))
            outcome = await op.wait(timeout=5)
            assert outcome.confirmed and outcome.fallback_reason is None
            assert await tracker.bus.length() == 1
    finally:
        await runner.cleanup()


async def test_each_test_has_keys_of_its_own(flinkey_shared_tracker):
    assert await flinkey_shared_tracker.bus.length() == 0
"""


def test_the_shared_tracker_fixture_confirms_through_redis(
    pytester: pytest.Pytester, redis_server: RedisServer
) -> None:
    pytester.makeini("[pytest]\nasyncio_mode = auto\n")
    pytester.makepyfile(test_user=USER_TEST)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", f"--flinkey-redis-url={redis_server.url}"
    )
    result.assert_outcomes(passed=2)


def test_the_shared_tracker_fixture_says_what_it_needs(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FLINKEY_REDIS_URL", raising=False)
    pytester.makeini("[pytest]\nasyncio_mode = auto\n")
    pytester.makepyfile(test_user="async def test_x(flinkey_shared_tracker):\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*needs a Redis server*--flinkey-redis-url*"])
