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

How it works:

* A filter is an immutable tree of small nodes (:class:`Comparison`, :class:`And`,
  :class:`Or`, :class:`Not`, :class:`In`, :class:`Call`, :class:`FieldRef`, :class:`Raw`).
  Filters are never built by gluing strings together.
* Each node writes its own percent-encoded text once, when it is made, from its operands'
  texts. The rule is the same for every node: the OData operator precedence
  (``or`` < ``and`` < comparisons and ``in`` < ``not``), and the fewest parentheses that keep
  the meaning: ``(a or b) and c`` keeps its parentheses, ``a or b and c`` needs none,
  ``not (a eq 1)`` gets them, and chains of the same operator are flattened. A query's string
  is then its options' texts joined.
* Literals are rendered by one function, :func:`literal`: strings are single-quoted with ``'``
  doubled; aware datetimes become UTC ``yyyy-MM-ddTHH:mm:ssZ`` (naive ones are rejected,
  sub-seconds truncated); see :func:`literal` for every type. A value of an unsupported type
  raises :class:`TypeError` where the comparison is written, not later.
* :class:`Query` percent-encodes the query string itself (a space is ``%20``, ``+`` is ``%2B``,
  ``&`` is ``%26``, non-ASCII is UTF-8 percent-encoded; see :func:`encode_component`), so it must
  be sent as is, for example with ``yarl.URL(base + "?" + str(query), encoded=True)``. The
  result conforms to the OData ABNF rule ``queryOptions``. Passing the decoded pairs from
  :meth:`Query.to_params` to aiohttp's ``params=`` also works, but aiohttp then writes spaces as
  ``+``, which not every server reads as a space.

