"""``flinkey assignments reconcile FILE --car ...``: make the cars' assignments equal a file.

The file lists the desired assignments, as JSON (an array of objects), JSON lines (``.jsonl``,
one object per line) or CSV (a header row). Each item has ``car_id``, ``user_id``, ``start``
and optionally ``end``, ``lifetime`` and ``renewable_after`` (camelCase names are accepted
too: ``carId``, ``renewableAfter``); datetimes are ISO 8601 with a zone; empty CSV cells are
``null``. Only the cars given with ``--car`` are touched; items of other cars are an error.

``--dry-run`` prints the plan (one row per write, plus a summary on stderr) and sends nothing.
Otherwise the plan is applied and confirmed (with a progress bar on a terminal's stderr), one
row per write and its result is printed, and the exit status is 0 when every write succeeded,
1 when some failed or stayed unknown. ``--journal PATH`` makes a re-run after a crash exact
(see :mod:`flinkey_async.journal`).
"""

from __future__ import annotations

import csv
import inspect
import io
import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

from .._converter import format_datetime
from ..errors import FlinkeyError
from ..models.assignments import ASSIGNMENT_PATCH
from ..reconcile import DesiredAssignment, Plan, ReconcileReport
from ._connection import ConnectionOptions, connect, enable_debug
from ._errors import CliError, ExitCode, from_sdk_error, usage_error
from ._output import OutputFormat, emit, error_console, resolve_format
from ._parsing import DATETIME_HELP

__all__ = ["add_reconcile", "read_desired"]

_FIELDS = ("car_id", "user_id", "start", "end", "lifetime", "renewable_after")
_ALIASES = {"carId": "car_id", "userId": "user_id", "renewableAfter": "renewable_after"}
_COLUMNS = ("action", "result", "assignmentId", "carId", "userId", "start", "end", "change")
_PANEL = "Reconcile"


def _item(raw: Any, where: str) -> DesiredAssignment:
    if not isinstance(raw, dict):
        raise usage_error(f"{where}: expected an object with car_id, user_id and start")
    values: dict[str, Any] = {}
    for key, value in raw.items():
        name = _ALIASES.get(key, key)
        if name not in _FIELDS:
            raise usage_error(f"{where}: unknown field {key!r} (known: {', '.join(_FIELDS)})")
        values[name] = None if value == "" else value
    missing = [f for f in ("car_id", "user_id", "start") if values.get(f) is None]
    if missing:
        raise usage_error(f"{where}: missing {', '.join(missing)}")
    try:
        for name in ("car_id", "user_id", "lifetime", "renewable_after"):
            value = values.get(name)
            if isinstance(value, str):
                values[name] = int(value)
            elif value is not None and type(value) is not int:
                raise ValueError(f"{name} must be an integer, got {value!r}")
        for name in ("start", "end"):
            value = values.get(name)
            if value is not None:
                parsed = datetime.fromisoformat(str(value))
                if parsed.tzinfo is None:
                    raise ValueError(f"{name} {value!r} has no zone ({DATETIME_HELP})")
                values[name] = parsed
        return DesiredAssignment(**values)
    except (ValueError, TypeError) as exc:
        raise usage_error(f"{where}: {exc}") from None


def read_desired(path: Path) -> list[DesiredAssignment]:
    """The desired assignments of a JSON, JSON-lines or CSV file; a usage error (with the
    item's position) for anything malformed."""
    try:
        text = path.read_text(encoding="utf-8-sig")  # a BOM (spreadsheet exports) dropped
    except (OSError, UnicodeDecodeError) as exc:
        raise usage_error(f"cannot read {str(path)!r}: {exc}") from None
    suffix = path.suffix.lower()
    if suffix == ".csv":
        rows = list(csv.DictReader(io.StringIO(text)))
        return [_item(dict(row), f"{path.name} line {n}") for n, row in enumerate(rows, 2)]
    try:
        if suffix == ".jsonl":
            items = [
                (n, json.loads(line)) for n, line in enumerate(text.splitlines(), 1) if line.strip()
            ]
            return [_item(raw, f"{path.name} line {n}") for n, raw in items]
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise usage_error(f"{path.name} is not valid JSON: {exc}") from None
    if not isinstance(data, list):
        raise usage_error(f"{path.name}: expected a JSON array of assignments")
    return [_item(raw, f"{path.name} item {n}") for n, raw in enumerate(data, 1)]


