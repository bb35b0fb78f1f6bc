"""Client-side argument checks shared by every resource (pure; each failure raises
:class:`~flinkey_async.errors.ValidationError`, which is also a ``ValueError``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ._converter import format_datetime, wire_datetime
from ._wire import MAX_ID
from .errors import ValidationError

__all__ = ["MAX_ID", "check_aware", "check_id", "check_window"]


def check_id(value: Any, argument: str) -> int:
    """A database id: an ``int`` (not ``bool``) from 1 to :data:`MAX_ID` (``int32``, as
    documented)."""
    if type(value) is not int:
        raise ValidationError(argument, f"must be an int id, got {type(value).__name__} {value!r}")
    if not 0 < value <= MAX_ID:
        raise ValidationError(
            argument, f"must be a positive id of at most {MAX_ID} (int32), got {value}"
        )
    return value


def check_aware(value: Any, argument: str) -> datetime:
    """A timezone-aware ``datetime``."""
    if not isinstance(value, datetime):
        raise ValidationError(argument, f"must be a datetime, got {type(value).__name__}")
    if value.utcoffset() is None:
        raise ValidationError(
            argument, "naive datetime: give it a timezone, e.g. datetime(..., tzinfo=UTC)"
        )
    return value


def check_window(start: datetime | None, end: datetime | None) -> None:
    """``end`` (when given) must be after ``start``, compared as they are sent: in UTC, whole
    seconds (so a change of daylight saving time, or of zone, between the two cannot fool
    the comparison). The message shows the compared values."""
    if start is None or end is None:
        return
    sent_start = wire_datetime(start, "start")
    sent_end = wire_datetime(end, "end")
    if sent_end <= sent_start:
        raise ValidationError(
            "end",
            f"must be after start (as sent, in UTC and whole seconds: end "
            f"{format_datetime(sent_end)} is not after start {format_datetime(sent_start)})",
        )
