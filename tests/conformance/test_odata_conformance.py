"""Query strings checked against the official OASIS OData ABNF (rule ``queryOptions``), and
sent through a real aiohttp client to a real aiohttp server, byte for byte.

The grammar is loaded once per test session (see ``tests/support/abnf.py``; it takes several
seconds).
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta, timezone
from typing import Any

import aiohttp
import pytest
import yarl
from aiohttp import web
from aiohttp.test_utils import TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flinkey_async.odata import Expr, F, Query
from tests.support.abnf import (
    FIELD_NAMES,
    aware_datetimes,
    expressions,
    grammar,
    literal_values,
    parses,
    published_rule_rejects,
)

# Each option's own rule in the grammar.
OPTION_RULES = {
    "$filter": "filter",
    "$orderby": "orderby",
    "$select": "select",
    "$top": "top",
    "$skip": "skip",
    "$count": "inlinecount",
}


@pytest.fixture(scope="module", autouse=True)
def odata_grammar() -> Any:
    """Load the grammar once (cached for the whole session)."""
    return grammar()


def assert_conforms(query: Query) -> None:
    """The whole query string matches ``queryOptions`` and each option its own rule."""
    raw = str(query)
    assert parses("queryOptions", raw), raw
    for option in raw.split("&"):
        name = option.partition("=")[0]
        assert parses(OPTION_RULES[name], option), option


class Color(enum.Enum):
    RED = "red"


START = datetime(2026, 3, 1, 9, 0, 0, 250000, tzinfo=timezone(timedelta(hours=1)))

QUERIES = [
    Query()
    .filter(F.car_id == 7)
    .filter(F.name == "O'Brien & Co")
    .orderby("start", desc=True)
    .top(10),
    Query().filter((F.user_id == 9) | (F.user_id == None)),  # noqa: E711
    Query().filter(F.start >= START).filter(F.end < START + timedelta(days=30)),
    Query().filter(~((F.lifetime >= 604800) & (F.renewable_after > 1000))),
    Query().filter(F.license_plate.startswith("B-") | F.name.endswith("'s")),
    Query().filter(F.name.contains("50% off + more = #1 /?")),
    Query().filter(F.id.in_([1, 2, 3]) & F.name.in_(["a", "b c"])),
    Query().filter(F.id.in_([42])),
    Query().filter(F.score > 1e16).filter(F.score < -2.5e-07).filter(F.ratio == 0.5),
    Query().filter(F.day == date(2026, 3, 1)),
    Query().filter(F.key == uuid.UUID("0b6e7d2c-1f3a-4c5b-9d8e-7f6a5b4c3d2e")),
    Query().filter(F.active & ~F.locked),
    Query().filter(F.color == Color.RED),
    Query().filter(F.start < F.end),
    Query().filter(F.name == 'Zoë 😀 "quoted" {braces} |pipe| back\\slash\ttab'),
    Query().filter(F.name == ""),
    Query().filter_raw("name eq 'x y'").filter(F.id == 1),
    Query().orderby("start").orderby("renewable_after", desc=True),
    Query().select("id", "car_id", "start"),
    Query().top(0).skip(0).count(),
    Query().skip(200).count(False),
    Query().filter(F.id > 0).orderby("id").select("id").top(5).skip(5).count(),
]


@pytest.mark.parametrize("query", QUERIES, ids=lambda q: repr(q)[:60])
def test_table_of_queries_conforms(query: Query) -> None:
    assert_conforms(query)


@pytest.mark.parametrize(
    "raw",
    [
        "$filter=name%20eq%20'O'Brien'",  # quote not doubled
        "$filter=ID%20gte%2020",  # not an operator
        "$filter=name%20eq%20'x y'",  # a raw space inside a string literal
        "$filter=name+eq+'x'",  # "+" for a space
        "$filter=name%20eq%20'a/b'",  # "/" inside a string literal
        "$filter=name%20eq%20'a%27b'",  # an encoded quote alone inside a literal
        "$filter=a%20eq%201%20and",  # incomplete
        "$top=-1",
        "$top=ten",
    ],
)
def test_the_oracle_rejects_known_wire_bugs(raw: str) -> None:
    assert not parses("queryOptions", raw)


def test_grammar_correction_only_admits_pct_7x() -> None:
    # The published rule rejects %7C ("|") and %7B ("{") inside string literals; that is the
    # erratum corrected in tests/support/abnf.py. It accepts %2F and rejects %27, like the
    # corrected one.
    assert published_rule_rejects("%7C") and published_rule_rejects("%7B")
    assert not published_rule_rejects("%2F") and published_rule_rejects("%27")
    assert parses("queryOptions", "$filter=name%20eq%20'a%7Cb%7Dc%7B'")
    assert not parses("queryOptions", "$filter=name%20eq%20'a%27b'")
    assert parses("queryOptions", "$filter=name%20eq%20'a%27%27b'")  # doubled quote, encoded


_orderings = st.lists(
    st.tuples(st.sampled_from(FIELD_NAMES), st.booleans()),
    max_size=3,
    unique_by=lambda item: item[0],
)


@st.composite
def queries(draw: st.DrawFn) -> Query:
    query = Query()
    if draw(st.booleans()):
        query = query.filter(draw(expressions))
    for name, desc in draw(_orderings):
        query = query.orderby(name, desc=desc)
    selected = draw(st.lists(st.sampled_from(FIELD_NAMES), max_size=3))
    if selected:
        query = query.select(*selected)
    if draw(st.booleans()):
        query = query.top(draw(st.integers(0, 10**6)))
    if draw(st.booleans()):
        query = query.skip(draw(st.integers(0, 10**6)))
    if draw(st.booleans()):
        query = query.count(draw(st.booleans()))
    if not str(query):
        query = query.top(1)
    return query


_SLOW = [HealthCheck.too_slow, HealthCheck.data_too_large]


@settings(max_examples=80, deadline=None, suppress_health_check=_SLOW)
@given(queries())
def test_generated_queries_conform(query: Query) -> None:
    assert_conforms(query)


@settings(max_examples=80, deadline=None, suppress_health_check=_SLOW)
@given(expressions)
def test_generated_filters_conform(expr: Expr) -> None:
    assert parses("filter", "$filter=" + expr.encoded())


@settings(max_examples=120, deadline=None, suppress_health_check=_SLOW)
@given(literal_values)
def test_every_literal_conforms(value: Any) -> None:
    assert_conforms(Query().filter(F.x == value))


@settings(max_examples=100, deadline=None, suppress_health_check=_SLOW)
@given(st.text(max_size=40))
def test_arbitrary_text_conforms(value: str) -> None:
    # Any Unicode text (the grammar parser is slow on long inputs, hence the size cap; the
    # round trip of unbounded text is tested against odata_query in test_odata.py).
    assert_conforms(Query().filter(F.name == value).filter(F.description.contains(value)))


@settings(max_examples=50, deadline=None)
@given(aware_datetimes)
def test_datetimes_conform(moment: datetime) -> None:
    assert_conforms(Query().filter(F.start >= moment))


# ---------------------------------------------------------------------------------------------
# Over the wire: a real aiohttp client and a real aiohttp server
# ---------------------------------------------------------------------------------------------


class Received:
    def __init__(self) -> None:
        self.raw_paths: list[str] = []
        self.raw_query_strings: list[str] = []
        self.decoded: list[list[tuple[str, str]]] = []


@pytest.fixture
async def wire() -> AsyncIterator[tuple[str, Received]]:
    received = Received()

    async def handler(request: web.Request) -> web.Response:
        received.raw_paths.append(request.raw_path)
        received.raw_query_strings.append(request.rel_url.raw_query_string)
        received.decoded.append(list(request.query.items()))
        return web.json_response([])

    app = web.Application()
    app.router.add_get("/v3/cars/{car_id}/assignments", handler)
    async with TestServer(app) as server:
        yield str(server.make_url("/v3/cars/7/assignments")), received


WIRE_QUERIES = [
    QUERIES[0],
    QUERIES[2],
    QUERIES[5],
    QUERIES[14],
    Query().filter(F.name == "a+b=c&d#e%f/g?h").orderby("start").top(3).skip(6).count(),
]


async def test_query_string_reaches_a_real_server_byte_for_byte(
    wire: tuple[str, Received],
) -> None:
    url, received = wire
    async with aiohttp.ClientSession() as session:
        for query in WIRE_QUERIES:
            target = yarl.URL(url + "?" + str(query), encoded=True)
            async with session.get(target) as response:
                assert response.status == 200
    assert received.raw_query_strings == [str(q) for q in WIRE_QUERIES]
    assert received.raw_paths == ["/v3/cars/7/assignments?" + str(q) for q in WIRE_QUERIES]
    # the server decodes each option back to exactly what to_params() says
    assert received.decoded == [q.to_params() for q in WIRE_QUERIES]
    for raw in received.raw_query_strings:
        assert parses("queryOptions", raw), raw


async def test_aiohttp_params_would_send_plus_for_spaces(wire: tuple[str, Received]) -> None:
    """Why the SDK encodes itself: aiohttp's ``params=`` writes spaces as ``+``."""
    url, received = wire
    query = Query().filter(F.name == "a b")
    async with aiohttp.ClientSession() as session:
        async with session.get(url, params=query.to_params()) as response:
            assert response.status == 200
        async with session.get(yarl.URL(url + "?" + str(query), encoded=True)) as response:
            assert response.status == 200
    via_params, ours = received.raw_query_strings
    assert "+" in via_params and "%20" not in via_params
    assert ours == "$filter=name%20eq%20'a%20b'"
    assert received.decoded[0] == received.decoded[1] == query.to_params()
