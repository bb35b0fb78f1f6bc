"""flinkey_async: an asyncio SDK for the flinkey API v3.

>>> from flinkey_async import FlinkeyClient, Query, F, JsonPatch
"""

__version__ = "0.1.0"

from . import errors
from .client import DEFAULT_BASE_URL, UAT_BASE_URL, FlinkeyClient
from .models import Assignment, CarAssignment, UserAssignment
from .odata import F, Query
from .operations import PendingOperation
from .patch import JsonPatch
from .retry import RetryPolicy

__all__ = [
    "DEFAULT_BASE_URL",
    "UAT_BASE_URL",
    "Assignment",
    "CarAssignment",
    "F",
    "FlinkeyClient",
    "JsonPatch",
    "PendingOperation",
    "Query",
    "RetryPolicy",
    "UserAssignment",
    "__version__",
    "errors",
]
