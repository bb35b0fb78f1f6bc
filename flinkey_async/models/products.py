"""Products: the flinkey Box and the flinkey IQ (``GET /products``, ``GET /products/{productId}``),
and how a write names one (:func:`product_identifier`).

``GET /products/{productId}/services`` appears only in PlanB's sample code, not in the
documentation: the SDK does not offer it.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import attrs

from .._converter import STRUCTURE_WITH, known_or_str
from .._validate import check_id
from ..errors import ValidationError

__all__ = ["Product", "ProductIdentifier", "ProductType", "product_identifier"]


class ProductType(enum.StrEnum):
    """The documented values of ``Product.type`` (the older documentation knew only the Box)."""

    BOX = "flinkey Box"
    IQ = "flinkey IQ"


@attrs.frozen
class Product:
    """A product (the documented v3 ``Product`` schema).

    Attributes:
        dongle_termination_time_stamp: ``dongleTerminationTimeStamp`` (UTC), when set.
        type: a :class:`ProductType`, or the plain string of a value flinkey added later.
    """

    id: int
    unique_id: str
    serial_number: str
    sap_number: str
    dongle_termination_time_stamp: datetime | None
    type: ProductType | str = attrs.field(metadata={STRUCTURE_WITH: known_or_str(ProductType)})


@attrs.frozen
class ProductIdentifier:
    """Exactly one way of naming a product in a write: its database id, its serial number or
    its unique id (the others are ``None``)."""

    product_id: int | None = None
    serial_number: str | None = None
    unique_id: str | None = None


def _check_text(value: Any, argument: str) -> str:
    if not isinstance(value, str):
        raise ValidationError(argument, f"must be a str, got {type(value).__name__}")
    if not value.strip():
        raise ValidationError(argument, "must not be empty")
    return value


def product_identifier(
    product_id: Any = None, serial_number: Any = None, unique_id: Any = None
) -> ProductIdentifier:
    """The product a write names: exactly one of ``product_id`` (an id), ``serial_number`` or
    ``unique_id`` (non-empty strings, sent as given). The documentation implies, from its
    error texts ("No valid productId, serialNumber or uniqueId provided."), that any one of
    them identifies the product; it does not say what several at once would mean, so the SDK
    refuses that (:class:`~flinkey_async.errors.ValidationError`) before sending anything."""
    given = [
        name
        for name, value in (
            ("product_id", product_id),
            ("serial_number", serial_number),
            ("unique_id", unique_id),
        )
        if value is not None
    ]
    if len(given) != 1:
        what = "none was given" if not given else f"got {', '.join(given)}"
        raise ValidationError(
            "product",
            f"name the product by exactly one of product_id, serial_number or unique_id; {what}",
        )
    if product_id is not None:
        return ProductIdentifier(product_id=check_id(product_id, "product_id"))
    if serial_number is not None:
        return ProductIdentifier(serial_number=_check_text(serial_number, "serial_number"))
    return ProductIdentifier(unique_id=_check_text(unique_id, "unique_id"))
