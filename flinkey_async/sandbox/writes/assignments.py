"""The three assignment writes: ``PUT /assignments``, ``PATCH /assignments/{id}`` and
``DELETE /assignments/{id}``.

At request time :func:`parse_create` / :func:`parse_patch` check the body's shape (a
:class:`~.bodies.BodyError` is a 400 answer). When the write is applied, ``apply(store)`` of a
:class:`CreateWrite`, :class:`UpdateWrite` or :class:`DeleteWrite` validates against the data
and returns the webhook payload.

Validation, in this order: the assignment exists (update, delete); ``/carId`` or ``/start`` is
not removed (update); the car, then the user, belongs to the customer; ``604800 <= lifetime <=
2419200``; ``0 < renewableAfter < lifetime``; ``end`` (when not null) is after ``start``. The
defaults are ``lifetime = 604800`` and ``renewableAfter = lifetime // 2``
(:mod:`flinkey_async.sandbox.store.assignments`). A PATCH ``remove`` (or a ``replace`` with
null) sets ``/userId`` and ``/end`` to null and resets ``/lifetime`` and ``/renewableAfter`` to
their defaults; a default ``renewableAfter`` follows a new lifetime.

``checksum`` is the MD5 of the exact request body bytes (of ``DELETE /assignments/{id}`` for a
delete), as 32 upper-case hex digits.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

import attrs

from .._timestamps import TimestampOutOfRange, format_optional
from ..messages import (
    ASSIGNMENT_NOT_FOUND,
    CAR_NOT_FOUND,
    END_NOT_AFTER_START,
    LIFETIME_OUT_OF_RANGE,
    REMOVE_CAR_ID_NOT_ALLOWED,
    REMOVE_START_NOT_ALLOWED,
    RENEWABLE_AFTER_OUT_OF_RANGE,
    USER_NOT_FOUND,
)
from ..store import SandboxStore, StoredAssignment
from ..store.assignments import (
    DEFAULT_LIFETIME,
    MAX_LIFETIME,
    MIN_LIFETIME,
    default_renewable_after,
    delete_payload,
)
from .bodies import (
    INT32,
    RANGE_TEXT,
    BodyError,
    datetime_field,
    int_field,
    load_json,
    parse_wire_timestamp,
)

__all__ = [
    "PATCH_PATHS",
    "CreateRequest",
    "CreateWrite",
    "DeleteWrite",
    "PatchOperation",
    "UpdateWrite",
    "parse_create",
    "parse_patch",
]

#: The JSON-Patch paths an assignment PATCH may name.
PATCH_PATHS = ("/carId", "/userId", "/start", "/end", "/lifetime", "/renewableAfter")
_INT_PATHS = frozenset({"/carId", "/userId", "/lifetime", "/renewableAfter"})
_INT_TEXT = re.compile(r"-?[0-9]+")


# --- request time: the shape of the body ------------------------------------------------------


@attrs.frozen
class CreateRequest:
    """The body of ``PUT /assignments`` after the shape checks."""

    car_id: int
    user_id: int
    start: datetime
    end: datetime | None = None
    lifetime: int | None = None
    renewable_after: int | None = None


def parse_create(body: bytes) -> CreateRequest:
    """Shape-check a ``PUT /assignments`` body; raises :class:`BodyError`.

    ``carId``, ``userId`` (JSON integers) and ``start`` (a date-time string) are required;
    ``end`` (date-time or null), ``lifetime`` and ``renewableAfter`` (integers or null) are
    optional. Unknown keys are ignored.
    """
    data = load_json(body)
    if not isinstance(data, dict):
        raise BodyError("The request body must be a JSON object.")
    car_id = int_field(data, "carId", nullable=False)
    user_id = int_field(data, "userId", nullable=False)
    start = datetime_field(data, "start", nullable=False)
    assert car_id is not None and user_id is not None and start is not None
    return CreateRequest(
        car_id,
        user_id,
        start,
        datetime_field(data, "end", nullable=True),
        int_field(data, "lifetime", nullable=True),
        int_field(data, "renewableAfter", nullable=True),
    )


@attrs.frozen
class PatchOperation:
    """One JSON-Patch operation with its value parsed (``None`` for remove or null)."""

    op: Literal["replace", "remove"]
    path: str
    value: int | datetime | None


def _patch_value(index: int, path: str, value: Any) -> int | datetime | None:
    if value is None:
        return None
    if path in _INT_PATHS:
        if type(value) is int:
            number = value
        elif type(value) is str and _INT_TEXT.fullmatch(value.strip()):
            try:
                number = int(value.strip())
            except ValueError:  # more digits than int() converts: out of range anyway
                raise BodyError(
                    f"Patch operation {index}: the value of {path} is out of range."
                ) from None
        else:
            raise BodyError(
                f"Patch operation {index}: the value of {path} must be an integer "
                '(as a string such as "604800", or a number) or null.'
            )
        if not INT32[0] <= number <= INT32[1]:
            raise BodyError(f"Patch operation {index}: the value of {path} is out of range.")
        return number
    if type(value) is str:
        try:
            return parse_wire_timestamp(value)
        except TimestampOutOfRange:
            raise BodyError(
                f"Patch operation {index}: the value of {path} is {RANGE_TEXT}."
            ) from None
        except ValueError:
            pass
    raise BodyError(
        f"Patch operation {index}: the value of {path} must be a date-time string "
        "(yyyy-MM-ddTHH:mm:ssZ) or null."
    )


def parse_patch(body: bytes) -> tuple[PatchOperation, ...]:
    """Shape-check a ``PATCH /assignments/{id}`` body (a JSON-Patch array); raises
    :class:`BodyError`.

    Each item needs ``op`` (``replace`` or ``remove``) and ``path`` (one of
    :data:`PATCH_PATHS`); ``replace`` needs a ``value``: a string or null as documented, or a
    JSON number for the integer paths. The value of ``remove`` is ignored.
    """
    data = load_json(body)
    if not isinstance(data, list):
        raise BodyError("The request body must be a JSON array of patch operations.")
    operations: list[PatchOperation] = []
    for index, item in enumerate(data):
        if not isinstance(item, dict):
            raise BodyError(f"Patch operation {index} must be a JSON object.")
        op = item.get("op")
        if op not in ("replace", "remove"):
            raise BodyError(f"Patch operation {index}: 'op' must be 'replace' or 'remove'.")
        path = item.get("path")
        if path not in PATCH_PATHS:
            raise BodyError(
                f"Patch operation {index}: 'path' must be one of {', '.join(PATCH_PATHS)}."
            )
        if op == "remove":
            operations.append(PatchOperation("remove", path, None))
            continue
        if "value" not in item:
            raise BodyError(f"Patch operation {index}: 'replace' needs a 'value'.")
        operations.append(PatchOperation("replace", path, _patch_value(index, path, item["value"])))
    return tuple(operations)


# --- apply time: validation against the data, and the webhook payload --------------------------


def _check_references(
    store: SandboxStore, customer_id: int, car_id: int | None, user_id: int | None
) -> str | None:
    if car_id is None or store.get_car(car_id, customer_id) is None:
        return CAR_NOT_FOUND
    if user_id is not None and store.get_user(user_id, customer_id) is None:
        return USER_NOT_FOUND
    return None


def _check_rules(
    lifetime: int | None,
    renewable_after: int | None,
    start: datetime | None,
    end: datetime | None,
) -> str | None:
    effective = lifetime if lifetime is not None else DEFAULT_LIFETIME
    if not MIN_LIFETIME <= effective <= MAX_LIFETIME:
        return LIFETIME_OUT_OF_RANGE
    if renewable_after is not None and not 0 < renewable_after < effective:
        return RENEWABLE_AFTER_OUT_OF_RANGE
    if start is not None and end is not None and end <= start:
        return END_NOT_AFTER_START
    return None


@attrs.frozen
class CreateWrite:
    """A pending ``PUT /assignments``."""

    customer_id: int
    checksum: str
    request: CreateRequest
    kind: Literal["create"] = "create"

    def apply(self, store: SandboxStore) -> dict[str, Any]:
        """Validate and create; the create webhook payload."""
        req = self.request
        lifetime = req.lifetime if req.lifetime is not None else DEFAULT_LIFETIME
        renewable_after = (
            req.renewable_after
            if req.renewable_after is not None
            else default_renewable_after(lifetime)
        )
        error = _check_references(store, self.customer_id, req.car_id, req.user_id)
        error = error or _check_rules(lifetime, renewable_after, req.start, req.end)
        record: StoredAssignment | None = None
        if error is None:
            record = store.add_assignment(
                req.car_id,
                req.user_id,
                req.start,
                req.end,
                lifetime=lifetime,
                renewable_after=req.renewable_after,
            )
        return {
            "checksum": self.checksum,
            "assignmentId": record.id if record else None,
            "carId": req.car_id,
            "userId": req.user_id,
            "start": format_optional(req.start),
            "end": format_optional(req.end),
            "customerId": self.customer_id,
            "operationSucceeded": error is None,
            "errorMessage": error,
            "lifetime": record.lifetime if record else req.lifetime,
            "renewableAfter": record.renewable_after if record else req.renewable_after,
        }


@attrs.frozen
class UpdateWrite:
    """A pending ``PATCH /assignments/{id}``."""

    customer_id: int
    checksum: str
    assignment_id: int
    operations: tuple[PatchOperation, ...]
    kind: Literal["update"] = "update"

    def apply(self, store: SandboxStore) -> dict[str, Any]:
        """Validate and update; the update webhook payload (the assignment's fields after the
        update, or the requested ones on failure)."""
        current = store.get_assignment(self.assignment_id, self.customer_id)
        error = None if current is not None else ASSIGNMENT_NOT_FOUND
        fields: dict[str, Any] = {
            "/carId": current.car_id if current else None,
            "/userId": current.user_id if current else None,
            "/start": current.start if current else None,
            "/end": current.end if current else None,
            "/lifetime": current.lifetime if current else None,
            "/renewableAfter": current.renewable_after if current else None,
        }
        explicit = current.renewable_after_explicit if current else False
        for operation in self.operations:
            path, value = operation.path, operation.value
            fields[path] = value
            if value is None:
                if path == "/carId":
                    error = error or REMOVE_CAR_ID_NOT_ALLOWED
                elif path == "/start":
                    error = error or REMOVE_START_NOT_ALLOWED
                elif path == "/lifetime":
                    fields[path] = DEFAULT_LIFETIME
                elif path == "/renewableAfter":
                    explicit = False
            elif path == "/renewableAfter":
                explicit = True
        if not explicit and fields["/lifetime"] is not None:
            fields["/renewableAfter"] = default_renewable_after(fields["/lifetime"])
        if error is None:
            error = _check_references(store, self.customer_id, fields["/carId"], fields["/userId"])
        if error is None:
            error = _check_rules(
                fields["/lifetime"], fields["/renewableAfter"], fields["/start"], fields["/end"]
            )
        if error is None and current is not None:
            store.replace_assignment(
                attrs.evolve(
                    current,
                    car_id=fields["/carId"],
                    user_id=fields["/userId"],
                    start=fields["/start"],
                    end=fields["/end"],
                    lifetime=fields["/lifetime"],
                    renewable_after=fields["/renewableAfter"],
                    renewable_after_explicit=explicit,
                )
            )
        return {
            "checksum": self.checksum,
            "assignmentId": self.assignment_id,
            "customerId": self.customer_id,
            "operationSucceeded": error is None,
            "errorMessage": error,
            "carId": fields["/carId"],
            "userId": fields["/userId"],
            "start": format_optional(fields["/start"]),
            "end": format_optional(fields["/end"]),
            "lifetime": fields["/lifetime"],
            "renewableAfter": fields["/renewableAfter"],
        }


@attrs.frozen
class DeleteWrite:
    """A pending ``DELETE /assignments/{id}``."""

    customer_id: int
    checksum: str
    assignment_id: int
    kind: Literal["delete"] = "delete"

    def apply(self, store: SandboxStore) -> dict[str, Any]:
        """Delete; the delete webhook payload."""
        current = store.get_assignment(self.assignment_id, self.customer_id)
        if current is not None:
            store.remove_assignment(current.id)
        return delete_payload(
            self.checksum,
            self.assignment_id,
            self.customer_id,
            current,
            None if current else ASSIGNMENT_NOT_FOUND,
        )
