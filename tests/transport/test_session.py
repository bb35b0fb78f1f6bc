"""Session layer against a real local server: tokens, refresh, retries, lifecycle, secrets."""

from __future__ import annotations

import asyncio
import logging
import traceback
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from flinkey_async import FlinkeyClient, JsonPatch, RetryPolicy
from flinkey_async.auth import PasswordGrant, StaticToken, parse_token_response
from flinkey_async.errors import (
    ClientClosedError,
    DecodeError,
    InvalidApiKeyError,
    InvalidTokenError,
    RateLimitError,
    RequestTimeoutError,
    ServerError,
    TransportError,
)
from tests.support import wire
from tests.support.recording import (
    API_KEY,
    CUSTOMER_ID,
    Recorded,
    RecordingServer,
    json_response,
    token_response,
)

PASSWORD = "pa ss&word=+%"
ASSIGNMENT = {"id": 1, "carId": 7, "userId": 9, "start": "2026-03-01T08:00:00Z", "end": None}
TOKEN_401 = {"statusCode": 401, "message": "Unauthorized. Access token is missing or invalid."}
FAST = RetryPolicy(max_retries=3, backoff_base=0.001, backoff_max=0.01, jitter=0)


def grant_client(server: RecordingServer, **kw: Any) -> FlinkeyClient:
    return wire.grant_client(server, PASSWORD, **kw)


def ok(_: web.Request, __: Recorded) -> web.Response:
    return json_response(ASSIGNMENT)


async def test_token_request_is_form_encoded_with_only_api_key(server: RecordingServer) -> None:
    server.on("POST", "/oauth2/token", lambda r, _: token_response("tok-1"))
    server.on("GET", "/assignments/1", ok)
    async with grant_client(server) as client:
        await client.assignments.get(1)
    token_req, get_req = server.requests
    assert (token_req.method, token_req.raw_path) == ("POST", "/v3/oauth2/token")
    assert token_req.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert token_req.body == (
        b"username=manager%40example.com&password=pa+ss%26word%3D%2B%25&grant_type=password"
    )
    assert token_req.headers["flinkey-API-Key"] == API_KEY
    assert "Authorization" not in token_req.headers and "Customer-ID" not in token_req.headers
    assert get_req.headers["Authorization"] == "Bearer tok-1"


async def test_fifty_concurrent_calls_fetch_one_token(server: RecordingServer) -> None:
    app_token_calls = 0

    def token(_: web.Request, __: Recorded) -> web.Response:
        nonlocal app_token_calls
        app_token_calls += 1
        return token_response("tok-1")

    server.on("POST", "/oauth2/token", token)
    server.on("GET", "/assignments/1", ok)
    async with grant_client(server) as client:
        results = await asyncio.gather(*(client.assignments.get(1) for _ in range(50)))
    assert len(results) == 50
    assert app_token_calls == 1
    assert len(server.for_path("/v3/oauth2/token")) == 1
    assert {r.headers["Authorization"] for r in server.for_path("/v3/assignments/1")} == {
        "Bearer tok-1"
    }


async def test_token_refreshed_after_expiry(server: RecordingServer) -> None:
    tokens = iter(["tok-1", "tok-2"])
    server.on("POST", "/oauth2/token", lambda r, _: token_response(next(tokens), "3600"))
    server.on("GET", "/assignments/1", ok)
    now = [1000.0]
    async with grant_client(server) as client:
        provider = client._pipeline.token_provider
        assert isinstance(provider, PasswordGrant)
        provider._clock = lambda: now[0]
        await client.assignments.get(1)
        now[0] += 3000  # still valid (refresh margin is 60 s)
        await client.assignments.get(1)
        now[0] += 550  # within 60 s of expiry: refreshed before use
        await client.assignments.get(1)
    auths = [r.headers["Authorization"] for r in server.for_path("/v3/assignments/1")]
    assert auths == ["Bearer tok-1", "Bearer tok-1", "Bearer tok-2"]
    assert len(server.for_path("/v3/oauth2/token")) == 2


async def test_single_retry_after_invalid_token_401(server: RecordingServer) -> None:
    tokens = iter(["tok-1", "tok-2", "tok-3"])
    server.on("POST", "/oauth2/token", lambda r, _: token_response(next(tokens)))
    server.queue("GET", "/assignments/1", lambda r, _: json_response(TOKEN_401, 401))
    server.on("GET", "/assignments/1", ok)
    async with grant_client(server) as client:
        a = await client.assignments.get(1)
    assert a.id == 1
    auths = [r.headers["Authorization"] for r in server.for_path("/v3/assignments/1")]
    assert auths == ["Bearer tok-1", "Bearer tok-2"]


