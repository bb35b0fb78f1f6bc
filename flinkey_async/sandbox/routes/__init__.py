"""The routes of the sandbox, one module per resource, and the table that wires them up.

Routes (under ``config.base_path``, ``/v3`` by default):

======================================  ==================================================
``POST /oauth2/token``                  password grant (form body), ``expires_in`` a string
``GET /customers``                      no ``Customer-ID`` needed; ids are JSON numbers
``GET /cars``, ``GET /cars/{carId}``    the ``Car`` schema
``GET /users``, ``GET /users/{userId}`` the ``User`` schema
``GET /assignments/{assignmentId}``     all seven fields
``GET /cars/{carId}/assignments``       items ``id, userId, start, end``
``GET /users/{userId}/assignments``     items ``id, carId, start, end``
``PUT /assignments``                    204, applied after ``write_delay``, webhook
``PATCH /assignments/{assignmentId}``   JSON-Patch array, 204, applied later, webhook
``DELETE /assignments/{assignmentId}``  204, applied later, webhook
======================================  ==================================================

Every GET takes OData query options (:mod:`flinkey_async.sandbox.odata_eval`): lists all of
them, single objects ``$select`` only; an invalid query gets 400 ``Invalid OData query: ...``.
Unknown routes get 404 and wrong methods 405 (aiohttp's own answers).

A new resource is one module here (its handlers, built on :func:`._helpers.get_list` and
:func:`._helpers.get_one`), its records in :mod:`flinkey_async.sandbox.store`, and one line
per operation in :data:`ROUTES`.
"""

from __future__ import annotations

import attrs

from . import assignments, cars, customers, tokens, users
from ._helpers import Handler, RouteContext

__all__ = ["ROUTES", "Handler", "Route", "RouteContext"]


@attrs.frozen
class Route:
    """One operation: ``method template`` (without the base path) answered by ``handler``.

    ``customer``: the request must name a ``Customer-ID`` the manager may act for;
    ``token``: it must carry a valid bearer token (all but the token request do).
    """

    method: str
    template: str
    handler: Handler
    customer: bool
    token: bool = True


#: Every route of the sandbox, in the order they are added to the router.
ROUTES: tuple[Route, ...] = (
    Route("POST", "/oauth2/token", tokens.issue_token, customer=False, token=False),
    Route("GET", "/customers", customers.list_customers, customer=False),
    Route("GET", "/cars", cars.list_cars, customer=True),
    Route("GET", "/cars/{carId}", cars.get_car, customer=True),
    Route("GET", "/cars/{carId}/assignments", assignments.list_for_car, customer=True),
    Route("GET", "/users", users.list_users, customer=True),
    Route("GET", "/users/{userId}", users.get_user, customer=True),
    Route("GET", "/users/{userId}/assignments", assignments.list_for_user, customer=True),
    Route("GET", "/assignments/{assignmentId}", assignments.get_assignment, customer=True),
    Route("PUT", "/assignments", assignments.create_assignment, customer=True),
    Route("PATCH", "/assignments/{assignmentId}", assignments.update_assignment, customer=True),
    Route("DELETE", "/assignments/{assignmentId}", assignments.delete_assignment, customer=True),
)
