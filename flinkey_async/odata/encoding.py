"""Percent-encoding and OData literals: the two ways a Python value becomes query-string text.

Everything a :class:`~flinkey_async.odata.Query` writes goes through :func:`encode_component`:
a space is ``%20``, ``+`` is ``%2B``, ``&`` is ``%26``, non-ASCII is UTF-8 percent-encoded. The
query string is therefore complete and must be sent as is, for example with
``yarl.URL(base + "?" + str(query), encoded=True)``; the result conforms to the OData ABNF rule
``queryOptions``. Passing the decoded pairs from ``Query.to_params()`` to aiohttp's ``params=``
also works, but aiohttp then writes spaces as ``+``, which not every server reads as a space.

Literals are rendered by one function, :func:`wire_literal` (:func:`literal` is its decoded
form): strings are single-quoted with ``'`` doubled; aware datetimes become UTC
``yyyy-MM-ddTHH:mm:ssZ`` (naive ones are rejected, sub-seconds truncated); see :func:`literal`
for every type. A value of an unsupported type raises :class:`TypeError` where the comparison is
written, not later.
"""

from __future__ import annotations

import enum
import math
import uuid
from datetime import date, datetime
from typing import Any, NoReturn
from urllib.parse import quote, unquote

from .._converter import format_datetime
from ..errors import ValidationError

__all__ = ["encode_component", "literal", "wire_literal"]

#: Characters written as they are besides letters, digits and ``-._~``: the sub-delimiters an
#: OData expression needs that are also safe inside a query component. ``/`` and ``?`` are not
#: here because the OData grammar does not allow them unencoded inside a string literal; ``=``,
#: ``&``, ``+``, ``#``, ``%`` and the space are not here because they change the meaning of a
#: query string (or get decoded as a space).
_SAFE = "'()*,:;$@!"

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1


def encode_component(text: str) -> str:
    """Percent-encode ``text`` for use as a query-string value (UTF-8; a space is ``%20``).

    Letters, digits, ``-._~`` and ``'()*,:;$@!`` stay as they are; every other character is
    encoded (``+`` as ``%2B``, ``&`` as ``%26``, ``/`` as ``%2F``, ...), so
    ``urllib.parse.unquote`` gives ``text`` back exactly. Raises :class:`ValidationError` for text
    that is not valid Unicode (lone surrogates).

    Note: the published OData ABNF (rule ``pct-encoded-no-SQUOTE``) leaves out every ``%7X``
    inside string literals, an apparent erratum (its purpose is to exclude ``%27``). ``{``, ``|``,
    ``}`` and DEL may not appear unencoded in a URL either, so they are sent as ``%7B``, ``%7C``,
    ``%7D`` and ``%7F``, which OData servers decode like any other escape.
    """
    # ASCII text (nearly all of it) is mapped character by character through a table made from
    # quote() itself, several times faster than quote(); anything else goes through quote().
    if type(text) is str and text.isascii():
        return text.translate(_ASCII_ESCAPES)
    try:
        return quote(text, safe=_SAFE, errors="strict")
    except UnicodeEncodeError:
        raise ValidationError(
            "query", f"text is not valid Unicode (lone surrogate): {text!r}"
        ) from None


#: ``str.translate`` table: what :func:`encode_component` writes for each ASCII character.
_ASCII_ESCAPES = [quote(chr(code), safe=_SAFE) for code in range(128)]


def wire_literal(value: Any, argument: str = "value") -> str:
    """The percent-encoded OData literal for ``value`` (the rules are listed at :func:`literal`).

    ``argument`` names the field (or argument) in a :class:`ValidationError`.
    """
    kind = type(value)
    if kind not in _LITERAL_KINDS:
        # A subclass (or an unsupported type). The order matters: an IntEnum member is an Enum
        # before it is an int, a bool is an int, and a datetime is a date.
        if isinstance(value, enum.Enum):
            return wire_literal(value.value, argument)
        base = next((base for base in _LITERAL_TYPES if isinstance(value, base)), None)
        if base is None:
            _unsupported(value)
        kind = base
        if kind is int or kind is float:
            value = kind(value)  # its number, without the subclass's str() or repr()
    if kind is str:
        return "'" + encode_component(value.replace("'", "''")) + "'"
    if kind is int:
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise ValidationError(argument, f"integer {value} is outside the 64-bit range of OData")
        return str(value)
    if kind is datetime:
        return format_datetime(value, argument)
    if value is None:
        return "null"
    if kind is bool:
        return "true" if value else "false"
    if kind is float:
        if not math.isfinite(value):
            raise ValidationError(argument, f"{value!r} has no OData literal; use a finite number")
        # repr() round-trips, and its forms (1.5, 1e-05, 1e+16, -0.0) are all OData decimal
        # literals. The "+" of an exponent is percent-encoded like every other "+".
        return encode_component(repr(value))
    if kind is date:
        text: str = value.isoformat()
        return text
    return str(value)  # uuid.UUID


#: The types :func:`wire_literal` writes, each before its base classes (bool before int,
#: datetime before date); a value of a subclass is written as the first type it is an instance of.
_LITERAL_TYPES = (bool, int, str, float, datetime, date, uuid.UUID, type(None))
_LITERAL_KINDS = frozenset(_LITERAL_TYPES)


def _unsupported(value: Any) -> NoReturn:
    """Raise the :class:`TypeError` for a value that has no OData literal."""
    # The expression module imports this one, so nodes and fields say what they are through
    # a class attribute (ODATA_ROLE) instead of an isinstance check.
    role = getattr(type(value), "ODATA_ROLE", None)
    if role == "field":
        raise TypeError(f"a field ({value!r}) cannot be used as a literal value here")
    if role == "expression":
        raise TypeError(
            f"an expression ({value}) is not a literal value; compare a field with a value"
        )
    raise TypeError(
        f"cannot write a {type(value).__name__} as an OData literal; use str, int, float, bool, "
        "None, an aware datetime, date, uuid.UUID or an Enum of those"
    )


def literal(value: Any) -> str:
    """The OData literal for ``value``, as it reads in a decoded ``$filter``.

    ====================  ==============================================================
    ``str``               ``'O''Brien'``: single-quoted, each ``'`` doubled
    ``bool``              ``true`` / ``false``
    ``int``               ``42`` (64-bit range, else :class:`ValidationError`)
    ``float``             its ``repr()``, e.g. ``1.5``, ``1e-05``; NaN and infinities raise
                          :class:`ValidationError`
    ``None``              ``null``
    aware ``datetime``    ``2026-03-01T08:00:00Z``: converted to UTC, sub-seconds
                          truncated, unquoted; a naive datetime raises
                          :class:`ValidationError`
    ``date``              ``2026-03-01``
    ``uuid.UUID``         bare, e.g. ``0b6e7d2c-...``
    ``enum.Enum`` member  its ``value``, by the rules above
    ====================  ==============================================================

    Anything else raises :class:`TypeError` naming the type.
    """
    return unquote(wire_literal(value, "value"))
