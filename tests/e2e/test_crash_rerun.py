"""A reconcile process killed (SIGKILL) at three moments and run again ends in exactly the
desired state, with no duplicate: while reading, after flinkey accepted creates it had not
applied yet (between the 204 and the change), and midway through confirming. Without the
journal the second of those leaves duplicates (checked too: the journal is what makes it
exact)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from flinkey_async import DesiredAssignment
from flinkey_async.journal import FileJournal
from flinkey_async.sandbox import FaultConfig, RouteFaults, Sandbox, SandboxConfig

BASE = datetime(2032, 5, 1, tzinfo=UTC)
CARS = list(range(601, 611))
USERS = list(range(1001, 1007))
OTHER_CAR = 101
ROOT = Path(__file__).resolve().parents[2]


def seed(sandbox: Sandbox) -> list[DesiredAssignment]:
    """Cars with some matching, some differing, some stale assignments; the desired list."""
    store = sandbox.store
    desired: list[DesiredAssignment] = []
    for car in CARS:
        store.add_car(1, car, name=f"Car {car}")
        for slot in range(6):
            user = USERS[(car + slot) % len(USERS)]
            start = BASE + timedelta(days=slot, hours=car % 24)
            end = start + timedelta(days=2) if slot % 2 else None
            desired.append(DesiredAssignment(car, user, start, end))
            if slot == 0:
                store.add_assignment(car, user, start, end)  # matches
            elif slot == 1:
                store.add_assignment(car, user, start, start + timedelta(days=5))  # differs
        store.add_assignment(car, USERS[0], BASE - timedelta(days=40))  # stale
    return desired


def state(sandbox: Sandbox, cars: list[int]) -> Counter[tuple[object, ...]]:
    found: Counter[tuple[object, ...]] = Counter()
    for car in cars:
        for a in sandbox.store.assignments_for_car(car):
            found[(car, a.user_id, a.start, a.end)] += 1
    return found


def wanted(desired: list[DesiredAssignment]) -> Counter[tuple[object, ...]]:
    return Counter((d.car_id, d.user_id, d.start, d.end) for d in desired)


def write_desired(path: Path, desired: list[DesiredAssignment]) -> None:
    path.write_text(
        json.dumps(
            [
                {
                    "car_id": d.car_id,
                    "user_id": d.user_id,
                    "start": d.start.isoformat(),
                    "end": None if d.end is None else d.end.isoformat(),
                    "lifetime": d.lifetime,
                }
                for d in desired
            ]
        ),
        encoding="utf-8",
    )


def start_job(sandbox: Sandbox, desired: Path, journal: Path) -> subprocess.Popen[str]:
    assert sandbox.url is not None
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.e2e.reconcile_job",
            sandbox.url,
            sandbox.issue_token(),
            str(desired),
            str(journal),
            *map(str, CARS),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


async def finish(job: subprocess.Popen[str], limit: float = 60.0) -> dict[str, object]:
    """Wait (yielding to the sandbox's loop) for the job to end; its report."""
    deadline = time.monotonic() + limit
    while job.poll() is None:
        assert time.monotonic() < deadline, "the job did not finish in time"
        await asyncio.sleep(0.05)
    out, err = job.communicate()
    assert job.returncode == 0, err
    report: dict[str, object] = json.loads(out.strip().splitlines()[-1])
    return report


async def kill_when(
    job: subprocess.Popen[str], condition: Callable[[], bool], limit: float = 30.0
) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        if job.poll() is not None:
            out, err = job.communicate()
            raise AssertionError(f"the job ended before the moment: {out} {err}")
        assert time.monotonic() < deadline, "the moment never came"
        await asyncio.sleep(0.005)
    job.kill()
    job.communicate(timeout=10)  # reaped, and its pipes closed


def writes(sandbox: Sandbox) -> int:
    return sum(v for k, v in sandbox.request_counts.items() if not k.startswith("GET"))


def creates_sent(sandbox: Sandbox) -> int:
    return sandbox.request_counts.get("PUT /assignments", 0)


def journal_records(path: Path, record: str) -> int:
    if not path.exists():
        return 0
    return sum(1 for line in path.read_text().splitlines() if f'"record":"{record}"' in line)


MOMENTS = ["while-reading", "accepted-not-applied", "midway-confirming"]


@pytest.mark.parametrize("moment", MOMENTS)
async def test_a_killed_reconcile_run_again_ends_exact(moment: str, tmp_path: Path) -> None:
    config = SandboxConfig(write_delay=1.5 if moment == "accepted-not-applied" else 0.3, seed=3)
    async with Sandbox(config) as sandbox:
        desired = seed(sandbox)
        untouched = state(sandbox, [OTHER_CAR])
        before = state(sandbox, CARS)
        desired_file, journal = tmp_path / "desired.json", tmp_path / "journal.jsonl"
        write_desired(desired_file, desired)
        # Slow reads, so that each moment lasts long enough to be caught.
        sandbox.faults = FaultConfig(
            {"GET /cars/{carId}/assignments": RouteFaults(latency=(0.05, 0.1))}, seed=1
        )
        job = start_job(sandbox, desired_file, journal)
        if moment == "while-reading":
            await kill_when(
                job,
                lambda: sandbox.request_counts.get("GET /cars/{carId}/assignments", 0) >= 3,
            )
            assert writes(sandbox) == 0
        elif moment == "accepted-not-applied":
            await kill_when(job, lambda: creates_sent(sandbox) >= 6)
            # Accepted (204) but not applied: the store does not show a single create yet.
            assert state(sandbox, CARS) - before == Counter()
            assert FileJournal(journal).pending()  # left open by the killed run
        else:
            await kill_when(
                job,
                lambda: (
                    journal_records(journal, "settled") >= 4
                    and journal_records(journal, "sent") > journal_records(journal, "settled") + 2
                ),
            )
        sandbox.faults = None
        report = await finish(start_job(sandbox, desired_file, journal))
        await sandbox.drain()
        final = state(sandbox, CARS)
        assert report["ok"] is True
        assert final == wanted(desired)  # exact: every desired assignment once, nothing else
        assert max(final.values()) == 1
        assert state(sandbox, [OTHER_CAR]) == untouched
        assert FileJournal(journal).pending() == []  # everything settled


async def test_without_the_journal_a_rerun_after_accepted_creates_duplicates(
    tmp_path: Path,
) -> None:
    """The control: the same kill between the 204 and the change, and a re-run that reads
    afresh without the journal, creates the accepted assignments a second time."""
    async with Sandbox(SandboxConfig(write_delay=1.5, seed=3)) as sandbox:
        desired = seed(sandbox)
        desired_file = tmp_path / "desired.json"
        write_desired(desired_file, desired)
        job = start_job(sandbox, desired_file, tmp_path / "first.jsonl")
        await kill_when(job, lambda: creates_sent(sandbox) >= 6)
        # A fresh journal: the re-run knows nothing of what the first run sent.
        await finish(start_job(sandbox, desired_file, tmp_path / "second.jsonl"))
        await sandbox.drain()
        final = state(sandbox, CARS)
    assert max(final.values()) >= 2  # duplicates
