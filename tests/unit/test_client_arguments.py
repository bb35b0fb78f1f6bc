"""Arguments of ``FlinkeyClient(...)`` and ``client.request(...)`` of the wrong type or value
raise at once (``TypeError`` naming the argument, or ``ValidationError``) and send nothing,
instead of failing later with an ``AttributeError`` or reaching the wire as ``None``, ``True``
or ``NaN``."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from flinkey_async import FlinkeyClient, RetryPolicy
from flinkey_async._pipeline import encode_segment
from flinkey_async._wire import dumps
from flinkey_async.errors import RequestTimeoutError, ValidationError
from tests.support.recording import (
    API_KEY,
    CUSTOMER_ID,
    TOKEN,
    RecordingServer,
    json_response,
)

NOWHERE = "http://127.0.0.1:9/v3"  # never contacted: every client here fails to be made


class NotAString(str):
    def __str__(self) -> str:
        return "../elsewhere"


class NotAnInt(int):
    def __str__(self) -> str:
        return "../elsewhere"

    __repr__ = __str__


class NoTracker:
    def expect(self, op: object) -> None: ...


@pytest.mark.parametrize(
    ("arguments", "error", "named"),
    [
        ({"timeout": "5"}, TypeError, "timeout"),
        ({"timeout": None}, TypeError, "timeout"),
        ({"timeout": True}, ValidationError, "timeout"),
        ({"timeout": 0}, ValidationError, "timeout"),
        ({"timeout": -1.5}, ValidationError, "timeout"),
        ({"timeout": math.nan}, ValidationError, "timeout"),
        ({"timeout": math.inf}, ValidationError, "timeout"),
        ({"timeout": aiohttp.ClientTimeout(total="5")}, ValidationError, "total"),  # type: ignore[arg-type]
        ({"timeout": aiohttp.ClientTimeout(connect=math.nan)}, ValidationError, "connect"),
        ({"limits": 3}, TypeError, "limits"),
        ({"retry": 3}, TypeError, "retry"),
        ({"retry": {"retries": 3}}, TypeError, "retry"),
        ({"session": "x"}, TypeError, "session"),
        ({"tracker": 3}, TypeError, "tracker"),
        ({"tracker": NoTracker()}, TypeError, "tracker"),
        ({"connection_limit": "x"}, TypeError, "connection_limit"),
        ({"connection_limit": 2.0}, TypeError, "connection_limit"),
        ({"connection_limit": None}, TypeError, "connection_limit"),
        ({"connection_limit": -1}, ValidationError, "connection_limit"),
        ({"connection_limit": True}, ValidationError, "connection_limit"),
        ({"deadline": "x"}, TypeError, "deadline"),
        ({"deadline": True}, ValueError, "deadline"),
        ({"trust_env": "yes"}, TypeError, "trust_env"),
        ({"trust_env": 1}, TypeError, "trust_env"),
        ({"proxy": "::::"}, ValidationError, "proxy"),
        ({"proxy": "ftp://proxy.example:21"}, ValidationError, "proxy"),
        ({"proxy": "http://"}, ValidationError, "proxy"),
        ({"proxy": 3128}, TypeError, "proxy"),
    ],
)
def test_constructor_refuses_arguments_of_the_wrong_type_or_value(
    arguments: dict[str, Any], error: type[Exception], named: str
) -> None:
    with pytest.raises(error, match=named) as caught:
        FlinkeyClient(API_KEY, CUSTOMER_ID, token=TOKEN, base_url=NOWHERE, **arguments)
    assert not isinstance(caught.value, AttributeError)


def test_the_blocking_client_refuses_them_too() -> None:
    pytest.importorskip("anyio")
    from flinkey_async.blocking import FlinkeyClient as BlockingClient

    wrong: list[dict[str, Any]] = [{"timeout": "5"}, {"retry": 3}, {"limits": 3}, {"tracker": 3}]
    for arguments in wrong:
        with pytest.raises(TypeError, match=next(iter(arguments))):
            BlockingClient(API_KEY, CUSTOMER_ID, token=TOKEN, base_url=NOWHERE, **arguments)
    with pytest.raises(ValidationError, match="connection_limit"):
        BlockingClient(API_KEY, CUSTOMER_ID, token=TOKEN, base_url=NOWHERE, connection_limit=-1)


async def test_a_number_of_seconds_is_the_total_timeout_of_an_attempt(
    server: RecordingServer,
) -> None:
    async def slow(request: web.Request, _: object) -> web.Response:
        await asyncio.sleep(1.0)
        return json_response([])

    server.on("GET", "/cars", lambda r, _: json_response([]))
    server.on("GET", "/slow", slow)
    async with FlinkeyClient(
        API_KEY,
        CUSTOMER_ID,
        token=TOKEN,
        base_url=server.url,
        timeout=0.2,
        retry=RetryPolicy.disabled(),
        connection_limit=0,  # 0: no limit (aiohttp's meaning), accepted
    ) as client:
        assert await client.request("GET", "cars") == []
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(RequestTimeoutError):
            await client.request("GET", "slow")
        assert loop.time() - started < 0.9  # the 0.2 s total, not the default 30 s
    async with FlinkeyClient(
        API_KEY, CUSTOMER_ID, token=TOKEN, base_url=server.url, timeout=3
    ) as client:  # an int too
        assert await client.request("GET", "cars") == []


async def test_setting_a_tracker_of_the_wrong_type_is_refused(server: RecordingServer) -> None:
    async with FlinkeyClient(API_KEY, CUSTOMER_ID, token=TOKEN, base_url=server.url) as client:
        with pytest.raises(TypeError, match="tracker"):
            client.tracker = 3  # type: ignore[assignment]
        assert client.tracker is None


@pytest.mark.parametrize(
    ("path", "error"),
    [
        (["cars", None], TypeError),
        (["cars", True], TypeError),
        (("cars", False), TypeError),
        (["cars", 1.0], TypeError),
        (["cars", b"7"], TypeError),
        (["cars", ""], ValidationError),
        (["cars", "\ud800"], ValidationError),
        ("cars/\ud800", ValidationError),
        (b"cars", TypeError),
        (None, TypeError),
        (7, TypeError),
    ],
)
async def test_request_refuses_path_segments_that_are_no_str_or_int(
    server: RecordingServer, path: Any, error: type[Exception]
) -> None:
    server.on("GET", "/cars/None", lambda r, _: json_response([]))
    server.on("GET", "/cars/True", lambda r, _: json_response([]))
    async with FlinkeyClient(API_KEY, CUSTOMER_ID, token=TOKEN, base_url=server.url) as client:
        with pytest.raises(error, match="path"):
            await client.request("GET", path)
    assert server.requests == []


@pytest.mark.parametrize(
    "query",
    [{"$top": None}, {"$top": True}, {"$top": 1.5}, {3: "x"}, "$top=1", [("$top", 1)]],
)
async def test_request_refuses_query_values_that_are_no_str_or_int(
    server: RecordingServer, query: Any
) -> None:
    server.on("GET", "/cars", lambda r, _: json_response([]))
    async with FlinkeyClient(API_KEY, CUSTOMER_ID, token=TOKEN, base_url=server.url) as client:
        with pytest.raises(TypeError, match="query"):
            await client.request("GET", "cars", query=query)
    assert server.requests == []


def nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("body", "error", "problem"),
    [
        ({"x": math.nan}, ValidationError, "NaN"),
        ([math.inf], ValidationError, "infinite"),
        ({"a": [{"b": -math.inf}]}, ValidationError, "infinite"),
        (nested(5_000), ValidationError, "nested too deeply"),
        ({"name": "\ud800"}, ValidationError, "not valid Unicode"),
        ({1, 2}, TypeError, "JSON-ready"),
    ],
)
async def test_request_refuses_bodies_that_json_cannot_express(
    server: RecordingServer, body: Any, error: type[Exception], problem: str
) -> None:
    server.on("PUT", "/cars", lambda r, _: web.Response(status=204))
    async with FlinkeyClient(API_KEY, CUSTOMER_ID, token=TOKEN, base_url=server.url) as client:
        with pytest.raises(error, match=problem) as caught:
            await client.request("PUT", "cars", json=body)
        assert not isinstance(caught.value, RecursionError)
        if isinstance(caught.value, ValidationError):
            assert caught.value.argument == "json"
        # The client is still usable, and finite numbers go through as they are.
        assert await client.request("PUT", "cars", json={"x": 1.5, "y": [-2.0e-7]}) is None
    assert [r.body for r in server.requests] == [b'{"x":1.5,"y":[-2e-07]}']


async def test_subclasses_of_str_and_int_are_sent_as_their_value(
    server: RecordingServer,
) -> None:
    server.on("GET", "/cars/VW/7", lambda r, _: json_response([]))
    async with FlinkeyClient(API_KEY, CUSTOMER_ID, token=TOKEN, base_url=server.url) as client:
        await client.request("GET", ["cars", NotAString("VW"), NotAnInt(7)])
        await client.request("GET", ["cars", "VW", 7], query={NotAString("a"): NotAnInt(1)})
    assert [r.raw_path for r in server.requests] == ["/v3/cars/VW/7", "/v3/cars/VW/7?a=1"]


def test_the_wire_encoder_refuses_non_finite_numbers() -> None:
    """Every body (the resources' writes too) is encoded by it: NaN and infinities are no
    JSON, and are never sent as ``NaN``, ``Infinity`` or ``null``."""
    for value in (math.nan, math.inf, -math.inf):
        with pytest.raises(ValueError):
            dumps({"lifetime": value})
    assert dumps({"a": 1.5, "b": "é"}) == '{"a":1.5,"b":"é"}'.encode()


def test_path_segments_of_no_str_or_int_are_never_encoded() -> None:
    for segment in (None, True, False, 1.0, b"7"):
        with pytest.raises(TypeError, match="path segment"):
            encode_segment(segment)  # type: ignore[arg-type]
    assert encode_segment(NotAnInt(5)) == "5"
    assert encode_segment(NotAString("VW/Audi")) == "VW%2FAudi"
