"""Helpers of the wire tests: clients for the recording server (static token, password grant),
and the checks of what every request must (and must not) carry."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from flinkey_async import FlinkeyClient
from tests.support.recording import API_KEY, CUSTOMER_ID, TOKEN, Recorded, RecordingServer


def client_for(server: RecordingServer) -> FlinkeyClient:
    """A client with a static token, talking to ``server``."""
    return FlinkeyClient(API_KEY, CUSTOMER_ID, token=TOKEN, base_url=server.url)


def grant_client(server: RecordingServer, password: str, **options: Any) -> FlinkeyClient:
    """A client with the password grant (manager ``manager@example.com``), talking to
    ``server``; ``options`` are the client's."""
    return FlinkeyClient(
        API_KEY,
        CUSTOMER_ID,
        username="manager@example.com",
        password=password,
        base_url=server.url,
        **options,
    )


def no_content(_: web.Request, __: Recorded) -> web.Response:
    """204, as every synchronous write is answered."""
    return web.Response(status=204)


def assert_headers(rec: Recorded, *, customer: bool, json_body: bool = False) -> None:
    """The API key and the token always; ``Customer-ID`` exactly when ``customer``;
    ``Content-Type: application/json`` exactly when the request has a JSON body."""
    assert rec.headers["flinkey-API-Key"] == API_KEY
    assert rec.headers["Authorization"] == f"Bearer {TOKEN}"
    assert rec.headers["Accept"] == "application/json"
    if customer:
        assert rec.headers["Customer-ID"] == str(CUSTOMER_ID)
    else:
        assert "Customer-ID" not in rec.headers
    if json_body:
        assert rec.headers["Content-Type"] == "application/json"
    else:
        assert "Content-Type" not in rec.headers
        assert rec.body == b""
