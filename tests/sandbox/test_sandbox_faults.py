"""Fault injection (seeded, switchable at run time) and robustness against bad requests."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
import pytest

from flinkey_async.sandbox import (
    INTERNAL_SERVER_ERROR,
    FaultConfig,
    RouteFaults,
    Sandbox,
    SandboxConfig,
    WebhookFaults,
)
from flinkey_async.sandbox.faults import FaultInjector
from tests.support.sandbox_helpers import Receiver, drained

CREATE = {"carId": 101, "userId": 1001, "start": "2026-02-01T08:00:00Z"}


async def statuses(
    sandbox: Sandbox, http: aiohttp.ClientSession, path: str, count: int
) -> list[int | str]:
    """Status of ``count`` sequential GETs (``"reset"`` for a dropped connection)."""
    headers = sandbox.auth_headers(1)
    result: list[int | str] = []
    for _ in range(count):
        try:
            async with http.get(f"{sandbox.url}{path}", headers=headers) as response:
                await response.read()
                result.append(response.status)
        except aiohttp.ClientConnectionError:
            result.append("reset")
    return result


MIXED = FaultConfig(
    {"GET /cars": RouteFaults(rate_limit=0.25, server_error=0.25, reset=0.1)}, seed=7
)


async def test_seeded_faults_are_reproducible(make_sandbox: Any) -> None:
    runs = []
    for faults in (MIXED, MIXED, FaultConfig(MIXED.routes, seed=8)):
        sandbox = await make_sandbox(faults=faults)
        # a fresh session per run: a reset must not leave a half-used pooled connection behind
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http:
            runs.append(await statuses(sandbox, http, "/cars", 40))
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]
    assert {200, 429, 500, "reset"} <= set(runs[0])


async def test_seed_of_the_config_is_used_without_a_fault_seed(make_sandbox: Any) -> None:
    faults = FaultConfig({"*": RouteFaults(server_error=0.5)})
    runs = []
    for _ in range(2):
        sandbox = await make_sandbox(faults=faults, seed=99)
        async with aiohttp.ClientSession() as http:
            runs.append(await statuses(sandbox, http, "/cars", 30))
    assert runs[0] == runs[1] and {200, 500} == set(runs[0])


async def test_injected_answers(sb: Sandbox, http: aiohttp.ClientSession) -> None:
    sb.faults = FaultConfig({"GET /cars/{carId}": RouteFaults(rate_limit=1.0, retry_after=7)})
    async with http.get(f"{sb.url}/cars/101", headers=sb.auth_headers(1)) as response:
        assert response.status == 429
        assert response.headers["Retry-After"] == "7"
        assert await response.json() == {
            "status": "429",
            "message": "Rate limit is exceeded. Try again in 7 seconds.",
        }
    # other routes are untouched: the key names the route template
    assert await statuses(sb, http, "/cars/101/assignments", 2) == [200, 200]
    sb.faults = FaultConfig({"/cars/{carId}": RouteFaults(server_error=1.0)})
    async with http.get(f"{sb.url}/cars/101", headers=sb.auth_headers(1)) as response:
        assert response.status == 500
        assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
        assert await response.text() == INTERNAL_SERVER_ERROR
    sb.faults = None
    assert await statuses(sb, http, "/cars/101", 1) == [200]


async def test_faults_come_before_authentication(sb: Sandbox, http: aiohttp.ClientSession) -> None:
    sb.faults = FaultConfig.everywhere(server_error=1.0)
    async with http.get(f"{sb.url}/cars") as response:  # no credentials at all
        assert response.status == 500


async def test_connection_reset_and_recovery(sb: Sandbox, http: aiohttp.ClientSession) -> None:
    sb.faults = FaultConfig({"GET /cars": RouteFaults(reset=1.0)})
    with pytest.raises(aiohttp.ClientConnectionError):
        async with http.get(f"{sb.url}/cars", headers=sb.auth_headers(1)) as response:
            await response.read()
    assert await statuses(sb, http, "/users", 1) == [200]
    sb.faults = None
    assert await statuses(sb, http, "/cars", 3) == [200, 200, 200]


async def test_added_latency(sb: Sandbox, http: aiohttp.ClientSession) -> None:
    sb.faults = FaultConfig({"GET *": RouteFaults(latency=(0.15, 0.2))})
    started = time.perf_counter()
    assert await statuses(sb, http, "/cars", 1) == [200]
    assert time.perf_counter() - started >= 0.15
    sb.faults = FaultConfig({"GET *": RouteFaults(latency=(0.15, 0.2), latency_probability=0)})
    started = time.perf_counter()
    assert await statuses(sb, http, "/cars", 1) == [200]
    assert time.perf_counter() - started < 0.15


def test_route_key_specificity() -> None:
    exact, template, any_path, everything = (
        RouteFaults(rate_limit=p) for p in (0.1, 0.2, 0.3, 0.4)
    )
    config = FaultConfig(
        {"GET /cars": exact, "/cars": template, "PUT *": any_path, "*": everything}
    )
    assert config.for_route("GET", "/cars") is exact
    assert config.for_route("HEAD", "/cars") is template
    assert config.for_route("PUT", "/assignments") is any_path
    assert config.for_route("GET", "/users") is everything
    assert FaultConfig({"GET /cars": exact}).for_route("GET", "/users") is None


def test_fault_config_validation() -> None:
    with pytest.raises(ValueError, match="probability"):
        RouteFaults(server_error=1.5)
    with pytest.raises(ValueError, match="low <= high"):
        RouteFaults(latency=(0.5, 0.1))
    with pytest.raises(ValueError):
        RouteFaults(retry_after=0)
    with pytest.raises(ValueError, match="probability"):
        WebhookFaults(drop=-0.1)


def test_injector_draws_are_independent_of_outcomes() -> None:
    """Each request draws the same number of values, so two routes with different faults
    leave the random sequence in the same state."""
    one = FaultInjector(FaultConfig({"*": RouteFaults(reset=1.0)}, seed=3))
    two = FaultInjector(FaultConfig({"*": RouteFaults()}, seed=3))
    for _ in range(5):
        assert one.decide("GET", "/cars") is not None
        assert two.decide("GET", "/cars") is not None
    assert one.random.random() == two.random.random()


# --- webhook faults -----------------------------------------------------------------------------


async def put_assignments(sandbox: Sandbox, http: aiohttp.ClientSession, count: int) -> None:
    for day in range(1, count + 1):
        body = json.dumps({**CREATE, "start": f"2026-03-{day:02d}T08:00:00Z"}).encode()
        async with http.put(
            f"{sandbox.url}/assignments",
            data=body,
            headers={**sandbox.auth_headers(1), "Content-Type": "application/json"},
        ) as response:
            assert response.status == 204


async def test_webhook_drop_and_duplicate(
    make_sandbox: Any, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    sb = await make_sandbox(
        webhook_url=receiver.url, faults=FaultConfig(webhooks=WebhookFaults(drop=1.0))
    )
    await put_assignments(sb, http, 2)
    await drained(sb)
    assert receiver.received == []
    assert [d.dropped for d in sb.deliveries] == [True, True]
    assert len(sb.outcomes) == 2
    sb.faults = FaultConfig(webhooks=WebhookFaults(duplicate=1.0))
    await put_assignments(sb, http, 2)
    await drained(sb)
    payloads = receiver.payloads()
    assert len(payloads) == 4
    assert payloads[0] == payloads[1] and payloads[2] == payloads[3]
    assert payloads[0] != payloads[2]
    assert [d.duplicate for d in sb.deliveries[2:]] == [False, True, False, True]


async def test_webhook_delay(
    make_sandbox: Any, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    sb = await make_sandbox(
        webhook_url=receiver.url,
        faults=FaultConfig(webhooks=WebhookFaults(delay=1.0, delay_seconds=(0.2, 0.2))),
    )
    started = time.perf_counter()
    await put_assignments(sb, http, 1)
    await asyncio.sleep(0.1)
    assert receiver.received == [] and len(sb.outcomes) == 1  # applied, not yet delivered
    await drained(sb)
    assert time.perf_counter() - started >= 0.2
    assert len(receiver.received) == 1
    assert sb.deliveries[0].delayed == pytest.approx(0.2)


async def test_seeded_webhook_faults_are_reproducible(
    make_sandbox: Any, receiver: Receiver
) -> None:
    patterns = []
    for _ in range(2):
        sb = await make_sandbox(
            webhook_url=receiver.url,
            faults=FaultConfig(webhooks=WebhookFaults(drop=0.3, duplicate=0.5), seed=12),
        )
        async with aiohttp.ClientSession() as http:
            await put_assignments(sb, http, 12)
        await drained(sb)
        patterns.append([(d.dropped, d.duplicate) for d in sb.deliveries])
    assert patterns[0] == patterns[1]
    assert {(True, False), (False, True), (False, False)} <= set(patterns[0])


# --- robustness -----------------------------------------------------------------------------------


async def still_serving(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    async with http.get(
        f"{sandbox.url}/cars/101/assignments", headers=sandbox.auth_headers(1)
    ) as response:
        assert response.status == 200
        assert len(await response.json()) == 5


async def test_huge_bodies_get_413(make_sandbox: Any, http: aiohttp.ClientSession) -> None:
    sb = await make_sandbox(max_body_bytes=1024)
    headers = {**sb.auth_headers(1), "Content-Type": "application/json"}
    body = json.dumps({**CREATE, "padding": "x" * 2048}).encode()
    async with http.put(f"{sb.url}/assignments", data=body, headers=headers) as response:
        assert response.status == 413
    async with http.patch(
        f"{sb.url}/assignments/50001", data=b"[" + b" " * 4096 + b"]", headers=headers
    ) as response:
        assert response.status == 413
    form = {"username": "u" * 4096, "password": "p", "grant_type": "password"}
    async with http.post(
        f"{sb.url}/oauth2/token", data=form, headers={"flinkey-API-Key": sb.config.api_key}
    ) as response:
        assert response.status == 413
    await drained(sb)
    assert sb.outcomes == []
    await still_serving(sb, http)
    small = json.dumps(CREATE).encode()
    async with http.put(f"{sb.url}/assignments", data=small, headers=headers) as response:
        assert response.status == 204


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/nowhere", 404),
        ("GET", "/v2/cars", 404),
        ("GET", "/cars/101/events/x", 404),
        ("POST", "/cars", 405),
        ("DELETE", "/cars/101", 405),
        ("GET", "/assignments", 405),
        ("POST", "/assignments", 405),
        ("GET", "/oauth2/token", 405),
        ("PUT", "/assignments/50001", 405),
    ],
)
async def test_unknown_routes_and_wrong_methods(
    sb: Sandbox, http: aiohttp.ClientSession, method: str, path: str, status: int
) -> None:
    url = f"{sb.url}{path}" if not path.startswith("/v2") else f"{sb.url}"[:-3] + path
    async with http.request(method, url, headers=sb.auth_headers(1)) as response:
        assert response.status == status
    await still_serving(sb, http)


async def test_garbage_requests_do_not_break_the_server(
    sb: Sandbox, http: aiohttp.ClientSession
) -> None:
    headers = {**sb.auth_headers(1), "Content-Type": "application/json"}
    bodies = [
        b"\x00\x01\x02",
        b"null",
        b"1e999999",
        b'{"carId": 1e400}',
        b'"text"',
        b'{"carId": 101, "userId": 1001, "start": "2026-13-45T99:00:00Z"}',
        b'{"carId": 99999999999, "userId": 1001, "start": "2026-01-01T00:00:00Z"}',
    ]
    for body in bodies:
        async with http.put(f"{sb.url}/assignments", data=body, headers=headers) as response:
            assert response.status == 400, body
    async with http.get(
        f"{sb.url}/cars?$filter=" + "(" * 500 + "id eq 1" + ")" * 500, headers=sb.auth_headers(1)
    ) as response:
        assert response.status in (200, 400)
    async with http.get(
        f"{sb.url}/cars", headers={**sb.auth_headers(1), "Customer-ID": "9" * 50}
    ) as response:
        assert response.status == 404
    await drained(sb)
    assert sb.outcomes == []
    await still_serving(sb, http)


async def test_unexpected_errors_become_500(
    sb: Sandbox, http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(_customer_id: int) -> list[Any]:
        raise RuntimeError("boom")

    monkeypatch.setattr(sb.store, "cars_of", broken)
    async with http.get(f"{sb.url}/cars", headers=sb.auth_headers(1)) as response:
        assert response.status == 500
        assert await response.text() == INTERNAL_SERVER_ERROR
    monkeypatch.undo()
    await still_serving(sb, http)
    assert (await statuses(sb, http, "/cars", 1)) == [200]


async def test_store_helpers(sb: Sandbox, http: aiohttp.ClientSession) -> None:
    store = sb.store
    store.add_customer(7, "Rent & Drive")
    car = store.add_car(7, name="Zoë's car")
    user = store.add_user(7, email="jo@example.com", first_name="Jo")
    record = store.add_assignment(car.id, user.id, "2026-01-01T00:00:00+01:00", lifetime=1209600)
    assert record.customer_id == 7 and record.renewable_after == 604800
    assert record.start.isoformat() == "2025-12-31T23:00:00+00:00"
    assert store.assignments_for_car(car.id) == [record]
    assert store.assignments_for_user(user.id) == [record]
    async with http.get(
        f"{sb.url}/cars/{car.id}/assignments", headers=sb.auth_headers(7)
    ) as response:
        assert await response.json() == [
            {"id": record.id, "userId": user.id, "start": "2025-12-31T23:00:00Z", "end": None}
        ]
    with pytest.raises(ValueError, match="unknown car"):
        store.add_assignment(999_999, None, "2026-01-01T00:00:00Z")
    with pytest.raises(ValueError, match="is not a user of customer"):
        store.add_assignment(car.id, 1001, "2026-01-01T00:00:00Z")
    with pytest.raises(ValueError, match="already exists"):
        store.add_customer(7)
    with pytest.raises(ValueError, match="unknown customer"):
        store.add_car(8)
    # a dump loads back into an identical store
    dump = store.dump_fixture()
    again = Sandbox(SandboxConfig(fixture=None)).store
    assert again.customers == {}
    again.load_fixture(dump)
    assert again.dump_fixture() == dump
    assert again.assignments == store.assignments
