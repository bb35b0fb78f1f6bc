"""Customers (``GET /customers``): the customers the API manager may act for.

The documentation types a customer's ``id`` as a string, its example shows a number, and the
``Customer-ID`` header takes an integer: the SDK accepts both and exposes an ``int``.
"""

from __future__ import annotations

import attrs

from .._converter import STRUCTURE_WITH, int_or_numeric_str

__all__ = ["Customer"]


@attrs.frozen
class Customer:
    """An item of ``GET /customers``; send its ``id`` as the client's ``customer_id``."""

    id: int = attrs.field(metadata={STRUCTURE_WITH: int_or_numeric_str})
    name: str
