"""Users (``GET /users``, ``GET /users/{userId}``).

Creating, changing and deleting users is not in the available documentation: the SDK offers
reads only.
"""

from __future__ import annotations

import attrs

__all__ = ["User", "UserData"]


@attrs.frozen
class UserData:
    """The ``userData`` of a user: names, when known."""

    first_name: str | None
    last_name: str | None


@attrs.frozen
class User:
    """A user (the documented ``User`` schema).

    OData fields are ``id``, ``emailAddress`` and ``userData`` (a complex type: the SDK's
    filter builder names top-level fields only).
    """

    id: int
    email_address: str
    user_data: UserData
