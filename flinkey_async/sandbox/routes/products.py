"""``GET /products`` and ``GET /products/{productId}``: the customer's products (the v3
``Product`` schema; an unknown id gets the documented product 404 text of the installations)."""

from __future__ import annotations

from aiohttp import web

from ..messages import PRODUCT_NOT_FOUND
from ..store.products import PRODUCT_SCHEMA, Product, product_wire
from ._helpers import RouteContext, get_list, get_one, path_id

__all__ = ["get_product", "list_products"]


async def list_products(
    context: RouteContext, request: web.Request, customer_id: int
) -> web.StreamResponse:
    """``GET /products``."""
    store = context.store
    return get_list(
        context,
        request,
        PRODUCT_SCHEMA,
        customer_id,
        lambda: map(product_wire, store.owned_by(Product, customer_id)),
    )


async def get_product(
    context: RouteContext, request: web.Request, customer_id: int
) -> web.StreamResponse:
    """``GET /products/{productId}``."""
    product = context.store.get(Product, path_id(request, "productId"), customer_id)
    return get_one(context, request, PRODUCT_SCHEMA, product, product_wire, PRODUCT_NOT_FOUND)
