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

__all__ = [
    "DEFAULT_LIFETIME",
    "MAX_LIFETIME",
    "MIN_LIFETIME",
    "Assignment",
    "CarAssignment",
    "NewAssignment",
    "UserAssignment",
]
