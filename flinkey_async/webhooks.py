"""flinkey's assignment webhooks: parsing, verification, an aiohttp receiver, and the
:class:`OperationTracker` that turns them into the outcomes of :class:`PendingOperation`.

flinkey applies assignment writes asynchronously and POSTs the outcome of each one to the
webhook URL registered in the flinkey Portal. A payload looks like::

    {"checksum": "12AB34567C8DE9012F3A45BCDE678901", "assignmentId": 5001, "customerId": 42,
     "operationSucceeded": true, "errorMessage": null, "carId": 7, "userId": 9,
     "start": "2026-01-01T08:00:00Z", "end": null, "lifetime": 604800, "renewableAfter": 302400}

Three things about these payloads shape this module:

* **No signature.** The only authenticity check is a static ``Secret`` header (the secret set in
  the Portal). :func:`verify_secret` compares it in constant time; the header name is
  case-insensitive. Serve the receiver over HTTPS only: the secret travels in clear text
  inside the request.
* **No event type.** A payload does not say whether it reports a create, an update or a
  delete. Its shape narrows it down (see :func:`parse_webhook`): a ``null`` ``assignmentId``
  can only be a failed create, and a failed event with an ``assignmentId`` is an update or a
  delete. A *successful* create looks exactly like an update or a delete that also carries the
  assignment's fields, so ``event.kind`` stays ``None`` unless the route says which operation it
  serves (``/created``, ``/updated``, ``/deleted``) or the :class:`OperationTracker` matches the
  event to a write this process sent, whose kind it knows.
* **No delivery guarantees are documented** (retries, order, duplicates). The receiver answers
  204 at once, recognises repeated deliveries, and hands each event on once.

Typical use, with the receiver in its own aiohttp app::

    tracker = OperationTracker()
    app = webhook_app(secret=os.environ["FLINKEY_WEBHOOK_SECRET"], tracker=tracker,
                      handler=on_event)        # optional: async def on_event(event): ...
    # serve app (web.AppRunner / web.run_app); register https://your.host/webhooks/flinkey
    async with FlinkeyClient(..., tracker=tracker) as client:
        op = await client.assignments.create(car_id=7, user_id=9, start=start)
        outcome = await op.wait()              # confirmed by the webhook
"""

from __future__ import annotations

import asyncio
import hmac
import inspect
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator, Mapping
from datetime import datetime
from itertools import count
from types import MappingProxyType
from typing import Any, Final, TypeAlias, TypeVar

import attrs
from aiohttp import web

from ._converter import (
    STRUCTURE_WITH,
    _diagnose,
    _int_or_numeric_str,
    loads,
    structure,
    wire_datetime,
)
from .errors import (
    DecodeError,
    OperationTimeoutError,
    WebhookAuthenticationError,
    WebhookPayloadError,
)
from .operations import OperationKind, OperationOutcome, PendingOperation

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_PATH",
    "SECRET_HEADER",
    "WEBHOOK_RECEIVER_KEY",
    "AssignmentEvent",
    "EventHandler",
    "EventKind",
    "OperationTracker",
    "ReceiverStats",
    "Resolution",
    "WebhookReceiver",
    "add_webhook_routes",
    "parse_webhook",
    "verify_secret",
    "webhook_app",
]

logger = logging.getLogger("flinkey_async.webhooks")

#: The header carrying the shared secret (matched case-insensitively; older flinkey pages
#: spell it ``secret``).
SECRET_HEADER: Final = "Secret"
#: Largest webhook body accepted by default (a real payload is a few hundred bytes).
DEFAULT_MAX_BYTES: Final = 64 * 1024
#: Default path of the receiver's route.
DEFAULT_PATH: Final = "/webhooks/flinkey"

#: What an event reports: ``"create"``, ``"update"`` or ``"delete"``.
EventKind: TypeAlias = OperationKind
_KINDS: Final[frozenset[EventKind]] = frozenset({"create", "update", "delete"})

_T = TypeVar("_T")

#: A user callback for events: ``async def handler(event) -> None`` (a plain function works too).
EventHandler: TypeAlias = Callable[["AssignmentEvent"], Awaitable[None] | None]


# -- events --------------------------------------------------------------------------------------


