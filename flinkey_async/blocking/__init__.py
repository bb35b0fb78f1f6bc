"""A blocking client for scripts and synchronous job runners (extra ``flinkey_async[blocking]``).

::

    from flinkey_async.blocking import FlinkeyClient

    with FlinkeyClient(api_key, customer_id, token=token) as client:
        assignment = client.assignments.get(123)
        for item in client.assignments.iter_for_car(7):
            ...
        op = client.assignments.create(car_id=7, user_id=9, start=start)
        outcome = op.wait(timeout=30)

The surface is the asynchronous :class:`flinkey_async.FlinkeyClient`'s without ``await``,
generated from it (:mod:`._generated`, by ``python -m flinkey_async.blocking._generate``):
the same resources, methods, arguments, docstrings, models and exceptions. One event loop in
one background thread (anyio's blocking portal) owns the connection pool; every call runs
there, so one client serves any number of threads. See ``docs/blocking.md``.

The names load on first use, so that a stale generated module can still be regenerated.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._generated import BlockingOperation, FlinkeyClient

__all__ = ["BlockingOperation", "FlinkeyClient"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        try:
            from . import _generated
        except ModuleNotFoundError as exc:
            if exc.name != "anyio":
                raise
            raise ModuleNotFoundError(
                "the blocking client needs anyio: pip install 'flinkey_async[blocking]'",
                name="anyio",
            ) from exc
        value = getattr(_generated, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
