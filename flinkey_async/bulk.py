"""Many writes at once, each awaited to its confirmed outcome (no I/O of its own: it runs the
write and wait callables it is given, with bounded concurrency).

Every item ends in one :class:`ItemResult`, never an exception for the whole run:

* ``succeeded``: flinkey applied it (confirmed by webhook, or observed by polling);
* ``failed``: flinkey refused it (its ``reason`` is flinkey's message, or the typed error's);
* ``unknown``: it may have been applied (a 5xx, a timeout, a connection broken after
  sending, or no confirmation in time); it is never sent again: a later read tells;
* ``not_attempted``: the run was cancelled (or stopped) before it was sent.

A run can be cancelled: what was sent is still in the :class:`BulkReport` the caller passed in
(its items are then ``unknown`` when sent and unconfirmed, else ``not_attempted``), and the
cancellation propagates.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Generic, Literal, TypeVar

import attrs

from .errors import (
    FlinkeyApiError,
    OperationFailedError,
    OperationTimeoutError,
    OutcomeUnknownError,
    ServerError,
    TransportError,
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
) -> BulkReport[T]:
    """Send every item with ``send`` (at most ``concurrency`` at once) and, with ``wait``, await
    each one's outcome (``timeout`` seconds per item). Fills and returns ``report``;
    ``on_item(result)`` is called as each item ends, before ``on_progress``."""
    if type(concurrency) is not int or concurrency < 1:
        raise ValueError(f"concurrency must be an int >= 1, got {concurrency!r}")
    report = report if report is not None else BulkReport()
    results = [ItemResult(item) for item in items]
    report.results.extend(results)
    total, done = len(results), 0
    semaphore = asyncio.Semaphore(concurrency)

    async def one(result: ItemResult[T]) -> None:
        nonlocal done
        async with semaphore:
            await _send_one(result, send)
        if wait and result.operation is not None and result.status == "unknown":
            await _wait_one(result, timeout, poll_interval)
        if on_item is not None:
            on_item(result)
        done += 1
        if on_progress is not None:
            progressed = on_progress(done, total)
            if asyncio.iscoroutine(progressed) or isinstance(progressed, Awaitable):
                await progressed

    await asyncio.gather(*(one(result) for result in results))
    return report


async def _send_one(result: ItemResult[Any], send: Callable[[Any], Awaitable[Any]]) -> None:
    try:
        op = await send(result.item)
    except (OutcomeUnknownError, ServerError) as exc:
        _unknown(result, exc, exc.operation)
        return
    except FlinkeyApiError as exc:
        result.status, result.reason, result.error = "failed", exc.message or str(exc), exc
        return
    except (TransportError, ValueError) as exc:
        # Not sent (a refused connection after the retries, or an argument refused).
        result.status, result.reason, result.error = "failed", str(exc), exc
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
    else:
        result.status, result.reason, result.outcome = "succeeded", None, outcome
