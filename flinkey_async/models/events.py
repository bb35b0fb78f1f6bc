"""Events: a car was opened or closed (``GET /cars/{carId}/events``, ``GET /events/{eventId}``).

flinkey warns that a car's events should *always* be limited with OData: the SDK never asks for
them unbounded (:data:`DEFAULT_EVENTS_TOP` when a query sets no ``$top``; the iterator pages).

The ``Event`` schema has two timestamps. ``utcDateTime`` is UTC; the zone of ``dateTime`` is
not documented (probably the car's local time), so the SDK does not assume one: see
:attr:`Event.date_time`. The schema of ``GET /events/{eventId}`` is not in the available pages;
the SDK takes it to be the same ``Event`` (an inference).
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import attrs

from .._converter import STRUCTURE_WITH, known_or_str

__all__ = ["DEFAULT_EVENTS_TOP", "Event", "EventType", "local_datetime"]

#: ``$top`` sent by :meth:`~flinkey_async.resources.cars.Cars.events` when the
#: caller's query sets none (flinkey: always limit events).
DEFAULT_EVENTS_TOP = 100


class EventType(enum.StrEnum):
    """The documented values of ``Event.type``."""

    CAR_OPENED = "CarOpened"
    CAR_CLOSED = "CarClosed"


def local_datetime(value: Any) -> datetime:
    """``dateTime`` as sent: parsed, but its zone is not assumed. A timestamp with an offset
    (``Z`` included) is aware, its offset kept; one without is **naive** (the zone is not
    documented, so the SDK does not pretend it is UTC)."""
    if type(value) is not str:
        raise TypeError(f"expected an ISO-8601 string, got {type(value).__name__}")
    return datetime.fromisoformat(value)


@attrs.frozen
class Event:
    """A car was opened or closed (the documented ``Event`` schema).

    Attributes:
        date_time: ``dateTime`` as flinkey sends it, zone not documented: naive when it comes
            without an offset (probably the car's local time), aware with its own offset
            otherwise; never converted (see :func:`local_datetime`).
        utc_date_time: ``utcDateTime``, aware, in UTC.
        type: an :class:`EventType`, or the plain string of a value flinkey added later.
        latitude, longitude: where it happened, when known.
    """

    id: int
    date_time: datetime = attrs.field(metadata={STRUCTURE_WITH: local_datetime})
    utc_date_time: datetime
    user_id: int
    car_id: int
    type: EventType | str = attrs.field(metadata={STRUCTURE_WITH: known_or_str(EventType)})
    user_agent: str
    latitude: float | None
    longitude: float | None
