"""Groups: ``GET /groups`` and ``GET /groups/{groupId}/cars``, the two documented reads. Neither
takes OData (the documentation shows no OData tip for them), so neither takes a ``query``.
Creating, renaming, deleting and filling groups is not in the available documentation."""

from __future__ import annotations

import builtins

from .._validate import check_id
from ..models.cars import Car
from ..models.groups import Group
from ._base import Resource

__all__ = ["Groups"]


class Groups(Resource):
    """``client.groups``: the customer's groups and their cars."""

    async def list(self) -> builtins.list[Group]:
        """The customer's groups (``GET /groups``)."""
        result: builtins.list[Group] = await self._get(("groups",), list[Group])
        return result

    async def cars(self, group_id: int) -> builtins.list[Car]:
        """The group's cars (``GET /groups/{groupId}/cars``), as
        :class:`~flinkey_async.models.cars.Car` items."""
        check_id(group_id, "group_id")
        result: builtins.list[Car] = await self._get(("groups", group_id, "cars"), list[Car])
        return result
