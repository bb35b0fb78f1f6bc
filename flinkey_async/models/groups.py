"""Groups (``GET /groups``; a group's cars are :class:`~flinkey_async.models.cars.Car` items of
``GET /groups/{groupId}/cars``).

Creating, renaming and deleting groups and assigning items to them are described on
flinkey.com, but their methods, paths and bodies are not in the available documentation: the
SDK offers the two documented reads only. Neither takes OData (the documentation shows no OData
tip for them).
"""

from __future__ import annotations

import attrs

__all__ = ["Group"]


@attrs.frozen
class Group:
    """An item of ``GET /groups``."""

    id: int
    name: str
