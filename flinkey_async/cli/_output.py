"""What commands print: JSON, CSV or a Rich table on stdout; progress on stderr.

``--output`` defaults to ``table`` when stdout is a terminal and to ``json`` otherwise, so that
``flinkey ... | jq`` needs no option. Values are the wire's (camelCase keys, datetimes as
``2026-03-01T08:00:00Z``); a table or CSV cell holding an object or a list shows it as
compact JSON. Progress (``--wait``, ``--all``) is drawn on stderr, only when stderr is a
terminal.
"""

from __future__ import annotations

import asyncio
import csv
import enum
import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

import attrs
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from .._converter import wire_name
from ..auth import Secret

__all__ = [
    "OutputFormat",
    "to_data",
    "emit",
    "error_console",
    "iterate_with_progress",
    "resolve_format",
    "wait_with_progress",
]

T = TypeVar("T")


class OutputFormat(enum.StrEnum):
    """``--output``: how data is printed."""

    table = "table"
    json = "json"
    csv = "csv"


def to_data(value: Any) -> Any:
    """A model (or a list of them) as printed: wire names, datetimes as the wire writes them
    (``2026-03-01T08:00:00Z``; one with another offset, or none, as it came), secrets as
    ``***``.

    Not :func:`flinkey_async._converter.unstructure`, which writes request bodies: it rejects
    the naive ``dateTime`` of an event, and reveals what a body must carry.
    """
    if value is None or isinstance(value, bool | int | float | str):
        return value.value if isinstance(value, enum.Enum) else value
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime):
        if value.utcoffset() == timedelta(0):
            return value.replace(tzinfo=None, microsecond=0).isoformat() + "Z"
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if attrs.has(type(value)):
        return {wire_name(a): to_data(getattr(value, a.name)) for a in attrs.fields(type(value))}
    if isinstance(value, Mapping):
        return {str(k): to_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_data(v) for v in value]
    if isinstance(value, Secret):
        return "***"
    return str(value)


def resolve_format(value: OutputFormat | None) -> OutputFormat:
    """The format asked for, else ``table`` on a terminal and ``json`` in a pipe or file."""
    if value is not None:
        return value
    return OutputFormat.table if sys.stdout.isatty() else OutputFormat.json


def error_console() -> Console:
    """The console of progress displays and warnings (stderr)."""
    return Console(stderr=True, highlight=False)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping | list | tuple):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)


def _columns(rows: list[Mapping[str, Any]], known: Sequence[str]) -> list[str]:
    columns: dict[str, None] = dict.fromkeys(known)
    for row in rows:
        columns.update(dict.fromkeys(row))
    return list(columns)


def emit(
    data: Any, fmt: OutputFormat, *, columns: Sequence[str] = (), title: str | None = None
) -> None:
    """Print ``data`` (a JSON-able mapping, or a list of them) in ``fmt`` on stdout; the
    ``columns`` of a table or CSV are ``columns`` (the model's fields, so that an empty list
    still has its header), then any other key of the rows."""
    if fmt is OutputFormat.json:
        sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
        sys.stdout.flush()
        return
    rows: list[Mapping[str, Any]] = data if isinstance(data, list) else [data]
    columns = _columns(rows, columns)
    if fmt is OutputFormat.csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_cell(row.get(c)) for c in columns])
        sys.stdout.flush()
        return
    console = Console(highlight=False, soft_wrap=False)
    if isinstance(data, list):
        table = Table(title=title, caption=f"{len(rows)} item{'s' if len(rows) != 1 else ''}")
        for column in columns:
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(*(Text(_cell(row.get(c))) for c in columns))
    else:
        table = Table(title=title, show_header=False)
        table.add_column("field", style="bold")
        table.add_column("value", overflow="fold")
        for key in columns:
            table.add_row(Text(key), Text(_cell(data.get(key))))
    console.print(table)


async def wait_with_progress(awaitable: Awaitable[T], description: str, total: float | None) -> T:
    """Await ``awaitable``, with a bar of the time waited (of ``total`` seconds) on a
    terminal's stderr."""
    task = asyncio.ensure_future(awaitable)
    console = error_console()
    try:
        if not console.is_terminal:
            return await task
        loop = asyncio.get_running_loop()
        began = loop.time()
        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
            auto_refresh=False,
        ) as progress:
            bar = progress.add_task(description, total=total)
            while not task.done():
                await asyncio.wait({task}, timeout=0.1)
                progress.update(bar, completed=loop.time() - began)
                progress.refresh()
        return task.result()
    finally:
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def iterate_with_progress(
    items: AsyncIterator[T], description: str, convert: Callable[[T], Any]
) -> list[Any]:
    """Every item of ``items`` (converted), counting them on a terminal's stderr."""
    console = error_console()
    result: list[Any] = []
    if not console.is_terminal:
        async for item in items:
            result.append(convert(item))
        return result
    loop = asyncio.get_running_loop()
    shown = 0.0
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}: {task.completed} so far"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        auto_refresh=False,
    ) as progress:
        counter = progress.add_task(description, total=None)
        async for item in items:
            result.append(convert(item))
            if loop.time() - shown >= 0.1:
                shown = loop.time()
                progress.update(counter, completed=len(result))
                progress.refresh()
    return result
