"""App SDK tokens (``POST /sdk/token``): the ``id_token`` an app exchanges with Tapkey.

Both the request's ``sdkKey`` and the answer's ``id_token`` are credentials: the models hold them
as :class:`~flinkey_async.auth.Secret` (never shown by a ``repr``), and the key is revealed only
by the converter, while the request body is written (:data:`UNSTRUCTURE_WITH`).
"""

from __future__ import annotations

from typing import Any

import attrs

from .._converter import STRUCTURE_WITH, UNSTRUCTURE_WITH, WIRE_NAME
from ..auth import Secret

__all__ = ["SdkToken", "SdkTokenRequest"]


def _reveal(value: Secret) -> str:
    return value.reveal()


def _secret(value: Any) -> Secret:
    if type(value) is not str:
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return Secret(value)


@attrs.frozen
class SdkTokenRequest:
    """The body of ``POST /sdk/token``: ``{customerId, sdkKey, userId}``."""

    customer_id: int
    sdk_key: Secret = attrs.field(metadata={UNSTRUCTURE_WITH: _reveal})
    user_id: int


@attrs.frozen
class SdkToken:
    """The answer of ``POST /sdk/token``: ``{id_token}`` (a JWT for Tapkey's token exchange)."""

    id_token: Secret = attrs.field(metadata={STRUCTURE_WITH: _secret, WIRE_NAME: "id_token"})