def _when(value: Any) -> str | None:
    return None if value is None else format_datetime(value)


def _plan_rows(plan: Plan) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for e in plan.deletes:
        rows.append(_row("delete", None, e.id, e.car_id, e.user_id, e.start, e.end, None))
    for u in plan.updates:
        e = u.existing
        change = json.dumps(u.patch.to_body(ASSIGNMENT_PATCH), separators=(",", ":"))
        rows.append(_row("update", None, e.id, e.car_id, e.user_id, e.start, e.end, change))
    for d in plan.creates:
        rows.append(_row("create", None, None, d.car_id, d.user_id, d.start, d.end, None))
    return rows


def _row(
    action: str,
    result: str | None,
    assignment_id: int | None,
    car: int,
    user: int | None,
    start: Any,
    end: Any,
    change: str | None,
) -> dict[str, Any]:
    return {
        "action": action,
        "result": result,
        "assignmentId": assignment_id,
        "carId": car,
        "userId": user,
        "start": _when(start),
        "end": _when(end),
        "change": change,
    }


def _rounds(report: ReconcileReport) -> list[ReconcileReport]:
    return [*report.previous, report]


def _report_rows(report: ReconcileReport) -> list[dict[str, Any]]:
    """One row per write of every round (a write that failed or stayed unknown is planned
    again from a fresh read in the next round)."""
    rows: list[dict[str, Any]] = []
    for number, each in enumerate(_rounds(report), 1):
        for action, results in (
            ("delete", each.deleted),
            ("update", each.updated),
            ("create", each.created),
        ):
            for r in results:
                rows.append({"round": number, **_result_row(action, "succeeded", r)})
        for status, results in (("failed", each.failed), ("unknown", each.unknown)):
            for r in results:
                rows.append({"round": number, **_result_row(None, status, r)})
    return rows


def _result_row(action: str | None, status: str, result: Any) -> dict[str, Any]:
    item = result.item
    if hasattr(item, "existing"):  # an update
        action = action or "update"
        e = item.existing
        row = _row(action, status, e.id, e.car_id, e.user_id, e.start, e.end, None)
    elif hasattr(item, "id"):  # an existing assignment: a delete
        action = action or "delete"
        row = _row(action, status, item.id, item.car_id, item.user_id, item.start, item.end, None)
    else:
        action = action or "create"
        created = result.outcome.assignment_id if result.outcome is not None else None
        row = _row(action, status, created, item.car_id, item.user_id, item.start, item.end, None)
    if status != "succeeded":
        row["change"] = result.reason
    return row


def _summary(plan: Plan) -> str:
    return (
        f"plan: {len(plan.creates)} to create, {len(plan.updates)} to update, "
        f"{len(plan.deletes)} to delete, {len(plan.unchanged)} unchanged"
    )


async def _run(
    path: Path,
    cars: list[int],
    dry_run: bool,
    journal: Path | None,
    concurrency: int,
    timeout: float,  # noqa: ASYNC109 - per write, passed to reconcile()
    fmt: OutputFormat,
    options: ConnectionOptions,
) -> None:
    desired = read_desired(path)
    outside = sorted({d.car_id for d in desired} - set(cars))
    if outside:
        raise usage_error(
            f"{path.name} has assignments of cars not given with --car: "
            f"{', '.join(map(str, outside[:10]))}{' ...' if len(outside) > 10 else ''}"
        )
    console = error_console()
    async with connect(options) as connected:
        assignments = connected.client.assignments
        try:
            if dry_run:
                plan = await assignments.plan(desired, cars=cars, concurrency=concurrency)
                emit(_plan_rows(plan), fmt, columns=_COLUMNS, title="plan (nothing sent)")
                console.print(
                    _summary(plan) + " (dry run: nothing sent)", highlight=False, soft_wrap=True
                )
                return
            with Progress(
                *Progress.get_default_columns()[:1],
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
                transient=True,
                disable=not console.is_terminal,
            ) as progress:
                bar = progress.add_task("reconciling", total=None)

                def on_progress(done: int, total: int) -> None:
                    progress.update(bar, completed=done, total=total)

                report = await assignments.reconcile(
                    desired,
                    cars=cars,
                    concurrency=concurrency,
                    timeout=timeout,
                    on_progress=on_progress,
                    journal=journal,
                )
        except FlinkeyError as exc:
            raise from_sdk_error(exc, base_url=connected.base_url) from exc
    emit(_report_rows(report), fmt, columns=("round", *_COLUMNS), title="reconcile")
    stats, rounds = report.stats, _rounds(report)
    console.print(
        f"{_summary(rounds[0].plan)}; created {sum(len(r.created) for r in rounds)}, updated "
        f"{sum(len(r.updated) for r in rounds)}, deleted {sum(len(r.deleted) for r in rounds)}, "
        f"failed {len(report.failed)}, unknown {len(report.unknown)} "
        f"({len(rounds)} round{'s' if len(rounds) > 1 else ''}); {stats.requests} requests, "
        f"{stats.rate_limited} answered 429, {stats.retries} retries",
        highlight=False,
        soft_wrap=True,
    )
    if not report.ok:
        raise CliError(
            ExitCode.FAILURE,
            f"{len(report.failed)} writes failed and {len(report.unknown)} stayed unknown "
            "(see the rows above; running again reads afresh)",
        )


