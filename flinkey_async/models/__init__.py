"""The attrs models, one module per resource (its read models, request models, patch schema
and webhook payload); this package re-exports them."""

from .assignments import (
    DEFAULT_LIFETIME,
    MAX_LIFETIME,
    MIN_LIFETIME,
    Assignment,
    CarAssignment,
    NewAssignment,
    UserAssignment,
)
from .cars import Car
from .events import DEFAULT_EVENTS_TOP, Event, EventType
from .groups import Group
from .installations import Installation
from .keyfobs import Keyfob, KeyForm
from .pairings import Pairing
from .products import Product, ProductIdentifier, ProductType
from .services import Service
from .users import User, UserData

__all__ = [
    "DEFAULT_EVENTS_TOP",
    "DEFAULT_LIFETIME",
    "MAX_LIFETIME",
    "MIN_LIFETIME",
    "Assignment",
    "Car",
    "CarAssignment",
    "Event",
    "EventType",
    "Group",
    "Installation",
    "KeyForm",
    "Keyfob",
    "NewAssignment",
    "Pairing",
    "Product",
    "ProductIdentifier",
    "ProductType",
    "Service",
    "User",
    "UserAssignment",
    "UserData",
]
