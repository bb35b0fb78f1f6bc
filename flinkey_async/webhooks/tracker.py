"""The correlation tracker: matches webhook events to the writes this process sent and
resolves their :class:`~flinkey_async.operations.PendingOperation` (pure bookkeeping; it is
fed by a receiver and never does I/O itself)."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from itertools import count
from typing import Any, TypeAlias, TypeVar

import attrs

from ..errors import OperationTimeoutError
from ..operations import OperationOutcome, PendingOperation
from ..operations.pending import check_wait
from ._tasks import LRU, Callbacks, Warnings, logger
from .events import KINDS, AssignmentEvent, EventHandler

__all__ = ["OperationTracker", "Resolution"]

_T = TypeVar("_T")

#: ``(kind, customer, create key or assignment id, checksum)``: identical requests share it.
_Identity: TypeAlias = tuple[str, int, object, str]


def _drop(index: dict[Any, list[_T]], key: Any, entry: _T) -> None:
    bucket = index.get(key)
    if bucket is not None:
        if entry in bucket:
            bucket.remove(entry)
        if not bucket:
            del index[key]


class _Orphans:
    """Recent unmatched events, oldest first, at most ``limit``, indexed by assignment id and
    create key. Each keeps a ``source``: what its feeder knows of where it came from (``None``
    for an event handed to :meth:`OperationTracker.resolve`)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        # token -> (deadline, when it arrived (aware UTC), event, source)
        self._events: OrderedDict[int, tuple[float, datetime, AssignmentEvent, object]] = (
            OrderedDict()
        )
        self._index: dict[object, list[int]] = {}
        self._tokens = count()

    def __len__(self) -> int:
        return len(self._events)

    def __iter__(self) -> Iterator[AssignmentEvent]:
        return (event for _deadline, _arrived, event, _source in list(self._events.values()))

    @staticmethod
    def _keys(event: AssignmentEvent) -> list[object]:
        keys: list[object] = []
        if event.assignment_id is not None:
            keys.append(("id", event.customer_id, event.assignment_id))
        key = event.create_key
        if key is not None:
            keys.append(("key", key))
        return keys

    def add(self, deadline: float, event: AssignmentEvent, source: object = None) -> None:
        token = next(self._tokens)
        self._events[token] = (deadline, datetime.now(UTC), event, source)
        for key in self._keys(event):
            self._index.setdefault(key, []).append(token)
        while len(self._events) > self.limit:
            self.remove(next(iter(self._events)))

    def remove(self, token: int) -> None:
        """Forget the event of ``token`` (nothing when it is gone already)."""
        kept = self._events.pop(token, None)
        if kept is None:
            return
        event = kept[2]
        for key in self._keys(event):
            _drop(self._index, key, token)

    def expire(self, now: float) -> None:
        while self._events:
            token, (deadline, _arrived, _event, _source) = next(iter(self._events.items()))
            if deadline > now:
                return
            self.remove(token)

    def find(self, key: object, since: datetime) -> list[tuple[int, AssignmentEvent, object]]:
        """The events indexed under ``key`` that arrived at or after ``since``, oldest first,
        with their tokens and sources."""
        found = []
        for token in self._index.get(key, ()):
            _deadline, arrived, event, source = self._events[token]
            if arrived >= since:
                found.append((token, event, source))
        return found


class _Entry:
    """A pending operation in the tracker."""

    __slots__ = ("create_key", "expected_at", "op", "seq")

    def __init__(self, op: PendingOperation, seq: int, expected_at: float) -> None:
        self.op = op
        self.seq = seq
        self.expected_at = expected_at
        self.create_key = op.create_key if op.kind == "create" else None

    @property
    def identity(self) -> _Identity:
        op = self.op
        target: object = self.create_key if op.kind == "create" else op.assignment_id
        return (op.kind, op.customer_id, target, op.checksum)


@attrs.frozen
class Resolution:
    """What :meth:`OperationTracker.resolve` made of an event.

    Attributes:
        event: the event, with ``kind`` set to the matched operation's kind.
        operation: the operation it resolved, or ``None`` (unsolicited, or a duplicate).
        duplicate: the event is a repeated delivery of one already handled.
    """

    event: AssignmentEvent
    operation: PendingOperation | None
    duplicate: bool = False