async def test_401_twice_is_raised_after_one_refresh(server: RecordingServer) -> None:
    tokens = iter(["tok-1", "tok-2", "tok-3"])
    server.on("POST", "/oauth2/token", lambda r, _: token_response(next(tokens)))
    server.on("GET", "/assignments/1", lambda r, _: json_response(TOKEN_401, 401))
    async with grant_client(server) as client:
        with pytest.raises(InvalidTokenError):
            await client.assignments.get(1)
    assert len(server.for_path("/v3/assignments/1")) == 2
    assert len(server.for_path("/v3/oauth2/token")) == 2


async def test_static_token_401_is_not_retried(server: RecordingServer) -> None:
    server.on("GET", "/assignments/1", lambda r, _: json_response(TOKEN_401, 401))
    async with FlinkeyClient(API_KEY, CUSTOMER_ID, token="static", base_url=server.url) as c:
        with pytest.raises(InvalidTokenError):
            await c.assignments.get(1)
    assert len(server.requests) == 1


async def test_invalid_api_key_on_token_request(server: RecordingServer) -> None:
    server.on(
        "POST",
        "/oauth2/token",
        lambda r, _: json_response(
            {
                "statusCode": 401,
                "message": "Access denied due to invalid subscription key. Make sure "
                "to provide a valid key for an active subscription.",
            },
            401,
        ),
    )
    async with grant_client(server) as client:
        with pytest.raises(InvalidApiKeyError):
            await client.assignments.get(1)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"expires_in": "3600"}, "no access_token"),
        ({"access_token": "s3cr3t-token", "expires_in": "soon"}, "invalid expires_in"),
        ({"access_token": "s3cr3t-token", "expires_in": "-5"}, "between 0 and"),
        ([1], "not a JSON object"),
    ],
)
def test_bad_token_responses_never_show_the_token(data: Any, message: str) -> None:
    with pytest.raises(DecodeError) as info:
        parse_token_response(data)
    assert message in str(info.value)
    assert "s3cr3t" not in str(info.value)


def test_expires_in_accepts_string_and_number() -> None:
    assert parse_token_response({"access_token": "t", "expires_in": "3600"}).expires_in == 3600
    assert parse_token_response({"access_token": "t", "expires_in": 120}).expires_in == 120


async def test_429_is_retried_after_retry_after_then_succeeds(server: RecordingServer) -> None:
    server.queue(
        "PUT",
        "/assignments",
        lambda r, _: json_response(
            {"status": "429", "message": "Rate limit is exceeded. Try again in 1 seconds."},
            429,
            headers={"Retry-After": "0"},
        ),
    )
    server.on("PUT", "/assignments", lambda r, _: web.Response(status=204))
    from datetime import UTC, datetime

    async with FlinkeyClient(
        API_KEY, CUSTOMER_ID, token="t", base_url=server.url, retry=FAST
    ) as client:
        await client.assignments.create(car_id=1, user_id=2, start=datetime(2026, 1, 1, tzinfo=UTC))
    assert len(server.for_path("/v3/assignments")) == 2


async def test_429_beyond_cap_raises_rate_limit_error(server: RecordingServer) -> None:
    server.on(
        "GET",
        "/assignments/1",
        lambda r, _: json_response(
            {"status": "429", "message": "Rate limit is exceeded. Try again in 600 seconds."}, 429
        ),
    )
    async with FlinkeyClient(
        API_KEY, CUSTOMER_ID, token="t", base_url=server.url, retry=FAST
    ) as client:
        with pytest.raises(RateLimitError) as info:
            await client.assignments.get(1)
    assert info.value.retry_after == 600
    assert len(server.requests) == 1


