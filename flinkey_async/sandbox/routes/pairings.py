"""``PUT /pairings`` and ``DELETE /pairings`` (a DELETE with a JSON body): applied at once,
204 (the rules and texts: :mod:`flinkey_async.sandbox.writes.products`)."""

from __future__ import annotations

from aiohttp import web

from ..writes import products
from ._helpers import RouteContext, apply_sync_write

__all__ = ["pair_service", "unpair_service"]


async def pair_service(
    context: RouteContext, request: web.Request, customer_id: int
) -> web.StreamResponse:
    """``PUT /pairings``."""
    return await apply_sync_write(context, request, customer_id, products.pair)


async def unpair_service(
    context: RouteContext, request: web.Request, customer_id: int
) -> web.StreamResponse:
    """``DELETE /pairings``."""
    return await apply_sync_write(context, request, customer_id, products.unpair)
