"""``client.installations``: the exact ``PUT``/``DELETE /installations`` bodies, the one-product
rule (checked before sending), 204, and the documented 400/404/409 texts as typed errors."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web

from flinkey_async.errors import (
    BadRequestError,
    ConflictError,
    NotFoundError,
    ProductAlreadyInstalledError,
    ProductHasNoServiceError,
    ProductTypeAlreadyInstalledError,
    ValidationError,
)
from tests.support.recording import RecordingServer
from tests.support.wire import assert_headers, client_for, no_content


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
@pytest.mark.parametrize(
    ("product", "body"),
    [
        ({"product_id": 3}, b'{"carId":7,"productId":3}'),
        ({"serial_number": "FB-2023-000301"}, b'{"carId":7,"serialNumber":"FB-2023-000301"}'),
        ({"unique_id": "B0X-\u00e4/1"}, '{"carId":7,"uniqueId":"B0X-\u00e4/1"}'.encode()),
    ],
)
async def test_install_and_uninstall_send_the_exact_body(
    server: RecordingServer, method: str, product: dict[str, Any], body: bytes
) -> None:
    server.on(method, "/installations", no_content)
    async with client_for(server) as client:
        call = client.installations.install if method == "PUT" else client.installations.uninstall
        await call(car_id=7, **product)
    (rec,) = server.requests
    assert (rec.method, rec.raw_path, rec.query_string) == (method, "/v3/installations", "")
    assert rec.body == body
    assert_headers(rec, customer=True, json_body=True)


@pytest.mark.parametrize(
    "product",
    [
        {},
        {"product_id": 3, "serial_number": "S"},
        {"serial_number": "S", "unique_id": "U"},
        {"product_id": 3, "serial_number": "S", "unique_id": "U"},
    ],
)
async def test_exactly_one_product_identifier(
    server: RecordingServer, product: dict[str, Any]
) -> None:
    async with client_for(server) as client:
        with pytest.raises(ValidationError, match="exactly one") as info:
            await client.installations.install(car_id=7, **product)
        with pytest.raises(ValidationError, match="exactly one"):
            await client.installations.uninstall(car_id=7, **product)
    assert info.value.argument == "product"
    assert server.requests == []


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"car_id": 0, "product_id": 3}, "car_id"),
        ({"car_id": "7", "product_id": 3}, "car_id"),
        ({"car_id": 7, "product_id": True}, "product_id"),
        ({"car_id": 7, "serial_number": ""}, "serial_number"),
        ({"car_id": 7, "unique_id": "  "}, "unique_id"),
        ({"car_id": 7, "unique_id": 5}, "unique_id"),
    ],
)
async def test_invalid_arguments_send_nothing(
    server: RecordingServer, kwargs: dict[str, Any], argument: str
) -> None:
    async with client_for(server) as client:
        with pytest.raises(ValidationError) as info:
            await client.installations.install(**kwargs)
    assert info.value.argument == argument
    assert server.requests == []


@pytest.mark.parametrize(
    ("status", "text", "error"),
    [
        (400, "Couldn't install product into car. No valid carId provided.", BadRequestError),
        (
            400,
            "Couldn't install product into car. No valid productId, serialNumber or uniqueId "
            "provided.",
            BadRequestError,
        ),
        (
            404,
            "Unable to find a car for the given carId which is assigned to the given customerId.",
            NotFoundError,
        ),
        (
            404,
            "Unable to find a product for the given productId, serialNumber or uniqueId.",
            NotFoundError,
        ),
        (404, "Unable to find a manager for the given OAuth ID claim data.", NotFoundError),
        (409, "The product is already installed into a car.", ProductAlreadyInstalledError),
        (409, "The product has no service assigned.", ProductHasNoServiceError),
        (
            409,
            "There is already installed a product of the same type in the car.",
            ProductTypeAlreadyInstalledError,
        ),
        (409, "Something else conflicts.", ConflictError),
    ],
)
async def test_documented_errors_are_typed(
    server: RecordingServer, status: int, text: str, error: type[Exception]
) -> None:
    server.on("PUT", "/installations", lambda r, _: web.Response(status=status, text=text))
    async with client_for(server) as client:
        with pytest.raises(error) as info:
            await client.installations.install(car_id=7, product_id=3)
    assert type(info.value) is error
    assert info.value.message == text  # type: ignore[attr-defined]
    if status == 409:
        assert isinstance(info.value, ConflictError)
    assert len(server.requests) == 1  # a refused write is not sent again
