"""Assignments: who may open which car, and when.

``GET /assignments/{id}``, ``GET /cars/{carId}/assignments``, ``GET /users/{userId}/assignments``,
and the asynchronous writes ``PUT /assignments``, ``PATCH /assignments/{id}``,
``DELETE /assignments/{id}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import weakref
from collections.abc import AsyncIterator, Callable, Hashable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from .._converter import parse_datetime, unstructure
from .._sending import current_mark
from .._validate import check_aware, check_id, check_window
from ..bulk import BulkReport, ItemResult, Progress, run_bulk
from ..errors import FlinkeyError, JournalError, NotFoundError, ValidationError
from ..journal import FileJournal, Journal, JournalEntry
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
from ..reconcile import (
    DesiredAssignment,
    Existing,
    Plan,
    ReconcileReport,
    Update,
    default_key,
    diff,
    needs_details,
    report_of,
)
from ._base import Context, Resource

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

    def __init__(self, context: Context) -> None:
        super().__init__(context)
        self._car_lists = _CarLists(self.list_for_car)
        # When this client sent a delete of each assignment id (the latest, bounded): polling
        # an earlier update of it cannot tell its outcome from that delete's 404.
        self._deletes_sent: dict[int, datetime] = {}

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
        return await self._create(
            self._checked_new(NewAssignment(car_id, user_id, start, end, lifetime, renewable_after))
        )

    async def _create(
        self, request: NewAssignment, baseline: frozenset[int] = frozenset()
    ) -> PendingOperation:
        """Send a checked create; ``baseline``: the ids of assignments that already match its
        key (a caller that read the car, like bulk writes and reconcile, knows them), which
        polling then never takes for the new one."""
        car_id, user_id, start, end = request.car_id, request.user_id, request.start, request.end
        key = create_key(self._pipeline.customer_id, car_id, user_id, start, end)
        lists = self._car_lists
        sent = lists.now()  # polling takes no list read that started before this
        try:
            op = await self._write(
                "create",
                "PUT",
                ("assignments",),
                unstructure(request),
                request=request,
                description=f"create of an assignment (car {car_id}, user {user_id})",
                create_key=key,
                baseline=baseline,
                probe=self._observe_create,
            )
        except FlinkeyError as exc:
            if isinstance(exc.operation, PendingOperation):
                lists.sent(exc.operation, sent)
            raise
        lists.sent(op, sent)
        return op

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
        """Remove an assignment (``DELETE /assignments/{assignmentId}``).

        Without a tracker, the delete will be confirmed by polling, which sees a 404 both for
        a deleted assignment and for one that never existed; so the assignment is read first,
        and one that does not exist raises :class:`~flinkey_async.errors.NotFoundError`
        without anything being sent. With a tracker, flinkey's webhook gives the verdict.
        """
        check_id(assignment_id, "assignment_id")
        if self._context.tracker is None:
            await self.get(assignment_id)
        return await self._delete(assignment_id)

    async def _delete(self, assignment_id: int) -> PendingOperation:
        """Send a delete of an assignment known to exist (just read, or the tracker decides)."""
        sent = self._deletes_sent
        sent.pop(assignment_id, None)
        sent[assignment_id] = datetime.now(UTC)
        if len(sent) > 10_000:  # bounded: forget the oldest
            del sent[next(iter(sent))]
        return await self._write(
            "delete",
            "DELETE",
            ("assignments", assignment_id),
            None,
            assignment_id=assignment_id,
            description=f"delete of assignment {assignment_id}",
            probe=self._observe_delete,
        )

    # -- many writes, and reconcile ----------------------------------------------------------
    async def create_many(
        self,
        items: Iterable[NewAssignment],
        *,
        concurrency: int = 16,
        wait: bool = True,
        timeout: float | None = 60.0,  # noqa: ASYNC109 - per item, applied by wait()
        on_progress: Progress | None = None,
        report: BulkReport[NewAssignment] | None = None,
    ) -> BulkReport[NewAssignment]:
        """Create many assignments, at most ``concurrency`` at once, each awaited to its
        outcome (``wait``); one :class:`~flinkey_async.bulk.ItemResult` per item instead of
        stopping at the first failure (see :mod:`flinkey_async.bulk`). Pass a ``report`` to
        keep what was sent when the run is cancelled."""
        checked = _checked_items(items, "items", self._checked_new)
        return await run_bulk(
            checked,
            self._create,
            concurrency=concurrency,
            wait=wait,
            timeout=timeout,
            on_progress=on_progress,
            report=report,
        )

    async def update_many(
        self,
        items: Iterable[tuple[int, JsonPatch]],
        *,
        concurrency: int = 16,
        wait: bool = True,
        timeout: float | None = 60.0,  # noqa: ASYNC109 - per item, applied by wait()
        on_progress: Progress | None = None,
        report: BulkReport[tuple[int, JsonPatch]] | None = None,
    ) -> BulkReport[tuple[int, JsonPatch]]:
        """Apply ``(assignment_id, patch)`` pairs, like :meth:`create_many`."""
        checked = _checked_items(items, "items", _checked_update)

        async def send(item: tuple[int, JsonPatch]) -> PendingOperation:
            assignment_id, patch = item
            return await self.update(assignment_id, patch)

        return await run_bulk(
            checked,
            send,
            concurrency=concurrency,
            wait=wait,
            timeout=timeout,
            on_progress=on_progress,
            report=report,
        )

    async def delete_many(
        self,
        assignment_ids: Iterable[int],
        *,
        concurrency: int = 16,
        wait: bool = True,
        timeout: float | None = 60.0,  # noqa: ASYNC109 - per item, applied by wait()
        on_progress: Progress | None = None,
        report: BulkReport[int] | None = None,
    ) -> BulkReport[int]:
        """Delete assignments, like :meth:`create_many`. Without a tracker each one is read
        first (see :meth:`delete`), so that the delete of an assignment that does not exist
        fails (with flinkey's 404 text) instead of being confirmed by polling's 404."""
        checked = _checked_items(assignment_ids, "assignment_ids", lambda i: check_id(i, ""))
        # The read before each delete (see delete()) is run_bulk's check: when it fails, that
        # item fails without being sent, and the run goes on.
        return await run_bulk(
            checked,
            self._delete,
            check=self.get if self._context.tracker is None else None,
            concurrency=concurrency,
            wait=wait,
            timeout=timeout,
            on_progress=on_progress,
            report=report,
        )

    async def plan(
        self,
        desired: Iterable[DesiredAssignment],
        *,
        cars: Sequence[int],
        key: Callable[[Any], Hashable] = default_key,
        concurrency: int = 16,
    ) -> Plan:
        """Read the ``cars``' assignments and compute what :meth:`reconcile` would do (nothing
        is sent). See :mod:`flinkey_async.reconcile` for the rules."""
        wanted = list(desired)
        cars = _checked_cars(cars)
        existing = await self._read_cars(cars, concurrency)
        plan = diff(wanted, existing, cars=cars, key=key)
        detailed = [u for u in plan.unchanged + tuple(u.existing for u in plan.updates)]
        targets = {key(d): d for d in wanted}
        need = [e for e in detailed if needs_details(targets[key(e)])]
        if not need:
            return plan
        semaphore = asyncio.Semaphore(concurrency)

        async def details(found: Existing) -> Existing:
            async with semaphore:
                full = await self.get(found.id)
            return Existing(
                found.id,
                found.car_id,
                full.user_id,
                found.start,
                found.end,
                full.lifetime,
                full.renewable_after,
            )

        refreshed = {
            e.id: await_
            for e, await_ in zip(
                need, await asyncio.gather(*(details(e) for e in need)), strict=True
            )
        }
        return diff(wanted, [refreshed.get(e.id, e) for e in existing], cars=cars, key=key)

    async def reconcile(
        self,
        desired: Iterable[DesiredAssignment],
        *,
        cars: Sequence[int],
        key: Callable[[Any], Hashable] = default_key,
        concurrency: int = 16,
        timeout: float | None = 60.0,  # noqa: ASYNC109 - per write, applied by wait()
        rounds: int = 3,
        on_progress: Progress | None = None,
        journal: Journal | str | os.PathLike[str] | None = None,
        settle: float = 120.0,
    ) -> ReconcileReport:
        """Make the ``cars``' assignments equal ``desired``: plan (:meth:`plan`), apply every
        write with at most ``concurrency`` in flight, await each one's outcome, and report
        (:class:`~flinkey_async.reconcile.ReconcileReport`; its counts add up to its plan).
        Assignments of other cars are never touched.

        A write that failed on the way or whose outcome stayed unknown is not sent again
        blindly: after the round, the cars are read again and a new plan made from what
        flinkey really has (an applied write then simply shows), at most ``rounds`` times; the
        report is the last round's, with the earlier ones in ``previous``. Safe to run again:
        a re-run reads afresh (duplicates are deleted, the lowest id kept).

        ``journal`` (a :class:`~flinkey_async.journal.Journal`, or the path of a
        :class:`~flinkey_async.journal.FileJournal`) makes a re-run after a crash exact: every
        write is recorded before it is sent and settled once its outcome is known, and a run
        first waits for the writes an earlier run left open on these cars to show (at most
        ``settle`` seconds after each was sent) before it reads and plans, so that a create
        flinkey accepted but had not applied yet is not made twice (see
        :mod:`flinkey_async.journal`)."""
        if type(rounds) is not int or rounds < 1:
            raise ValueError(f"rounds must be an int >= 1, got {rounds!r}")
        if not settle >= 0:
            raise ValueError(f"settle must be a number of seconds >= 0, got {settle!r}")
        wanted = list(desired)
        cars = _checked_cars(cars)
        if journal is not None and not isinstance(journal, Journal):
            journal = FileJournal(journal)
        before = self._pipeline.limiter.stats.snapshot()
        if journal is not None:
            await self._settle(journal, cars, settle, concurrency)
        previous: list[ReconcileReport] = []
        while True:
            try:
                report = await self._reconcile_once(
                    wanted, cars, key, concurrency, timeout, on_progress, journal
                )
            except FlinkeyError as exc:
                if not previous:
                    raise  # the first reads failed: nothing was sent
                # A later round's reads failed: report what the rounds so far did.
                report = previous.pop()
                report.error = exc
                report.previous = previous
                report.stats = self._pipeline.limiter.stats - before
                return report
            if not report.ok:
                # The next round reads afresh and may send the same write again: the unknown
                # ones' webhooks must not be taken for the new writes' (or kept waiting).
                for result in report.unknown:
                    if result.operation is not None:
                        result.operation.abandon()
            if report.ok or len(previous) + 1 >= rounds:
                report.previous = previous
                report.stats = self._pipeline.limiter.stats - before
                return report
            previous.append(report)

    async def _reconcile_once(
        self,
        wanted: list[DesiredAssignment],
        cars: Sequence[int],
        key: Callable[[Any], Hashable],
        concurrency: int,
        limit: float | None,
        on_progress: Progress | None,
        journal: Journal | None = None,
    ) -> ReconcileReport:
        before = self._pipeline.limiter.stats.snapshot()
        customer = self._pipeline.customer_id
        recorded: dict[int, str] = {}  # id(tagged item) -> its journal record
        plan = await self.plan(wanted, cars=cars, key=key, concurrency=concurrency)
        tagged: list[tuple[str, Any]] = (
            [("delete", e) for e in plan.deletes]
            + [("update", u) for u in plan.updates]
            + [("create", d) for d in plan.creates]
        )

        async def send(item: tuple[str, Any]) -> PendingOperation:
            if journal is None:
                return await send_unrecorded(item)
            entry = _journal_entry(customer, item)
            journal.sent(entry)  # before it leaves: a crash from here on is covered
            recorded[id(item)] = entry.id
            try:
                return await send_unrecorded(item)
            except asyncio.CancelledError:
                mark = current_mark()  # run_bulk's, for this item
                if mark is not None and not mark.maybe_sent:
                    # Cancelled before it left: nothing for a later run to wait for.
                    with contextlib.suppress(JournalError):
                        journal.settled([entry.id])
                raise

        def ended(result: ItemResult[tuple[str, Any]]) -> None:
            entry_id = recorded.get(id(result.item))
            if journal is not None and entry_id is not None and result.status != "unknown":
                journal.settled([entry_id])  # applied or refused: nothing left open

        async def send_unrecorded(item: tuple[str, Any]) -> PendingOperation:
            kind, value = item
            if kind == "delete":
                return await self._delete(value.id)  # just read: it exists
            if kind == "update":
                update: Update = value
                return await self.update(update.existing.id, update.patch)
            wanted_item: DesiredAssignment = value
            return await self._create(
                NewAssignment(
                    wanted_item.car_id,
                    wanted_item.user_id,
                    wanted_item.start,
                    wanted_item.end,
                    wanted_item.lifetime,
                    wanted_item.renewable_after,
                )
            )  # the read found none with its key: the baseline is empty

        bulk: BulkReport[tuple[str, Any]] = await run_bulk(
            tagged,
            send,
            concurrency=concurrency,
            timeout=limit,
            on_progress=on_progress,
            on_item=ended,
        )
        return report_of(plan, bulk, self._pipeline.limiter.stats - before)

    async def _settle(
        self, journal: Journal, cars: Sequence[int], settle: float, concurrency: int
    ) -> None:
        """Wait until the writes ``journal`` holds open for these cars show in flinkey's data
        (at most ``settle`` seconds after each was sent), and settle them."""
        customer, wanted_cars = self._pipeline.customer_id, set(cars)
        open_entries = [
            e for e in journal.pending() if e.customer_id == customer and e.car_id in wanted_cars
        ]
        interval = 0.2
        while open_entries:
            lists = await self._car_lists_now(
                sorted({e.car_id for e in open_entries}), concurrency, missing_ok=True
            )
            now = datetime.now(UTC)
            done = [
                e
                for e in open_entries
                if (now - e.sent_at).total_seconds() >= settle
                or await self._shows(e, lists[e.car_id])
            ]
            journal.settled(e.id for e in done)
            open_entries = [e for e in open_entries if e not in done]
            if open_entries:
                oldest = min(e.sent_at for e in open_entries)
                left = settle - (datetime.now(UTC) - oldest).total_seconds()
                await asyncio.sleep(max(0.0, min(interval, left)))
                interval = min(interval * 2, 2.0)

    async def _car_lists_now(
        self, cars: Sequence[int], concurrency: int, *, missing_ok: bool = False
    ) -> dict[int, list[CarAssignment] | None]:
        """Every page of each car's list, read now, at most ``concurrency`` cars at once;
        ``missing_ok``: a car that does not exist reads as ``None`` instead of raising."""
        semaphore = asyncio.Semaphore(concurrency)

        async def one(car: int) -> list[CarAssignment] | None:
            async with semaphore:
                try:
                    return [item async for item in self.iter_for_car(car, page_size=500)]
                except NotFoundError:
                    if missing_ok:
                        return None  # no such car (any more): nothing of it can show
                    raise

        lists = await asyncio.gather(*(one(car) for car in cars))
        return dict(zip(cars, lists, strict=True))

    async def _shows(self, entry: JournalEntry, items: list[CarAssignment] | None) -> bool:
        """Whether a journaled write's effect shows in the car's list (``None``: the car is
        gone, so nothing is left to wait for)."""
        if items is None:
            return True
        if entry.kind == "create":
            key = create_key(entry.customer_id, entry.car_id, entry.user_id, entry.start, entry.end)
            return bool(_with_key(items, entry.customer_id, entry.car_id, key))
        if entry.kind == "delete":
            return all(i.id != entry.assignment_id for i in items)
        assert entry.assignment_id is not None
        try:
            current = await self.get(entry.assignment_id)
        except NotFoundError:
            return True
        expected = expected_after_patch(entry.patch)
        return all(getattr(current, k) == v for k, v in expected.items())

    async def _read_cars(self, cars: Sequence[int], concurrency: int) -> list[Existing]:
        lists = await self._car_lists_now(cars, concurrency)
        return [
            Existing(i.id, car, i.user_id, i.start, i.end) for car in cars for i in lists[car] or ()
        ]

    @staticmethod
    def _checked_new(item: NewAssignment) -> NewAssignment:
        if not isinstance(item, NewAssignment):
            raise TypeError(f"items must be NewAssignment, got {type(item).__name__}")
        check_id(item.car_id, "car_id")
        check_id(item.user_id, "user_id")
        check_aware(item.start, "start")
        if item.end is not None:
            check_aware(item.end, "end")
        check_window(item.start, item.end)
        check_lifetimes(item.lifetime, item.renewable_after)
        return item

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
            deleted = self._deletes_sent.get(op.assignment_id)
            if deleted is not None and deleted >= op.sent_at:
                # Gone by this client's own later delete: the 404 says nothing of the update.
                return None, (
                    f"assignment {op.assignment_id} was deleted by a later delete of this "
                    "client, so polling cannot tell whether the update was applied before"
                )
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
            items = await self._car_lists.for_probe(op, request.car_id)
        except NotFoundError:
            op.fail(
                f"car {request.car_id} does not exist "
                "(GET /cars/{carId}/assignments answered 404 while polling)"
            )
        found = [
            item
            for item in _with_key(items, op.customer_id, request.car_id, op.create_key)
            if item.id not in op.baseline
        ]
        if found:
            item = max(found, key=lambda a: a.id)
            return OperationOutcome(op, item.id, False, assignment=item), "found"
        return None, (
            f"no assignment of car {request.car_id} has user {request.user_id} and "
            "the start and end sent"
        )


class _CarLists:
    """Coalesced reads of car lists for polling: the creates on one car that poll at about the
    same time share one ``GET /cars/{carId}/assignments``, so confirming many creates costs one
    request per car and round, not one per create. A probe takes a read that started after its
    own previous poll (in flight or done), so it never sees a list older than it has seen."""

    def __init__(self, fetch: Any, *, clock: Any = time.monotonic) -> None:
        self._fetch = fetch
        self._clock = clock
        self._reads: dict[int, tuple[float, asyncio.Future[list[CarAssignment]]]] = {}
        self._last_poll: weakref.WeakKeyDictionary[PendingOperation, float] = (
            weakref.WeakKeyDictionary()
        )

    def now(self) -> float:
        """The clock's time, for :meth:`sent`."""
        now: float = self._clock()
        return now

    def sent(self, op: PendingOperation, at: float) -> None:
        """``op`` was sent at ``at`` (:meth:`now`): its first poll takes no read started
        before, which cannot show the write (a car read for an earlier create with the same
        key would show that one's assignment only)."""
        self._last_poll.setdefault(op, at)

    async def for_probe(self, op: PendingOperation, car_id: int) -> list[CarAssignment]:
        """The car's list for one poll of ``op``."""
        now = self._clock()
        since = self._last_poll.get(op, float("-inf"))
        self._last_poll[op] = now
        return await self.get(car_id, since)

    async def get(self, car_id: int, since: float = float("-inf")) -> list[CarAssignment]:
        """A list read that started at or after ``since`` (joined, or started now)."""
        now = self._clock()
        entry = self._reads.get(car_id)
        if (
            entry is None
            or entry[0] < since
            or (entry[1].done() and entry[1].exception() is not None)
        ):
            future = asyncio.ensure_future(self._fetch(car_id))
            future.add_done_callback(_retrieve)
            entry = self._reads[car_id] = (now, future)
            if len(self._reads) > 10_000:  # bounded: forget the oldest reads
                for stale in sorted(self._reads, key=lambda c: self._reads[c][0])[:5_000]:
                    del self._reads[stale]
        items: list[CarAssignment] = await asyncio.shield(entry[1])
        return items


