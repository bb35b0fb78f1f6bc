"""What the SDK promises beneath aiohttp's defaults, each reproduced on loopback servers:
no redirect is followed, a write reaches the wire at most once, a failing token endpoint is
hit once for all waiters, responses are bounded, hostile answers raise typed errors, calls
have a deadline, and no secret reaches a traceback or a pickle."""

from __future__ import annotations

import asyncio
import base64
import gzip
import pickle
import subprocess
import sys
import textwrap
import time
import traceback
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import attrs
import pytest
from aiohttp import web

from flinkey_async import FlinkeyClient, JsonPatch, RetryPolicy, errors
from flinkey_async._validate import check_window
from flinkey_async.auth import PasswordGrant, Secret, StaticToken, TokenResponse
from flinkey_async.errors import (
    ClientClosedError,
    DecodeError,
    OutcomeUnknownError,
    RateLimitError,
    RequestTimeoutError,
    ResponseTooLargeError,
    ServerError,
    TransportError,
    UnexpectedRedirectError,
    ValidationError,
)
from flinkey_async.webhooks import OperationTracker
from tests.support import wire
from tests.support.recording import (
    API_KEY,
    CUSTOMER_ID,
    Recorded,
    RecordingServer,
    json_response,
    token_response,
)

PASSWORD = "pw-Hq8#secret"
TOKEN_VALUE = "tok-Zr7-secret"
ASSIGNMENT = {"id": 1, "carId": 7, "userId": 9, "start": "2026-03-01T08:00:00Z", "end": None}
START = datetime(2026, 3, 1, 8, tzinfo=UTC)
FAST = RetryPolicy(max_retries=3, backoff_base=0.001, backoff_max=0.01, jitter=0, min_delay=0)


def token_client(server: RecordingServer, **kw: Any) -> FlinkeyClient:
    return FlinkeyClient(API_KEY, CUSTOMER_ID, token=TOKEN_VALUE, base_url=server.url, **kw)


def grant_client(server: RecordingServer, **kw: Any) -> FlinkeyClient:
    return wire.grant_client(server, PASSWORD, **kw)


@pytest.fixture
async def other() -> Any:
    """A second server on another port: another origin."""
    srv = RecordingServer()
    await srv.start()
    srv.on("GET", "/elsewhere", lambda r, _: json_response(ASSIGNMENT))
    yield srv
    await srv.close()


# -- 1. redirects ------------------------------------------------------------------------------

REDIRECTS = [300, 301, 302, 303, 304, 305, 307, 308]
CALLS: dict[str, tuple[str, Callable[[FlinkeyClient], Awaitable[Any]]]] = {
    "GET": ("/assignments/1", lambda c: c.assignments.get(1)),
    "PUT": ("/assignments", lambda c: c.assignments.create(car_id=7, user_id=9, start=START)),
    "PATCH": (
        "/assignments/1",
        lambda c: c.assignments.update(1, JsonPatch().replace("/lifetime", 1209600)),
    ),
    # With a tracker: a delete confirmed by polling is read first, which is not under test.
    "DELETE": ("/assignments/1", lambda c: tracked(c).assignments.delete(1)),
}


def tracked(client: FlinkeyClient) -> FlinkeyClient:
    client.tracker = OperationTracker()
    return client


@pytest.mark.parametrize("status", REDIRECTS)
@pytest.mark.parametrize("method", [*CALLS, "token POST"])
async def test_redirects_are_never_followed(
    server: RecordingServer, other: RecordingServer, method: str, status: int
) -> None:
    target = other.url.replace("/v3", "") + "/elsewhere"

    def redirect(_: web.Request, __: Recorded) -> web.Response:
        return web.Response(status=status, headers={"Location": target})

    if method == "token POST":
        server.on("POST", "/oauth2/token", redirect)
        client = grant_client(server, retry=FAST)
        call = CALLS["GET"][1]
    else:
        path, call = CALLS[method]
        server.on(method, path, redirect)
        client = token_client(server, retry=FAST)
    async with client:
        with pytest.raises(UnexpectedRedirectError) as info:
            await call(client)
    assert info.value.status == status
    assert info.value.location_origin == other.url.replace("/v3", "")
    assert str(status) in str(info.value) and info.value.location_origin in str(info.value)
    assert other.requests == []  # nothing reached the other origin
    assert len(server.requests) == 1  # and nothing was repeated


