"""Timestamps as the sandbox reads and writes them, independently of the SDK's converter.

On the wire a timestamp is ``yyyy-MM-ddTHH:mm:ssZ`` (UTC, whole seconds:
:data:`flinkey_async._wire.DATETIME_FORMAT`). Reading accepts any ISO-8601 form
``datetime.fromisoformat`` does (``Z``, offsets, fractions; no offset means UTC).
"""

from __future__ import annotations

from datetime import UTC, datetime

from .._wire import DATETIME_FORMAT

__all__ = [
    "TimestampOutOfRange",
    "format_optional",
    "format_timestamp",
    "parse_timestamp",
    "to_wire",
]


class TimestampOutOfRange(ValueError):
    """A timestamp that falls outside ``0001-01-01T00:00:00Z .. 9999-12-31T23:59:59Z`` once
    converted to UTC (``9999-12-31T23:59:59-05:00``, ``0001-01-01T00:00:00+05:00``)."""


def parse_timestamp(text: str) -> datetime:
    """An ISO-8601 timestamp (``datetime.fromisoformat``) as an aware UTC datetime; without an
    offset it is taken as UTC. Raises ``ValueError``: :class:`TimestampOutOfRange` when the
    value is not representable in UTC."""
    parsed = datetime.fromisoformat(text)
    zone = parsed.tzinfo
    if zone is UTC:
        return parsed
    if zone is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise TimestampOutOfRange(f"{text!r} is out of range in UTC") from None


def to_wire(value: datetime) -> datetime:
    """An aware datetime as the wire carries it: in UTC, whole seconds. Raises
    :class:`TimestampOutOfRange` when the value is not representable in UTC."""
    try:
        return value.astimezone(UTC).replace(microsecond=0)
    except OverflowError:
        raise TimestampOutOfRange(f"{value!r} is out of range in UTC") from None


def format_timestamp(value: datetime) -> str:
    """An aware datetime as ``yyyy-MM-ddTHH:mm:ssZ`` in UTC (sub-seconds truncated)."""
    if value.tzinfo is not UTC:
        value = to_wire(value)
    if value.year >= 1000:
        return value.strftime(DATETIME_FORMAT)
    # strftime does not pad %Y to four digits on every platform; isoformat does
    return value.replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


def format_optional(value: datetime | None) -> str | None:
    """:func:`format_timestamp`, or None for None (a JSON null)."""
    return None if value is None else format_timestamp(value)
