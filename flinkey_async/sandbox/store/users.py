"""Users: the ``User`` schema of ``GET /users`` and ``GET /users/{userId}``."""

from __future__ import annotations

from typing import Any

import attrs

from ..odata_eval import INT, STR, EntitySchema

__all__ = ["USER_SCHEMA", "User", "user_wire"]


@attrs.frozen
class User:
    """A user of a customer (the ``User`` schema plus its owner's ``customer_id``)."""

    id: int
    customer_id: int
    email_address: str
    first_name: str | None = None
    last_name: str | None = None


#: The wire shape of a user (``userData`` is a complex type), for the OData evaluator.
USER_SCHEMA = EntitySchema(
    "User",
    {
        "id": INT,
        "emailAddress": STR,
        "userData": EntitySchema("UserData", {"firstName": STR, "lastName": STR}),
    },
)


def user_wire(user: User) -> dict[str, Any]:
    """The ``User`` schema."""
    return {
        "id": user.id,
        "emailAddress": user.email_address,
        "userData": {"firstName": user.first_name, "lastName": user.last_name},
    }
