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
    runner = await start_webhook_server(app, "127.0.0.1", 8080)  # behind a TLS proxy
    # register https://your.host/webhooks/flinkey in the Portal
    async with FlinkeyClient(..., tracker=tracker) as client:
        op = await client.assignments.create(car_id=7, user_id=9, start=start)
        outcome = await op.wait()              # confirmed by the webhook
    await runner.cleanup()

Against misbehaving clients the receiver bounds what a request can cost: the secret is checked
before the body is read, bodies must arrive within ``body_timeout`` (else 408) and be at most
``max_bytes`` (else 413), request heads within ``header_timeout`` when served by
:func:`start_webhook_server`, handler calls run at most ``max_handler_tasks`` at once, and a
rejection logs at most one warning per reason per ``warning_interval`` (all are counted in
:class:`ReceiverStats`). The secret is held as a :class:`~flinkey_async.auth.Secret`: no
frame of a traceback raised here holds it, or the request's headers, as a plain string.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import inspect
import logging
import math
import ssl
import time
import weakref
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator, Mapping
from datetime import UTC, datetime
from itertools import count
from types import MappingProxyType
from typing import Any, Final, NoReturn, TypeAlias, TypeVar

import attrs
from aiohttp import web
from yarl import URL

from ._converter import (
    STRUCTURE_WITH,
    _diagnose,
    _int_or_numeric_str,
    loads,
    parse_datetime,
    structure,
    wire_datetime,
)
from .auth import Secret, as_secret
from .errors import (
    OperationTimeoutError,
    WebhookAuthenticationError,
    WebhookError,
    WebhookPayloadError,
)
from .operations import OperationKind, OperationOutcome, PendingOperation

