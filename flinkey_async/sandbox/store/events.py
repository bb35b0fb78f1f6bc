"""Events: the ``Event`` schema of ``GET /cars/{carId}/events`` and ``GET /events/{eventId}``
(the reference has no schema for the latter; the sandbox answers the same shape).

``dateTime`` is kept as its text: its zone is not documented, and the sandbox sends it the way
it was stored (the bundled fixture: the car's local time, without an offset); ``utcDateTime``
is UTC.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

import attrs

from .._timestamps import format_timestamp
from ..odata_eval import DATETIME, FLOAT, INT, STR, EntitySchema

__all__ = ["CAR_CLOSED", "CAR_OPENED", "EVENT_SCHEMA", "Event", "event_wire"]

CAR_OPENED: Final = "CarOpened"
CAR_CLOSED: Final = "CarClosed"


@attrs.frozen
class Event:
    """A car was opened or closed (the ``Event`` schema plus its owner's ``customer_id``)."""

    id: int
    customer_id: int
    car_id: int
    user_id: int
    date_time: str
    utc_date_time: datetime
    type: str = CAR_OPENED
    user_agent: str = "flinkey-sandbox"
    latitude: float | None = None
    longitude: float | None = None


#: The wire shape of an event, for the OData evaluator.
EVENT_SCHEMA = EntitySchema(
    "Event",
    {
        "id": INT,
        "dateTime": DATETIME,
        "utcDateTime": DATETIME,
        "userId": INT,
        "carId": INT,
        "type": STR,
        "userAgent": STR,
        "latitude": FLOAT,
        "longitude": FLOAT,
    },
)


def event_wire(event: Event) -> dict[str, Any]:
    """The ``Event`` schema."""
    return {
        "id": event.id,
        "dateTime": event.date_time,
        "utcDateTime": format_timestamp(event.utc_date_time),
        "userId": event.user_id,
        "carId": event.car_id,
        "type": event.type,
        "userAgent": event.user_agent,
        "latitude": event.latitude,
        "longitude": event.longitude,
    }
