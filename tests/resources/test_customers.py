"""``client.customers``: the wire (no ``Customer-ID``), the string-or-number ids, and the same
list from the sandbox."""

from __future__ import annotations

import pytest

from flinkey_async import F, FlinkeyClient, Query
from flinkey_async.errors import DecodeError, NotFoundError, ValidationError
from flinkey_async.models.customers import Customer
from flinkey_async.sandbox import MANAGER_NOT_FOUND, Sandbox, SandboxConfig
from tests.support.recording import API_KEY, CUSTOMER_ID, TOKEN, RecordingServer, json_response


def client_for(url: str) -> FlinkeyClient:
    return FlinkeyClient(API_KEY, CUSTOMER_ID, token=TOKEN, base_url=url)


async def test_list_is_sent_without_customer_id(server: RecordingServer) -> None:
    server.on("GET", "/customers", lambda r, _: json_response([{"id": 1, "name": "A"}]))
    async with client_for(server.url) as client:
        await client.customers.list(query=Query().filter(F.name.startswith("A")).top(5))
    (sent,) = server.requests
    assert (sent.method, sent.raw_path) == (
        "GET",
        "/v3/customers?$filter=startswith(name,'A')&$top=5",
    )
    assert sent.headers["flinkey-API-Key"] == API_KEY
    assert sent.headers["Authorization"] == f"Bearer {TOKEN}"
    assert "Customer-ID" not in sent.headers
    assert sent.body == b""


@pytest.mark.parametrize("raw_id", [7, "7", " 7 "])
async def test_ids_arrive_as_strings_or_numbers_and_are_ints(
    server: RecordingServer, raw_id: object
) -> None:
    server.on("GET", "/customers", lambda r, _: json_response([{"id": raw_id, "name": "B"}]))
    async with client_for(server.url) as client:
        assert await client.customers.list() == [Customer(id=7, name="B")]


@pytest.mark.parametrize("raw_id", ["seven", None, True, 7.5, "", "-1x"])
async def test_an_id_that_is_no_integer_is_a_decode_error(
    server: RecordingServer, raw_id: object
) -> None:
    server.on("GET", "/customers", lambda r, _: json_response([{"id": raw_id, "name": "B"}]))
    async with client_for(server.url) as client:
        with pytest.raises(DecodeError, match="'id'"):
            await client.customers.list()


async def test_a_query_naming_an_unknown_field_sends_nothing(server: RecordingServer) -> None:
    async with client_for(server.url) as client:
        with pytest.raises(ValidationError, match="nmae"):
            await client.customers.list(query=Query().filter(F.nmae == "x"))
    assert server.requests == []


async def test_the_sandbox_lists_the_same_customers() -> None:
    async with Sandbox(SandboxConfig(write_delay=0.01)) as sandbox:
        assert sandbox.url is not None
        async with FlinkeyClient(
            sandbox.config.api_key, 1, token=sandbox.issue_token(), base_url=sandbox.url
        ) as client:
            customers = await client.customers.list()
            assert [(c.id, c.name) for c in customers] == [
                (c.id, c.name) for c in (sandbox.store.customers[i] for i in sandbox.customer_ids)
            ]
            only = await client.customers.list(query=Query().filter(F.name.contains("Reilly")))
            assert [c.name for c in only] == ["O'Reilly Car Sharing Ltd."]
            # The Customer-ID header plays no part here: a client for a customer the manager
            # does not have still lists them, while its customer-scoped calls are refused.
        async with FlinkeyClient(
            sandbox.config.api_key, 999, token=sandbox.issue_token(), base_url=sandbox.url
        ) as stranger:
            assert len(await stranger.customers.list()) == len(customers)
            with pytest.raises(NotFoundError, match=MANAGER_NOT_FOUND):
                await stranger.assignments.list_for_car(101)
