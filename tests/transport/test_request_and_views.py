"""The escape hatch ``client.request(...)``, clients for other customers
(``client.for_customer``), wrong credentials and the DEBUG log line."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

import pytest
from aiohttp import web

from flinkey_async import F, FlinkeyClient, Query
from flinkey_async.errors import (
    AuthenticationError,
    ClientClosedError,
    InvalidCredentialsError,
    NotFoundError,
    ValidationError,
)
from flinkey_async.models import Assignment
from flinkey_async.sandbox import Sandbox, SandboxConfig
from tests.support.recording import (
    API_KEY,
    CUSTOMER_ID,
    TOKEN,
    Recorded,
    RecordingServer,
    json_response,
    token_response,
)

START = datetime(2026, 3, 1, 8, tzinfo=UTC)
ASSIGNMENT = {"id": 1, "carId": 7, "userId": 9, "start": "2026-03-01T08:00:00Z", "end": None}


def client_for(server: RecordingServer) -> FlinkeyClient:
    return FlinkeyClient(API_KEY, CUSTOMER_ID, token=TOKEN, base_url=server.url)


async def test_request_decodes_into_a_model_or_returns_json(server: RecordingServer) -> None:
    server.on("GET", "/assignments/1", lambda r, _: json_response(ASSIGNMENT))
    async with client_for(server) as client:
        assert await client.request("GET", "assignments/1", model=Assignment) == Assignment(
            1, 7, 9, START, None
        )
        assert await client.request("get", "/assignments/1/") == ASSIGNMENT
    assert [r.raw_path for r in server.requests] == ["/v3/assignments/1"] * 2
    assert server.requests[0].headers["Customer-ID"] == str(CUSTOMER_ID)


async def test_request_encodes_queries_segments_and_bodies(server: RecordingServer) -> None:
    server.on("GET", "/brands/VW/Audi/keys", lambda r, _: json_response([]))
    server.on("PUT", "/installations", lambda r, _: web.Response(status=204))
    async with client_for(server) as client:
        assert (
            await client.request(
                "GET",
                ("brands", "VW/Audi", "keys"),
                query={"$top": 5, "$filter": "name eq 'a b'"},
                customer_scoped=False,
            )
            == []
        )
        assert (
            await client.request("PUT", "installations", json={"carId": 7, "productId": 3}) is None
        )
        await client.request("GET", ("brands", "VW/Audi", "keys"), query=Query().filter(F.id == 2))
    first, put, third = server.requests
    assert first.raw_path == "/v3/brands/VW%2FAudi/keys?$top=5&$filter=name%20eq%20'a%20b'"
    assert "Customer-ID" not in first.headers
    assert (put.method, put.body) == ("PUT", b'{"carId":7,"productId":3}')
    assert put.headers["Content-Type"] == "application/json"
    assert third.raw_path == "/v3/brands/VW%2FAudi/keys?$filter=id%20eq%202"


async def test_request_raises_typed_errors_and_checks_its_arguments(
    server: RecordingServer,
) -> None:
    server.on("GET", "/cars/9", lambda r, _: web.Response(status=404, text="Unable to find a car"))
    async with client_for(server) as client:
        with pytest.raises(NotFoundError, match="Unable to find a car"):
            await client.request("GET", "cars/9")
        with pytest.raises(ValidationError):
            await client.request("TRACE", "cars/9")
        with pytest.raises(ValidationError):
            await client.request("GET", "/")
    assert len(server.requests) == 1


async def test_three_customers_through_one_parent_share_pool_and_token(
    server: RecordingServer,
) -> None:
    token_calls = 0

    def token(_: web.Request, __: Recorded) -> web.Response:
        nonlocal token_calls
        token_calls += 1
        return token_response("tok-shared")

    server.on("POST", "/oauth2/token", token)
    for car in (1, 2, 3):
        server.on("GET", f"/cars/{car}/assignments", lambda r, _: json_response([]))
    async with FlinkeyClient(
        API_KEY, 1, username="m@example.com", password="pw", base_url=server.url
    ) as parent:
        views = [parent, parent.for_customer(2), parent.for_customer(3)]
        await asyncio.gather(
            *(
                view.assignments.list_for_car(car)
                for _ in range(5)
                for car, view in zip((1, 2, 3), views, strict=True)
            )
        )
        pools = {id(view._pipeline._http()) for view in views}
        assert len(pools) == 1
        assert [v.customer_id for v in views] == [1, 2, 3]
    assert token_calls == 1
    by_path = {(r.path, r.headers["Customer-ID"]) for r in server.requests if "cars" in r.path}
    assert by_path == {
        ("/v3/cars/1/assignments", "1"),
        ("/v3/cars/2/assignments", "2"),
        ("/v3/cars/3/assignments", "3"),
    }
    assert {r.headers["Authorization"] for r in server.requests if "cars" in r.path} == {
        "Bearer tok-shared"
    }
    # Closing the parent closed the views.
    with pytest.raises(ClientClosedError):
        await views[1].assignments.list_for_car(2)


async def test_closing_a_view_leaves_the_parent_open(server: RecordingServer) -> None:
    server.on("GET", "/cars/1/assignments", lambda r, _: json_response([]))
    async with client_for(server) as parent:
        view = parent.for_customer(5)
        await view.aclose()
        with pytest.raises(ClientClosedError):
            await view.assignments.list_for_car(1)
        assert await parent.assignments.list_for_car(1) == []
    with pytest.raises(ValidationError):
        parent.for_customer(0)


async def test_a_wrong_password_is_an_authentication_error() -> None:
    async with Sandbox(SandboxConfig(write_delay=0.01)) as sandbox:
        assert sandbox.url is not None
        async with FlinkeyClient(
            sandbox.config.api_key,
            1,
            username=sandbox.config.username,
            password="not-the-password",
            base_url=sandbox.url,
        ) as client:
            with pytest.raises(AuthenticationError) as info:
                await client.assignments.get(50001)
    assert isinstance(info.value, InvalidCredentialsError)
    assert "username or password" in str(info.value)
    assert "not-the-password" not in str(info.value)


async def test_the_debug_log_names_path_query_status_attempt_and_duration(
    server: RecordingServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.on("GET", "/cars/7/assignments", lambda r, _: json_response([]))
    caplog.set_level(logging.DEBUG, logger="flinkey_async")
    async with client_for(server) as client:
        await client.assignments.list_for_car(7, query=Query().top(3))
    (line,) = [r.getMessage() for r in caplog.records if "->" in r.getMessage()]
    assert line.startswith("GET /v3/cars/7/assignments?$top=3 -> 200 (attempt 1, ")
    assert line.endswith(" ms)")
    assert API_KEY not in caplog.text and TOKEN not in caplog.text
