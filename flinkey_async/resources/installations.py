"""Installations: ``PUT /installations`` (a product into a car) and ``DELETE /installations``
(out of it), both with a JSON body and answered 204 once applied: synchronous writes, no
:class:`~flinkey_async.PendingOperation`.

Uninstalling a flinkey Box also removes **every assignment of the car**, asynchronously; each
removal is reported by the assignment webhook, unasked. A client with an
:class:`~flinkey_async.OperationTracker` sees them as unsolicited delete events (its
``on_unsolicited`` callback and the receiver's handler get them).
"""

from __future__ import annotations

from .._converter import unstructure
from .._validate import check_id
from ..models.installations import Installation
from ..models.products import product_identifier
from ._base import Resource

__all__ = ["Installations"]


class Installations(Resource):
    """``client.installations``: put products into cars and take them out again.

    The product is named by exactly one of ``product_id``, ``serial_number`` or ``unique_id``
    (:class:`~flinkey_async.errors.ValidationError` otherwise, before anything is sent).
    """

    async def install(
        self,
        *,
        car_id: int,
        product_id: int | None = None,
        serial_number: str | None = None,
        unique_id: str | None = None,
    ) -> None:
        """Install a product into ``car_id`` (``PUT /installations``; 204).

        The documented refusals arrive typed: 400
        :class:`~flinkey_async.errors.BadRequestError` ("No valid carId provided.", "No valid
        productId, serialNumber or uniqueId provided."), 404
        :class:`~flinkey_async.errors.NotFoundError` (no such car or product for the
        customer), and the 409 :class:`~flinkey_async.errors.ConflictError` subclasses
        :class:`~flinkey_async.errors.ProductAlreadyInstalledError`,
        :class:`~flinkey_async.errors.ProductHasNoServiceError` and
        :class:`~flinkey_async.errors.ProductTypeAlreadyInstalledError`.
        """
        await self._send(
            "PUT", ("installations",), self._body(car_id, product_id, serial_number, unique_id)
        )

    async def uninstall(
        self,
        *,
        car_id: int,
        product_id: int | None = None,
        serial_number: str | None = None,
        unique_id: str | None = None,
    ) -> None:
        """Take a product out of ``car_id`` (``DELETE /installations`` with the same JSON body
        as :meth:`install`; 204).

        Only the heading of this operation is in the available documentation: the body is
        taken to be the install's, and its error answers are unknown (they arrive as the
        :class:`~flinkey_async.errors.FlinkeyApiError` subclass of their status). Taking out
        a flinkey Box removes all of the car's assignments asynchronously, each reported by
        an unsolicited delete webhook.
        """
        await self._send(
            "DELETE", ("installations",), self._body(car_id, product_id, serial_number, unique_id)
        )

    @staticmethod
    def _body(
        car_id: int, product_id: int | None, serial_number: str | None, unique_id: str | None
    ) -> object:
        check_id(car_id, "car_id")
        product = product_identifier(product_id, serial_number, unique_id)
        return unstructure(
            Installation(
                car_id,
                unique_id=product.unique_id,
                serial_number=product.serial_number,
                product_id=product.product_id,
            )
        )
