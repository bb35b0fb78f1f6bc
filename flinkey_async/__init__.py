"""flinkey_async: an asyncio SDK for the flinkey API v3.

>>> from flinkey_async import FlinkeyClient, Query, F, JsonPatch

This module only re-exports, and imports each name on first use: ``import flinkey_async`` is
quick and imports no aiohttp (the ``flinkey`` command starts answering Ctrl-C at once), and
the webhook receivers' names import ``aiohttp.web`` only for users who receive webhooks.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from . import errors
    from .client import DEFAULT_BASE_URL, UAT_BASE_URL, FlinkeyClient
    from .limits import Limits
    from .models import Assignment, CarAssignment, NewAssignment, UserAssignment
    from .odata import F, Query
    from .operations import OperationOutcome, PendingOperation
    from .patch import JsonPatch
    from .reconcile import DesiredAssignment
    from .retry import RetryPolicy
    from .webhooks import AssignmentEvent, OperationTracker, parse_webhook, verify_secret
    from .webhooks.asgi import ASGIWebhookReceiver
    from .webhooks.receiver import WebhookReceiver, add_webhook_routes, webhook_app
    from .webhooks.server import start_webhook_server

__all__ = [
    "DEFAULT_BASE_URL",
    "UAT_BASE_URL",
    "ASGIWebhookReceiver",
    "Assignment",
    "AssignmentEvent",
    "CarAssignment",
    "DesiredAssignment",
    "F",
    "FlinkeyClient",
    "JsonPatch",
    "Limits",
    "NewAssignment",
    "OperationOutcome",
    "OperationTracker",
    "PendingOperation",
    "Query",
    "RetryPolicy",
    "UserAssignment",
    "WebhookReceiver",
    "__version__",
    "add_webhook_routes",
    "errors",
    "parse_webhook",
    "start_webhook_server",
    "verify_secret",
    "webhook_app",
]

#: Where each re-exported name lives (the module is imported on first use of the name).
_LAZY = {
    "errors": "",
    "DEFAULT_BASE_URL": ".client",
    "UAT_BASE_URL": ".client",
    "FlinkeyClient": ".client",
    "Limits": ".limits",
    "Assignment": ".models",
    "CarAssignment": ".models",
    "NewAssignment": ".models",
    "UserAssignment": ".models",
    "F": ".odata",
    "Query": ".odata",
    "OperationOutcome": ".operations",
    "PendingOperation": ".operations",
    "JsonPatch": ".patch",
    "DesiredAssignment": ".reconcile",
    "RetryPolicy": ".retry",
    "AssignmentEvent": ".webhooks",
    "OperationTracker": ".webhooks",
    "parse_webhook": ".webhooks",
    "verify_secret": ".webhooks",
    "ASGIWebhookReceiver": ".webhooks",
    "WebhookReceiver": ".webhooks",
    "add_webhook_routes": ".webhooks",
    "webhook_app": ".webhooks",
    "start_webhook_server": ".webhooks",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if module:
        value = getattr(importlib.import_module(module, __name__), name)
    else:  # a submodule re-exported as itself
        value = importlib.import_module(f".{name}", __name__)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
