"""Services: the flinkey Go contracts of products (``GET /services``,
``GET /services/{serviceId}``).

The older documentation's ``productId`` is not in the v3 schema, so it is not here either; the
pairing of a service with a product is written with
:meth:`~flinkey_async.resources.pairings.Pairings.pair`.
"""

from __future__ import annotations

from datetime import datetime

import attrs

__all__ = ["Service"]


@attrs.frozen
class Service:
    """A service (the documented v3 ``Service`` schema): a contract of a product;
    ``termination_date`` (UTC) and ``termination_cause`` are set once it is terminated."""

    id: int
    name: str
    is_terminated: bool
    termination_date: datetime | None
    termination_cause: str | None
