"""One module per API resource; each method validates, builds a request and names its model.

:class:`Resources` is the list of resources: the client inherits it, and each entry is one line
(``name = resource(Class)``), made on first use and shared context with the client. Adding a
resource adds its model module (``models/<name>.py``), its resource module
(``resources/<name>.py``) and its line here.
"""

from __future__ import annotations

from ._base import Context, Resource, resource
from .assignments import Assignments
from .cars import Cars
from .customers import Customers
from .events import Events
from .groups import Groups
from .installations import Installations
from .keyfobs import Keyfobs
from .pairings import Pairings
from .products import Products
from .sdk_tokens import SdkTokens
from .services import Services
from .users import Users

__all__ = [
    "Assignments",
    "Cars",
    "Context",
    "Customers",
    "Events",
    "Groups",
    "Installations",
    "Keyfobs",
    "Pairings",
    "Products",
    "Resource",
    "Resources",
    "SdkTokens",
    "Services",
    "Users",
    "resource",
]


class Resources:
    """The resources of a client (``client.assignments``, ``client.customers``, ...)."""

    _context: Context

    #: Assignments: ``get``, ``list_for_car``, ``list_for_user``, ``iter_for_car``,
    #: ``iter_for_user``, ``create``, ``update``, ``delete``.
    assignments = resource(Assignments)
    #: The customers the API manager may act for: ``list``.
    customers = resource(Customers)
    #: Cars: ``list``, ``get``, ``iter``, ``events`` (bounded), ``iter_events``.
    cars = resource(Cars)
    #: Events (car opened or closed): ``get``.
    events = resource(Events)
    #: Users: ``list``, ``get``, ``iter``, ``find_by_email``.
    users = resource(Users)
    #: Products (flinkey Box, flinkey IQ): ``list``, ``get``, ``iter``.
    products = resource(Products)
    #: Services (contracts): ``list``, ``get``, ``iter``.
    services = resource(Services)
    #: Products into and out of cars: ``install``, ``uninstall``.
    installations = resource(Installations)
    #: Services with products: ``pair``, ``unpair``.
    pairings = resource(Pairings)
    #: Groups: ``list``, ``cars``.
    groups = resource(Groups)
    #: The keyfob catalog (no ``Customer-ID``): ``brands``, ``keys``.
    keyfobs = resource(Keyfobs)
    #: Tokens for the mobile SDK (no ``Customer-ID``): ``create``.
    sdk_tokens = resource(SdkTokens)
