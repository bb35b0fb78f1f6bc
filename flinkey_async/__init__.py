"""flinkey_async: an asyncio SDK for the flinkey API v3.

>>> from flinkey_async import FlinkeyClient, Query, F, JsonPatch
"""

from . import errors
from ._version import __version__
from .client import DEFAULT_BASE_URL, UAT_BASE_URL, FlinkeyClient
from .models import Assignment, CarAssignment, UserAssignment
from .odata import F, Query
from .operations import OperationOutcome, PendingOperation
from .patch import JsonPatch
from .retry import RetryPolicy
from .webhooks import (
    AssignmentEvent,
    OperationTracker,
    WebhookReceiver,
    add_webhook_routes,
    parse_webhook,
    verify_secret,
    webhook_app,
)

__all__ = [
    "DEFAULT_BASE_URL",
    "UAT_BASE_URL",
    "Assignment",
    "AssignmentEvent",
    "CarAssignment",
    "F",
    "FlinkeyClient",
    "JsonPatch",
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
    "verify_secret",
    "webhook_app",
]