__all__ = [
    "DEFAULT_BODY_TIMEOUT",
    "DEFAULT_HEADER_TIMEOUT",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_PATH",
    "SECRET_HEADER",
    "WEBHOOK_RECEIVER_KEY",
    "AssignmentEvent",
    "EventHandler",
    "EventKind",
    "HeaderTimeoutSite",
    "OperationTracker",
    "ReceiverStats",
    "Resolution",
    "WebhookReceiver",
    "add_webhook_routes",
    "parse_webhook",
    "start_webhook_server",
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


def _wrap_secret(secret: str | Secret | None) -> Secret | None:
    """The configured secret as a :class:`~flinkey_async.auth.Secret` (``None`` stays
    ``None``): a non-string raises :class:`TypeError`, an empty one :class:`ValueError`."""
    wrapped = as_secret(secret, "secret")
    if wrapped is not None and not wrapped:
        raise ValueError("secret must be a non-empty string, or None to accept any request")
    return wrapped


def _secret_problem(headers: Mapping[str, str], secret: Secret) -> str | None:
    """Why the ``Secret`` headers do not match ``secret``, or None when they do.

    It returns instead of raising, and the expected value only ever lives in the frame of
    :func:`_all_match`, so neither the expected value nor a received one is a local of any
    frame in the traceback of the error its caller raises.
    """
    name = SECRET_HEADER.lower()
    values = [v for k, v in headers.items() if isinstance(k, str) and k.lower() == name]
    if not values:
        return f"the webhook request has no {SECRET_HEADER} header"
    if not _all_match(values, secret):
        return (f"the webhook request's {SECRET_HEADER} header does not match the configured "
                "secret")
    return None


def _all_match(values: list[str], secret: Secret) -> bool:
    """Every value equals the secret (constant time for values of the secret's length)."""
    expected = secret.reveal().encode("utf-8", "surrogatepass")
    ok = True
    for value in values:
        given = value.encode("utf-8", "surrogatepass") if isinstance(value, str) else b""
        ok &= hmac.compare_digest(given, expected)
    return ok


def verify_secret(headers: Mapping[str, str], secret: str | Secret | None) -> None:
    """Check the ``Secret`` header against ``secret`` in constant time.

    The header name is matched case-insensitively; every ``Secret`` header present must match.
    ``secret=None`` disables the check (flinkey sends no header when no secret is set in the
    Portal). ``secret`` may be a :class:`~flinkey_async.auth.Secret`; a plain string is wrapped
    on entry, so that no frame of a traceback holds it (nor the headers) as a plain string.

    Raises:
        WebhookAuthenticationError: the header is missing or wrong; the message never
            contains the expected or the received value.
        TypeError: ``secret`` is not a string, a ``Secret`` or None.
        ValueError: ``secret`` is empty.
    """
    secret = _wrap_secret(secret)
    problem = None if secret is None else _secret_problem(headers, secret)
    del headers  # may hold the right value (next to a wrong one): out of the raising frame
    if problem is not None:
        raise WebhookAuthenticationError(problem)


def _utc(value: datetime | None) -> datetime | None:
    """UTC, whole seconds (how timestamps travel on the wire)."""
    if value is None:
        return None
    return wire_datetime(value)


def _in_utc(value: datetime | None) -> datetime | None:
    """An aware datetime in UTC (a naive one is taken as UTC); OverflowError when the value
    falls outside the range of datetimes once in UTC."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value if value.tzinfo is UTC else value.astimezone(UTC)


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


_DATETIME_KEYS: Final = ("start", "end")


def _malformed_detail(data: dict[str, Any]) -> str:
    """What is wrong with a payload that did not structure (slow path, never raises)."""
    try:
        detail = _diagnose(data, _Wire)
    except Exception:  # e.g. an OverflowError from an out-of-range datetime
        detail = None
    if detail:
        return detail
    for key in _DATETIME_KEYS:
        value = data.get(key)
        if isinstance(value, str):
            try:
                _in_utc(parse_datetime(value))
            except Exception:
                return f"field {key!r} is not a datetime representable in UTC"
    return "unexpected field types"


def _structure_wire(data: dict[str, Any], data_bytes: bytes) -> _Wire:
    try:
        wire: _Wire = structure(data, _Wire)
        return wire
    except Exception:  # DecodeError, or whatever a field's check let through
        detail = _malformed_detail(data)
    raise WebhookPayloadError(f"webhook payload is malformed: {detail}", body=data_bytes)


def _parse_body(body: bytes | str, kind: EventKind | None, max_bytes: int) -> AssignmentEvent:
    """The checks of :func:`parse_webhook` after the secret's (it never sees the headers).

    Raises only :class:`WebhookPayloadError`, whatever the body."""
    if isinstance(body, str):
        try:
            data_bytes = body.encode("utf-8")
        except UnicodeEncodeError:
            raise WebhookPayloadError("webhook body is not valid UTF-8 text") from None
    else:
        data_bytes = body
    if len(data_bytes) > max_bytes:
        raise WebhookPayloadError(
            f"webhook body is {len(data_bytes)} bytes, more than the {max_bytes} accepted")
    try:
        data = loads(data_bytes)
    except Exception:  # DecodeError (orjson's errors are wrapped)
        raise WebhookPayloadError("webhook body is not valid JSON", body=data_bytes) from None
    if not isinstance(data, dict):
        raise WebhookPayloadError(
            f"webhook body must be a JSON object, got {type(data).__name__}", body=data_bytes)
    wire = _structure_wire(data, data_bytes)
    moments: dict[str, datetime | None] = {}
    for key in _DATETIME_KEYS:
        try:
            moments[key] = _in_utc(getattr(wire, key))
        except (OverflowError, ValueError):
            raise WebhookPayloadError(
                f"webhook payload is malformed: field {key!r} is not a datetime representable "
                "in UTC", body=data_bytes) from None
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
        car_id=wire.car_id, user_id=wire.user_id, start=moments["start"], end=moments["end"],
        lifetime=wire.lifetime, renewable_after=wire.renewable_after,
        payload=MappingProxyType(data),
    )


def parse_webhook(
    headers: Mapping[str, str],
    body: bytes | str,
    *,
    secret: str | Secret | None,
    kind: EventKind | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> AssignmentEvent:
    """Verify and parse one webhook request into an :class:`AssignmentEvent` (pure; no I/O).

    Checks, in order: the ``Secret`` header (:func:`verify_secret`; ``secret=None`` skips it),
    the size (at most ``max_bytes``), that the body is a JSON object, and the field types
    (``checksum`` string, ``customerId`` integer or numeric string, ``operationSucceeded``
    boolean, ``start``/``end`` ISO-8601 timestamps representable in UTC, the other documented
    fields of their documented types or ``null``; unknown fields are ignored). Whatever the
    body, nothing but :class:`WebhookAuthenticationError` or :class:`WebhookPayloadError` is
    raised for it.

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

    ``secret`` may be a :class:`~flinkey_async.auth.Secret`; a plain string is wrapped on
    entry. The headers (which hold the right secret once it is verified) are dropped before
    the body is looked at, so no frame in the traceback of an error holds the secret as a
    plain string.

    Raises:
        WebhookAuthenticationError: the ``Secret`` header is missing or wrong.
        WebhookPayloadError: the body is too large, not JSON, or not a webhook payload.
        TypeError: ``secret`` is not a string, a ``Secret`` or None.
        ValueError: ``secret`` is empty, or ``kind`` is not a kind.
    """
    secret = _wrap_secret(secret)
    if kind is not None and kind not in _KINDS:
        raise ValueError(f"kind must be 'create', 'update', 'delete' or None, got {kind!r}")
    problem = None if secret is None else _secret_problem(headers, secret)
    del headers  # they hold the Secret header: out of every frame that raises below
    if problem is not None:
        raise WebhookAuthenticationError(problem)
    return _parse_body(body, kind, max_bytes)


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


class _Warnings:
    """Rate-limited warnings: at most one per reason per ``interval`` seconds; the next one
    says how many were suppressed meanwhile."""

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        if not interval >= 0:
            raise ValueError("warning_interval must be a number of seconds >= 0")
        self.interval = interval
        self._clock = clock
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def warn(self, reason: str, message: str, *args: object) -> None:
        now = self._clock()
        last = self._last.get(reason)
        if last is not None and now - last < self.interval:
            self._suppressed[reason] = self._suppressed.get(reason, 0) + 1
            return
        self._last[reason] = now
        suppressed = self._suppressed.pop(reason, 0)
        if suppressed and last is not None:
            message += " (%d more like it in the last %.0f s were not logged)"
            args = (*args, suppressed, now - last)
        logger.warning(message, *args)


class _Callbacks:
    """Runs a user callback for events: a sync one inline, an async one as a background task.

    At most ``limit`` async calls run at once (a semaphore inside each task); at most
    ``backlog`` more wait for a slot; beyond that a call is dropped (its coroutine closed
    unstarted), counted in ``dropped`` and reported by a rate-limited warning. Errors are
    logged, never raised.
    """

    def __init__(self, what: str, *, limit: int, backlog: int, warnings: _Warnings) -> None:
        if limit < 1:
            raise ValueError(f"the number of concurrent {what} calls must be at least 1")
        if backlog < 0:
            raise ValueError(f"the {what} backlog must be >= 0")
        self.what = what
        self.limit = limit
        self.backlog = backlog
        self.tasks: set[asyncio.Task[None]] = set()
        self.dropped = 0
        self._warnings = warnings
        self._slots: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def call(self, callback: EventHandler, event: AssignmentEvent) -> bool:
        """Call ``callback(event)``; False when the call was dropped (too many running)."""
        try:
            result = callback(event)
        except Exception:
            logger.exception("the webhook %s raised on %s", self.what, _describe_event(event))
            return True
        if not inspect.isawaitable(result):
            return True
        if len(self.tasks) >= self.limit + self.backlog:
            _discard(result)
            self.dropped += 1
            self._warnings.warn(
                "dropped", "the webhook %s was not called on %s: %d calls are running or "
                "waiting already", self.what, _describe_event(event), len(self.tasks))
            return False
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # called from outside the event loop: nowhere to run it
            _discard(result)
            logger.error("the webhook %s was not called on %s: no running event loop",
                         self.what, _describe_event(event))
            return False
        if self._slots is None or (self._loop is not loop and not self.tasks):
            self._slots = asyncio.Semaphore(self.limit)
            self._loop = loop
        task = loop.create_task(self._run(result, event, self._slots))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return True

    async def _run(self, awaitable: Awaitable[None], event: AssignmentEvent,
                   slots: asyncio.Semaphore) -> None:
        try:
            async with slots:
                await awaitable
        except Exception:
            logger.exception("the webhook %s raised on %s", self.what, _describe_event(event))
        finally:
            _discard(awaitable)  # cancelled while waiting for a slot: never started


def _discard(awaitable: Awaitable[Any]) -> None:
    """Close a coroutine that will not be awaited (no "never awaited" warning)."""
    if inspect.iscoroutine(awaitable):
        awaitable.close()


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
    :meth:`expect` follows; a write expected afterwards resolves at once. At most
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
        self._creates: dict[CreateKey, list[_Entry]] = {}
        self._by_id: dict[tuple[int, int], list[_Entry]] = {}
        self._seen = _LRU(memory)
        self._created_ids = _LRU(memory)
        self._orphans = _Orphans(max_orphans)
        self._callbacks = _Callbacks("on_unsolicited callback", limit=max_callback_tasks,
                                     backlog=max_callback_backlog, warnings=_Warnings(60.0))
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
                self._callbacks.call(self.on_unsolicited, event)
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

#: Default seconds to read a request body in (:class:`WebhookReceiver`).
DEFAULT_BODY_TIMEOUT: Final = 10.0
#: Default seconds for a connection to deliver a complete request head
#: (:func:`start_webhook_server`).
DEFAULT_HEADER_TIMEOUT: Final = 10.0
#: How long cancelled handler calls get to finish once cancelled, at shutdown.
_CANCEL_GRACE: Final = 1.0


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
    #: Requests refused with 408 (body not read within ``body_timeout``).
    timed_out: int = 0
    #: Handler calls dropped because ``max_handler_tasks`` + ``max_handler_backlog`` calls
    #: were running or waiting (the event still reached the tracker).
    handler_dropped: int = 0


class _BodyTooLarge(WebhookPayloadError):
    """The body is larger than ``max_bytes`` (413)."""


class _BodyTimeout(WebhookPayloadError):
    """The body was not read within ``body_timeout`` (408)."""


def _positive(value: float, name: str) -> float:
    if not value > 0:
        raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
    return value


class WebhookReceiver:
    """Receives flinkey's webhook requests; usually made by :func:`webhook_app` or
    :func:`add_webhook_routes`.

    For each request: 401 when the ``Secret`` header is missing or wrong, 408 when the body
    is not read within ``body_timeout`` (the connection is then closed), 413 when the body is
    larger than ``max_bytes``, 400 when it is not a webhook payload, else 204 at once; the
    event then goes to the tracker (which resolves the matching operation) and, once per
    distinct event, to ``handler`` as a background task (its exceptions are logged; they never
    affect the answer). Rejected requests deliver nothing, are counted in :attr:`stats`, and
    log at most one warning per reason every ``warning_interval`` seconds; the receiver keeps
    serving.

    Without a tracker, repeated deliveries are recognised by their fingerprint alone (the last
    ``memory`` events are remembered).

    :meth:`deliver` is the framework-free entry point: another web framework can call
    :func:`parse_webhook` and hand the event to :meth:`deliver`.

    The secret is held as a :class:`~flinkey_async.auth.Secret`; a receiver never shows it in
    its ``repr`` and refuses to be pickled.

    Args:
        secret: the ``Secret`` header's expected value (a string or a ``Secret``, wrapped on
            entry), or None to accept unauthenticated requests.
        tracker: the :class:`OperationTracker` that resolves operations from the events.
        handler: called once per distinct event (sync, or async in a background task).
        max_bytes: largest body accepted.
        memory: events remembered to recognise repeated deliveries without a tracker.
        body_timeout: seconds to read the body in, from when the handler starts reading it;
            a body still incomplete then is answered 408 and its connection closed.
        max_handler_tasks: async handler calls running at once; further calls wait for a
            slot.
        max_handler_backlog: handler calls waiting for a slot at most; beyond, a call is
            dropped (counted in ``stats.handler_dropped``, with a rate-limited warning; the
            event still reached the tracker).
        shutdown_timeout: seconds :meth:`aclose` (and so the app's cleanup) waits for running
            handler calls before cancelling them.
        warning_interval: seconds between two warnings of the same kind (rejections, dropped
            handler calls); the next warning says how many were not logged.
    """

    def __init__(
        self,
        *,
        secret: str | Secret | None,
        tracker: OperationTracker | None = None,
        handler: EventHandler | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
        memory: int = 10_000,
        body_timeout: float = DEFAULT_BODY_TIMEOUT,
        max_handler_tasks: int = 100,
        max_handler_backlog: int = 1000,
        shutdown_timeout: float = 10.0,
        warning_interval: float = 60.0,
    ) -> None:
        secret = _wrap_secret(secret)
        if max_bytes < 1:
            raise ValueError("max_bytes must be positive")
        if not shutdown_timeout >= 0:
            raise ValueError("shutdown_timeout must be a number of seconds >= 0")
        self._secret = secret
        self.tracker = tracker
        self.handler = handler
        self.max_bytes = max_bytes
        self.body_timeout = _positive(body_timeout, "body_timeout")
        self.shutdown_timeout = shutdown_timeout
        self.stats = ReceiverStats()
        self._recent = _LRU(memory)
        self._warnings = _Warnings(warning_interval)
        self._callbacks = _Callbacks("handler", limit=max_handler_tasks,
                                     backlog=max_handler_backlog, warnings=self._warnings)

    def __repr__(self) -> str:
        secured = "with secret" if self._secret is not None else "without secret"
        return f"WebhookReceiver({secured}, tracker={self.tracker is not None})"

    def __reduce__(self) -> NoReturn:
        raise TypeError("a WebhookReceiver cannot be pickled: it holds the webhook secret")

    @property
    def _tasks(self) -> set[asyncio.Task[None]]:
        """The running and waiting handler calls."""
        return self._callbacks.tasks

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
        if self.handler is not None and not self._callbacks.call(self.handler, event):
            self.stats.handler_dropped += 1
        return True

    async def handle(self, request: web.Request, kind: EventKind | None = None) -> web.Response:
        """The aiohttp handler (``kind`` forces the event kind, for per-operation routes)."""
        self.stats.received += 1
        try:
            event = await self._receive(request, kind)
        except WebhookError as exc:
            return await self._refuse(request, exc)
        self.deliver(event)
        return web.Response(status=204)

    async def _receive(self, request: web.Request, kind: EventKind | None) -> AssignmentEvent:
        """Verify, read and parse one request (the headers never become a local here)."""
        if self._secret is not None:
            problem = _secret_problem(request.headers, self._secret)
            if problem is not None:
                raise WebhookAuthenticationError(problem)
        try:
            async with asyncio.timeout(self.body_timeout):
                body = await self._read(request)
        except TimeoutError:
            raise _BodyTimeout(
                f"webhook body not received within {self.body_timeout:g} s") from None
        return _parse_body(body, kind, self.max_bytes)

    async def _refuse(self, request: web.Request, exc: WebhookError) -> web.Response:
        remote = request.remote
        if isinstance(exc, WebhookAuthenticationError):
            self.stats.unauthorized += 1
            self._warnings.warn("unauthorized", "webhook from %s refused: %s", remote, exc)
            return web.Response(status=401, text="missing or wrong Secret header")
        if isinstance(exc, _BodyTooLarge):
            self.stats.too_large += 1
            self._warnings.warn("too_large", "webhook from %s refused: %s", remote, exc)
            return web.Response(status=413, text=f"body larger than {self.max_bytes} bytes")
        if isinstance(exc, _BodyTimeout):
            self.stats.timed_out += 1
            self._warnings.warn("timed_out", "webhook from %s refused: %s", remote, exc)
            response = web.Response(status=408, text=str(exc))
            response.force_close()
            # Answer now, then drop the connection (aiohttp would otherwise keep reading the
            # rest of the body for up to its lingering time).
            with contextlib.suppress(ConnectionError):
                await response.prepare(request)
                await response.write_eof()
            transport = request.transport
            if transport is not None:
                transport.close()
            return response
        self.stats.malformed += 1
        self._warnings.warn("malformed", "webhook from %s refused: %s", remote, exc)
        return web.Response(status=400, text=str(exc))

    async def _read(self, request: web.Request) -> bytes:
        """The body; :class:`_BodyTooLarge` when it is larger than ``max_bytes``."""
        limit = self.max_bytes
        length = request.content_length
        if length is not None and length > limit:
            raise _BodyTooLarge(f"body of {length} bytes, more than the {limit} accepted")
        chunks: list[bytes] = []
        size = 0
        try:
            async for chunk in request.content.iter_any():
                size += len(chunk)
                if size > limit:
                    raise _BodyTooLarge(f"body larger than the {limit} bytes accepted")
                chunks.append(chunk)
        except (web.RequestPayloadError, ConnectionError):
            raise WebhookPayloadError("webhook body could not be read") from None
        return b"".join(chunks)

    def _all_tasks(self) -> set[asyncio.Task[None]]:
        tasks = set(self._callbacks.tasks)
        if self.tracker is not None:
            tasks |= self.tracker._callbacks.tasks
        return tasks

    async def drain(self) -> None:
        """Wait until the handler (and ``on_unsolicited``) calls started so far are done."""
        while True:
            tasks = self._all_tasks()
            if not tasks:
                return
            await asyncio.gather(*tasks, return_exceptions=True)

    async def aclose(self, timeout: float | None = None) -> None:  # noqa: ASYNC109
        """Let running handler (and ``on_unsolicited``) calls finish, for at most ``timeout``
        seconds (called on the app's cleanup); then cancel those still running or waiting,
        and wait for them to end (a call that ignores its cancellation is given up after a
        second, with an error logged).

        Args:
            timeout: seconds to wait; None means the receiver's ``shutdown_timeout``;
                ``math.inf`` waits as long as it takes.
        """
        limit = self.shutdown_timeout if timeout is None else timeout
        if not limit >= 0:
            raise ValueError("timeout must be a number of seconds >= 0")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        while tasks := self._all_tasks():
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            await asyncio.wait(tasks, timeout=None if remaining == math.inf else remaining)
        if not tasks:
            return
        logger.warning("cancelling %d webhook handler calls still running after %g s",
                       len(tasks), limit)
        for task in tasks:
            task.cancel()
        _done, stuck = await asyncio.wait(tasks, timeout=_CANCEL_GRACE)
        if stuck:
            logger.error("%d webhook handler calls ignored their cancellation", len(stuck))

    async def _on_cleanup(self, _app: web.Application) -> None:
        await self.aclose()


#: Where :func:`webhook_app` keeps its :class:`WebhookReceiver` (``app[WEBHOOK_RECEIVER_KEY]``).
WEBHOOK_RECEIVER_KEY: Final = web.AppKey("flinkey_webhook_receiver", WebhookReceiver)


def add_webhook_routes(
    target: web.Application | web.UrlDispatcher,
    *,
    secret: str | Secret | None,
    tracker: OperationTracker | None = None,
    handler: EventHandler | None = None,
    path: str = DEFAULT_PATH,
    per_kind_routes: bool = True,
    max_bytes: int = DEFAULT_MAX_BYTES,
    memory: int = 10_000,
    body_timeout: float = DEFAULT_BODY_TIMEOUT,
    max_handler_tasks: int = 100,
    max_handler_backlog: int = 1000,
    shutdown_timeout: float = 10.0,
    warning_interval: float = 60.0,
) -> WebhookReceiver:
    """Add the webhook routes to your own aiohttp application (or router).

    ``POST {path}`` takes every event. With ``per_kind_routes`` (default), ``POST
    {path}/created``, ``{path}/updated`` and ``{path}/deleted`` take the events of one
    operation each, for a Portal configured with a URL per operation: the route then tells the
    event's kind. ``secret`` is required: pass ``None`` only to accept unauthenticated requests
    (flinkey sends no ``Secret`` header when no secret is set in the Portal).

    The other arguments are the :class:`WebhookReceiver`'s: ``max_bytes``, ``memory``,
    ``body_timeout`` (seconds to read a body in, else 408), ``max_handler_tasks`` and
    ``max_handler_backlog`` (handler calls running and waiting at most), ``shutdown_timeout``
    (seconds the cleanup waits for handler calls before cancelling them) and
    ``warning_interval`` (seconds between two warnings of one kind).

    Returns the :class:`WebhookReceiver`. When ``target`` is an application, the receiver
    waits for running handler calls (at most ``shutdown_timeout`` seconds) on the
    application's cleanup; with a bare router, call :meth:`WebhookReceiver.aclose` yourself.
    Serve the application with :func:`start_webhook_server` for a timeout on request heads.
    """
    secret = _wrap_secret(secret)
    if not path.startswith("/") or (path.endswith("/") and path != "/"):
        raise ValueError(f"path must start with '/' and not end with '/', got {path!r}")
    receiver = WebhookReceiver(secret=secret, tracker=tracker, handler=handler,
                               max_bytes=max_bytes, memory=memory, body_timeout=body_timeout,
                               max_handler_tasks=max_handler_tasks,
                               max_handler_backlog=max_handler_backlog,
                               shutdown_timeout=shutdown_timeout,
                               warning_interval=warning_interval)
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
    secret: str | Secret | None,
    tracker: OperationTracker | None = None,
    handler: EventHandler | None = None,
    path: str = DEFAULT_PATH,
    per_kind_routes: bool = True,
    max_bytes: int = DEFAULT_MAX_BYTES,
    memory: int = 10_000,
    body_timeout: float = DEFAULT_BODY_TIMEOUT,
    max_handler_tasks: int = 100,
    max_handler_backlog: int = 1000,
    shutdown_timeout: float = 10.0,
    warning_interval: float = 60.0,
) -> web.Application:
    """A ready aiohttp application that receives flinkey's webhooks (see
    :func:`add_webhook_routes` for the routes and arguments). Its receiver is
    ``app[WEBHOOK_RECEIVER_KEY]``; serve it with :func:`start_webhook_server`."""
    secret = _wrap_secret(secret)
    app = web.Application(client_max_size=max_bytes)
    app[WEBHOOK_RECEIVER_KEY] = add_webhook_routes(
        app, secret=secret, tracker=tracker, handler=handler, path=path,
        per_kind_routes=per_kind_routes, max_bytes=max_bytes, memory=memory,
        body_timeout=body_timeout, max_handler_tasks=max_handler_tasks,
        max_handler_backlog=max_handler_backlog, shutdown_timeout=shutdown_timeout,
        warning_interval=warning_interval)
    return app


# -- serving, with a timeout on request heads ----------------------------------------------------

#: aiohttp Servers whose request handler tells :class:`_HeadDeadline` when a head is complete.
_MARKED_SERVERS: weakref.WeakSet[web.Server] = weakref.WeakSet()


def _mark_heads(server: web.Server) -> None:
    """Wrap the server's request handler so that each request, once aiohttp has parsed its
    head and starts handling it, disarms its connection's :class:`_HeadDeadline`."""
    if server in _MARKED_SERVERS:
        return
    handle = server.request_handler

    async def marking(request: web.BaseRequest) -> web.StreamResponse:
        transport = request.transport
        deadline = transport.get_protocol() if transport is not None else None
        if not isinstance(deadline, _HeadDeadline):
            return await handle(request)
        deadline.head_received()
        try:
            return await handle(request)
        finally:
            deadline.request_done()

    server.request_handler = marking
    _MARKED_SERVERS.add(server)


class _HeadDeadline(asyncio.Protocol):
    """Wraps aiohttp's protocol of one connection: aborts the connection when no complete
    request head arrived ``header_timeout`` seconds after it opened, or after the end of the
    previous request on a kept-alive connection."""

    __slots__ = ("_in_request", "_inner", "_site", "_timer", "_transport")

    def __init__(self, inner: asyncio.Protocol, site: HeaderTimeoutSite) -> None:
        self._inner = inner
        self._site = site
        self._timer: asyncio.TimerHandle | None = None
        self._transport: asyncio.BaseTransport | None = None
        self._in_request = False

    def _arm(self) -> None:
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self._site.header_timeout, self._expired)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expired(self) -> None:
        self._timer = None
        transport = self._transport
        if self._in_request or transport is None or transport.is_closing():
            return
        self._site._head_timed_out(transport)
        if isinstance(transport, asyncio.WriteTransport):
            transport.abort()
        else:  # pragma: no cover - stream servers give write transports
            transport.close()

    def head_received(self) -> None:
        self._in_request = True
        self._disarm()

    def request_done(self) -> None:
        # Armed whether or not bytes of the next request already came (a pipelined partial
        # head arrives before this request's handler even started).
        self._in_request = False
        if self._transport is not None and self._timer is None:
            self._arm()

    # -- asyncio.Protocol, forwarded ---------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport
        self._arm()
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self._transport = None
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()


