"""The routes of the sandbox, one module per resource, and the table that wires them up.

Routes (under ``config.base_path``, ``/v3`` by default):

==========================================  ==============================================
``POST /oauth2/token``                      password grant (form body), ``expires_in`` a
                                            string
``GET /customers``                          no ``Customer-ID`` needed; ids are JSON numbers
``GET /cars``, ``GET /cars/{carId}``        the ``Car`` schema
``GET /cars/{carId}/events``                the ``Event`` schema
``GET /events/{eventId}``                   the ``Event`` schema
``GET /users``, ``GET /users/{userId}``     the ``User`` schema
``GET /assignments/{assignmentId}``         all seven fields
``GET /cars/{carId}/assignments``           items ``id, userId, start, end``
``GET /users/{userId}/assignments``         items ``id, carId, start, end``
``PUT /assignments``                        204, applied after ``write_delay``, webhook
``PATCH /assignments/{assignmentId}``       JSON-Patch array, 204, applied later, webhook
``DELETE /assignments/{assignmentId}``      204, applied later, webhook
``GET /products``, ``/products/{id}``       the v3 ``Product`` schema
``GET /services``, ``/services/{id}``       the v3 ``Service`` schema
``PUT /installations``                      204, applied at once; documented 400/404/409
``DELETE /installations``                   204, applied at once; a Box's car loses its
                                            assignments (unsolicited delete webhooks)
``PUT /pairings``, ``DELETE /pairings``     204, applied at once (JSON body on both)
``GET /groups``, ``/groups/{id}/cars``      ``{id, name}`` and ``Car`` items; no OData
``GET /brands``                             strings; no ``Customer-ID``; paging only
``GET /brands/{brand}/keys``                no ``Customer-ID``; 400 for an unknown brand
``POST /sdk/token``                         ``{id_token}``; no ``Customer-ID``
==========================================  ==============================================

Every GET with the reference's OData tip takes OData query options
(:mod:`flinkey_async.sandbox.odata_eval`): lists all of them, single objects ``$select`` only;
an invalid query gets 400 ``Invalid OData query: ...``. The two group GETs, documented without
the tip, ignore query options. Unknown routes get 404 and wrong methods 405 (aiohttp's own
answers).

A new resource is one module here (its handlers, built on :func:`._helpers.get_list` and
:func:`._helpers.get_one`), its records in :mod:`flinkey_async.sandbox.store`, and one line
per operation in :data:`ROUTES`.
"""

from __future__ import annotations

import attrs

from . import (
    assignments,
    cars,
    customers,
    events,
    groups,
    installations,
    keyfobs,
    pairings,
    products,
    sdk_tokens,
    services,
    tokens,
    users,
)
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
    Route("GET", "/cars/{carId}/events", cars.list_car_events, customer=True),
    Route("GET", "/events/{eventId}", events.get_event, customer=True),
    Route("GET", "/products", products.list_products, customer=True),
    Route("GET", "/products/{productId}", products.get_product, customer=True),
    Route("GET", "/services", services.list_services, customer=True),
    Route("GET", "/services/{serviceId}", services.get_service, customer=True),
    Route("PUT", "/installations", installations.install_product, customer=True),
    Route("DELETE", "/installations", installations.uninstall_product, customer=True),
    Route("PUT", "/pairings", pairings.pair_service, customer=True),
    Route("DELETE", "/pairings", pairings.unpair_service, customer=True),
    Route("GET", "/groups", groups.list_groups, customer=True),
    Route("GET", "/groups/{groupId}/cars", groups.list_group_cars, customer=True),
    Route("GET", "/brands", keyfobs.list_brands, customer=False),
    Route("GET", "/brands/{brand}/keys", keyfobs.list_brand_keys, customer=False),
    Route("POST", "/sdk/token", sdk_tokens.issue_sdk_token, customer=False),
)