@attrs.frozen
class _Wire:
    """The documented payload fields (unknown extra keys are ignored)."""

    checksum: str
    customer_id: int = attrs.field(metadata={STRUCTURE_WITH: _int_or_numeric_str})
    operation_succeeded: bool
    assignment_id: int | None = None
    error_message: str | None = None
    car_id: int | None = None
    user_id: int | None = None
    start: datetime | None = None
    end: datetime | None = None
    lifetime: int | None = None
    renewable_after: int | None = None


#: What makes two deliveries the same event (see :attr:`AssignmentEvent.fingerprint`).
Fingerprint: TypeAlias = tuple[Any, ...]


@attrs.frozen
class AssignmentEvent:
    """One webhook event: the outcome of an assignment create, update or delete.

    Attributes:
        kind: ``"create"``, ``"update"`` or ``"delete"``, or ``None`` when neither the payload
            nor the route tells (see :func:`parse_webhook`). Events handed on by a receiver
            with an :class:`OperationTracker` carry the kind of the write they were matched to.
        possible_kinds: the kinds the payload's shape allows (``kind``, when set, is one of
            them).
        operation_succeeded: whether flinkey applied the write.
        error_message: flinkey's reason when it did not (``None`` on success).
        checksum: flinkey's fingerprint of the request (32 hex digits; its exact input is
            undocumented).
        assignment_id: the assignment; ``None`` only for a failed create.
        customer_id: the customer (sent as a number or a numeric string; always an int here).
        car_id, user_id, start, end, lifetime, renewable_after: the assignment's fields as far
            as the payload carries them (``start``/``end`` are aware UTC datetimes).
        payload: the whole decoded JSON object, unknown fields included (read-only).
    """

    kind: EventKind | None
    possible_kinds: frozenset[EventKind]
    operation_succeeded: bool
    error_message: str | None
    checksum: str
    assignment_id: int | None
    customer_id: int
    car_id: int | None = None
    user_id: int | None = None
    start: datetime | None = None
    end: datetime | None = None
    lifetime: int | None = None
    renewable_after: int | None = None
    payload: Mapping[str, Any] = attrs.field(factory=lambda: MappingProxyType({}), eq=False,
                                             repr=False)

    @property
    def fingerprint(self) -> Fingerprint:
        """Identifies a delivery: two deliveries with the same checksum, assignment id,
        outcome and fields are the same event delivered twice."""
        return (self.checksum, self.assignment_id, self.operation_succeeded, self.error_message,
                self.customer_id, self.car_id, self.user_id, self.start, self.end,
                self.lifetime, self.renewable_after)


# -- verification and parsing (pure) -----------------------------------------------------------


def _check_secret(secret: str | None) -> None:
    """Reject a configured secret that is not a non-empty string (None is allowed)."""
    if secret is not None and (not isinstance(secret, str) or not secret):
        raise ValueError("secret must be a non-empty string, or None to accept any request")


def verify_secret(headers: Mapping[str, str], secret: str | None) -> None:
    """Check the ``Secret`` header against ``secret`` in constant time.

    The header name is matched case-insensitively; every ``Secret`` header present must match.
    ``secret=None`` disables the check (flinkey sends no header when no secret is set in the
    Portal). Raises :class:`WebhookAuthenticationError`, whose message never contains the
    expected or the received value.
    """
    _check_secret(secret)
    if secret is None:
        return
    expected = secret.encode("utf-8")
    name = SECRET_HEADER.lower()
    values = [v for k, v in headers.items() if k.lower() == name]
    if not values:
        raise WebhookAuthenticationError(f"the webhook request has no {SECRET_HEADER} header")
    ok = True
    for value in values:
        ok &= hmac.compare_digest(value.encode("utf-8", "surrogateescape"), expected)
    if not ok:
        raise WebhookAuthenticationError(
            f"the webhook request's {SECRET_HEADER} header does not match the configured secret")


def _utc(value: datetime | None) -> datetime | None:
    """UTC, whole seconds (how timestamps travel on the wire)."""
    if value is None:
        return None
    return wire_datetime(value)


def _has_fields(wire: _Wire) -> bool:
    """The payload carries ``carId``, ``userId`` and ``start`` (as a create's does)."""
    return wire.car_id is not None and wire.user_id is not None and wire.start is not None


