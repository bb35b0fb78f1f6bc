"""What may show an exception, all of it as one text: for tests that no secret leaks."""

from __future__ import annotations

import pickle
import traceback
from collections.abc import Iterator

from rich.traceback import Traceback

__all__ = ["chain", "everything"]


def chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and every exception chained to it, suppressed contexts included (bounded)."""
    seen: set[int] = set()
    todo = [exc]
    while todo and len(seen) < 50:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo += [e for e in (current.__cause__, current.__context__) if e is not None]


def everything(exc: BaseException) -> str:
    """All that may show ``exc``: text, args, attributes and pickle of it and of every chained
    exception, and each one's traceback with its frames' locals (from the SDK's first frame on:
    the test's own frames hold the plain strings they passed in), by the standard library and by
    rich."""
    parts: list[str] = []
    for index, error in enumerate(chain(exc)):
        tb = error.__traceback__
        while index == 0 and tb is not None and "/tests/" in tb.tb_frame.f_code.co_filename:
            tb = tb.tb_next
        parts += [repr(error), str(error), repr(error.args), repr(vars(error))]
        parts += traceback.TracebackException(type(error), error, tb, capture_locals=True).format(
            chain=False
        )
        # What rich's traceback shows of each frame's locals (its pretty-printed values;
        # rendering the whole panel would add only the highlighted source lines).
        trace = Traceback.extract(
            type(error),
            error,
            tb,
            show_locals=True,
            locals_max_string=10_000,
            locals_max_length=1_000,
        )
        for stack in trace.stacks:
            for frame in stack.frames:
                for name, node in (frame.locals or {}).items():
                    parts.append(f"{name} = {node.render(max_width=300)}")
        parts.append(pickle.dumps(error).decode("latin-1"))
    return "\n".join(parts)
