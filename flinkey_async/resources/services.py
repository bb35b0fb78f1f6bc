"""Services (flinkey Go contracts): ``GET /services`` and ``GET /services/{serviceId}``."""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator

from .._validate import check_id
from ..models.services import Service
from ..odata import Query
from ._base import Resource

__all__ = ["Services"]


class Services(Resource):
    """``client.services``: the customer's services
    (:class:`~flinkey_async.models.services.Service`)."""

    async def list(self, *, query: Query | None = None) -> builtins.list[Service]:
        """The customer's services (``GET /services``), OData ``query`` applied by the
        server."""
        query = self._checked_query(query, Service, "services")
        result: builtins.list[Service] = await self._get(("services",), list[Service], query)
        return result

    async def get(self, service_id: int, *, query: Query | None = None) -> Service:
        """One service (``GET /services/{serviceId}``)."""
        check_id(service_id, "service_id")
        query = self._checked_query(query, Service, "services")
        result: Service = await self._get(("services", service_id), Service, query)
        return result

    def iter(self, *, query: Query | None = None, page_size: int = 100) -> AsyncIterator[Service]:
        """All of the customer's services, fetched lazily ``page_size`` at a time."""
        query = self._checked_query(query, Service, "services")
        return self._iterate(("services",), Service, query, page_size)