def _possible_kinds(wire: _Wire, body: bytes) -> frozenset[EventKind]:
    has_fields = _has_fields(wire)
    if wire.assignment_id is None:
        if not has_fields:
            raise WebhookPayloadError(
                "webhook payload is malformed: without an assignmentId it can only report a "
                "failed create, which carries carId, userId and start", body=body)
        return frozenset({"create"})
    if wire.operation_succeeded and has_fields:
        return _KINDS
    return frozenset({"update", "delete"})


def parse_webhook(
    headers: Mapping[str, str],
    body: bytes | str,
    *,
    secret: str | None,
    kind: EventKind | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> AssignmentEvent:
    """Verify and parse one webhook request into an :class:`AssignmentEvent` (pure; no I/O).

    Checks, in order: the ``Secret`` header (:func:`verify_secret`; ``secret=None`` skips it),
    the size (at most ``max_bytes``), that the body is a JSON object, and the field types
    (``checksum`` string, ``customerId`` integer or numeric string, ``operationSucceeded``
    boolean, the other documented fields of their documented types or ``null``; unknown fields
    are ignored).

    The kind is inferred from the shape, since flinkey sends no event type:

    * ``assignmentId`` ``null``: a failed create (it must carry ``carId``, ``userId``,
      ``start``); ``kind="create"``.
    * ``assignmentId`` set and ``operationSucceeded`` false, or no ``carId``/``userId``/
      ``start``: an update or a delete (a failed create has no id); ``kind=None``,
      ``possible_kinds={"update", "delete"}``.
    * ``assignmentId`` set, succeeded, with ``carId``, ``userId`` and ``start``: a successful
      create, or an update or delete whose payload carries the fields; ``kind=None``.

    Pass ``kind`` when the route serves one operation (a URL per operation in the Portal): it
    must be consistent with the shape (an update or a delete needs an ``assignmentId``; a
    create needs ``carId``, ``userId`` and ``start``). The :class:`OperationTracker` settles
    the rest by matching the event to the write this process sent.

    Raises:
        WebhookAuthenticationError: the ``Secret`` header is missing or wrong.
        WebhookPayloadError: the body is too large, not JSON, or not a webhook payload.
    """
    if kind is not None and kind not in _KINDS:
        raise ValueError(f"kind must be 'create', 'update', 'delete' or None, got {kind!r}")
    verify_secret(headers, secret)
    data_bytes = body.encode("utf-8") if isinstance(body, str) else body
    if len(data_bytes) > max_bytes:
        raise WebhookPayloadError(
            f"webhook body is {len(data_bytes)} bytes, more than the {max_bytes} accepted")
    try:
        data = loads(data_bytes)
    except DecodeError:
        raise WebhookPayloadError("webhook body is not valid JSON", body=data_bytes) from None
    if not isinstance(data, dict):
        raise WebhookPayloadError(
            f"webhook body must be a JSON object, got {type(data).__name__}", body=data_bytes)
    try:
        wire: _Wire = structure(data, _Wire)
    except DecodeError:
        detail = _diagnose(data, _Wire) or "unexpected field types"
        raise WebhookPayloadError(f"webhook payload is malformed: {detail}",
                                  body=data_bytes) from None
    possible = _possible_kinds(wire, data_bytes)
    if kind is not None:
        if kind == "create" and not _has_fields(wire):
            raise WebhookPayloadError(
                "webhook payload on the create route lacks carId, userId or start",
                body=data_bytes)
        if kind != "create" and wire.assignment_id is None:
            raise WebhookPayloadError(
                f"webhook payload on the {kind} route has no assignmentId", body=data_bytes)
        possible = frozenset({kind})
    resolved: EventKind | None = next(iter(possible)) if len(possible) == 1 else None
    return AssignmentEvent(
        kind=resolved, possible_kinds=possible,
        operation_succeeded=wire.operation_succeeded, error_message=wire.error_message,
        checksum=wire.checksum, assignment_id=wire.assignment_id, customer_id=wire.customer_id,
        car_id=wire.car_id, user_id=wire.user_id, start=wire.start, end=wire.end,
        lifetime=wire.lifetime, renewable_after=wire.renewable_after,
        payload=MappingProxyType(data),
    )


# -- correlation ---------------------------------------------------------------------------------

#: ``(customerId, carId, userId, start, end)`` of a create, datetimes in UTC whole seconds.
CreateKey: TypeAlias = tuple[int, int, int, datetime, datetime | None]
#: ``(kind, customer, create key or assignment id, checksum)``: identical requests share it.
_Identity: TypeAlias = tuple[str, int, object, str]


def _create_key_of(customer_id: int, car_id: int | None, user_id: int | None,
                   start: datetime | None, end: datetime | None) -> CreateKey | None:
    if car_id is None or user_id is None or start is None:
        return None
    utc_start = _utc(start)
    assert utc_start is not None
    return (customer_id, car_id, user_id, utc_start, _utc(end))


def _drop(index: dict[Any, list[_T]], key: Any, entry: _T) -> None:
    bucket = index.get(key)
    if bucket is not None:
        if entry in bucket:
            bucket.remove(entry)
        if not bucket:
            del index[key]


class _Orphans:
    """Recent unmatched events, oldest first, at most ``limit``, indexed by assignment id and
    create key."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._events: OrderedDict[int, tuple[float, AssignmentEvent]] = OrderedDict()
        self._index: dict[object, list[int]] = {}
        self._tokens = count()

    def __len__(self) -> int:
        return len(self._events)

    def __iter__(self) -> Iterator[AssignmentEvent]:
        return (event for _deadline, event in list(self._events.values()))

    @staticmethod
    def _keys(event: AssignmentEvent) -> list[object]:
        keys: list[object] = []
        if event.assignment_id is not None:
            keys.append(("id", event.customer_id, event.assignment_id))
        key = _create_key_of(event.customer_id, event.car_id, event.user_id, event.start,
                             event.end)
        if key is not None and "create" in event.possible_kinds:
            keys.append(("key", key))
        return keys

    def add(self, deadline: float, event: AssignmentEvent) -> None:
        token = next(self._tokens)
        self._events[token] = (deadline, event)
        for key in self._keys(event):
            self._index.setdefault(key, []).append(token)
        while len(self._events) > self.limit:
            self.remove(next(iter(self._events)))

    def remove(self, token: int) -> None:
        _deadline, event = self._events.pop(token)
        for key in self._keys(event):
            _drop(self._index, key, token)

    def expire(self, now: float) -> None:
        while self._events:
            token, (deadline, _event) = next(iter(self._events.items()))
            if deadline > now:
                return
            self.remove(token)

    def find(self, key: object) -> list[tuple[int, AssignmentEvent]]:
        """The events indexed under ``key``, oldest first."""
        return [(token, self._events[token][1]) for token in self._index.get(key, ())]


class _Entry:
    """A pending operation in the tracker."""

    __slots__ = ("create_key", "expected_at", "op", "seq")

    def __init__(self, op: PendingOperation, seq: int, expected_at: float) -> None:
        self.op = op
        self.seq = seq
        self.expected_at = expected_at
        self.create_key = (_create_key_of(op.customer_id, op.car_id, op.user_id, op.start,
                                          op.end) if op.kind == "create" else None)

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


class _LRU(OrderedDict[Any, Any]):
    """An ordered dict that forgets its oldest entries beyond ``limit``."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def put(self, key: Any, value: Any) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.limit:
            self.popitem(last=False)


def _call_user(callback: EventHandler, event: AssignmentEvent, tasks: set[asyncio.Task[None]],
               what: str) -> None:
    """Run a user callback; an async one as a background task. Errors are logged, never
    raised."""

    async def run(awaitable: Awaitable[None]) -> None:
        try:
            await awaitable
        except Exception:
            logger.exception("the webhook %s raised on %s", what, _describe_event(event))

    try:
        result = callback(event)
    except Exception:
        logger.exception("the webhook %s raised on %s", what, _describe_event(event))
        return
    if inspect.isawaitable(result):
        task = asyncio.ensure_future(run(result))
        tasks.add(task)
        task.add_done_callback(tasks.discard)


def _describe_event(event: AssignmentEvent) -> str:
    outcome = "success" if event.operation_succeeded else "failure"
    return f"{event.kind or 'assignment'} event ({outcome}, assignment {event.assignment_id})"


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
    :meth:`expect` follows; a write expected afterwards resolves at once.

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
    ) -> None:
        self.on_unsolicited = on_unsolicited
        self.strict_checksum = strict_checksum
        self.pending_ttl = pending_ttl
        self.orphan_ttl = orphan_ttl
        self.max_orphans = max_orphans
        self._clock = clock
        self._seq = count()
        self._entries: dict[int, _Entry] = {}
        self._creates: dict[CreateKey, list[_Entry]] = {}
        self._by_id: dict[tuple[int, int], list[_Entry]] = {}
        self._seen = _LRU(memory)
        self._created_ids = _LRU(memory)
        self._orphans = _Orphans(max_orphans)
        self._tasks: set[asyncio.Task[None]] = set()
        #: Events recognised as repeated deliveries.
        self.duplicates = 0
        #: Events that matched no pending operation.
        self.unsolicited = 0

    # -- bookkeeping -------------------------------------------------------------------------
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
            logger.debug("no webhook for the %s after %.0f s; forgetting it",
                         oldest.op.describe(), now - oldest.expected_at)
            self._remove(oldest)
        self._orphans.expire(now)

    # -- matching ----------------------------------------------------------------------------
    def _fits(self, entry: _Entry, event: AssignmentEvent) -> bool:
        return not self.strict_checksum or entry.op.checksum == event.checksum

    def _candidates(self, event: AssignmentEvent) -> tuple[list[_Entry], list[_Entry]]:
        """Pending operations the event can report: (by assignment id, by create key)."""
        by_id: list[_Entry] = []
        creates: list[_Entry] = []
        customer = event.customer_id
        if event.assignment_id is not None:
            by_id = [e for e in self._by_id.get((customer, event.assignment_id), ())
                     if e.op.kind in event.possible_kinds and self._fits(e, event)]
        if "create" in event.possible_kinds and not (
                event.assignment_id is not None
                and (customer, event.assignment_id) in self._created_ids):
            key = _create_key_of(customer, event.car_id, event.user_id, event.start, event.end)
            if key is not None:
                creates = [e for e in self._creates.get(key, ()) if self._fits(e, event)]
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
            if entry.identity == identity:
                return entry
        return None

    def resolve(self, event: AssignmentEvent) -> Resolution:
        """Hand one webhook event to the tracker (called by the receiver).

        Resolves the matching pending operation, if any (so its ``wait()`` returns), and
        reports what the event turned out to be. Never raises for an unexpected event.
        """
        now = self._clock()
        self._prune(now)
        fingerprint = event.fingerprint
        entry: _Entry | None
        if fingerprint in self._seen:
            identity: _Identity | None = self._seen[fingerprint]
            self._seen.move_to_end(fingerprint)
            entry = None
            if identity is not None and not (event.operation_succeeded
                                             and identity[0] in ("create", "delete")):
                entry = self._identical_pending(identity)
            if entry is None:
                self.duplicates += 1
                kind = identity[0] if identity is not None else event.kind
                return Resolution(self._with_kind(event, kind), None, duplicate=True)
        else:
            entry = self._match(event)
            self._seen.put(fingerprint, entry.identity if entry is not None else None)
        if entry is None:
            self.unsolicited += 1
            self._orphans.add(now + self.orphan_ttl, event)
            if self.on_unsolicited is not None:
                _call_user(self.on_unsolicited, event, self._tasks, "on_unsolicited callback")
            return Resolution(event, None)
        return Resolution(self._settle(entry, event), entry.op)

    def _settle(self, entry: _Entry, event: AssignmentEvent) -> AssignmentEvent:
        self._remove(entry)
        op = entry.op
        event = self._with_kind(event, op.kind)
        if op.kind == "create" and event.operation_succeeded and event.assignment_id is not None:
            self._created_ids.put((event.customer_id, event.assignment_id), None)
        op.state.resolve(event)
        return event

    @staticmethod
    def _with_kind(event: AssignmentEvent, kind: str | None) -> AssignmentEvent:
        if kind is None or event.kind == kind or kind not in _KINDS:
            return event
        return attrs.evolve(event, kind=kind, possible_kinds=frozenset({kind}))

    def _claim_orphan(self, entry: _Entry) -> None:
        """A recent unsolicited event may belong to an operation expected only now."""
        op = entry.op
        key: object = (("key", entry.create_key) if entry.create_key is not None
                       else ("id", op.customer_id, op.assignment_id))
        for token, event in self._orphans.find(key):
            by_id, creates = self._candidates(event)
            if entry in by_id or entry in creates:
                self._orphans.remove(token)
                self.unsolicited -= 1
                self._seen.put(event.fingerprint, entry.identity)
                self._settle(entry, event)
                return

    def orphans(self) -> Iterator[AssignmentEvent]:
        """The unsolicited events still kept (oldest first)."""
        return iter(self._orphans)

    # -- waiting -----------------------------------------------------------------------------
    async def wait(self, op: PendingOperation,
                   timeout: float | None = 30.0) -> OperationOutcome:  # noqa: ASYNC109
        """The outcome of ``op`` once its webhook arrived (see :meth:`PendingOperation.wait`).

        Raises:
            OperationFailedError: flinkey reported a failure.
            OperationTimeoutError: no matching webhook within ``timeout`` seconds.
            RuntimeError: this tracker is not waiting for ``op``.
        """
        state = op.state
        if not state.done and not self.is_pending(op):
            raise RuntimeError(
                f"the {op.describe()} is not tracked by this OperationTracker (was it sent "
                "before the tracker was attached, or did its webhook time out long ago?)")
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


