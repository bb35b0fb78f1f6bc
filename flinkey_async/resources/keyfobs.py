"""The keyfob catalog: ``GET /brands`` and ``GET /brands/{brand}/keys``, both sent without
``Customer-ID`` (the catalog is the same for every customer)."""

from __future__ import annotations

from typing import Any

from ..errors import ValidationError
from ..models.keyfobs import Keyfob
from ..odata import Query
from ._base import Resource

__all__ = ["Keyfobs"]


def _check_brand(value: Any) -> str:
    if not isinstance(value, str):
        raise ValidationError("brand", f"must be a str, got {type(value).__name__}")
    if not value:
        raise ValidationError("brand", "must not be empty")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(
            "brand", f"is not valid Unicode (lone surrogate): {value!r:.80}"
        ) from None
    return value


class Keyfobs(Resource):
    """``client.keyfobs``: car brands, and the keys of a brand that a flinkey Box can hold."""

    async def brands(self, *, query: Query | None = None) -> list[str]:
        """The brands of the catalog (``GET /brands``: plain strings, no ``Customer-ID``).

        The items have no fields, so a ``query`` may only page them (``top()``, ``skip()``).
        """
        query = self._checked_query(query, None, "brands")
        result: list[str] = await self._get(("brands",), list[str], query, customer_scoped=False)
        return result

    async def keys(self, brand: str, *, query: Query | None = None) -> list[Keyfob]:
        """The keys of ``brand`` (``GET /brands/{brand}/keys``, no ``Customer-ID``).

        ``brand`` is sent as given (no trimming or change of case), as one path segment:
        ``/``, ``?``, ``#``, ``%``, dots and non-ASCII letters are percent-encoded, so no
        value can reach another path. flinkey answers an unknown brand with 400 "Invalid brand
        provided." (:class:`~flinkey_async.errors.BadRequestError`).
        """
        brand = _check_brand(brand)
        query = self._checked_query(query, Keyfob, "keys")
        result: list[Keyfob] = await self._get(
            ("brands", brand, "keys"), list[Keyfob], query, customer_scoped=False
        )
        return result
