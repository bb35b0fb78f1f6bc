"""OData query options of the sandbox, checked against plain Python over the fixture file."""

from __future__ import annotations

import asyncio
import functools
import json
import operator
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from yarl import URL

from flinkey_async.sandbox import Sandbox, SandboxConfig
from flinkey_async.sandbox.config import default_fixture_path
from flinkey_async.sandbox.odata_eval import ODataError, parse_query
from flinkey_async.sandbox.store.assignments import CAR_ASSIGNMENT_SCHEMA
from flinkey_async.sandbox.store.cars import CAR_SCHEMA
from tests.support.sandbox_helpers import odata_url

Record = dict[str, Any]

with open(default_fixture_path(), encoding="utf-8") as _fh:
    FIXTURE: dict[str, Any] = json.load(_fh)


def cars(customer: int) -> list[Record]:
    return [
        {k: c[k] for k in ("id", "name", "description", "vin", "licensePlate", "brand", "model")}
        for c in sorted(FIXTURE["cars"], key=lambda c: c["id"])
        if c["customerId"] == customer
    ]


def users(customer: int) -> list[Record]:
    return [
        {"id": u["id"], "emailAddress": u["emailAddress"], "userData": u["userData"]}
        for u in sorted(FIXTURE["users"], key=lambda u: u["id"])
        if u["customerId"] == customer
    ]


def car_items(car: int) -> list[Record]:
    return [
        {"id": a["id"], "userId": a["userId"], "start": a["start"], "end": a["end"]}
        for a in sorted(FIXTURE["assignments"], key=lambda a: a["id"])
        if a["carId"] == car
    ]


def user_items(user: int) -> list[Record]:
    return [
        {"id": a["id"], "carId": a["carId"], "start": a["start"], "end": a["end"]}
        for a in sorted(FIXTURE["assignments"], key=lambda a: a["id"])
        if a["userId"] == user
    ]