# -- 2. a write reaches the wire at most once --------------------------------------------------


def read_and_close(request: web.Request, _: Recorded) -> web.Response:
    """Read the request, then close the connection without an answer."""
    assert request.transport is not None
    request.transport.close()
    return web.Response(status=204)


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
async def test_a_write_whose_connection_breaks_is_sent_once(
    server: RecordingServer, method: str
) -> None:
    path, call = CALLS[method]
    server.on(method, path, read_and_close)
    async with token_client(server, retry=FAST) as client:
        with pytest.raises(OutcomeUnknownError) as info:
            await call(client)
    assert len(server.for_path("/v3" + path)) == 1
    assert info.value.timed_out is False
    assert "not sent again" in str(info.value)


async def test_forty_creates_against_resets_put_forty_requests(server: RecordingServer) -> None:
    server.on("PUT", "/assignments", read_and_close)
    async with token_client(server, retry=FAST) as client:
        results = await asyncio.gather(
            *(
                client.assignments.create(car_id=7, user_id=9, start=START + timedelta(hours=i))
                for i in range(40)
            ),
            return_exceptions=True,
        )
    assert all(isinstance(r, OutcomeUnknownError) for r in results)
    assert len(server.for_path("/v3/assignments")) == 40


async def test_a_read_whose_connection_breaks_is_retried_by_the_policy_only(
    server: RecordingServer,
) -> None:
    server.on("GET", "/assignments/1", read_and_close)
    async with token_client(server, retry=FAST) as client:
        with pytest.raises(TransportError):
            await client.assignments.get(1)
    assert len(server.requests) == 1 + FAST.max_retries  # no hidden extra attempt


async def test_a_write_timing_out_is_outcome_unknown(server: RecordingServer) -> None:
    async def slow(_: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.Response(status=204)

    server.on("PUT", "/assignments", lambda r, _: slow(r))
    async with token_client(server, retry=FAST, deadline=0.3) as client:
        began = time.monotonic()
        with pytest.raises(OutcomeUnknownError) as info:
            await client.assignments.create(car_id=7, user_id=9, start=START)
    assert info.value.timed_out is True
    assert time.monotonic() - began < 2
    assert len(server.for_path("/v3/assignments")) == 1


# -- 4. one token fetch for all waiters, also when it fails ------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        lambda: json_response(
            {"status": "429", "message": "Rate limit is exceeded. Try again in 1 seconds."},
            429,
            {"Retry-After": "0.2"},
        ),
        lambda: web.Response(status=500, text="Internal server error."),
    ],
)
async def test_twenty_callers_against_a_failing_token_endpoint(
    server: RecordingServer, answer: Any
) -> None:
    server.on("POST", "/oauth2/token", lambda r, _: answer())
    server.on("GET", "/assignments/1", lambda r, _: json_response(ASSIGNMENT))
    async with grant_client(server) as client:
        began = time.monotonic()
        results = await asyncio.gather(
            *(client.assignments.get(1) for _ in range(20)), return_exceptions=True
        )
        elapsed = time.monotonic() - began
        assert all(isinstance(r, (RateLimitError, ServerError)) for r in results)
        # Within the failure backoff, the next caller gets the error without a request.
        before = len(server.requests)
        with pytest.raises((RateLimitError, ServerError)):
            await client.assignments.get(1)
        assert len(server.requests) == before
    assert len(server.for_path("/v3/oauth2/token")) <= 1 + RetryPolicy().max_retries
    assert elapsed < 3
    assert server.for_path("/v3/assignments/1") == []


async def test_a_cancelled_waiter_does_not_cancel_the_shared_fetch(server: RecordingServer) -> None:
    release = asyncio.Event()

    async def slow_token(_: web.Request) -> web.Response:
        await release.wait()
        return token_response(TOKEN_VALUE)

    server.on("POST", "/oauth2/token", lambda r, _: slow_token(r))
    server.on("GET", "/assignments/1", lambda r, _: json_response(ASSIGNMENT))
    async with grant_client(server) as client:
        first = asyncio.ensure_future(client.assignments.get(1))
        second = asyncio.ensure_future(client.assignments.get(1))
        await asyncio.sleep(0.1)
        first.cancel()
        release.set()
        assert (await second).id == 1
        with pytest.raises(asyncio.CancelledError):
            await first
    assert len(server.for_path("/v3/oauth2/token")) == 1


