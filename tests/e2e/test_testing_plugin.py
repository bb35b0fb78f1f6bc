"""The pytest plugin users get: fixtures for a running sandbox and a client bound to it."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

USER_TEST = """
from datetime import UTC, datetime

from flinkey_async import F, Query


async def test_fixtures_work(flinkey_client, flinkey_sandbox):
    assert flinkey_client.base_url.port == int(flinkey_sandbox.url.split(":")[2].split("/")[0])
    before = await flinkey_client.assignments.list_for_car(101)
    op = await flinkey_client.assignments.create(
        car_id=101, user_id=1001, start=datetime(2030, 1, 1, tzinfo=UTC))
    await flinkey_sandbox.drain()
    after = await flinkey_client.assignments.list_for_car(
        101, query=Query().filter(F.start == datetime(2030, 1, 1, tzinfo=UTC)))
    assert len(after) == 1 and after[0].user_id == 1001
    assert len(await flinkey_client.assignments.list_for_car(101)) == len(before) + 1
    assert op.kind == "create"


async def test_each_test_gets_a_fresh_sandbox(flinkey_client):
    after = await flinkey_client.assignments.list_for_car(101)
    assert all(a.start.year != 2030 for a in after)
"""

CONFIG_OVERRIDE = """
import pytest
from flinkey_async.sandbox import SandboxConfig


@pytest.fixture
def flinkey_sandbox_config():
    return SandboxConfig(fixture=None)


async def test_empty_sandbox(flinkey_sandbox):
    assert flinkey_sandbox.customer_ids == []
"""


def test_plugin_fixtures_in_a_users_project(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_mode = auto\n")
    pytester.makepyfile(test_user=USER_TEST)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_config_fixture_can_be_overridden(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_mode = auto\n")
    pytester.makepyfile(test_override=CONFIG_OVERRIDE)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
