"""Installations: a product put into, or taken out of, a car (``PUT /installations``,
``DELETE /installations``).

The body is ``{carId, uniqueId?, serialNumber?, productId?}``; the SDK sends ``carId`` and the
one product identifier it was given (:func:`~flinkey_async.models.products.product_identifier`)
and leaves the other keys out. ``DELETE /installations`` is only a heading in the available
documentation: its body is taken to be the same (an inference, as the reference suggests).
"""

from __future__ import annotations

import attrs

from .._converter import OMIT_IF_NONE

__all__ = ["Installation"]


@attrs.frozen
class Installation:
    """The body of ``PUT /installations`` and ``DELETE /installations``."""

    car_id: int
    unique_id: str | None = attrs.field(default=None, metadata={OMIT_IF_NONE: True})
    serial_number: str | None = attrs.field(default=None, metadata={OMIT_IF_NONE: True})
    product_id: int | None = attrs.field(default=None, metadata={OMIT_IF_NONE: True})
