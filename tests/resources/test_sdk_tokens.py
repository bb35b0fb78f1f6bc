"""``client.sdk_tokens``: ``POST /sdk/token`` on the wire (no ``Customer-ID``; the exact body),
the ``id_token`` as a ``Secret``, and neither the key nor the token in a repr, a log line, an
error or a frame."""

from __future__ import annotations

import logging
import traceback

import pytest
from aiohttp import web

from flinkey_async.auth import Secret
from flinkey_async.errors import BadRequestError, DecodeError, ValidationError
from tests.support.recording import Recorded, RecordingServer, json_response
from tests.support.wire import assert_headers, client_for

SDK_KEY = "sdk-key-Qw7-never-shown"
ID_TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.never-shown-signature"


async def test_create_sends_the_body_without_customer_id(server: RecordingServer) -> None:
    server.on("POST", "/sdk/token", lambda r, _: json_response({"id_token": ID_TOKEN}))
    async with client_for(server) as client:
        token = await client.sdk_tokens.create(customer_id=5, sdk_key=SDK_KEY, user_id=9)
    assert isinstance(token, Secret) and token.reveal() == ID_TOKEN
    assert ID_TOKEN not in repr(token) and ID_TOKEN not in str(token)
    (rec,) = server.requests
    assert (rec.method, rec.raw_path) == ("POST", "/v3/sdk/token")
    assert rec.body == b'{"customerId":5,"sdkKey":"sdk-key-Qw7-never-shown","userId":9}'
    assert_headers(rec, customer=False, json_body=True)


async def test_a_secret_sdk_key_is_accepted(server: RecordingServer) -> None:
    server.on("POST", "/sdk/token", lambda r, _: json_response({"id_token": ID_TOKEN}))
    async with client_for(server) as client:
        await client.sdk_tokens.create(customer_id=5, sdk_key=Secret(SDK_KEY), user_id=9)
    assert server.requests[0].json()["sdkKey"] == SDK_KEY


def with_locals(error: BaseException) -> str:
    """The traceback as printed with every frame's local variables (as error trackers keep)."""
    return "".join(traceback.TracebackException.from_exception(error, capture_locals=True).format())


def refuse(_: web.Request, __: Recorded) -> web.Response:
    return web.Response(status=400, text="Invalid combination of customerId, sdkKey and userId.")


async def test_invalid_combination_is_a_bad_request_without_secrets(
    server: RecordingServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.on("POST", "/sdk/token", refuse)
    caplog.set_level(logging.DEBUG, logger="flinkey_async")
    async with client_for(server) as client:
        with pytest.raises(BadRequestError) as info:
            await client.sdk_tokens.create(customer_id=5, sdk_key=SDK_KEY, user_id=9)
    assert info.value.message == "Invalid combination of customerId, sdkKey and userId."
    shown = with_locals(info.value)
    assert SDK_KEY not in shown and SDK_KEY not in caplog.text
    assert "SecretBody(<" in shown  # the body's frames show only its length


#: Answers that are not ``{id_token: string}`` (by index: the test's frame must not hold them).
MALFORMED: list[object] = [
    {"id_token": 5},
    {"idToken": ID_TOKEN},
    [ID_TOKEN],
    {"id_token": [ID_TOKEN]},
]


@pytest.mark.parametrize("index", range(len(MALFORMED)))
async def test_a_malformed_answer_never_quotes_the_body(
    server: RecordingServer, index: int
) -> None:
    server.on("POST", "/sdk/token", lambda r, _: json_response(MALFORMED[index]))
    async with client_for(server) as client:
        with pytest.raises(DecodeError) as info:
            await client.sdk_tokens.create(customer_id=5, sdk_key=SDK_KEY, user_id=9)
    error = info.value
    assert error.excerpt is None and error.__context__ is None and error.__cause__ is None
    shown = with_locals(error)
    assert ID_TOKEN not in shown and SDK_KEY not in shown


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"customer_id": 0, "sdk_key": SDK_KEY, "user_id": 9}, "customer_id"),
        ({"customer_id": 5, "sdk_key": SDK_KEY, "user_id": "9"}, "user_id"),
        ({"customer_id": 5, "sdk_key": "", "user_id": 9}, "sdk_key"),
    ],
)
async def test_arguments_are_checked_before_sending(
    server: RecordingServer, kwargs: dict[str, object], argument: str
) -> None:
    async with client_for(server) as client:
        with pytest.raises(ValidationError) as info:
            await client.sdk_tokens.create(**kwargs)  # type: ignore[arg-type]
    assert info.value.argument == argument
    assert SDK_KEY not in str(info.value)
    assert server.requests == []


async def test_a_non_string_sdk_key_is_refused_without_quoting_it(
    server: RecordingServer,
) -> None:
    async with client_for(server) as client:
        with pytest.raises(TypeError, match="sdk_key must be a str") as info:
            await client.sdk_tokens.create(customer_id=5, sdk_key=b"raw-bytes-key", user_id=9)  # type: ignore[arg-type]
    assert "raw-bytes-key" not in str(info.value)
    assert server.requests == []
