"""The write queue: writes applied one after the other, in arrival order, after a delay."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Protocol

from ..store import SandboxStore

__all__ = ["Emit", "Write", "WriteQueue"]

log = logging.getLogger("flinkey_async.sandbox")

#: Where the webhook payload of an applied write goes.
Emit = Callable[[dict[str, Any]], None]


class Write(Protocol):
    """A pending write: ``apply(store)`` validates it against the data, changes the data when
    valid, and returns the webhook payload of the outcome."""

    @property
    def kind(self) -> str: ...

    def apply(self, store: SandboxStore) -> dict[str, Any]: ...


class WriteQueue:
    """Writes in arrival order, each applied ``delay`` seconds after it was put (by
    :meth:`run`, the worker task of a running sandbox)."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self._queue: asyncio.Queue[tuple[float, Write]] = asyncio.Queue()

    def put(self, write: Write) -> None:
        """Queue ``write``, due ``delay`` seconds from now."""
        due = asyncio.get_running_loop().time() + self.delay
        self._queue.put_nowait((due, write))

    def empty(self) -> bool:
        """No write is waiting."""
        return self._queue.empty()

    async def join(self) -> None:
        """Wait until every queued write is applied."""
        await self._queue.join()

    async def run(self, store: SandboxStore, emit: Emit) -> None:
        """Apply the writes as they fall due, for ever; each outcome goes to ``emit``. A write
        that fails unexpectedly is logged and skipped."""
        loop = asyncio.get_running_loop()
        queue = self._queue
        while True:
            due, write = await queue.get()
            try:
                delay = due - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                emit(write.apply(store))
            except Exception:
                log.exception("sandbox: applying a %s failed", write.kind)
            finally:
                queue.task_done()
