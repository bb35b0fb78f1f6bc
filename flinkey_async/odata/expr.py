"""Filter expressions: an immutable tree of small nodes, and the fields that build them.

Filters are built from fields and Python operators (``F.car_id == 7``, ``&`` for and, ``|`` for
or, ``~`` for not), never by gluing strings together. Each node is a frozen attrs class:
:class:`Comparison`, :class:`And`, :class:`Or`, :class:`Not`, :class:`In`, :class:`Call`,
:class:`FieldRef` and :class:`Raw`.

A node's percent-encoded text is written by one function (:func:`_render`) from its operands'
texts, and kept on the node. The rule is the same for every node: the OData operator precedence
(``or`` < ``and`` < comparisons and ``in`` < ``not``), and the fewest parentheses that keep the
meaning: ``(a or b) and c`` keeps its parentheses, ``a or b and c`` needs none, ``not (a eq 1)``
gets them, and chains of the same operator are flattened (``a & b & c`` is one :class:`And` of
three operands). Raw text binds loosest of all: it is parenthesised whenever it is combined with
anything.

The leaves (comparisons, ``in``, function calls, field references, raw text) are written when
they are made, so a literal that cannot be written raises where the comparison is written.
``and``, ``or`` and ``not`` are written when their text is first asked for (:meth:`Expr.encoded`,
``str()``): ``a & b & c`` makes an :class:`And` per ``&``, and usually only the last one is
written. Extending a shared filter never writes its operands again. Nodes are immutable and safe
to share between tasks (two tasks writing a node's text at once write the same text). Using one
as a Python truth value (``and``, ``or``, ``not``, ``if``) raises :class:`TypeError`: Python would
silently drop half of the condition.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any, ClassVar, NoReturn
from urllib.parse import unquote

import attrs

from .._converter import to_camel
from ..errors import ValidationError
from .encoding import encode_component, wire_literal

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
    "Raw",
    "as_expr",
]

# Operator precedence, loosest first (higher binds tighter).
_RAW_PREC = 0
_OR_PREC = 1
_AND_PREC = 2
_CMP_PREC = 3  # eq ne lt le gt ge, and in (some servers parse "in" at this level)
_NOT_PREC = 4
_ATOM_PREC = 5  # field names, function calls

_COMPARISON_OPERATORS = frozenset({"eq", "ne", "lt", "le", "gt", "ge"})
_FUNCTIONS = frozenset({"contains", "startswith", "endswith"})
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
# Names an OData parser reads as literals or operators, never as a field.
_RESERVED = frozenset({"null", "true", "false", "not", "inf", "nan"})

_NO_TRUTH = (
    "an OData expression has no truth value: combine expressions with & (and), | (or) and "
    "~ (not) instead of Python's and/or/not, and pass them to Query.filter(); for membership "
    "use F.name.in_([...])"
)


# ---------------------------------------------------------------------------------------------
# Checks and conversions shared by the nodes
# ---------------------------------------------------------------------------------------------

#: Names known to be identifiers: the wire name of every field (its FieldRef puts it here) and
#: other names checked before, up to a bound. A field's name is then checked by a set lookup.
_IDENTIFIERS: set[str] = set()
_IDENTIFIERS_MAX = 4096


def _check_identifier(name: Any) -> None:
    """Raise :class:`ValidationError` unless ``name`` is an OData identifier. The nodes call it
    for a name not in :data:`_IDENTIFIERS` (``type(name) is not str or name not in ...``)."""
    if not isinstance(name, str) or _IDENTIFIER.fullmatch(name) is None:
        raise ValidationError("field", f"{name!r} is not a field name")
    if type(name) is str and len(_IDENTIFIERS) < _IDENTIFIERS_MAX:
        _IDENTIFIERS.add(name)


def _typed(value: Any) -> Any:
    """Equality key for literal values: ``True``, ``1`` and ``1.0`` render differently."""
    return (type(value), value)


def _typed_all(values: tuple[Any, ...]) -> Any:
    return tuple(_typed(value) for value in values)


def as_expr(value: Any, what: str) -> Expr:
    """``value`` as an expression (a :class:`Field` becomes its :class:`FieldRef`); anything
    else raises :class:`TypeError` naming ``what`` (the operator or method it was given to)."""
    if isinstance(value, Expr):
        return value
    if isinstance(value, Field):
        return value.ref
    if isinstance(value, str):
        raise TypeError(
            f"{what} got a plain string; build expressions with F (e.g. F.name == 'x'), or use "
            "Query.filter_raw(text) for pre-written OData text (not escaped, unsafe)"
        )
    raise TypeError(f"{what} needs an OData expression (built with F), got {type(value).__name__}")


# ---------------------------------------------------------------------------------------------
# The nodes
# ---------------------------------------------------------------------------------------------

# The nodes are frozen attrs classes with an instance dict (slots=False) and their own __init__:
# it checks the arguments and writes the attributes into the instance's __dict__, as the
# __init__ that attrs generates for a frozen class with a dict does. (On a slotted frozen class
# each attribute costs an object.__setattr__ call, several times a dict store; a filter makes a
# node per comparison and per & or |.)


class Expr:
    """Base class of the filter nodes. Combine nodes with ``&``, ``|`` and ``~``.

    ``str(expr)`` is the decoded OData text, :meth:`encoded` the percent-encoded form. Using an
    expression as a Python truth value (``and``, ``or``, ``not``, ``if``) raises
    :class:`TypeError`.

    Nodes are immutable, compare equal when they are of the same class with equal attributes
    (literal values also of the same type), and hash accordingly.
    """

    #: Binding strength in OData's precedence table (higher binds tighter).
    PRECEDENCE: ClassVar[int] = _ATOM_PREC
    #: What this is, for the literal renderer's error message (it cannot import this module).
    ODATA_ROLE: ClassVar[str] = "expression"
    #: The percent-encoded text, once :func:`_render` has written it (into the instance's
    #: ``__dict__``; until then this class attribute is read). A cache, not an attrs field: it
    #: takes no part in equality, hashing or repr.
    _wire: ClassVar[str | None] = None

    def __init__(self) -> None:
        raise TypeError("Expr is the base class of the filter nodes; build expressions with F")

    def encoded(self) -> str:
        """The percent-encoded OData text of this expression."""
        wire = self._wire
        if wire is None:
            wire = self.__dict__["_wire"] = _render(self)
        return wire

    def __str__(self) -> str:
        return unquote(self.encoded())

    def fields(self) -> Iterator[str]:
        """The wire names of the fields this expression references."""
        return iter(())

    def __and__(self, other: Expr | Field) -> And:
        if not isinstance(other, Expr):
            other = as_expr(other, "&")
        return And(_joined(And, self, other))

    def __rand__(self, other: Any) -> And:
        return And(_joined(And, as_expr(other, "&"), self))

    def __or__(self, other: Expr | Field) -> Or:
        if not isinstance(other, Expr):
            other = as_expr(other, "|")
        return Or(_joined(Or, self, other))

    def __ror__(self, other: Any) -> Or:
        return Or(_joined(Or, as_expr(other, "|"), self))

    def __invert__(self) -> Expr:
        return Not(self)

    def __bool__(self) -> bool:
        raise TypeError(_NO_TRUTH)


# The leaves: checked and written when they are made.


@attrs.frozen(init=False, slots=False)
class FieldRef(Expr):
    """A field as an expression: a boolean field used as a condition
    (``Query().filter(F.active)``), or the right-hand side of a field-to-field comparison."""

    ODATA_ROLE: ClassVar[str] = "field"
    name: str

    def __init__(self, name: str) -> None:
        if type(name) is not str or name not in _IDENTIFIERS:
            _check_identifier(name)
        state = self.__dict__
        state["name"] = name
        state["_wire"] = _render(self)

    def fields(self) -> Iterator[str]:
        yield self.name


@attrs.frozen(init=False, slots=False)
class Comparison(Expr):
    """``field op value``: ``op`` is one of ``eq ne lt le gt ge``; ``value`` is a Python value
    (rendered by :func:`~flinkey_async.odata.literal`) or a :class:`FieldRef` (a field-to-field
    comparison)."""

    PRECEDENCE: ClassVar[int] = _CMP_PREC
    op: str
    field: str
    value: Any = attrs.field(eq=_typed)

    def __init__(self, op: str, field: str, value: Any) -> None:
        if op not in _COMPARISON_OPERATORS:
            raise ValidationError("op", f"unknown comparison operator {op!r}")
        if type(field) is not str or field not in _IDENTIFIERS:
            _check_identifier(field)
        state = self.__dict__
        state["op"] = op
        state["field"] = field
        state["value"] = value
        state["_wire"] = _render(self)

    def fields(self) -> Iterator[str]:
        yield self.field
        if isinstance(self.value, FieldRef):
            yield self.value.name

    def __bool__(self) -> bool:
        # ``F.a == F.b`` compares the names, so fields work as dict keys and with ``in`` (Python
        # calls == on hash collisions and in ``x in list``); any other comparison raises.
        if self.op in ("eq", "ne") and isinstance(self.value, FieldRef):
            return (self.field == self.value.name) is (self.op == "eq")
        raise TypeError(_NO_TRUTH)


@attrs.frozen(init=False, slots=False)
class Call(Expr):
    """A string function: ``contains(field,'x')``, ``startswith(...)`` or ``endswith(...)``."""

    function: str
    field: str
    value: str | FieldRef

    def __init__(self, function: str, field: str, value: str | FieldRef) -> None:
        if function not in _FUNCTIONS:
            raise ValidationError("function", f"unsupported function {function!r}")
        if type(field) is not str or field not in _IDENTIFIERS:
            _check_identifier(field)
        state = self.__dict__
        state["function"] = function
        state["field"] = field
        state["value"] = value
        state["_wire"] = _render(self)

    def fields(self) -> Iterator[str]:
        yield self.field
        if isinstance(self.value, FieldRef):
            yield self.value.name


@attrs.frozen(init=False, slots=False)
class In(Expr):
    """``field in (v1,v2,...)``. A single value is written ``field eq v``: the same meaning,
    and accepted by every parser (some read ``(v)`` as a parenthesised value, not a list)."""

    PRECEDENCE: ClassVar[int] = _CMP_PREC
    field: str
    values: tuple[Any, ...] = attrs.field(eq=_typed_all)

    def __init__(self, field: str, values: Iterable[Any]) -> None:
        values = tuple(values)
        if type(field) is not str or field not in _IDENTIFIERS:
            _check_identifier(field)
        state = self.__dict__
        state["field"] = field
        state["values"] = values
        state["_wire"] = _render(self)

    def fields(self) -> Iterator[str]:
        yield self.field


@attrs.frozen(init=False, slots=False)
class Raw(Expr):
    """Pre-written OData filter text, inserted verbatim (percent-encoded for the URL).

    Made by :meth:`Query.filter_raw`. **Unsafe**: nothing in it is escaped or checked, and its
    fields are invisible to :meth:`Query.check_fields`. It is parenthesised when combined with
    other expressions.
    """

    PRECEDENCE: ClassVar[int] = _RAW_PREC
    text: str

    def __init__(self, text: str) -> None:
        if not isinstance(text, str):
            raise TypeError(f"raw filter text must be a str, got {type(text).__name__}")
        if not text.strip():
            raise ValidationError("filter", "raw filter text must not be empty")
        state = self.__dict__
        state["text"] = text
        state["_wire"] = _render(self)


# ``not``, ``and`` and ``or``: operands checked when they are made, text written on first use.


@attrs.frozen(init=False, slots=False)
class Not(Expr):
    """``not operand`` (build it with ``~``; ``~~x`` is ``x``)."""

    PRECEDENCE: ClassVar[int] = _NOT_PREC
    operand: Expr

    def __init__(self, operand: Expr | Field) -> None:
        if not isinstance(operand, Expr):
            operand = as_expr(operand, "Not()")
        self.__dict__["operand"] = operand

    def fields(self) -> Iterator[str]:
        return self.operand.fields()

    def __invert__(self) -> Expr:
        return self.operand


class _Operands(tuple[Expr, ...]):
    """A junction's operands, each one checked (a node) when it joined: by the junction's
    constructor, or by ``&``/``|`` for the one new operand (see :func:`_joined`)."""

    __slots__ = ()


@attrs.frozen(init=False, slots=False)
class _Junction(Expr):
    """What :class:`And` and :class:`Or` share: a flat tuple of operands."""

    #: The operator between the operands, percent-encoded.
    SEPARATOR: ClassVar[str] = ""
    operands: tuple[Expr, ...]

    def __init__(self, operands: Iterable[Expr | Field]) -> None:
        # Operands joined by & or | come checked; any others are checked here, one by one.
        if type(operands) is not _Operands:
            name = type(self).__name__
            operands = _Operands([as_expr(item, f"{name}()") for item in operands])
            if not operands:
                raise ValidationError("operands", f"{name}() needs at least one operand")
        self.__dict__["operands"] = operands

    def fields(self) -> Iterator[str]:
        for operand in self.operands:
            yield from operand.fields()


@attrs.frozen(init=False, slots=False)
class And(_Junction):
    """``a and b and ...`` (build it with ``&``)."""

    PRECEDENCE: ClassVar[int] = _AND_PREC
    SEPARATOR: ClassVar[str] = "%20and%20"


@attrs.frozen(init=False, slots=False)
class Or(_Junction):
    """``a or b or ...`` (build it with ``|``)."""

    PRECEDENCE: ClassVar[int] = _OR_PREC
    SEPARATOR: ClassVar[str] = "%20or%20"


def _joined(cls: type[_Junction], left: Expr, right: Expr) -> _Operands:
    """The operands of ``left <cls> right`` (both checked already), with chains of the same
    operator flattened: ``(a and b) and c`` is ``a and b and c``. O(1) apart from the tuple
    concatenation: the operands of a chain are not checked again when it is extended."""
    left_items = left.operands if isinstance(left, cls) else (left,)
    right_items = right.operands if isinstance(right, cls) else (right,)
    return _Operands(left_items + right_items)


# ---------------------------------------------------------------------------------------------
# The renderer
# ---------------------------------------------------------------------------------------------


def _render(node: Expr) -> str:
    """The percent-encoded text of ``node``; the texts of its operands are written first if
    they have not been."""
    if isinstance(node, Comparison):
        field = node.field
        value = node.value
        operand = value.name if isinstance(value, FieldRef) else wire_literal(value, field)
        return f"{field}%20{node.op}%20{operand}"
    if isinstance(node, _Junction):
        precedence = node.PRECEDENCE
        texts = []
        for item in node.operands:
            text = item._wire or item.encoded()
            texts.append(f"({text})" if precedence > item.PRECEDENCE else text)
        return node.SEPARATOR.join(texts)
    if isinstance(node, Not):
        inner = node.operand
        wire = inner._wire or inner.encoded()
        return f"not%20({wire})" if node.PRECEDENCE > inner.PRECEDENCE else "not%20" + wire
    if isinstance(node, In):
        field = node.field
        if not node.values:
            raise ValidationError(field, "in_() needs at least one value")
        literals = [wire_literal(value, field) for value in node.values]
        if len(literals) == 1:
            return f"{field}%20eq%20{literals[0]}"
        return f"{field}%20in%20({','.join(literals)})"
    if isinstance(node, Call):
        value = node.value
        if isinstance(value, FieldRef):
            argument = value.name
        elif isinstance(value, str):
            argument = wire_literal(value, node.field)
        else:
            raise TypeError(
                f"{node.function}() needs a str (or a field), got {type(value).__name__}"
            )
        return f"{node.function}({node.field},{argument})"
    if isinstance(node, FieldRef):
        return node.name
    if isinstance(node, Raw):
        return encode_component(node.text)
    raise TypeError(f"not a filter node: {node!r}")


# ---------------------------------------------------------------------------------------------
# Fields
# ---------------------------------------------------------------------------------------------


@attrs.frozen(init=False, eq=False, repr=False)
class Field:
    """A reference to a field by its wire name; get one from :data:`F`.

    Comparison operators build :class:`Comparison` nodes (``F.car_id == 7`` is ``carId eq 7``,
    ``F.end == None`` is ``end eq null``). ``&``, ``|`` and ``~`` treat the field itself as a
    boolean condition. Fields are immutable and hashable (by name). ``F.a == F.a`` used as a
    truth value is ``True``, so fields work as dict keys and with ``in``.
    """

    name: str
    ref: FieldRef
    #: What this is, for the literal renderer's error message.
    ODATA_ROLE: ClassVar[str] = "field"

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
        self.__attrs_init__(wire, FieldRef(wire))

    def __repr__(self) -> str:
        return f"F.{self.name}"

    def __hash__(self) -> int:
        return hash((Field, self.name))

    # Comparisons (the right-hand side is a value, or another field: then its FieldRef) -----
    def __eq__(self, value: object) -> Comparison:  # type: ignore[override]
        """``name eq value`` (a value, ``None`` or another field)."""
        return Comparison("eq", self.name, value.ref if isinstance(value, Field) else value)

    def __ne__(self, value: object) -> Comparison:  # type: ignore[override]
        """``name ne value`` (a value, ``None`` or another field)."""
        return Comparison("ne", self.name, value.ref if isinstance(value, Field) else value)

    def __lt__(self, value: Any) -> Comparison:
        """``name lt value`` (a value or another field)."""
        return Comparison("lt", self.name, value.ref if isinstance(value, Field) else value)

    def __le__(self, value: Any) -> Comparison:
        """``name le value`` (a value or another field)."""
        return Comparison("le", self.name, value.ref if isinstance(value, Field) else value)

    def __gt__(self, value: Any) -> Comparison:
        """``name gt value`` (a value or another field)."""
        return Comparison("gt", self.name, value.ref if isinstance(value, Field) else value)

    def __ge__(self, value: Any) -> Comparison:
        """``name ge value`` (a value or another field)."""
        return Comparison("ge", self.name, value.ref if isinstance(value, Field) else value)

    # Functions ---------------------------------------------------------------------------
    def contains(self, value: str | Field) -> Call:
        """``contains(name,'value')`` (a str, or another field)."""
        return Call("contains", self.name, value.ref if isinstance(value, Field) else value)

    def startswith(self, value: str | Field) -> Call:
        """``startswith(name,'value')`` (a str, or another field)."""
        return Call("startswith", self.name, value.ref if isinstance(value, Field) else value)

    def endswith(self, value: str | Field) -> Call:
        """``endswith(name,'value')`` (a str, or another field)."""
        return Call("endswith", self.name, value.ref if isinstance(value, Field) else value)

    def in_(self, values: Iterable[Any]) -> In:
        """``name in (v1,v2,...)``; an empty list raises :class:`ValidationError`."""
        if isinstance(values, (str, bytes)):
            raise TypeError("in_() needs a list of values, not a single string")
        return In(self.name, values)

    # Boolean fields ----------------------------------------------------------------------
    def __and__(self, other: Any) -> And:
        return self.ref & as_expr(other, "&")

    def __rand__(self, other: Any) -> And:
        return as_expr(other, "&") & self.ref

    def __or__(self, other: Any) -> Or:
        return self.ref | as_expr(other, "|")

    def __ror__(self, other: Any) -> Or:
        return as_expr(other, "|") | self.ref

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
        # attribute, so the next ``F.name`` is a plain attribute read, not a failed lookup.
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
            # One object per wire name; the spelling used is remembered too, unless the cache
            # has grown large (names come from code, but bound the cache anyway).
            found = cache.setdefault(field.name, field)
            if len(cache) < 4096:
                cache[name] = found
        return found

    def __setattr__(self, name: str, value: Any) -> NoReturn:
        raise AttributeError("F is read-only")

    def __repr__(self) -> str:
        return "F"


#: Field references: ``F.car_id == 7`` renders ``carId eq 7``.
F = _Fields()
