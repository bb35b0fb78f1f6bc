"""ISO-8601 timestamps as the sandbox reads them, independently of the SDK's converter."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["TimestampOutOfRange", "parse_timestamp"]


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
