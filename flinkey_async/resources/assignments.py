"""Assignments: who may open which car, and when.

``GET /assignments/{id}``, ``GET /cars/{carId}/assignments``, ``GET /users/{userId}/assignments``,
and the asynchronous writes ``PUT /assignments``, ``PATCH /assignments/{id}``,
``DELETE /assignments/{id}``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from typing import Any

from .._converter import parse_datetime, unstructure
from .._validate import check_aware, check_id, check_window
from ..errors import NotFoundError
from ..models.assignments import (
    ASSIGNMENT_PATCH,
    Assignment,
    CarAssignment,
    NewAssignment,
    UserAssignment,
    check_lifetimes,
    create_key,
)
from ..odata import Query
from ..operations import OperationOutcome, PendingOperation
from ..patch import JsonPatch
from ..patch_schema import ValueKind
from ._base import Resource

__all__ = ["Assignments", "expected_after_patch"]


class Assignments(Resource):
    """``client.assignments``: who may open which car, and when.

    Reads return attrs models (:class:`~flinkey_async.models.Assignment`, and the partial
    list items :class:`~flinkey_async.models.CarAssignment` and
    :class:`~flinkey_async.models.UserAssignment`); the list methods take an OData
    :class:`~flinkey_async.Query` checked against the item's fields. Writes are applied by
    flinkey asynchronously: each returns a :class:`~flinkey_async.PendingOperation` whose
    ``wait()`` gives the outcome, confirmed by webhook when the client has a tracker, else
    observed by polling. Every argument is checked before anything is sent
    (:class:`~flinkey_async.errors.ValidationError`).
    """

    async def get(self, assignment_id: int, *, query: Query | None = None) -> Assignment:
        """One assignment (``GET /assignments/{assignmentId}``).

        Raises :class:`~flinkey_async.errors.NotFoundError` for an unknown id.
        """
        check_id(assignment_id, "assignment_id")
        query = self._checked_query(query, Assignment, "assignments")
        result: Assignment = await self._get(("assignments", assignment_id), Assignment, query)
        return result

    async def list_for_car(self, car_id: int, *, query: Query | None = None) -> list[CarAssignment]:
        """The car's assignments (``GET /cars/{carId}/assignments``), OData ``query`` applied
        by the server. Items carry no car id, lifetime or renewable_after (the API omits them)."""
        check_id(car_id, "car_id")
        query = self._checked_query(query, CarAssignment, "car assignments")
        result: list[CarAssignment] = await self._get(
            ("cars", car_id, "assignments"), list[CarAssignment], query
        )
        return result

    async def list_for_user(
        self, user_id: int, *, query: Query | None = None
    ) -> list[UserAssignment]:
        """The user's assignments (``GET /users/{userId}/assignments``). Items carry no user id
        and their ``car_id`` may be ``None``."""
        check_id(user_id, "user_id")
        query = self._checked_query(query, UserAssignment, "user assignments")
        result: list[UserAssignment] = await self._get(
            ("users", user_id, "assignments"), list[UserAssignment], query
        )
        return result

    def iter_for_car(
        self, car_id: int, *, query: Query | None = None, page_size: int = 100
    ) -> AsyncIterator[CarAssignment]:
        """All of the car's assignments, fetched lazily ``page_size`` at a time."""
        check_id(car_id, "car_id")
        query = self._checked_query(query, CarAssignment, "car assignments")
        return self._iterate(("cars", car_id, "assignments"), CarAssignment, query, page_size)

    def iter_for_user(
        self, user_id: int, *, query: Query | None = None, page_size: int = 100
    ) -> AsyncIterator[UserAssignment]:
        """All of the user's assignments, fetched lazily ``page_size`` at a time."""
        check_id(user_id, "user_id")
        query = self._checked_query(query, UserAssignment, "user assignments")
        return self._iterate(("users", user_id, "assignments"), UserAssignment, query, page_size)

    async def create(
        self,
        *,
        car_id: int,
        user_id: int,
        start: datetime,
        end: datetime | None = None,
        lifetime: int | None = None,
        renewable_after: int | None = None,
    ) -> PendingOperation:
        """Give ``user_id`` access to ``car_id`` from ``start`` until ``end`` (``None``: no end).

        ``lifetime`` (seconds) must be between 604800 (7 days) and 2419200 (28 days), inclusive,
        and ``0 < renewable_after < lifetime``; left out, the server applies its defaults
        (604800 and half the lifetime). Datetimes must be timezone-aware; they are sent in UTC
        with whole seconds. Every rule is checked before anything is sent; flinkey has the final
        word and reports it asynchronously (see :meth:`PendingOperation.wait`).
        """
        check_id(car_id, "car_id")
        check_id(user_id, "user_id")
        check_aware(start, "start")
        if end is not None:
            check_aware(end, "end")
        check_window(start, end)
        check_lifetimes(lifetime, renewable_after)
        request = NewAssignment(car_id, user_id, start, end, lifetime, renewable_after)
        return await self._write(
            "create",
            "PUT",
            ("assignments",),
            unstructure(request),
            request=request,
            description=f"create of an assignment (car {car_id}, user {user_id})",
            create_key=create_key(self._pipeline.customer_id, car_id, user_id, start, end),
            probe=self._observe_create,
        )

    async def update(self, assignment_id: int, patch: JsonPatch) -> PendingOperation:
        """Change an assignment with a :class:`~flinkey_async.JsonPatch`
        (``PATCH /assignments/{assignmentId}``, sent as ``application/json``)."""
        check_id(assignment_id, "assignment_id")
        if not isinstance(patch, JsonPatch):
            raise TypeError(f"patch must be a flinkey_async.JsonPatch, got {type(patch).__name__}")
        body = patch.to_body(ASSIGNMENT_PATCH)
        return await self._write(
            "update",
            "PATCH",
            ("assignments", assignment_id),
            body,
            assignment_id=assignment_id,
            request=patch,
            description=f"update of assignment {assignment_id}",
            probe=self._observe_update,
        )

    async def delete(self, assignment_id: int) -> PendingOperation:
        """Remove an assignment (``DELETE /assignments/{assignmentId}``)."""
        check_id(assignment_id, "assignment_id")
        return await self._write(
            "delete",
            "DELETE",
            ("assignments", assignment_id),
            None,
            assignment_id=assignment_id,
            description=f"delete of assignment {assignment_id}",
            probe=self._observe_delete,
        )

    # -- polling probes (one poll each; see PendingOperation.wait) ------------------------------
    async def _observe_delete(self, op: PendingOperation) -> tuple[OperationOutcome | None, str]:
        assert op.assignment_id is not None
        try:
            await self.get(op.assignment_id)
        except NotFoundError:
            return OperationOutcome(op, op.assignment_id, False), "gone"
        return None, f"GET /assignments/{op.assignment_id} still returns it"

    async def _observe_update(self, op: PendingOperation) -> tuple[OperationOutcome | None, str]:
        assert op.assignment_id is not None
        try:
            current = await self.get(op.assignment_id)
        except NotFoundError:
            op.fail(
                f"assignment {op.assignment_id} does not exist "
                "(GET /assignments/{id} answered 404 while polling)"
            )
        expected = expected_after_patch(op.body)
        differing = sorted(k for k, v in expected.items() if getattr(current, k) != v)
        if not differing:
            return OperationOutcome(op, op.assignment_id, False, assignment=current), "applied"
        return None, "GET /assignments/{id} still shows the old " + ", ".join(differing)

    async def _observe_create(self, op: PendingOperation) -> tuple[OperationOutcome | None, str]:
        request = op.request
        assert isinstance(request, NewAssignment)
        try:
            items = await self.list_for_car(request.car_id)
        except NotFoundError:
            op.fail(
                f"car {request.car_id} does not exist "
                "(GET /cars/{carId}/assignments answered 404 while polling)"
            )
        key = op.create_key
        found = [
            item
            for item in items
            if create_key(op.customer_id, request.car_id, item.user_id, item.start, item.end) == key
        ]
        if found:
            item = max(found, key=lambda a: a.id)
            return OperationOutcome(op, item.id, False, assignment=item), "found"
        return None, (
            f"no assignment of car {request.car_id} has user {request.user_id} and "
            "the start and end sent"
        )


def expected_after_patch(body: Any) -> dict[str, Any]:
    """What ``GET /assignments/{id}`` should show once a PATCH body is applied, by attribute.

    ``replace`` and ``remove`` of ``/userId`` and ``/end`` expect the value sent (``None`` for
    a remove or ``null``); ``remove`` (or ``null``) of ``/carId`` or ``/start`` expects ``None``,
    which an assignment never shows (flinkey rejects such a patch), so polling never observes
    it. ``/lifetime`` and ``/renewableAfter`` are expected only when set to a number: a remove
    resets them to a server default the SDK does not assume.
    """
    expected: dict[str, Any] = {}
    if not isinstance(body, list):
        return expected
    for item in body:
        if not isinstance(item, Mapping):
            continue
        try:
            field = ASSIGNMENT_PATCH.field(str(item.get("path")))
        except ValueError:
            continue
        value = item.get("value") if item.get("op") == "replace" else None
        if value is None:
            if not field.resets_to_default:
                expected[field.attribute] = None
            continue
        try:
            expected[field.attribute] = (
                parse_datetime(value) if field.kind is ValueKind.DATETIME else int(value)
            )
        except (TypeError, ValueError):
            continue
    return expected
