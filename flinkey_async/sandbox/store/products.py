"""Products: the v3 ``Product`` schema of ``GET /products`` and ``GET /products/{productId}``,
plus what the sandbox keeps beside it: the car a product is installed into.

A write names a product by its ``productId``, ``serialNumber`` or ``uniqueId``
(:func:`find_product`); a car holds at most one product of each type, so at most two.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Final

import attrs

from .._timestamps import format_optional
from ..odata_eval import DATETIME, INT, STR, EntitySchema

__all__ = [
    "BOX",
    "IQ",
    "PRODUCT_SCHEMA",
    "PRODUCT_TYPES",
    "Product",
    "find_product",
    "product_wire",
]

#: The documented product types.
BOX: Final = "flinkey Box"
IQ: Final = "flinkey IQ"
PRODUCT_TYPES: Final = (BOX, IQ)


@attrs.frozen
class Product:
    """A product of a customer; ``car_id`` is the car it is installed into (None: none)."""

    id: int
    customer_id: int
    unique_id: str
    serial_number: str
    sap_number: str
    type: str = BOX
    dongle_termination_time_stamp: datetime | None = None
    car_id: int | None = None


#: The wire shape of a product, for the OData evaluator.
PRODUCT_SCHEMA = EntitySchema(
    "Product",
    {
        "id": INT,
        "uniqueId": STR,
        "serialNumber": STR,
        "sapNumber": STR,
        "dongleTerminationTimeStamp": DATETIME,
        "type": STR,
    },
)


def product_wire(product: Product) -> dict[str, Any]:
    """The v3 ``Product`` schema (the installation is not part of it)."""
    return {
        "id": product.id,
        "uniqueId": product.unique_id,
        "serialNumber": product.serial_number,
        "sapNumber": product.sap_number,
        "dongleTerminationTimeStamp": format_optional(product.dongle_termination_time_stamp),
        "type": product.type,
    }


def find_product(
    products: Iterable[Product],
    product_id: int | None,
    serial_number: str | None,
    unique_id: str | None,
) -> Product | None:
    """The product every given identifier names (None: none does, they name different
    products, or none is given)."""
    if product_id is None and serial_number is None and unique_id is None:
        return None
    found: Product | None = None
    for product in products:
        if (
            (product_id is None or product.id == product_id)
            and (serial_number is None or product.serial_number == serial_number)
            and (unique_id is None or product.unique_id == unique_id)
        ):
            found = product
            break
    return found
