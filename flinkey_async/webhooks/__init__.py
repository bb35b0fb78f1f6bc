"""flinkey's assignment webhooks: events (:mod:`.events`, pure), the correlation tracker
(:mod:`.tracker`), and two receivers sharing one core: for aiohttp (:mod:`.receiver`,
:mod:`.server`) and for any ASGI framework (:mod:`.asgi`: FastAPI, Starlette, Litestar, ...).

The receivers' names are imported on first use, so that ``import flinkey_async`` does not
import ``aiohttp.web`` for users who never receive webhooks.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._receiving import (
    DEFAULT_BODY_TIMEOUT,
    DEFAULT_PATH,
    DEFAULT_PUBLISH_TIMEOUT,
    ReceiverStats,
    WebhookPublisher,
)
from .events import (
    DEFAULT_MAX_BYTES,
    SECRET_HEADER,
    AssignmentEvent,
    EventHandler,
    EventKind,
    parse_webhook,
    verify_secret,
)
from .tracker import OperationTracker, Resolution

if TYPE_CHECKING:
    from .asgi import ASGIWebhookReceiver
    from .receiver import WEBHOOK_RECEIVER_KEY, WebhookReceiver, add_webhook_routes, webhook_app
    from .server import DEFAULT_HEADER_TIMEOUT, HeaderTimeoutSite, start_webhook_server

__all__ = [
    "DEFAULT_BODY_TIMEOUT",
    "DEFAULT_HEADER_TIMEOUT",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_PATH",
    "DEFAULT_PUBLISH_TIMEOUT",
    "SECRET_HEADER",
    "WEBHOOK_RECEIVER_KEY",
    "ASGIWebhookReceiver",
    "AssignmentEvent",
    "EventHandler",
    "EventKind",
    "HeaderTimeoutSite",
    "OperationTracker",
    "ReceiverStats",
    "Resolution",
    "WebhookPublisher",
    "WebhookReceiver",
    "add_webhook_routes",
    "parse_webhook",
    "start_webhook_server",
    "verify_secret",
    "webhook_app",
]

#: Names served by the receivers' modules, imported on first use.
_LAZY = {
    "ASGIWebhookReceiver": "asgi",
    "WEBHOOK_RECEIVER_KEY": "receiver",
    "WebhookReceiver": "receiver",
    "add_webhook_routes": "receiver",
    "webhook_app": "receiver",
    "DEFAULT_HEADER_TIMEOUT": "server",
    "HeaderTimeoutSite": "server",
    "start_webhook_server": "server",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
