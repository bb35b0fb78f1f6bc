"""Assignments: who may open which car, and when.

``GET /assignments/{id}``, ``GET /cars/{carId}/assignments``, ``GET /users/{userId}/assignments``,
and the asynchronous writes ``PUT /assignments``, ``PATCH /assignments/{id}``,
``DELETE /assignments/{id}``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

from .._converter import format_datetime, wire_datetime
from .._validate import check_aware, check_id, check_lifetimes, check_window
from ..models import Assignment, CarAssignment, UserAssignment
from ..odata import Query
from ..operations import PendingOperation
from ..patch import ASSIGNMENT_PATCH, JsonPatch
from ._base import Resource

__all__ = ["Assignments"]


class Assignments(Resource):
    """``client.assignments``."""

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
            ("cars", car_id, "assignments"), list[CarAssignment], query)
        return result

    async def list_for_user(self, user_id: int, *,
                            query: Query | None = None) -> list[UserAssignment]:
        """The user's assignments (``GET /users/{userId}/assignments``). Items carry no user id
        and their ``car_id`` may be ``None``."""
        check_id(user_id, "user_id")
        query = self._checked_query(query, UserAssignment, "user assignments")
        result: list[UserAssignment] = await self._get(
            ("users", user_id, "assignments"), list[UserAssignment], query)
        return result

    def iter_for_car(self, car_id: int, *, query: Query | None = None,
                     page_size: int = 100) -> AsyncIterator[CarAssignment]:
        """All of the car's assignments, fetched lazily ``page_size`` at a time."""
        check_id(car_id, "car_id")
        query = self._checked_query(query, CarAssignment, "car assignments")
        return self._iterate(("cars", car_id, "assignments"), CarAssignment, query, page_size)

    def iter_for_user(self, user_id: int, *, query: Query | None = None,
                      page_size: int = 100) -> AsyncIterator[UserAssignment]:
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
        body: dict[str, object] = {
            "carId": car_id,
            "userId": user_id,
            "start": format_datetime(start, "start"),
            "end": format_datetime(end, "end") if end is not None else None,
        }
        if lifetime is not None:
            body["lifetime"] = lifetime
        if renewable_after is not None:
            body["renewableAfter"] = renewable_after
        return await self._write("create", "PUT", ("assignments",), body, car_id=car_id,
                                 user_id=user_id, start=wire_datetime(start, "start"),
                                 end=wire_datetime(end, "end") if end is not None else None)

    async def update(self, assignment_id: int, patch: JsonPatch) -> PendingOperation:
        """Change an assignment with a :class:`~flinkey_async.JsonPatch`
        (``PATCH /assignments/{assignmentId}``, sent as ``application/json``)."""
        check_id(assignment_id, "assignment_id")
        if not isinstance(patch, JsonPatch):
            raise TypeError(f"patch must be a flinkey_async.JsonPatch, got {type(patch).__name__}")
        body = patch.to_body(ASSIGNMENT_PATCH)
        changed = patch.values()
        return await self._write("update", "PATCH", ("assignments", assignment_id), body,
                                 assignment_id=assignment_id, car_id=changed.get("car_id"),
                                 user_id=changed.get("user_id"), start=changed.get("start"),
                                 end=changed.get("end"))

    async def delete(self, assignment_id: int) -> PendingOperation:
        """Remove an assignment (``DELETE /assignments/{assignmentId}``)."""
        check_id(assignment_id, "assignment_id")
        return await self._write("delete", "DELETE", ("assignments", assignment_id), None,
                                 assignment_id=assignment_id)