async def test_a_tiny_expires_in_does_not_cost_a_token_per_call(server: RecordingServer) -> None:
    server.on("POST", "/oauth2/token", lambda r, _: token_response(TOKEN_VALUE, "1"))
    server.on("GET", "/assignments/1", lambda r, _: json_response(ASSIGNMENT))
    async with grant_client(server) as client:
        for _ in range(3):
            await client.assignments.get(1)
            await asyncio.sleep(0.6)  # past the token's claimed lifetime of 1 s, in total
    assert len(server.for_path("/v3/oauth2/token")) == 1


# -- 5. bounded responses, checked in a subprocess ---------------------------------------------

BOMB_SCRIPT = textwrap.dedent("""
    import asyncio, resource, sys, zlib
    from aiohttp import web
    from flinkey_async import FlinkeyClient
    from flinkey_async.errors import ResponseTooLargeError, ServerError

    MIB = 1024 * 1024
    kind = sys.argv[1]

    def bomb(megabytes):
        z = zlib.compressobj(9, zlib.DEFLATED, 31)   # gzip container
        block = bytes(MIB)
        return b"".join([z.compress(block) for _ in range(megabytes)] + [z.flush()])

    async def main():
        if kind == "gzip":
            body = bomb(1024)                        # ~1 MB on the wire, 1 GiB inflated
            async def handle(request):
                return web.Response(body=body, headers={"Content-Encoding": "gzip",
                                                        "Content-Type": "application/json"})
        else:
            status = 200 if kind == "big" else 500
            async def handle(request):               # 200 MB, chunked: no Content-Length
                response = web.StreamResponse(status=status)
                await response.prepare(request)
                chunk = b"[" + b" " * (MIB - 1)
                for _ in range(200):
                    try:
                        await response.write(chunk)
                    except ConnectionError:
                        break
                return response
        app = web.Application()
        app.router.add_get("/v3/assignments/1", handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        async with FlinkeyClient("k", 1, token="t", base_url=f"http://127.0.0.1:{port}/v3",
                                 max_response_bytes=16 * MIB) as client:
            try:
                await client.assignments.get(1)
            except (ResponseTooLargeError, ServerError) as exc:
                print(type(exc).__name__)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print((after - before) // 1024)              # MiB (ru_maxrss is in KiB on Linux)
        await runner.cleanup()

    asyncio.run(main())
""")


