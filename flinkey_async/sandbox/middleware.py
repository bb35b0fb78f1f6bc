"""The checks every request goes through before its route answers.

In this order:

1. injected faults (:mod:`~flinkey_async.sandbox.faults`): added latency, then a connection
   reset, an injected 429 or an injected 500 in place of the answer; or ``reset_after``, which
   lets the request through and closes the connection once the route has answered;
2. ``flinkey-API-Key`` (401 ``{"statusCode": 401, "message": "Access denied due to invalid
   subscription key..."}``);
3. the rate limit, per API key (429 ``{"status": "429", "message": "Rate limit is exceeded. Try
   again in N seconds."}`` with ``Retry-After: N``);
4. ``Authorization: Bearer`` (401 ``... Access token is missing or invalid.``), except on the
   token request;
5. ``Customer-ID``, on customer-scoped routes (404 text ``Unable to find a manager for the given
   OAuth ID claim data.`` when missing, not an integer in ``1..2147483647`` or not a customer
   the manager may act for);

then the route's own checks. Every request to a known route is counted first
(:attr:`Sandbox.request_counts`), faulted and refused ones included. An invalid OData query
raised by a route gets 400 ``Invalid OData query: ...``; an unexpected error gets 500
``Internal server error.`` and is logged; the server keeps serving.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable

from aiohttp import web

from .._wire import API_KEY_HEADER, AUTHORIZATION_HEADER, CUSTOMER_ID_HEADER
from .config import RateLimiter, SandboxConfig
from .faults import FaultInjector, RequestFault
from .messages import INTERNAL_SERVER_ERROR, MANAGER_NOT_FOUND
from .odata_eval import ODataError
from .responses import (
    INVALID_API_KEY_BODY,
    INVALID_TOKEN_BODY,
    json_response,
    rate_limited,
    text_response,
)
from .store import parse_id

__all__ = ["Answer", "Endpoint", "Gate"]

log = logging.getLogger("flinkey_async.sandbox")

#: A route's answer to a request that passed the checks, given the request's customer id (0
#: on routes without ``Customer-ID``).
Answer = Callable[[web.Request, int], Awaitable[web.StreamResponse]]
#: An aiohttp handler.
Endpoint = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _close_connection(request: web.Request) -> None:
    """Close the connection without an answer; a response returned afterwards is never
    written (aiohttp notices the closed transport and drops it silently)."""
    transport = request.transport
    if transport is not None:
        transport.close()


class Gate:
    """The request checks of one sandbox.

    ``injector`` and ``limiter`` may be replaced at run time (the sandbox's ``faults`` and
    ``rate_limit`` setters do). ``token_valid(authorization_header)`` and
    ``customer_allowed(customer_id)`` are the sandbox's own answers; ``request_counts`` is
    the counter each request is counted in.
    """

    def __init__(
        self,
        config: SandboxConfig,
        *,
        token_valid: Callable[[str | None], bool],
        customer_allowed: Callable[[int], bool],
        request_counts: Counter[str],
    ) -> None:
        self.api_key = config.api_key
        self.injector = FaultInjector(config.faults, config.seed)
        self.limiter = RateLimiter(config.rate_limit) if config.rate_limit else None
        self._token_valid = token_valid
        self._customer_allowed = customer_allowed
        self._request_counts = request_counts

    def customer(self, header: str | None) -> int | None:
        """The customer a ``Customer-ID`` header names, if the manager may act for it."""
        if header is None:
            return None
        customer_id = parse_id(header.strip())
        if customer_id is None or not self._customer_allowed(customer_id):
            return None
        return customer_id

    def endpoint(
        self, method: str, template: str, answer: Answer, *, token: bool, customer: bool
    ) -> Endpoint:
        """``answer`` behind the checks: the aiohttp handler of ``method template``.

        ``token``: the route needs a bearer token; ``customer``: it needs a ``Customer-ID``.
        """
        api_key = self.api_key
        route_key = f"{method} {template}"

        async def checked(request: web.Request) -> web.StreamResponse:
            try:
                headers = request.headers
                if headers.get(API_KEY_HEADER) != api_key:
                    return json_response(INVALID_API_KEY_BODY, 401)
                limiter = self.limiter
                if limiter is not None:
                    wait = limiter.check(api_key)
                    if wait is not None:
                        return rate_limited(wait, header=limiter.limit.retry_after_header)
                if token and not self._token_valid(headers.get(AUTHORIZATION_HEADER)):
                    return json_response(INVALID_TOKEN_BODY, 401)
                customer_id = 0
                if customer:
                    found = self.customer(headers.get(CUSTOMER_ID_HEADER))
                    if found is None:
                        return text_response(MANAGER_NOT_FOUND, 404)
                    customer_id = found
                return await answer(request, customer_id)
            except web.HTTPException:
                raise
            except ODataError as exc:
                return text_response(str(exc), 400)
            except Exception:
                log.exception("sandbox: unexpected error on %s %s", method, template)
                return text_response(INTERNAL_SERVER_ERROR, 500)

        async def endpoint(request: web.Request) -> web.StreamResponse:
            self._request_counts[route_key] += 1
            injector = self.injector
            if injector.active:
                fault = injector.decide(method, template)
                if fault is not None:
                    injected = await _inject(request, fault)
                    if injected is not None:
                        return injected
                    if fault.action == "reset_after":
                        try:
                            return await checked(request)
                        finally:
                            _close_connection(request)
            return await checked(request)

        endpoint.__name__ = getattr(answer, "__name__", route_key)
        return endpoint


async def _inject(request: web.Request, fault: RequestFault) -> web.StreamResponse | None:
    """Apply the latency and a fault answering in place of the route (None otherwise;
    ``reset_after`` is the caller's, once the route has answered)."""
    if fault.latency > 0:
        await asyncio.sleep(fault.latency)
    if fault.action == "reset":
        _close_connection(request)
        return web.Response(status=500)
    if fault.action == "rate_limit":
        return rate_limited(fault.retry_after)
    if fault.action == "server_error":
        return text_response(INTERNAL_SERVER_ERROR, 500)
    return None
