"""Pairings: a service (contract) linked with a product (``PUT /pairings``,
``DELETE /pairings``, both with the body ``{serviceId, uniqueId?, serialNumber?, productId?}``).

The SDK sends the ids as JSON numbers, as the schema types them (PlanB's own web component
sends numeric strings, which the documentation does not mention), with ``serviceId`` and the
one product identifier it was given; the other keys are left out.
"""

from __future__ import annotations

import attrs

from .._converter import OMIT_IF_NONE

__all__ = ["Pairing"]


@attrs.frozen
class Pairing:
    """The body of ``PUT /pairings`` and ``DELETE /pairings``."""

    service_id: int
    unique_id: str | None = attrs.field(default=None, metadata={OMIT_IF_NONE: True})
    serial_number: str | None = attrs.field(default=None, metadata={OMIT_IF_NONE: True})
    product_id: int | None = attrs.field(default=None, metadata={OMIT_IF_NONE: True})
