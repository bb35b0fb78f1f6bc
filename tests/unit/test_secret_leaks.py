"""No secret reaches an exception's text, its chained exceptions (suppressed ones included), a
traceback rendered with its frames' locals (``capture_locals``, rich's ``show_locals``) or a
pickle: token answers the SDK refuses, error answers that echo the credentials a request
carried, the blocking client's SDK-key call and the ASGI webhook receiver. Against real
servers on 127.0.0.1."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
from aiohttp import web
from anyio.from_thread import start_blocking_portal

from flinkey_async import FlinkeyClient, RetryPolicy
from flinkey_async.auth import Secret, mask_secrets
from flinkey_async.blocking import FlinkeyClient as BlockingClient
from flinkey_async.errors import (
    AuthenticationError,
    BadRequestError,
    ConflictError,
    DecodeError,
    FlinkeyApiError,
    InvalidCredentialsError,
    InvalidTokenError,
    RateLimitError,
    ServerError,
    from_response,
)
from flinkey_async.sandbox import Sandbox, SandboxConfig
from flinkey_async.webhooks import ASGIWebhookReceiver
from tests.support import wire
from tests.support.leaks import everything
from tests.support.recording import API_KEY, CUSTOMER_ID, Recorded, RecordingServer

#: Characters that every encoding changes: '/', '#', '?', '&', '+', a space, quotes, non-ASCII.
PASSWORD = "pw-Lk9/#?&+ \"sé'x"
#: The token the token endpoint issues (never valid here: each answer is refused).
ISSUED = "issued-Tq4-token"
SDK_KEY = 'sdk-Mv8/"key"+é'
FAST = RetryPolicy.disabled()


def forms(value: str) -> list[str]:
    """``value`` as a server echoing it may show it."""
    return [
        value,
        quote(value, safe=""),
        quote_plus(value),
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
    ]


#: What must never show: each secret in each of its forms, and a fragment of each that none
#: of the encodings changes (a partial leak shows it too).
NEVER = [
    *forms(PASSWORD),
    *forms(SDK_KEY),
    API_KEY,
    ISSUED,
    "Lk9",
    "Mv8",
    "Tq4",
]


def assert_no_secret(text: str) -> None:
    shown = [secret for secret in NEVER if secret in text]
    assert not shown, shown


def grant_client(server: RecordingServer) -> FlinkeyClient:
    return wire.grant_client(server, PASSWORD, retry=FAST)


async def refused_twice(server: RecordingServer) -> list[BaseException]:
    """The errors of two calls: the token fetch's own and the remembered failure's copy."""
    errors: list[BaseException] = []
    async with grant_client(server) as client:
        for _ in range(2):
            with pytest.raises(Exception) as info:  # each is checked below
                await client.assignments.get(1)
            errors.append(info.value)
    return errors


# -- token answers the SDK refuses ------------------------------------------------------------

#: 2xx token answers that hold the token but are refused (by index: the test's frame must not
#: hold them).
REFUSED_ANSWERS: list[Any] = [
    {"access_token": ISSUED, "expires_in": "soon"},
    {"access_token": ISSUED, "expires_in": -1},
    {"access_token": ISSUED, "expires_in": [3600]},
    {"access_token": ISSUED + " with spaces", "expires_in": 3600},
    {"access_token": [ISSUED], "refresh_token": ISSUED},
    [ISSUED],
    ISSUED,
]


@pytest.mark.parametrize("index", range(len(REFUSED_ANSWERS)))
async def test_a_refused_token_answer_shows_no_token_in_any_frame(
    server: RecordingServer, index: int
) -> None:
    body = json.dumps(REFUSED_ANSWERS[index]).encode()
    server.on("POST", "/oauth2/token", lambda r, _: web.Response(body=body))
    for error in await refused_twice(server):
        assert isinstance(error, DecodeError) and error.excerpt is None
        assert_no_secret(everything(error))


#: Token answers that are no JSON (a NaN, a cut-off body, trailing garbage).
NOT_JSON = [
    b'{"access_token": "issued-Tq4-token", "expires_in": NaN}',
    b'{"access_token": "issued-Tq4-token", "expires_in": 3600',
    b'{"access_token": "issued-Tq4-token"} trailing',
]


@pytest.mark.parametrize("body", NOT_JSON)
async def test_a_token_answer_that_is_no_json_keeps_no_chained_exception(
    server: RecordingServer, body: bytes
) -> None:
    server.on("POST", "/oauth2/token", lambda r, _: web.Response(body=body))
    for error in await refused_twice(server):
        assert isinstance(error, DecodeError)
        assert str(error) == "token response is not valid JSON"
        assert error.excerpt is None
        assert error.__context__ is None and error.__cause__ is None
        assert_no_secret(everything(error))


# -- error answers echoing the credentials ---------------------------------------------------


def echo_form(status: int, how: str) -> Any:
    """A handler refusing the token request with its form (and API key) in the answer."""

    async def handler(request: web.Request, rec: Recorded) -> web.Response:
        form = rec.body.decode()
        fields = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
        key = request.headers.get("flinkey-API-Key", "")
        if how == "raw form":
            text = f"rejected request: {form} (key {key})"
        elif how == "json":  # decoded, JSON-escaped on the wire
            text = json.dumps({"error": "invalid_grant", "error_description": f"{fields} {key}"})
        elif how == "json, not ascii":
            text = json.dumps({"message": f"{fields['password']} {key}"}, ensure_ascii=False)
        else:  # a quoted form, percent-encoded once more
            text = f"bad: {quote(form, safe='')} {quote(key)}"
        return web.Response(status=status, text=text, content_type="application/json")

    return handler


@pytest.mark.parametrize("how", ["raw form", "json", "json, not ascii", "quoted"])
@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, InvalidCredentialsError),
        (401, AuthenticationError),
        (403, FlinkeyApiError),
        (429, RateLimitError),
        (500, ServerError),
    ],
)
async def test_a_token_endpoint_echoing_the_form_shows_no_password(
    server: RecordingServer, status: int, expected: type[Exception], how: str
) -> None:
    server.on("POST", "/oauth2/token", echo_form(status, how))
    for error in await refused_twice(server):
        assert isinstance(error, expected)
        assert isinstance(error, FlinkeyApiError) and "***" in error.message
        assert error.__context__ is None and error.__cause__ is None
        assert_no_secret(everything(error))


async def test_a_password_cut_by_the_message_bound_shows_no_start_of_it(
    server: RecordingServer,
) -> None:
    """The message is cut at 1000 characters: a password straddling the cut loses the part
    before it too."""

    def handler(_: web.Request, __: Recorded) -> web.Response:
        message = "x" * 995 + PASSWORD + " and more"
        return web.json_response({"message": message}, status=401)

    server.on("POST", "/oauth2/token", handler)
    for error in await refused_twice(server):
        assert isinstance(error, AuthenticationError)
        assert error.message.endswith("x***…"), error.message[-20:]
        assert PASSWORD[:5] not in error.message
        assert_no_secret(everything(error))


def echo_body(status: int) -> Any:
    def handler(_: web.Request, rec: Recorded) -> web.Response:
        raw = rec.body.decode()
        if status == 400:  # the raw JSON in a text answer
            return web.Response(status=status, text=f"bad request: {raw}")
        if status == 401:  # the decoded key, JSON-escaped again
            return web.json_response({"message": f"refused {json.loads(raw)}"}, status=status)
        return web.json_response({"message": "boom", "traceId": raw}, status=status)

    return handler


@pytest.mark.parametrize(
    ("status", "expected"), [(400, BadRequestError), (401, AuthenticationError), (500, ServerError)]
)
async def test_an_sdk_token_refusal_echoing_the_body_shows_no_sdk_key(
    server: RecordingServer, status: int, expected: type[Exception]
) -> None:
    server.on("POST", "/sdk/token", echo_body(status))
    async with FlinkeyClient(
        API_KEY, CUSTOMER_ID, token="static-token", base_url=server.url, retry=FAST
    ) as client:
        with pytest.raises(FlinkeyApiError) as info:
            await client.sdk_tokens.create(customer_id=5, sdk_key=SDK_KEY, user_id=9)
    error = info.value
    assert isinstance(error, expected)
    assert "***" in str(error)
    assert error.__context__ is None and error.__cause__ is None
    assert_no_secret(everything(error))


def echo_headers(status: int, where: str) -> Any:
    """An error answer quoting the request's headers (a misconfigured gateway's debug page)."""

    def handler(request: web.Request, _: Recorded) -> web.Response:
        quoted = "; ".join(f"{name}={value}" for name, value in request.headers.items())
        if where == "text":
            return web.Response(status=status, text=f"denied: {quoted}")
        if where == "json":
            return web.json_response({"message": f"denied {quoted}"}, status=status)
        return web.json_response({"message": "denied", "traceId": quoted}, status=status)

    return handler


async def get_raises(server: RecordingServer, expected: type[Exception]) -> Exception:
    """What ``assignments.get(1)`` raises, with a static token ``ISSUED``."""
    async with FlinkeyClient(
        API_KEY, CUSTOMER_ID, token=ISSUED, base_url=server.url, retry=FAST
    ) as client:
        with pytest.raises(expected) as info:
            await client.assignments.get(1)
    return info.value


@pytest.mark.parametrize(
    ("status", "where", "expected"),
    [
        (400, "text", BadRequestError),
        (401, "json", AuthenticationError),
        (409, "trace", ConflictError),
        (429, "json", RateLimitError),
        (500, "trace", ServerError),
    ],
)
async def test_an_api_error_echoing_the_request_headers_shows_no_credential(
    server: RecordingServer, status: int, where: str, expected: type[Exception]
) -> None:
    """Any answer of the API, not only the token endpoint's, may quote what it was sent: the
    API key and the bearer token are masked in the error, and no frame keeps the body."""
    server.on("GET", "/assignments/1", echo_headers(status, where))
    error = await get_raises(server, FlinkeyApiError)
    assert isinstance(error, expected)
    assert "***" in str(error) and str(CUSTOMER_ID) in str(error)  # the rest is still there
    assert_no_secret(everything(error))


def test_a_short_secret_is_masked_only_where_it_stands_alone() -> None:
    """A test's one-letter token masks no letter of the words around it; a real secret is
    masked wherever it stands, inside a longer string too."""
    short, long = Secret("t"), Secret("k3y-Long-enough")
    text = "Internal error: token=t; Bearer t, 'T' tt at"
    assert mask_secrets(text, [short]) == "Internal error: token=***; Bearer ***, 'T' tt at"
    assert mask_secrets("xk3y-Long-enoughx", [long, short]) == "x***x"
    # a text cut off: a start of 4 characters or more before the cut is masked, a letter not
    assert mask_secrets("see the k…", [long]) == "see the k…"
    assert mask_secrets("key was k3y-…", [long]) == "key was ***…"
    # HTML-escaped either way a page may write an apostrophe
    quoted = Secret("it's-a-long-key")
    assert mask_secrets("k=it&#39;s-a-long-key; j=it&#x27;s-a-long-key", [quoted]) == "k=***; j=***"


async def test_a_2xx_answer_that_is_no_model_and_quotes_the_headers_shows_no_credential(
    server: RecordingServer,
) -> None:
    """A 200 whose body is a page quoting the request, not an assignment: the DecodeError's
    text and excerpt mask the API key and the token."""
    server.on("GET", "/assignments/1", echo_headers(200, "text"))
    error = await get_raises(server, DecodeError)
    assert isinstance(error, DecodeError) and error.excerpt is not None and "***" in error.excerpt
    assert_no_secret(everything(error))


# -- error messages are bounded ---------------------------------------------------------------


def test_an_error_message_is_bounded_and_still_typed_by_all_of_it() -> None:
    huge = from_response(409, {}, json.dumps({"message": "y" * 60_000}).encode())
    assert isinstance(huge, ConflictError)
    assert huge.message == "y" * 1000 + "…" and len(str(huge)) < 1100
    assert len(from_response(500, {}, json.dumps("z" * 60_000).encode()).message) == 1001
    long_trace = from_response(404, {}, json.dumps({"title": "x", "traceId": "t" * 5000}).encode())
    assert long_trace.trace_id is not None and len(long_trace.trace_id) == 1001
    # the type and the wait are told from the whole message, beyond the cut
    late = "a" * 2000
    token = from_response(401, {}, json.dumps({"message": late + " access token invalid"}).encode())
    assert isinstance(token, InvalidTokenError) and len(token.message) == 1001
    limited = from_response(429, {}, json.dumps({"message": late + " Try again in 7 s"}).encode())
    assert isinstance(limited, RateLimitError) and limited.retry_after is None
    limited = from_response(
        429, {}, json.dumps({"message": late + " Try again in 7 seconds."}).encode()
    )
    assert isinstance(limited, RateLimitError) and limited.retry_after == 7.0
    assert len(limited.message) == 1001


# -- the blocking client ----------------------------------------------------------------------


def test_the_blocking_sdk_token_call_holds_no_plain_sdk_key() -> None:
    config = SandboxConfig(sdk_key="the-sandbox-sdk-key")
    with (
        start_blocking_portal() as portal,
        portal.wrap_async_context_manager(Sandbox(config)) as sandbox,
    ):
        assert sandbox.url is not None
        client = BlockingClient(
            config.api_key,
            1,
            username=config.username,
            password=config.password,
            base_url=sandbox.url,
        )
        with client, pytest.raises(BadRequestError) as info:
            client.sdk_tokens.create(customer_id=1, sdk_key=SDK_KEY, user_id=1001)
    text = everything(info.value)
    assert "sdk_tokens" in text or "create" in text  # the blocking frames are rendered
    assert_no_secret(text)


# -- the ASGI webhook receiver ----------------------------------------------------------------

WEBHOOK_SECRET = "webhook-Wz5-secret"


class BrokenPublisher:
    """A publisher whose backend fails with an error that is no FlinkeyError: it leaves the
    receiver, through every frame that serves the request."""

    async def publish(self, event: Any) -> bool:
        raise ConnectionResetError("the publisher's backend went away")


async def test_the_asgi_receiver_serves_without_the_secret_header_in_a_frame() -> None:
    receiver = ASGIWebhookReceiver(secret=WEBHOOK_SECRET, publisher=BrokenPublisher())
    body = json.dumps(
        {
            "checksum": "A" * 32,
            "assignmentId": 7,
            "customerId": 1,
            "operationSucceeded": True,
            "errorMessage": None,
        }
    ).encode()
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/webhooks/flinkey",
        "headers": [
            (b"secret", WEBHOOK_SECRET.encode()),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 5000),
    }
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    sent: list[Any] = []

    async def receive() -> Any:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: Any) -> None:
        sent.append(message)

    try:
        with pytest.raises(ConnectionResetError) as info:
            await receiver(scope, receive, send)
    finally:
        await receiver.aclose()
    text = everything(info.value)
    assert "in __call__" in text and "in _serve" in text  # the receiver's frames are shown
    assert WEBHOOK_SECRET not in text and "Wz5" not in text
