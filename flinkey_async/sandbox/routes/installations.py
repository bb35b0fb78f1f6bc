"""``PUT /installations`` and ``DELETE /installations``: applied at once, 204 (the rules and
texts: :mod:`flinkey_async.sandbox.writes.products`). Taking a flinkey Box out of a car
removes the car's assignments, each reported by an unsolicited delete webhook."""

from __future__ import annotations

from aiohttp import web

from ..writes import products
from ._helpers import RouteContext, apply_sync_write

__all__ = ["install_product", "uninstall_product"]


async def install_product(
    context: RouteContext, request: web.Request, customer_id: int
) -> web.StreamResponse:
    """``PUT /installations``."""
    return await apply_sync_write(context, request, customer_id, products.install)


async def uninstall_product(
    context: RouteContext, request: web.Request, customer_id: int
) -> web.StreamResponse:
    """``DELETE /installations`` (with a JSON body, like the install)."""
    return await apply_sync_write(context, request, customer_id, products.uninstall)