def when(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def sort_sql(records: list[Record], *keys: tuple[Callable[[Record], Any], bool]) -> list[Record]:
    """ORDER BY with NULLs lowest (first when ascending, last when descending)."""

    def compare(a: Record, b: Record) -> int:
        for get, descending in keys:
            x, y = get(a), get(b)
            if x == y:
                continue
            if x is None:
                result = -1
            elif y is None:
                result = 1
            else:
                result = -1 if x < y else 1
            return -result if descending else result
        return 0

    return sorted(records, key=functools.cmp_to_key(compare))


CUSTOMER_1_CARS = [c["id"] for c in cars(1)]


async def get_json(
    http: aiohttp.ClientSession, sandbox: Sandbox, url: URL | str, customer: int = 1
) -> tuple[int, Any]:
    async with http.get(url, headers=sandbox.auth_headers(customer)) as response:
        if response.status == 200:
            return 200, await response.json()
        return response.status, await response.text()


# --- $filter, by example ----------------------------------------------------------------------

DT_2026 = datetime(2026, 1, 1, tzinfo=UTC)
FILTER_CASES: list[tuple[str, int, dict[str, str], Callable[[], list[Record]]]] = [
    (
        "/cars",
        1,
        {"filter": "brand eq 'Volkswagen'"},
        lambda: [c for c in cars(1) if c["brand"] == "Volkswagen"],
    ),
    (
        "/cars",
        1,
        {"filter": "contains(description,'&')"},
        lambda: [c for c in cars(1) if c["description"] and "&" in c["description"]],
    ),
    (
        "/cars",
        1,
        {"filter": "startswith(name,'Zoë') or endswith(brand,'koda')"},
        lambda: [
            c for c in cars(1) if c["name"].startswith("Zoë") or (c["brand"] or "").endswith("koda")
        ],
    ),
    (
        "/cars",
        1,
        {"filter": "contains(name,'''')"},  # a quote, doubled
        lambda: [c for c in cars(1) if "'" in c["name"]],
    ),
    ("/cars", 1, {"filter": "contains(name,'golf')"}, lambda: []),  # case-sensitive
    (
        "/cars",
        1,
        {"filter": "tolower(name) eq 'bmw 320d touring'"},
        lambda: [c for c in cars(1) if c["name"].lower() == "bmw 320d touring"],
    ),
    (
        "/cars",
        1,
        {"filter": "vin eq null and licensePlate eq null"},
        lambda: [c for c in cars(1) if c["vin"] is None and c["licensePlate"] is None],
    ),
    (
        "/cars",
        2,
        {"filter": "description ne null and not contains(description,'Dublin')"},
        lambda: [
            c for c in cars(2) if c["description"] is not None and "Dublin" not in c["description"]
        ],
    ),
    (
        "/cars",
        2,
        {"filter": "id in (201, 203, 999) or length(name) gt 13"},
        lambda: [c for c in cars(2) if c["id"] in (201, 203, 999) or len(c["name"]) > 13],
    ),
    (
        "/cars",
        2,
        {"filter": "description eq 'O''Connell St. depot'"},
        lambda: [c for c in cars(2) if c["description"] == "O'Connell St. depot"],
    ),
    (
        "/users",
        2,
        {"filter": "userData/lastName eq 'O''Brien'"},
        lambda: [u for u in users(2) if u["userData"]["lastName"] == "O'Brien"],
    ),
    (
        "/users",
        1,
        {"filter": "userData/firstName eq null or userData/lastName eq null"},
        lambda: [u for u in users(1) if None in u["userData"].values()],
    ),
    (
        "/users",
        2,
        {"filter": "emailAddress eq 'sean.o''brien+fleet@oreilly-carsharing.ie'"},
        lambda: [u for u in users(2) if "+" in u["emailAddress"]],
    ),
    (
        "/users",
        1,
        {"filter": "startswith(userData/lastName,'Ø') or contains(userData/lastName,'ö')"},
        lambda: [
            u
            for u in users(1)
            if (u["userData"]["lastName"] or "").startswith("Ø")
            or "ö" in (u["userData"]["lastName"] or "")
        ],
    ),
    (
        "/cars/101/assignments",
        1,
        {"filter": "start ge 2026-01-01T00:00:00Z"},
        lambda: [a for a in car_items(101) if when(a["start"]) >= DT_2026],  # type: ignore[operator]
    ),
    (
        "/cars/101/assignments",
        1,
        {"filter": "start lt 2026-01-01T01:00:00+01:00"},
        lambda: [a for a in car_items(101) if when(a["start"]) < DT_2026],  # type: ignore[operator]
    ),
    ("/cars/106/assignments", 1, {"filter": "end eq null or end gt start"}, lambda: car_items(106)),
    (
        "/cars/106/assignments",
        1,
        {"filter": "end lt 2026-02-01T00:00:00Z"},
        lambda: [
            a
            for a in car_items(106)
            if a["end"] is not None and when(a["end"]) < datetime(2026, 2, 1, tzinfo=UTC)  # type: ignore[operator]
        ],
    ),
    (
        "/cars/106/assignments",
        1,
        {"filter": "not (end lt 2026-02-01T00:00:00Z)"},
        lambda: [
            a
            for a in car_items(106)
            if a["end"] is None or when(a["end"]) >= datetime(2026, 2, 1, tzinfo=UTC)  # type: ignore[operator]
        ],
    ),
    (
        "/cars/101/assignments",
        1,
        {"filter": "year(start) eq 2026 and month(start) le 3"},
        lambda: [
            a
            for a in car_items(101)
            if a["start"].startswith("2026-0") and int(a["start"][5:7]) <= 3
        ],
    ),
]


@pytest.mark.parametrize(("path", "customer", "options", "expected"), FILTER_CASES)
async def test_filter_matches_plain_python(
    sb: Sandbox,
    http: aiohttp.ClientSession,
    path: str,
    customer: int,
    options: dict[str, str],
    expected: Callable[[], list[Record]],
) -> None:
    status, body = await get_json(http, sb, odata_url(sb.url or "", path, **options), customer)
    assert status == 200, body
    assert body == expected()


async def test_some_filters_are_not_trivial() -> None:
    """The example filters select something and not everything (else they prove little)."""
    counts = [len(expected()) for _, _, _, expected in FILTER_CASES]
    assert sum(1 for c in counts if c > 0) >= 14


async def test_encoded_plus_arrives_as_plus_and_raw_plus_as_space(
    sb: Sandbox, http: aiohttp.ClientSession
) -> None:
    literal = "emailAddress eq 'sean.o''brien+fleet@oreilly-carsharing.ie'"
    status, body = await get_json(http, sb, odata_url(sb.url or "", "/users", filter=literal), 2)
    assert status == 200 and [u["id"] for u in body] == [2001]
    raw = URL(
        f"{sb.url}/users?$filter=emailAddress%20eq%20'sean.o''brien+fleet@oreilly-carsharing.ie'",
        encoded=True,
    )
    status, body = await get_json(http, sb, raw, 2)  # '+' means a space in a query string
    assert (status, body) == (200, [])
    offset = URL(
        f"{sb.url}/cars/101/assignments?$filter=start%20lt%202026-01-01T01:00:00%2B01:00",
        encoded=True,
    )
    status, body = await get_json(http, sb, offset)
    assert status == 200 and body == [a for a in car_items(101) if when(a["start"]) < DT_2026]  # type: ignore[operator]


# --- $orderby, $top, $skip, $select, $count ----------------------------------------------------


def _by(key: str) -> Callable[[Record], Any]:
    return lambda r: r[key]


SHAPE_CASES: list[tuple[str, int, dict[str, str], Callable[[], list[Record]]]] = [
    (
        "/cars",
        1,
        {"orderby": "brand desc,id desc"},
        lambda: sort_sql(cars(1), (_by("brand"), True), (_by("id"), True)),
    ),
    (
        "/cars",
        1,
        {"orderby": "licensePlate"},
        lambda: sort_sql(cars(1), (_by("licensePlate"), False)),
    ),
    (
        "/cars",
        2,
        {"orderby": "vin asc", "top": "3"},
        lambda: sort_sql(cars(2), (_by("vin"), False))[:3],
    ),
    (
        "/cars",
        2,
        {"orderby": "name", "skip": "4", "top": "3", "select": "name,id"},
        lambda: [
            {"id": c["id"], "name": c["name"]} for c in sort_sql(cars(2), (_by("name"), False))[4:7]
        ],
    ),
    ("/cars", 1, {"skip": "20"}, lambda: []),
    ("/cars", 1, {"top": "0"}, lambda: []),
    ("/cars", 1, {"count": "true", "select": "vin"}, lambda: [{"vin": c["vin"]} for c in cars(1)]),
    (
        "/cars",
        1,
        {"filter": "brand ne null", "orderby": "model desc", "count": "false"},
        lambda: sort_sql([c for c in cars(1) if c["brand"] is not None], (_by("model"), True)),
    ),
    (
        "/users",
        1,
        {"orderby": "userData/lastName desc,id", "select": "id,userData"},
        lambda: [
            {"id": u["id"], "userData": u["userData"]}
            for u in sort_sql(
                users(1), (lambda u: u["userData"]["lastName"], True), (_by("id"), False)
            )
        ],
    ),
    (
        "/users",
        2,
        {"orderby": "userData/firstName", "top": "5", "skip": "1"},
        lambda: sort_sql(users(2), (lambda u: u["userData"]["firstName"], False))[1:6],
    ),
    (
        "/cars/106/assignments",
        1,
        {"orderby": "end"},
        lambda: sort_sql(car_items(106), (lambda a: when(a["end"]), False)),
    ),
    (
        "/cars/106/assignments",
        1,
        {"orderby": "end desc", "select": "end"},
        lambda: [
            {"end": a["end"]} for a in sort_sql(car_items(106), (lambda a: when(a["end"]), True))
        ],
    ),
    (
        "/cars/101/assignments",
        1,
        {"orderby": "userId desc,start asc", "top": "2"},
        lambda: sort_sql(
            car_items(101), (_by("userId"), True), (lambda a: when(a["start"]), False)
        )[:2],
    ),
    ("/customers", 1, {"orderby": "name desc", "select": "id"}, lambda: [{"id": 2}, {"id": 1}]),
]


@pytest.mark.parametrize(("path", "customer", "options", "expected"), SHAPE_CASES)
async def test_options_match_plain_python(
    sb: Sandbox,
    http: aiohttp.ClientSession,
    path: str,
    customer: int,
    options: dict[str, str],
    expected: Callable[[], list[Record]],
) -> None:
    status, body = await get_json(http, sb, odata_url(sb.url or "", path, **options), customer)
    assert status == 200, body
    assert body == expected()


async def test_nulls_sort_first_ascending_and_last_descending(
    sb: Sandbox, http: aiohttp.ClientSession
) -> None:
    _, asc = await get_json(http, sb, odata_url(sb.url or "", "/cars", orderby="vin"), 1)
    _, desc = await get_json(http, sb, odata_url(sb.url or "", "/cars", orderby="vin desc"), 1)
    assert asc[0]["vin"] is None and asc[-1]["vin"] is not None
    assert desc[-1]["vin"] is None and desc[0]["vin"] is not None


async def test_select_on_single_objects(sb: Sandbox, http: aiohttp.ClientSession) -> None:
    status, body = await get_json(
        http, sb, odata_url(sb.url or "", "/cars/101", select="licensePlate,id")
    )
    assert (status, body) == (200, {"id": 101, "licensePlate": "HH-MS 1201"})
    status, body = await get_json(
        http, sb, odata_url(sb.url or "", "/assignments/50001", select="lifetime")
    )
    assert status == 200 and list(body) == ["lifetime"]
    status, body = await get_json(
        http, sb, odata_url(sb.url or "", "/users/1003", select="userData")
    )
    assert (status, body) == (200, {"userData": {"firstName": "Renée", "lastName": "D'Arcy"}})


async def test_non_odata_parameters_are_ignored(sb: Sandbox, http: aiohttp.ClientSession) -> None:
    status, body = await get_json(http, sb, f"{sb.url}/cars?foo=bar&$top=2")
    assert status == 200 and [c["id"] for c in body] == [101, 102]


# --- invalid queries ----------------------------------------------------------------------------

INVALID = [
    (
        "/cars/101/assignments",
        {"filter": "carid eq 101"},
        "Invalid OData query: unknown property 'carid'",
    ),
    (
        "/cars/101/assignments",
        {"filter": "carId eq 101"},
        "Invalid OData query: unknown property 'carId'",
    ),  # not in the per-car items
    (
        "/users",
        {"filter": "userData/middleName eq 'x'"},
        "Invalid OData query: unknown property 'userData/middleName'",
    ),
    ("/users", {"filter": "userData eq null"}, "Invalid OData query: property 'userData' is a"),
    ("/cars", {"filter": "name eq"}, "Invalid OData query: "),
    ("/cars", {"filter": "name eq 'unterminated"}, "Invalid OData query: syntax error"),
    ("/cars", {"filter": ""}, "Invalid OData query: $filter is empty"),
    (
        "/cars",
        {"filter": "id eq 'x'"},
        "Invalid OData query: cannot compare Edm.Int32 property 'id' with Edm.String literal",
    ),
    ("/cars", {"filter": "id add 1 eq 2"}, "Invalid OData query: arithmetic operators"),
    ("/cars", {"filter": "name"}, "Invalid OData query: $filter must be a boolean expression"),
    (
        "/cars",
        {"filter": "substring(name,1) eq 'x'"},
        "Invalid OData query: unsupported function 'substring'",
    ),
    ("/cars", {"filter": "contains(id,'1')"}, "Invalid OData query: contains() expects"),
    (
        "/cars/101/assignments",
        {"filter": "start ge 2026-01-01"},
        "Invalid OData query: date literal '2026-01-01' is not supported",
    ),
    ("/cars", {"top": "-1"}, "Invalid OData query: $top must be a non-negative integer"),
    ("/cars", {"top": "ten"}, "Invalid OData query: $top must be a non-negative integer"),
    ("/cars", {"skip": "1.5"}, "Invalid OData query: $skip must be a non-negative integer"),
    ("/cars", {"select": "id,colour"}, "Invalid OData query: unknown property 'colour'"),
    ("/cars", {"select": "userData/firstName"}, "Invalid OData query: invalid $select item"),
    ("/cars", {"orderby": "name sideways"}, "Invalid OData query: invalid $orderby item"),
    ("/cars", {"orderby": "nam"}, "Invalid OData query: unknown property 'nam'"),
    ("/cars", {"count": "maybe"}, "Invalid OData query: $count must be true or false"),
    ("/cars", {"expand": "owner"}, "Invalid OData query: query option '$expand' is not"),
    (
        "/cars/101",
        {"filter": "id eq 101"},
        "Invalid OData query: only $select is supported on a single object",
    ),
]


@pytest.mark.parametrize(("path", "options", "message"), INVALID)
async def test_invalid_queries_get_400(
    sb: Sandbox, http: aiohttp.ClientSession, path: str, options: dict[str, str], message: str
) -> None:
    async with http.get(
        odata_url(sb.url or "", path, **options), headers=sb.auth_headers(1)
    ) as response:
        assert response.status == 400
        assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
        text = await response.text()
    assert text.startswith(message), text


async def test_repeated_option_gets_400(sb: Sandbox, http: aiohttp.ClientSession) -> None:
    status, text = await get_json(http, sb, f"{sb.url}/cars?$top=1&$top=2")
    assert (status, text) == (
        400,
        "Invalid OData query: query option '$top' was specified more than once",
    )


# --- hypothesis: generated filters --------------------------------------------------------------

Pair = tuple[str, Callable[[Record], bool]]
ORDERING = {"lt": operator.lt, "le": operator.le, "gt": operator.gt, "ge": operator.ge}


def _comparison(
    field: str, op: str, literal: str, value: Any, convert: Callable[[Any], Any] = lambda v: v
) -> Pair:
    text = f"{field} {op} {literal}"
    if op == "eq":
        return text, lambda r: convert(r[field]) == value
    if op == "ne":
        return text, lambda r: convert(r[field]) != value
    fn = ORDERING[op]
    return (
        text,
        lambda r: r[field] is not None and value is not None and fn(convert(r[field]), value),
    )


def _dt_literal(moment: datetime, offset: timedelta) -> str:
    text = moment.astimezone(timezone(offset)).isoformat()
    return text.replace("+00:00", "Z")


ops = st.sampled_from(["eq", "ne", "lt", "le", "gt", "ge"])
moments = st.datetimes(min_value=datetime(2025, 8, 1), max_value=datetime(2026, 7, 1)).map(
    lambda d: d.replace(microsecond=0, tzinfo=UTC)
)
offsets = st.sampled_from([timedelta(0), timedelta(hours=2), timedelta(hours=-5, minutes=-30)])


@st.composite
def assignment_atoms(draw: st.DrawFn) -> Pair:
    kind = draw(st.sampled_from(["id", "userId", "start", "end", "null", "in", "year"]))
    if kind == "id":
        return _comparison("id", draw(ops), str(v := draw(st.integers(49990, 50040))), v)
    if kind == "userId":
        return _comparison("userId", draw(ops), str(v := draw(st.integers(995, 1025))), v)
    if kind in ("start", "end"):
        moment = draw(moments)
        return _comparison(kind, draw(ops), _dt_literal(moment, draw(offsets)), moment, when)
    if kind == "null":
        field = draw(st.sampled_from(["userId", "end"]))
        op = draw(st.sampled_from(["eq", "ne"]))
        return _comparison(field, op, "null", None)
    if kind == "in":
        values = draw(st.lists(st.integers(1000, 1021), min_size=1, max_size=4))
        text = f"userId in ({', '.join(map(str, values))}{',' if len(values) == 1 else ''})"
        return text, lambda r: r["userId"] in values
    year = draw(st.sampled_from([2025, 2026]))
    return f"year(start) eq {year}", lambda r: r["start"].startswith(f"{year}-")


NEEDLES = [
    "Golf",
    "'",
    "&",
    "ö",
    "Š",
    "Pool",
    "#",
    "\u2013",
    "a",
    "HH-MS 12",
    "Driver's",
    "+",
    "é",
    "o",
    "Yaris",
    "D-1",
    "WV",
]
STRING_FIELDS = ["name", "description", "vin", "licensePlate", "brand", "model"]


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@st.composite
def car_atoms(draw: st.DrawFn) -> Pair:
    field = draw(st.sampled_from(STRING_FIELDS))
    kind = draw(st.sampled_from(["contains", "startswith", "endswith", "eq", "null", "id"]))
    if kind == "id":
        return _comparison("id", draw(ops), str(v := draw(st.integers(100, 212))), v)
    if kind == "null":
        op = draw(st.sampled_from(["eq", "ne"]))
        return _comparison(field, op, "null", None)
    if kind == "eq":
        pool = [c[field] for c in cars(1) + cars(2) if c[field] is not None] + ["nothing"]
        value = draw(st.sampled_from(pool))
        return _comparison(field, draw(st.sampled_from(["eq", "ne"])), _quote(value), value)
    needle = draw(st.sampled_from(NEEDLES) | st.text(alphabet="aeo'&+ö ", max_size=3))
    method = {"contains": str.__contains__, "startswith": str.startswith, "endswith": str.endswith}[
        kind
    ]
    return (
        f"{kind}({field},{_quote(needle)})",
        lambda r: r[field] is not None and method(r[field], needle),
    )


def combined(atoms: st.SearchStrategy[Pair]) -> st.SearchStrategy[Pair]:
    def extend(children: st.SearchStrategy[Pair]) -> st.SearchStrategy[Pair]:
        def both(pair: tuple[Pair, Pair], word: str) -> Pair:
            (ta, fa), (tb, fb) = pair
            if word == "and":
                return f"({ta}) and ({tb})", lambda r: fa(r) and fb(r)
            return f"({ta}) or ({tb})", lambda r: fa(r) or fb(r)

        def negate(pair: Pair) -> Pair:
            text, fn = pair
            return f"not ({text})", lambda r: not fn(r)

        return (
            st.tuples(children, children).map(lambda p: both(p, "and"))
            | st.tuples(children, children).map(lambda p: both(p, "or"))
            | children.map(negate)
        )

    return st.recursive(atoms, extend, max_leaves=4)


ASSIGNMENTS_1 = {car: car_items(car) for car in CUSTOMER_1_CARS}


@settings(max_examples=300, deadline=None)
@given(combined(assignment_atoms()))
def test_generated_assignment_filters_in_process(pair: Pair) -> None:
    text, fn = pair
    options = parse_query([("$filter", text)], CAR_ASSIGNMENT_SCHEMA)
    for items in ASSIGNMENTS_1.values():
        assert options.apply(items) == [r for r in items if fn(r)], text


@settings(max_examples=300, deadline=None)
@given(combined(car_atoms()))
def test_generated_car_filters_in_process(pair: Pair) -> None:
    text, fn = pair
    options = parse_query([("$filter", text)], CAR_SCHEMA)
    for customer in (1, 2):
        assert options.apply(cars(customer)) == [c for c in cars(customer) if fn(c)], text


async def _check_over_http(assignment_filters: list[Pair], car_filters: list[Pair]) -> None:
    async with Sandbox(SandboxConfig(write_delay=0.0)) as sandbox, aiohttp.ClientSession() as http:
        base = sandbox.url or ""
        for text, fn in assignment_filters:
            for car in CUSTOMER_1_CARS[:4]:
                status, body = await get_json(
                    http, sandbox, odata_url(base, f"/cars/{car}/assignments", filter=text)
                )
                assert status == 200, (text, body)
                assert body == [r for r in ASSIGNMENTS_1[car] if fn(r)], text
        for text, fn in car_filters:
            for customer in (1, 2):
                status, body = await get_json(
                    http, sandbox, odata_url(base, "/cars", filter=text, orderby="id"), customer
                )
                assert status == 200, (text, body)
                assert body == [c for c in cars(customer) if fn(c)], text


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(combined(assignment_atoms()), min_size=10, max_size=10),
    st.lists(combined(car_atoms()), min_size=10, max_size=10),
)
def test_generated_filters_over_http(
    assignment_filters: list[Pair], car_filters: list[Pair]
) -> None:
    asyncio.run(_check_over_http(assignment_filters, car_filters))


def test_odata_error_text() -> None:
    with pytest.raises(ODataError) as caught:
        parse_query([("$filter", "carid eq 1")], CAR_ASSIGNMENT_SCHEMA)
    assert str(caught.value) == "Invalid OData query: unknown property 'carid'"
    assert caught.value.detail == "unknown property 'carid'"