class HeaderTimeoutSite(web.BaseSite):
    """An aiohttp TCP site that closes connections which do not deliver a complete request
    head in time (aiohttp's server has no such timeout: a client sending its headers byte by
    byte would hold a connection for as long as it likes).

    How: the site listens with ``loop.create_server`` itself, and wraps the protocol aiohttp
    makes for each connection in a small forwarding protocol with a timer. The timer starts
    when the connection opens, and again when a request's handler returns (for the next
    request on a kept-alive connection); it is cancelled when aiohttp, having parsed a head,
    starts handling the request (the site wraps the runner's ``Server.request_handler`` for
    that: the one point where aiohttp's public API says "a head was parsed"). When it fires,
    the connection is aborted. This leaves aiohttp's parsing, keep-alive and shutdown
    untouched and relies on no private attribute of aiohttp's ``RequestHandler``. Counting
    from a request's end rather than from the next request's first byte also catches a
    partial head pipelined behind a complete request, but it means an idle kept-alive
    connection is closed after ``header_timeout`` too (as Go's server does when only its
    ``ReadHeaderTimeout`` is set); a client or proxy then opens a new connection. Why not
    aiohttp's ``keepalive_timeout``: only aiohttp 3.14 and later start it when a connection
    opens (the project accepts aiohttp 3.9), and it fires only while no request is being
    handled, so it bounds no head that it did not also bound as idle time. Bodies are bounded
    by the receiver's ``body_timeout``.

    Args:
        runner: a set-up ``web.AppRunner`` (or any runner).
        host: the address to listen on.
        port: the port (0: any free port; see :attr:`port`).
        header_timeout: seconds a connection has to deliver a complete request head, from
            when it opens and from the end of each request.
        ssl_context: for HTTPS (the TLS handshake then gets ``header_timeout`` too).
        backlog: the listen backlog.
        warning_interval: seconds between two warnings about closed connections.

    Attributes:
        timed_out: connections closed for an incomplete head so far.
    """

    __slots__ = ("_bound_port", "_host", "_port", "_warnings", "header_timeout", "timed_out")

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str | None,
        port: int,
        *,
        header_timeout: float = DEFAULT_HEADER_TIMEOUT,
        ssl_context: ssl.SSLContext | None = None,
        backlog: int = 128,
        warning_interval: float = 60.0,
    ) -> None:
        super().__init__(runner, ssl_context=ssl_context, backlog=backlog)
        self._host = host
        self._port = port
        self._bound_port: int | None = None
        self.header_timeout = _positive(header_timeout, "header_timeout")
        self.timed_out = 0
        self._warnings = _Warnings(warning_interval)

    @property
    def name(self) -> str:
        scheme = "https" if self._ssl_context else "http"
        return str(URL.build(scheme=scheme, host=self._host or "0.0.0.0", port=self.port))

    @property
    def port(self) -> int:
        """The port listened on (the one bound, once started)."""
        return self._bound_port if self._bound_port is not None else self._port

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None
        _mark_heads(server)
        loop = asyncio.get_running_loop()

        def connection() -> asyncio.Protocol:
            return _HeadDeadline(server(), self)

        listening = await loop.create_server(
            connection, self._host, self._port, ssl=self._ssl_context, backlog=self._backlog,
            ssl_handshake_timeout=self.header_timeout if self._ssl_context else None)
        self._server = listening
        sockets = listening.sockets
        self._bound_port = sockets[0].getsockname()[1] if sockets else self._port

    def _head_timed_out(self, transport: asyncio.BaseTransport) -> None:
        self.timed_out += 1
        self._warnings.warn("head", "closed a connection from %s: no complete request head "
                            "within %g s", transport.get_extra_info("peername"),
                            self.header_timeout)


