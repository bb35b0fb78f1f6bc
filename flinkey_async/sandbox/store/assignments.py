"""Assignments: the stored record, its three wire shapes, and the rules flinkey documents.

The lifetime rules, as the project reads the Assignments page (the reference contradicts itself:
it documents ``lifetime > 604800`` and ``< 2419200`` yet a default of 604800, so the bounds are
taken as inclusive): ``lifetime`` defaults to :data:`DEFAULT_LIFETIME` (604800 s, 7 days) and
must lie within ``MIN_LIFETIME <= lifetime <= MAX_LIFETIME`` (604800..2419200 s);
``renewableAfter`` defaults to half the lifetime and must satisfy ``0 < renewableAfter <
lifetime``. The rules are enforced when a write is applied
(:mod:`flinkey_async.sandbox.writes.assignments`), not by :meth:`SandboxStore.add_assignment`,
which lets tests store odd data.

The single assignment carries all seven fields; the items of ``GET /cars/{carId}/assignments``
are ``id, userId, start, end`` and those of ``GET /users/{userId}/assignments`` ``id, carId,
start, end``.

A webhook's ``checksum`` is the MD5 of the exact request body bytes as 32 upper-case hex digits
(:func:`body_checksum`); a delete has no body, so its checksum is that of the text ``DELETE
/assignments/{id}`` (:func:`delete_checksum`), also for the unsolicited deletes of an uninstall.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any, Final

import attrs

from .._timestamps import format_optional, format_timestamp
from ..odata_eval import DATETIME, INT, EntitySchema

__all__ = [
    "ASSIGNMENT_SCHEMA",
    "CAR_ASSIGNMENT_SCHEMA",
    "DEFAULT_LIFETIME",
    "MAX_LIFETIME",
    "MIN_LIFETIME",
    "USER_ASSIGNMENT_SCHEMA",
    "StoredAssignment",
    "assignment_wire",
    "body_checksum",
    "car_assignment_wire",
    "default_renewable_after",
    "delete_checksum",
    "delete_payload",
    "user_assignment_wire",
]

#: Seconds a key stays valid when an assignment names no lifetime (7 days).
DEFAULT_LIFETIME: Final = 604_800
#: Smallest accepted lifetime (inclusive), 7 days.
MIN_LIFETIME: Final = 604_800
#: Largest accepted lifetime (inclusive), 28 days.
MAX_LIFETIME: Final = 2_419_200


def default_renewable_after(lifetime: int) -> int:
    """``renewableAfter`` when none is given: half the lifetime (rounded down)."""
    return lifetime // 2


@attrs.frozen
class StoredAssignment:
    """An assignment as stored. ``renewable_after_explicit`` is False when ``renewable_after``
    is the default (half the lifetime), so it follows a later change of the lifetime."""

    id: int
    customer_id: int
    car_id: int
    user_id: int | None
    start: datetime
    end: datetime | None
    lifetime: int | None = DEFAULT_LIFETIME
    renewable_after: int | None = default_renewable_after(DEFAULT_LIFETIME)
    renewable_after_explicit: bool = True


ASSIGNMENT_SCHEMA = EntitySchema(
    "Assignment",
    {
        "id": INT,
        "carId": INT,
        "userId": INT,
        "start": DATETIME,
        "end": DATETIME,
        "lifetime": INT,
        "renewableAfter": INT,
    },
)
CAR_ASSIGNMENT_SCHEMA = EntitySchema(
    "CarAssignment", {"id": INT, "userId": INT, "start": DATETIME, "end": DATETIME}
)
USER_ASSIGNMENT_SCHEMA = EntitySchema(
    "UserAssignment", {"id": INT, "carId": INT, "start": DATETIME, "end": DATETIME}
)


def assignment_wire(a: StoredAssignment) -> dict[str, Any]:
    """The single-assignment schema: all seven fields."""
    return {
        "id": a.id,
        "carId": a.car_id,
        "userId": a.user_id,
        "start": format_timestamp(a.start),
        "end": format_optional(a.end),
        "lifetime": a.lifetime,
        "renewableAfter": a.renewable_after,
    }


def car_assignment_wire(a: StoredAssignment) -> dict[str, Any]:
    """An item of ``GET /cars/{carId}/assignments``: ``id, userId, start, end``."""
    return {
        "id": a.id,
        "userId": a.user_id,
        "start": format_timestamp(a.start),
        "end": format_optional(a.end),
    }


def user_assignment_wire(a: StoredAssignment) -> dict[str, Any]:
    """An item of ``GET /users/{userId}/assignments``: ``id, carId, start, end``."""
    return {
        "id": a.id,
        "carId": a.car_id,
        "start": format_timestamp(a.start),
        "end": format_optional(a.end),
    }


def body_checksum(body: bytes) -> str:
    """Checksum of a write: MD5 of the exact request body bytes, 32 upper-case hex digits."""
    return hashlib.md5(body, usedforsecurity=False).hexdigest().upper()


def delete_checksum(assignment_id: int) -> str:
    """Checksum of a delete: MD5 of ``DELETE /assignments/{id}``, 32 upper-case hex digits."""
    return body_checksum(f"DELETE /assignments/{assignment_id}".encode())


def delete_payload(
    checksum: str,
    assignment_id: int,
    customer_id: int,
    deleted: StoredAssignment | None,
    error: str | None,
) -> dict[str, Any]:
    """Webhook payload of a delete; ``carId``/``userId``/``start``/``end`` are those of the
    deleted assignment, or null when it was not found."""
    return {
        "checksum": checksum,
        "assignmentId": assignment_id,
        "customerId": customer_id,
        "operationSucceeded": error is None,
        "errorMessage": error,
        "carId": deleted.car_id if deleted else None,
        "userId": deleted.user_id if deleted else None,
        "start": format_timestamp(deleted.start) if deleted else None,
        "end": format_optional(deleted.end) if deleted else None,
    }