# -- the aiohttp receiver ------------------------------------------------------------------------


@attrs.define
class ReceiverStats:
    """Counters of a :class:`WebhookReceiver`."""

    #: Requests received.
    received: int = 0
    #: Events handed on (to the tracker and the handler).
    delivered: int = 0
    #: Repeated deliveries recognised and not handed on again.
    duplicates: int = 0
    #: Requests refused with 401 (wrong or missing secret).
    unauthorized: int = 0
    #: Requests refused with 413 (body too large).
    too_large: int = 0
    #: Requests refused with 400 (malformed body).
    malformed: int = 0


class WebhookReceiver:
    """Receives flinkey's webhook requests; usually made by :func:`webhook_app` or
    :func:`add_webhook_routes`.

    For each request: 401 when the ``Secret`` header is missing or wrong, 413 when the body is
    larger than ``max_bytes``, 400 when it is not a webhook payload, else 204 at once; the
    event then goes to the tracker (which resolves the matching operation) and, once per
    distinct event, to ``handler`` as a background task (its exceptions are logged; they never
    affect the answer). Rejected requests deliver nothing, and the receiver keeps serving.

    Without a tracker, repeated deliveries are recognised by their fingerprint alone (the last
    ``memory`` events are remembered).

    :meth:`deliver` is the framework-free entry point: another web framework can call
    :func:`parse_webhook` and hand the event to :meth:`deliver`.
    """

    def __init__(
        self,
        *,
        secret: str | None,
        tracker: OperationTracker | None = None,
        handler: EventHandler | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
        memory: int = 10_000,
    ) -> None:
        _check_secret(secret)
        if max_bytes < 1:
            raise ValueError("max_bytes must be positive")
        self._secret = secret
        self.tracker = tracker
        self.handler = handler
        self.max_bytes = max_bytes
        self.stats = ReceiverStats()
        self._recent = _LRU(memory)
        self._tasks: set[asyncio.Task[None]] = set()

    def __repr__(self) -> str:
        secured = "with secret" if self._secret is not None else "without secret"
        return f"WebhookReceiver({secured}, tracker={self.tracker is not None})"

    def deliver(self, event: AssignmentEvent) -> bool:
        """Hand one parsed event to the tracker and the handler; False for a repeated
        delivery (nothing is handed on)."""
        if self.tracker is not None:
            resolution = self.tracker.resolve(event)
            if resolution.duplicate:
                self.stats.duplicates += 1
                return False
            event = resolution.event
        else:
            fingerprint = event.fingerprint
            if fingerprint in self._recent:
                self._recent.move_to_end(fingerprint)
                self.stats.duplicates += 1
                return False
            self._recent.put(fingerprint, None)
        self.stats.delivered += 1
        if self.handler is not None:
            _call_user(self.handler, event, self._tasks, "handler")
        return True

    async def handle(self, request: web.Request, kind: EventKind | None = None) -> web.Response:
        """The aiohttp handler (``kind`` forces the event kind, for per-operation routes)."""
        self.stats.received += 1
        try:
            verify_secret(request.headers, self._secret)
        except WebhookAuthenticationError as exc:
            self.stats.unauthorized += 1
            logger.warning("webhook from %s refused: %s", request.remote, exc)
            return web.Response(status=401, text="missing or wrong Secret header")
        body = await self._read(request)
        if body is None:
            self.stats.too_large += 1
            logger.warning("webhook from %s refused: body larger than %d bytes", request.remote,
                           self.max_bytes)
            return web.Response(status=413, text=f"body larger than {self.max_bytes} bytes")
        try:
            event = parse_webhook(request.headers, body, secret=None, kind=kind,
                                  max_bytes=self.max_bytes)
        except WebhookPayloadError as exc:
            self.stats.malformed += 1
            logger.warning("webhook from %s refused: %s", request.remote, exc)
            return web.Response(status=400, text=str(exc))
        self.deliver(event)
        return web.Response(status=204)

    async def _read(self, request: web.Request) -> bytes | None:
        """The body, or None when it is larger than ``max_bytes``."""
        limit = self.max_bytes
        length = request.content_length
        if length is not None and length > limit:
            return None
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.content.iter_any():
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
        return b"".join(chunks)

    async def drain(self) -> None:
        """Wait until the handler (and ``on_unsolicited``) calls started so far are done."""
        while True:
            tasks = self._tasks | (self.tracker._tasks if self.tracker is not None else set())
            if not tasks:
                return
            await asyncio.gather(*tasks, return_exceptions=True)

    async def aclose(self) -> None:
        """Let running handler calls finish (called on the app's cleanup)."""
        await self.drain()

    async def _on_cleanup(self, _app: web.Application) -> None:
        await self.aclose()


