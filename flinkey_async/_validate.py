"""Client-side argument checks shared by every resource (pure; each failure raises
:class:`~flinkey_async.errors.ValidationError`, which is also a ``ValueError``)."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any, Literal

from ._converter import format_datetime, wire_datetime
from ._wire import MAX_ID
from .errors import ValidationError

__all__ = ["MAX_ID", "check_aware", "check_id", "check_seconds", "check_window"]


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


def check_seconds(
    value: Any,
    argument: str,
    *,
    low: Literal[">=0", ">0", "any"] = ">=0",
    finite: bool = True,
    optional: bool = False,
    wrong_type: type[Exception] = ValidationError,
) -> Any:
    """A number of seconds: an ``int`` or ``float`` (not a ``bool``, not NaN), ``>= 0`` (``low``
    ``">0"``: above zero; ``"any"``: no bound), finite unless ``finite=False``; ``None`` too
    when ``optional``. A value of another type raises ``wrong_type`` (``TypeError`` where the
    parameter's type says so; a ``bool`` is always a :class:`ValidationError`), any other
    problem :class:`ValidationError`."""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        if wrong_type is TypeError and not isinstance(value, bool):
            raise TypeError(f"{argument} must be a number of seconds, got {type(value).__name__}")
        raise ValidationError(argument, f"must be a number of seconds, got {value!r}")
    bounded = {">=0": value >= 0, ">0": value > 0, "any": value == value}[low]  # NaN: False
    if not bounded or (finite and math.isinf(value)):
        bound = {">=0": " >= 0", ">0": " > 0", "any": ""}[low]
        kind = "a finite number" if finite else "a number"
        raise ValidationError(argument, f"must be {kind} of seconds{bound}, got {value!r}")
    return value
