"""Events: ``GET /events/{eventId}`` (a car's events are
:meth:`~flinkey_async.resources.cars.Cars.events`; a customer-wide events list is not
documented)."""

from __future__ import annotations

from .._validate import check_id
from ..models.events import Event
from ..odata import Query
from ._base import Resource

__all__ = ["Events"]


class Events(Resource):
    """``client.events``: one event by id."""

    async def get(self, event_id: int, *, query: Query | None = None) -> Event:
        """One event (``GET /events/{eventId}``). Its schema is not in the available
        documentation; the SDK takes it to be the ``Event`` of a car's events list."""
        check_id(event_id, "event_id")
        query = self._checked_query(query, Event, "events")
        result: Event = await self._get(("events", event_id), Event, query)
        return result
