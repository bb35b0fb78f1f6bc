"""Asynchronous writes: what was sent, and (by webhook or by polling) its real outcome.

flinkey answers ``PUT``/``PATCH``/``DELETE /assignments`` with 204 and applies the write later;
the outcome arrives by webhook. Every write method returns a :class:`PendingOperation` that
records exactly what was sent, and :meth:`PendingOperation.wait` turns it into an
:class:`OperationOutcome`:

* with an :class:`~flinkey_async.webhooks.OperationTracker` attached to the client
  (``FlinkeyClient(..., tracker=tracker)``), from the confirmation webhook: the outcome is
  *confirmed* (``confirmed=True``), and a write flinkey rejected raises
  :class:`~flinkey_async.errors.OperationFailedError` with flinkey's ``errorMessage``;
* without one, by polling the read endpoints until the change is visible: the outcome is
  *observed* (``confirmed=False``). A rejected write never becomes visible, so polling ends in
  :class:`~flinkey_async.errors.OperationTimeoutError` (or, where a 404 proves the target is
  gone, :class:`~flinkey_async.errors.OperationFailedError` without an event).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, NoReturn, Protocol

import attrs

from ._converter import parse_datetime
from .errors import (
    NotFoundError,
    OperationFailedError,
    OperationTimeoutError,
    RateLimitError,
    ServerError,
    TransportError,
)
from .models import Assignment, CarAssignment
from .patch import ASSIGNMENT_PATCH, PatchField, ValueKind

if TYPE_CHECKING:
    from .client import FlinkeyClient
    from .webhooks import AssignmentEvent

__all__ = [
    "OperationKind",
    "OperationOutcome",
    "OperationWatcher",
    "PendingOperation",
    "body_checksum",
]

logger = logging.getLogger("flinkey_async")

OperationKind = Literal["create", "update", "delete"]


def body_checksum(data: bytes) -> str:
    """MD5 of the exact bytes sent, as 32 upper-case hex digits: flinkey documents its webhook
    ``checksum`` as "a hash value generated from the payload of the initial request" without
    saying which bytes; this is the SDK's best guess and is used only as a hint."""
    return hashlib.md5(data, usedforsecurity=False).hexdigest().upper()


class OperationWatcher(Protocol):
    """Learns of every asynchronous write before it is sent and can wait for its outcome
    (implemented by :class:`~flinkey_async.webhooks.OperationTracker`)."""

    def expect(self, op: PendingOperation) -> None:
        """``op`` is about to be sent: start looking for its confirmation."""

    def discard(self, op: PendingOperation) -> None:
        """``op`` could not be sent: stop looking for it."""

    async def wait(self, op: PendingOperation,
                   timeout: float | None) -> OperationOutcome:  # noqa: ASYNC109
        """The outcome of ``op``; raises :class:`OperationFailedError` or
        :class:`OperationTimeoutError`."""
        ...


@attrs.frozen
class OperationOutcome:
    """A write that flinkey applied.

    Attributes:
        operation: the :class:`PendingOperation` this is the outcome of.
        succeeded: always ``True`` (a write that failed raises
            :class:`~flinkey_async.errors.OperationFailedError` instead); kept so an outcome
            reads naturally in logs.
        assignment_id: the assignment created, updated or deleted. For a create this is the id
            flinkey assigned.
        confirmed: ``True`` when flinkey's webhook confirmed the write; ``False`` when the change
            was only observed by polling the read endpoints.
        event: the confirming webhook event (``None`` when observed by polling).
        assignment: what polling saw (an :class:`~flinkey_async.Assignment` after an update, a
            :class:`~flinkey_async.CarAssignment` after a create; ``None`` after a delete and
            for confirmed outcomes).
    """

    operation: PendingOperation = attrs.field(repr=False)
    succeeded: bool
    assignment_id: int | None
    confirmed: bool
    event: AssignmentEvent | None = attrs.field(default=None, repr=False)
    assignment: Assignment | CarAssignment | None = attrs.field(default=None, repr=False)


class _Failure:
    """Why an operation failed: flinkey's message and the event that carried it."""

    __slots__ = ("error_message", "event")

    def __init__(self, error_message: str | None, event: AssignmentEvent | None) -> None:
        self.error_message = error_message
        self.event = event


class OperationState:
    """The mutable part of a :class:`PendingOperation`: what is known about its outcome.

    Set by a tracker (:meth:`resolve`) or by polling; an operation is resolved at most once.
    Use it from the event loop the operation was created in.
    """

    __slots__ = ("_done", "event", "failure", "outcome")

    def __init__(self) -> None:
        self._done: asyncio.Event | None = None
        #: The webhook event that resolved the operation, if any.
        self.event: AssignmentEvent | None = None
        #: The outcome, once known and successful.
        self.outcome: OperationOutcome | None = None
        #: The failure, once known and failed.
        self.failure: _Failure | None = None

    @property
    def done(self) -> bool:
        return self.outcome is not None or self.failure is not None or self.event is not None

    def resolve(self, event: AssignmentEvent) -> bool:
        """Record the webhook event of the operation; False when it was already resolved."""
        if self.done:
            return False
        self.event = event
        if self._done is not None:
            self._done.set()
        return True

    async def wait_event(self) -> None:
        """Return once :meth:`resolve` was called."""
        if self.done:
            return
        if self._done is None:
            self._done = asyncio.Event()
        await self._done.wait()


