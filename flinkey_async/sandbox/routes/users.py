"""``GET /users`` and ``GET /users/{userId}``: the customer's users (the ``User`` schema)."""

from __future__ import annotations

from aiohttp import web

from ..messages import USER_NOT_FOUND
from ..store.users import USER_SCHEMA, user_wire
from ._helpers import RouteContext, get_list, get_one, path_id

__all__ = ["get_user", "list_users"]


async def list_users(
    context: RouteContext, request: web.Request, customer_id: int
) -> web.StreamResponse:
    """``GET /users``."""
    store = context.store
    return get_list(
        context,
        request,
        USER_SCHEMA,
        customer_id,
        lambda: map(user_wire, store.users_of(customer_id)),
    )


async def get_user(
    context: RouteContext, request: web.Request, customer_id: int
) -> web.StreamResponse:
    """``GET /users/{userId}``."""
    user_id = path_id(request, "userId")
    user = context.store.get_user(user_id, customer_id) if user_id is not None else None
    return get_one(context, request, USER_SCHEMA, user, user_wire, USER_NOT_FOUND)
