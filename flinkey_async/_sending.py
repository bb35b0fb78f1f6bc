"""Whether a write may have left: a mark the pipeline sets as it hands a write to the
connection, read by code that must tell "never sent" from "perhaps applied" when a call is
cancelled (``run_bulk``: an item cancelled in flight is ``unknown``, not ``not_attempted``).

Pure: a context variable holding a mutable mark. The mark is mutated, never the variable, so
the pipeline sets it even when it runs in a child task (which copies the context, and so
shares the mark).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["SendMark", "current_mark", "watching_sends"]


class SendMark:
    """What the pipeline knows of the watched call's writes.

    Attributes:
        handed: writes handed to aiohttp and not yet ended (each attempt adds one and takes
            it back when it ends: refused before being written, or answered).
        sent: a write was answered with anything but 429 or 401 (flinkey received it), or
            ended in a way that leaves its arrival open (it stays counted in ``handed``).
    """

    __slots__ = ("handed", "sent")

    def __init__(self) -> None:
        self.handed = 0
        self.sent = False

    @property
    def maybe_sent(self) -> bool:
        """A write may have arrived: one was answered, or one is (or was left) in flight."""
        return self.sent or self.handed > 0

    def __repr__(self) -> str:
        return f"SendMark(handed={self.handed}, sent={self.sent})"


_MARK: ContextVar[SendMark | None] = ContextVar("flinkey_async_send_mark", default=None)


def current_mark() -> SendMark | None:
    """The mark of the call being watched, if any (read once per write by the pipeline)."""
    return _MARK.get()


@contextmanager
def watching_sends() -> Iterator[SendMark]:
    """Watch the writes made in this block (in this task, and the tasks it starts)."""
    mark = SendMark()
    token = _MARK.set(mark)
    try:
        yield mark
    finally:
        _MARK.reset(token)
