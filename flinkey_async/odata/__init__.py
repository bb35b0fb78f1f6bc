"""OData v4 query options, built from typed expressions (pure; no I/O).

Build filters from fields and Python operators, combine them with ``&`` (and), ``|`` (or) and
``~`` (not), and collect them in an immutable :class:`Query`::

    from datetime import UTC, datetime
    from flinkey_async import F, Query

    q = (
        Query()
        .filter((F.user_id == 9) & (F.start >= datetime(2026, 3, 1, 8, tzinfo=UTC)))
        .orderby("start", desc=True)
        .top(10)
    )
    str(q)
    # '$filter=userId%20eq%209%20and%20start%20ge%202026-03-01T08:00:00Z'
    # '&$orderby=start%20desc&$top=10'

The package, one concern per module:

* :mod:`.encoding` -- percent-encoding (:func:`encode_component`) and literals
  (:func:`literal`): why the query string is encoded by the SDK and must be sent as is.
* :mod:`.expr` -- the expression nodes, :class:`Field` and :data:`F`: precedence and
  parentheses.
* :mod:`.query` -- :class:`Query` and :func:`model_fields`.

:class:`Pager` lives in :mod:`flinkey_async.pagination`; it is re-exported here for
compatibility. Building a query is plain code; ``benchmarks/odata.py`` measures it against one
loopback request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .encoding import encode_component, literal
from .expr import And, Call, Comparison, Expr, F, Field, FieldRef, In, Not, Or, Raw
from .query import Query, model_fields

if TYPE_CHECKING:
    from ..pagination import Pager

__all__ = [
    "And",
    "Call",
    "Comparison",
    "Expr",
    "F",
    "Field",
    "FieldRef",
    "In",
    "Not",
    "Or",
    "Pager",
    "Query",
    "Raw",
    "encode_component",
    "literal",
    "model_fields",
]


def __getattr__(name: str) -> Any:
    # flinkey_async.pagination imports Query from this package, so Pager is imported when it
    # is first asked for: either module can then be imported first.
    if name == "Pager":
        from ..pagination import Pager

        return Pager
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
