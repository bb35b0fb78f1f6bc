"""attrs models, one per documented schema (frozen, slots).

Field names are snake_case; :mod:`flinkey_async._converter` maps them to camelCase on the wire.
Datetimes are always aware and in UTC. Where the API documents only part of a record (the list
endpoints), the model holds only that part: no values are invented.
"""

from __future__ import annotations

from datetime import datetime

import attrs

__all__ = ["Assignment", "CarAssignment", "UserAssignment", "DEFAULT_LIFETIME",
           "MIN_LIFETIME", "MAX_LIFETIME"]

#: Documented default lifetime of an assignment, in seconds (7 days).
DEFAULT_LIFETIME = 604_800
#: Smallest lifetime the SDK accepts (7 days, inclusive; see ``check_lifetimes``).
MIN_LIFETIME = 604_800
#: Largest lifetime the SDK accepts (28 days, inclusive).
MAX_LIFETIME = 2_419_200


@attrs.frozen
class Assignment:
    """An assignment as returned by ``GET /assignments/{assignmentId}``.

    ``lifetime`` and ``renewable_after`` are in seconds; ``end`` is ``None`` for an unrestricted
    assignment.
    """

    id: int
    car_id: int
    user_id: int | None
    start: datetime
    end: datetime | None
    lifetime: int | None = None
    renewable_after: int | None = None


@attrs.frozen
class CarAssignment:
    """An item of ``GET /cars/{carId}/assignments``: the API sends no ``carId``, ``lifetime`` or
    ``renewableAfter`` here (the car is the one asked for)."""

    id: int
    user_id: int | None
    start: datetime
    end: datetime | None


@attrs.frozen
class UserAssignment:
    """An item of ``GET /users/{userId}/assignments``: the API sends no ``userId`` (the user is
    the one asked for) and ``car_id`` may be ``None``."""

    id: int
    car_id: int | None
    start: datetime
    end: datetime | None
