"""``flinkey assignments reconcile FILE --car ...`` in a subprocess against a sandbox of the
test: the dry run prints the plan and sends nothing; the run makes the cars exact, prints one
row per write and exits 0; refused writes exit 1; malformed files and cars outside ``--car``
are usage errors (exit 2) with the item's position; a second run has nothing to do."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import shutil
import sysconfig
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from flinkey_async.sandbox import Sandbox, SandboxConfig

BASE = datetime(2033, 2, 1, 8, tzinfo=UTC)
CARS = [701, 702, 703]
FLINKEY = shutil.which("flinkey", path=sysconfig.get_path("scripts")) or shutil.which("flinkey")


async def run(sandbox: Sandbox, *args: str) -> tuple[int, str, str]:
    assert FLINKEY is not None and sandbox.url is not None
    env = {
        **os.environ,
        "FLINKEY_BASE_URL": sandbox.url,
        "FLINKEY_API_KEY": sandbox.config.api_key,
        "FLINKEY_TOKEN": sandbox.issue_token(),
        "FLINKEY_CUSTOMER_ID": "1",
    }
    process = await asyncio.create_subprocess_exec(
        FLINKEY,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def seed(sandbox: Sandbox) -> list[dict[str, Any]]:
    """Each car: one matching, one differing in end, one stale; the desired list (4 per car)."""
    desired: list[dict[str, Any]] = []
    for car in CARS:
        sandbox.store.add_car(1, car, name=f"Car {car}")
        for slot in range(4):
            start = BASE + timedelta(days=slot)
            end = start + timedelta(days=1)
            desired.append(
                {"car_id": car, "user_id": 1001 + slot, "start": start.isoformat(), "end": None}
                if slot == 3
                else {
                    "carId": car,
                    "userId": 1001 + slot,
                    "start": start.isoformat(),
                    "end": end.isoformat(),
                }
            )
            if slot == 0:
                sandbox.store.add_assignment(car, 1001, start, end)
            elif slot == 1:
                sandbox.store.add_assignment(car, 1002, start, end + timedelta(days=3))
        sandbox.store.add_assignment(car, 1009, BASE - timedelta(days=20))
    return desired


def state(sandbox: Sandbox) -> Counter[tuple[object, ...]]:
    return Counter(
        (car, a.user_id, a.start, a.end)
        for car in CARS
        for a in sandbox.store.assignments_for_car(car)
    )


def car_args() -> list[str]:
    return [arg for car in CARS for arg in ("--car", str(car))]


async def test_dry_run_then_run_then_nothing_left(tmp_path: Path) -> None:
    async with Sandbox(SandboxConfig(write_delay=0.02)) as sandbox:
        desired = seed(sandbox)
        path = tmp_path / "desired.json"
        path.write_text(json.dumps(desired))
        before = state(sandbox)

        code, out, err = await run(
            sandbox, "assignments", "reconcile", str(path), *car_args(), "--dry-run", "-o", "json"
        )
        assert code == 0, err
        rows = json.loads(out)
        assert Counter(r["action"] for r in rows) == {"create": 6, "update": 3, "delete": 3}
        assert "plan: 6 to create, 3 to update, 3 to delete, 3 unchanged" in err
        assert "nothing sent" in err
        await sandbox.drain()
        assert state(sandbox) == before  # nothing sent
        assert all(not k.startswith(("PUT", "PATCH", "DELETE")) for k in sandbox.request_counts)

        journal = tmp_path / "journal.jsonl"
        code, out, err = await run(
            sandbox,
            "assignments",
            "reconcile",
            str(path),
            *car_args(),
            "--journal",
            str(journal),
            "-o",
            "csv",
        )
        assert code == 0, err
        rows = list(csv.DictReader(io.StringIO(out)))
        assert Counter((r["action"], r["result"]) for r in rows) == {
            ("create", "succeeded"): 6,
            ("update", "succeeded"): 3,
            ("delete", "succeeded"): 3,
        }
        assert all(r["assignmentId"] for r in rows)  # creates show the id flinkey gave
        assert "created 6, updated 3, deleted 3, failed 0, unknown 0" in err
        await sandbox.drain()
        final = state(sandbox)
        assert final == Counter(
            (
                d.get("car_id", d.get("carId")),
                d.get("user_id", d.get("userId")),
                datetime.fromisoformat(d["start"]),
                None if d["end"] is None else datetime.fromisoformat(d["end"]),
            )
            for d in desired
        )
        assert journal.read_text().count('"record":"settled"') == 12

        code, out, err = await run(
            sandbox, "assignments", "reconcile", str(path), *car_args(), "-o", "json"
        )
        assert code == 0, err
        assert json.loads(out) == []
        assert "0 to create, 0 to update, 0 to delete, 12 unchanged" in err


async def test_refused_writes_exit_1_with_flinkey_s_reason(tmp_path: Path) -> None:
    """With --sandbox, writes are confirmed by webhook, which carries flinkey's verdict: the
    create for an unknown user fails (in every round) with flinkey's message."""
    path = tmp_path / "desired.csv"
    start = datetime(2030, 6, 1, 8, tzinfo=UTC).isoformat()
    existing = "".join(  # keep car 101's assignments, so that only the two rows below change
        f"101,{a['userId']},{a['start']},{a['end'] or ''}\n" for a in await bundled_car_101()
    )
    path.write_text(f"car_id,user_id,start,end\n{existing}101,1012,{start},\n101,999999,{start},\n")
    assert FLINKEY is not None
    process = await asyncio.create_subprocess_exec(
        FLINKEY,
        "assignments",
        "reconcile",
        str(path),
        "--car",
        "101",
        "--sandbox",
        "-o",
        "json",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 90)
    assert process.returncode == 1, err.decode()
    rows = json.loads(out)
    assert [(r["round"], r["result"]) for r in rows if r["userId"] == 1012] == [(1, "succeeded")]
    failed = [r for r in rows if r["userId"] == 999999]
    assert [r["round"] for r in failed] == [1, 2, 3]  # planned again from a fresh read
    assert all(r["result"] == "failed" and "Unable to find an user" in r["change"] for r in failed)
    assert err.decode().strip().splitlines()[-1].startswith("flinkey: 1 writes failed")


