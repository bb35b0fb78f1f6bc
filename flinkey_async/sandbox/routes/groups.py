"""``GET /groups`` (``{id, name}`` items) and ``GET /groups/{groupId}/cars`` (``Car`` items).

The reference shows no OData tip for these two, so the sandbox applies no query options here
(they are ignored, as custom options are). A group the customer does not have gets the
sandbox's own 404 text (:data:`~flinkey_async.sandbox.messages.GROUP_NOT_FOUND`).
"""

from __future__ import annotations

from aiohttp import web

from ..messages import GROUP_NOT_FOUND
from ..responses import text_response
from ..store.cars import car_wire
from ..store.groups import Group, group_wire
from ._helpers import RouteContext, get_plain_list, path_id

__all__ = ["list_group_cars", "list_groups"]


async def list_groups(
    context: RouteContext, request: web.Request, customer_id: int
) -> web.StreamResponse:
    """``GET /groups``."""
    store = context.store
    return get_plain_list(
        context, "groups", customer_id, lambda: map(group_wire, store.owned_by(Group, customer_id))
    )


async def list_group_cars(
    context: RouteContext, request: web.Request, customer_id: int
) -> web.StreamResponse:
    """``GET /groups/{groupId}/cars``: the group's cars, in the order they were added."""
    store = context.store
    group = store.get(Group, path_id(request, "groupId"), customer_id)
    if group is None:
        return text_response(GROUP_NOT_FOUND, 404)
    cars = [store.get_car(car_id, customer_id) for car_id in group.car_ids]
    return get_plain_list(
        context,
        "group cars",
        group.id,
        lambda: (car_wire(car) for car in cars if car is not None),
    )
