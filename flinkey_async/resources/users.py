"""Users: ``GET /users`` and ``GET /users/{userId}`` (a user's assignments are
:meth:`~flinkey_async.resources.assignments.Assignments.list_for_user`)."""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator

from .._validate import check_id
from ..errors import ValidationError
from ..models.users import User
from ..odata import F, Query
from ._base import Resource

__all__ = ["Users"]


class Users(Resource):
    """``client.users``: the customer's users (:class:`~flinkey_async.models.users.User`)."""

    async def list(self, *, query: Query | None = None) -> builtins.list[User]:
        """The customer's users (``GET /users``), OData ``query`` applied by the server."""
        query = self._checked_query(query, User, "users")
        result: builtins.list[User] = await self._get(("users",), list[User], query)
        return result

    async def get(self, user_id: int, *, query: Query | None = None) -> User:
        """One user (``GET /users/{userId}``); :class:`~flinkey_async.errors.NotFoundError` for
        a user the customer does not have."""
        check_id(user_id, "user_id")
        query = self._checked_query(query, User, "users")
        result: User = await self._get(("users", user_id), User, query)
        return result

    def iter(self, *, query: Query | None = None, page_size: int = 100) -> AsyncIterator[User]:
        """All of the customer's users, fetched lazily ``page_size`` at a time."""
        query = self._checked_query(query, User, "users")
        return self._iterate(("users",), User, query, page_size)

    async def find_by_email(self, email_address: str) -> builtins.list[User]:
        """The users whose ``emailAddress`` equals ``email_address``, one request:
        ``GET /users?$filter=emailAddress eq '...'``.

        The address is sent exactly as given (quotes doubled, percent-encoded), compared by
        the server with OData's ``eq``; the SDK neither changes its case nor filters the
        answer again. Whether flinkey compares addresses case-sensitively is not documented:
        if it does, ``Jo@Example.com`` does not find ``jo@example.com``, so pass the address
        as it was registered. (The SDK's filter builder has no ``tolower()``.) A list,
        because the documentation does not say that addresses are unique.
        """
        if not isinstance(email_address, str):
            raise ValidationError(
                "email_address", f"must be a str, got {type(email_address).__name__}"
            )
        if not email_address.strip():
            raise ValidationError("email_address", "must not be empty")
        return await self.list(query=Query().filter(F.email_address == email_address))