async def test_get_retried_on_503_but_write_never_on_500(server: RecordingServer) -> None:
    server.queue(
        "GET",
        "/assignments/1",
        lambda r, _: web.Response(status=503, text="busy"),
        lambda r, _: web.Response(status=502, text="bad gateway"),
    )
    server.on("GET", "/assignments/1", ok)
    server.on(
        "DELETE",
        "/assignments/1",
        lambda r, _: web.Response(status=500, text="Internal server error."),
    )
    async with FlinkeyClient(
        API_KEY, CUSTOMER_ID, token="t", base_url=server.url, retry=FAST
    ) as client:
        assert (await client.assignments.get(1)).id == 1
        with pytest.raises(ServerError, match=r"Internal server error\."):
            await client.assignments.delete(1)  # read first (polling), then sent once
    assert [r.method for r in server.for_path("/v3/assignments/1")] == ["GET"] * 3 + [
        "GET",
        "DELETE",
    ]


async def test_connection_refused_maps_to_transport_error() -> None:
    async with FlinkeyClient(
        API_KEY,
        CUSTOMER_ID,
        token="t",
        base_url="http://127.0.0.1:9/v3",
        retry=RetryPolicy.disabled(),
    ) as client:
        with pytest.raises(TransportError, match="cannot connect"):
            await client.assignments.get(1)


@pytest.mark.parametrize("own_session", [False, True])
async def test_timeout_maps_to_request_timeout(own_session: bool) -> None:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(1)
        return json_response(ASSIGNMENT)

    app = web.Application()
    app.router.add_get("/v3/assignments/1", slow)
    slow_server = TestServer(app)
    await slow_server.start_server()
    # A caller's session with a long timeout of its own: the client's timeout still applies.
    session = (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) if own_session else None
    )
    try:
        async with FlinkeyClient(
            API_KEY,
            CUSTOMER_ID,
            token="t",
            base_url=str(slow_server.make_url("/v3")),
            session=session,
            timeout=aiohttp.ClientTimeout(total=0.1),
            retry=RetryPolicy.disabled(),
        ) as client:
            started = asyncio.get_running_loop().time()
            with pytest.raises(RequestTimeoutError, match="timed out"):
                await client.assignments.get(1)
            assert asyncio.get_running_loop().time() - started < 0.9
    finally:
        if session is not None:
            await session.close()
        await slow_server.close()


async def test_caller_session_is_used_and_not_closed(server: RecordingServer) -> None:
    server.on("GET", "/assignments/1", ok)
    async with aiohttp.ClientSession() as session:
        async with FlinkeyClient(
            API_KEY, CUSTOMER_ID, token="t", base_url=server.url, session=session
        ) as client:
            await client.assignments.get(1)
        assert not session.closed
    assert len(server.requests) == 1


async def test_owned_session_is_created_once_and_closed(server: RecordingServer) -> None:
    server.on("GET", "/assignments/1", ok)
    client = FlinkeyClient(API_KEY, CUSTOMER_ID, token="t", base_url=server.url)
    await client.assignments.get(1)
    first = client._pipeline._http_session
    await client.assignments.get(1)
    assert client._pipeline._http_session is first and first is not None
    await client.aclose()
    assert first.closed
    with pytest.raises(RuntimeError, match="closed"):
        await client.assignments.get(1)


def test_constructor_rejects_bad_credentials() -> None:
    with pytest.raises(TypeError):
        FlinkeyClient(API_KEY, CUSTOMER_ID)
    with pytest.raises(TypeError):
        FlinkeyClient(API_KEY, CUSTOMER_ID, token="t", username="u", password="p")
    with pytest.raises(ValueError):
        FlinkeyClient(API_KEY, "42", token="t")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        FlinkeyClient(API_KEY, CUSTOMER_ID, token="t", base_url="ftp://x")