#: Where :func:`webhook_app` keeps its :class:`WebhookReceiver` (``app[WEBHOOK_RECEIVER_KEY]``).
WEBHOOK_RECEIVER_KEY: Final = web.AppKey("flinkey_webhook_receiver", WebhookReceiver)


def add_webhook_routes(
    target: web.Application | web.UrlDispatcher,
    *,
    secret: str | None,
    tracker: OperationTracker | None = None,
    handler: EventHandler | None = None,
    path: str = DEFAULT_PATH,
    per_kind_routes: bool = True,
    max_bytes: int = DEFAULT_MAX_BYTES,
    memory: int = 10_000,
) -> WebhookReceiver:
    """Add the webhook routes to your own aiohttp application (or router).

    ``POST {path}`` takes every event. With ``per_kind_routes`` (default), ``POST
    {path}/created``, ``{path}/updated`` and ``{path}/deleted`` take the events of one
    operation each, for a Portal configured with a URL per operation: the route then tells the
    event's kind. ``secret`` is required: pass ``None`` only to accept unauthenticated requests
    (flinkey sends no ``Secret`` header when no secret is set in the Portal).

    Returns the :class:`WebhookReceiver`. When ``target`` is an application, the receiver
    waits for running handler calls on the application's cleanup; with a bare router, call
    :meth:`WebhookReceiver.aclose` yourself.
    """
    if not path.startswith("/") or (path.endswith("/") and path != "/"):
        raise ValueError(f"path must start with '/' and not end with '/', got {path!r}")
    receiver = WebhookReceiver(secret=secret, tracker=tracker, handler=handler,
                               max_bytes=max_bytes, memory=memory)
    router = target.router if isinstance(target, web.Application) else target

    async def any_kind(request: web.Request) -> web.Response:
        return await receiver.handle(request)

    router.add_post(path, any_kind)
    if per_kind_routes:
        base = path.rstrip("/")
        routes: tuple[tuple[str, EventKind], ...] = (
            ("created", "create"), ("updated", "update"), ("deleted", "delete"))
        for suffix, kind in routes:
            router.add_post(f"{base}/{suffix}", _route_for(receiver, kind))
    if isinstance(target, web.Application):
        target.on_cleanup.append(receiver._on_cleanup)
    return receiver


def _route_for(receiver: WebhookReceiver,
               kind: EventKind) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def one_kind(request: web.Request) -> web.Response:
        return await receiver.handle(request, kind)

    return one_kind


def webhook_app(
    *,
    secret: str | None,
    tracker: OperationTracker | None = None,
    handler: EventHandler | None = None,
    path: str = DEFAULT_PATH,
    per_kind_routes: bool = True,
    max_bytes: int = DEFAULT_MAX_BYTES,
    memory: int = 10_000,
) -> web.Application:
    """A ready aiohttp application that receives flinkey's webhooks (see
    :func:`add_webhook_routes` for the routes and arguments). Its receiver is
    ``app[WEBHOOK_RECEIVER_KEY]``."""
    app = web.Application(client_max_size=max_bytes)
    app[WEBHOOK_RECEIVER_KEY] = add_webhook_routes(
        app, secret=secret, tracker=tracker, handler=handler, path=path,
        per_kind_routes=per_kind_routes, max_bytes=max_bytes, memory=memory)
    return app