def _checked_cars(cars: Sequence[int]) -> tuple[int, ...]:
    """The cars to reconcile, each checked, in their order, each once (a car named twice is
    one car: read twice, its every assignment would look like its own duplicate)."""
    if isinstance(cars, (str, bytes)) or not isinstance(cars, Iterable):
        raise TypeError(f"cars must be a list of car ids, got {type(cars).__name__}")
    listed = list(cars)
    for car in listed:
        check_id(car, "cars")
    return tuple(dict.fromkeys(listed))


def _with_key(
    items: Iterable[CarAssignment], customer_id: int, car_id: int, key: object
) -> list[CarAssignment]:
    """The items of a car's list whose create key is ``key`` (those a create with it made)."""
    return [
        item
        for item in items
        if create_key(customer_id, car_id, item.user_id, item.start, item.end) == key
    ]


def _journal_entry(customer: int, item: tuple[str, Any]) -> JournalEntry:
    """The journal record of one of reconcile's writes (``(kind, item)``)."""
    kind, value = item
    if kind == "delete":
        existing: Existing = value
        return JournalEntry.new("delete", customer, existing.car_id, assignment_id=existing.id)
    if kind == "update":
        update: Update = value
        return JournalEntry.new(
            "update",
            customer,
            update.existing.car_id,
            assignment_id=update.existing.id,
            patch=update.patch.to_body(ASSIGNMENT_PATCH),
        )
    wanted: DesiredAssignment = value
    return JournalEntry.new(
        "create",
        customer,
        wanted.car_id,
        user_id=wanted.user_id,
        start=wanted.start,
        end=wanted.end,
        lifetime=wanted.lifetime,
        renewable_after=wanted.renewable_after,
    )


