"""Filter expressions: an immutable tree of small nodes, and the fields that build them.

Filters are built from fields and Python operators (``F.car_id == 7``, ``&`` for and, ``|`` for
or, ``~`` for not), never by gluing strings together. Each node is a frozen attrs class:
:class:`Comparison`, :class:`And`, :class:`Or`, :class:`Not`, :class:`In`, :class:`Call`,
:class:`FieldRef` and :class:`Raw`.

A node's percent-encoded text is written once, when the node is made, by one function
(:func:`_render`) from its operands' texts. The rule is the same for every node: the OData
operator precedence (``or`` < ``and`` < comparisons and ``in`` < ``not``), and the fewest
parentheses that keep the meaning: ``(a or b) and c`` keeps its parentheses, ``a or b and c``
needs none, ``not (a eq 1)`` gets them, and chains of the same operator are flattened
(``a & b & c`` is one :class:`And` of three operands). Raw text binds loosest of all: it is
parenthesised whenever it is combined with anything.

Because the text is made with the node, a literal that cannot be written raises where the
comparison is written, and extending a shared filter never renders it again. Nodes are
immutable and safe to share between tasks. Using one as a Python truth value (``and``, ``or``,
``not``, ``if``) raises :class:`TypeError`: Python would silently drop half of the condition.
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


def _check_identifier(instance: Any, attribute: Any, name: Any) -> None:
    """attrs validator: ``name`` is an OData identifier."""
    if not isinstance(name, str) or _IDENTIFIER.fullmatch(name) is None:
        raise ValidationError("field", f"{name!r} is not a field name")


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


def _not_operand(value: Any) -> Expr:
    return as_expr(value, "Not()")


# ---------------------------------------------------------------------------------------------
# The nodes
# ---------------------------------------------------------------------------------------------


@attrs.frozen(init=False)
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
    #: The percent-encoded text, written by :func:`_render` when the node is made.
    _wire: str = attrs.field(init=False, eq=False, repr=False)

    def __init__(self) -> None:
        raise TypeError("Expr is the base class of the filter nodes; build expressions with F")

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "_wire", _render(self))

    def encoded(self) -> str:
        """The percent-encoded OData text of this expression."""
        return self._wire

    def __str__(self) -> str:
        return unquote(self._wire)

    def fields(self) -> Iterator[str]:
        """The wire names of the fields this expression references."""
        return iter(())

    def __and__(self, other: Expr | Field) -> And:
        return And(_chain(And, self, as_expr(other, "&")))

    def __rand__(self, other: Any) -> And:
        return And(_chain(And, as_expr(other, "&"), self))

    def __or__(self, other: Expr | Field) -> Or:
        return Or(_chain(Or, self, as_expr(other, "|")))

    def __ror__(self, other: Any) -> Or:
        return Or(_chain(Or, as_expr(other, "|"), self))

    def __invert__(self) -> Expr:
        return Not(self)

    def __bool__(self) -> bool:
        raise TypeError(_NO_TRUTH)


@attrs.frozen
class FieldRef(Expr):
    """A field as an expression: a boolean field used as a condition
    (``Query().filter(F.active)``), or the right-hand side of a field-to-field comparison."""

    name: str = attrs.field(validator=_check_identifier)

    def fields(self) -> Iterator[str]:
        yield self.name


def _check_comparison_operator(instance: Any, attribute: Any, op: Any) -> None:
    if op not in _COMPARISON_OPERATORS:
        raise ValidationError("op", f"unknown comparison operator {op!r}")


@attrs.frozen
class Comparison(Expr):
    """``field op value``: ``op`` is one of ``eq ne lt le gt ge``; ``value`` is a Python value
    (rendered by :func:`~flinkey_async.odata.literal`) or a :class:`FieldRef` (a field-to-field
    comparison)."""

    PRECEDENCE: ClassVar[int] = _CMP_PREC
    op: str = attrs.field(validator=_check_comparison_operator)
    field: str = attrs.field(validator=_check_identifier)
    value: Any = attrs.field(eq=_typed)

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


def _check_function(instance: Any, attribute: Any, function: Any) -> None:
    if function not in _FUNCTIONS:
        raise ValidationError("function", f"unsupported function {function!r}")


@attrs.frozen
class Call(Expr):
    """A string function: ``contains(field,'x')``, ``startswith(...)`` or ``endswith(...)``."""

    function: str = attrs.field(validator=_check_function)
    field: str = attrs.field(validator=_check_identifier)
    value: str | FieldRef

    def fields(self) -> Iterator[str]:
        yield self.field
        if isinstance(self.value, FieldRef):
            yield self.value.name


def _values(values: Iterable[Any]) -> tuple[Any, ...]:
    return tuple(values)


@attrs.frozen
class In(Expr):
    """``field in (v1,v2,...)``. A single value is written ``field eq v``: the same meaning,
    and accepted by every parser (some read ``(v)`` as a parenthesised value, not a list)."""

    PRECEDENCE: ClassVar[int] = _CMP_PREC
    field: str = attrs.field(validator=_check_identifier)
    values: tuple[Any, ...] = attrs.field(converter=_values, eq=_typed_all)

    def fields(self) -> Iterator[str]:
        yield self.field


@attrs.frozen
class Not(Expr):
    """``not operand`` (build it with ``~``; ``~~x`` is ``x``)."""

    PRECEDENCE: ClassVar[int] = _NOT_PREC
    operand: Expr = attrs.field(converter=_not_operand)

    def fields(self) -> Iterator[str]:
        return self.operand.fields()

    def __invert__(self) -> Expr:
        return self.operand


def _operand_tuple(operands: Iterable[Expr | Field]) -> tuple[Expr, ...]:
    return tuple([item.ref if isinstance(item, Field) else item for item in operands])


def _check_operands(instance: Any, attribute: Any, operands: tuple[Any, ...]) -> None:
    name = type(instance).__name__
    for item in operands:
        if not isinstance(item, Expr):
            as_expr(item, f"{name}()")  # raises: not an expression
    if not operands:
        raise ValidationError("operands", f"{name}() needs at least one operand")


@attrs.frozen
class _Junction(Expr):
    """What :class:`And` and :class:`Or` share: a flat tuple of operands."""

    #: The operator between the operands, percent-encoded.
    SEPARATOR: ClassVar[str] = ""
    operands: tuple[Expr, ...] = attrs.field(converter=_operand_tuple, validator=_check_operands)

    def fields(self) -> Iterator[str]:
        for operand in self.operands:
            yield from operand.fields()


@attrs.frozen
class And(_Junction):
    """``a and b and ...`` (build it with ``&``)."""

    PRECEDENCE: ClassVar[int] = _AND_PREC
    SEPARATOR: ClassVar[str] = "%20and%20"


@attrs.frozen
class Or(_Junction):
    """``a or b or ...`` (build it with ``|``)."""

    PRECEDENCE: ClassVar[int] = _OR_PREC
    SEPARATOR: ClassVar[str] = "%20or%20"


def _check_raw_text(instance: Any, attribute: Any, text: Any) -> None:
    if not isinstance(text, str):
        raise TypeError(f"raw filter text must be a str, got {type(text).__name__}")
    if not text.strip():
        raise ValidationError("filter", "raw filter text must not be empty")


@attrs.frozen
class Raw(Expr):
    """Pre-written OData filter text, inserted verbatim (percent-encoded for the URL).

    Made by :meth:`Query.filter_raw`. **Unsafe**: nothing in it is escaped or checked, and its
    fields are invisible to :meth:`Query.check_fields`. It is parenthesised when combined with
    other expressions.
    """

    PRECEDENCE: ClassVar[int] = _RAW_PREC
    text: str = attrs.field(validator=_check_raw_text)


def _chain(cls: type[_Junction], left: Expr, right: Expr) -> tuple[Expr, ...]:
    """The operands of ``left <cls> right``, with chains of the same operator flattened:
    ``(a and b) and c`` is ``a and b and c``."""
    left_items = left.operands if isinstance(left, cls) else (left,)
    right_items = right.operands if isinstance(right, cls) else (right,)
    return left_items + right_items


# ---------------------------------------------------------------------------------------------
# The renderer
# ---------------------------------------------------------------------------------------------


def _render(node: Expr) -> str:
    """The percent-encoded text of ``node``, from its operands' texts (written already)."""
    match node:
        case Comparison(op=op, field=field, value=value):
            operand = value.name if isinstance(value, FieldRef) else wire_literal(value, field)
            return f"{field}%20{op}%20{operand}"
        case _Junction(operands=operands):
            return node.SEPARATOR.join([_operand(item, node.PRECEDENCE) for item in operands])
        case Not(operand=operand):
            return "not%20" + _operand(operand, node.PRECEDENCE)
        case In(field=field, values=values):
            if not values:
                raise ValidationError(field, "in_() needs at least one value")
            literals = [wire_literal(value, field) for value in values]
            if len(literals) == 1:
                return f"{field}%20eq%20{literals[0]}"
            return f"{field}%20in%20({','.join(literals)})"
        case Call(function=function, field=field, value=value):
            if isinstance(value, FieldRef):
                argument = value.name
            elif isinstance(value, str):
                argument = wire_literal(value, field)
            else:
                raise TypeError(
                    f"{function}() needs a str (or a field), got {type(value).__name__}"
                )
            return f"{function}({field},{argument})"
        case FieldRef(name=name):
            return name
        case Raw(text=text):
            return encode_component(text)
    raise TypeError(f"not a filter node: {node!r}")


