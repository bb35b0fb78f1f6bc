"""``client.groups``: ``GET /groups`` and ``GET /groups/{groupId}/cars`` on the wire (no OData:
the methods take no query), decoded as ``{id, name}`` and ``Car`` items."""

from __future__ import annotations

import inspect

import pytest

from flinkey_async.errors import DecodeError, ValidationError
from flinkey_async.models.cars import Car
from flinkey_async.models.groups import Group
from flinkey_async.resources.groups import Groups
from tests.support.recording import RecordingServer, json_response
from tests.support.wire import assert_headers, client_for


async def test_list_and_cars(server: RecordingServer) -> None:
    server.on("GET", "/groups", lambda r, _: json_response([{"id": 1, "name": "Pool"}]))
    server.on(
        "GET",
        "/groups/1/cars",
        lambda r, _: json_response(
            [
                {
                    "id": 7,
                    "name": "Golf",
                    "description": None,
                    "vin": None,
                    "licensePlate": "HH-X 1",
                    "brand": None,
                    "model": None,
                }
            ]
        ),
    )
    async with client_for(server) as client:
        assert await client.groups.list() == [Group(1, "Pool")]
        assert await client.groups.cars(1) == [Car(7, "Golf", None, None, "HH-X 1", None, None)]
    listed, cars = server.requests
    assert (listed.method, listed.raw_path) == ("GET", "/v3/groups")
    assert (cars.method, cars.raw_path) == ("GET", "/v3/groups/1/cars")
    for rec in server.requests:
        assert_headers(rec, customer=True)


def test_no_query_parameter_as_documented() -> None:
    assert "query" not in inspect.signature(Groups.list).parameters
    assert "query" not in inspect.signature(Groups.cars).parameters


async def test_malformed_group_and_bad_id(server: RecordingServer) -> None:
    server.on("GET", "/groups", lambda r, _: json_response([{"id": 1}]))
    async with client_for(server) as client:
        with pytest.raises(DecodeError, match="'name'"):
            await client.groups.list()
        with pytest.raises(ValidationError, match="group_id"):
            await client.groups.cars(0)
    assert len(server.requests) == 1
