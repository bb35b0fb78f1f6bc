"""``client.pairings``: the exact ``PUT /pairings`` and ``DELETE /pairings`` bodies (a DELETE
with a JSON body), the one-product rule, 204."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web

from flinkey_async.errors import ConflictError, ValidationError
from tests.support.recording import RecordingServer
from tests.support.wire import assert_headers, client_for, no_content


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
@pytest.mark.parametrize(
    ("product", "body"),
    [
        ({"product_id": 3}, b'{"serviceId":40,"productId":3}'),
        ({"serial_number": "S-1"}, b'{"serviceId":40,"serialNumber":"S-1"}'),
        ({"unique_id": 'U"1'}, b'{"serviceId":40,"uniqueId":"U\\"1"}'),
    ],
)
async def test_pair_and_unpair_send_the_exact_body(
    server: RecordingServer, method: str, product: dict[str, Any], body: bytes
) -> None:
    server.on(method, "/pairings", no_content)
    async with client_for(server) as client:
        call = client.pairings.pair if method == "PUT" else client.pairings.unpair
        await call(service_id=40, **product)
    (rec,) = server.requests
    assert (rec.method, rec.raw_path) == (method, "/v3/pairings")
    assert rec.body == body
    assert_headers(rec, customer=True, json_body=True)


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"service_id": 40}, "product"),
        ({"service_id": 40, "product_id": 3, "unique_id": "U"}, "product"),
        ({"service_id": 0, "product_id": 3}, "service_id"),
        ({"service_id": 40, "product_id": 2**31}, "product_id"),
    ],
)
async def test_invalid_arguments_send_nothing(
    server: RecordingServer, kwargs: dict[str, Any], argument: str
) -> None:
    async with client_for(server) as client:
        for call in (client.pairings.pair, client.pairings.unpair):
            with pytest.raises(ValidationError) as info:
                await call(**kwargs)
            assert info.value.argument == argument
    assert server.requests == []


async def test_an_error_arrives_typed_by_status(server: RecordingServer) -> None:
    server.on("DELETE", "/pairings", lambda r, _: web.Response(status=409, text="not paired"))
    async with client_for(server) as client:
        with pytest.raises(ConflictError, match="not paired"):
            await client.pairings.unpair(service_id=40, product_id=3)
