"""One module per API resource; each method validates, builds a request and names its model.

:class:`Resources` is the list of resources: the client inherits it, and each entry is one line
(``name = resource(Class)``), made on first use and shared context with the client. Adding a
resource adds its model module (``models/<name>.py``), its resource module
(``resources/<name>.py``) and its line here.
"""

from __future__ import annotations

from ._base import Context, Resource, resource
from .assignments import Assignments
from .customers import Customers

__all__ = ["Assignments", "Context", "Customers", "Resource", "Resources", "resource"]


class Resources:
    """The resources of a client (``client.assignments``, ``client.customers``, ...)."""

    _context: Context

    #: Assignments: ``get``, ``list_for_car``, ``list_for_user``, ``iter_for_car``,
    #: ``iter_for_user``, ``create``, ``update``, ``delete``.
    assignments = resource(Assignments)
    #: The customers the API manager may act for: ``list``.
    customers = resource(Customers)
