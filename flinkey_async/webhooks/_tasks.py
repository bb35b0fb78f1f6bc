"""Bookkeeping shared by the tracker and the receiver: a bounded LRU, rate-limited warnings,
and user callbacks run as a bounded number of background tasks."""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from .events import AssignmentEvent, EventHandler

__all__ = ["LRU", "Callbacks", "Warnings", "describe_event", "logger", "positive"]

logger = logging.getLogger("flinkey_async.webhooks")


class LRU(OrderedDict[Any, Any]):
    """An ordered dict that forgets its oldest entries beyond ``limit``."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def put(self, key: Any, value: Any) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.limit:
            self.popitem(last=False)


class Warnings:
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


class Callbacks:
    """Runs a user callback for events: a sync one inline, an async one as a background task.

    At most ``limit`` async calls run at once (a semaphore inside each task); at most
    ``backlog`` more wait for a slot; beyond that a call is dropped (its coroutine closed
    unstarted), counted in ``dropped`` and reported by a rate-limited warning. Errors are
    logged, never raised.
    """

    def __init__(self, what: str, *, limit: int, backlog: int, warnings: Warnings) -> None:
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
            logger.exception("the webhook %s raised on %s", self.what, describe_event(event))
            return True
        if not inspect.isawaitable(result):
            return True
        if len(self.tasks) >= self.limit + self.backlog:
            _discard(result)
            self.dropped += 1
            self._warnings.warn(
                "dropped",
                "the webhook %s was not called on %s: %d calls are running or waiting already",
                self.what,
                describe_event(event),
                len(self.tasks),
            )
            return False
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # called from outside the event loop: nowhere to run it
            _discard(result)
            logger.error(
                "the webhook %s was not called on %s: no running event loop",
                self.what,
                describe_event(event),
            )
            return False
        if self._slots is None or (self._loop is not loop and not self.tasks):
            self._slots = asyncio.Semaphore(self.limit)
            self._loop = loop
        task = loop.create_task(self._run(result, event, self._slots))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return True

    async def _run(
        self, awaitable: Awaitable[None], event: AssignmentEvent, slots: asyncio.Semaphore
    ) -> None:
        try:
            async with slots:
                await awaitable
        except Exception:
            logger.exception("the webhook %s raised on %s", self.what, describe_event(event))
        finally:
            _discard(awaitable)  # cancelled while waiting for a slot: never started


def _discard(awaitable: Awaitable[Any]) -> None:
    """Close a coroutine that will not be awaited (no "never awaited" warning)."""
    if inspect.iscoroutine(awaitable):
        awaitable.close()


def describe_event(event: AssignmentEvent) -> str:
    outcome = "success" if event.operation_succeeded else "failure"
    return f"{event.kind or 'assignment'} event ({outcome}, assignment {event.assignment_id})"


def positive(value: float, name: str) -> float:
    if not value > 0:
        raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
    return value
