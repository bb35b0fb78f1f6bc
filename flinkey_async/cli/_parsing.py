"""Parsing the values of options: datetimes with a zone, ``--orderby``, ``--set``, and the
sandbox's probabilities and latency ranges. Each raises ``typer.BadParameter`` (exit status 2)
with a message that says what to type instead."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import typer

from ..patch import JsonPatch, pointer
from ..patch_schema import PatchSchema, ValueKind
from ._errors import usage_error

__all__ = [
    "DATETIME_HELP",
    "aware_datetime",
    "build_patch",
    "orderby_key",
    "probability",
    "seconds_range",
]

#: How datetimes are written, for help texts.
DATETIME_HELP = "ISO 8601 with a zone, e.g. 2026-03-01T08:00:00Z or 2026-03-01T09:00:00+01:00"

_DIRECTIONS = {"asc": False, "desc": True}


def _with_utc(text: str) -> str:
    """``text`` (a datetime without a zone) in UTC, as a value that is accepted: ``Z``
    appended, or for a date alone (which takes no zone) its midnight."""
    suggestion = text.strip() + "Z"
    try:
        datetime.fromisoformat(suggestion)
    except ValueError:
        return datetime.fromisoformat(text.strip()).isoformat() + "Z"
    return suggestion


def _datetime(text: str) -> datetime:
    """An aware datetime, or ``ValueError`` saying what is wrong."""
    if not text.strip():
        raise ValueError(f"is empty: give a datetime, {DATETIME_HELP}")
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not a datetime: {DATETIME_HELP}") from None
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(
            f"{text!r} has no timezone: add Z (UTC) or an offset, e.g. {_with_utc(text)}"
        )
    return value


def aware_datetime(text: str) -> datetime:
    """Parser of datetime options: ISO 8601 with ``Z`` or an offset."""
    try:
        return _datetime(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def orderby_key(text: str) -> tuple[str, bool]:
    """``FIELD[:asc|desc]`` as ``(field, descending)``; any other direction is an error."""
    field, sep, direction = text.partition(":")
    field = field.strip()
    if not field:
        raise usage_error(f"--orderby {text!r}: give a field name, e.g. start or start:desc")
    if not sep:
        return field, False
    key = direction.strip().lower()
    if key not in _DIRECTIONS:
        raise usage_error(
            f"--orderby {text!r}: the direction must be asc or desc, got {direction!r}"
        )
    return field, _DIRECTIONS[key]


def _patch_value(schema: PatchSchema, path: str, raw: str, item: str) -> Any:
    field = schema.field(pointer(path), path)  # an unknown path: ValidationError, exit 2
    if not raw.strip():
        raise usage_error(
            f"--set {item!r} has no value: write PATH=VALUE, PATH=null to clear it, or "
            f"--remove {path.lstrip('/')}"
        )
    if raw.strip().lower() == "null":
        return None
    if field.kind is ValueKind.DATETIME:
        try:
            return _datetime(raw)
        except ValueError as exc:
            raise usage_error(f"--set {item!r}: {exc}") from None
    if field.kind in (ValueKind.ID, ValueKind.SECONDS):
        try:
            return int(raw.strip())
        except ValueError:
            what = "an id" if field.kind is ValueKind.ID else "a whole number of seconds"
            raise usage_error(f"--set {item!r}: {path} takes {what}, got {raw!r}") from None
    return raw


def build_patch(schema: PatchSchema, sets: list[str], removes: list[str]) -> JsonPatch:
    """A :class:`JsonPatch` from ``--set PATH=VALUE`` and ``--remove PATH`` options (paths with
    or without the leading ``/``, in either spelling: ``renewableAfter`` or
    ``renewable_after``)."""
    if not sets and not removes:
        raise usage_error(
            "nothing to change: give --set PATH=VALUE or --remove PATH (paths: "
            + ", ".join(p.lstrip("/") for p in schema.pointers)
            + ")"
        )
    patch = JsonPatch(schema=schema)
    for item in sets:
        path, sep, raw = item.partition("=")
        if not sep or not path.strip():
            raise usage_error(
                f"--set takes PATH=VALUE, e.g. end=2026-04-01T00:00:00Z; got {item!r}"
            )
        path = "/" + path.strip().lstrip("/")
        patch = patch.replace(path, _patch_value(schema, path, raw, item))
    for path in removes:
        if not path.strip():
            raise usage_error("--remove takes a path, e.g. --remove end")
        patch = patch.remove("/" + path.strip().lstrip("/"))
    return patch


def probability(text: str) -> float:
    """A probability, 0 to 1."""
    try:
        value = float(text)
    except ValueError:
        raise typer.BadParameter(f"expected a probability between 0 and 1, got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise typer.BadParameter(f"must be between 0 and 1, got {text}")
    return value


def seconds_range(text: str) -> tuple[float, float]:
    """``LOW,HIGH`` seconds (``LOW`` alone: exactly that)."""
    low, _, high = text.partition(",")
    try:
        pair = (float(low), float(high or low))
    except ValueError:
        raise typer.BadParameter(f"expected LOW,HIGH seconds, got {text!r}") from None
    if not all(math.isfinite(v) for v in pair):
        raise typer.BadParameter(f"expected finite LOW,HIGH seconds, got {text!r}")
    if pair[0] < 0 or pair[1] < pair[0]:
        raise typer.BadParameter(f"expected 0 <= LOW <= HIGH, got {text!r}")
    return pair
