"""flinkey_async: an asyncio SDK for the flinkey API v3.

>>> from flinkey_async import FlinkeyClient, Query, F, JsonPatch

This module only re-exports; the webhook receivers' names (``webhook_app``,
``add_webhook_routes``, ``WebhookReceiver``, ``start_webhook_server``,
``ASGIWebhookReceiver``) are imported on first use, so that ``import flinkey_async`` does not
import ``aiohttp.web``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import errors
from ._version import __version__
from .client import DEFAULT_BASE_URL, UAT_BASE_URL, FlinkeyClient
from .limits import Limits
from .models import Assignment, CarAssignment, NewAssignment, UserAssignment
from .odata import F, Query
from .operations import OperationOutcome, PendingOperation
from .patch import JsonPatch
from .reconcile import DesiredAssignment
from .retry import RetryPolicy
from .webhooks import AssignmentEvent, OperationTracker, parse_webhook, verify_secret

if TYPE_CHECKING:
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

_LAZY = {
    "ASGIWebhookReceiver",
    "WebhookReceiver",
    "add_webhook_routes",
    "webhook_app",
    "start_webhook_server",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from . import webhooks

        value = getattr(webhooks, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
