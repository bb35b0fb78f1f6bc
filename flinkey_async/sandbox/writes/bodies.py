"""Shape checks of JSON request bodies: valid JSON, field types, timestamps in range.

Every failure is a :class:`BodyError` whose text is the 400 answer. These checks know nothing
of a resource; the resource's own module (:mod:`.assignments`) says which fields it needs.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from ..._wire import MAX_ID
from .._timestamps import TimestampOutOfRange, parse_timestamp

__all__ = [
    "INT32",
    "RANGE_TEXT",
    "BodyError",
    "Refusal",
    "datetime_field",
    "int_field",
    "load_json",
    "parse_wire_timestamp",
]

#: The range of a JSON ``int32`` field.
INT32 = (-MAX_ID - 1, MAX_ID)
#: How a timestamp out of range is described.
RANGE_TEXT = "out of range (0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z in UTC)"


class BodyError(ValueError):
    """The request body has the wrong shape; ``str(error)`` is the 400 answer text."""


class Refusal(Exception):
    """A synchronous write that is not applied: answer ``status`` with the bare ``text``."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def load_json(body: bytes) -> Any:
    """The decoded body; ``NaN``/``Infinity`` are rejected like any invalid JSON."""
    try:
        return json.loads(body, parse_constant=_reject_constant)
    except RecursionError:
        raise BodyError("The request body is nested too deeply.") from None
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise BodyError(f"The request body is not valid JSON: {exc}.") from None


def int_field(data: dict[str, Any], key: str, *, nullable: bool) -> int | None:
    """A JSON integer field in the ``int32`` range (None when absent or null and
    ``nullable``)."""
    if key not in data or data[key] is None:
        if nullable:
            return None
        raise BodyError(f"The field '{key}' is required.")
    value = data[key]
    if type(value) is not int or not INT32[0] <= value <= INT32[1]:
        what = "a 32-bit integer or null" if nullable else "a 32-bit integer"
        raise BodyError(f"The field '{key}' must be {what}.")
    return value


def parse_wire_timestamp(value: str) -> datetime:
    """An ISO-8601 timestamp (``Z``/offset; none means UTC), truncated to whole seconds.

    Raises ``ValueError``; ``TimestampOutOfRange`` for a timestamp out of range once
    converted to UTC (such as ``9999-12-31T23:59:59-05:00``)."""
    return parse_timestamp(value).replace(microsecond=0)


def datetime_field(data: dict[str, Any], key: str, *, nullable: bool) -> datetime | None:
    """A date-time string field (None when absent or null and ``nullable``)."""
    if key not in data or data[key] is None:
        if nullable:
            return None
        raise BodyError(f"The field '{key}' is required.")
    value = data[key]
    if type(value) is str:
        try:
            return parse_wire_timestamp(value)
        except TimestampOutOfRange:
            raise BodyError(f"The field '{key}' is {RANGE_TEXT}.") from None
        except ValueError:
            pass
    what = "a date-time string (yyyy-MM-ddTHH:mm:ssZ)" + (" or null" if nullable else "")
    raise BodyError(f"The field '{key}' must be {what}.")
