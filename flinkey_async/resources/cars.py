"""Cars: ``GET /cars``, ``GET /cars/{carId}``, and the car's events ``GET /cars/{carId}/events``
(a car's assignments are :meth:`~flinkey_async.resources.assignments.Assignments.list_for_car`)."""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator

from .._validate import check_id
from ..models.cars import Car
from ..models.events import DEFAULT_EVENTS_TOP, Event
from ..odata import Query
from ._base import Resource

__all__ = ["Cars"]


class Cars(Resource):
    """``client.cars``: the customer's cars, and what happened to them (events).

    Lists take an OData :class:`~flinkey_async.Query` checked against the model's fields
    (:class:`~flinkey_async.models.cars.Car`, :class:`~flinkey_async.models.events.Event`).
    """

    async def list(self, *, query: Query | None = None) -> builtins.list[Car]:
        """The customer's cars (``GET /cars``), OData ``query`` applied by the server."""
        query = self._checked_query(query, Car, "cars")
        result: builtins.list[Car] = await self._get(("cars",), list[Car], query)
        return result

    async def get(self, car_id: int, *, query: Query | None = None) -> Car:
        """One car (``GET /cars/{carId}``); :class:`~flinkey_async.errors.NotFoundError` for a
        car the customer does not have."""
        check_id(car_id, "car_id")
        query = self._checked_query(query, Car, "cars")
        result: Car = await self._get(("cars", car_id), Car, query)
        return result

    def iter(self, *, query: Query | None = None, page_size: int = 100) -> AsyncIterator[Car]:
        """All of the customer's cars, fetched lazily ``page_size`` at a time
        (``$skip``/``$top``; the query's own ``$top`` is an overall limit)."""
        query = self._checked_query(query, Car, "cars")
        return self._iterate(("cars",), Car, query, page_size)

    async def events(self, car_id: int, *, query: Query | None = None) -> builtins.list[Event]:
        """The car's events (``GET /cars/{carId}/events``), at most one bounded page.

        flinkey warns to *always* limit events with OData: a ``query`` without ``$top`` is
        sent with ``$top=100`` (:data:`~flinkey_async.models.events.DEFAULT_EVENTS_TOP`), so
        this never asks for all of them at once. Order them, e.g.
        ``Query().orderby("utcDateTime", desc=True)``, to get the latest; walk all of them
        with :meth:`iter_events`.
        """
        check_id(car_id, "car_id")
        query = self._checked_query(query, Event, "events") or Query()
        if query.limit is None:
            query = query.top(DEFAULT_EVENTS_TOP)
        result: builtins.list[Event] = await self._get(
            ("cars", car_id, "events"), list[Event], query
        )
        return result

    def iter_events(
        self, car_id: int, *, query: Query | None = None, page_size: int = DEFAULT_EVENTS_TOP
    ) -> AsyncIterator[Event]:
        """All of the car's events (or the query's ``$top`` of them), fetched lazily in pages
        of ``page_size``: every request is bounded by a ``$top``."""
        check_id(car_id, "car_id")
        query = self._checked_query(query, Event, "events")
        return self._iterate(("cars", car_id, "events"), Event, query, page_size)
