"""Wire tests: the exact bytes each Assignments operation sends to a real aiohttp server."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest
from aiohttp import web

from flinkey_async import F, FlinkeyClient, JsonPatch, Query
from flinkey_async.errors import (
    DecodeError,
    NotFoundError,
    ValidationError,
)
from flinkey_async.models import Assignment, CarAssignment, NewAssignment, UserAssignment
from flinkey_async.webhooks import OperationTracker
from tests.support.recording import (
    API_KEY,
    CUSTOMER_ID,
    TOKEN,
    Recorded,
    RecordingServer,
    json_response,
)

START = datetime(2026, 3, 1, 8, tzinfo=UTC)


def no_content(_: web.Request, __: Recorded) -> web.Response:
    return web.Response(status=204)


def client_for(server: RecordingServer, **kw: object) -> FlinkeyClient:
    return FlinkeyClient(API_KEY, CUSTOMER_ID, token=TOKEN, base_url=server.url, **kw)  # type: ignore[arg-type]


def assert_auth_headers(rec: Recorded) -> None:
    assert rec.headers["flinkey-API-Key"] == API_KEY
    assert rec.headers["Authorization"] == f"Bearer {TOKEN}"
    assert rec.headers["Customer-ID"] == str(CUSTOMER_ID)


async def test_get_assignment(server: RecordingServer) -> None:
    server.on(
        "GET",
        "/assignments/123",
        lambda r, _: json_response(
            {
                "id": 123,
                "carId": 7,
                "userId": 9,
                "start": "2026-03-01T08:00:00Z",
                "end": None,
                "lifetime": 604800,
                "renewableAfter": 302400,
            }
        ),
    )
    async with client_for(server) as client:
        a = await client.assignments.get(123)
    assert a == Assignment(
        id=123, car_id=7, user_id=9, start=START, end=None, lifetime=604800, renewable_after=302400
    )
    (rec,) = server.requests
    assert (rec.method, rec.raw_path, rec.query_string, rec.body) == (
        "GET",
        "/v3/assignments/123",
        "",
        b"",
    )
    assert_auth_headers(rec)
    assert "Content-Type" not in rec.headers


async def test_list_for_car_with_query_sends_exact_query_string(server: RecordingServer) -> None:
    server.on(
        "GET",
        "/cars/7/assignments",
        lambda r, _: json_response(
            [
                {
                    "id": 1,
                    "userId": 9,
                    "start": "2026-03-01T08:00:00Z",
                    "end": "2026-03-02T08:00:00Z",
                },
                {"id": 2, "userId": None, "start": "2026-03-03T08:00:00Z", "end": None},
            ]
        ),
    )
    query = Query().filter(F.start >= START).orderby("start", desc=True).top(10)
    async with client_for(server) as client:
        items = await client.assignments.list_for_car(7, query=query)
    assert items == [
        CarAssignment(id=1, user_id=9, start=START, end=START + timedelta(days=1)),
        CarAssignment(id=2, user_id=None, start=START + timedelta(days=2), end=None),
    ]
    (rec,) = server.requests
    assert rec.method == "GET"
    assert rec.raw_path == "/v3/cars/7/assignments?" + str(query)
    assert (
        rec.raw_path.split("?", 1)[1]
        == "$filter=start%20ge%202026-03-01T08:00:00Z&$orderby=start%20desc&$top=10"
    )
    assert_auth_headers(rec)


async def test_list_for_user(server: RecordingServer) -> None:
    server.on(
        "GET",
        "/users/9/assignments",
        lambda r, _: json_response(
            [{"id": 1, "carId": None, "start": "2026-03-01T08:00:00Z", "end": None}]
        ),
    )
    async with client_for(server) as client:
        items = await client.assignments.list_for_user(9)
    assert items == [UserAssignment(id=1, car_id=None, start=START, end=None)]
    (rec,) = server.requests
    assert (rec.method, rec.raw_path, rec.body) == ("GET", "/v3/users/9/assignments", b"")
    assert_auth_headers(rec)


async def test_create_sends_exact_put_body_and_handles_204(server: RecordingServer) -> None:
    server.on("PUT", "/assignments", no_content)
    async with client_for(server) as client:
        op = await client.assignments.create(car_id=7, user_id=9, start=START, end=None)
    (rec,) = server.requests
    assert rec.method == "PUT" and rec.raw_path == "/v3/assignments"
    assert rec.body == b'{"carId":7,"userId":9,"start":"2026-03-01T08:00:00Z","end":null}'
    assert rec.headers["Content-Type"] == "application/json"
    assert_auth_headers(rec)
    assert op.kind == "create" and op.assignment_id is None
    assert op.request == NewAssignment(car_id=7, user_id=9, start=START, end=None)
    assert op.create_key == (CUSTOMER_ID, 7, 9, START, None)
    assert op.customer_id == CUSTOMER_ID
    assert op.body == json.loads(rec.body)
    assert len(op.checksum) == 32 and op.checksum.isupper()


async def test_create_with_all_fields_converts_to_utc(server: RecordingServer) -> None:
    server.on("PUT", "/assignments", no_content)
    cet = timezone(timedelta(hours=1))
    async with client_for(server) as client:
        op = await client.assignments.create(
            car_id=7,
            user_id=9,
            start=datetime(2026, 3, 1, 9, 0, 0, 500, tzinfo=cet),
            end=datetime(2026, 3, 8, 9, tzinfo=cet),
            lifetime=1209600,
            renewable_after=600000,
        )
    # The operation's create key holds the times as sent: UTC, whole seconds.
    assert op.create_key is not None
    _customer, _car, _user, start, end = op.create_key
    assert start == datetime(2026, 3, 1, 8, tzinfo=UTC) and start.tzinfo is UTC
    assert end == datetime(2026, 3, 8, 8, tzinfo=UTC) and end.tzinfo is UTC
    assert start.microsecond == 0
    assert server.requests[0].json() == {
        "carId": 7,
        "userId": 9,
        "start": "2026-03-01T08:00:00Z",
        "end": "2026-03-08T08:00:00Z",
        "lifetime": 1209600,
        "renewableAfter": 600000,
    }


async def test_update_sends_patch_body(server: RecordingServer) -> None:
    server.on("PATCH", "/assignments/123", no_content)
    patch = JsonPatch().replace("/end", START + timedelta(days=3)).remove("/lifetime")
    async with client_for(server) as client:
        op = await client.assignments.update(123, patch)
    (rec,) = server.requests
    assert (rec.method, rec.raw_path) == ("PATCH", "/v3/assignments/123")
    assert rec.headers["Content-Type"] == "application/json"
    assert json.loads(rec.body) == [
        {"op": "replace", "path": "/end", "value": "2026-03-04T08:00:00Z"},
        {"op": "remove", "path": "/lifetime"},
    ]
    assert_auth_headers(rec)
    assert op.kind == "update" and op.assignment_id == 123


async def test_update_sends_the_documented_patch_byte_for_byte(server: RecordingServer) -> None:
    server.on("PATCH", "/assignments/77", no_content)
    async with client_for(server) as client:
        patch = JsonPatch().replace("/lifetime", 1209600).remove("/end")
        await client.assignments.update(77, patch)
    (rec,) = server.requests
    assert rec.headers["Content-Type"] == "application/json"
    assert rec.body == (
        b'[{"op":"replace","path":"/lifetime","value":"1209600"},{"op":"remove","path":"/end"}]'
    )


async def test_delete(server: RecordingServer) -> None:
    server.on("DELETE", "/assignments/123", no_content)
    async with client_for(server) as client:
        client.tracker = OperationTracker()  # confirmed by webhook: sent at once, no read first
        op = await client.assignments.delete(123)
    (rec,) = server.requests
    assert (rec.method, rec.raw_path, rec.body) == ("DELETE", "/v3/assignments/123", b"")
    assert "Content-Type" not in rec.headers
    assert_auth_headers(rec)
    assert op.kind == "delete" and op.assignment_id == 123 and op.body is None


async def test_not_found_maps_to_typed_error(server: RecordingServer) -> None:
    server.on(
        "GET",
        "/assignments/5",
        lambda r, _: web.Response(
            status=404, text="Unable to find an assignment for the given assignmentId."
        ),
    )
    async with client_for(server) as client:
        with pytest.raises(NotFoundError) as info:
            await client.assignments.get(5)
    assert info.value.message == "Unable to find an assignment for the given assignmentId."
    assert info.value.status == 404


async def test_undecodable_2xx_body_raises_decode_error_without_secrets(
    server: RecordingServer,
) -> None:
    server.on(
        "GET",
        "/assignments/5",
        lambda r, _: web.Response(status=200, text="<html>gateway says hi</html>"),
    )
    async with client_for(server) as client:
        with pytest.raises(DecodeError) as info:
            await client.assignments.get(5)
    text = str(info.value)
    assert "gateway says hi" in text
    assert TOKEN not in text and API_KEY not in text


async def test_wrong_shape_2xx_raises_decode_error(server: RecordingServer) -> None:
    server.on("GET", "/cars/7/assignments", lambda r, _: json_response({"value": []}))
    async with client_for(server) as client:
        with pytest.raises(DecodeError, match="JSON array"):
            await client.assignments.list_for_car(7)


BAD_CREATES = [
    ({"car_id": "7"}, "car_id"),
    ({"car_id": True}, "car_id"),
    ({"car_id": 0}, "car_id"),
    ({"user_id": -1}, "user_id"),
    ({"user_id": 9.0}, "user_id"),
    ({"start": datetime(2026, 3, 1, 8)}, "start"),
    ({"start": "2026-03-01T08:00:00Z"}, "start"),
    ({"end": datetime(2026, 3, 2)}, "end"),
    ({"end": START}, "end"),
    ({"end": START - timedelta(hours=1)}, "end"),
    ({"lifetime": 604799}, "lifetime"),
    ({"lifetime": 2419201}, "lifetime"),
    ({"lifetime": "604800"}, "lifetime"),
    ({"lifetime": 700000, "renewable_after": 700000}, "renewable_after"),
    ({"renewable_after": 0}, "renewable_after"),
    ({"renewable_after": 604800}, "renewable_after"),
]


@pytest.mark.parametrize(("override", "argument"), BAD_CREATES)
async def test_bad_create_arguments_send_nothing(
    server: RecordingServer, override: dict[str, object], argument: str
) -> None:
    server.on("PUT", "/assignments", no_content)
    kwargs: dict[str, object] = {"car_id": 7, "user_id": 9, "start": START, "end": None, **override}
    async with client_for(server) as client:
        with pytest.raises(ValidationError) as info:
            await client.assignments.create(**kwargs)  # type: ignore[arg-type]
    assert info.value.argument == argument
    assert isinstance(info.value, ValueError)
    assert server.requests == []


@pytest.mark.parametrize("bad_id", ["1", 1.0, True, 0, -5, None, "1/../../users"])
async def test_bad_ids_send_nothing(server: RecordingServer, bad_id: object) -> None:
    async with client_for(server) as client:
        for call in (
            client.assignments.get,
            client.assignments.delete,
            client.assignments.list_for_car,
            client.assignments.list_for_user,
        ):
            with pytest.raises(ValidationError):
                await call(bad_id)  # type: ignore[arg-type]
    assert server.requests == []


async def test_lifetime_bounds_are_inclusive(server: RecordingServer) -> None:
    server.on("PUT", "/assignments", no_content)
    async with client_for(server) as client:
        await client.assignments.create(car_id=1, user_id=2, start=START, lifetime=604800)
        await client.assignments.create(
            car_id=1, user_id=2, start=START, lifetime=2419200, renewable_after=2419199
        )
    assert len(server.requests) == 2


def paged_handler(total: int) -> Callable[[web.Request, Recorded], web.Response]:
    """Serves ``total`` car assignments honouring $skip/$top, like the API."""

    def handler(request: web.Request, _: Recorded) -> web.Response:
        skip = int(request.query.get("$skip", 0))
        top = int(request.query.get("$top", total))
        items = [
            {"id": i, "userId": 9, "start": "2026-03-01T08:00:00Z", "end": None}
            for i in range(1, total + 1)
        ][skip : skip + top]
        return json_response(items)

    return handler


async def test_iter_for_car_walks_pages_lazily_and_stops_on_short_page(
    server: RecordingServer,
) -> None:
    server.on("GET", "/cars/7/assignments", paged_handler(25))
    async with client_for(server) as client:
        ids = [a.id async for a in client.assignments.iter_for_car(7, page_size=10)]
    assert ids == list(range(1, 26))
    queries = [r.raw_path.split("?", 1)[1] for r in server.requests]
    assert queries == ["$top=10&$skip=0", "$top=10&$skip=10", "$top=10&$skip=20"]


async def test_iter_keeps_callers_top_as_overall_limit_and_filter(server: RecordingServer) -> None:
    server.on(
        "GET",
        "/users/9/assignments",
        lambda r, _: json_response(
            [
                {"id": i, "carId": 1, "start": "2026-03-01T08:00:00Z", "end": None}
                for i in range(int(r.query["$skip"]), int(r.query["$skip"]) + int(r.query["$top"]))
            ]
        ),
    )
    query = Query().filter(F.car_id == 1).skip(5).top(12)
    async with client_for(server) as client:
        got = [a async for a in client.assignments.iter_for_user(9, query=query, page_size=5)]
    assert [a.id for a in got] == list(range(5, 17))
    queries = [r.raw_path.split("?", 1)[1] for r in server.requests]
    assert queries == [
        "$filter=carId%20eq%201&$top=5&$skip=5",
        "$filter=carId%20eq%201&$top=5&$skip=10",
        "$filter=carId%20eq%201&$top=2&$skip=15",
    ]


async def test_exact_page_size_multiple_needs_one_empty_page(server: RecordingServer) -> None:
    server.on("GET", "/cars/7/assignments", paged_handler(20))
    async with client_for(server) as client:
        iterator = client.assignments.iter_for_car(7, page_size=10)
        first = await anext(iterator)
        assert first.id == 1 and len(server.requests) == 1  # lazy: one page so far
        rest = [a async for a in iterator]
    assert len(rest) == 19 and len(server.requests) == 3


async def test_query_typo_is_caught_before_sending(server: RecordingServer) -> None:
    async with client_for(server) as client:
        with pytest.raises(ValidationError, match="carid"):
            await client.assignments.list_for_user(9, query=Query().filter(F.carid == 1))
        with pytest.raises(ValidationError, match=r"car_id|carId"):
            # per-car items have no carId field
            await client.assignments.list_for_car(7, query=Query().orderby("car_id"))
        with pytest.raises(TypeError):
            await client.assignments.list_for_car(7, query="$top=1")  # type: ignore[arg-type]
    assert server.requests == []


async def test_server_ignoring_top_cannot_push_past_the_limit(server: RecordingServer) -> None:
    server.on(
        "GET",
        "/cars/7/assignments",
        lambda r, _: json_response(
            [
                {"id": i, "userId": 9, "start": "2026-03-01T08:00:00Z", "end": None}
                for i in range(int(r.query["$skip"]) + 1, int(r.query["$skip"]) + 31)
            ]
        ),
    )  # always 30 items from $skip on, whatever $top says
    async with client_for(server) as client:
        got = [
            a async for a in client.assignments.iter_for_car(7, query=Query().top(12), page_size=10)
        ]
    assert [a.id for a in got] == list(range(1, 13))
    assert len(server.requests) == 2


async def test_a_server_ignoring_skip_ends_the_walk_with_a_decode_error(
    server: RecordingServer,
) -> None:
    """A server answering every page with the first one would make the walk endless (and
    reconcile's reads keep every page): the repeated page is an error, after one page."""
    server.on(
        "GET",
        "/cars/7/assignments",
        lambda r, _: json_response(
            [
                {"id": i, "userId": 9, "start": "2026-03-01T08:00:00Z", "end": None}
                for i in range(1, 11)
            ]
        ),
    )
    async with client_for(server) as client:
        got: list[int] = []
        with pytest.raises(DecodeError, match=r"\$skip=10 repeats the page before it"):
            async for a in client.assignments.iter_for_car(7, page_size=10):
                got.append(a.id)
    assert got == list(range(1, 11))
    assert len(server.requests) == 2


async def test_select_is_refused_by_typed_list_methods(server: RecordingServer) -> None:
    async with client_for(server) as client:
        with pytest.raises(ValidationError, match=r"\$select"):
            await client.assignments.list_for_car(7, query=Query().select("id", "start"))
        with pytest.raises(ValidationError, match=r"\$select"):
            await client.assignments.get(1, query=Query().select("id"))
    assert server.requests == []
