"""``GET /events/{eventId}``: one event (the ``Event`` schema; the reference shows none here)."""

from __future__ import annotations

from aiohttp import web

from ..messages import EVENT_NOT_FOUND
from ..store.events import EVENT_SCHEMA, Event, event_wire
from ._helpers import RouteContext, get_one, path_id

__all__ = ["get_event"]


async def get_event(
    context: RouteContext, request: web.Request, customer_id: int
) -> web.StreamResponse:
    """``GET /events/{eventId}``."""
    event_id = path_id(request, "eventId")
    event = context.store.get(Event, event_id, customer_id)
    return get_one(context, request, EVENT_SCHEMA, event, event_wire, EVENT_NOT_FOUND)
