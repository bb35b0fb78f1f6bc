"""``client.keyfobs``: ``GET /brands`` and ``GET /brands/{brand}/keys`` on the wire, without
``Customer-ID``; hostile brands stay one path segment; the documented 400."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web

from flinkey_async import F, Query
from flinkey_async.errors import BadRequestError, DecodeError, ValidationError
from flinkey_async.models.keyfobs import Keyfob, KeyForm
from tests.support.recording import RecordingServer, json_response
from tests.support.wire import assert_headers, client_for

KEY: dict[str, Any] = {
    "id": 801,
    "brand": "AUDI",
    "boxName": "flinkey Box M",
    "boxSapNumber": "4000-1101",
    "keyForm": {"id": 1, "name": "Flip key", "imageUrl": "https://example.com/flip.png"},
}


async def test_brands(server: RecordingServer) -> None:
    server.on("GET", "/brands", lambda r, _: json_response(["AUDI", "ŠKODA"]))
    async with client_for(server) as client:
        assert await client.keyfobs.brands() == ["AUDI", "ŠKODA"]
        await client.keyfobs.brands(query=Query().skip(1).top(1))
    plain, paged = server.requests
    assert (plain.method, plain.raw_path) == ("GET", "/v3/brands")
    assert paged.raw_path == "/v3/brands?$top=1&$skip=1"
    for rec in server.requests:
        assert_headers(rec, customer=False)


async def test_brands_are_strings(server: RecordingServer) -> None:
    server.on("GET", "/brands", lambda r, _: json_response(["AUDI", 5]))
    async with client_for(server) as client:
        with pytest.raises(DecodeError, match="expected a string"):
            await client.keyfobs.brands()


async def test_a_brands_query_may_not_name_fields(server: RecordingServer) -> None:
    async with client_for(server) as client:
        with pytest.raises(ValidationError, match="plain values"):
            await client.keyfobs.brands(query=Query().orderby("name"))
        with pytest.raises(ValidationError, match="plain values"):
            await client.keyfobs.brands(query=Query().filter(F.name == "AUDI"))
    assert server.requests == []


async def test_keys(server: RecordingServer) -> None:
    bare = {**KEY, "id": 802, "boxName": None, "boxSapNumber": None}
    server.on("GET", "/brands/AUDI/keys", lambda r, _: json_response([KEY, bare]))
    async with client_for(server) as client:
        keys = await client.keyfobs.keys("AUDI", query=Query().filter(F.box_name != None))  # noqa: E711
    form = KeyForm(1, "Flip key", "https://example.com/flip.png")
    assert keys == [
        Keyfob(801, "AUDI", "flinkey Box M", "4000-1101", form),
        Keyfob(802, "AUDI", None, None, form),
    ]
    (rec,) = server.requests
    assert (rec.method, rec.raw_path) == (
        "GET",
        "/v3/brands/AUDI/keys?$filter=boxName%20ne%20null",
    )
    assert_headers(rec, customer=False)


@pytest.mark.parametrize(
    ("brand", "segment"),
    [
        ("VW/Audi", "VW%2FAudi"),
        ("a?b=1", "a%3Fb%3D1"),
        ("a#b", "a%23b"),
        ("100%", "100%25"),
        ("..", "%2E%2E"),
        (".", "%2E"),
        ("../cars", "..%2Fcars"),
        ("ŠKODA", "%C5%A0KODA"),
        ("Citroën DS", "Citro%C3%ABn%20DS"),
        (" AUDI ", "%20AUDI%20"),  # sent as given: not trimmed, not upper-cased
    ],
)
async def test_hostile_brands_stay_one_segment(
    server: RecordingServer, brand: str, segment: str
) -> None:
    server.on("GET", f"/brands/{brand}/keys", lambda r, _: json_response([]))
    async with client_for(server) as client:
        assert await client.keyfobs.keys(brand) == []
    (rec,) = server.requests
    assert rec.raw_path == f"/v3/brands/{segment}/keys"
    assert rec.query_string == ""
    assert_headers(rec, customer=False)


async def test_invalid_brand_is_a_bad_request(server: RecordingServer) -> None:
    server.on(
        "GET",
        "/brands/NOPE/keys",
        lambda r, _: web.Response(status=400, text="Invalid brand provided."),
    )
    async with client_for(server) as client:
        with pytest.raises(BadRequestError) as info:
            await client.keyfobs.keys("NOPE")
    assert info.value.status == 400 and info.value.message == "Invalid brand provided."


@pytest.mark.parametrize("bad", ["", None, 5, b"AUDI", "AUDI\ud800"])
async def test_brand_is_checked_before_sending(server: RecordingServer, bad: object) -> None:
    async with client_for(server) as client:
        with pytest.raises(ValidationError, match="brand"):
            await client.keyfobs.keys(bad)  # type: ignore[arg-type]
    assert server.requests == []


async def test_malformed_key_form_is_a_decode_error(server: RecordingServer) -> None:
    server.on(
        "GET",
        "/brands/AUDI/keys",
        lambda r, _: json_response([{**KEY, "keyForm": {"id": 1, "name": "x"}}]),
    )
    async with client_for(server) as client:
        with pytest.raises(DecodeError, match="keyForm"):
            await client.keyfobs.keys("AUDI")
