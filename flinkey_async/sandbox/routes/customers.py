"""``GET /customers``: the customers the API manager may act for (no ``Customer-ID``)."""

from __future__ import annotations

from aiohttp import web

from ..store.customers import CUSTOMER_SCHEMA, customer_wire
from ._helpers import RouteContext, get_list

__all__ = ["list_customers"]


async def list_customers(
    context: RouteContext, request: web.Request, _customer_id: int
) -> web.StreamResponse:
    """``GET /customers``: ``{id, name}`` items, ids as JSON numbers."""
    customers = context.store.customers
    return get_list(
        context,
        request,
        CUSTOMER_SCHEMA,
        None,
        lambda: (customer_wire(customers[c]) for c in context.customer_ids()),
    )
