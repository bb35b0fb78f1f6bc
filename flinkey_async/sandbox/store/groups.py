"""Groups: the items of ``GET /groups`` (``{id, name}``) and the cars each group holds
(``GET /groups/{groupId}/cars``)."""

from __future__ import annotations

from typing import Any

import attrs

__all__ = ["Group", "group_wire"]


@attrs.frozen
class Group:
    """A group of a customer and the ids of its cars (in the order they were added)."""

    id: int
    customer_id: int
    name: str
    car_ids: tuple[int, ...] = attrs.field(default=(), converter=tuple)


def group_wire(group: Group) -> dict[str, Any]:
    """``{id, name}``."""
    return {"id": group.id, "name": group.name}