class OperationTracker:
    """Matches webhook events to the writes this process sent, and resolves their
    :class:`~flinkey_async.operations.PendingOperation`.

    Attach it to a client (``FlinkeyClient(..., tracker=tracker)`` or ``client.tracker =
    tracker``) and to a receiver (:func:`webhook_app` / :func:`add_webhook_routes`); then
    ``await op.wait()`` returns once the webhook arrived. The client calls :meth:`expect` before
    a write leaves, so an event that arrives before the write's own 204 still finds it.

    **Correlation.** flinkey's payload links to its request only through its fields:

    * an update or a delete by ``(customerId, assignmentId)``;
    * a create by ``(customerId, carId, userId, start, end)`` of the request (datetimes in UTC,
      whole seconds), since a failed create has no id;
    * when several pending operations fit, the one whose body checksum equals the event's
      ``checksum`` wins (the SDK computes the MD5 of the exact bytes sent, which is what the
      sandbox does; flinkey's algorithm is undocumented), else the oldest (first in, first
      out, on the assumption that flinkey applies writes in the order they arrive, which is
      undocumented; identical creates are interchangeable anyway);
    * an event whose ``assignmentId`` has a pending update or delete, or was already reported
      for a create, is not a create: the assignment existed before. Otherwise an event whose
      fields match a pending create's key is taken as that create (so an unsolicited event
      carrying exactly the fields of a create in flight, e.g. the delete of an identical
      older assignment, can be mistaken for it unless the checksums decide; see
      ``strict_checksum``).

    **Duplicates.** A repeated delivery (same :attr:`AssignmentEvent.fingerprint`) is reported
    once. Only identical requests in flight at the same time produce identical events; then a
    repeat resolves the next identical pending operation, except for a successful create or
    delete (an id is created or deleted once), which is always a duplicate. So, of two identical
    updates in flight, a duplicated delivery of the first's outcome can be taken for the
    second's.

    **Unsolicited events** (no pending operation: another process's writes, writes made in the
    Portal, or the deletes flinkey reports after a Box is uninstalled) resolve nothing; they
    go to ``on_unsolicited`` (sync or async; errors are logged) and to the receiver's handler.
    They are kept for ``orphan_ttl`` seconds (at most ``max_orphans``) in case a matching
    :meth:`expect` follows, for a write sent before it was expected: that write resolves at
    once. An event that arrived before a write was sent (``sent_at``) is never taken for its
    outcome. At most
    ``max_callback_tasks`` async ``on_unsolicited`` calls run at once and at most
    ``max_callback_backlog`` more wait; further calls are dropped (counted in
    :attr:`callbacks_dropped`, with a rate-limited warning).

    **Memory is bounded**: resolved operations are dropped at once (the operation keeps its
    outcome), pending ones after ``pending_ttl`` seconds, and at most ``memory`` fingerprints
    and created ids are remembered.

    ``strict_checksum=True`` accepts an event for an operation only when its ``checksum`` equals
    the operation's body checksum: exact against the sandbox, but wrong where flinkey computes
    the checksum differently.

    Use a tracker from one event loop (the one serving the receiver and sending the writes).
    """

    def __init__(
        self,
        *,
        on_unsolicited: EventHandler | None = None,
        strict_checksum: bool = False,
        pending_ttl: float = 3600.0,
        orphan_ttl: float = 10.0,
        max_orphans: int = 1000,
        memory: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
        max_callback_tasks: int = 100,
        max_callback_backlog: int = 1000,
    ) -> None:
        self.on_unsolicited = on_unsolicited
        self.strict_checksum = strict_checksum
        self.pending_ttl = pending_ttl
        self.orphan_ttl = orphan_ttl
        self.max_orphans = max_orphans
        self._clock = clock
        self._seq = count()
        self._entries: dict[int, _Entry] = {}
        self._creates: dict[tuple[Any, ...], list[_Entry]] = {}
        self._by_id: dict[tuple[int, int], list[_Entry]] = {}
        self._seen = LRU(memory)
        self._created_ids = LRU(memory)
        self._orphans = _Orphans(max_orphans)
        self._callbacks = Callbacks(
            "on_unsolicited callback",
            limit=max_callback_tasks,
            backlog=max_callback_backlog,
            warnings=Warnings(60.0),
        )
        #: Events recognised as repeated deliveries.
        self.duplicates = 0
        #: Events that matched no pending operation.
        self.unsolicited = 0

    # -- bookkeeping -------------------------------------------------------------------------
    @property
    def callbacks_dropped(self) -> int:
        """``on_unsolicited`` calls dropped because too many were running or waiting."""
        return self._callbacks.dropped

    @property
    def _tasks(self) -> set[asyncio.Task[None]]:
        """The running and waiting ``on_unsolicited`` calls."""
        return self._callbacks.tasks

    @property
    def pending(self) -> int:
        """Number of operations waiting for their webhook."""
        return len(self._entries)

    def is_pending(self, op: PendingOperation) -> bool:
        """True while ``op`` is expected and not yet resolved."""
        return id(op) in self._entries and self._entries[id(op)].op is op

    def expect(self, op: PendingOperation) -> None:
        """Start looking for the webhook of ``op`` (called by the client before sending)."""
        if self.is_pending(op) or op.done():
            return
        now = self._clock()
        self._prune(now)
        entry = _Entry(op, next(self._seq), now)
        self._entries[id(op)] = entry
        if entry.create_key is not None:
            self._creates.setdefault(entry.create_key, []).append(entry)
        elif op.assignment_id is not None:
            self._by_id.setdefault((op.customer_id, op.assignment_id), []).append(entry)
        if self._orphans:
            self._claim_orphan(entry)

    def discard(self, op: PendingOperation) -> None:
        """Stop looking for ``op`` (called by the client when sending failed)."""
        entry = self._entries.get(id(op))
        if entry is not None and entry.op is op:
            self._remove(entry)

    def _remove(self, entry: _Entry) -> None:
        self._entries.pop(id(entry.op), None)
        op = entry.op
        if entry.create_key is not None:
            _drop(self._creates, entry.create_key, entry)
        elif op.assignment_id is not None:
            _drop(self._by_id, (op.customer_id, op.assignment_id), entry)

    def _prune(self, now: float) -> None:
        while self._entries:
            oldest = next(iter(self._entries.values()))
            if now - oldest.expected_at <= self.pending_ttl:
                break
            logger.debug(
                "no webhook for the %s after %.0f s; forgetting it",
                oldest.op.describe(),
                now - oldest.expected_at,
            )
            self._remove(oldest)
        self._orphans.expire(now)

    # -- matching ----------------------------------------------------------------------------
    def _fits(self, entry: _Entry, event: AssignmentEvent) -> bool:
        return not self.strict_checksum or entry.op.checksum == event.checksum

    def _candidates(self, event: AssignmentEvent) -> tuple[list[_Entry], list[_Entry]]:
        """Pending operations the event can report: (by assignment id, by create key). One
        settled otherwise meanwhile (by polling) is none: the event may be another's."""
        by_id: list[_Entry] = []
        creates: list[_Entry] = []
        customer = event.customer_id
        if event.assignment_id is not None:
            by_id = [
                e
                for e in self._by_id.get((customer, event.assignment_id), ())
                if e.op.kind in event.possible_kinds
                and self._fits(e, event)
                and not e.op.state.done
            ]
        if "create" in event.possible_kinds and not (
            event.assignment_id is not None and (customer, event.assignment_id) in self._created_ids
        ):
            key = event.create_key
            if key is not None:
                creates = [
                    e
                    for e in self._creates.get(key, ())
                    if self._fits(e, event) and not e.op.state.done
                ]
        return by_id, creates

    def _match(self, event: AssignmentEvent) -> _Entry | None:
        by_id, creates = self._candidates(event)
        for entry in sorted(by_id + creates, key=lambda e: e.seq):
            if entry.op.checksum == event.checksum:
                return entry
        if by_id:  # the assignment existed before: not a create
            return by_id[0]
        return creates[0] if creates else None

    def _identical_pending(self, identity: _Identity) -> _Entry | None:
        kind, customer, target, _checksum = identity
        bucket: list[_Entry] | None = None
        if kind == "create" and isinstance(target, tuple):
            bucket = self._creates.get(target)
        elif isinstance(target, int):
            bucket = self._by_id.get((customer, target))
        for entry in bucket or ():
            if entry.identity == identity and not entry.op.state.done:
                return entry
        return None

    def _repeat_of(self, identity: _Identity | None, event: AssignmentEvent) -> _Entry | None:
        """The pending operation a repeated delivery (its fingerprint remembered with
        ``identity``) resolves: the next identical one, except for a successful create or
        delete (an id is created or deleted once)."""
        if identity is None or (event.operation_succeeded and identity[0] in ("create", "delete")):
            return None
        return self._identical_pending(identity)

    def _target(self, event: AssignmentEvent) -> _Entry | None:
        """The pending operation :meth:`resolve` would settle with ``event`` now (settling
        nothing)."""
        fingerprint = event.fingerprint
        if fingerprint in self._seen:
            return self._repeat_of(self._seen[fingerprint], event)
        return self._match(event)

    def resolve(self, event: AssignmentEvent) -> Resolution:
        """Hand one webhook event to the tracker (called by the receiver).

        Resolves the matching pending operation, if any (so its ``wait()`` returns), and
        reports what the event turned out to be. Never raises for an unexpected event.
        """
        return self._resolve(event)

    def _resolve(self, event: AssignmentEvent, source: object = None) -> Resolution:
        """:meth:`resolve`, keeping ``source`` with the event if it is kept as an orphan."""
        now = self._clock()
        self._prune(now)
        fingerprint = event.fingerprint
        entry: _Entry | None
        if fingerprint in self._seen:
            identity: _Identity | None = self._seen[fingerprint]
            self._seen.move_to_end(fingerprint)
            entry = self._repeat_of(identity, event)
            if entry is None:
                self.duplicates += 1
                kind = identity[0] if identity is not None else event.kind
                return Resolution(self._with_kind(event, kind), None, duplicate=True)
        else:
            entry = self._match(event)
            self._seen.put(fingerprint, entry.identity if entry is not None else None)
        if entry is None:
            self._unsolicited(now, event, source)
            return Resolution(event, None)
        return Resolution(self._settle(entry, event), entry.op)

    def _unsolicited(self, now: float, event: AssignmentEvent, source: object = None) -> None:
        """Count an event that resolves nothing, keep it as an orphan and report it."""
        self.unsolicited += 1
        self._orphans.add(now + self.orphan_ttl, event, source)
        if self.on_unsolicited is not None:
            self._callbacks.call(self.on_unsolicited, event)

    def _settle(self, entry: _Entry, event: AssignmentEvent) -> AssignmentEvent:
        self._remove(entry)
        op = entry.op
        event = self._with_kind(event, op.kind)
        if op.kind == "create" and event.operation_succeeded and event.assignment_id is not None:
            self._created_ids.put((event.customer_id, event.assignment_id), None)
        op.state.record_event(event)
        return event

    @staticmethod
    def _with_kind(event: AssignmentEvent, kind: str | None) -> AssignmentEvent:
        if kind is None or event.kind == kind or kind not in KINDS:
            return event
        return attrs.evolve(event, kind=kind, possible_kinds=frozenset({kind}))

    def _claim_orphan(self, entry: _Entry) -> None:
        """A recent unsolicited event may belong to an operation expected only now."""
        for token, event, _source in self._orphans_for(entry):
            self._adopt(entry, token, event)
            return

    def _orphans_for(self, entry: _Entry) -> Iterator[tuple[int, AssignmentEvent, object]]:
        """The kept unsolicited events that can report ``entry``'s operation, oldest first
        (with their tokens and sources)."""
        op = entry.op
        key: object = (
            ("key", entry.create_key)
            if entry.create_key is not None
            else ("id", op.customer_id, op.assignment_id)
        )
        # An event that arrived before the write was sent cannot be its outcome (another
        # client's write of the same assignment, or an uninstall's delete of an identical one).
        for token, event, source in self._orphans.find(key, op.sent_at):
            by_id, creates = self._candidates(event)
            if entry in by_id or entry in creates:
                yield token, event, source

    def _adopt(self, entry: _Entry, token: int, event: AssignmentEvent) -> None:
        """Settle ``entry``'s operation with the kept unsolicited event of ``token``."""
        self._orphans.remove(token)
        self.unsolicited -= 1
        self._seen.put(event.fingerprint, entry.identity)
        self._settle(entry, event)

    def orphans(self) -> Iterator[AssignmentEvent]:
        """The unsolicited events still kept (oldest first)."""
        return iter(self._orphans)

    # -- waiting -----------------------------------------------------------------------------
    async def wait(self, op: PendingOperation, timeout: float | None = 30.0) -> OperationOutcome:  # noqa: ASYNC109
        """The outcome of ``op`` once its webhook arrived (see :meth:`PendingOperation.wait`).

        Raises:
            OperationFailedError: flinkey reported a failure.
            OperationTimeoutError: no matching webhook within ``timeout`` seconds.
            RuntimeError: this tracker is not waiting for ``op``.
        """
        check_wait(timeout)
        state = op.state
        if not state.done and not self.is_pending(op):
            raise RuntimeError(
                f"the {op.describe()} is not tracked by this OperationTracker (was it sent "
                "before the tracker was attached, or did its webhook time out long ago?)"
            )
        if not state.done:
            try:
                async with asyncio.timeout(timeout):
                    await state.wait_event()
            except TimeoutError:
                raise OperationTimeoutError(
                    f"the {op.describe()} was not confirmed within {timeout} s: no matching "
                    "webhook arrived. Check that the webhook URL registered in the flinkey "
                    "Portal reaches this receiver and that its secret matches; the write may "
                    "still be applied later"
                ) from None
        return op.result()