# What a PATCH path means for polling: the Assignment attribute and the kind of its value.
_PATCH_FIELDS: dict[str, PatchField] = {f.pointer: f for f in ASSIGNMENT_PATCH.fields}
# Kinds a remove (or null) resets to a server default rather than to None.
_SERVER_DEFAULT_KINDS = frozenset({ValueKind.LIFETIME, ValueKind.SECONDS})


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
        field = _PATCH_FIELDS.get(str(item.get("path")))
        if field is None:
            continue
        attribute, kind = field.attribute, field.kind
        value = item.get("value") if item.get("op") == "replace" else None
        if value is None:
            if kind not in _SERVER_DEFAULT_KINDS:
                expected[attribute] = None
            continue
        try:
            expected[attribute] = (parse_datetime(value) if kind is ValueKind.DATETIME
                                   else int(value))
        except (TypeError, ValueError):
            continue
    return expected


@attrs.frozen(eq=False)
class PendingOperation:
    """A write flinkey accepted (204) and will apply asynchronously.

    Operations compare by identity: two identical requests are two operations.

    Attributes:
        kind: ``"create"``, ``"update"`` or ``"delete"``.
        customer_id: the ``Customer-ID`` it was sent for.
        assignment_id: the assignment updated or deleted (``None`` for a create: flinkey
            assigns the id later and reports it in the webhook).
        car_id, user_id, start, end: for a create, the values sent (they identify the
            confirmation webhook); for an update, those the patch replaces, else ``None``.
        body: the JSON body sent (``None`` for a delete).
        checksum: MD5 (upper-case hex) of the body bytes sent, a hint for correlation.
        sent_at: when the request was sent (aware UTC).
    """

    kind: OperationKind
    customer_id: int
    assignment_id: int | None
    body: Any
    checksum: str
    sent_at: datetime
    car_id: int | None = None
    user_id: int | None = None
    start: datetime | None = None
    end: datetime | None = None
    _client: FlinkeyClient | None = attrs.field(default=None, repr=False, alias="client")
    _watcher: OperationWatcher | None = attrs.field(default=None, repr=False, alias="watcher")
    _state: OperationState = attrs.field(factory=OperationState, init=False, repr=False)

    def describe(self) -> str:
        """A short human description, e.g. ``create of an assignment (car 7, user 9)``."""
        if self.kind == "create":
            return f"create of an assignment (car {self.car_id}, user {self.user_id})"
        return f"{self.kind} of assignment {self.assignment_id}"

    @property
    def state(self) -> OperationState:
        """What is known so far about the outcome (for trackers; users call :meth:`wait`)."""
        return self._state

    def done(self) -> bool:
        """True once the outcome is known (a webhook arrived or polling observed the change)."""
        return self._state.done

    async def wait(
        self,
        timeout: float | None = 30.0,  # noqa: ASYNC109
        *,
        poll_interval: float = 0.5,
        max_poll_interval: float = 5.0,
    ) -> OperationOutcome:
        """Wait until flinkey has applied the write, and return its :class:`OperationOutcome`.

        With a tracker attached to the client when the write was sent, the outcome comes from
        flinkey's confirmation webhook (``outcome.confirmed`` is ``True``). Otherwise the read
        endpoints are polled through the client, first after ``poll_interval`` seconds, then
        with doubling intervals up to ``max_poll_interval`` (``outcome.confirmed`` is
        ``False``: the change was observed, not confirmed):

        * delete: ``GET /assignments/{id}`` until it answers 404;
        * update: ``GET /assignments/{id}`` until the patched fields show the values sent (an
          update whose values the assignment already had is observed at once);
        * create: ``GET /cars/{carId}/assignments`` until an item has the user, start and end
          sent (an identical assignment that already existed is taken for the new one; among
          several, the highest id wins).

        Calling ``wait`` again returns the same outcome.

        Raises:
            OperationFailedError: flinkey reported that the write failed (``error_message`` is
                its reason, ``event`` the webhook event); when polling, only where a 404 shows
                that the assignment or car does not exist.
            OperationTimeoutError: no confirmation within ``timeout`` seconds (``None``: wait
                for ever). When polling, a rejected write ends this way, since it never
                becomes visible.
        """
        if self._state.done:
            return self.result()
        if self._watcher is not None:
            return await self._watcher.wait(self, timeout)
        return await self._poll(timeout, poll_interval, max_poll_interval)

    def result(self) -> OperationOutcome:
        """The outcome, when already known (like ``asyncio.Future.result()``).

        Raises :class:`OperationFailedError` for a known failure and
        :class:`asyncio.InvalidStateError` while the outcome is not known yet.
        """
        state = self._state
        if state.outcome is not None:
            return state.outcome
        if state.failure is not None:
            raise self._failed(state.failure)
        if state.event is not None:
            return self.outcome_from_event(state.event)
        raise asyncio.InvalidStateError(f"the outcome of the {self.describe()} is not known yet")

    # -- outcome from a webhook event --------------------------------------------------------
    def outcome_from_event(self, event: AssignmentEvent) -> OperationOutcome:
        """The outcome the webhook ``event`` reports for this operation (stored, so later
        calls return the same object); raises :class:`OperationFailedError` when it reports a
        failure."""
        state = self._state
        if state.outcome is not None:
            return state.outcome
        if not event.operation_succeeded:
            state.failure = _Failure(event.error_message, event)
            raise self._failed(state.failure)
        assignment_id = event.assignment_id if self.kind == "create" else self.assignment_id
        state.outcome = OperationOutcome(self, True, assignment_id, True, event)
        return state.outcome

    def _failed(self, failure: _Failure) -> OperationFailedError:
        return OperationFailedError(self.describe(), failure.error_message, failure.event)

    # -- polling -----------------------------------------------------------------------------
    async def _poll(self, timeout: float | None, interval: float,  # noqa: ASYNC109
                    max_interval: float) -> OperationOutcome:
        client = self._client
        if client is None:
            raise RuntimeError(
                f"cannot wait for the {self.describe()}: it has no client to poll with and no "
                "tracker (operations returned by FlinkeyClient have both)"
            )
        if interval <= 0 or max_interval < interval:
            raise ValueError("need 0 < poll_interval <= max_poll_interval")
        last = "no poll completed"
        delay = interval
        rng = random.Random()
        try:
            async with asyncio.timeout(timeout):
                while True:
                    await asyncio.sleep(delay * rng.uniform(0.8, 1.0))
                    delay = min(delay * 2, max_interval)
                    try:
                        outcome, last = await self._observe(client)
                    except (TransportError, ServerError, RateLimitError) as exc:
                        last = f"the last poll failed ({exc})"
                        logger.debug("polling the %s: %s", self.describe(), last)
                        continue
                    if outcome is not None:
                        if self._state.outcome is None:
                            self._state.outcome = outcome
                        return self._state.outcome
        except TimeoutError:
            raise OperationTimeoutError(
                f"the {self.describe()} was not observed within {timeout} s of polling: {last}. "
                "A write flinkey rejected never becomes visible, and polling cannot see why; "
                "attach an OperationTracker with a webhook receiver to get flinkey's verdict"
            ) from None

    async def _observe(self, client: FlinkeyClient) -> tuple[OperationOutcome | None, str]:
        """One poll: the outcome if the change is visible, else ``(None, what was seen)``."""
        assignments = client.assignments
        if self.kind == "delete":
            assert self.assignment_id is not None
            try:
                await assignments.get(self.assignment_id)
            except NotFoundError:
                return OperationOutcome(self, True, self.assignment_id, False), "gone"
            return None, f"GET /assignments/{self.assignment_id} still returns it"
        if self.kind == "update":
            assert self.assignment_id is not None
            try:
                current = await assignments.get(self.assignment_id)
            except NotFoundError:
                self._gone(f"assignment {self.assignment_id} does not exist "
                           "(GET /assignments/{id} answered 404 while polling)")
            expected = expected_after_patch(self.body)
            differing = sorted(k for k, v in expected.items() if getattr(current, k) != v)
            if not differing:
                return OperationOutcome(self, True, self.assignment_id, False,
                                        assignment=current), "applied"
            return None, ("GET /assignments/{id} still shows the old "
                          + ", ".join(differing))
        if self.car_id is None or self.user_id is None or self.start is None:
            raise RuntimeError(f"cannot poll for the {self.describe()}: car, user or start "
                               "unknown")
        try:
            items = await assignments.list_for_car(self.car_id)
        except NotFoundError:
            self._gone(f"car {self.car_id} does not exist "
                       "(GET /cars/{carId}/assignments answered 404 while polling)")
        found = [item for item in items if item.user_id == self.user_id
                 and item.start == self.start and item.end == self.end]
        if found:
            item = max(found, key=lambda a: a.id)
            return OperationOutcome(self, True, item.id, False, assignment=item), "found"
        return None, (f"no assignment of car {self.car_id} has user {self.user_id} and the "
                      "start and end sent")

    def _gone(self, reason: str) -> NoReturn:
        self._state.failure = _Failure(reason, None)
        raise self._failed(self._state.failure)
