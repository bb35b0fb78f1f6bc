"""The ``flinkey`` command line: sandbox server in a second process, demo, assignments."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from flinkey_async import FlinkeyClient
from flinkey_async.cli import main


@pytest.fixture
def sandbox_process() -> Iterator[tuple[subprocess.Popen[str], str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "flinkey_async", "sandbox", "--port", "0", "--write-delay", "0.01"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()
    assert first.startswith("flinkey sandbox listening on http://127.0.0.1:"), first
    url = first.rsplit(" ", 1)[1].strip()
    try:
        yield proc, url
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)  # reaps the process and closes both pipes


async def test_sandbox_command_serves_a_second_process_and_stops_on_ctrl_c(
    sandbox_process: tuple[subprocess.Popen[str], str],
) -> None:
    proc, url = sandbox_process
    async with FlinkeyClient(
        "sandbox-api-key",
        1,
        username="manager@example.com",
        password="sandbox-password",
        base_url=url,
    ) as client:
        assert (await client.assignments.get(50001)).car_id == 101
        op = await client.assignments.create(
            car_id=101, user_id=1001, start=datetime(2031, 1, 1, tzinfo=UTC)
        )
        outcome = await op.wait(timeout=10)  # no receiver: observed by polling
        assert outcome.assignment_id is not None and outcome.confirmed is False
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert "flinkey sandbox stopped" in out
    assert "Traceback" not in err


def test_sandbox_help_documents_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["sandbox", "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    for option in (
        "--host",
        "--port",
        "--fixture",
        "--empty",
        "--api-key",
        "--username",
        "--password",
        "--token-lifetime",
        "--write-delay",
        "--webhook-url",
        "--webhook-secret",
        "--rate-limit",
        "--rate-window",
        "--max-body-bytes",
        "--fault-429",
        "--fault-500",
        "--fault-reset",
        "--latency",
        "--webhook-delay",
        "--webhook-duplicate",
        "--webhook-drop",
        "--seed",
    ):
        assert option in text


def test_python_dash_m_form_has_help() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "flinkey_async", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0
    assert "sandbox" in result.stdout and "demo" in result.stdout


def test_invalid_probability_is_rejected(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["sandbox", "--fault-429", "1.5"])
    assert info.value.code == 2
    assert "between 0 and 1" in capsys.readouterr().err


def test_demo_runs_end_to_end() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "flinkey_async", "demo"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "confirmed by webhook: assignment" in out
    assert "OperationFailedError: Unable to find an user" in out
    assert "ValidationError: start: naive datetime" in out
    assert "NotFoundError: Unable to find an assignment" in out
    assert "4 webhook events received" in out


def test_assignments_commands_against_the_sandbox(
    sandbox_process: tuple[subprocess.Popen[str], str],
) -> None:
    _, url = sandbox_process
    env = {
        **os.environ,
        "FLINKEY_API_KEY": "sandbox-api-key",
        "FLINKEY_CUSTOMER_ID": "1",
        "FLINKEY_USERNAME": "manager@example.com",
        "FLINKEY_PASSWORD": "sandbox-password",
        "FLINKEY_BASE_URL": url,
    }

    def flinkey(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "flinkey_async", "assignments", *args],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            check=False,
        )

    got = flinkey("get", "50001")
    assert got.returncode == 0 and '"carId": 101' in got.stdout
    listed = flinkey("list-for-car", "101", "--orderby", "start:desc", "--top", "1")
    assert listed.returncode == 0 and listed.stdout.count('"id"') == 1
    missing = flinkey("get", "999999")
    assert missing.returncode == 2
    assert "Unable to find an assignment for the given assignmentId." in missing.stderr
    assert "sandbox-password" not in missing.stderr
    naive = flinkey("create", "--car", "101", "--user", "1001", "--start", "2030-01-01T08:00:00")
    assert naive.returncode == 2 and "no timezone" in naive.stderr
    updated = flinkey(
        "update", "50001", "--set", "lifetime=1209600", "--remove", "end", "--wait", "10"
    )
    assert updated.returncode == 0, updated.stderr
    assert "accepted: update of assignment 50001" in updated.stdout
    assert '"lifetime": 1209600' in flinkey("get", "50001").stdout
