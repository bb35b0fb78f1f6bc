"""Protocol facts shared on purpose by the SDK and its sandbox (and nothing else).

The sandbox is a second, independent implementation of the flinkey API: its records, rules
and payloads are its own, so that end-to-end tests compare two implementations. What both
must agree on by definition, because flinkey's documentation fixes it, lives here: header
names, the wire datetime format, the JSON encoding and the id range. This module imports
nothing of the SDK.
"""

from __future__ import annotations

import json
from typing import Any, Final

__all__ = [
    "API_KEY_HEADER",
    "AUTHORIZATION_HEADER",
    "CUSTOMER_ID_HEADER",
    "DATETIME_FORMAT",
    "MAX_ID",
    "SECRET_HEADER",
    "dumps",
]

#: The static API key, on every request (the token request included).
API_KEY_HEADER: Final = "flinkey-API-Key"
#: ``Bearer {access_token}``, on every request but the token request.
AUTHORIZATION_HEADER: Final = "Authorization"
#: The customer a request acts for (an integer id), on customer-scoped requests.
CUSTOMER_ID_HEADER: Final = "Customer-ID"
#: The shared secret of webhook deliveries (matched case-insensitively).
SECRET_HEADER: Final = "Secret"
#: Timestamps on the wire: ``yyyy-MM-ddTHH:mm:ssZ``, UTC, whole seconds (``strftime`` form).
DATETIME_FORMAT: Final = "%Y-%m-%dT%H:%M:%SZ"
#: Ids are documented as ``int32``.
MAX_ID: Final = 2**31 - 1

# allow_nan=False: NaN and infinities are no JSON (the stdlib would write NaN, Infinity).
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def dumps(value: Any) -> bytes:
    """JSON as sent on the wire: compact, UTF-8, non-ASCII characters as they are.

    A NaN or infinite float raises ``ValueError`` (JSON has no such numbers; writing ``null``
    instead would change the meaning), as does text with a lone surrogate
    (``UnicodeEncodeError``).
    """
    return _ENCODER.encode(value).encode()
