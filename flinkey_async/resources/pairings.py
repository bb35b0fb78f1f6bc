"""Pairings: ``PUT /pairings`` (a service with a product) and ``DELETE /pairings`` (a DELETE
with a JSON body), both answered 204 once applied: synchronous writes, no
:class:`~flinkey_async.PendingOperation`. The documentation lists no error answers for them;
any error arrives as the :class:`~flinkey_async.errors.FlinkeyApiError` subclass of its
status."""

from __future__ import annotations

from .._converter import unstructure
from .._validate import check_id
from ..models.pairings import Pairing
from ..models.products import product_identifier
from ._base import Resource

__all__ = ["Pairings"]


class Pairings(Resource):
    """``client.pairings``: link services (contracts) with products, and unlink them.

    The product is named by exactly one of ``product_id``, ``serial_number`` or ``unique_id``
    (:class:`~flinkey_async.errors.ValidationError` otherwise, before anything is sent).
    """

    async def pair(
        self,
        *,
        service_id: int,
        product_id: int | None = None,
        serial_number: str | None = None,
        unique_id: str | None = None,
    ) -> None:
        """Pair ``service_id`` with a product (``PUT /pairings``; 204)."""
        await self._send(
            "PUT", ("pairings",), self._body(service_id, product_id, serial_number, unique_id)
        )

    async def unpair(
        self,
        *,
        service_id: int,
        product_id: int | None = None,
        serial_number: str | None = None,
        unique_id: str | None = None,
    ) -> None:
        """Unlink ``service_id`` from a product (``DELETE /pairings`` with the same JSON body
        as :meth:`pair`; 204)."""
        await self._send(
            "DELETE", ("pairings",), self._body(service_id, product_id, serial_number, unique_id)
        )

    @staticmethod
    def _body(
        service_id: int, product_id: int | None, serial_number: str | None, unique_id: str | None
    ) -> object:
        check_id(service_id, "service_id")
        product = product_identifier(product_id, serial_number, unique_id)
        return unstructure(
            Pairing(
                service_id,
                unique_id=product.unique_id,
                serial_number=product.serial_number,
                product_id=product.product_id,
            )
        )
