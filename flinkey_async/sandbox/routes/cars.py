"""``GET /cars`` and ``GET /cars/{carId}``: the customer's cars (the ``Car`` schema)."""

from __future__ import annotations

from aiohttp import web

from ..messages import CAR_NOT_FOUND
from ..store.cars import CAR_SCHEMA, car_wire
from ._helpers import RouteContext, get_list, get_one, path_id

__all__ = ["get_car", "list_cars"]


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
