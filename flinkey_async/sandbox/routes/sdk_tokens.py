"""``POST /sdk/token``: an ``id_token`` for the mobile SDK (no ``Customer-ID``: the customer is
in the body ``{customerId, sdkKey, userId}``).

The combination is valid when ``customerId`` is a customer the manager may act for, ``sdkKey``
is the sandbox's (``config.sdk_key``) and ``userId`` is a user of that customer; anything else
gets the documented 400 "Invalid combination of customerId, sdkKey and userId." (a body that is
not JSON gets the sandbox's own 400 text, a body that is not ``application/json`` 415). The
token is a JWT (HS256, signed with a key of this sandbox) naming the customer and the user; no
one checks its signature, Tapkey's token exchange is not emulated.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from typing import Any

from aiohttp import web

from ..._wire import dumps
from ..messages import INVALID_SDK_TOKEN_REQUEST
from ..responses import json_response, text_response
from ..writes.bodies import BodyError, load_json
from ._helpers import RouteContext, is_json

__all__ = ["issue_sdk_token"]

#: Seconds an ``id_token`` claims to be valid.
ID_TOKEN_LIFETIME = 3600
_SIGNING_KEY = secrets.token_bytes(32)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _jwt(claims: dict[str, Any]) -> str:
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    payload = _b64(dumps(claims))
    signature = hmac.new(_SIGNING_KEY, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64(signature)}"


async def issue_sdk_token(
    context: RouteContext, request: web.Request, _customer_id: int
) -> web.StreamResponse:
    """``POST /sdk/token``."""
    if not is_json(request):
        return context.unsupported_media_type()
    try:
        data = load_json(await request.read())
    except BodyError as exc:
        return text_response(str(exc), 400)
    if not isinstance(data, dict):
        return text_response(INVALID_SDK_TOKEN_REQUEST, 400)
    customer_id, sdk_key, user_id = data.get("customerId"), data.get("sdkKey"), data.get("userId")
    valid = (
        type(customer_id) is int
        and type(user_id) is int
        and type(sdk_key) is str
        and hmac.compare_digest(
            sdk_key.encode("utf-8", "surrogatepass"), context.config.sdk_key.encode()
        )
        and customer_id in context.customer_ids()
        and context.store.get_user(user_id, customer_id) is not None
    )
    if not valid:
        return text_response(INVALID_SDK_TOKEN_REQUEST, 400)
    now = int(time.time())
    token = _jwt(
        {
            "iss": "flinkey-sandbox",
            "sub": f"{customer_id}:{user_id}",
            "customerId": customer_id,
            "userId": user_id,
            "iat": now,
            "exp": now + ID_TOKEN_LIFETIME,
            "jti": secrets.token_hex(8),
        }
    )
    return json_response(dumps({"id_token": token}))