@pytest.mark.parametrize(
    ("kind", "error"),
    [("gzip", "ResponseTooLargeError"), ("big", "ResponseTooLargeError"), ("error", "ServerError")],
)
def test_hostile_bodies_are_bounded(kind: str, error: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", BOMB_SCRIPT, kind], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    name, growth = result.stdout.split()
    assert name == error
    assert int(growth) < 100, f"peak memory grew by {growth} MiB"


async def test_an_announced_oversized_body_is_not_read(server: RecordingServer) -> None:
    server.on("GET", "/assignments/1", lambda r, _: web.Response(body=b"[" + b" " * 5000))
    async with token_client(server, max_response_bytes=1000) as client:
        with pytest.raises(ResponseTooLargeError, match="1000"):
            await client.assignments.get(1)


async def test_a_long_error_body_is_cut_and_still_typed(server: RecordingServer) -> None:
    server.on("GET", "/assignments/1", lambda r, _: web.Response(status=404, text="x" * 200_000))
    async with token_client(server) as client:
        with pytest.raises(errors.NotFoundError):
            await client.assignments.get(1)


# -- 6. hostile answers raise typed errors -----------------------------------------------------


async def test_deeply_nested_json_error_body(server: RecordingServer) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    server.on("GET", "/assignments/1", lambda r, _: web.Response(status=500, body=deep))
    server.on("GET", "/assignments/2", lambda r, _: web.Response(status=200, body=deep))
    async with token_client(server, retry=RetryPolicy.disabled()) as client:
        with pytest.raises(ServerError):
            await client.assignments.get(1)
        with pytest.raises(DecodeError):
            await client.assignments.get(2)


@pytest.mark.parametrize("start", ["9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00"])
async def test_a_datetime_overflowing_in_utc_is_a_decode_error(
    server: RecordingServer, start: str
) -> None:
    server.on("GET", "/assignments/1", lambda r, _: json_response({**ASSIGNMENT, "start": start}))
    async with token_client(server) as client:
        with pytest.raises(DecodeError, match="out of range"):
            await client.assignments.get(1)


@pytest.mark.parametrize("expires_in", [10**400, "1e400", -1, 0, "nan", 10**12, True])
async def test_an_invalid_expires_in_is_a_decode_error(
    server: RecordingServer, expires_in: Any
) -> None:
    server.on(
        "POST",
        "/oauth2/token",
        lambda r, _: json_response({"access_token": TOKEN_VALUE, "expires_in": expires_in}),
    )
    async with grant_client(server) as client:
        with pytest.raises(DecodeError) as info:
            await client.assignments.get(1)
    assert TOKEN_VALUE not in str(info.value)


@pytest.mark.parametrize("bad", ["tok\r\nX-Injected: 1", "tok en", "tök", "tok\x00"])
async def test_a_token_that_is_no_header_value_is_refused_and_not_cached(
    server: RecordingServer, bad: str
) -> None:
    tokens = iter([bad, TOKEN_VALUE])
    server.on("POST", "/oauth2/token", lambda r, _: token_response(next(tokens)))
    server.on("GET", "/assignments/1", lambda r, _: json_response(ASSIGNMENT))
    provider_clock = [0.0]
    async with grant_client(server) as client:
        provider = client._pipeline.token_provider
        assert isinstance(provider, PasswordGrant)
        provider._clock = lambda: provider_clock[0]
        with pytest.raises(DecodeError, match="header"):
            await client.assignments.get(1)
        provider_clock[0] += 60  # past the failure backoff
        assert (await client.assignments.get(1)).id == 1
    assert [r.headers.get("Authorization") for r in server.for_path("/v3/assignments/1")] == [
        f"Bearer {TOKEN_VALUE}"
    ]


@pytest.mark.parametrize("bad", ["key\r\nX: 1", "", "k y"])
def test_an_api_key_or_token_that_is_no_header_value_is_rejected_at_once(bad: str) -> None:
    with pytest.raises(ValidationError):
        FlinkeyClient(bad, CUSTOMER_ID, token=TOKEN_VALUE)
    with pytest.raises(ValidationError):
        FlinkeyClient(API_KEY, CUSTOMER_ID, token=bad)


async def test_closing_with_requests_in_flight_raises_only_typed_errors(
    server: RecordingServer,
) -> None:
    async def slow(_: web.Request) -> web.Response:
        await asyncio.sleep(0.3)
        return json_response(ASSIGNMENT)

    server.on("GET", "/assignments/1", lambda r, _: slow(r))
    client = token_client(server)
    calls = [asyncio.ensure_future(client.assignments.get(1)) for _ in range(10)]
    await asyncio.sleep(0.05)
    await client.aclose(timeout=0.05)
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert all(
        isinstance(r, (ClientClosedError, TransportError)) or getattr(r, "id", 0) == 1
        for r in results
    ), results
    with pytest.raises(ClientClosedError):
        await client.assignments.get(1)


async def test_a_malformed_netrc_changes_nothing(
    server: RecordingServer, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login\n")  # no value: netrc raises NetrcParseError
    monkeypatch.setenv("NETRC", str(netrc))
    server.on("GET", "/assignments/1", lambda r, _: json_response(ASSIGNMENT))
    for trust_env in (False, True):
        async with token_client(server, trust_env=trust_env) as client:
            assert (await client.assignments.get(1)).id == 1


# -- 7. pacing, deadline, validation, paths ----------------------------------------------------


@pytest.mark.parametrize("retry_after", ["0", "-5", "Wed, 21 Oct 2015 07:28:00 GMT"])
async def test_a_retry_after_of_zero_or_past_waits_the_minimum(
    server: RecordingServer, retry_after: str
) -> None:
    server.on(
        "GET",
        "/assignments/1",
        lambda r, _: json_response(
            {"status": "429", "message": "Rate limit is exceeded."},
            429,
            {"Retry-After": retry_after},
        ),
    )
    policy = RetryPolicy(max_retries=3, min_delay=0.05)
    async with token_client(server, retry=policy) as client:
        began = time.monotonic()
        with pytest.raises(RateLimitError):
            await client.assignments.get(1)
    assert time.monotonic() - began >= 3 * 0.05
    assert len(server.requests) == 4


async def test_no_call_outlasts_its_deadline(server: RecordingServer) -> None:
    server.on(
        "GET",
        "/assignments/1",
        lambda r, _: json_response(
            {"status": "429", "message": "Try again in 1 seconds."}, 429, {"Retry-After": "1"}
        ),
    )
    async with token_client(server, deadline=0.5) as client:
        began = time.monotonic()
        with pytest.raises(RateLimitError):
            await client.assignments.get(1)
    assert time.monotonic() - began < 0.5
    assert len(server.requests) == 1  # the wait would pass the deadline: raised at once


async def test_a_hanging_server_is_cut_at_the_deadline(server: RecordingServer) -> None:
    async def hang(_: web.Request) -> web.Response:
        await asyncio.sleep(10)
        return json_response(ASSIGNMENT)

    server.on("GET", "/assignments/1", lambda r, _: hang(r))
    async with token_client(server, deadline=0.4) as client:
        began = time.monotonic()
        with pytest.raises(RequestTimeoutError):
            await client.assignments.get(1)
    assert time.monotonic() - began < 1.5


def test_end_before_start_is_checked_in_utc_across_a_dst_change() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    # 2026-10-25 02:30 happens twice in Berlin: first at 00:30Z (CEST), then at 01:30Z (CET).
    first = datetime(2026, 10, 25, 2, 30, tzinfo=berlin, fold=0)
    second = datetime(2026, 10, 25, 2, 10, tzinfo=berlin, fold=1)  # 01:10Z: after `first`
    check_window(first, second)  # wall times say end < start; UTC says it is after
    with pytest.raises(ValidationError) as info:
        check_window(second, first)  # really before: rejected
    assert "2026-10-25T00:30:00Z" in str(info.value) and "2026-10-25T01:10:00Z" in str(info.value)


def test_end_before_start_with_sub_second_offsets_compares_what_is_sent() -> None:
    zone = timezone(timedelta(hours=1, microseconds=600_000))
    start = datetime(2026, 3, 1, 9, 0, 0, 0, tzinfo=zone)  # 07:59:59.4Z -> sent 07:59:59Z
    end = datetime(2026, 3, 1, 9, 0, 0, 500_000, tzinfo=zone)  # 07:59:59.9Z -> sent 07:59:59Z
    with pytest.raises(ValidationError, match="07:59:59Z"):
        check_window(start, end)


@pytest.mark.parametrize("value", [2**31, 2**63])
async def test_ids_above_int32_are_rejected(value: int) -> None:
    async with FlinkeyClient(API_KEY, CUSTOMER_ID, token=TOKEN_VALUE) as client:
        with pytest.raises(ValidationError, match="int32"):
            await client.assignments.get(value)
    with pytest.raises(ValidationError):
        FlinkeyClient(API_KEY, value, token=TOKEN_VALUE)


def test_a_patch_removing_the_lifetime_is_checked_against_renewable_after() -> None:
    with pytest.raises(ValidationError, match="604800"):
        JsonPatch().remove("/lifetime").replace("/renewableAfter", 700_000)
    with pytest.raises(ValidationError, match="604800"):
        JsonPatch().replace("/lifetime", None).replace("/renewableAfter", 604_800)
    assert len(JsonPatch().remove("/lifetime").replace("/renewableAfter", 302_400)) == 2


@pytest.mark.parametrize(
    ("segment", "wire"),
    [
        ("1/../x", "1%2F..%2Fx"),
        ("..", "%2E%2E"),
        (".", "%2E"),
        ("a?b#c", "a%3Fb%23c"),
        ("50%", "50%25"),
        ("ö", "%C3%B6"),
    ],
)
async def test_url_segments_cannot_change_the_path(
    server: RecordingServer, segment: str, wire: str
) -> None:
    server.on("GET", "/brands/" + segment, lambda r, _: json_response([]))
    async with token_client(server) as client:
        url = client._pipeline.url(("brands", segment))
        assert str(url).endswith("/v3/brands/" + wire)
        await client._pipeline.request("GET", ("brands", segment))
    assert server.requests[-1].raw_path == "/v3/brands/" + wire


# -- trust_env and proxies -----------------------------------------------------------------------


@pytest.fixture
async def proxy() -> Any:
    """A forward proxy for plain http targets (it answers itself and records what it got)."""
    srv = RecordingServer()
    await srv.start()
    srv.on("GET", "/assignments/1", lambda r, _: json_response(ASSIGNMENT))
    yield srv
    await srv.close()


async def test_trust_env_reads_the_proxy_once_and_uses_it(
    server: RecordingServer, proxy: RecordingServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy_url = proxy.url.replace("/v3", "")
    monkeypatch.setenv("HTTP_PROXY", proxy_url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    base = "http://flinkey.invalid/v3"  # only the proxy can reach it
    async with FlinkeyClient(
        API_KEY, CUSTOMER_ID, token=TOKEN_VALUE, base_url=base, trust_env=True
    ) as client:
        assert (await client.assignments.get(1)).id == 1
        monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # read once: not seen again
        assert (await client.assignments.get(1)).id == 1
    assert [r.raw_path for r in proxy.requests] == ["http://flinkey.invalid/v3/assignments/1"] * 2
    assert proxy.requests[0].headers["flinkey-API-Key"] == API_KEY
    # Without trust_env the variables are ignored.
    monkeypatch.setenv("HTTP_PROXY", proxy_url)
    server.on("GET", "/assignments/1", lambda r, _: json_response(ASSIGNMENT))
    async with token_client(server) as client:
        assert (await client.assignments.get(1)).id == 1
    assert len(proxy.requests) == 2


async def test_a_customer_view_made_before_the_first_request_uses_the_env_proxy(
    proxy: RecordingServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url.replace("/v3", ""))
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    async with FlinkeyClient(
        API_KEY,
        CUSTOMER_ID,
        token=TOKEN_VALUE,
        base_url="http://flinkey.invalid/v3",
        trust_env=True,
    ) as client:
        view = client.for_customer(CUSTOMER_ID + 1)  # before the proxy is read
        assert (await view.assignments.get(1)).id == 1
    assert [r.raw_path for r in proxy.requests] == ["http://flinkey.invalid/v3/assignments/1"]
    assert proxy.requests[0].headers["Customer-ID"] == str(CUSTOMER_ID + 1)


async def test_an_explicit_proxy_is_used(proxy: RecordingServer) -> None:
    async with FlinkeyClient(
        API_KEY,
        CUSTOMER_ID,
        token=TOKEN_VALUE,
        base_url="http://flinkey.invalid/v3",
        proxy=proxy.url.replace("/v3", ""),
    ) as client:
        assert (await client.assignments.get(1)).id == 1
    assert proxy.requests[0].raw_path == "http://flinkey.invalid/v3/assignments/1"


@pytest.mark.parametrize("how", ["proxy=", "HTTPS_PROXY", "password grant"])
@pytest.mark.parametrize("method", ["GET", "PUT"])
async def test_an_https_tunnel_shows_the_proxy_no_credential(
    monkeypatch: pytest.MonkeyPatch, how: str, method: str
) -> None:
    """For an https:// API the proxy reads only the CONNECT request, in clear text: it names
    the host and nothing else (aiohttp writes a session's default headers into it too)."""
    seen: list[list[bytes]] = []

    async def refuse_tunnel(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        lines = [await reader.readline()]
        while lines[-1] not in (b"\r\n", b""):
            lines.append(await reader.readline())
        seen.append(lines)
        writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    relay = await asyncio.start_server(refuse_tunnel, "127.0.0.1", 0)
    proxy_url = f"http://127.0.0.1:{relay.sockets[0].getsockname()[1]}"
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    options: dict[str, Any] = {"proxy": proxy_url, "token": TOKEN_VALUE}
    if how == "HTTPS_PROXY":
        monkeypatch.setenv("HTTPS_PROXY", proxy_url)
        options = {"trust_env": True, "token": TOKEN_VALUE}
    elif how == "password grant":
        options = {"proxy": proxy_url, "username": "manager", "password": PASSWORD}
    try:
        async with FlinkeyClient(
            API_KEY,
            CUSTOMER_ID,
            base_url="https://flinkey.invalid/v3",
            retry=RetryPolicy.disabled(),
            **options,
        ) as client:
            with pytest.raises(TransportError, match="not sent") as info:
                await client.request(method, "assignments", json={"carId": 7})
    finally:
        relay.close()
        await relay.wait_closed()
    assert not isinstance(info.value, OutcomeUnknownError)  # the tunnel was refused: not sent
    assert len(seen) == 1
    assert seen[0][0] == b"CONNECT flinkey.invalid:443 HTTP/1.1\r\n"
    names = {line.split(b":")[0].decode().lower() for line in seen[0][1:-1]}
    assert names <= {"host", "user-agent", "accept", "accept-encoding"}
    text = b"".join(seen[0]).decode()
    for secret in (API_KEY, TOKEN_VALUE, PASSWORD):
        assert secret not in text


@pytest.mark.parametrize("source", ["HTTP_PROXY", "proxy="])
async def test_proxy_credentials_reach_the_proxy_without_a_deprecated_argument(
    proxy: RecordingServer, monkeypatch: pytest.MonkeyPatch, source: str
) -> None:
    # aiohttp 3.14 deprecates ``proxy_auth=``; the suite turns every warning into an error.
    proxy_url = proxy.url.replace("/v3", "").replace("http://", "http://relay:s%40cret@")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    options: dict[str, Any] = {"proxy": proxy_url}
    if source == "HTTP_PROXY":
        monkeypatch.setenv("HTTP_PROXY", proxy_url)
        options = {"trust_env": True}
    async with FlinkeyClient(
        API_KEY, CUSTOMER_ID, token=TOKEN_VALUE, base_url="http://flinkey.invalid/v3", **options
    ) as client:
        assert (await client.assignments.get(1)).id == 1
        assert (await client.assignments.get(1)).id == 1
    expected = "Basic " + base64.b64encode(b"relay:s@cret").decode()
    assert [r.headers.get("Proxy-Authorization") for r in proxy.requests] == [expected] * 2
    assert [r.raw_path for r in proxy.requests] == ["http://flinkey.invalid/v3/assignments/1"] * 2


# -- 3. secrets: tracebacks with locals, repr, pickles -----------------------------------------


def rendered(exc: BaseException) -> str:
    """The traceback with every frame's locals, from the SDK's first frame on (the test's own
    frame holds the plain strings it passed in; what matters is that no frame of ours does)."""
    tb = exc.__traceback__
    if tb is not None and "/tests/" in tb.tb_frame.f_code.co_filename:
        exc = exc.with_traceback(tb.tb_next)
    return "".join(traceback.TracebackException.from_exception(exc, capture_locals=True).format())


def assert_no_secret(text: str) -> None:
    for secret in (API_KEY, PASSWORD, TOKEN_VALUE):
        assert secret not in text


@pytest.mark.parametrize(
    "kwargs",
    [
        {"customer_id": 0, "token": TOKEN_VALUE},
        {"customer_id": CUSTOMER_ID, "token": TOKEN_VALUE, "password": PASSWORD},
        {
            "customer_id": CUSTOMER_ID,
            "username": "m",
            "password": PASSWORD,
            "base_url": "not a url",
        },
        {"customer_id": CUSTOMER_ID, "token": TOKEN_VALUE, "deadline": -1},
    ],
)
def test_a_constructor_error_shows_no_secret(kwargs: dict[str, Any]) -> None:
    with pytest.raises((ValueError, TypeError)) as info:
        FlinkeyClient(API_KEY, **kwargs)
    assert_no_secret(rendered(info.value))


async def test_a_caller_side_timeout_shows_no_secret(server: RecordingServer) -> None:
    async def hang(_: web.Request) -> web.Response:
        await asyncio.sleep(10)
        return json_response(ASSIGNMENT)

    server.on("POST", "/oauth2/token", lambda r, _: token_response(TOKEN_VALUE))
    server.on("GET", "/assignments/1", lambda r, _: hang(r))
    async with grant_client(server) as client:
        with pytest.raises(TimeoutError) as info:
            async with asyncio.timeout(0.3):
                await client.assignments.get(1)
    text = rendered(info.value)
    assert_no_secret(text)
    # aiohttp's frames (their locals hold the headers) are gone
    assert "site-packages/aiohttp" not in text


async def test_a_cancelled_token_request_shows_no_password(server: RecordingServer) -> None:
    async def hang(_: web.Request) -> web.Response:
        await asyncio.sleep(10)
        return token_response(TOKEN_VALUE)

    server.on("POST", "/oauth2/token", lambda r, _: hang(r))
    async with grant_client(server) as client:
        task = asyncio.ensure_future(client.assignments.get(1))
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError) as info:
            await task
        began = time.monotonic()
    # Closing cancels the token fetch nobody waits for now, instead of waiting for it.
    assert time.monotonic() - began < 2
    assert_no_secret(rendered(info.value))


def test_a_half_built_client_has_a_repr() -> None:
    client = FlinkeyClient.__new__(FlinkeyClient)
    assert repr(client) == "FlinkeyClient(<not set up>)"


def test_secret_holders_refuse_pickling_and_asdict_shows_no_secret() -> None:
    async def fetch(*_: Any) -> TokenResponse:
        raise AssertionError

    holders = [
        Secret(PASSWORD),
        StaticToken(TOKEN_VALUE),
        PasswordGrant("m", PASSWORD, fetch),
        FlinkeyClient(API_KEY, CUSTOMER_ID, token=TOKEN_VALUE),
        TokenResponse(Secret(TOKEN_VALUE), 3600.0),
    ]
    for holder in holders:
        with pytest.raises(TypeError, match="cannot be pickled"):
            pickle.dumps(holder)
        assert_no_secret(repr(holder))
    assert_no_secret(repr(attrs.asdict(TokenResponse(Secret(TOKEN_VALUE), 3600.0))))


EXCEPTIONS: list[BaseException] = [
    errors.ValidationError("lifetime", "too long"),
    errors.NotFoundError(404, "Unable to find", trace_id="t-1", method="GET", path="/cars/1"),
    errors.InvalidTokenError(401, "Unauthorized. Access token is missing or invalid."),
    errors.RateLimitError(429, "slow down", retry_after=2.5, method="PUT", path="/assignments"),
    errors.UnexpectedRedirectError(302, "https://elsewhere.example", method="GET", path="/x"),
    errors.DecodeError("bad", body=b'{"a": 1}'),
    errors.ResponseTooLargeError("too large"),
    errors.TransportError("reset"),
    errors.RequestTimeoutError("slow"),
    errors.OutcomeUnknownError("maybe", timed_out=True),
    errors.ClientClosedError("closed"),
    errors.OperationFailedError("create of an assignment", "The end must be after the start."),
    errors.OperationTimeoutError("no webhook"),
    errors.WebhookAuthenticationError("no Secret header"),
    errors.WebhookPayloadError("not JSON", body=b"x"),
]


@pytest.mark.parametrize("exc", EXCEPTIONS, ids=lambda e: type(e).__name__)
def test_exceptions_pickle_and_unpickle(exc: BaseException) -> None:
    copy = pickle.loads(pickle.dumps(exc))
    assert type(copy) is type(exc)
    assert str(copy) == str(exc)
    assert copy.__dict__ == exc.__dict__


def test_gzip_is_a_real_gzip_bomb_builder() -> None:
    """The subprocess builds its bomb with zlib's gzip container: check that the stdlib reads
    it as what the test claims (the size it inflates to)."""
    import zlib

    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    data = z.compress(bytes(1024 * 1024)) + z.flush()
    assert len(gzip.decompress(data)) == 1024 * 1024 and len(data) < 2000
