"""One module per API resource; each method validates, builds a request and names its model."""

from .assignments import Assignments

__all__ = ["Assignments"]
