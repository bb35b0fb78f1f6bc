"""The six assignment operations: three reads, and three writes applied later.

``GET /assignments/{assignmentId}`` answers all seven fields; ``GET /cars/{carId}/assignments``
items ``id, userId, start, end``; ``GET /users/{userId}/assignments`` items ``id, carId, start,
end`` (a car or user the customer does not have gets the car's or user's 404 text).

``PUT /assignments``, ``PATCH /assignments/{assignmentId}`` (a JSON-Patch array) and ``DELETE
/assignments/{assignmentId}`` check the body's shape only, queue the write
(:mod:`flinkey_async.sandbox.writes`) and answer 204; the outcome comes by webhook. Their body
must be ``application/json`` (or ``application/*+json``), else 415 with an RFC 7231 problem
object; a malformed body gets 400 with a readable text. An assignment id that is not an integer
in ``1..2147483647`` gets the 404 text at once; an unknown one is reported by webhook.
"""

from __future__ import annotations

from aiohttp import web

from ..messages import ASSIGNMENT_NOT_FOUND, CAR_NOT_FOUND, USER_NOT_FOUND
from ..responses import text_response
from ..store.assignments import (
    ASSIGNMENT_SCHEMA,
    CAR_ASSIGNMENT_SCHEMA,
    USER_ASSIGNMENT_SCHEMA,
    assignment_wire,
    body_checksum,
    car_assignment_wire,
    delete_checksum,
    user_assignment_wire,
)
from ..writes.assignments import (
    CreateWrite,
    DeleteWrite,
    UpdateWrite,
    parse_create,
    parse_patch,
)
from ..writes.bodies import BodyError
from ._helpers import RouteContext, get_list, get_one, is_json, path_id

__all__ = [
    "create_assignment",
    "delete_assignment",
    "get_assignment",
    "list_for_car",
    "list_for_user",
    "update_assignment",
]

_NO_CONTENT = 204


# --- reads ------------------------------------------------------------------------------------


async def get_assignment(
    context: RouteContext, request: web.Request, customer_id: int
) -> web.StreamResponse:
    """``GET /assignments/{assignmentId}``."""
    assignment_id = path_id(request, "assignmentId")
    record = (
        context.store.get_assignment(assignment_id, customer_id)
        if assignment_id is not None
        else None
    )
    return get_one(
        context, request, ASSIGNMENT_SCHEMA, record, assignment_wire, ASSIGNMENT_NOT_FOUND
    )


async def list_for_car(
    context: RouteContext, request: web.Request, customer_id: int
) -> web.StreamResponse:
    """``GET /cars/{carId}/assignments``."""
    store = context.store
    car_id = path_id(request, "carId")
    if car_id is None or store.get_car(car_id, customer_id) is None:
        return text_response(CAR_NOT_FOUND, 404)
    return get_list(
        context,
        request,
        CAR_ASSIGNMENT_SCHEMA,
        car_id,
        lambda: map(car_assignment_wire, store.assignments_for_car(car_id)),
    )


async def list_for_user(
    context: RouteContext, request: web.Request, customer_id: int
) -> web.StreamResponse:
    """``GET /users/{userId}/assignments``."""
    store = context.store
    user_id = path_id(request, "userId")
    if user_id is None or store.get_user(user_id, customer_id) is None:
        return text_response(USER_NOT_FOUND, 404)
    return get_list(
        context,
        request,
        USER_ASSIGNMENT_SCHEMA,
        user_id,
        lambda: map(user_assignment_wire, store.assignments_for_user(user_id)),
    )


# --- writes -----------------------------------------------------------------------------------


async def create_assignment(
    context: RouteContext, request: web.Request, customer_id: int
) -> web.StreamResponse:
    """``PUT /assignments``."""
    if not is_json(request):
        return context.unsupported_media_type()
    body = await request.read()
    try:
        create = parse_create(body)
    except BodyError as exc:
        return text_response(str(exc), 400)
    context.writes.put(CreateWrite(customer_id, body_checksum(body), create))
    return web.Response(status=_NO_CONTENT)


async def update_assignment(
    context: RouteContext, request: web.Request, customer_id: int
) -> web.StreamResponse:
    """``PATCH /assignments/{assignmentId}``."""
    assignment_id = path_id(request, "assignmentId")
    if assignment_id is None:
        return text_response(ASSIGNMENT_NOT_FOUND, 404)
    if not is_json(request):
        return context.unsupported_media_type()
    body = await request.read()
    try:
        operations = parse_patch(body)
    except BodyError as exc:
        return text_response(str(exc), 400)
    context.writes.put(UpdateWrite(customer_id, body_checksum(body), assignment_id, operations))
    return web.Response(status=_NO_CONTENT)


async def delete_assignment(
    context: RouteContext, request: web.Request, customer_id: int
) -> web.StreamResponse:
    """``DELETE /assignments/{assignmentId}``."""
    assignment_id = path_id(request, "assignmentId")
    if assignment_id is None:
        return text_response(ASSIGNMENT_NOT_FOUND, 404)
    context.writes.put(DeleteWrite(customer_id, delete_checksum(assignment_id), assignment_id))
    return web.Response(status=_NO_CONTENT)
