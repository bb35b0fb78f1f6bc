"""Customers: ``GET /customers`` (sent without ``Customer-ID``: it lists the customers to
choose one from)."""

from __future__ import annotations

from ..models.customers import Customer
from ..odata import Query
from ._base import Resource

__all__ = ["Customers"]


class Customers(Resource):
    """``client.customers``: the customers the API manager may act for (one API manager can
    act for several; pick one's ``id`` as a client's ``customer_id``)."""

    async def list(self, *, query: Query | None = None) -> list[Customer]:
        """Every customer of the API manager (``GET /customers``, no ``Customer-ID``
        header), OData ``query`` applied by the server. Ids arrive as strings or numbers and
        are ``int`` here."""
        query = self._checked_query(query, Customer, "customers")
        result: list[Customer] = await self._get(
            ("customers",), list[Customer], query, customer_scoped=False
        )
        return result