async def bundled_car_101() -> list[dict[str, Any]]:
    """Car 101's assignments in the bundled sandbox data."""
    async with Sandbox(SandboxConfig()) as sandbox:
        return [
            {
                "userId": a.user_id,
                "start": a.start.isoformat(),
                "end": None if a.end is None else a.end.isoformat(),
            }
            for a in sandbox.store.assignments_for_car(101)
        ]


async def test_bad_files_and_cars_outside_the_job_are_usage_errors(tmp_path: Path) -> None:
    start = BASE.isoformat()
    cases = {
        "missing.json": (None, "cannot read"),
        "broken.json": ("[{", "not valid JSON"),
        "object.json": ('{"car_id": 701}', "expected a JSON array"),
        "field.json": (
            json.dumps([{"car_id": 701, "user_id": 1, "start": start, "x": 1}]),
            "item 1: unknown field 'x'",
        ),
        "naive.jsonl": (
            '{"car_id": 701, "user_id": 1, "start": "2033-01-01T08:00:00"}\n',
            "line 1: start",
        ),
        "missing.csv": ("car_id,user_id\n701,1\n", "line 2: missing start"),
        "outside.json": (
            json.dumps([{"car_id": 799, "user_id": 1, "start": start}]),
            "cars not given with --car: 799",
        ),
    }
    async with Sandbox(SandboxConfig()) as sandbox:
        for name, (content, message) in cases.items():
            path = tmp_path / name
            if content is not None:
                path.write_text(content)
            code, out, err = await run(
                sandbox, "assignments", "reconcile", str(path), "--car", "701"
            )
            assert code == 2, (name, err)
            assert message in err, (name, err)
            assert out == ""
        assert all(not k.startswith(("PUT", "PATCH", "DELETE")) for k in sandbox.request_counts)