Because a node's text is made with the node, extending a shared base query never renders the
base again; a query caches its own string. Nodes and queries are immutable and safe to share
between tasks. Building a filter is on the hot path of every list call, so the node-making code
is written for speed (see ``benchmarks/odata.py``); the comments there say where and why.
"""

from __future__ import annotations

import difflib
import enum
import inspect
import math
import operator
import re
import uuid
from collections.abc import Callable, Collection, Iterable, Iterator
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Never, NoReturn, TypeVar, overload
from urllib.parse import quote, unquote

import attrs

from ._converter import format_datetime, to_camel, wire_name
from .errors import ValidationError

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

# ---------------------------------------------------------------------------------------------
# Percent-encoding
# ---------------------------------------------------------------------------------------------

#: Characters written as they are besides letters, digits and ``-._~``: the sub-delimiters an
#: OData expression needs that are also safe inside a query component. ``/`` and ``?`` are not
#: here because the OData grammar does not allow them unencoded inside a string literal; ``=``,
#: ``&``, ``+``, ``#``, ``%`` and the space are not here because they change the meaning of a
#: query string (or get decoded as a space).
_SAFE = "'()*,:;$@!"
_NEEDS_ENCODING = re.compile(r"[^A-Za-z0-9\-._~'()*,:;$@!]")
#: ``str.translate`` table for ASCII text: each code point's encoded form (a list indexed by
#: code point translates faster than a dict).
_ASCII_ENCODED = [
    f"%{code:02X}" if _NEEDS_ENCODING.match(chr(code)) else chr(code) for code in range(128)
]
#: The same, with ``'`` doubled: the body of an ASCII string literal in one pass.
_ASCII_LITERAL_BODY = [*_ASCII_ENCODED[:39], "''", *_ASCII_ENCODED[40:]]


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
    if text.isascii():
        return text.translate(_ASCII_ENCODED)
    try:
        return quote(text, safe=_SAFE, errors="strict")
    except UnicodeEncodeError:
        raise ValidationError(
            "query", f"text is not valid Unicode (lone surrogate): {text!r}"
        ) from None


# ---------------------------------------------------------------------------------------------
# Literals
# ---------------------------------------------------------------------------------------------

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
#: The text of 0..1023, the commonest int literals: a list lookup costs a tenth of writing the
#: int. Used on the hot paths, with _ONE_DIGIT: ints within +-2**30 are single-"digit" ints,
#: which CPython compares fast, so they need no 64-bit range check.
_INT_TEXT = [str(n) for n in range(1024)]
_INT_TEXT_END = len(_INT_TEXT)
_ONE_DIGIT = 2**30


def _lit_str(value: str, argument: str) -> str:
    if value.isascii():
        return f"'{value.translate(_ASCII_LITERAL_BODY)}'"
    body = encode_component(value.replace("'", "''"))
    return f"'{body}'"


def _lit_int(value: int, argument: str) -> str:
    if _INT64_MIN <= value <= _INT64_MAX:
        return str(value) if type(value) is int else str(int(value))
    raise ValidationError(argument, f"integer {value} is outside the 64-bit range of OData")


def _lit_bool(value: bool, argument: str) -> str:
    return "true" if value else "false"


def _lit_none(value: None, argument: str) -> str:
    return "null"


def _lit_float(value: float, argument: str) -> str:
    value = float(value)
    if not math.isfinite(value):
        raise ValidationError(argument, f"{value!r} has no OData literal; use a finite number")
    # repr() round-trips, and its forms (1.5, 1e-05, 1e+16, -0.0) are all OData decimal
    # literals. The "+" of an exponent is percent-encoded like every other "+".
    text = repr(value)
    return text.replace("+", "%2B") if "+" in text else text


def _lit_date(value: date, argument: str) -> str:
    return value.isoformat()


def _lit_uuid(value: uuid.UUID, argument: str) -> str:
    return str(value)


_LITERALS: dict[type, Callable[[Any, str], str]] = {
    str: _lit_str,
    int: _lit_int,
    bool: _lit_bool,
    type(None): _lit_none,
    float: _lit_float,
    datetime: format_datetime,
    date: _lit_date,
    uuid.UUID: _lit_uuid,
}
# For subclasses (IntEnum members are handled as Enum first): bool before int, datetime
# before date.
_LITERAL_BASES = (bool, int, str, float, datetime, date, uuid.UUID)


def _wire_literal(value: Any, argument: str = "value") -> str:
    """The percent-encoded OData literal for ``value`` (see :func:`literal`)."""
    render = _LITERALS.get(type(value))
    if render is not None:
        return render(value, argument)
    if isinstance(value, enum.Enum):
        return _wire_literal(value.value, argument)
    for base in _LITERAL_BASES:
        if isinstance(value, base):
            return _LITERALS[base](value, argument)
    if isinstance(value, (Field, FieldRef)):
        raise TypeError(f"a field ({value!r}) cannot be used as a literal value here")
    if isinstance(value, Expr):
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
    return unquote(_wire_literal(value, "value"))


# ---------------------------------------------------------------------------------------------
# Expression tree
# ---------------------------------------------------------------------------------------------

# Operator precedence, loosest first. Raw text binds loosest of all: it is parenthesised
# whenever it is combined with anything.
_RAW_PREC = 0
_OR_PREC = 1
_AND_PREC = 2
_CMP_PREC = 3  # eq ne lt le gt ge, and in (some servers parse "in" at this level)
_NOT_PREC = 4
_ATOM_PREC = 5  # field names, function calls

_NO_TRUTH = (
    "an OData expression has no truth value: combine expressions with & (and), | (or) and "
    "~ (not) instead of Python's and/or/not, and pass them to Query.filter(); for membership "
    "use F.name.in_([...])"
)

_new = object.__new__
_T = TypeVar("_T")


class _Attribute(Generic[_T]):
    """A public, read-only attribute of a node, kept in the slot of the same name with a
    leading underscore (``op`` in ``_op``).

    Assigning to the attribute or deleting it raises
    :class:`attrs.exceptions.FrozenInstanceError`, as on a frozen attrs class. The node classes
    do not override ``__setattr__``, so their constructors (and the operators, which build most
    nodes) fill the slots with plain attribute writes: building nodes is most of the cost of
    building a filter, and a write through a frozen ``__setattr__`` costs several times as much.
    """

    __slots__ = ("_read",)

    def __set_name__(self, owner: type[Any], name: str) -> None:
        self._read: Callable[[Any], _T] = operator.attrgetter("_" + name)

    @overload
    def __get__(self, instance: None, owner: type[Any] | None = None) -> _Attribute[_T]: ...

    @overload
    def __get__(self, instance: Expr, owner: type[Any] | None = None) -> _T: ...

    def __get__(self, instance: Expr | None, owner: type[Any] | None = None) -> Any:
        return self if instance is None else self._read(instance)

    def __set__(self, instance: Expr, value: Never) -> NoReturn:
        raise attrs.exceptions.FrozenInstanceError

    def __delete__(self, instance: Expr) -> NoReturn:
        raise attrs.exceptions.FrozenInstanceError


def _typed(value: Any) -> Any:
    """Equality key for literal values: ``True``, ``1`` and ``1.0`` render differently."""
    return (type(value), value)


def _typed_all(values: tuple[Any, ...]) -> Any:
    return tuple((type(v), v) for v in values)


def _plain_string_error(what: str) -> TypeError:
    return TypeError(
        f"{what} got a plain string; build expressions with F (e.g. F.name == 'x'), or use "
        "Query.filter_raw(text) for pre-written OData text (not escaped, unsafe)"
    )


def _as_expr(value: Any, what: str) -> Expr:
    if isinstance(value, Expr):
        return value
    if isinstance(value, Field):
        return value.ref
    if isinstance(value, str):
        raise _plain_string_error(what)
    raise TypeError(f"{what} needs an OData expression (built with F), got {type(value).__name__}")


#: Every node class. ``type(x) in _NODE_CLASSES`` is the hot paths' test for "x is a node":
#: ``isinstance(x, Expr)`` costs several times as much once Expr has a metaclass.
_NODE_CLASSES: set[type] = set()


class _NodeType(type):
    """The metaclass of the filter nodes: keeps Python code out of making a node.

    A node class's ``__init__`` checks its arguments. The class is made without it (it is kept
    as ``_checked_init``), and calling the class runs it, so ``Comparison("eq", "carId", 7)``
    works and checks as usual. The operators, which make nearly all nodes and have checked
    their arguments already, make a blank node with ``type.__call__`` bound to the class (see
    :func:`_blank`): CPython's cheapest way to make an instance, about a third less work than
    ``object.__new__(cls)``, and making nodes is most of the cost of building a filter.
    """

    def __new__(
        mcs, name: str, bases: tuple[type, ...], namespace: dict[str, Any], **kwargs: Any
    ) -> _NodeType:
        init = namespace.pop("__init__", None)
        cls = super().__new__(mcs, name, bases, namespace, **kwargs)
        _NODE_CLASSES.add(cls)
        if init is not None:
            cls._checked_init = init  # type: ignore[attr-defined]
            parameters = list(inspect.signature(init).parameters.values())[1:]
            cls.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
        return cls

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        node = type.__call__(cls)
        cls._checked_init(node, *args, **kwargs)  # type: ignore[attr-defined]
        return node


_N = TypeVar("_N", bound="Expr")


def _blank(cls: type[_N]) -> Callable[[], _N]:
    """A function that makes a blank node of class ``cls`` (no slot set, no check run)."""
    make: Callable[[], _N] = type.__call__.__get__(cls)
    return make


class Expr(metaclass=_NodeType):
    """Base class of the filter nodes. Combine nodes with ``&``, ``|`` and ``~``.

    ``str(expr)`` is the decoded OData text, :meth:`encoded` the percent-encoded form. Using an
    expression as a Python truth value (``and``, ``or``, ``not``, ``if``) raises
    :class:`TypeError`.

    Nodes are immutable, compare equal when they are of the same class with equal attributes
    (literal values also of the same type), and hash accordingly.
    """

    __slots__ = ("_wire",)
    #: Binding strength in OData's precedence table (higher binds tighter).
    PRECEDENCE: ClassVar[int] = _ATOM_PREC
    #: The public attributes, in constructor order (also used by ``repr()``).
    __match_args__: ClassVar[tuple[str, ...]] = ()
    #: The percent-encoded text, written when the node is made.
    _wire: str

    def __init__(self) -> None:
        raise TypeError("Expr is the base class of the filter nodes; build expressions with F")

    def _key(self) -> tuple[Any, ...]:
        """What equality and hashing compare."""
        return ()

    def encoded(self) -> str:
        """The percent-encoded OData text of this expression."""
        return self._wire

    def __str__(self) -> str:
        return unquote(self._wire)

    def __repr__(self) -> str:
        name = type(self).__qualname__.rsplit(">.", 1)[-1]
        args = ", ".join(f"{field}={getattr(self, field)!r}" for field in self.__match_args__)
        return f"{name}({args})"

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, Expr)
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash((type(self), self._key()))

    def fields(self) -> Iterator[str]:
        """The wire names of the fields this expression references."""
        return iter(())

    if TYPE_CHECKING:
        # Defined below, once And and Or exist (see _junction_operator).
        def __and__(self, other: Expr | Field) -> And: ...
        def __or__(self, other: Expr | Field) -> Or: ...

    def __rand__(self, other: Any) -> And:
        return _and(_as_expr(other, "&"), self)

    def __ror__(self, other: Any) -> Or:
        return _or(_as_expr(other, "|"), self)

    def __invert__(self) -> Expr:
        node = _new_not()
        node._operand = self
        node._wire = _not_text(self)
        return node

    def __bool__(self) -> bool:
        raise TypeError(_NO_TRUTH)


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")


def _check_identifier(name: Any) -> None:
    if not isinstance(name, str) or _IDENTIFIER.fullmatch(name) is None:
        raise ValidationError("field", f"{name!r} is not a field name")


class FieldRef(Expr):
    """A field as an expression: a boolean field used as a condition
    (``Query().filter(F.active)``), or the right-hand side of a field-to-field comparison."""

    __slots__ = ("_name",)
    __match_args__ = ("name",)
    name: _Attribute[str] = _Attribute()
    _name: str

    def __init__(self, name: str) -> None:
        _check_identifier(name)
        self._name = self._wire = name

    def _key(self) -> tuple[Any, ...]:
        return (self._name,)

    def fields(self) -> Iterator[str]:
        yield self._name


_CMP_SEPARATORS = {op: f"%20{op}%20" for op in ("eq", "ne", "lt", "le", "gt", "ge")}


class Comparison(Expr):
    """``field op value``: ``op`` is one of ``eq ne lt le gt ge``; ``value`` is a Python value
    (rendered by :func:`literal`) or a :class:`FieldRef` (a field-to-field comparison)."""

    __slots__ = ("_field", "_op", "_value")
    __match_args__ = ("op", "field", "value")
    PRECEDENCE: ClassVar[int] = _CMP_PREC
    op: _Attribute[str] = _Attribute()
    field: _Attribute[str] = _Attribute()
    value: _Attribute[Any] = _Attribute()
    _op: str
    _field: str
    _value: Any

    def __init__(self, op: str, field: str, value: Any) -> None:
        # The Field operators build their nodes without this checking constructor.
        _check_identifier(field)
        if op not in _CMP_SEPARATORS:
            raise ValidationError("op", f"unknown comparison operator {op!r}")
        self._wire = _comparison_text(field, op, value)
        self._op = op
        self._field = field
        self._value = value

    def _key(self) -> tuple[Any, ...]:
        return (self._op, self._field, _typed(self._value))

    def fields(self) -> Iterator[str]:
        yield self._field
        if isinstance(self._value, FieldRef):
            yield self._value._name

    def __bool__(self) -> bool:
        # ``F.a == F.b`` compares the names, so fields work as dict keys and with ``in`` (Python
        # calls == on hash collisions and in ``x in list``); any other comparison raises.
        op = self._op
        if op in ("eq", "ne") and isinstance(self._value, FieldRef):
            return (self._field == self._value._name) is (op == "eq")
        raise TypeError(_NO_TRUTH)


def _comparison_text(field: str, op: str, value: Any) -> str:
    operand = value._name if isinstance(value, FieldRef) else _wire_literal(value, field)
    return field + _CMP_SEPARATORS[op] + operand


def _comparison_operator(op: str) -> Callable[[Field, Any], Comparison]:
    """The :class:`Field` method for ``op`` (``__eq__`` for ``"eq"``, ...)."""
    separator = _CMP_SEPARATORS[op]

    def compare(self: Field, value: Any) -> Comparison:
        # What _comparison_text() does, with the commonest literals (ints, None, ASCII
        # strings) written inline: this is on the hot path of building filters.
        field = self.name
        kind = type(value)
        if kind is int and 0 <= value < _INT_TEXT_END:
            wire = f"{field}{separator}{_INT_TEXT[value]}"
        elif kind is int and -_ONE_DIGIT < value < _ONE_DIGIT:
            wire = f"{field}{separator}{value}"
        elif value is None:
            wire = f"{field}{separator}null"
        elif kind is str and value.isascii():  # _lit_str(), inlined
            wire = f"{field}{separator}'{value.translate(_ASCII_LITERAL_BODY)}'"
        else:
            render = _LITERALS.get(kind)
            if render is not None:
                wire = f"{field}{separator}{render(value, field)}"
            else:
                if isinstance(value, Field):
                    value = value.ref
                operand = (value._name if isinstance(value, FieldRef)
                           else _wire_literal(value, field))
                wire = f"{field}{separator}{operand}"
        node = _new_comparison()
        node._op = op
        node._field = field
        node._value = value
        node._wire = wire
        return node

    compare.__name__ = compare.__qualname__ = f"__{op}__"
    compare.__doc__ = f"``name {op} value`` (a value, ``None`` or another field)."
    return compare


_FUNCTIONS = frozenset({"contains", "startswith", "endswith"})


def _call_text(function: str, field: str, value: Any) -> str:
    if isinstance(value, FieldRef):
        operand = value._name
    elif isinstance(value, str):
        operand = _lit_str(value, field)
    else:
        raise TypeError(f"{function}() needs a str (or a field), got {type(value).__name__}")
    return f"{function}({field},{operand})"


class Call(Expr):
    """A string function: ``contains(field,'x')``, ``startswith(...)`` or ``endswith(...)``."""

    __slots__ = ("_field", "_function", "_value")
    __match_args__ = ("function", "field", "value")
    function: _Attribute[str] = _Attribute()
    field: _Attribute[str] = _Attribute()
    value: _Attribute[str | FieldRef] = _Attribute()
    _function: str
    _field: str
    _value: str | FieldRef

    def __init__(self, function: str, field: str, value: str | FieldRef) -> None:
        _check_identifier(field)
        if function not in _FUNCTIONS:
            raise ValidationError("function", f"unsupported function {function!r}")
        self._wire = _call_text(function, field, value)
        self._function = function
        self._field = field
        self._value = value

    def _key(self) -> tuple[Any, ...]:
        return (self._function, self._field, self._value)

    def fields(self) -> Iterator[str]:
        yield self._field
        if isinstance(self._value, FieldRef):
            yield self._value._name


def _function_method(function: str) -> Callable[[Field, str | Field], Call]:
    """The :class:`Field` method for the string function ``function``."""

    def call(self: Field, value: str | Field) -> Call:
        field = self.name
        operand: str | FieldRef
        if type(value) is str:  # _call_text(), inlined for the common case
            operand = value
            wire = f"{function}({field},{_lit_str(value, field)})"
        else:
            operand = value.ref if isinstance(value, Field) else value
            wire = _call_text(function, field, operand)
        node = _new_call()
        node._wire = wire
        node._function = function
        node._field = field
        node._value = operand
        return node

    call.__name__ = call.__qualname__ = function
    call.__doc__ = f"``{function}(name,'value')`` (a str, or another field)."
    return call


def _in_text(field: str, values: tuple[Any, ...]) -> str:
    if not values:
        raise ValidationError(field, "in_() needs at least one value")
    operands = []
    for value in values:  # _wire_literal(), with the commonest case (an int) inlined
        if type(value) is int and 0 <= value < _INT_TEXT_END:
            operands.append(_INT_TEXT[value])
        elif type(value) is int and -_ONE_DIGIT < value < _ONE_DIGIT:
            operands.append(f"{value}")
        else:
            operands.append(_wire_literal(value, field))
    if len(operands) == 1:
        return f"{field}%20eq%20{operands[0]}"
    return f"{field}%20in%20({','.join(operands)})"


class In(Expr):
    """``field in (v1,v2,...)``. A single value is written ``field eq v``: the same meaning,
    and accepted by every parser (some read ``(v)`` as a parenthesised value, not a list)."""

    __slots__ = ("_field", "_values")
    __match_args__ = ("field", "values")
    PRECEDENCE: ClassVar[int] = _CMP_PREC
    field: _Attribute[str] = _Attribute()
    values: _Attribute[tuple[Any, ...]] = _Attribute()
    _field: str
    _values: tuple[Any, ...]

    def __init__(self, field: str, values: Iterable[Any]) -> None:
        items = tuple(values)
        _check_identifier(field)
        self._wire = _in_text(field, items)
        self._field = field
        self._values = items

    def _key(self) -> tuple[Any, ...]:
        return (self._field, _typed_all(self._values))

    def fields(self) -> Iterator[str]:
        yield self._field


def _not_text(operand: Expr) -> str:
    if operand.PRECEDENCE < _NOT_PREC:
        return f"not%20({operand._wire})"
    return f"not%20{operand._wire}"


class Not(Expr):
    """``not operand`` (build it with ``~``; ``~~x`` is ``x``)."""

    __slots__ = ("_operand",)
    __match_args__ = ("operand",)
    PRECEDENCE: ClassVar[int] = _NOT_PREC
    operand: _Attribute[Expr] = _Attribute()
    _operand: Expr

    def __init__(self, operand: Expr) -> None:
        if not isinstance(operand, Expr):
            operand = _as_expr(operand, "Not()")
        self._operand = operand
        self._wire = _not_text(operand)

    def _key(self) -> tuple[Any, ...]:
        return (self._operand,)

    def fields(self) -> Iterator[str]:
        return self._operand.fields()

    def __invert__(self) -> Expr:
        return self._operand


class _Junction(Expr):
    """What :class:`And` and :class:`Or` share: a flat tuple of operands."""

    __slots__ = ("_operands",)
    __match_args__ = ("operands",)
    SEPARATOR: ClassVar[str] = ""
    operands: _Attribute[tuple[Expr, ...]] = _Attribute()
    _operands: tuple[Expr, ...]

    def __init__(self, operands: Iterable[Expr]) -> None:
        name = type(self).__name__
        items = tuple([_as_expr(item, f"{name}()") for item in operands])
        if not items:
            raise ValidationError("operands", f"{name}() needs at least one operand")
        precedence = self.PRECEDENCE
        self._operands = items
        self._wire = self.SEPARATOR.join([
            node._wire if precedence <= node.PRECEDENCE else f"({node._wire})"
            for node in items
        ])

    def _key(self) -> tuple[Any, ...]:
        return (self._operands,)

    def fields(self) -> Iterator[str]:
        for operand in self._operands:
            yield from operand.fields()


class And(_Junction):
    """``a and b and ...`` (build it with ``&``)."""

    __slots__ = ()
    PRECEDENCE: ClassVar[int] = _AND_PREC
    SEPARATOR: ClassVar[str] = "%20and%20"


class Or(_Junction):
    """``a or b or ...`` (build it with ``|``)."""

    __slots__ = ()
    PRECEDENCE: ClassVar[int] = _OR_PREC
    SEPARATOR: ClassVar[str] = "%20or%20"


_J = TypeVar("_J", bound=_Junction)


def _junction_operator(cls: type[_J], symbol: str) -> Callable[[Expr, Any], _J]:
    """``left <op> right`` for ``cls`` (And or Or), flattening chains of the same operator:
    ``(a and b) and c`` is ``a and b and c``. It is :class:`Expr`'s ``&`` (``|``) operator.

    The text is written here, once: an operand needs parentheses only when it binds looser
    than ``cls``, and the text of a flattened chain is its operands' texts joined.
    """
    precedence = cls.PRECEDENCE
    separator = cls.SEPARATOR
    new = _blank(cls)

    def combine(left: Expr, right: Any) -> _J:
        if type(right) not in _NODE_CLASSES:
            right = _as_expr(right, symbol)
        left_wire = left._wire
        if type(left) is cls:  # a chain: its text needs no parentheses
            operands = left._operands
        else:
            operands = (left,)
            if precedence > left.PRECEDENCE:
                left_wire = f"({left_wire})"
        right_wire = right._wire
        if type(right) is cls:
            operands += right._operands
        else:
            operands += (right,)
            if precedence > right.PRECEDENCE:
                right_wire = f"({right_wire})"
        node = new()
        node._operands = operands
        node._wire = f"{left_wire}{separator}{right_wire}"
        return node

    combine.__name__ = combine.__qualname__ = "__or__" if cls.PRECEDENCE == _OR_PREC else "__and__"
    combine.__doc__ = f"``self {symbol} other``: an :class:`{cls.__name__}` node."
    return combine


_new_comparison = _blank(Comparison)
_new_call = _blank(Call)
_new_in = _blank(In)
_new_not = _blank(Not)
_and = _junction_operator(And, "&")
_or = _junction_operator(Or, "|")
# Expr declares these for type checkers only: the node classes they build come after it.
Expr.__and__ = _and  # type: ignore[method-assign]
Expr.__or__ = _or  # type: ignore[method-assign]


class Raw(Expr):
    """Pre-written OData filter text, inserted verbatim (percent-encoded for the URL).

    Made by :meth:`Query.filter_raw`. **Unsafe**: nothing in it is escaped or checked, and its
    fields are invisible to :meth:`Query.check_fields`. It is parenthesised when combined with
    other expressions.
    """

    __slots__ = ("_text",)
    __match_args__ = ("text",)
    PRECEDENCE: ClassVar[int] = _RAW_PREC
    text: _Attribute[str] = _Attribute()
    _text: str

    def __init__(self, text: str) -> None:
        if not isinstance(text, str):
            raise TypeError(f"raw filter text must be a str, got {type(text).__name__}")
        if not text.strip():
            raise ValidationError("filter", "raw filter text must not be empty")
        self._text = text
        self._wire = encode_component(text)

    def _key(self) -> tuple[Any, ...]:
        return (self._text,)


# ---------------------------------------------------------------------------------------------
# Fields
# ---------------------------------------------------------------------------------------------

# Names an OData parser reads as literals or operators, never as a field.
_RESERVED = frozenset({"null", "true", "false", "not", "inf", "nan"})


class Field:
    """A reference to a field by its wire name; get one from :data:`F`.

    Comparison operators build :class:`Comparison` nodes (``F.car_id == 7`` is ``carId eq 7``,
    ``F.end == None`` is ``end eq null``). ``&``, ``|`` and ``~`` treat the field itself as a
    boolean condition. Fields are immutable and hashable (by name). ``F.a == F.a`` used as a
    truth value is ``True``, so fields work as dict keys and with ``in``.
    """

    __slots__ = ("_hash", "name", "ref")

    name: str
    ref: FieldRef
    _hash: int

    def __init__(self, name: str) -> None:
        if not isinstance(name, str):
            raise TypeError(f"a field name must be a str, got {type(name).__name__}")
        wire = to_camel(name)
        if _IDENTIFIER.fullmatch(wire) is None:
            raise ValidationError(
                "field",
                f"{name!r} is not a field name (letters, digits and _, not starting with a digit)",
            )
        if wire.lower() in _RESERVED:
            raise ValidationError("field", f"{name!r} is an OData keyword, not a field name")
        object.__setattr__(self, "name", wire)
        object.__setattr__(self, "ref", FieldRef(wire))
        object.__setattr__(self, "_hash", hash(("flinkey_async.odata.Field", wire)))

    def __setattr__(self, name: str, value: Any) -> NoReturn:
        raise AttributeError("Field objects are immutable")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError("Field objects are immutable")

    def __repr__(self) -> str:
        return f"F.{self.name}"

    def __hash__(self) -> int:
        return self._hash

    def __reduce__(self) -> tuple[Any, ...]:
        return (Field, (self.name,))

    # Comparisons -------------------------------------------------------------------------
    __eq__ = _comparison_operator("eq")  # type: ignore[assignment]
    __ne__ = _comparison_operator("ne")  # type: ignore[assignment]
    __lt__ = _comparison_operator("lt")
    __le__ = _comparison_operator("le")
    __gt__ = _comparison_operator("gt")
    __ge__ = _comparison_operator("ge")

    # Functions ---------------------------------------------------------------------------
    contains = _function_method("contains")
    startswith = _function_method("startswith")
    endswith = _function_method("endswith")

    def in_(self, values: Iterable[Any]) -> In:
        """``name in (v1,v2,...)``; an empty list raises :class:`ValidationError`."""
        kind = type(values)
        if kind is not list and kind is not tuple and isinstance(values, (str, bytes)):
            raise TypeError("in_() needs a list of values, not a single string")
        field = self.name
        items = tuple(values)
        node = _new_in()
        node._wire = _in_text(field, items)
        node._field = field
        node._values = items
        return node

    # Boolean fields ----------------------------------------------------------------------
    def __and__(self, other: Any) -> And:
        return _and(self.ref, _as_expr(other, "&"))

    def __rand__(self, other: Any) -> And:
        return _and(_as_expr(other, "&"), self.ref)

    def __or__(self, other: Any) -> Or:
        return _or(self.ref, _as_expr(other, "|"))

    def __ror__(self, other: Any) -> Or:
        return _or(_as_expr(other, "|"), self.ref)

    def __invert__(self) -> Expr:
        return ~self.ref

    def __bool__(self) -> bool:
        raise TypeError(_NO_TRUTH)


class _Fields:
    """The type of :data:`F`: ``F.car_id``, ``F.carId`` and ``F["car_id"]`` are the same
    :class:`Field` object (wire name ``carId``)."""

    _cache: dict[str, Field]

    def __init__(self) -> None:
        object.__setattr__(self, "_cache", {})

    def __getattr__(self, name: str) -> Field:
        # Only called for a name not looked up before: the Field is then kept as an instance
        # attribute, so the next ``F.name`` is a plain attribute read.
        if name.startswith("_"):
            raise AttributeError(name)
        field = self[name]
        object.__setattr__(self, name, field)
        return field

    def __getitem__(self, name: str) -> Field:
        cache = self._cache
        found = cache.get(name)
        if found is None:
            field = Field(name)
            found = cache.setdefault(field.name, field)
            if len(cache) < 4096:  # names come from code, but bound the cache anyway
                cache[name] = found
        return found

    def __setattr__(self, name: str, value: Any) -> NoReturn:
        raise AttributeError("F is read-only")

    def __repr__(self) -> str:
        return "F"


#: Field references: ``F.car_id == 7`` renders ``carId eq 7``.
F = _Fields()
_FIELDS_BY_NAME = F._cache


# ---------------------------------------------------------------------------------------------
# Query
# ---------------------------------------------------------------------------------------------


def _field_name(field: str | Field, argument: str) -> str:
    if isinstance(field, Field):
        return field.name
    if isinstance(field, str):
        found = _FIELDS_BY_NAME.get(field)
        if found is not None:
            return found.name
        if " " in field.strip():
            raise ValidationError(
                argument, f"{field!r} is not a field name (for descending order use desc=True)"
            )
        return F[field.strip()].name
    raise TypeError(f"{argument} needs a field name (str) or F.<field>, got {type(field).__name__}")


def _check_count(value: Any, argument: str) -> int:
    if type(value) is not int or value < 0:
        raise ValidationError(argument, f"must be an int >= 0, got {value!r}")
    result: int = value
    return result


#: A query's options in the order they are written: ``$filter``, ``$orderby``, ``$select``,
#: ``$top``, ``$skip``, ``$count``.
_Options = tuple[
    Expr | None, tuple[tuple[str, bool], ...], tuple[str, ...], int | None, int | None, bool | None
]
_NO_OPTIONS: _Options = (None, (), (), None, None, None)


class Query:
    """OData query options (``$filter``, ``$orderby``, ``$select``, ``$top``, ``$skip``,
    ``$count``). Immutable: every method returns a new Query, so one Query can be shared and
    extended freely, also by concurrent tasks.

    ``str(query)`` (and :meth:`encoded`) is the percent-encoded query string without a leading
    ``?``, ready for ``yarl.URL(base + "?" + str(query), encoded=True)``; :meth:`to_params` gives
    the decoded name/value pairs. Queries with the same options are equal and hash alike.
    """

    # All options in one tuple (see _Options): a derived query then costs two slot writes, not
    # one per option. The slots are private; the options are read through the properties
    # below, which cannot be assigned, and no other attribute can be added.
    __slots__ = ("__weakref__", "_encoded", "_options")
    _options: _Options
    _encoded: str | None

    def __init__(self) -> None:
        """An empty query: no options."""
        self._options = _NO_OPTIONS
        self._encoded = None

    def __eq__(self, other: object) -> bool:
        if type(other) is not Query:
            return NotImplemented
        assert isinstance(other, Query)
        return self._options == other._options

    def __hash__(self) -> int:
        return hash(self._options)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_query, (self._options,))

    # Options ---------------------------------------------------------------------------
    def filter(self, expression: Expr | Field) -> Query:
        """Add a ``$filter`` condition; repeated calls are combined with ``and``.

        ``expression`` is built with :data:`F` (a boolean :class:`Field` also works). A plain
        string raises :class:`TypeError`: use :meth:`filter_raw` for pre-written text.
        """
        expr: Expr = (expression if type(expression) in _NODE_CLASSES  # type: ignore[assignment]
                      else _as_expr(expression, "filter()"))
        current, orderby, select, top, skip, count = self._options
        if current is not None:
            expr = _and(current, expr)
        return _query((expr, orderby, select, top, skip, count))

    def filter_raw(self, text: str) -> Query:
        """Add pre-written OData filter text in decoded form, e.g. ``"name eq 'x'"``.

        **Unsafe escape hatch**: the text is sent verbatim (only percent-encoded for the URL).
        Quotes in it are not doubled, nothing is checked, and :meth:`check_fields` cannot see
        the fields it uses. Prefer :meth:`filter` with :data:`F`. Combined with other conditions
        it is parenthesised.
        """
        return self.filter(Raw(text))

    def orderby(self, field: str | Field, desc: bool = False) -> Query:
        """Add a ``$orderby`` key (ascending unless ``desc=True``); repeat for more keys.

        ``field`` is a name (``"start"``, ``"renewable_after"``) or a field (``F.start``).
        """
        known = _FIELDS_BY_NAME.get(field) if type(field) is str else None
        name = known.name if known is not None else _field_name(field, "orderby")
        if desc is not True and desc is not False:
            raise ValidationError("desc", f"must be True or False, got {desc!r}")
        filter_, orderby, select, top, skip, count = self._options
        for existing, _ in orderby:
            if existing == name:
                raise ValidationError("orderby", f"already ordered by {name!r}")
        # Concatenation: cheaper than (*orderby, ...), which builds a list first.
        return _query((filter_, orderby + ((name, desc),), select, top, skip, count))  # noqa: RUF005

    def select(self, *fields: str | Field) -> Query:
        """Add fields to ``$select`` (the server then returns only those fields)."""
        if not fields:
            raise ValidationError("select", "select() needs at least one field")
        filter_, orderby, select, top, skip, count = self._options
        names = list(select)
        for field in fields:
            name = _field_name(field, "select")
            if name not in names:
                names.append(name)
        return _query((filter_, orderby, tuple(names), top, skip, count))

    def top(self, n: int) -> Query:
        """Set ``$top``: return at most ``n`` items (an int >= 0)."""
        filter_, orderby, select, _, skip, count = self._options
        return _query((filter_, orderby, select, _check_count(n, "top"), skip, count))

    def skip(self, n: int) -> Query:
        """Set ``$skip``: leave out the first ``n`` items (an int >= 0)."""
        filter_, orderby, select, top, _, count = self._options
        return _query((filter_, orderby, select, top, _check_count(n, "skip"), count))

    def count(self, value: bool = True) -> Query:
        """Set ``$count`` (flinkey returns bare arrays and may ignore this option)."""
        if value is not True and value is not False:
            raise ValidationError("count", f"must be True or False, got {value!r}")
        filter_, orderby, select, top, skip, _ = self._options
        return _query((filter_, orderby, select, top, skip, value))

    def with_page(self, skip: int, top: int) -> Query:
        """A copy with ``$skip`` and ``$top`` replaced: one page of a paged listing (see
        :class:`Pager`)."""
        filter_, orderby, select, _, _, count = self._options
        return _query((filter_, orderby, select, _check_count(top, "top"),
                       _check_count(skip, "skip"), count))

    # Read access -----------------------------------------------------------------------
    @property
    def filter_expression(self) -> Expr | None:
        """The combined ``$filter`` expression, or ``None``."""
        return self._options[0]

    @property
    def ordering(self) -> tuple[tuple[str, bool], ...]:
        """The ``$orderby`` keys as ``(wire_name, descending)`` pairs."""
        return self._options[1]

    @property
    def selected(self) -> tuple[str, ...]:
        """The ``$select`` fields (wire names)."""
        return self._options[2]

    @property
    def limit(self) -> int | None:
        """``$top``, or ``None``."""
        return self._options[3]

    @property
    def offset(self) -> int | None:
        """``$skip``, or ``None``."""
        return self._options[4]

    @property
    def count_requested(self) -> bool | None:
        """``$count``, or ``None`` when not set."""
        return self._options[5]

    # Output ----------------------------------------------------------------------------
    def encoded(self) -> str:
        """The percent-encoded query string, without a leading ``?`` (empty without options).

        Options come in a fixed order: ``$filter``, ``$orderby``, ``$select``, ``$top``,
        ``$skip``, ``$count``. Computed once per Query.
        """
        text = self._encoded
        if text is not None:
            return text
        filter_, orderby, select, top, skip, count = self._options
        parts = []
        if filter_ is not None:
            parts.append(f"$filter={filter_._wire}")
        if orderby:
            keys = []
            for name, desc in orderby:  # a loop: a comprehension would cost a function call
                keys.append(f"{name}%20desc" if desc else name)
            parts.append("$orderby=" + ",".join(keys))
        if select:
            parts.append("$select=" + ",".join(select))
        if top is not None:
            parts.append("$top=" + (_INT_TEXT[top] if top < _INT_TEXT_END else str(top)))
        if skip is not None:
            parts.append(f"$skip={skip}")
        if count is not None:
            parts.append("$count=true" if count else "$count=false")
        text = "&".join(parts)
        self._encoded = text
        return text

    __str__ = encoded

    def to_params(self) -> list[tuple[str, str]]:
        """The options as ``(name, decoded value)`` pairs, in the order of :meth:`encoded`."""
        text = self.encoded()
        if not text:
            return []
        pairs = []
        for part in text.split("&"):  # "&" and "=" inside values are always encoded
            name, _, value = part.partition("=")
            pairs.append((name, unquote(value)))
        return pairs

    def __repr__(self) -> str:
        return f"Query({'&'.join(f'{n}={v}' for n, v in self.to_params())!r})"

    # Field checks ----------------------------------------------------------------------
    def fields(self) -> set[str]:
        """The wire names of all fields referenced in ``$filter``, ``$orderby`` and ``$select``
        (text added with :meth:`filter_raw` is not inspected)."""
        filter_, orderby, select, *_ = self._options
        names = set(select)
        names.update(name for name, _ in orderby)
        if filter_ is not None:
            names.update(filter_.fields())
        return names

    def check_fields(self, allowed: Collection[str], resource: str) -> None:
        """Raise :class:`ValidationError` (argument ``"query"``) if the query references a field
        not in ``allowed`` (wire names), suggesting close matches::

            query: unknown field 'carid' for car assignments; known: end, id, start, userId
        """
        known = set(allowed)
        unknown = sorted(self.fields() - known)
        if not unknown:
            return
        listing = ", ".join(sorted(known))
        messages = [
            f"unknown field {name!r} for {resource}{_suggest(name, known)}; known: {listing}"
            for name in unknown
        ]
        raise ValidationError("query", "; ".join(messages))


def _query(options: _Options) -> Query:
    """A Query with ``options``."""
    query: Query = _new(Query)
    query._options = options
    query._encoded = None
    return query


def _suggest(name: str, known: Collection[str]) -> str:
    by_lower = {k.lower(): k for k in known}
    if name.lower() in by_lower:
        return f" (did you mean {by_lower[name.lower()]!r}?)"
    close = difflib.get_close_matches(name, sorted(known), n=3, cutoff=0.6)
    if not close:
        return ""
    return " (did you mean " + " or ".join(repr(c) for c in close) + "?)"


def model_fields(cls: type[Any]) -> frozenset[str]:
    """The wire names of an attrs model's fields, for :meth:`Query.check_fields`
    (``CarAssignment`` -> ``{"id", "userId", "start", "end"}``)."""
    return frozenset(wire_name(a) for a in attrs.fields(cls))


# ---------------------------------------------------------------------------------------------
# Paging
# ---------------------------------------------------------------------------------------------


class Pager:
    """Per-page queries for walking a list with ``$top``/``$skip`` (pure bookkeeping).

    The caller's ``$skip`` is where the first page starts; the caller's ``$top`` is an overall
    limit on the number of items, not a page size. Every other option (filter, ordering, select,
    count) is kept on every page. Iteration ends after a page shorter than requested, or when
    the overall limit is reached. The network layer does::

        pager = Pager(query, page_size=100)
        while (page_query := pager.next_query()) is not None:
            items = await fetch(page_query)
            for item in items[: pager.feed(len(items))]:
                yield item

    :meth:`feed` returns how many of the received items belong to the result, so a server that
    ignored ``$top`` and sent more cannot push the result past the limit. Order by a stable key
    (``orderby``) when paging through data that may change meanwhile.
    """

    __slots__ = ("_asked", "_base", "_done", "_offset", "_page_size", "_remaining")

    def __init__(self, query: Query | None, page_size: int) -> None:
        if type(page_size) is not int or page_size < 1:
            raise ValidationError("page_size", f"must be an int >= 1, got {page_size!r}")
        if query is not None and not isinstance(query, Query):
            raise TypeError(f"query must be a Query or None, got {type(query).__name__}")
        self._base = query if query is not None else Query()
        self._page_size = page_size
        self._offset = self._base.offset or 0
        self._remaining = self._base.limit
        self._done = self._remaining == 0
        self._asked: int | None = None

    @property
    def done(self) -> bool:
        """``True`` once no further page should be requested."""
        return self._done

    def next_query(self) -> Query | None:
        """The query for the next page, or ``None`` when the iteration is over.

        Call :meth:`feed` with the page's item count before asking for the next page.
        """
        if self._done:
            return None
        if self._asked is not None:
            raise RuntimeError("feed() the previous page's item count before the next query")
        top = self._page_size
        if self._remaining is not None:
            top = min(top, self._remaining)
        self._asked = top
        return self._base.with_page(self._offset, top)

    def feed(self, count: int) -> int:
        """Record that the last page returned ``count`` items; returns how many to keep."""
        asked = self._asked
        if asked is None:
            raise RuntimeError("feed() called without a pending next_query()")
        _check_count(count, "count")
        self._asked = None
        keep = min(count, asked)
        self._offset += keep
        if self._remaining is not None:
            self._remaining -= keep
            if self._remaining <= 0:
                self._done = True
        if count < asked:
            self._done = True
        return keep
