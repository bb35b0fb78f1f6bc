"""The keyfob catalog, for every customer (no ``Customer-ID``): ``GET /brands`` (plain strings;
OData may page them, nothing else: they have no properties) and ``GET /brands/{brand}/keys``.

``{brand}`` is one path segment, percent-decoded (``%2F`` is a ``/`` inside the brand, never a
path separator); it must equal a brand of ``GET /brands`` exactly (the sandbox's choice: the
reference does not say how brands are compared), else 400 "Invalid brand provided.".
"""

from __future__ import annotations

from aiohttp import web

from ..messages import INVALID_BRAND
from ..responses import text_response
from ..store.keyfobs import BRAND_SCHEMA, KEYFOB_SCHEMA, keyfob_wire
from ._helpers import RouteContext, get_list

__all__ = ["list_brand_keys", "list_brands"]


async def list_brands(
    context: RouteContext, request: web.Request, _customer_id: int
) -> web.StreamResponse:
    """``GET /brands``."""
    store = context.store
    return get_list(context, request, BRAND_SCHEMA, None, lambda: list(store.brands))


async def list_brand_keys(
    context: RouteContext, request: web.Request, _customer_id: int
) -> web.StreamResponse:
    """``GET /brands/{brand}/keys``."""
    store = context.store
    brand = request.match_info["brand"]
    if brand not in store.brands:
        return text_response(INVALID_BRAND, 400)
    return get_list(
        context,
        request,
        KEYFOB_SCHEMA,
        brand,
        lambda: map(keyfob_wire, store.keyfobs_of(brand)),
    )
