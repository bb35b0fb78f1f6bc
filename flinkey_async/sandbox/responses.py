"""The answers the sandbox sends: JSON, bare text, RFC 7231 problems, the documented errors.

JSON answers are ``application/json; charset=utf-8`` (compact UTF-8,
:func:`flinkey_async._wire.dumps`); bare-text answers are ``text/plain; charset=utf-8``; the 415
problem object is ``application/problem+json; charset=utf-8``. The error bodies:

* 401 ``{"statusCode": 401, "message": ...}`` for a wrong API key or token (documented);
* 429 ``{"status": "429", "message": "Rate limit is exceeded. Try again in N seconds."}`` with
  ``Retry-After: N`` (documented; the status is a string);
* 404 and 500 bare texts (documented, :mod:`~flinkey_async.sandbox.messages`);
* 415 ``{"type", "title": "Unsupported Media Type", "status": "415", "traceId"}`` as ASP.NET
  Core sends it (trace ids from the sandbox's seeded random source);
* 400 ``{"error", "error_description"}`` of the token endpoint (not documented by flinkey: the
  RFC 6749, section 5.2, style of an OAuth2 server).
"""

from __future__ import annotations

import random

from aiohttp import web

from .._wire import dumps
from .messages import (
    ASSIGNMENT_NOT_FOUND,
    CAR_NOT_FOUND,
    INTERNAL_SERVER_ERROR,
    INVALID_API_KEY,
    INVALID_TOKEN,
    MANAGER_NOT_FOUND,
    USER_NOT_FOUND,
    rate_limit_message,
)

__all__ = [
    "INVALID_API_KEY_BODY",
    "INVALID_TOKEN_BODY",
    "JSON",
    "PROBLEM",
    "TEXT",
    "json_response",
    "oauth_error",
    "rate_limited",
    "text_response",
    "unsupported_media_type",
]

JSON = "application/json; charset=utf-8"
TEXT = "text/plain; charset=utf-8"
PROBLEM = "application/problem+json; charset=utf-8"
_UNSUPPORTED_MEDIA_TYPE_URI = "https://tools.ietf.org/html/rfc7231#section-6.5.13"

#: 401 body of a missing or wrong ``flinkey-API-Key``.
INVALID_API_KEY_BODY = dumps({"statusCode": 401, "message": INVALID_API_KEY})
#: 401 body of a missing, unknown or expired bearer token.
INVALID_TOKEN_BODY = dumps({"statusCode": 401, "message": INVALID_TOKEN})
_TEXT_BODIES = {
    text: text.encode()
    for text in (
        MANAGER_NOT_FOUND,
        ASSIGNMENT_NOT_FOUND,
        CAR_NOT_FOUND,
        USER_NOT_FOUND,
        INTERNAL_SERVER_ERROR,
    )
}


def json_response(
    body: bytes, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """``body`` (already encoded JSON) as ``application/json; charset=utf-8``."""
    response = web.Response(body=body, status=status, headers=headers)
    response.headers["Content-Type"] = JSON
    return response


def text_response(text: str, status: int) -> web.Response:
    """``text`` as ``text/plain; charset=utf-8``."""
    body = _TEXT_BODIES.get(text)
    return web.Response(
        body=body if body is not None else text.encode(),
        status=status,
        headers={"Content-Type": TEXT},
    )


def rate_limited(seconds: int, *, header: bool = True) -> web.Response:
    """429 with the documented body and (``header``) ``Retry-After: seconds``."""
    body = dumps({"status": "429", "message": rate_limit_message(seconds)})
    return json_response(body, 429, {"Retry-After": str(seconds)} if header else None)


def unsupported_media_type(trace: random.Random) -> web.Response:
    """415 as an RFC 7231 problem object with a W3C trace id drawn from ``trace``."""
    trace_id = f"00-{trace.getrandbits(128):032x}-{trace.getrandbits(64):016x}-00"
    body = dumps(
        {
            "type": _UNSUPPORTED_MEDIA_TYPE_URI,
            "title": "Unsupported Media Type",
            "status": "415",
            "traceId": trace_id,
        }
    )
    response = web.Response(body=body, status=415)
    response.headers["Content-Type"] = PROBLEM
    return response


def oauth_error(error: str, description: str) -> web.Response:
    """400 ``{"error", "error_description"}`` of the token endpoint."""
    return json_response(dumps({"error": error, "error_description": description}), 400)