def _checked_items(items: Iterable[Any], name: str, check: Callable[[Any], Any]) -> list[Any]:
    """Every item of a bulk write checked before any is sent, as given; a bad one raises what
    its check raised, naming its index (``ValidationError``'s ``argument`` becomes, for
    example, ``items[2].car_id``, or ``assignment_ids[2]`` for an argument ``""``)."""
    checked = []
    for index, item in enumerate(items):
        try:
            check(item)
        except ValidationError as exc:
            argument = f"{name}[{index}]" + (f".{exc.argument}" if exc.argument else "")
            raise ValidationError(argument, exc.message) from None
        except TypeError as exc:
            raise TypeError(f"{name}[{index}]: {exc}") from None
        checked.append(item)
    return checked


def _checked_update(item: Any) -> None:
    """What :meth:`Assignments.update` checks, for one ``(assignment_id, patch)`` pair."""
    if isinstance(item, str | bytes) or not isinstance(item, Sequence) or len(item) != 2:
        raise TypeError(
            f"must be an (assignment_id, patch) pair, got {type(item).__name__} {item!r:.80}"
        )
    assignment_id, patch = item
    check_id(assignment_id, "assignment_id")
    if not isinstance(patch, JsonPatch):
        raise TypeError(f"patch must be a flinkey_async.JsonPatch, got {type(patch).__name__}")
    patch.to_body(ASSIGNMENT_PATCH)


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()  # retrieved: a failed read nobody awaits any more logs nothing


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
