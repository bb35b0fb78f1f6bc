"""OData v4 query options evaluated in Python over records in their wire (JSON) form.

The sandbox answers every GET that the flinkey reference marks with the OData tip through this
module. Supported, as in ASP.NET Core OData over plain lists (the style the bare-array responses
suggest):

``$filter``
    Parsed with the ``odata-query`` package's grammar and compiled once per distinct text into a
    Python predicate. Comparisons ``eq ne lt le gt ge``; ``and or not``; ``in (...)``; ``null``;
    the functions ``contains startswith endswith`` (case-sensitive, ordinal, like OData),
    ``tolower toupper trim length`` and ``year month day hour minute second``. Literals: integers,
    decimals, ``'strings'`` (quotes doubled), ``true``/``false``, ``null`` and date-time literals
    (``2024-01-01T08:00:00Z`` or with an offset); timestamps are compared as aware UTC datetimes.
    Nested properties use ``/`` (``userData/firstName``).
``$orderby``
    Comma-separated property paths, each optionally followed by ``asc`` (default) or ``desc``.
    ``null`` sorts **first** in ascending order and last in descending order, as SQL Server (and
    so Entity Framework over it) does. Without ``$orderby`` records keep their id order.
``$skip``, ``$top``
    Integers in ``0..2147483647`` (``Edm.Int32``, as ASP.NET Core OData takes them), applied
    after filtering and ordering.
``$select``
    Comma-separated top-level property names; the answer holds partial objects with only those
    keys.
``$count``
    ``true`` or ``false``; accepted and ignored: answers stay bare JSON arrays.

Null semantics follow C# (which Entity Framework emulates): ``x eq null`` is true for null,
an ordering comparison with a null operand is false, ``not`` negates that result, and string
functions of a null operand are false (or null).

Anything else (an unknown property, an unknown ``$`` option, a type mismatch, an unsupported
function, arithmetic, lambdas) raises :class:`ODataError`, whose text the sandbox sends as a
400 answer: ``Invalid OData query: unknown property 'carid'``. Property names are
case-sensitive. Query parameters that do not start with ``$`` are ignored, like custom query
options.

The module is pure: :func:`parse_query` turns query parameters into a :class:`QueryOptions`
whose :meth:`~QueryOptions.apply` filters a list of records.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

import attrs
from odata_query import ast
from odata_query.exceptions import ODataException, ParsingException, TokenizingException
from odata_query.grammar import ODataLexer, ODataParser

from ._timestamps import TimestampOutOfRange, parse_timestamp

__all__ = [
    "BOOL",
    "DATETIME",
    "FLOAT",
    "INT",
    "STR",
    "EntitySchema",
    "ODataError",
    "QueryOptions",
    "compile_filter",
    "parse_query",
]

Kind = Literal["int", "float", "str", "bool", "datetime"]
INT: Kind = "int"
FLOAT: Kind = "float"
STR: Kind = "str"
BOOL: Kind = "bool"
DATETIME: Kind = "datetime"

_EDM_NAMES: dict[str, str] = {
    "int": "Edm.Int32",
    "float": "Edm.Double",
    "str": "Edm.String",
    "bool": "Edm.Boolean",
    "datetime": "Edm.DateTimeOffset",
    "null": "null",
}

Record = Mapping[str, Any]
Predicate = Callable[[Record], bool]
Getter = Callable[[Record], Any]

_ORDERBY_ITEM = re.compile(
    r"\s*([A-Za-z_][A-Za-z0-9_]*(?:/[A-Za-z_][A-Za-z0-9_]*)*)(?:\s+(asc|desc))?\s*"
)
_SELECT_ITEM = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*")
_SUPPORTED_OPTIONS = frozenset({"$filter", "$orderby", "$top", "$skip", "$select", "$count"})


class ODataError(ValueError):
    """A query option the sandbox cannot evaluate; ``str(error)`` is the 400 answer text."""

    def __init__(self, detail: str) -> None:
        self.detail = detail
        super().__init__(f"Invalid OData query: {detail}")


@attrs.frozen
class EntitySchema:
    """The properties of one wire shape: name -> scalar kind, or a nested schema (complex type).

    ``name`` identifies the schema in caches and messages; ``fields`` keeps the wire order.
    """

    name: str
    fields: Mapping[str, Kind | EntitySchema]


@functools.lru_cache(maxsize=8192)
def _parse_wire_datetime(text: str) -> datetime | None:
    try:
        return parse_timestamp(text)
    except ValueError:
        return None


def _as_datetime(value: Any) -> datetime | None:
    return _parse_wire_datetime(value) if type(value) is str else None


@attrs.frozen
class _Value:
    """A compiled value expression: ``get(record)`` and its static kind ("null" for null)."""

    get: Getter
    kind: str
    desc: str
    const: bool = False


# ---------------------------------------------------------------------------------------------
# $filter


def _syntax_error(exc: ODataException) -> ODataError:
    if isinstance(exc, ParsingException) and (exc.eof or exc.token is None):
        return ODataError("unexpected end of $filter")
    if isinstance(exc, TokenizingException | ParsingException) and exc.token is not None:
        token = exc.token
        return ODataError(
            f"syntax error in $filter at position {token.index} near {str(token.value)!r}"
        )
    return ODataError(f"syntax error in $filter: {exc}")


def _literal(node: ast._Node) -> _Value | None:
    """Compile a literal node, or return None when ``node`` is not a literal."""
    value: Any
    if isinstance(node, ast.Null):
        return _Value(_constant(None), "null", "null", const=True)
    if isinstance(node, ast.Integer):
        try:
            value = int(node.val)
        except ValueError:  # more digits than int() converts (sys.get_int_max_str_digits())
            raise ODataError(
                f"integer literal of {len(node.val)} characters is out of range"
            ) from None
        kind = INT
    elif isinstance(node, ast.Float):
        value = float(node.val)
        kind = FLOAT
    elif isinstance(node, ast.Boolean):
        value = node.val.lower() == "true"
        kind = BOOL
    elif isinstance(node, ast.String):
        value = node.val
        kind = STR
    elif isinstance(node, ast.DateTime):
        try:
            value = parse_timestamp(node.val)
        except TimestampOutOfRange:  # e.g. 9999-12-31T23:59:59-05:00, after year 9999 in UTC
            raise ODataError(f"date-time literal {node.val!r} is out of range in UTC") from None
        except ValueError:
            raise ODataError(f"invalid date-time literal {node.val!r}") from None
        kind = DATETIME
    elif isinstance(node, ast.Date):
        raise ODataError(
            f"date literal {node.val!r} is not supported: use a full timestamp such as "
            f"{node.val}T00:00:00Z"
        )
    elif isinstance(node, ast._Literal):
        raise ODataError(f"unsupported literal of type {type(node).__name__}")
    else:
        return None
    return _Value(_constant(value), kind, f"{_EDM_NAMES[kind]} literal", const=True)


def _constant(value: Any) -> Getter:
    return lambda _record: value


def _comparable(a: str, b: str) -> bool:
    if a == "null" or b == "null" or a == b:
        return True
    return {a, b} <= {INT, FLOAT}


class _FilterCompiler:
    """Turns an ``odata_query`` AST into nested Python closures over wire records."""

    def __init__(self, schema: EntitySchema) -> None:
        self.schema = schema

    # -- properties ----------------------------------------------------------------------------

    def _property(self, path: Sequence[str]) -> _Value:
        schema: EntitySchema = self.schema
        for i, name in enumerate(path):
            kind = schema.fields.get(name)
            full = "/".join(path[: i + 1])
            if kind is None:
                raise ODataError(f"unknown property {full!r}")
            if isinstance(kind, EntitySchema):
                if i == len(path) - 1:
                    raise ODataError(
                        f"property {full!r} is a complex type; compare one of its properties, "
                        f"e.g. '{full}/{next(iter(kind.fields))}'"
                    )
                schema = kind
                continue
            if i != len(path) - 1:
                raise ODataError(f"property {full!r} has no property {path[i + 1]!r}")
            return _Value(_make_getter(path, kind), kind, f"{_EDM_NAMES[kind]} property {full!r}")
        raise ODataError("empty property path")  # pragma: no cover - paths are never empty

    def _path_of(self, node: ast._Node) -> list[str] | None:
        if isinstance(node, ast.Identifier):
            if node.namespace:
                full = ".".join((*node.namespace, node.name))
                raise ODataError(f"unknown property {full!r}")
            return [node.name]
        if isinstance(node, ast.Attribute):
            owner = self._path_of(node.owner)
            if owner is None:
                raise ODataError("property access on an expression is not supported")
            return [*owner, node.attr]
        return None

    # -- values --------------------------------------------------------------------------------

    def value(self, node: ast._Node) -> _Value:
        literal = _literal(node)
        if literal is not None:
            return literal
        path = self._path_of(node)
        if path is not None:
            return self._property(path)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            inner = self.value(node.operand)
            if inner.const and inner.kind in (INT, FLOAT):
                return _Value(_constant(-inner.get({})), inner.kind, inner.desc, const=True)
            raise ODataError("negation is only supported on numeric literals")
        if isinstance(node, ast.Call):
            return self._call(node)
        if isinstance(node, ast.BinOp):
            raise ODataError("arithmetic operators (add, sub, mul, div, mod) are not supported")
        if isinstance(node, ast.CollectionLambda):
            raise ODataError("lambda operators (any, all) are not supported")
        if isinstance(node, ast.Compare | ast.BoolOp) or (
            isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not)
        ):
            predicate = self.predicate(node)
            return _Value(predicate, BOOL, "Edm.Boolean expression")
        if isinstance(node, ast.List):
            raise ODataError("a list is only allowed on the right of 'in'")
        raise ODataError(f"unsupported expression {type(node).__name__}")

    def _call(self, node: ast.Call) -> _Value:
        name = ".".join((*node.func.namespace, node.func.name))
        args = [self.value(a) for a in node.args]

        def expect(count: int, kind: str) -> None:
            if len(args) != count:
                raise ODataError(f"{name}() takes {count} argument(s), got {len(args)}")
            for arg in args:
                if arg.kind not in (kind, "null"):
                    raise ODataError(
                        f"{name}() expects {_EDM_NAMES[kind]} arguments, got {arg.desc}"
                    )

        if name in ("contains", "startswith", "endswith"):
            expect(2, STR)
            a, b = args[0].get, args[1].get
            method: Callable[[str, str], bool] = {
                "contains": str.__contains__,
                "startswith": str.startswith,
                "endswith": str.endswith,
            }[name]

            def string_test(r: Record) -> bool:
                x, y = a(r), b(r)
                return x is not None and y is not None and method(x, y)

            return _Value(string_test, BOOL, f"{name}()")
        if name in ("tolower", "toupper", "trim"):
            expect(1, STR)
            transforms: dict[str, Callable[[str], str]] = {
                "tolower": str.lower,
                "toupper": str.upper,
                "trim": lambda x: x.strip(),
            }
            transform = transforms[name]
            inner = args[0].get

            def string_fn(r: Record) -> str | None:
                x = inner(r)
                return None if x is None else transform(x)

            return _Value(string_fn, STR, f"{name}()")
        if name == "length":
            expect(1, STR)
            inner = args[0].get
            return _Value(lambda r: None if (x := inner(r)) is None else len(x), INT, "length()")
        if name in ("year", "month", "day", "hour", "minute", "second"):
            expect(1, DATETIME)
            inner = args[0].get
            attr = name

            def part(r: Record) -> int | None:
                x = inner(r)
                return None if x is None else int(getattr(x, attr))

            return _Value(part, INT, f"{name}()")
        raise ODataError(f"unsupported function {name!r}")

    # -- predicates ----------------------------------------------------------------------------

    def predicate(self, node: ast._Node) -> Predicate:
        if isinstance(node, ast.BoolOp):
            left, right = self.predicate(node.left), self.predicate(node.right)
            if isinstance(node.op, ast.And):
                return lambda r: left(r) and right(r)
            return lambda r: left(r) or right(r)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            inner = self.predicate(node.operand)
            return lambda r: not inner(r)
        if isinstance(node, ast.Compare):
            return self._compare(node)
        value = self.value(node)
        if value.kind != BOOL:
            raise ODataError(f"$filter must be a boolean expression, got {value.desc}")
        get = value.get
        return lambda r: get(r) is True

    def _compare(self, node: ast.Compare) -> Predicate:
        left = self.value(node.left)
        op = node.comparator
        if isinstance(op, ast.In):
            items = node.right.val if isinstance(node.right, ast.List) else [node.right]
            values: list[Any] = []
            for item in items:
                lit = _literal(item)
                if lit is None:
                    raise ODataError("the list of 'in' may only hold literals")
                if not _comparable(left.kind, lit.kind):
                    raise ODataError(f"cannot compare {left.desc} with {lit.desc}")
                values.append(lit.get({}))
            get = left.get
            return lambda r: get(r) in values
        right = self.value(node.right)
        if not _comparable(left.kind, right.kind):
            raise ODataError(f"cannot compare {left.desc} with {right.desc}")
        lg, rg = left.get, right.get
        if isinstance(op, ast.Eq | ast.NotEq):
            if right.const:
                constant = rg({})
                if isinstance(op, ast.Eq):
                    return lambda r: lg(r) == constant
                return lambda r: lg(r) != constant
            if isinstance(op, ast.Eq):
                return lambda r: lg(r) == rg(r)
            return lambda r: lg(r) != rg(r)
        ordering: Callable[[Any, Any], bool]
        if isinstance(op, ast.Lt):
            ordering = _lt
        elif isinstance(op, ast.LtE):
            ordering = _le
        elif isinstance(op, ast.Gt):
            ordering = _gt
        elif isinstance(op, ast.GtE):
            ordering = _ge
        else:  # pragma: no cover - the grammar has no other comparators
            raise ODataError(f"unsupported comparison {type(op).__name__}")

        def compare(r: Record) -> bool:
            a, b = lg(r), rg(r)
            return a is not None and b is not None and ordering(a, b)

        return compare


def _lt(a: Any, b: Any) -> bool:
    return bool(a < b)


def _le(a: Any, b: Any) -> bool:
    return bool(a <= b)


def _gt(a: Any, b: Any) -> bool:
    return bool(a > b)


def _ge(a: Any, b: Any) -> bool:
    return bool(a >= b)


def _make_getter(path: Sequence[str], kind: Kind) -> Getter:
    """A getter for a (possibly nested) property; datetimes come back parsed (aware UTC)."""
    if len(path) == 1:
        name = path[0]
        if kind == DATETIME:
            return lambda r: _as_datetime(r.get(name))
        return lambda r: r.get(name)
    head, rest = path[0], path[1:]
    inner = _make_getter(rest, kind)

    def nested(r: Record) -> Any:
        owner = r.get(head)
        return inner(owner) if isinstance(owner, Mapping) else None

    return nested


def compile_filter(text: str, schema: EntitySchema) -> Predicate:
    """Compile a ``$filter`` expression into a predicate over wire records of ``schema``."""
    if not text.strip():
        raise ODataError("$filter is empty")
    try:
        tree = ODataParser().parse(ODataLexer().tokenize(text))
    except ODataException as exc:
        raise _syntax_error(exc) from None
    except (ValueError, TypeError, IndexError, RecursionError) as exc:
        raise ODataError(f"syntax error in $filter: {exc}") from None
    if tree is None:
        raise ODataError("$filter is empty")
    try:
        return _FilterCompiler(schema).predicate(tree)
    except RecursionError:
        raise ODataError("$filter is nested too deeply") from None


# ---------------------------------------------------------------------------------------------
# The other options


#: Largest ``$top`` / ``$skip`` (``Edm.Int32``).
MAX_TOP_SKIP = 2**31 - 1


def _non_negative(option: str, text: str) -> int:
    stripped = text.strip()
    if not (stripped.isascii() and stripped.isdigit()):
        raise ODataError(f"{option} must be a non-negative integer, got {text!r}")
    digits = stripped.lstrip("0") or "0"
    if len(digits) > len(str(MAX_TOP_SKIP)) or int(digits) > MAX_TOP_SKIP:
        shown = stripped if len(stripped) <= 20 else f"{stripped[:20]}... ({len(stripped)} digits)"
        raise ODataError(f"{option} must be at most {MAX_TOP_SKIP}, got {shown}")
    return int(digits)


def _sort_key(get: Getter) -> Callable[[Record], tuple[bool, Any]]:
    """Sort key putting nulls first in ascending order (and so last in descending order)."""

    def key(record: Record) -> tuple[bool, Any]:
        value = get(record)
        return value is not None, value

    return key


@attrs.frozen
class QueryOptions:
    """Compiled query options; :meth:`apply` runs them over records of one schema."""

    filter: Predicate | None = None
    orderby: tuple[tuple[Getter, bool], ...] = ()
    skip: int = 0
    top: int | None = None
    select: tuple[str, ...] | None = None

    def apply(self, records: Iterable[Record]) -> list[Record]:
        """Filter, order, skip, take and select, in that order (OData's order of evaluation)."""
        predicate = self.filter
        result = [r for r in records if predicate(r)] if predicate else list(records)
        for get, descending in reversed(self.orderby):
            result.sort(key=_sort_key(get), reverse=descending)
        if self.skip:
            result = result[self.skip :]
        if self.top is not None:
            result = result[: self.top]
        if self.select is not None:
            return [self.select_one(r) for r in result]
        return result

    def select_one(self, record: Record) -> Record:
        """``record`` reduced to the ``$select`` keys (unchanged without ``$select``)."""
        if self.select is None:
            return record
        return {k: record[k] for k in self.select if k in record}


def _orderby(text: str, schema: EntitySchema) -> tuple[tuple[Getter, bool], ...]:
    items: list[tuple[Getter, bool]] = []
    for part in text.split(","):
        match = _ORDERBY_ITEM.fullmatch(part)
        if match is None:
            raise ODataError(
                f"invalid $orderby item {part.strip()!r}: expected 'property' or "
                "'property asc|desc'"
            )
        path = match.group(1).split("/")
        value = _FilterCompiler(schema)._property(path)
        items.append((value.get, match.group(2) == "desc"))
    return tuple(items)


def _select(text: str, schema: EntitySchema) -> tuple[str, ...]:
    wanted: set[str] = set()
    for part in text.split(","):
        match = _SELECT_ITEM.fullmatch(part)
        if match is None:
            raise ODataError(
                f"invalid $select item {part.strip()!r}: expected a top-level property name"
            )
        name = match.group(1)
        if name not in schema.fields:
            raise ODataError(f"unknown property {name!r}")
        wanted.add(name)
    return tuple(name for name in schema.fields if name in wanted)


def parse_query(
    params: Iterable[tuple[str, str]], schema: EntitySchema, *, single: bool = False
) -> QueryOptions:
    """Compile the OData options among ``params`` (decoded ``(name, value)`` pairs).

    ``single`` is for endpoints returning one object: only ``$select`` is allowed there.
    Raises :class:`ODataError` for anything unknown, repeated or malformed.
    """
    seen: dict[str, str] = {}
    for name, value in params:
        if not name.startswith("$"):
            continue
        if name not in _SUPPORTED_OPTIONS:
            raise ODataError(f"query option {name!r} is not supported")
        if name in seen:
            raise ODataError(f"query option {name!r} was specified more than once")
        seen[name] = value
    if single:
        extra = sorted(set(seen) - {"$select"})
        if extra:
            raise ODataError(f"only $select is supported on a single object, got {extra[0]}")
    predicate: Predicate | None = None
    if "$filter" in seen:
        predicate = compile_filter(seen["$filter"], schema)
    orderby: tuple[tuple[Getter, bool], ...] = ()
    if "$orderby" in seen:
        orderby = _orderby(seen["$orderby"], schema)
    skip = _non_negative("$skip", seen["$skip"]) if "$skip" in seen else 0
    top = _non_negative("$top", seen["$top"]) if "$top" in seen else None
    select = _select(seen["$select"], schema) if "$select" in seen else None
    if "$count" in seen and seen["$count"].strip().lower() not in ("true", "false"):
        raise ODataError(f"$count must be true or false, got {seen['$count']!r}")
    return QueryOptions(predicate, orderby, skip, top, select)
