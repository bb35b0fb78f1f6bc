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


# pytest-asyncio's default (strict) mode: async tests carry the asyncio marker, and the
# plugin's async fixtures work without asyncio_mode = auto.
STRICT_TEST = """
from datetime import UTC, datetime

import pytest

from flinkey_async.errors import OperationFailedError

START = datetime(2031, 5, 1, 8, tzinfo=UTC)


@pytest.mark.asyncio
async def test_polling_client(flinkey_client, flinkey_sandbox):
    op = await flinkey_client.assignments.create(car_id=101, user_id=1001, start=START)
    outcome = await op.wait(timeout=5)
    assert outcome.confirmed is False and outcome.assignment_id is not None
    assert flinkey_client.tracker is None


@pytest.mark.asyncio
async def test_confirmed_client(flinkey_confirmed_client, flinkey_webhook_receiver,
                                flinkey_sandbox):
    client = flinkey_confirmed_client
    assert client.tracker is flinkey_webhook_receiver.tracker is not None
    op = await client.assignments.create(car_id=101, user_id=1001, start=START)
    outcome = await op.wait(timeout=5)
    assert outcome.confirmed is True
    assert outcome.assignment_id in {a.id for a in await client.assignments.list_for_car(101)}
    refused = await client.assignments.create(car_id=101, user_id=1_900_000, start=START)
    with pytest.raises(OperationFailedError, match="Unable to find an user"):
        await refused.wait(timeout=5)
    assert flinkey_webhook_receiver.stats.delivered == 2
    assert flinkey_sandbox.webhook_url.startswith("http://127.0.0.1:")


@pytest.mark.asyncio
async def test_the_webhook_target_is_restored(flinkey_sandbox):
    assert flinkey_sandbox.webhook_url is None


def test_a_sync_test_may_use_the_config(flinkey_sandbox_config):
    assert flinkey_sandbox_config.write_delay == 0.01
"""

STRICT_INI = """[pytest]
asyncio_mode = strict
asyncio_default_fixture_loop_scope = function
"""


def test_fixtures_in_strict_mode_and_the_confirmed_client(pytester: pytest.Pytester) -> None:
    pytester.makeini(STRICT_INI)
    pytester.makepyfile(test_strict=STRICT_TEST)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-W", "error")
    result.assert_outcomes(passed=4)


def test_strict_mode_without_the_marker_is_pytest_asyncios_error(
    pytester: pytest.Pytester,
) -> None:
    # What users meet when they forget the marker: pytest-asyncio's message, not ours.
    pytester.makeini(STRICT_INI)
    pytester.makepyfile(test_unmarked="async def test_unmarked(flinkey_client):\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*async def functions are not natively supported*"])


SESSION_TEST = """
from datetime import UTC, datetime

import pytest

START = datetime(2031, 6, 1, 8, tzinfo=UTC)
seen = []


@pytest.mark.asyncio
async def test_first(flinkey_sandbox, flinkey_confirmed_client):
    seen.append(flinkey_sandbox)
    op = await flinkey_confirmed_client.assignments.create(car_id=101, user_id=1001, start=START)
    assert (await op.wait(timeout=5)).confirmed


@pytest.mark.asyncio
async def test_second_shares_the_sandbox_and_its_data(flinkey_sandbox, flinkey_client):
    assert seen == [flinkey_sandbox]
    items = await flinkey_client.assignments.list_for_car(101)
    assert any(a.start == START for a in items)
"""

SESSION_INI = """[pytest]
asyncio_mode = strict
asyncio_default_fixture_loop_scope = session
asyncio_default_test_loop_scope = session
"""


@pytest.mark.parametrize("where", ["ini", "command line"])
def test_one_sandbox_per_session(pytester: pytest.Pytester, where: str) -> None:
    if where == "ini":
        pytester.makeini(SESSION_INI + "flinkey_sandbox_scope = session\n")
        args: tuple[str, ...] = ()
    else:
        pytester.makeini(SESSION_INI)
        args = ("--flinkey-sandbox-scope=session",)
    pytester.makepyfile(test_session=SESSION_TEST)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-W", "error", *args)
    result.assert_outcomes(passed=2)


def test_a_session_sandbox_needs_a_session_loop(pytester: pytest.Pytester) -> None:
    pytester.makeini(STRICT_INI + "flinkey_sandbox_scope = session\n")
    pytester.makepyfile(test_session=SESSION_TEST)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*asyncio_default_fixture_loop_scope = session*"])


MISSING_EXTRA_CONFTEST = """
import sys

sys.modules["odata_query"] = None  # as if flinkey_async[sandbox] was not installed
"""

MISSING_EXTRA_TEST = """
import pytest


@pytest.mark.asyncio
async def test_needs_the_sandbox(flinkey_client):
    pass
"""


def test_a_missing_sandbox_extra_says_what_to_install(pytester: pytest.Pytester) -> None:
    pytester.makeini(STRICT_INI)
    pytester.makeconftest(MISSING_EXTRA_CONFTEST)
    pytester.makepyfile(test_missing=MISSING_EXTRA_TEST)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*install flinkey_async[[]sandbox[]]*"])
    result.stdout.no_fnmatch_line("*another exception occurred*")
    result.stdout.no_fnmatch_line("*Traceback*")
