"""``GET /cars``, ``GET /cars/{carId}`` (the ``Car`` schema) and ``GET /cars/{carId}/events``
(the ``Event`` schema; a car the customer does not have gets the car's 404 text)."""

from __future__ import annotations

from aiohttp import web

from ..messages import CAR_NOT_FOUND
from ..responses import text_response
from ..store.cars import CAR_SCHEMA, car_wire
from ..store.events import EVENT_SCHEMA, Event, event_wire
from ._helpers import RouteContext, get_list, get_one, path_id

__all__ = ["get_car", "list_car_events", "list_cars"]


async def list_cars(
    context: RouteContext, request: web.Request, customer_id: int
) -> web.StreamResponse:
    """``GET /cars``."""
    store = context.store
    return get_list(
        context,
        request,
        CAR_SCHEMA,
        customer_id,
        lambda: map(car_wire, store.cars_of(customer_id)),
    )


async def get_car(
    context: RouteContext, request: web.Request, customer_id: int
) -> web.StreamResponse:
    """``GET /cars/{carId}``."""
    car_id = path_id(request, "carId")
    car = context.store.get_car(car_id, customer_id) if car_id is not None else None
    return get_one(context, request, CAR_SCHEMA, car, car_wire, CAR_NOT_FOUND)


async def list_car_events(
    context: RouteContext, request: web.Request, customer_id: int
) -> web.StreamResponse:
    """``GET /cars/{carId}/events``, by id (OData orders and limits them)."""
    store = context.store
    car_id = path_id(request, "carId")
    if car_id is None or store.get_car(car_id, customer_id) is None:
        return text_response(CAR_NOT_FOUND, 404)
    return get_list(
        context,
        request,
        EVENT_SCHEMA,
        car_id,
        lambda: (event_wire(e) for e in store.owned_by(Event, customer_id) if e.car_id == car_id),
    )
