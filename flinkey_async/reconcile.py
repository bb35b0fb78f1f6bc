"""Reconcile: make flinkey's assignments of some cars equal a desired list, in one call.

Observe, diff, plan, apply, confirm (the controller loop of Kubernetes, the plan/apply of
Terraform): :func:`diff` is pure and computes the :class:`Plan` from the desired items and
what the cars have; ``client.assignments.plan(...)`` reads and diffs, sending nothing;
``client.assignments.reconcile(...)`` plans, then applies the plan as bulk writes
(:mod:`flinkey_async.bulk`), each awaited to its confirmed outcome, and reports.

Identity: assignments carry no external reference, so an assignment is identified by a key,
by default ``(car_id, user_id, start)`` (start in UTC, whole seconds, as sent). Two desired
items with one key are rejected before anything is sent; several existing assignments with one
key keep the one with the lowest id and delete the rest. Differences in ``end`` (``None``: no
end), ``lifetime`` and ``renewable_after`` (``None`` in a desired item: leave as the server has
it) become one JSON-Patch update; single assignments are read only where a list item lacks a
compared field (``lifetime`` and ``renewable_after``, when the desired item sets them).
Assignments of cars not named in ``cars`` are never touched: that is also how a large fleet is
split across workers (each worker reconciles its own cars).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from datetime import datetime
from typing import Any

import attrs

from ._converter import wire_datetime
from ._validate import check_aware, check_id, check_window
from .bulk import BulkReport, ItemResult
from .errors import FlinkeyError, ValidationError
from .limits import RequestStats
from .models.assignments import check_lifetimes
from .patch import JsonPatch

__all__ = [
    "DesiredAssignment",
    "Existing",
    "Plan",
    "ReconcileReport",
    "Update",
    "default_key",
    "diff",
]


@attrs.frozen
class DesiredAssignment:
    """One assignment as it should be (validated when made, like a create's arguments)."""

    car_id: int
    user_id: int
    start: datetime
    end: datetime | None = None
    lifetime: int | None = None
    renewable_after: int | None = None

    def __attrs_post_init__(self) -> None:
        check_id(self.car_id, "car_id")
        check_id(self.user_id, "user_id")
        check_aware(self.start, "start")
        if self.end is not None:
            check_aware(self.end, "end")
        check_window(self.start, self.end)
        check_lifetimes(self.lifetime, self.renewable_after)


@attrs.frozen
class Existing:
    """An assignment as read: from a car's list (``lifetime``/``renewable_after`` unknown,
    ``None``, unless the single assignment was read)."""

    id: int
    car_id: int
    user_id: int | None
    start: datetime
    end: datetime | None
    lifetime: int | None = None
    renewable_after: int | None = None


def default_key(item: DesiredAssignment | Existing) -> Hashable:
    """``(car_id, user_id, start)``, start in UTC whole seconds."""
    return (item.car_id, item.user_id, wire_datetime(item.start))


@attrs.frozen
class Update:
    """An existing assignment, what it should be, and the patch that makes it so."""

    existing: Existing
    desired: DesiredAssignment
    patch: JsonPatch


@attrs.frozen
class Plan:
    """What reconcile would do, per kind (``unchanged`` existing assignments match)."""

    cars: tuple[int, ...]
    creates: tuple[DesiredAssignment, ...] = ()
    updates: tuple[Update, ...] = ()
    deletes: tuple[Existing, ...] = ()
    unchanged: tuple[Existing, ...] = ()

    @property
    def writes(self) -> int:
        return len(self.creates) + len(self.updates) + len(self.deletes)

    @property
    def size(self) -> int:
        """Every item of the plan (writes and unchanged)."""
        return self.writes + len(self.unchanged)


def needs_details(item: DesiredAssignment) -> bool:
    """Whether comparing ``item`` needs the single assignment (a list item lacks the
    lifetime and renewableAfter)."""
    return item.lifetime is not None or item.renewable_after is not None


def diff(
    desired: Iterable[DesiredAssignment],
    existing: Iterable[Existing],
    *,
    cars: Sequence[int],
    key: Callable[[Any], Hashable] = default_key,
) -> Plan:
    """The plan that turns ``existing`` (every assignment of ``cars``) into ``desired``
    (pure; raises :class:`ValidationError` for duplicate keys or a car not in ``cars``)."""
    car_set = set(cars)
    wanted: dict[Hashable, DesiredAssignment] = {}
    for item in desired:
        if not isinstance(item, DesiredAssignment):
            raise TypeError(f"desired items must be DesiredAssignment, got {type(item).__name__}")
        if item.car_id not in car_set:
            raise ValidationError(
                "desired", f"car {item.car_id} is not among the cars reconciled ({sorted(car_set)})"
            )
        k = key(item)
        if k in wanted:
            raise ValidationError("desired", f"two desired assignments have the key {k!r}")
        wanted[k] = item
    by_key: dict[Hashable, list[Existing]] = {}
    seen: set[int] = set()
    for found in existing:
        # An id listed twice (pages that overlapped while the list changed) is one assignment:
        # the second copy is no duplicate to delete.
        if found.car_id in car_set and found.id not in seen:
            seen.add(found.id)
            by_key.setdefault(key(found), []).append(found)
    creates: list[DesiredAssignment] = []
    updates: list[Update] = []
    deletes: list[Existing] = []
    unchanged: list[Existing] = []
    for k, found_list in by_key.items():
        keep, *extra = sorted(found_list, key=lambda f: f.id)
        deletes.extend(extra)
        target = wanted.get(k)
        if target is None:
            deletes.append(keep)
            continue
        patch = _patch(keep, target)
        if patch is None:
            unchanged.append(keep)
        else:
            updates.append(Update(keep, target, patch))
    creates = [item for k, item in wanted.items() if k not in by_key]
    return Plan(
        tuple(sorted(car_set)),
        tuple(creates),
        tuple(updates),
        tuple(sorted(deletes, key=lambda f: f.id)),
        tuple(unchanged),
    )


def _patch(current: Existing, target: DesiredAssignment) -> JsonPatch | None:
    patch = JsonPatch()
    target_end = None if target.end is None else wire_datetime(target.end)
    if current.end != target_end:
        patch = patch.replace("/end", target.end) if target.end else patch.remove("/end")
    if target.lifetime is not None and current.lifetime != target.lifetime:
        patch = patch.replace("/lifetime", target.lifetime)
    if target.renewable_after is not None and current.renewable_after != target.renewable_after:
        patch = patch.replace("/renewableAfter", target.renewable_after)
    return patch if len(patch) else None


@attrs.define
class ReconcileReport:
    """What a reconcile did. Every item of its plan is in exactly one of ``created``,
    ``updated``, ``deleted``, ``unchanged``, ``failed`` and ``unknown`` (sent, outcome not
    known: a re-run reads again and settles it), so their counts add up to the plan's size.

    Attributes:
        plan: the plan applied.
        created, updated, deleted: :class:`~flinkey_async.bulk.ItemResult` of each write
            that succeeded (its ``item`` the DesiredAssignment, Update or Existing).
        unchanged: the existing assignments that already matched.
        failed: writes flinkey refused (``reason`` is its message).
        unknown: writes whose outcome is not known.
        stats: the requests, 429s and retries this reconcile cost (every round).
        previous: the reports of earlier rounds, when writes failed on the way or stayed
            unknown and the cars were read and planned again.
        error: why a further round could not be made (its reads failed, e.g. flinkey kept
            answering 5xx): this report is then the last round that was, and not ``ok``.
    """

    plan: Plan
    created: list[ItemResult[Any]] = attrs.field(factory=list)
    updated: list[ItemResult[Any]] = attrs.field(factory=list)
    deleted: list[ItemResult[Any]] = attrs.field(factory=list)
    unchanged: list[Existing] = attrs.field(factory=list)
    failed: list[ItemResult[Any]] = attrs.field(factory=list)
    unknown: list[ItemResult[Any]] = attrs.field(factory=list)
    stats: RequestStats = attrs.field(factory=RequestStats)
    previous: list[ReconcileReport] = attrs.field(factory=list, repr=False)
    error: FlinkeyError | None = attrs.field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        """Every write succeeded."""
        return not self.failed and not self.unknown and self.error is None

    def total(self) -> int:
        return (
            len(self.created)
            + len(self.updated)
            + len(self.deleted)
            + len(self.unchanged)
            + len(self.failed)
            + len(self.unknown)
        )


def report_of(plan: Plan, bulk: BulkReport[Any], stats: RequestStats) -> ReconcileReport:
    """Sort a bulk run of ``plan``'s writes (items tagged ``(kind, item)``) into a report."""
    report = ReconcileReport(plan, unchanged=list(plan.unchanged), stats=stats)
    for result in bulk.results:
        kind, item = result.item
        result.item = item
        if result.status == "succeeded":
            {"create": report.created, "update": report.updated, "delete": report.deleted}[
                kind
            ].append(result)
        elif result.status == "failed":
            report.failed.append(result)
        else:
            report.unknown.append(result)
    return report
