"""App SDK tokens: ``POST /sdk/token``, sent without ``Customer-ID`` (the customer is in the
body).

The SDK key and the returned ``id_token`` are credentials. The key is wrapped in a
:class:`~flinkey_async.auth.Secret` on entry, the request body is written by the converter
straight into a ``SecretBody`` (whose ``repr`` shows only its length), and the token is
returned as a ``Secret``: neither appears in a ``repr``, a log line, an exception text or a
frame's local variables as a plain string. An error answer that echoes the request shows the
key masked (``***``) in the exception's message. flinkey's sample apps stress that apps must
not call this themselves: a backend asks for the token and hands it to the app.
"""

from __future__ import annotations

from contextlib import suppress

from .._converter import unstructure
from .._pipeline import SecretBody, encode_json
from .._validate import check_id
from ..auth import Secret, as_secret, redacted
from ..errors import DecodeError, FlinkeyApiError, ValidationError
from ..models.sdk_tokens import SdkToken, SdkTokenRequest
from ._base import Resource

__all__ = ["SdkTokens"]


class SdkTokens(Resource):
    """``client.sdk_tokens``: tokens for the flinkey (Tapkey) mobile SDK."""

    async def create(self, *, customer_id: int, sdk_key: str | Secret, user_id: int) -> Secret:
        """An ``id_token`` for ``user_id`` of ``customer_id`` (``POST /sdk/token`` with
        ``{customerId, sdkKey, userId}``; no ``Customer-ID`` header), as a
        :class:`~flinkey_async.auth.Secret`: call ``reveal()`` where it is handed on.

        ``sdk_key`` is the SDK Key of the flinkey Portal's Developer page. flinkey answers a
        wrong combination with 400 "Invalid combination of customerId, sdkKey and userId."
        (:class:`~flinkey_async.errors.BadRequestError`).
        """
        key = as_secret(sdk_key, "sdk_key")
        del sdk_key
        check_id(customer_id, "customer_id")
        check_id(user_id, "user_id")
        if not key:
            raise ValidationError("sdk_key", "must not be empty")
        body = SecretBody(encode_json(unstructure(SdkTokenRequest(customer_id, key, user_id))))
        refused: FlinkeyApiError | None = None
        try:
            response = await self._send("POST", ("sdk", "token"), body, customer_scoped=False)
        except FlinkeyApiError as exc:
            # A server may echo the body it was sent: what is raised masks the SDK key and the
            # API key, and is raised outside the handler (no chained exception keeps the
            # original).
            refused = redacted(exc, (key, self._pipeline._api_key))
        if refused is not None:
            raise refused
        token: SdkToken | None = None
        # A DecodeError would quote the body, which holds the token: it is replaced, and
        # raised outside the handler so that no chained exception keeps the original.
        with suppress(DecodeError):
            token = response.decode(SdkToken)
        if token is None:
            raise DecodeError("the POST /sdk/token answer is not the documented {id_token: string}")
        return token.id_token
