"""Arguments the CLI must refuse up front, and the messages of its usage errors: empty
connection options, out-of-range paging, a non-finite sandbox latency, an empty sandbox host;
the hints of a date without a time and of a malformed token; a CSV file with a BOM; and how
long stopping a sandbox with a request in flight takes.

Commands run through ``flinkey_async.cli.main`` in this process (``--sandbox`` where they
need a server); the ``flinkey sandbox`` ones in a subprocess bounded by a timeout, as a
sandbox that is wrongly accepted serves until it is stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from flinkey_async.cli import main
from flinkey_async.cli._connection import ENVIRONMENT
from flinkey_async.cli._parsing import aware_datetime
from flinkey_async.sandbox import FaultConfig, RouteFaults, Sandbox, SandboxConfig, WebhookFaults

MAX_INT32 = 2**31 - 1

# Valid settings of every connection variable; nothing listens on port 9 of 127.0.0.1.
ENV = {
    "FLINKEY_BASE_URL": "http://127.0.0.1:9/v3",
    "FLINKEY_API_KEY": "cli-arguments-key",
    "FLINKEY_CUSTOMER_ID": "1",
    "FLINKEY_TOKEN": "cli-arguments-token",
    "FLINKEY_SDK_KEY": "cli-arguments-sdk-key",
}

# Refused by the SDK before anything is sent, so that no request leaves this process.
CREATE = (
    "assignments",
    "create",
    "--car",
    "101",
    "--user",
    "1001",
    "--start",
    "2033-01-01T08:00:00Z",
    "--lifetime",
    "60",
)


@contextlib.contextmanager
def environment(**values: str) -> Iterator[None]:
    saved = dict(os.environ)
    for name in list(os.environ):
        if name.startswith("FLINKEY_"):
            del os.environ[name]
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def run_here(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with (
        environment(**(env or {})),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
    ):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


def run_sandbox_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLINKEY_")}
    return subprocess.run(
        [sys.executable, "-m", "flinkey_async", "sandbox", "--port", "0", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
        stdin=subprocess.DEVNULL,
        check=False,
    )


@pytest.mark.parametrize("name", list(ENVIRONMENT))
def test_an_empty_connection_option_is_a_usage_error_never_the_variable(name: str) -> None:
    flag = "--" + name.replace("_", "-")
    env = dict(ENV, FLINKEY_USERNAME="manager@example.com", FLINKEY_PASSWORD="pw")
    if name in ("username", "password"):
        del env["FLINKEY_TOKEN"]
    code, out, err = run_here(*CREATE, flag, "", env=env)
    assert code == 2 and out == "", err
    assert err.splitlines() == [
        f"flinkey assignments create: {flag} is empty: give a value, or leave the option out "
        f"to use {ENVIRONMENT[name]} (see flinkey assignments create --help)"
    ]
    assert "production" not in err


def test_an_empty_secret_option_is_a_usage_error() -> None:
    code, _, err = run_here("sdk-tokens", "create", "--user", "1001", "--sdk-key", " ", env=ENV)
    assert code == 2, err
    assert err.startswith("flinkey sdk-tokens create: --sdk-key is empty:"), err
    assert "FLINKEY_SDK_KEY" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("assignments", "list-for-car", "101", "--orderby", "start:up"),
            "--orderby 'start:up': the direction must be asc or desc, got 'up'",
        ),
        (
            ("assignments", "update", "50001", "--set", "end="),
            "--set 'end=' has no value",
        ),
        (CREATE, "--lifetime: must be between"),
    ],
)
def test_usage_errors_of_the_cli_name_the_command_and_its_help(
    args: tuple[str, ...], message: str
) -> None:
    code, out, err = run_here(*args, "--sandbox")
    path = "flinkey " + " ".join(args[:2])
    assert code == 2 and out == "", err
    (line,) = err.splitlines()
    assert line.startswith(f"{path}: {message}"), line
    assert line.endswith(f" (see {path} --help)"), line


def test_the_hint_for_a_date_without_a_time_is_a_value_that_is_accepted() -> None:
    args = [*CREATE[:6], "--start", "2026-03-01", "--lifetime", "604800", "--sandbox"]
    code, _, err = run_here(*args)
    assert code == 2, err
    assert "e.g. 2026-03-01T00:00:00Z " in err, err
    assert aware_datetime("2026-03-01T00:00:00Z").utcoffset() is not None


@pytest.mark.parametrize(("where", "flag"), [("variable", "FLINKEY_TOKEN"), ("option", "--token")])
def test_a_malformed_token_names_where_it_came_from(where: str, flag: str) -> None:
    if where == "variable":
        code, _, err = run_here("cars", "list", env=dict(ENV, FLINKEY_TOKEN="a b"))
    else:
        code, _, err = run_here("cars", "list", "--token", "a\nb", env=ENV)
    assert code == 3, err
    assert err.startswith(f"flinkey: {flag}: must be"), err


def test_paging_beyond_32_bits_is_refused_up_front_and_the_limit_itself_is_sent() -> None:
    for args in (
        ("cars", "list", "--top", str(MAX_INT32 + 1)),
        ("cars", "list", "--skip", str(MAX_INT32 + 1)),
        ("assignments", "list-for-car", "101", "--all", "--page-size", str(MAX_INT32 + 1)),
    ):
        code, out, err = run_here(*args, "--sandbox")
        assert code == 2 and out == "", (args, err)
        assert "less than or equal to 2147483647" in err, (args, err)
    code, out, err = run_here("cars", "list", "--skip", str(MAX_INT32), "--sandbox", "-o", "json")
    assert code == 0 and out.strip() == "[]", err


def test_the_sandbox_refuses_an_empty_host() -> None:
    result = run_sandbox_cli("--host", "")
    assert result.returncode == 2, result
    assert result.stdout == ""
    assert result.stderr.startswith("flinkey sandbox: --host is empty"), result.stderr


@pytest.mark.parametrize("latency", ["inf", "0,inf", "nan"])
def test_the_sandbox_refuses_a_latency_that_is_not_finite(latency: str) -> None:
    result = run_sandbox_cli("--latency", latency)
    assert result.returncode == 2, result
    assert "Invalid value for '--latency': expected finite" in result.stderr, result.stderr


@pytest.mark.parametrize("pair", [(float("inf"), float("inf")), (0.0, float("inf"))])
def test_fault_ranges_must_be_finite(pair: tuple[float, float]) -> None:
    with pytest.raises(ValueError, match="latency must be finite"):
        RouteFaults(latency=pair)
    with pytest.raises(ValueError, match="delay_seconds must be finite"):
        WebhookFaults(delay=1.0, delay_seconds=pair)


def test_reconcile_reads_a_csv_file_with_a_byte_order_mark(tmp_path: Path) -> None:
    desired = tmp_path / "desired.csv"
    desired.write_bytes(
        b"\xef\xbb\xbfcar_id,user_id,start,end\r\n101,1001,2031-01-01T00:00:00Z,\r\n"
    )
    code, out, err = run_here(
        "assignments", "reconcile", str(desired), "--car", "101", "--sandbox", "--dry-run"
    )
    assert code == 0, err
    assert "plan: 1 to create," in out + err, (out, err)


async def test_stopping_a_sandbox_does_not_wait_a_minute_for_a_request_in_flight() -> None:
    faults = FaultConfig(routes={"*": RouteFaults(latency=(30.0, 30.0))})
    sandbox = Sandbox(SandboxConfig(faults=faults))
    url = await sandbox.start()
    async with aiohttp.ClientSession() as session:

        async def request() -> None:
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(f"{url}/cars") as response:
                    await response.read()

        in_flight = asyncio.ensure_future(request())
        await asyncio.sleep(0.5)
        assert not in_flight.done()
        started = time.monotonic()
        async with asyncio.timeout(15):
            await sandbox.stop()
            await in_flight
        assert time.monotonic() - started < 10


#: Ctrl-C landing while the command imports its libraries (the first few hundred ms of a run):
#: the import of aiohttp raises KeyboardInterrupt, as the signal would.
_INTERRUPTED_IMPORT = """
import sys

class Interrupt:
    def find_spec(self, name, path=None, target=None):
        if name == "aiohttp":
            raise KeyboardInterrupt
        return None

sys.meta_path.insert(0, Interrupt())
"""


@pytest.mark.parametrize(
    "entry",
    [
        "import runpy; sys.argv = ['flinkey', 'customers', 'list']; "
        "runpy.run_module('flinkey_async', run_name='__main__', alter_sys=True)",
        "from flinkey_async.cli import main; sys.exit(main(['customers', 'list']))",
    ],
    ids=["python -m flinkey_async", "flinkey (console script)"],
)
def test_ctrl_c_while_the_command_starts_is_one_line_and_status_130(entry: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONASYNCIODEBUG"}
    done = subprocess.run(
        [sys.executable, "-c", _INTERRUPTED_IMPORT + entry],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=60,
        check=False,
    )
    assert done.returncode == 130, done.stderr
    assert done.stderr == "flinkey: interrupted\n" and done.stdout == ""
