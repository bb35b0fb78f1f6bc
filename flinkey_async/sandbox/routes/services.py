"""``GET /services`` and ``GET /services/{serviceId}``: the customer's services (the v3
``Service`` schema, without the older ``productId``)."""

from __future__ import annotations

from aiohttp import web

from ..messages import SERVICE_NOT_FOUND
from ..store.services import SERVICE_SCHEMA, Service, service_wire
from ._helpers import RouteContext, get_list, get_one, path_id

__all__ = ["get_service", "list_services"]


async def list_services(
    context: RouteContext, request: web.Request, customer_id: int
) -> web.StreamResponse:
    """``GET /services``."""
    store = context.store
    return get_list(
        context,
        request,
        SERVICE_SCHEMA,
        customer_id,
        lambda: map(service_wire, store.owned_by(Service, customer_id)),
    )


async def get_service(
    context: RouteContext, request: web.Request, customer_id: int
) -> web.StreamResponse:
    """``GET /services/{serviceId}``."""
    service = context.store.get(Service, path_id(request, "serviceId"), customer_id)
    return get_one(context, request, SERVICE_SCHEMA, service, service_wire, SERVICE_NOT_FOUND)
