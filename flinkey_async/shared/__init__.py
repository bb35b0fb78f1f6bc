"""State shared by several processes, on Redis (extra ``flinkey_async[redis]``).

* :mod:`flinkey_async.shared.confirmations`: webhook confirmations shared across processes:
  every verified webhook received by any receiver is published to a Redis stream
  (:class:`~flinkey_async.shared.confirmations.RedisWebhookBus`), and every
  :class:`~flinkey_async.shared.confirmations.SharedTracker` resolves its own process's
  pending operations from it.
* :mod:`flinkey_async.shared.limiter`: the client's rate limit shared across processes.

Nothing is imported from Redis until one of these modules is.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = ["RedisRateLimit", "RedisWebhookBus", "SharedTracker"]

_WHERE = {
    "RedisRateLimit": "limiter",
    "RedisWebhookBus": "confirmations",
    "SharedTracker": "confirmations",
}

if TYPE_CHECKING:
    from .confirmations import RedisWebhookBus, SharedTracker
    from .limiter import RedisRateLimit


def __getattr__(name: str) -> Any:
    """The shared names, imported (with redis-py) on first use."""
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