async def test_secrets_never_leak(
    server: RecordingServer, caplog: pytest.LogCaptureFixture
) -> None:
    secret_token = "tok-SECRET-777"
    server.on("POST", "/oauth2/token", lambda r, _: token_response(secret_token))
    server.on("GET", "/assignments/1", lambda r, _: web.Response(status=500, text="boom"))
    caplog.set_level(logging.DEBUG)
    client = FlinkeyClient(
        API_KEY,
        CUSTOMER_ID,
        username="manager@example.com",
        password=PASSWORD,
        base_url=server.url,
        retry=RetryPolicy(max_retries=1, backoff_base=0.001, jitter=0),
    )
    texts = [
        repr(client),
        str(client),
        repr(client._pipeline.token_provider),
        repr(StaticToken(secret_token)),
    ]
    try:
        await client.assignments.get(1)
    except ServerError as exc:
        texts += [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
    finally:
        await client.aclose()
    texts.append(caplog.text)
    assert len(texts) == 8
    blob = "\n".join(texts)
    for secret in (API_KEY, PASSWORD, secret_token):
        assert secret not in blob
    assert "GET /v3/assignments/1 -> 500 (attempt 1, " in caplog.text


@pytest.mark.parametrize("fail_on", ["token", "request"])
async def test_no_secret_in_traceback_locals(server: RecordingServer, fail_on: str) -> None:
    """Error trackers and `pytest --showlocals` print every frame's local variables."""
    secret_token = "tok-LOCALS-555"
    if fail_on == "token":
        server.on("POST", "/oauth2/token", lambda r, _: web.Response(status=500, text="down"))
    else:
        server.on("POST", "/oauth2/token", lambda r, _: token_response(secret_token))
        server.on("GET", "/assignments/1", lambda r, _: web.Response(status=400, text="bad"))
    async with grant_client(server, retry=RetryPolicy.disabled()) as client:
        with pytest.raises(Exception) as info:
            await client.assignments.get(1)
    exc = info.value
    assert exc.__traceback__ is not None
    below_test = exc.with_traceback(exc.__traceback__.tb_next)  # the SDK's frames only
    rendered = "".join(
        traceback.TracebackException.from_exception(below_test, capture_locals=True).format()
    )
    assert "flinkey_async/_pipeline.py" in rendered
    assert "RedactedHeaders" in rendered or "Secret(" in rendered
    for secret in (API_KEY, PASSWORD, secret_token):
        assert secret not in rendered


async def test_closing_the_client_lets_a_call_of_a_customer_view_finish(
    server: RecordingServer,
) -> None:
    """A view shares the client's session: closing the client waits for the view's calls
    as for its own, instead of closing the session under them."""

    async def slow(_: web.Request, __: Recorded) -> web.Response:
        await asyncio.sleep(0.3)
        return web.Response(status=204)

    server.on("PATCH", "/assignments/1", slow)
    client = FlinkeyClient(API_KEY, CUSTOMER_ID, token="t", base_url=server.url, retry=FAST)
    view = client.for_customer(7)
    call = asyncio.ensure_future(view.assignments.update(1, JsonPatch().remove("/end")))
    await asyncio.sleep(0.1)  # the view's PATCH is in flight
    await client.aclose(timeout=5)
    op = await call
    assert op.customer_id == 7 and op.assignment_id == 1


async def test_closing_lets_a_call_waiting_for_its_token_finish(server: RecordingServer) -> None:
    """A call in flight gets the close's ``timeout`` to finish, also while it waits for its
    token; past the timeout it ends with ClientClosedError, never a bare CancelledError."""

    async def slow_token(_: web.Request, __: Recorded) -> web.Response:
        await asyncio.sleep(0.4)
        return token_response("tok-slow")

    server.on("POST", "/oauth2/token", slow_token)
    server.on("GET", "/assignments/1", ok)
    client = grant_client(server)
    call = asyncio.ensure_future(client.assignments.get(1))
    await asyncio.sleep(0.1)  # the call waits for its token now
    await client.aclose(timeout=5)
    assert (await call).id == 1
    assert [r.path for r in server.requests] == ["/v3/oauth2/token", "/v3/assignments/1"]

    server.requests.clear()
    client = grant_client(server)
    call = asyncio.ensure_future(client.assignments.get(1))
    await asyncio.sleep(0.1)
    await client.aclose(timeout=0.05)  # shorter than the token fetch: it is cancelled
    with pytest.raises(ClientClosedError, match="waited for its access token"):
        await call
    assert [r.path for r in server.requests] == ["/v3/oauth2/token"]


async def test_a_session_closed_by_its_owner_gives_a_typed_error(server: RecordingServer) -> None:
    """The caller's own aiohttp session, closed under an open client: each call raises
    ClientClosedError saying so, not aiohttp's bare RuntimeError."""
    server.on("GET", "/assignments/1", ok)
    session = aiohttp.ClientSession()
    client = FlinkeyClient(
        API_KEY, CUSTOMER_ID, token="t", base_url=server.url, retry=FAST, session=session
    )
    await session.close()
    async with client:
        for call in (client.assignments.get(1), client.assignments.delete(1)):
            with pytest.raises(ClientClosedError, match=r"session given to the client"):
                await call
    assert server.requests == []
