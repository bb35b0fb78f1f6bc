"""Cars: the ``Car`` schema of ``GET /cars`` and ``GET /cars/{carId}``."""

from __future__ import annotations

from typing import Any

import attrs

from ..odata_eval import INT, STR, EntitySchema

__all__ = ["CAR_SCHEMA", "Car", "car_wire"]


@attrs.frozen
class Car:
    """A car of a customer (the ``Car`` schema plus its owner's ``customer_id``)."""

    id: int
    customer_id: int
    name: str
    description: str | None = None
    vin: str | None = None
    license_plate: str | None = None
    brand: str | None = None
    model: str | None = None


#: The wire shape of a car, for the OData evaluator.
CAR_SCHEMA = EntitySchema(
    "Car",
    {
        "id": INT,
        "name": STR,
        "description": STR,
        "vin": STR,
        "licensePlate": STR,
        "brand": STR,
        "model": STR,
    },
)


def car_wire(car: Car) -> dict[str, Any]:
    """The ``Car`` schema."""
    return {
        "id": car.id,
        "name": car.name,
        "description": car.description,
        "vin": car.vin,
        "licensePlate": car.license_plate,
        "brand": car.brand,
        "model": car.model,
    }
