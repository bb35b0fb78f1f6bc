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

A pending operation knows nothing of the client: the resource that made it hands it what it
needs to confirm itself, a *probe* (one poll of the read endpoints, which knows what the write
should look like once applied) and the *watcher* (the tracker, when webhooks are received).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Literal, NoReturn, Protocol

import attrs

from .._validate import check_seconds
from ..errors import (
    OperationFailedError,
    OperationTimeoutError,
    RateLimitError,
    ServerError,
    TransportError,
    ValidationError,
)

__all__ = [
    "Event",
    "OperationKind",
    "OperationOutcome",
    "OperationState",
    "Tracker",
    "PendingOperation",
    "Probe",
    "body_checksum",
]

logger = logging.getLogger("flinkey_async")

OperationKind = Literal["create", "update", "delete"]


class Event(Protocol):
    """What an operation needs of a webhook event (an
    :class:`~flinkey_async.webhooks.AssignmentEvent`)."""

    @property
    def operation_succeeded(self) -> bool: ...

    @property
    def error_message(self) -> str | None: ...

    @property
    def assignment_id(self) -> int | None: ...


def body_checksum(data: bytes) -> str:
    """MD5 of the exact bytes sent, as 32 upper-case hex digits: flinkey documents its webhook
    ``checksum`` as "a hash value generated from the payload of the initial request" without
    saying which bytes; this is the SDK's best guess and is used only as a hint."""
    return hashlib.md5(data, usedforsecurity=False).hexdigest().upper()


class Tracker(Protocol):
    """Learns of every asynchronous write before it is sent and can wait for its outcome
    (implemented by :class:`~flinkey_async.webhooks.OperationTracker`)."""

    def expect(self, op: PendingOperation) -> None:
        """``op`` is about to be sent: start looking for its confirmation."""

    def discard(self, op: PendingOperation) -> None:
        """``op`` could not be sent: stop looking for it."""

    async def wait(self, op: PendingOperation, timeout: float | None) -> OperationOutcome:  # noqa: ASYNC109
        """The outcome of ``op``; raises :class:`OperationFailedError` or
        :class:`OperationTimeoutError`."""
        ...


@attrs.frozen
class OperationOutcome:
    """A write that flinkey applied.

    A write that failed raises :class:`~flinkey_async.errors.OperationFailedError` instead.

    Attributes:
        operation: the :class:`PendingOperation` this is the outcome of.
        assignment_id: the assignment created, updated or deleted. For a create this is the id
            flinkey assigned.
        confirmed: ``True`` when flinkey's webhook confirmed the write; ``False`` when the change
            was only observed by polling the read endpoints.
        event: the confirming webhook event, an :class:`~flinkey_async.AssignmentEvent`
            (``None`` when observed by polling).
        assignment: what polling saw (an :class:`~flinkey_async.Assignment` after an update, a
            :class:`~flinkey_async.CarAssignment` after a create; ``None`` after a delete and
            for confirmed outcomes).
        fallback_reason: why a write that was to be confirmed by webhook was observed by
            polling instead (for example ``"Redis unavailable: ..."`` when a
            :class:`~flinkey_async.shared.confirmations.SharedTracker` lost its connection);
            ``None`` otherwise.
    """

    operation: PendingOperation = attrs.field(repr=False)
    assignment_id: int | None
    confirmed: bool
    event: Any = attrs.field(default=None, repr=False)
    assignment: Any = attrs.field(default=None, repr=False)
    fallback_reason: str | None = None


class _Failure:
    """Why an operation failed: flinkey's message and the event that carried it."""

    __slots__ = ("error_message", "event")

    def __init__(self, error_message: str | None, event: Any) -> None:
        self.error_message = error_message
        self.event = event


class OperationState:
    """The mutable part of a :class:`PendingOperation`: what is known about its outcome.

    Set by a tracker (:meth:`record_event`) or by polling; an operation is resolved at most once.
    Use it from the event loop the operation was created in.
    """

    __slots__ = ("_done", "event", "failure", "outcome")

    def __init__(self) -> None:
        self._done: asyncio.Event | None = None
        #: The webhook event that resolved the operation, if any.
        self.event: Any = None
        #: The outcome, once known and successful.
        self.outcome: OperationOutcome | None = None
        #: The failure, once known and failed.
        self.failure: _Failure | None = None

    @property
    def done(self) -> bool:
        return self.outcome is not None or self.failure is not None or self.event is not None

    def record_event(self, event: Event) -> bool:
        """Record the webhook event of the operation; False when it was already resolved."""
        if self.done:
            return False
        self.event = event
        if self._done is not None:
            self._done.set()
        return True

    async def wait_event(self) -> None:
        """Return once :meth:`record_event` was called."""
        if self.done:
            return
        if self._done is None:
            self._done = asyncio.Event()
        await self._done.wait()


#: One poll of the read endpoints for ``op``: its outcome once the change is visible, else
#: ``(None, what was seen)``; it may raise ``op.fail(...)`` where the target proves gone.
Probe = Callable[["PendingOperation"], Awaitable[tuple["OperationOutcome | None", str]]]


def check_wait(
    timeout: float | None, poll_interval: float = 0.5, max_poll_interval: float = 5.0
) -> None:
    """Raise :class:`ValidationError` unless ``timeout`` is ``None`` or a number of seconds
    (not NaN; zero or less: no waiting) and ``0 < poll_interval <= max_poll_interval``, finite
    numbers (a NaN deadline would be scheduled in the event loop's timers)."""
    check_seconds(timeout, "timeout", low="any", finite=False, optional=True)
    check_seconds(poll_interval, "poll_interval", low=">0")
    check_seconds(max_poll_interval, "max_poll_interval", low=">0")
    if max_poll_interval < poll_interval:
        raise ValidationError(
            "max_poll_interval",
            f"must be at least poll_interval ({poll_interval!r}), got {max_poll_interval!r}",
        )


