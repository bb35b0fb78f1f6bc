"""``client.products``: the wire of ``GET /products`` and ``GET /products/{productId}`` (and the
iterator), and the decoding of the v3 ``Product`` schema."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from flinkey_async import F, Query
from flinkey_async.errors import DecodeError, ValidationError
from flinkey_async.models.products import Product, ProductType
from tests.support.recording import RecordingServer, json_response
from tests.support.wire import assert_headers, client_for

BOX: dict[str, Any] = {
    "id": 3,
    "uniqueId": "U-3",
    "serialNumber": "S-3",
    "sapNumber": "4000-1101",
    "dongleTerminationTimeStamp": "2027-01-31T23:00:00Z",
    "type": "flinkey Box",
}
IQ: dict[str, Any] = {**BOX, "id": 4, "dongleTerminationTimeStamp": None, "type": "flinkey IQ"}


async def test_list_get_and_iter(server: RecordingServer) -> None:
    server.on("GET", "/products", lambda r, _: json_response([BOX, IQ]))
    server.on("GET", "/products/4", lambda r, _: json_response(IQ))
    query = Query().filter(F.type == "flinkey IQ")
    async with client_for(server) as client:
        listed = await client.products.list(query=query)
        one = await client.products.get(4)
        walked = [p.id async for p in client.products.iter(page_size=5)]
    assert listed == [
        Product(
            3, "U-3", "S-3", "4000-1101", datetime(2027, 1, 31, 23, tzinfo=UTC), ProductType.BOX
        ),
        Product(4, "U-3", "S-3", "4000-1101", None, ProductType.IQ),
    ]
    assert one.type is ProductType.IQ and one.dongle_termination_time_stamp is None
    assert walked == [3, 4]
    assert [(r.method, r.raw_path) for r in server.requests] == [
        ("GET", "/v3/products?$filter=type%20eq%20'flinkey%20IQ'"),
        ("GET", "/v3/products/4"),
        ("GET", "/v3/products?$top=5&$skip=0"),
    ]
    for rec in server.requests:
        assert_headers(rec, customer=True)


async def test_a_type_added_later_is_kept_as_text(server: RecordingServer) -> None:
    server.on("GET", "/products/5", lambda r, _: json_response({**BOX, "type": "flinkey Go"}))
    async with client_for(server) as client:
        product = await client.products.get(5)
    assert product.type == "flinkey Go" and not isinstance(product.type, ProductType)


@pytest.mark.parametrize(
    ("field", "value"),
    [("sapNumber", None), ("type", None), ("dongleTerminationTimeStamp", "soon"), ("id", "3")],
)
async def test_malformed_products_are_decode_errors(
    server: RecordingServer, field: str, value: object
) -> None:
    server.on("GET", "/products", lambda r, _: json_response([{**BOX, field: value}]))
    async with client_for(server) as client:
        with pytest.raises(DecodeError, match=repr(field)):
            await client.products.list()


async def test_arguments_are_checked_before_sending(server: RecordingServer) -> None:
    async with client_for(server) as client:
        with pytest.raises(ValidationError, match="product_id"):
            await client.products.get(-3)
        with pytest.raises(ValidationError, match="serial"):
            await client.products.list(query=Query().filter(F.serial == "x"))
    assert server.requests == []
