"""Cars (``GET /cars``, ``GET /cars/{carId}``, and the car lists of ``GET /groups/{groupId}/cars``).

Creating, changing and deleting cars is not in the available documentation: the SDK offers
reads only.
"""

from __future__ import annotations

import attrs

__all__ = ["Car"]


@attrs.frozen
class Car:
    """A car (the documented ``Car`` schema): only ``id`` and ``name`` are always set.

    A car has at most two different products installed (see
    :meth:`~flinkey_async.resources.installations.Installations.install`), and several users
    can be assigned to it (:meth:`~flinkey_async.resources.assignments.Assignments.list_for_car`).
    """

    id: int
    name: str
    description: str | None
    vin: str | None
    license_plate: str | None
    brand: str | None
    model: str | None
