"""OData through the SDK against the sandbox, checked against plain Python over the same data.

Hypothesis builds, side by side, a filter with ``F`` and the Python predicate it means; the
sandbox's answer to the SDK's request must equal the Python evaluation over the fixture data.
Null semantics are two-valued, as in the LINQ-backed API: a comparison with null is false,
except ``eq``/``ne`` which compare null as a value.
"""

from __future__ import annotations

import operator
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flinkey_async import F, FlinkeyClient, Query
from flinkey_async.odata import Expr
from flinkey_async.sandbox import Sandbox, SandboxConfig

CAR = 501
BASE = datetime(2026, 3, 1, 8, tzinfo=UTC)
USERS = [7001, 7002, 7003, 7004]
ROWS: list[dict[str, Any]] = []
for i in range(40):
    ROWS.append(
        {
            "id": 90001 + i,
            "carId": CAR,
            "userId": None if i % 9 == 0 else USERS[i % 4],
            "start": BASE + timedelta(hours=7 * i),
            "end": None if i % 5 == 0 else BASE + timedelta(hours=7 * i + 24 * (1 + i % 4)),
        }
    )


def fixture() -> dict[str, Any]:
    return {
        "customers": [{"id": 1, "name": "Test & Co"}],
        "cars": [{"id": CAR, "customerId": 1, "name": "Pool car"}],
        "users": [
            {
                "id": u,
                "customerId": 1,
                "emailAddress": f"u{u}@example.com",
                "userData": {"firstName": None, "lastName": None},
            }
            for u in USERS
        ],
        "assignments": [
            {
                **row,
                "start": row["start"].strftime("%Y-%m-%dT%H:%M:%SZ"),
                "end": row["end"].strftime("%Y-%m-%dT%H:%M:%SZ") if row["end"] else None,
                "lifetime": 604800,
                "renewableAfter": None,
            }
            for row in ROWS
        ],
    }


Predicate = Callable[[dict[str, Any]], bool]
OPS: dict[str, Callable[[Any, Any], Any]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def compare(field: str, op: str, value: Any) -> tuple[Expr, Predicate]:
    ref = getattr(F, field)
    expr: Expr = OPS[op](ref, value)

    def pred(row: dict[str, Any]) -> bool:
        actual = row[field]
        if op in ("==", "!="):
            return bool(OPS[op](actual, value))
        if actual is None or value is None:
            return False
        return bool(OPS[op](actual, value))

    return expr, pred


datetimes = st.sampled_from(
    [r["start"] for r in ROWS[::3]]
    + [BASE - timedelta(days=1), BASE + timedelta(days=30)]
    + [BASE + timedelta(hours=7 * i, minutes=1) for i in (3, 17)]
)
comparisons = st.one_of(
    st.builds(
        compare, st.just("userId"), st.sampled_from(list(OPS)), st.sampled_from([*USERS, None, 0])
    ),
    st.builds(compare, st.just("id"), st.sampled_from(list(OPS)), st.integers(90000, 90042)),
    st.builds(
        compare,
        st.sampled_from(["start", "end"]),
        st.sampled_from(list(OPS)),
        st.one_of(datetimes, st.none()),
    ),
    st.builds(
        lambda values: (F.user_id.in_(values), lambda row: row["userId"] in values),
        st.lists(st.sampled_from(USERS), min_size=1, max_size=3, unique=True),
    ),
)


def combine(
    children: st.SearchStrategy[tuple[Expr, Predicate]],
) -> st.SearchStrategy[tuple[Expr, Predicate]]:
    def both(a: tuple[Expr, Predicate], b: tuple[Expr, Predicate]) -> tuple[Expr, Predicate]:
        return a[0] & b[0], lambda row: a[1](row) and b[1](row)

    def either(a: tuple[Expr, Predicate], b: tuple[Expr, Predicate]) -> tuple[Expr, Predicate]:
        return a[0] | b[0], lambda row: a[1](row) or b[1](row)

    def negate(a: tuple[Expr, Predicate]) -> tuple[Expr, Predicate]:
        return ~a[0], lambda row: not a[1](row)

    return st.one_of(
        st.builds(both, children, children),
        st.builds(either, children, children),
        st.builds(negate, children),
    )


filters = st.recursive(comparisons, combine, max_leaves=6)


def order_key(field: str, desc: bool) -> Callable[[dict[str, Any]], Any]:
    # Nulls sort first ascending (and so last descending), as the LINQ-backed API does.
    return lambda row: (row[field] is not None, row[field] if row[field] is not None else 0)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def sandbox() -> AsyncIterator[Sandbox]:
    async with Sandbox(SandboxConfig(fixture=None)) as sb:
        sb.store.load_fixture(fixture())
        yield sb


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client(sandbox: Sandbox) -> AsyncIterator[FlinkeyClient]:
    assert sandbox.url is not None
    async with FlinkeyClient(
        sandbox.config.api_key, 1, token=sandbox.issue_token(), base_url=sandbox.url
    ) as c:
        yield c


pytestmark = pytest.mark.asyncio(loop_scope="module")


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    flt=filters,
    order=st.sampled_from(["start", "end", "userId", "id"]),
    desc=st.booleans(),
    skip=st.integers(0, 8),
    top=st.integers(1, 15),
)
async def test_sdk_query_matches_python(
    client: FlinkeyClient, flt: tuple[Expr, Predicate], order: str, desc: bool, skip: int, top: int
) -> None:
    expr, pred = flt
    query = Query().filter(expr).orderby(order, desc=desc)
    if order != "id":
        query = query.orderby("id")
    query = query.skip(skip).top(top)
    got = await client.assignments.list_for_car(CAR, query=query)
    selected = [r for r in ROWS if pred(r)]
    selected.sort(key=lambda r: r["id"])
    selected.sort(key=order_key(order, desc), reverse=desc)
    expected = [r["id"] for r in selected][skip : skip + top]
    assert [a.id for a in got] == expected, str(query)


async def test_iter_for_car_pages_through_everything(client: FlinkeyClient) -> None:
    ids = [
        a.id
        async for a in client.assignments.iter_for_car(
            CAR, query=Query().orderby("id"), page_size=7
        )
    ]
    assert ids == [r["id"] for r in ROWS]


async def test_null_comparison(client: FlinkeyClient) -> None:
    query = Query().filter(F.end == None).orderby("id")  # noqa: E711 - renders "eq null"
    got = await client.assignments.list_for_car(CAR, query=query)
    assert [a.id for a in got] == [r["id"] for r in ROWS if r["end"] is None]
    assert got and all(a.end is None for a in got)
