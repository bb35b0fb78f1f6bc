"""Many writes at once, each awaited to its confirmed outcome (no I/O of its own: it runs the
write and wait callables it is given, with bounded concurrency).

Every item ends in one :class:`ItemResult`, never an exception for the whole run:

* ``succeeded``: flinkey applied it (confirmed by webhook, or observed by polling);
* ``failed``: flinkey refused it (its ``reason`` is flinkey's message, or the typed error's),
  or it was not sent (a refused connection after the retries, an argument refused, a journal
  that could not record it, or a failed read that had to come first, like ``delete_many``'s);
* ``unknown``: it may have been applied (a 5xx, a timeout, a connection broken after
  sending, an answer that could not be read, or no confirmation in time); it is never sent
  again: a later read tells;
* ``not_attempted``: the run was cancelled (or stopped) before it was sent (see below).

How each error of the SDK (:class:`~flinkey_async.errors.FlinkeyError`) ends an item, whichever
it is; ``error`` keeps it:

* raised by the send: ``OutcomeUnknownError`` and ``ServerError`` (5xx): ``unknown``, with the
  ``operation`` that can still be awaited; any other ``FlinkeyApiError`` (4xx, 3xx),
  ``TransportError`` (not sent), ``ValidationError`` (or any ``ValueError``) and
  ``JournalError`` (the write is recorded before it is sent): ``failed``; ``DecodeError`` (a
  2xx answer whose body could not be read: flinkey received the write, and its ``2xx`` only
  means "accepted"), with its ``operation``, and any other ``FlinkeyError``
  (``ClientClosedError``, for one, when the client is closed during the run): ``unknown``,
  without one: what cannot be shown not to have arrived counts as possibly applied;
* raised by the read ``check`` makes before the send: ``failed``, not sent;
* raised while awaiting the outcome: ``OperationFailedError``: ``failed``; any other
  (``OperationTimeoutError``, or a poll answered with a malformed body or an error that is not
  retried): ``unknown``, with its ``operation``.

Anything else raised inside the run (an exception of ``on_item`` or ``on_progress``, or one
outside the ``FlinkeyError`` tree from ``send``) is a bug, not an item's fate: the items still
in progress are cancelled (nothing more is sent; as for a cancellation, see below) and the
exception propagates, itself (not in an exception group).

Arguments are checked before anything is sent (a bad one raises
:class:`~flinkey_async.errors.ValidationError`).

A run can be cancelled: what was sent is still in the :class:`BulkReport` the caller passed in
(its items are then ``unknown`` when sent and unconfirmed, else ``not_attempted``), and the
cancellation propagates. An item whose write a :class:`~flinkey_async.FlinkeyClient` had
already handed to aiohttp when the cancellation came counts as sent (``unknown``, without an
``operation``: a later read tells), also while aiohttp was still waiting for a free pooled
connection; one still waiting for its turn in the client's limits or its token, between
refused connections, or for the retry after a 429 (flinkey did not apply it) is
``not_attempted``. (A ``send`` that does not write through a ``FlinkeyClient`` cannot tell:
its items cancelled in flight are ``not_attempted``.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Generic, Literal, TypeVar

import attrs

from ._sending import watching_sends
from ._validate import check_seconds
from .errors import (
    DecodeError,
    FlinkeyApiError,
    FlinkeyError,
    JournalError,
    OperationFailedError,
    OperationTimeoutError,
    OutcomeUnknownError,
    ServerError,
    TransportError,
    ValidationError,
)
from .operations import OperationOutcome, PendingOperation

__all__ = ["BulkReport", "ItemResult", "ItemStatus", "Progress", "run_bulk"]

T = TypeVar("T")

ItemStatus = Literal["succeeded", "failed", "unknown", "not_attempted"]


@attrs.define
class ItemResult(Generic[T]):
    """What became of one item.

    Attributes:
        item: the item as given.
        status: ``succeeded``, ``failed``, ``unknown`` or ``not_attempted``.
        reason: why it failed or is unknown (flinkey's message where it gave one).
        operation: the pending write, once sent.
        outcome: its outcome, when it succeeded.
        error: the exception behind a failure or an unknown outcome.
    """

    item: T
    status: ItemStatus = "not_attempted"
    reason: str | None = None
    operation: PendingOperation | None = attrs.field(default=None, repr=False)
    outcome: OperationOutcome | None = attrs.field(default=None, repr=False)
    error: BaseException | None = attrs.field(default=None, repr=False)


@attrs.define
class BulkReport(Generic[T]):
    """Per-item results of a run, in the order of the items."""

    results: list[ItemResult[T]] = attrs.field(factory=list)

    def with_status(self, status: ItemStatus) -> list[ItemResult[T]]:
        return [r for r in self.results if r.status == status]

    @property
    def succeeded(self) -> list[ItemResult[T]]:
        return self.with_status("succeeded")

    @property
    def failed(self) -> list[ItemResult[T]]:
        return self.with_status("failed")

    @property
    def unknown(self) -> list[ItemResult[T]]:
        return self.with_status("unknown")

    @property
    def not_attempted(self) -> list[ItemResult[T]]:
        return self.with_status("not_attempted")

    @property
    def ok(self) -> bool:
        """Every item succeeded."""
        return all(r.status == "succeeded" for r in self.results)


#: ``on_progress(done, total)`` after each item ends (sync or async).
Progress = Callable[[int, int], Awaitable[None] | None]


async def run_bulk(
    items: Iterable[T],
    send: Callable[[T], Awaitable[PendingOperation]],
    *,
    concurrency: int = 16,
    wait: bool = True,
    timeout: float | None = 60.0,  # noqa: ASYNC109 - each item's wait, applied by wait()
    poll_interval: float = 0.5,
    on_progress: Progress | None = None,
    report: BulkReport[T] | None = None,
    on_item: Callable[[ItemResult[T]], None] | None = None,
    check: Callable[[T], Awaitable[Any]] | None = None,
) -> BulkReport[T]:
    """Send every item with ``send`` (at most ``concurrency`` at once) and, with ``wait``, await
    each one's outcome (``timeout`` seconds per item). Fills and returns ``report``;
    ``on_item(result)`` is called as each item ends, before ``on_progress``. ``check(item)``,
    when given, runs just before ``send`` (within the concurrency bound): a
    :class:`~flinkey_async.errors.FlinkeyError` it raises fails the item, which is not sent.

    Raises :class:`~flinkey_async.errors.ValidationError` (a ``ValueError``) for a bad argument,
    before anything is sent."""
    _check_arguments(concurrency, timeout, poll_interval, send, on_progress, on_item, check)
    if report is not None and not isinstance(report, BulkReport):
        raise ValidationError("report", f"must be a BulkReport, got {type(report).__name__}")
    report = report if report is not None else BulkReport()
    results = [ItemResult(item) for item in items]
    report.results.extend(results)
    total, done = len(results), 0
    semaphore = asyncio.Semaphore(concurrency)

    async def one(result: ItemResult[T]) -> None:
        nonlocal done
        async with semaphore:
            await _send_one(result, send, check)
        if wait and result.operation is not None and result.status == "unknown":
            await _wait_one(result, timeout, poll_interval)
        if on_item is not None:
            on_item(result)
        done += 1
        if on_progress is not None:
            progressed = on_progress(done, total)
            if asyncio.iscoroutine(progressed) or isinstance(progressed, Awaitable):
                await progressed

    tasks = [asyncio.ensure_future(one(result)) for result in results]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        # One item raised what no item should (or the run was cancelled): stop the others, so
        # that nothing more is sent once the exception has left (what a TaskGroup does, but
        # raising the exception itself rather than a group of them).
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        raise
    return report


def _check_arguments(
    concurrency: Any,
    timeout: Any,
    poll_interval: Any,
    send: Any,
    on_progress: Any,
    on_item: Any,
    check: Any,
) -> None:
    if type(concurrency) is not int or concurrency < 1:
        raise ValidationError("concurrency", f"must be an int >= 1, got {concurrency!r}")
    check_seconds(timeout, "timeout", finite=False, optional=True)
    check_seconds(poll_interval, "poll_interval", low=">0")
    if not callable(send):
        raise ValidationError("send", f"must be callable, got {type(send).__name__}")
    for name, value in (("on_progress", on_progress), ("on_item", on_item), ("check", check)):
        if value is not None and not callable(value):
            raise ValidationError(name, f"must be callable or None, got {type(value).__name__}")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, FlinkeyApiError):
        return exc.message or str(exc)
    return str(exc)


async def _send_one(
    result: ItemResult[Any],
    send: Callable[[Any], Awaitable[Any]],
    check: Callable[[Any], Awaitable[Any]] | None = None,
) -> None:
    if check is not None:
        try:
            await check(result.item)
        except FlinkeyError as exc:
            # The read that had to come first failed: the item is not sent. A 4xx keeps
            # flinkey's text (delete_many: "Unable to find ..."), anything else says so.
            refused = isinstance(exc, FlinkeyApiError) and not isinstance(exc, ServerError)
            reason = _reason(exc) if refused else f"not sent: the read before it failed: {exc}"
            result.status, result.reason, result.error = "failed", reason, exc
            return
    try:
        with watching_sends() as mark:
            try:
                op = await send(result.item)
            except asyncio.CancelledError:
                if mark.maybe_sent:
                    # Cancelled with the write handed to a connection: it may have arrived.
                    result.status = "unknown"
                    result.reason = "cancelled while it was being sent: it may have arrived"
                raise
    except (OutcomeUnknownError, ServerError) as exc:
        _unknown(result, exc, exc.operation)
        return
    except (FlinkeyApiError, TransportError, ValueError, JournalError) as exc:
        # Refused by flinkey (a 4xx), or not sent: a refused connection after the retries, an
        # argument refused, or a journal that could not record the write (before sending it).
        result.status, result.reason, result.error = "failed", _reason(exc), exc
        return
    except DecodeError as exc:
        # A 2xx whose body could not be read: flinkey received the write (and a 2xx only means
        # "accepted"); its operation can still be awaited.
        _unknown(result, exc, exc.operation)
        result.reason = f"sent, and answered with an unreadable body; not confirmed: {exc}"
        return
    except FlinkeyError as exc:
        # Nothing shows that it did not arrive (a client closed during the run, ...).
        _unknown(result, exc, exc.operation)
        return
    result.operation = op
    result.status, result.reason = "unknown", "sent; not confirmed yet"


def _unknown(result: ItemResult[Any], exc: BaseException, op: PendingOperation | None) -> None:
    result.status, result.reason, result.error = "unknown", str(exc), exc
    result.operation = op


async def _wait_one(result: ItemResult[Any], limit: float | None, interval: float) -> None:
    op = result.operation
    assert op is not None
    try:
        outcome = await op.wait(limit, poll_interval=interval, max_poll_interval=interval * 8)
    except OperationFailedError as exc:
        result.status, result.reason, result.error = "failed", exc.error_message, exc
    except OperationTimeoutError as exc:
        result.status, result.reason, result.error = "unknown", str(exc), exc
    except FlinkeyError as exc:
        # A poll answered with a malformed body, or with an error polling does not retry: the
        # write was sent, and its outcome stays unknown (the operation can still be awaited).
        result.status, result.reason, result.error = (
            "unknown",
            f"sent; its outcome could not be confirmed: {exc}",
            exc,
        )
    else:
        result.status, result.reason, result.outcome = "succeeded", None, outcome
