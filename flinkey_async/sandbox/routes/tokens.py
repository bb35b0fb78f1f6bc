"""``POST /oauth2/token``: the OAuth2 password grant.

The body is a form (``application/x-www-form-urlencoded``, else 415) with ``username``,
``password`` and ``grant_type=password``; the credentials are compared in constant time. The
answer is ``{"token_type": "Bearer", "expires_in": "3600", "access_token": ...}`` with
``expires_in`` a string (as flinkey sends it: the token lifetime rounded up). Failures are
answered in the RFC 6749 (section 5.2) style with status 400: ``invalid_request``,
``unsupported_grant_type`` or ``invalid_grant``. Only the API key is checked before (no bearer
token, no ``Customer-ID``).
"""

from __future__ import annotations

import hmac
import math

from aiohttp import web

from ..._wire import dumps
from ..responses import json_response, oauth_error
from ._helpers import RouteContext

__all__ = ["issue_token"]


async def issue_token(
    context: RouteContext, request: web.Request, _customer_id: int
) -> web.StreamResponse:
    """``POST /oauth2/token``."""
    if request.content_type != "application/x-www-form-urlencoded":
        return context.unsupported_media_type()
    try:
        form = await request.post()
    except (ValueError, LookupError):  # LookupError: an unknown charset
        return oauth_error("invalid_request", "The request body could not be read.")
    username, password = form.get("username"), form.get("password")
    grant_type = form.get("grant_type")
    if not all(isinstance(v, str) for v in (username, password, grant_type)):
        return oauth_error("invalid_request", "username, password and grant_type are required.")
    if grant_type != "password":
        return oauth_error("unsupported_grant_type", "Only grant_type=password is supported.")
    assert isinstance(username, str) and isinstance(password, str)
    config = context.config
    user_ok = hmac.compare_digest(username.encode(), config.username.encode())
    password_ok = hmac.compare_digest(password.encode(), config.password.encode())
    if not (user_ok and password_ok):
        return oauth_error("invalid_grant", "The user name or password is incorrect.")
    token = context.issue_token()
    return json_response(
        dumps(
            {
                "token_type": "Bearer",
                "expires_in": str(math.ceil(config.token_lifetime)),
                "access_token": token,
            }
        )
    )