async def start_webhook_server(
    app: web.Application,
    host: str | None,
    port: int,
    *,
    header_timeout: float = DEFAULT_HEADER_TIMEOUT,
    ssl_context: ssl.SSLContext | None = None,
    **runner_kwargs: Any,
) -> web.AppRunner:
    """Serve ``app`` (e.g. a :func:`webhook_app`) on ``host:port`` with a timeout on request
    heads (see :class:`HeaderTimeoutSite`), and return its started runner; stop it with
    ``await runner.cleanup()`` (which also closes the receiver, see
    :meth:`WebhookReceiver.aclose`).

    Args:
        app: the application; it must not have been started yet.
        host: the address to listen on (None: every interface).
        port: the port (0: any free one; ``runner.addresses[0][1]`` tells which).
        header_timeout: seconds a connection has to deliver a complete request head, from
            when it opens and from the end of each request (so an idle kept-alive
            connection is closed after it too). Bodies are bounded by the receiver's
            ``body_timeout``.
        ssl_context: serve HTTPS (the secret travels in a header: use HTTPS, or a TLS
            terminating proxy in front).
        **runner_kwargs: passed to ``web.AppRunner`` (``access_log``, ``keepalive_timeout``,
            ``shutdown_timeout``, ...).
    """
    runner = web.AppRunner(app, **runner_kwargs)
    await runner.setup()
    try:
        site = HeaderTimeoutSite(runner, host, port, header_timeout=header_timeout,
                                 ssl_context=ssl_context)
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner
