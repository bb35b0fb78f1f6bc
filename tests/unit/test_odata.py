"""The OData builder: precedence, escaping, literals, Query options, field checks, paging.

Every rendered filter is also parsed back with ``odata_query``'s parser (an independent
implementation of the OData grammar) and compared with the tree it came from.
"""

from __future__ import annotations

import asyncio
import copy
import enum
import inspect
import pickle
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from urllib.parse import unquote
from zoneinfo import ZoneInfo

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from odata_query import ast
from odata_query.grammar import ODataLexer, ODataParser

from flinkey_async._converter import format_datetime
from flinkey_async.errors import ValidationError
from flinkey_async.models import Assignment, CarAssignment, UserAssignment
from flinkey_async.odata import (
    And,
    Call,
    Comparison,
    Expr,
    F,
    Field,
    FieldRef,
    In,
    Not,
    Or,
    Pager,
    Query,
    Raw,
    encode_component,
    literal,
    model_fields,
)
from tests.support.abnf import aware_datetimes, expressions

a = F.a == 1
b = F.b == 2
c = F.c == 3
d = F.d == 4
e = F.e == 5


def text(expr: Expr | Query) -> str:
    """The decoded filter text."""
    if isinstance(expr, Query):
        (name, value), *_ = expr.to_params()
        assert name == "$filter"
        return value
    return str(expr)


# ---------------------------------------------------------------------------------------------
# Comparing a tree with what odata_query parses from its rendering
# ---------------------------------------------------------------------------------------------


def parse_filter(decoded: str) -> Any:
    return ODataParser().parse(ODataLexer().tokenize(decoded))


def canon_value(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        value = value.value
    if value is None:
        return ("null",)
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int):
        return ("int", value)
    if isinstance(value, float):
        return ("float", value)
    if isinstance(value, str):
        return ("str", value)
    if isinstance(value, datetime):
        return ("datetime", value.astimezone(UTC).replace(microsecond=0))
    if isinstance(value, date):
        return ("date", value)
    if isinstance(value, uuid.UUID):
        return ("guid", value)
    if isinstance(value, FieldRef):
        return ("field", value.name)
    raise AssertionError(f"unexpected value {value!r}")


def canon_tree(node: Expr) -> Any:
    """Our tree in a canonical form: flattened and/or, ``in`` with one value as ``eq``."""
    if isinstance(node, (And, Or)):
        kind = "and" if isinstance(node, And) else "or"
        items: list[Any] = []
        for operand in node.operands:
            sub = canon_tree(operand)
            items.extend(sub[1] if sub[0] == kind else [sub])
        return (kind, items)
    if isinstance(node, Not):
        return ("not", canon_tree(node.operand))
    if isinstance(node, Comparison):
        return ("cmp", node.op, ("field", node.field), canon_value(node.value))
    if isinstance(node, In):
        if len(node.values) == 1:
            return ("cmp", "eq", ("field", node.field), canon_value(node.values[0]))
        return ("in", ("field", node.field), [canon_value(v) for v in node.values])
    if isinstance(node, Call):
        return ("call", node.function, [("field", node.field), canon_value(node.value)])
    if isinstance(node, FieldRef):
        return ("field", node.name)
    raise AssertionError(f"unexpected node {node!r}")


_PARSED_OPS = {
    ast.Eq: "eq",
    ast.NotEq: "ne",
    ast.Lt: "lt",
    ast.LtE: "le",
    ast.Gt: "gt",
    ast.GtE: "ge",
}


def canon_parsed(node: Any) -> Any:
    """odata_query's AST in the same canonical form."""
    if isinstance(node, ast.BoolOp):
        kind = "and" if isinstance(node.op, ast.And) else "or"
        items: list[Any] = []
        for operand in (node.left, node.right):
            sub = canon_parsed(operand)
            items.extend(sub[1] if sub[0] == kind else [sub])
        return (kind, items)
    if isinstance(node, ast.UnaryOp):
        assert isinstance(node.op, ast.Not)
        return ("not", canon_parsed(node.operand))
    if isinstance(node, ast.Compare):
        if isinstance(node.comparator, ast.In):
            return ("in", canon_parsed(node.left), [canon_parsed(v) for v in node.right.val])  # type: ignore[attr-defined]
        return (
            "cmp",
            _PARSED_OPS[type(node.comparator)],
            canon_parsed(node.left),
            canon_parsed(node.right),
        )
    if isinstance(node, ast.Call):
        return ("call", node.func.name, [canon_parsed(arg) for arg in node.args])
    if isinstance(node, ast.Identifier):
        return ("field", node.name)
    if isinstance(node, ast.Null):
        return ("null",)
    if isinstance(node, ast.Boolean):
        return ("bool", node.py_val)
    if isinstance(node, ast.Integer):
        return ("int", node.py_val)
    if isinstance(node, ast.Float):
        return ("float", node.py_val)
    if isinstance(node, ast.String):
        return ("str", node.py_val)
    if isinstance(node, ast.DateTime):
        return ("datetime", node.py_val)
    if isinstance(node, ast.Date):
        return ("date", node.py_val)
    if isinstance(node, ast.GUID):
        return ("guid", node.py_val)
    raise AssertionError(f"unexpected parsed node {node!r}")


# ---------------------------------------------------------------------------------------------
# Precedence and parentheses
# ---------------------------------------------------------------------------------------------

PRECEDENCE_CASES = [
    ((a | b) & c, "(a eq 1 or b eq 2) and c eq 3"),
    (a | (b & c), "a eq 1 or b eq 2 and c eq 3"),
    ((a & b) | c, "a eq 1 and b eq 2 or c eq 3"),
    (a & (b | c), "a eq 1 and (b eq 2 or c eq 3)"),
    ((a | b) & (c | d), "(a eq 1 or b eq 2) and (c eq 3 or d eq 4)"),
    ((a & b) | (c & d), "a eq 1 and b eq 2 or c eq 3 and d eq 4"),
    (~(a & b), "not (a eq 1 and b eq 2)"),
    (~(a | b), "not (a eq 1 or b eq 2)"),
    (~a, "not (a eq 1)"),
    (~~a, "a eq 1"),
    (~F.active, "not active"),
    (~F.name.contains("x"), "not contains(name,'x')"),
    (~F.id.in_([1, 2]), "not (id in (1,2))"),
    (~(a | b) & c, "not (a eq 1 or b eq 2) and c eq 3"),
    (~((a | b) & c), "not ((a eq 1 or b eq 2) and c eq 3)"),
    (a & ~b, "a eq 1 and not (b eq 2)"),
    (a | ~b & c, "a eq 1 or not (b eq 2) and c eq 3"),
    ((a & b) & c, "a eq 1 and b eq 2 and c eq 3"),
    (a & (b & c), "a eq 1 and b eq 2 and c eq 3"),
    ((a | b) | (c | d), "a eq 1 or b eq 2 or c eq 3 or d eq 4"),
    (((a | b) & (c | d)) | e, "(a eq 1 or b eq 2) and (c eq 3 or d eq 4) or e eq 5"),
    (((a | b) & c) | (d & ~e), "(a eq 1 or b eq 2) and c eq 3 or d eq 4 and not (e eq 5)"),
    (a & (b | (c & (d | e))), "a eq 1 and (b eq 2 or c eq 3 and (d eq 4 or e eq 5))"),
    (F.active & (F.locked | a), "active and (locked or a eq 1)"),
    (F.id.in_([1, 2]) & a, "id in (1,2) and a eq 1"),
]


@pytest.mark.parametrize(("expr", "expected"), PRECEDENCE_CASES)
def test_precedence_minimal_parentheses(expr: Expr, expected: str) -> None:
    assert text(expr) == expected
    # and the parser reads back the same tree
    assert canon_parsed(parse_filter(expected)) == canon_tree(expr)


def test_same_operator_chains_are_flat() -> None:
    chain = a & b & c & d
    assert isinstance(chain, And) and len(chain.operands) == 4
    assert (a & (b & (c & d))).operands == chain.operands
    either = (a | b) | (c | d)
    assert isinstance(either, Or) and len(either.operands) == 4
    mixed = (a | b) & c
    assert isinstance(mixed, And) and isinstance(mixed.operands[0], Or)


def test_nodes_built_directly_render_like_operator_built_ones() -> None:
    direct = And(
        (Or((Comparison("eq", "a", 1), Comparison("eq", "b", 2))), Not(Comparison("eq", "c", 3)))
    )
    assert text(direct) == "(a eq 1 or b eq 2) and not (c eq 3)"
    assert direct == ((a | b) & ~c)
    assert hash(direct) == hash((a | b) & ~c)
    assert text(Not(Not(FieldRef("x")))) == "not not x"  # explicit nesting is kept
    assert text(In("id", [1, 2])) == "id in (1,2)" and text(Call("endswith", "n", "z")) == (
        "endswith(n,'z')"
    )
    for build in (
        lambda: Comparison("eq", "a b", 1),
        lambda: Comparison("gte", "a", 1),
        lambda: In("x", []),
        lambda: Call("substring", "a", "b"),
        lambda: FieldRef("1x"),
    ):
        with pytest.raises(ValidationError):
            build()


def test_node_classes_keep_their_constructor_signatures_and_copy_like_any_value() -> None:
    assert list(inspect.signature(Comparison).parameters) == ["op", "field", "value"]
    assert list(inspect.signature(In).parameters) == ["field", "values"]
    assert list(inspect.signature(And).parameters) == ["operands"]
    with pytest.raises(TypeError, match="keyword"):
        Comparison("eq", "a", 1, extra=True)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="build expressions with F"):
        Expr()
    with pytest.raises(TypeError, match="needs an OData expression"):
        And([a, 3])  # type: ignore[list-item]
    with pytest.raises(ValidationError, match="at least one operand"):
        Or([])
    tree = (a | F.name.startswith("O'B")) & ~F.c.in_([1, None, "x"]) & F.active
    for clone in (copy.deepcopy(tree), pickle.loads(pickle.dumps(tree))):
        assert clone == tree and clone is not tree and text(clone) == text(tree)
        assert isinstance(clone, And) and clone.operands == tree.operands


def test_boolean_fields_as_conditions() -> None:
    assert text(Query().filter(F.active)) == "active"
    assert text(Query().filter(F.active).filter(~F.locked)) == "active and not locked"
    assert text(F.active | F.locked) == "active or locked"
    assert text((F.x == 1) & F.active) == "x eq 1 and active"


def test_repeated_filter_calls_and_together() -> None:
    q = Query().filter(a | b).filter(c)
    assert text(q) == "(a eq 1 or b eq 2) and c eq 3"
    q = Query().filter(a).filter(b | c).filter(d)
    assert text(q) == "a eq 1 and (b eq 2 or c eq 3) and d eq 4"


def test_raw_filter_is_parenthesised_when_combined() -> None:
    alone = Query().filter_raw("a eq 1 or b eq 2")
    assert text(alone) == "a eq 1 or b eq 2"
    combined = alone.filter(c)
    assert text(combined) == "(a eq 1 or b eq 2) and c eq 3"
    assert text(~Raw("x eq 1")) == "not (x eq 1)"
    assert str(Query().filter_raw("name eq 'a&b'")) == "$filter=name%20eq%20'a%26b'"


# ---------------------------------------------------------------------------------------------
# Python truth values and raw strings
# ---------------------------------------------------------------------------------------------


def test_python_and_or_not_if_raise_type_error() -> None:
    with pytest.raises(TypeError, match="&"):
        _ = (F.a == 1) and (F.b == 2)
    with pytest.raises(TypeError, match=r"\|"):
        _ = (F.a == 1) or (F.b == 2)
    with pytest.raises(TypeError, match="~"):
        _ = not (F.a == 1)  # noqa: SIM201
    with pytest.raises(TypeError, match="truth value"):
        if (F.a == 1) & (F.b == 2):
            pass
    with pytest.raises(TypeError):
        bool(F.a)
    with pytest.raises(TypeError):
        bool(~F.a)
    with pytest.raises(TypeError):
        _ = 1 < F.a < 5  # a chained comparison is an implicit "and"


def test_raw_string_is_refused_with_a_pointer_to_filter_raw() -> None:
    with pytest.raises(TypeError, match="filter_raw"):
        Query().filter("carId eq 7")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="filter_raw"):
        _ = (F.a == 1) & "b eq 2"  # type: ignore[operator]
    with pytest.raises(TypeError, match="filter_raw"):
        _ = "b eq 2" | (F.a == 1)
    with pytest.raises(TypeError):
        Query().filter(42)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        Query().filter_raw("   ")
    with pytest.raises(TypeError):
        Query().filter_raw(None)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# Fields
# ---------------------------------------------------------------------------------------------


def test_field_spellings_are_one_field() -> None:
    assert F.car_id is F.carId is F["car_id"] is F["carId"]
    assert F.car_id.name == "carId"
    assert F.renewable_after.name == "renewableAfter"
    assert repr(F.car_id) == "F.carId"
    assert text(F.car_id == 7) == "carId eq 7"
    assert text(F["renewable_after"] >= 5) == "renewableAfter ge 5"


def test_comparison_operators() -> None:
    assert text(F.x == 1) == "x eq 1"
    assert text(F.x != 1) == "x ne 1"
    assert text(F.x < 1) == "x lt 1"
    assert text(F.x <= 1) == "x le 1"
    assert text(F.x > 1) == "x gt 1"
    assert text(F.x >= 1) == "x ge 1"
    assert text(F.end == None) == "end eq null"  # noqa: E711
    assert text(F.end != None) == "end ne null"  # noqa: E711
    assert text(5 < F.x) == "x gt 5"  # noqa: SIM300 - reflected: same meaning
    assert text(F.start < F.end) == "start lt end"


def test_functions_and_in() -> None:
    assert text(F.name.contains("x")) == "contains(name,'x')"
    assert text(F.name.startswith("O'B")) == "startswith(name,'O''B')"
    assert text(F.name.endswith("z")) == "endswith(name,'z')"
    assert text(F.name.contains(F.description)) == "contains(name,description)"
    assert text(F.id.in_([1, 2, 3])) == "id in (1,2,3)"
    assert text(F.id.in_(x for x in (4, 5))) == "id in (4,5)"
    assert text(F.name.in_(["a", "b'c"])) == "name in ('a','b''c')"
    assert text(F.id.in_([7])) == "id eq 7"
    with pytest.raises(ValidationError, match="at least one"):
        F.id.in_([])
    with pytest.raises(TypeError, match="list"):
        F.name.in_("abc")
    with pytest.raises(TypeError, match="str"):
        F.name.contains(5)  # type: ignore[arg-type]


def test_invalid_field_names() -> None:
    for bad in ("car id", "1st", "a-b", "", "a/b", "x" * 200):
        with pytest.raises(ValidationError):
            F[bad]
    for keyword in ("null", "true", "False", "not"):
        with pytest.raises(ValidationError, match="keyword"):
            F[keyword]
    with pytest.raises(AttributeError):
        _ = F._private
    with pytest.raises(TypeError):
        Field(5)  # type: ignore[arg-type]


def test_fields_are_immutable_hashable_and_usable_as_keys() -> None:
    with pytest.raises(AttributeError):
        F.a.name = "b"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        F.x = F.a
    mapping = {F.a: 1, F.b: 2}
    assert mapping[F["a"]] == 1 and mapping[Field("b")] == 2  # a new Field object
    assert F.a in [F.b, F.a] and F.a in {F.a} and F.c not in [F.a, F.b]
    assert bool(F.a == F.a) and not bool(F.a == F.b) and bool(F.a != F.b)
    assert hash(Field("a")) == hash(F.a)
    assert pickle.loads(pickle.dumps(F.car_id)).name == "carId"
    assert copy.deepcopy(F.car_id).name == "carId"


def test_nodes_are_frozen() -> None:
    node = F.a == 1
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        node.op = "ne"  # type: ignore[misc]
    q = Query().top(3)
    with pytest.raises(AttributeError):
        q.limit = 5  # type: ignore[misc]
    with pytest.raises(AttributeError):
        q.top_n = 5  # type: ignore[attr-defined]
    assert q.limit == 3 and str(q) == "$top=3"


def test_queries_compare_by_options_and_survive_pickle_and_copy() -> None:
    q = Query().filter(F.a == 1).orderby("b", desc=True).top(3)
    same = Query().filter(F.a == 1).orderby("b", desc=True).top(3)
    assert q == same and hash(q) == hash(same) and q is not same
    assert q != Query().filter(F.a == 1).orderby("b").top(3) and q != q.top(4)
    for clone in (pickle.loads(pickle.dumps(q)), copy.deepcopy(q), copy.copy(q)):
        assert clone == q and str(clone) == str(q)
        assert str(clone.skip(5)) == str(q) + "&$skip=5"


def test_node_equality_tells_literal_types_apart() -> None:
    assert (F.a == 1) == (F.a == 1)
    assert (F.a == 1) != (F.a == True)  # noqa: E712
    assert (F.a == 1) != (F.a == 1.0)
    assert F.a.in_([1, 2]) != F.a.in_([True, 2])


# ---------------------------------------------------------------------------------------------
# Literals and escaping
# ---------------------------------------------------------------------------------------------

ESCAPES = [
    ("", "''", "''"),
    ("'", "''''", "''''"),
    ("''", "''''''", "''''''"),
    ("O'Brien", "'O''Brien'", "'O''Brien'"),
    ("a&b", "'a&b'", "'a%26b'"),
    ("a+b", "'a+b'", "'a%2Bb'"),
    ("a#b", "'a#b'", "'a%23b'"),
    ("100%", "'100%'", "'100%25'"),
    ("a/b", "'a/b'", "'a%2Fb'"),
    ("a?b=c", "'a?b=c'", "'a%3Fb%3Dc'"),
    ("two words", "'two words'", "'two%20words'"),
    ("😀", "'😀'", "'%F0%9F%98%80'"),
    ("Müller", "'Müller'", "'M%C3%BCller'"),
    ("(x),*:;$@!~-._", "'(x),*:;$@!~-._'", "'(x),*:;$@!~-._'"),
    ('"{|}\\', "'\"{|}\\'", "'%22%7B%7C%7D%5C'"),
    ("tab\tnew\nline", "'tab\tnew\nline'", "'tab%09new%0Aline'"),
]


@pytest.mark.parametrize(("value", "decoded", "encoded"), ESCAPES)
def test_string_escaping(value: str, decoded: str, encoded: str) -> None:
    assert literal(value) == decoded
    expr = F.name == value
    assert expr.encoded() == "name%20eq%20" + encoded
    assert str(expr) == "name eq " + decoded
    parsed = parse_filter(str(expr))
    assert parsed.right == ast.String(value)


def test_lone_surrogate_is_rejected() -> None:
    with pytest.raises(ValidationError, match="surrogate"):
        F.name == "\ud800"  # noqa: B015


class Color(enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


class Kind(enum.StrEnum):
    CAR = "car"


LITERALS = [
    ("x", "'x'"),
    (True, "true"),
    (False, "false"),
    (0, "0"),
    (-42, "-42"),
    (2**63 - 1, "9223372036854775807"),
    (1.5, "1.5"),
    (-0.25, "-0.25"),
    (1e-05, "1e-05"),
    (1e16, "1e+16"),
    (None, "null"),
    (date(2026, 3, 1), "2026-03-01"),
    (datetime(2026, 3, 1, 8, tzinfo=UTC), "2026-03-01T08:00:00Z"),
    (uuid.UUID("0b6e7d2c-1f3a-4c5b-9d8e-7f6a5b4c3d2e"), "0b6e7d2c-1f3a-4c5b-9d8e-7f6a5b4c3d2e"),
    (Color.RED, "'red'"),
    (Level.HIGH, "3"),
    (Kind.CAR, "'car'"),
]


@pytest.mark.parametrize(("value", "expected"), LITERALS)
def test_literal_types(value: Any, expected: str) -> None:
    assert literal(value) == expected
    assert canon_parsed(parse_filter(f"x eq {expected}").right) == canon_value(value)


def test_float_exponent_plus_is_encoded() -> None:
    assert (F.x == 1e16).encoded() == "x%20eq%201e%2B16"


def test_bool_is_not_rendered_as_int() -> None:
    assert text(F.active == True) == "active eq true"  # noqa: E712
    assert text(F.count == 1) == "count eq 1"


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf"), 2**63, -(2**63) - 1])
def test_unrepresentable_numbers_are_rejected(value: float) -> None:
    with pytest.raises(ValidationError, match="x:"):
        F.x == value  # noqa: B015


@pytest.mark.parametrize("value", [object(), b"bytes", [1, 2], {"a": 1}, 1 + 2j, timedelta(1)])
def test_unsupported_types_raise_type_error_naming_the_type(value: Any) -> None:
    with pytest.raises(TypeError, match=type(value).__name__):
        F.x == value  # noqa: B015
    with pytest.raises(TypeError, match=type(value).__name__):
        literal(value)


def test_expressions_are_not_literals() -> None:
    with pytest.raises(TypeError, match="expression"):
        F.x == (F.y == 1)  # noqa: B015
    with pytest.raises(TypeError, match="field"):
        F.x.in_([F.y])


# ---------------------------------------------------------------------------------------------
# Datetimes
# ---------------------------------------------------------------------------------------------


def test_aware_non_utc_datetimes_are_converted_to_utc() -> None:
    cet = timezone(timedelta(hours=1))
    assert text(F.start >= datetime(2026, 3, 1, 9, tzinfo=cet)) == "start ge 2026-03-01T08:00:00Z"
    berlin = ZoneInfo("Europe/Berlin")
    assert literal(datetime(2026, 7, 1, 10, tzinfo=berlin)) == "2026-07-01T08:00:00Z"  # CEST
    minus = timezone(-timedelta(hours=5, minutes=30))
    assert literal(datetime(2026, 12, 31, 20, 0, tzinfo=minus)) == "2027-01-01T01:30:00Z"


def test_naive_datetimes_are_rejected_naming_the_field() -> None:
    with pytest.raises(ValidationError, match="naive") as info:
        F.start >= datetime(2026, 3, 1, 8)  # noqa: B015
    assert info.value.argument == "start"


def test_microseconds_are_truncated_not_rounded() -> None:
    moment = datetime(2026, 3, 1, 8, 0, 59, 999999, tzinfo=UTC)
    assert literal(moment) == "2026-03-01T08:00:59Z"


def test_datetimes_near_the_ends_of_the_range() -> None:
    assert literal(datetime(999, 1, 1, tzinfo=UTC)) == "0999-01-01T00:00:00Z"
    with pytest.raises(ValidationError, match="out of range"):
        literal(datetime(9999, 12, 31, 23, tzinfo=timezone(-timedelta(hours=5))))


@given(aware_datetimes)
def test_datetime_literals_match_the_converter(moment: datetime) -> None:
    assert literal(moment) == format_datetime(moment)
    parsed = parse_filter(f"x eq {literal(moment)}").right
    assert parsed.py_val == moment.astimezone(UTC).replace(microsecond=0)


# ---------------------------------------------------------------------------------------------
# Query options and encoding
# ---------------------------------------------------------------------------------------------


def test_the_documented_example_string() -> None:
    q = (
        Query()
        .filter(F.car_id == 7)
        .filter(F.name == "O'Brien & Co")
        .orderby("start", desc=True)
        .top(10)
    )
    assert str(q) == (
        "$filter=carId%20eq%207%20and%20name%20eq%20'O''Brien%20%26%20Co'"
        "&$orderby=start%20desc&$top=10"
    )
    assert q.encoded() == str(q)
    assert q.to_params() == [
        ("$filter", "carId eq 7 and name eq 'O''Brien & Co'"),
        ("$orderby", "start desc"),
        ("$top", "10"),
    ]


def test_option_order_is_stable() -> None:
    q = Query().count().skip(5).top(10).select("id", F.start).orderby(F.start).filter(a)
    assert [name for name, _ in q.to_params()] == [
        "$filter",
        "$orderby",
        "$select",
        "$top",
        "$skip",
        "$count",
    ]
    assert str(q) == (
        "$filter=a%20eq%201&$orderby=start&$select=id,start&$top=10&$skip=5&$count=true"
    )
    assert str(Query()) == "" and Query().to_params() == []
    assert str(Query().count(False)) == "$count=false"


def test_orderby_select_names() -> None:
    q = Query().orderby("renewable_after").orderby(F.start, desc=True).orderby("id", desc=False)
    assert q.to_params() == [("$orderby", "renewableAfter,start desc,id")]
    assert q.ordering == (("renewableAfter", False), ("start", True), ("id", False))
    q = Query().select("car_id", "start").select(F.start, F.end)
    assert q.selected == ("carId", "start", "end")
    with pytest.raises(ValidationError, match="desc=True"):
        Query().orderby("start desc")
    with pytest.raises(ValidationError, match="already"):
        Query().orderby("start").orderby(F.start, desc=True)
    with pytest.raises(ValidationError):
        Query().orderby("start", desc="yes")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        Query().select()
    with pytest.raises(TypeError):
        Query().orderby(3)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [-1, True, False, 1.0, "3", None])
def test_top_and_skip_validation(bad: Any) -> None:
    with pytest.raises(ValidationError, match="top"):
        Query().top(bad)
    with pytest.raises(ValidationError, match="skip"):
        Query().skip(bad)


def test_top_skip_zero_and_count_validation() -> None:
    assert str(Query().top(0).skip(0)) == "$top=0&$skip=0"
    with pytest.raises(ValidationError):
        Query().count(1)  # type: ignore[arg-type]


def test_query_equality_and_repr() -> None:
    q1 = Query().filter(a).top(3)
    q2 = Query().filter(F.a == 1).top(3)
    assert q1 == q2 and hash(q1) == hash(q2)
    assert q1 != Query().filter(a).top(4)
    assert repr(q1) == "Query('$filter=a eq 1&$top=3')"


def test_encoded_output_decodes_back_exactly() -> None:
    value = "x &=+#%/?é 😀 ''"
    q = Query().filter(F.name == value)
    ((_, decoded),) = q.to_params()
    assert decoded == "name eq '" + value.replace("'", "''") + "'"
    assert unquote(str(q).split("=", 1)[1]) == decoded
    assert " " not in str(q) and "+" not in str(q)


@given(st.text())
def test_encode_component_round_trips(value: str) -> None:
    encoded = encode_component(value)
    assert unquote(encoded, errors="strict") == value
    assert all(ch.isascii() and (ch.isalnum() or ch in "-._~'()*,:;$@!%") for ch in encoded)


# ---------------------------------------------------------------------------------------------
# Immutability under concurrency
# ---------------------------------------------------------------------------------------------


async def test_shared_base_query_is_never_changed_by_concurrent_derivations() -> None:
    base = Query().filter(F.car_id == 7).orderby("start").select("id", "start")
    before = str(base)
    expected_base_params = base.to_params()

    async def derive(i: int) -> tuple[int, Query]:
        q = base.filter(F.user_id == i)
        await asyncio.sleep(0)
        q = q.top(i + 1).skip(i)
        await asyncio.sleep(0)
        q = q.orderby("end", desc=bool(i % 2)).with_page(i * 10, i + 1)
        await asyncio.sleep(0)
        return i, q

    results = await asyncio.gather(*(derive(i) for i in range(100)))
    assert str(base) == before
    assert base.to_params() == expected_base_params
    assert base.limit is None and base.offset is None
    for i, q in results:
        direction = "%20desc" if i % 2 else ""
        assert str(q) == (
            f"$filter=carId%20eq%207%20and%20userId%20eq%20{i}"
            f"&$orderby=start,end{direction}&$select=id,start&$top={i + 1}&$skip={i * 10}"
        )
    assert len({str(q) for _, q in results}) == 100


def test_methods_return_new_queries() -> None:
    base = Query()
    derived = [
        base.filter(a),
        base.filter_raw("x eq 1"),
        base.orderby("x"),
        base.select("x"),
        base.top(1),
        base.skip(1),
        base.count(),
        base.with_page(1, 2),
    ]
    assert all(q is not base for q in derived)
    assert str(base) == ""


# ---------------------------------------------------------------------------------------------
# Field checks
# ---------------------------------------------------------------------------------------------


def test_model_fields_are_wire_names() -> None:
    assert model_fields(CarAssignment) == {"id", "userId", "start", "end"}
    assert model_fields(UserAssignment) == {"id", "carId", "start", "end"}
    assert model_fields(Assignment) == {
        "id",
        "carId",
        "userId",
        "start",
        "end",
        "lifetime",
        "renewableAfter",
    }


def test_query_fields_cover_filter_orderby_select() -> None:
    q = (
        Query()
        .filter((F.start < F.end) & F.name.contains(F.description) & F.id.in_([1]))
        .filter(~F.active)
        .orderby("car_id")
        .select("user_id")
    )
    assert q.fields() == {"start", "end", "name", "description", "id", "active", "carId", "userId"}
    assert Query().filter_raw("secret eq 1").fields() == set()


def test_check_fields_passes_known_fields() -> None:
    q = Query().filter(F.start >= datetime(2026, 1, 1, tzinfo=UTC)).orderby("start").select("id")
    q.check_fields(model_fields(CarAssignment), "car assignments")  # no error


def test_check_fields_catches_a_typo_and_suggests() -> None:
    q = Query().filter(F.carid == 7)
    with pytest.raises(ValidationError) as info:
        q.check_fields(model_fields(UserAssignment), "user assignments")
    assert info.value.argument == "query"
    message = info.value.message
    assert message.startswith("unknown field 'carid' for user assignments")
    assert "did you mean 'carId'?" in message
    assert "known: carId, end, id, start" in message


def test_check_fields_names_every_unknown_field() -> None:
    q = Query().filter(F.car_id == 7).orderby("lifetim")
    with pytest.raises(ValidationError) as info:
        q.check_fields(model_fields(CarAssignment), "car assignments")
    message = info.value.message
    assert "unknown field 'carId' for car assignments" in message
    assert "unknown field 'lifetim'" in message
    assert "known: end, id, start, userId" in message


# ---------------------------------------------------------------------------------------------
# Paging
# ---------------------------------------------------------------------------------------------


def plan(query: Query | None, page_size: int, counts: list[int]) -> list[str]:
    """The page queries a pager sends when the pages return ``counts`` items."""
    pager = Pager(query, page_size)
    sent = []
    received = iter(counts)
    while (page := pager.next_query()) is not None:
        sent.append(str(page))
        pager.feed(next(received))
    return sent


def test_paging_without_a_caller_query() -> None:
    assert plan(None, 100, [100, 100, 37]) == [
        "$top=100&$skip=0",
        "$top=100&$skip=100",
        "$top=100&$skip=200",
    ]
    assert plan(None, 100, [100, 0]) == ["$top=100&$skip=0", "$top=100&$skip=100"]
    assert plan(None, 10, [3]) == ["$top=10&$skip=0"]


def test_caller_top_is_an_overall_limit_and_skip_the_start() -> None:
    q = Query().filter(a).orderby("id").skip(30).top(250)
    assert plan(q, 100, [100, 100, 50, 50]) == [
        "$filter=a%20eq%201&$orderby=id&$top=100&$skip=30",
        "$filter=a%20eq%201&$orderby=id&$top=100&$skip=130",
        "$filter=a%20eq%201&$orderby=id&$top=50&$skip=230",
    ]
    assert plan(Query().top(0), 100, []) == []
    assert plan(Query().top(5), 100, [5]) == ["$top=5&$skip=0"]


def test_feed_caps_oversized_pages_and_checks_protocol() -> None:
    pager = Pager(Query().top(15), 10)
    assert pager.next_query() == Query().with_page(0, 10)
    assert pager.feed(25) == 10  # the server ignored $top
    assert pager.next_query() == Query().with_page(10, 5)
    assert pager.feed(9) == 5
    assert pager.done and pager.next_query() is None
    pager = Pager(None, 10)
    with pytest.raises(RuntimeError):
        pager.feed(1)
    pager.next_query()
    with pytest.raises(RuntimeError):
        pager.next_query()
    with pytest.raises(ValidationError):
        pager.feed(-1)


@pytest.mark.parametrize("bad", [0, -1, True, 1.5, None])
def test_page_size_validation(bad: Any) -> None:
    with pytest.raises(ValidationError, match="page_size"):
        Pager(None, bad)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(
    total=st.integers(0, 60),
    page_size=st.integers(1, 12),
    skip=st.none() | st.integers(0, 70),
    top=st.none() | st.integers(0, 70),
)
def test_paging_yields_exactly_what_one_query_would(
    total: int, page_size: int, skip: int | None, top: int | None
) -> None:
    """Against a server holding ``total`` rows, paging returns exactly the rows a single
    request with the caller's $skip/$top would, with no page larger than page_size."""
    query = Query()
    if skip is not None:
        query = query.skip(skip)
    if top is not None:
        query = query.top(top)

    def server(q: Query) -> list[int]:
        start = q.offset or 0
        rows = list(range(total))[start:]
        return rows if q.limit is None else rows[: q.limit]

    pager = Pager(query, page_size)
    seen: list[int] = []
    requests = 0
    while (page := pager.next_query()) is not None:
        requests += 1
        assert page.limit is not None and 0 < page.limit <= page_size
        rows = server(page)
        seen.extend(rows[: pager.feed(len(rows))])
        assert requests <= total + 2
    assert seen == server(query)


# ---------------------------------------------------------------------------------------------
# Property tests against odata_query's parser
# ---------------------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(expressions)
def test_every_rendered_filter_parses_into_the_same_tree(expr: Expr) -> None:
    q = Query().filter(expr)
    decoded = text(q)
    assert decoded == str(expr)
    assert canon_parsed(parse_filter(decoded)) == canon_tree(expr)


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_any_string_survives_encoding_and_parsing(value: str) -> None:
    encoded = str(Query().filter(F.name == value))
    name, _, raw = encoded.partition("=")
    assert name == "$filter" and "&" not in raw and "#" not in raw and " " not in raw
    parsed = parse_filter(unquote(raw, errors="strict"))
    assert isinstance(parsed, ast.Compare) and parsed.right == ast.String(value)
