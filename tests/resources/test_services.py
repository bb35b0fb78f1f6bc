"""``client.services``: the wire of ``GET /services`` and ``GET /services/{serviceId}`` (and the
iterator), and the decoding of the v3 ``Service`` schema (no ``productId``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from flinkey_async import F, Query
from flinkey_async.errors import DecodeError, ValidationError
from flinkey_async.models.services import Service
from tests.support.recording import RecordingServer, json_response
from tests.support.wire import assert_headers, client_for

ACTIVE: dict[str, Any] = {
    "id": 1,
    "name": "flinkey Go",
    "isTerminated": False,
    "terminationDate": None,
    "terminationCause": None,
}
ENDED: dict[str, Any] = {
    "id": 2,
    "name": "flinkey Go (old)",
    "isTerminated": True,
    "terminationDate": "2025-12-31T23:00:00+00:00",
    "terminationCause": "cancelled",
    "productId": 5,  # the older schema's field: ignored
}


async def test_list_get_and_iter(server: RecordingServer) -> None:
    server.queue(
        "GET",
        "/services",
        lambda r, _: json_response([ACTIVE, ENDED]),
        lambda r, _: json_response([ACTIVE, ENDED]),
        lambda r, _: json_response([]),
    )
    server.on("GET", "/services/2", lambda r, _: json_response(ENDED))
    async with client_for(server) as client:
        listed = await client.services.list(query=Query().filter(F.is_terminated == True))  # noqa: E712
        one = await client.services.get(2)
        walked = [s.id async for s in client.services.iter(page_size=2)]
    ended = Service(
        2, "flinkey Go (old)", True, datetime(2025, 12, 31, 23, tzinfo=UTC), "cancelled"
    )
    assert listed == [Service(1, "flinkey Go", False, None, None), ended]
    assert one == ended
    assert walked == [1, 2]
    assert [(r.method, r.raw_path) for r in server.requests] == [
        ("GET", "/v3/services?$filter=isTerminated%20eq%20true"),
        ("GET", "/v3/services/2"),
        ("GET", "/v3/services?$top=2&$skip=0"),
        ("GET", "/v3/services?$top=2&$skip=2"),
    ]
    for rec in server.requests:
        assert_headers(rec, customer=True)


@pytest.mark.parametrize(("field", "value"), [("isTerminated", "false"), ("name", None)])
async def test_malformed_services_are_decode_errors(
    server: RecordingServer, field: str, value: object
) -> None:
    server.on("GET", "/services/1", lambda r, _: json_response({**ACTIVE, field: value}))
    async with client_for(server) as client:
        with pytest.raises(DecodeError, match=repr(field)):
            await client.services.get(1)


async def test_the_v3_schema_has_no_product_id(server: RecordingServer) -> None:
    async with client_for(server) as client:
        with pytest.raises(ValidationError, match="productId"):
            await client.services.list(query=Query().filter(F.product_id == 5))
    assert server.requests == []
