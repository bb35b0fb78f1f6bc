"""Everything the SDK knows about an assignment, declared once.

* The read models: :class:`Assignment` (``GET /assignments/{id}``), and the partial list items
  :class:`CarAssignment` and :class:`UserAssignment` (the API leaves fields out there: no
  values are invented).
* The create request, :class:`NewAssignment`, written on the wire by the converter.
* The lifetime rules (:func:`check_lifetimes`) and the patch schema (:data:`ASSIGNMENT_PATCH`,
  ``PATCH /assignments/{id}``).
* The webhook payload (:class:`AssignmentPayload`) and the key that ties a create to its
  webhook (:func:`create_key`).

Field names are snake_case; :mod:`flinkey_async._converter` maps them to camelCase on the
wire, and the OData field names of each model are its wire names
(:func:`flinkey_async.odata.model_fields`). Datetimes are always aware and in UTC.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypeAlias

import attrs

from .._converter import OMIT_IF_NONE, STRUCTURE_WITH, int_or_numeric_str, wire_datetime
from .._validate import check_window
from ..errors import ValidationError
from ..patch_schema import PatchField, PatchSchema, ValueKind

__all__ = [
    "ASSIGNMENT_PATCH",
    "DEFAULT_LIFETIME",
    "MAX_LIFETIME",
    "MIN_LIFETIME",
    "Assignment",
    "AssignmentPayload",
    "CarAssignment",
    "CreateKey",
    "NewAssignment",
    "UserAssignment",
    "check_lifetimes",
    "create_key",
]

#: Documented default lifetime of an assignment, in seconds (7 days).
DEFAULT_LIFETIME = 604_800
#: Smallest lifetime the SDK accepts (7 days, inclusive; see :func:`check_lifetimes`).
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


@attrs.frozen
class NewAssignment:
    """The body of ``PUT /assignments``: ``end`` is always sent (``null``: no end);
    ``lifetime`` and ``renewable_after`` only when given (the server then applies its
    defaults). Datetimes go on the wire in UTC, whole seconds."""

    car_id: int
    user_id: int
    start: datetime
    end: datetime | None = None
    lifetime: int | None = attrs.field(default=None, metadata={OMIT_IF_NONE: True})
    renewable_after: int | None = attrs.field(default=None, metadata={OMIT_IF_NONE: True})


def check_lifetimes(lifetime: Any, renewable_after: Any) -> None:
    """The lifetime rules, inclusive as decided for the SDK:

    ``604800 <= lifetime <= 2419200`` (7 to 28 days, in seconds) and
    ``0 < renewable_after < lifetime`` (the documented default lifetime, 604800, when
    ``lifetime`` is not given). The server has the final word; its verdict arrives by webhook.
    """
    if lifetime is not None:
        if type(lifetime) is not int:
            raise ValidationError(
                "lifetime", f"must be an int (seconds), got {type(lifetime).__name__}"
            )
        if not MIN_LIFETIME <= lifetime <= MAX_LIFETIME:
            raise ValidationError(
                "lifetime",
                f"must be between {MIN_LIFETIME} (7 days) and {MAX_LIFETIME} (28 days) seconds, "
                f"got {lifetime}",
            )
    if renewable_after is not None:
        if type(renewable_after) is not int:
            raise ValidationError(
                "renewable_after", f"must be an int (seconds), got {type(renewable_after).__name__}"
            )
        limit = lifetime if lifetime is not None else DEFAULT_LIFETIME
        if not 0 < renewable_after < limit:
            raise ValidationError(
                "renewable_after",
                f"must be greater than 0 and less than the lifetime ({limit}), "
                f"got {renewable_after}",
            )


def _check_lifetime_value(value: Any, argument: str) -> int:
    try:
        check_lifetimes(value, None)
    except ValidationError as exc:
        raise ValidationError(argument, exc.message) from None
    result: int = value
    return result


def _patch_rules(values: Mapping[str, Any], removed: frozenset[str]) -> None:
    """Rules between the paths of an assignment patch (see :data:`ASSIGNMENT_PATCH`)."""
    lifetime = values.get("/lifetime")
    if "/lifetime" in removed or ("/lifetime" in values and lifetime is None):
        lifetime = DEFAULT_LIFETIME  # removing (or nulling) it resets it to the default
    renewable_after = values.get("/renewableAfter")
    if renewable_after is not None:
        if lifetime is not None:
            try:
                check_lifetimes(lifetime, renewable_after)
            except ValidationError as exc:
                raise ValidationError("/renewableAfter", exc.message) from None
        elif renewable_after >= MAX_LIFETIME:
            # The stored lifetime is unknown here; no valid lifetime is above MAX_LIFETIME.
            raise ValidationError(
                "/renewableAfter",
                f"must be less than the lifetime, which is at most {MAX_LIFETIME} seconds "
                f"(28 days); got {renewable_after}",
            )
    start = values.get("/start")
    end = values.get("/end")
    if start is not None and end is not None:
        try:
            check_window(start, end)
        except ValidationError as exc:
            raise ValidationError("/end", exc.message) from None


#: The assignment schema (``PATCH /assignments/{assignmentId}``):
#:
#: * ``/carId`` (id) and ``/start`` (datetime) may be replaced, not removed, and not set to
#:   ``null``;
#: * ``/userId`` (id), ``/end`` (datetime; ``null`` means unrestricted), ``/lifetime`` and
#:   ``/renewableAfter`` (seconds) may be replaced, set to ``null`` or removed; a removed (or
#:   nulled) ``/lifetime`` and ``/renewableAfter`` go back to their server defaults.
#:
#: Checks: ids > 0; datetimes aware; ``604800 <= lifetime <= 2419200``; ``renewableAfter > 0``
#: and below ``lifetime`` when both are in the patch (a ``lifetime`` removed or set to ``null``
#: in the same patch resets it to the documented default, 604800). A ``renewableAfter`` without a
#: ``lifetime`` in the same patch is compared with the *stored* lifetime, which only the server
#: knows, so the SDK then only rejects values no valid lifetime allows (``>= 2419200``). When
#: both ``/start`` and ``/end`` are replaced, ``end`` must be after ``start``. The server has
#: the final word; its verdict arrives by webhook.
ASSIGNMENT_PATCH = PatchSchema(
    resource="assignment",
    model=Assignment,
    fields=(
        PatchField.of("car_id", ValueKind.ID, nullable=False, removable=False),
        PatchField.of("user_id", ValueKind.ID),
        PatchField.of("start", ValueKind.DATETIME, nullable=False, removable=False),
        PatchField.of("end", ValueKind.DATETIME),
        PatchField.of(
            "lifetime", ValueKind.SECONDS, check=_check_lifetime_value, resets_to_default=True
        ),
        PatchField.of("renewable_after", ValueKind.SECONDS, resets_to_default=True),
    ),
    rules=(_patch_rules,),
)


@attrs.frozen
class AssignmentPayload:
    """The documented fields of an assignment webhook (create, update or delete; unknown extra
    keys are ignored). ``assignment_id`` is ``None`` only for a failed create; the customer id
    arrives as a number or a numeric string."""

    checksum: str
    customer_id: int = attrs.field(metadata={STRUCTURE_WITH: int_or_numeric_str})
    operation_succeeded: bool
    assignment_id: int | None = None
    error_message: str | None = None
    car_id: int | None = None
    user_id: int | None = None
    start: datetime | None = None
    end: datetime | None = None
    lifetime: int | None = None
    renewable_after: int | None = None


#: ``(customerId, carId, userId, start, end)`` of a create, datetimes in UTC whole seconds.
CreateKey: TypeAlias = tuple[int, int, int, datetime, datetime | None]


def create_key(
    customer_id: int,
    car_id: int | None,
    user_id: int | None,
    start: datetime | None,
    end: datetime | None,
) -> CreateKey | None:
    """What ties a create to its webhook (which has no id when the create failed): the
    customer, car, user, start and end, datetimes in UTC whole seconds; ``None`` when the car,
    the user or the start is unknown."""
    if car_id is None or user_id is None or start is None:
        return None
    return (
        customer_id,
        car_id,
        user_id,
        wire_datetime(start, "start"),
        None if end is None else wire_datetime(end, "end"),
    )
