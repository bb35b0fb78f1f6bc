"""``client.users``: the wire of ``GET /users``, ``GET /users/{userId}``, the paging iterator and
the e-mail lookup (an exact ``eq`` on the wire), and the decoding of ``userData``."""

from __future__ import annotations

from typing import Any

import pytest

from flinkey_async import F, Query
from flinkey_async.errors import DecodeError, ValidationError
from flinkey_async.models.users import User, UserData
from tests.support.recording import RecordingServer, json_response
from tests.support.wire import assert_headers, client_for

JO: dict[str, Any] = {
    "id": 9,
    "emailAddress": "jo@example.com",
    "userData": {"firstName": "Jo", "lastName": "Doe"},
}
ANON: dict[str, Any] = {
    "id": 10,
    "emailAddress": "x@example.com",
    "userData": {"firstName": None, "lastName": None},
}


async def test_list_and_get(server: RecordingServer) -> None:
    server.on("GET", "/users", lambda r, _: json_response([JO, ANON]))
    server.on("GET", "/users/10", lambda r, _: json_response(ANON))
    async with client_for(server) as client:
        users = await client.users.list(query=Query().orderby("id", desc=True).skip(1))
        one = await client.users.get(10)
    assert users == [
        User(9, "jo@example.com", UserData("Jo", "Doe")),
        User(10, "x@example.com", UserData(None, None)),
    ]
    assert one == User(10, "x@example.com", UserData(first_name=None, last_name=None))
    listed, got = server.requests
    assert (listed.method, listed.raw_path) == ("GET", "/v3/users?$orderby=id%20desc&$skip=1")
    assert (got.method, got.raw_path) == ("GET", "/v3/users/10")
    for rec in server.requests:
        assert_headers(rec, customer=True)


async def test_iter(server: RecordingServer) -> None:
    server.queue("GET", "/users", lambda r, _: json_response([JO]), lambda r, _: json_response([]))
    async with client_for(server) as client:
        assert [u.id async for u in client.users.iter(page_size=1)] == [9]
    assert [r.raw_path for r in server.requests] == [
        "/v3/users?$top=1&$skip=0",
        "/v3/users?$top=1&$skip=1",
    ]


@pytest.mark.parametrize(
    ("address", "query"),
    [
        ("jo@example.com", "$filter=emailAddress%20eq%20'jo@example.com'"),
        # sent as given: no change of case, quotes doubled, non-ASCII and '+' encoded
        ("O'Neil+Tag@Exämple.COM", "$filter=emailAddress%20eq%20'O''Neil%2BTag@Ex%C3%A4mple.COM'"),
    ],
)
async def test_find_by_email_is_one_exact_eq(
    server: RecordingServer, address: str, query: str
) -> None:
    server.on("GET", "/users", lambda r, _: json_response([JO]))
    async with client_for(server) as client:
        found = await client.users.find_by_email(address)
    # the answer is not filtered again on the client: the server's eq decides
    assert found == [User(9, "jo@example.com", UserData("Jo", "Doe"))]
    (rec,) = server.requests
    assert rec.raw_path == "/v3/users?" + query
    assert_headers(rec, customer=True)


@pytest.mark.parametrize("bad", ["", "   ", None, 5])
async def test_find_by_email_checks_its_argument(server: RecordingServer, bad: object) -> None:
    async with client_for(server) as client:
        with pytest.raises(ValidationError, match="email_address"):
            await client.users.find_by_email(bad)  # type: ignore[arg-type]
    assert server.requests == []


@pytest.mark.parametrize(
    "item",
    [
        {"id": 9, "emailAddress": "jo@example.com"},  # userData is not nullable
        {**JO, "userData": None},
        {**JO, "emailAddress": None},
        {**JO, "userData": {"firstName": 1, "lastName": None}},
    ],
)
async def test_malformed_users_are_decode_errors(
    server: RecordingServer, item: dict[str, Any]
) -> None:
    server.on("GET", "/users", lambda r, _: json_response([item]))
    async with client_for(server) as client:
        with pytest.raises(DecodeError):
            await client.users.list()


async def test_fields_of_queries_are_the_wire_names(server: RecordingServer) -> None:
    async with client_for(server) as client:
        with pytest.raises(ValidationError, match="email"):
            await client.users.list(query=Query().filter(F.email == "x"))
    assert server.requests == []
