"""Services: the v3 ``Service`` schema of ``GET /services`` and ``GET /services/{serviceId}``,
plus the product a service is paired with (the older schema's ``productId``; v3 does not send
it)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs

from .._timestamps import format_optional
from ..odata_eval import BOOL, DATETIME, INT, STR, EntitySchema

__all__ = ["SERVICE_SCHEMA", "Service", "service_wire"]


@attrs.frozen
class Service:
    """A service (contract) of a customer; ``product_id`` is the paired product (None:
    none)."""

    id: int
    customer_id: int
    name: str
    is_terminated: bool = False
    termination_date: datetime | None = None
    termination_cause: str | None = None
    product_id: int | None = None


#: The wire shape of a service, for the OData evaluator.
SERVICE_SCHEMA = EntitySchema(
    "Service",
    {
        "id": INT,
        "name": STR,
        "isTerminated": BOOL,
        "terminationDate": DATETIME,
        "terminationCause": STR,
    },
)


def service_wire(service: Service) -> dict[str, Any]:
    """The v3 ``Service`` schema (no ``productId``)."""
    return {
        "id": service.id,
        "name": service.name,
        "isTerminated": service.is_terminated,
        "terminationDate": format_optional(service.termination_date),
        "terminationCause": service.termination_cause,
    }