def _parameters(common: Callable[[str], list[inspect.Parameter]]) -> list[inspect.Parameter]:
    def option(name: str, annotation: Any, default: Any) -> inspect.Parameter:
        return inspect.Parameter(
            name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation
        )

    params = [
        inspect.Parameter(
            "file",
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            annotation=Annotated[
                Path,
                typer.Argument(
                    metavar="FILE",
                    help="the desired assignments: .json (array), .jsonl or .csv, with "
                    "car_id, user_id, start and optionally end, lifetime, renewable_after",
                    show_default=False,
                ),
            ],
        ),
        option(
            "car",
            Annotated[
                list[int],
                typer.Option(
                    "--car",
                    metavar="ID",
                    min=1,
                    help="a car to reconcile (repeat it); no other car is touched",
                    show_default=False,
                    rich_help_panel=_PANEL,
                ),
            ],
            ...,
        ),
        option(
            "dry_run",
            Annotated[
                bool,
                typer.Option(
                    "--dry-run",
                    metavar="",
                    help="print the plan and send nothing",
                    rich_help_panel=_PANEL,
                ),
            ],
            False,
        ),
        option(
            "journal",
            Annotated[
                Path | None,
                typer.Option(
                    "--journal",
                    metavar="PATH",
                    help="record every write in this file, so that a run after a crash "
                    "makes none twice",
                    show_default=False,
                    rich_help_panel=_PANEL,
                ),
            ],
            None,
        ),
        option(
            "concurrency",
            Annotated[
                int,
                typer.Option(
                    "--concurrency",
                    metavar="N",
                    min=1,
                    max=256,
                    help="writes in flight at most",
                    rich_help_panel=_PANEL,
                ),
            ],
            16,
        ),
        option(
            "timeout",
            Annotated[
                float,
                typer.Option(
                    "--timeout",
                    metavar="SECONDS",
                    min=0.1,
                    help="how long to wait for each write's confirmation",
                    rich_help_panel=_PANEL,
                ),
            ],
            60.0,
        ),
        *common("list"),
    ]
    return params


def add_reconcile(
    app: typer.Typer,
    run: Callable[[Callable[[], Any]], Any],
    common: Callable[[str], list[inspect.Parameter]],
) -> None:
    """Add ``reconcile`` to the assignments group's Typer app (``run`` runs a coroutine
    function the way every command does; ``common(kind)`` gives the options every command
    takes: output, connection, debug)."""

    def reconcile(**values: Any) -> None:
        if values.pop("debug", False):
            enable_debug()
        options = ConnectionOptions.pop_from(values)
        fmt = resolve_format(values.pop("output"))
        run(
            lambda: _run(
                values["file"],
                list(values["car"]),
                values["dry_run"],
                values["journal"],
                values["concurrency"],
                values["timeout"],
                fmt,
                options,
            )
        )

    reconcile.__signature__ = inspect.Signature(_parameters(common))  # type: ignore[attr-defined]
    reconcile.__doc__ = (
        "Make the cars' assignments equal a file: plan, apply, confirm, report "
        "(--dry-run: only plan)."
    )
    app.command(name="reconcile")(reconcile)
