"""Customers: the ``GET /customers`` items (the customers an API manager may act for)."""

from __future__ import annotations

from typing import Any

import attrs

from ..odata_eval import INT, STR, EntitySchema

__all__ = ["CUSTOMER_SCHEMA", "Customer", "customer_wire"]


@attrs.frozen
class Customer:
    """A customer (``GET /customers`` item)."""

    id: int
    name: str


#: The wire shape of a customer, for the OData evaluator.
CUSTOMER_SCHEMA = EntitySchema("Customer", {"id": INT, "name": STR})


def customer_wire(customer: Customer) -> dict[str, Any]:
    """``{id, name}``; the id is a JSON number."""
    return {"id": customer.id, "name": customer.name}