def _operand(node: Expr, precedence: int) -> str:
    """``node``'s text as an operand of an operator of ``precedence``: in parentheses when
    ``node`` binds looser than the operator."""
    return f"({node._wire})" if precedence > node.PRECEDENCE else node._wire


# ---------------------------------------------------------------------------------------------
# Fields
# ---------------------------------------------------------------------------------------------


def _field_operand(value: Any) -> Any:
    """The right-hand side of a comparison: another field becomes its :class:`FieldRef`."""
    return value.ref if isinstance(value, Field) else value


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

    # Comparisons -------------------------------------------------------------------------
    def __eq__(self, value: object) -> Comparison:  # type: ignore[override]
        """``name eq value`` (a value, ``None`` or another field)."""
        return Comparison("eq", self.name, _field_operand(value))

    def __ne__(self, value: object) -> Comparison:  # type: ignore[override]
        """``name ne value`` (a value, ``None`` or another field)."""
        return Comparison("ne", self.name, _field_operand(value))

    def __lt__(self, value: Any) -> Comparison:
        """``name lt value`` (a value or another field)."""
        return Comparison("lt", self.name, _field_operand(value))

    def __le__(self, value: Any) -> Comparison:
        """``name le value`` (a value or another field)."""
        return Comparison("le", self.name, _field_operand(value))

    def __gt__(self, value: Any) -> Comparison:
        """``name gt value`` (a value or another field)."""
        return Comparison("gt", self.name, _field_operand(value))

    def __ge__(self, value: Any) -> Comparison:
        """``name ge value`` (a value or another field)."""
        return Comparison("ge", self.name, _field_operand(value))

    # Functions ---------------------------------------------------------------------------
    def contains(self, value: str | Field) -> Call:
        """``contains(name,'value')`` (a str, or another field)."""
        return Call("contains", self.name, _field_operand(value))

    def startswith(self, value: str | Field) -> Call:
        """``startswith(name,'value')`` (a str, or another field)."""
        return Call("startswith", self.name, _field_operand(value))

    def endswith(self, value: str | Field) -> Call:
        """``endswith(name,'value')`` (a str, or another field)."""
        return Call("endswith", self.name, _field_operand(value))

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
