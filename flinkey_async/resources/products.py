"""Products (flinkey Box, flinkey IQ): ``GET /products`` and ``GET /products/{productId}``.

``GET /products/{productId}/services`` appears only in PlanB's sample code, not in the
documentation, and is not offered here.
"""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator

from .._validate import check_id
from ..models.products import Product
from ..odata import Query
from ._base import Resource

__all__ = ["Products"]


class Products(Resource):
    """``client.products``: the customer's products
    (:class:`~flinkey_async.models.products.Product`)."""

    async def list(self, *, query: Query | None = None) -> builtins.list[Product]:
        """The customer's products (``GET /products``), OData ``query`` applied by the
        server."""
        query = self._checked_query(query, Product, "products")
        result: builtins.list[Product] = await self._get(("products",), list[Product], query)
        return result

    async def get(self, product_id: int, *, query: Query | None = None) -> Product:
        """One product (``GET /products/{productId}``)."""
        check_id(product_id, "product_id")
        query = self._checked_query(query, Product, "products")
        result: Product = await self._get(("products", product_id), Product, query)
        return result

    def iter(self, *, query: Query | None = None, page_size: int = 100) -> AsyncIterator[Product]:
        """All of the customer's products, fetched lazily ``page_size`` at a time."""
        query = self._checked_query(query, Product, "products")
        return self._iterate(("products",), Product, query, page_size)