@attrs.frozen(eq=False)
class PendingOperation:
    """A write flinkey accepted (204) and will apply asynchronously.

    Operations compare by identity: two identical requests are two operations. They are made
    by the resource methods (``client.assignments.create(...)``, ...), which hand each one its
    probe and the client's tracker.

    Attributes:
        kind: ``"create"``, ``"update"`` or ``"delete"``.
        customer_id: the ``Customer-ID`` it was sent for.
        assignment_id: the assignment updated or deleted (``None`` for a create: flinkey
            assigns the id later and reports it in the webhook).
        body: the JSON body sent (``None`` for a delete).
        checksum: MD5 (upper-case hex) of the body bytes sent, a hint for correlation.
        sent_at: when the request was sent (aware UTC).
        description: what it is, for messages (``create of an assignment (car 7, user 9)``).
        create_key: for a create, what identifies its confirmation webhook (for assignments
            ``(customer, car, user, start, end)``); ``None`` otherwise.
        request: what was sent, as the resource's request object (a
            :class:`~flinkey_async.models.NewAssignment` for a create, the
            :class:`~flinkey_async.JsonPatch` of an update; ``None`` for a delete).
        baseline: for a create, the ids of assignments that already matched its key before
            it was sent: polling never takes one of them for the new one (so a create flinkey
            rejected is not reported as applied because an identical assignment existed).
    """

    kind: OperationKind
    customer_id: int
    assignment_id: int | None
    body: Any
    checksum: str
    sent_at: datetime
    description: str = ""
    create_key: tuple[Any, ...] | None = None
    request: Any = attrs.field(default=None, repr=False)
    baseline: frozenset[int] = attrs.field(default=frozenset(), repr=False)
    _probe: Probe | None = attrs.field(default=None, repr=False, alias="probe")
    _watcher: Tracker | None = attrs.field(default=None, repr=False, alias="watcher")
    _state: OperationState = attrs.field(factory=OperationState, init=False, repr=False)

    def abandon(self) -> None:
        """Stop expecting this write's confirmation: its tracker forgets it, so that a
        webhook matching it (the one of an identical write sent again, say) resolves another
        operation, or none. For a write whose outcome is settled otherwise (a fresh read)."""
        if self._watcher is not None and not self._state.done:
            self._watcher.discard(self)

    def describe(self) -> str:
        """A short human description, e.g. ``create of an assignment (car 7, user 9)``."""
        if self.description:
            return self.description
        target = f" of {self.assignment_id}" if self.assignment_id is not None else ""
        return f"{self.kind}{target}"

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
        endpoints are polled, first after ``poll_interval`` seconds, then with doubling
        intervals up to ``max_poll_interval`` (``outcome.confirmed`` is ``False``: the change
        was observed, not confirmed). For assignments:

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
        check_wait(timeout, poll_interval, max_poll_interval)
        if self._state.done:
            return self.result()
        if self._watcher is not None:
            return await self._watcher.wait(self, timeout)
        return await self._poll(timeout, poll_interval, max_poll_interval)

    @property
    def can_poll(self) -> bool:
        """True when the operation has a probe, so :meth:`poll` can observe its outcome."""
        return self._probe is not None

    async def poll(
        self,
        timeout: float | None = 30.0,  # noqa: ASYNC109
        *,
        poll_interval: float = 0.5,
        max_poll_interval: float = 5.0,
        reason: str | None = None,
    ) -> OperationOutcome:
        """Observe the outcome by polling the read endpoints, whether or not a tracker
        watches the operation (what :meth:`wait` does without one; trackers call it when
        their webhooks stopped arriving). ``reason`` is recorded in the outcome's
        ``fallback_reason``. Raises like :meth:`wait` does when polling."""
        check_wait(timeout, poll_interval, max_poll_interval)
        if self._state.done:
            return self.result()
        outcome = await self._poll(timeout, poll_interval, max_poll_interval)
        if reason is not None and outcome.fallback_reason is None and not outcome.confirmed:
            outcome = attrs.evolve(outcome, fallback_reason=reason)
            self._state.outcome = outcome
        return outcome

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
    def outcome_from_event(self, event: Event) -> OperationOutcome:
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
        state.outcome = OperationOutcome(self, assignment_id, True, event)
        return state.outcome

    def _failed(self, failure: _Failure) -> OperationFailedError:
        return OperationFailedError(self.describe(), failure.error_message, failure.event)

    def fail(self, reason: str) -> NoReturn:
        """Record that polling proved the write failed (its target does not exist), and raise
        the :class:`OperationFailedError` (for probes)."""
        self._state.failure = _Failure(reason, None)
        raise self._failed(self._state.failure)

    # -- polling -----------------------------------------------------------------------------
    async def _poll(
        self,
        timeout: float | None,  # noqa: ASYNC109 - a duration, applied with asyncio.timeout
        interval: float,
        max_interval: float,
    ) -> OperationOutcome:
        probe = self._probe
        if probe is None:
            raise RuntimeError(
                f"cannot wait for the {self.describe()}: it has no probe to poll with and no "
                "tracker (operations returned by the resource methods have one or the other)"
            )
        last = "no poll completed"
        delay = interval
        rng = random.Random()
        try:
            async with asyncio.timeout(timeout):
                while True:
                    await asyncio.sleep(delay * rng.uniform(0.8, 1.0))
                    delay = min(delay * 2, max_interval)
                    try:
                        outcome, last = await probe(self)
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
