"""The sandbox over real HTTP: authentication, reads, writes, webhooks, errors, rate limit."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from flinkey_async.sandbox import (
    ASSIGNMENT_NOT_FOUND,
    CAR_NOT_FOUND,
    END_NOT_AFTER_START,
    INVALID_API_KEY,
    INVALID_TOKEN,
    LIFETIME_OUT_OF_RANGE,
    MANAGER_NOT_FOUND,
    REMOVE_CAR_ID_NOT_ALLOWED,
    REMOVE_START_NOT_ALLOWED,
    RENEWABLE_AFTER_OUT_OF_RANGE,
    USER_NOT_FOUND,
    RateLimit,
    Sandbox,
    SandboxConfig,
    make_app,
    sandbox_of,
)
from flinkey_async.sandbox.config import RateLimiter
from tests.support.sandbox_helpers import Receiver, drained

TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
TEXT = "text/plain; charset=utf-8"
SECRET = "s3cr3t-webhook"


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest().upper()


async def call(
    http: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    content_type: str | None = "application/json",
) -> tuple[int, str, bytes]:
    """One request; returns (status, content type header, body)."""
    all_headers = dict(headers or {})
    if body is not None and content_type is not None:
        all_headers["Content-Type"] = content_type
    async with http.request(method, url, headers=all_headers, data=body) as response:
        return response.status, response.headers.get("Content-Type", ""), await response.read()


def token_form(sandbox: Sandbox, **override: str) -> dict[str, str]:
    form = {
        "username": sandbox.config.username,
        "password": sandbox.config.password,
        "grant_type": "password",
    }
    form.update(override)
    return form


# --- authentication ---------------------------------------------------------------------------


async def test_token_endpoint_issues_working_bearer_token(
    sb: Sandbox, http: aiohttp.ClientSession
) -> None:
    async with http.post(
        f"{sb.url}/oauth2/token",
        data=token_form(sb),
        headers={"flinkey-API-Key": sb.config.api_key},
    ) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "application/json; charset=utf-8"
        data = await response.json()
    assert set(data) == {"token_type", "expires_in", "access_token"}
    assert data["token_type"] == "Bearer"
    assert data["expires_in"] == "3600"  # a string, as documented
    token = data["access_token"]
    assert isinstance(token, str) and len(token) >= 32
    headers = {
        "flinkey-API-Key": sb.config.api_key,
        "Authorization": f"Bearer {token}",
        "Customer-ID": "1",
    }
    status, _, body = await call(http, "GET", f"{sb.url}/cars", headers=headers)
    assert status == 200
    assert len(json.loads(body)) == 10


async def test_token_endpoint_errors(sb: Sandbox, http: aiohttp.ClientSession) -> None:
    key = {"flinkey-API-Key": sb.config.api_key}
    url = f"{sb.url}/oauth2/token"
    async with http.post(url, data=token_form(sb, password="wrong"), headers=key) as response:
        assert response.status == 400
        assert (await response.json())["error"] == "invalid_grant"
    async with http.post(
        url, data=token_form(sb, username="other@example.com"), headers=key
    ) as response:
        assert response.status == 400
        assert (await response.json())["error"] == "invalid_grant"
    async with http.post(
        url, data=token_form(sb, grant_type="client_credentials"), headers=key
    ) as response:
        assert response.status == 400
        assert (await response.json())["error"] == "unsupported_grant_type"
    async with http.post(url, data={"username": "x"}, headers=key) as response:
        assert response.status == 400
        assert (await response.json())["error"] == "invalid_request"
    async with http.post(url, data=token_form(sb)) as response:  # no API key
        assert response.status == 401
        assert await response.json() == {"statusCode": 401, "message": INVALID_API_KEY}
    async with http.post(url, json=token_form(sb), headers=key) as response:  # JSON body
        assert response.status == 415
        assert response.headers["Content-Type"] == "application/problem+json; charset=utf-8"
        problem = await response.json()
    assert problem["status"] == "415" and problem["title"] == "Unsupported Media Type"


async def test_token_expires_after_token_lifetime(
    make_sandbox: Any, http: aiohttp.ClientSession
) -> None:
    sb = await make_sandbox(token_lifetime=0.3)
    async with http.post(
        f"{sb.url}/oauth2/token",
        data=token_form(sb),
        headers={"flinkey-API-Key": sb.config.api_key},
    ) as response:
        data = await response.json()
    assert data["expires_in"] == "1"  # whole seconds, rounded up
    headers = {
        "flinkey-API-Key": sb.config.api_key,
        "Authorization": f"Bearer {data['access_token']}",
        "Customer-ID": "1",
    }
    assert (await call(http, "GET", f"{sb.url}/cars", headers=headers))[0] == 200
    await asyncio.sleep(0.35)
    status, _, body = await call(http, "GET", f"{sb.url}/cars", headers=headers)
    assert status == 401
    assert json.loads(body) == {"statusCode": 401, "message": INVALID_TOKEN}


async def test_the_two_401_bodies_exactly(sb: Sandbox, http: aiohttp.ClientSession) -> None:
    url = f"{sb.url}/cars"
    token = sb.issue_token()
    key = sb.config.api_key
    key_error = {"statusCode": 401, "message": INVALID_API_KEY}
    token_error = {"statusCode": 401, "message": INVALID_TOKEN}
    cases: list[tuple[dict[str, str], dict[str, Any]]] = [
        ({"Authorization": f"Bearer {token}", "Customer-ID": "1"}, key_error),
        ({"flinkey-API-Key": "wrong", "Authorization": f"Bearer {token}"}, key_error),
        ({"flinkey-API-Key": "wrong"}, key_error),  # the key is checked first
        ({"flinkey-API-Key": key, "Customer-ID": "1"}, token_error),
        ({"flinkey-API-Key": key, "Authorization": "Bearer nope", "Customer-ID": "1"}, token_error),
        (
            {"flinkey-API-Key": key, "Authorization": f"Basic {token}", "Customer-ID": "1"},
            token_error,
        ),
        ({"flinkey-API-Key": key, "Authorization": token, "Customer-ID": "1"}, token_error),
        ({"flinkey-API-Key": key}, token_error),  # the token before the Customer-ID
    ]
    for headers, expected in cases:
        status, ctype, body = await call(http, "GET", url, headers=headers)
        assert (status, json.loads(body)) == (401, expected), headers
        assert ctype == "application/json; charset=utf-8"
    # the scheme is case-insensitive
    headers = {"flinkey-API-Key": key, "Authorization": f"bearer {token}", "Customer-ID": "1"}
    assert (await call(http, "GET", url, headers=headers))[0] == 200


async def test_expired_and_revoked_tokens(sb: Sandbox, http: aiohttp.ClientSession) -> None:
    short = sb.issue_token(lifetime=0.05)
    await asyncio.sleep(0.1)
    status, _, body = await call(
        http, "GET", f"{sb.url}/cars", headers=sb.auth_headers(1, token=short)
    )
    assert (status, json.loads(body)["message"]) == (401, INVALID_TOKEN)
    headers = sb.auth_headers(1)
    assert (await call(http, "GET", f"{sb.url}/cars", headers=headers))[0] == 200
    sb.expire_tokens()
    assert (await call(http, "GET", f"{sb.url}/cars", headers=headers))[0] == 401


@pytest.mark.parametrize("customer", [None, "", "abc", "999", "-1", "1.0", "0"])
async def test_manager_not_found_for_bad_customer_id(
    sb: Sandbox, http: aiohttp.ClientSession, customer: str | None
) -> None:
    headers = sb.auth_headers()
    if customer is not None:
        headers["Customer-ID"] = customer
    for path in ("/cars", "/users", "/cars/101/assignments", "/assignments/50001"):
        status, ctype, body = await call(http, "GET", f"{sb.url}{path}", headers=headers)
        assert (status, ctype, body.decode()) == (404, TEXT, MANAGER_NOT_FOUND)
    status, ctype, body = await call(
        http, "PUT", f"{sb.url}/assignments", headers=headers, body=b"{}"
    )
    assert (status, body.decode()) == (404, MANAGER_NOT_FOUND)


async def test_customers_need_no_customer_id(sb: Sandbox, http: aiohttp.ClientSession) -> None:
    status, _, body = await call(http, "GET", f"{sb.url}/customers", headers=sb.auth_headers())
    assert status == 200
    assert json.loads(body) == [
        {"id": 1, "name": "Autohaus Müller & Söhne GmbH"},
        {"id": 2, "name": "O'Reilly Car Sharing Ltd."},
    ]


async def test_customer_ids_restrict_the_manager(
    make_sandbox: Any, http: aiohttp.ClientSession
) -> None:
    sb = await make_sandbox(customer_ids=[2])
    status, _, body = await call(http, "GET", f"{sb.url}/customers", headers=sb.auth_headers())
    assert status == 200
    assert [c["id"] for c in json.loads(body)] == [2]
    assert (await call(http, "GET", f"{sb.url}/cars", headers=sb.auth_headers(1)))[0] == 404
    assert (await call(http, "GET", f"{sb.url}/cars", headers=sb.auth_headers(2)))[0] == 200
    assert sb.customer_ids == [2]


async def test_make_app_works_with_aiohttp_test_client() -> None:
    app = make_app(SandboxConfig(write_delay=0.0))
    sandbox = sandbox_of(app)
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/v3/cars/101", headers=sandbox.auth_headers(1))
        assert response.status == 200
        assert (await response.json())["name"] == "Golf 8 \u2013 Pool #1"


# --- reads ------------------------------------------------------------------------------------


async def test_reads_match_the_store(sb: Sandbox, http: aiohttp.ClientSession) -> None:
    store = sb.store
    for customer_id in (1, 2):
        headers = sb.auth_headers(customer_id)
        _, _, body = await call(http, "GET", f"{sb.url}/cars", headers=headers)
        cars = json.loads(body)
        assert [c["id"] for c in cars] == [c.id for c in store.cars_of(customer_id)]
        for wire in cars:
            car = store.cars[wire["id"]]
            assert wire == {
                "id": car.id,
                "name": car.name,
                "description": car.description,
                "vin": car.vin,
                "licensePlate": car.license_plate,
                "brand": car.brand,
                "model": car.model,
            }
            _, _, one = await call(http, "GET", f"{sb.url}/cars/{car.id}", headers=headers)
            assert json.loads(one) == wire
        _, _, body = await call(http, "GET", f"{sb.url}/users", headers=headers)
        users = json.loads(body)
        assert len(users) == 20
        for wire in users:
            user = store.users[wire["id"]]
            assert user.customer_id == customer_id
            assert wire == {
                "id": user.id,
                "emailAddress": user.email_address,
                "userData": {"firstName": user.first_name, "lastName": user.last_name},
            }


async def test_assignment_shapes(sb: Sandbox, http: aiohttp.ClientSession) -> None:
    headers = sb.auth_headers(1)
    record = sb.store.assignments[50001]
    _, _, body = await call(http, "GET", f"{sb.url}/assignments/50001", headers=headers)
    single = json.loads(body)
    assert list(single) == ["id", "carId", "userId", "start", "end", "lifetime", "renewableAfter"]
    assert single["id"] == 50001 and single["carId"] == record.car_id
    assert single["userId"] == record.user_id and single["lifetime"] == record.lifetime
    assert single["start"] == record.start.strftime("%Y-%m-%dT%H:%M:%SZ")

    _, _, body = await call(http, "GET", f"{sb.url}/cars/101/assignments", headers=headers)
    per_car = json.loads(body)
    assert [a["id"] for a in per_car] == [a.id for a in sb.store.assignments_for_car(101)]
    assert len(per_car) == 5
    for item in per_car:
        assert list(item) == ["id", "userId", "start", "end"]
        assert TIMESTAMP.fullmatch(item["start"])
        assert item["end"] is None or TIMESTAMP.fullmatch(item["end"])
    user_id = next(a.user_id for a in sb.store.assignments_of(1) if a.user_id is not None)
    _, _, body = await call(http, "GET", f"{sb.url}/users/{user_id}/assignments", headers=headers)
    per_user = json.loads(body)
    assert per_user and [a["id"] for a in per_user] == [
        a.id for a in sb.store.assignments_for_user(user_id)
    ]
    for item in per_user:
        assert list(item) == ["id", "carId", "start", "end"]
    # some fixture assignments are unrestricted and some have no user
    everything = sb.store.dump_fixture()["assignments"]
    assert any(a["end"] is None for a in everything)
    assert any(a["userId"] is None for a in everything)


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ("/assignments/99999", ASSIGNMENT_NOT_FOUND),
        ("/assignments/50050", ASSIGNMENT_NOT_FOUND),  # belongs to customer 2
        ("/assignments/abc", ASSIGNMENT_NOT_FOUND),
        ("/assignments/0", ASSIGNMENT_NOT_FOUND),
        ("/assignments/-1", ASSIGNMENT_NOT_FOUND),
        ("/assignments/99999999999999", ASSIGNMENT_NOT_FOUND),
        ("/cars/999/assignments", CAR_NOT_FOUND),
        ("/cars/201/assignments", CAR_NOT_FOUND),  # customer 2's car
        ("/cars/x1/assignments", CAR_NOT_FOUND),
        ("/cars/201", CAR_NOT_FOUND),
        ("/users/2001/assignments", USER_NOT_FOUND),
        ("/users/0/assignments", USER_NOT_FOUND),
        ("/users/2001", USER_NOT_FOUND),
        ("/users/%20", USER_NOT_FOUND),
    ],
)
async def test_documented_404_texts(
    sb: Sandbox, http: aiohttp.ClientSession, path: str, text: str
) -> None:
    status, ctype, body = await call(http, "GET", f"{sb.url}{path}", headers=sb.auth_headers(1))
    assert (status, ctype, body.decode()) == (404, TEXT, text)


# --- writes -----------------------------------------------------------------------------------


async def test_create_is_applied_later_and_reported_by_webhook(
    make_sandbox: Any, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    sb = await make_sandbox(write_delay=0.3, webhook_url=receiver.url, webhook_secret=SECRET)
    headers = sb.auth_headers(1)
    before = [a.id for a in sb.store.assignments_for_car(105)]
    body = b'{"carId": 105, "userId": 1007, "start": "2026-03-01T08:00:00Z", "end": null}'
    status, _, answer = await call(http, "PUT", f"{sb.url}/assignments", headers=headers, body=body)
    assert (status, answer) == (204, b"")
    _, _, listed = await call(http, "GET", f"{sb.url}/cars/105/assignments", headers=headers)
    assert [a["id"] for a in json.loads(listed)] == before  # not applied yet
    assert receiver.received == []
    await drained(sb)
    assert len(receiver.received) == 1
    delivery = receiver.received[0]
    assert delivery.headers["Secret"] == SECRET
    assert delivery.headers["Content-Type"] == "application/json"
    assert delivery.headers["Target-Webhook-Address"] == receiver.url
    new_id = max(sb.store.assignments)
    assert delivery.json() == {
        "checksum": md5(body),
        "assignmentId": new_id,
        "carId": 105,
        "userId": 1007,
        "start": "2026-03-01T08:00:00Z",
        "end": None,
        "customerId": 1,
        "operationSucceeded": True,
        "errorMessage": None,
        "lifetime": 604800,
        "renewableAfter": 302400,
    }
    assert list(delivery.json()) == [
        "checksum",
        "assignmentId",
        "carId",
        "userId",
        "start",
        "end",
        "customerId",
        "operationSucceeded",
        "errorMessage",
        "lifetime",
        "renewableAfter",
    ]
    assert re.fullmatch(r"[0-9A-F]{32}", delivery.json()["checksum"])
    _, _, one = await call(http, "GET", f"{sb.url}/assignments/{new_id}", headers=headers)
    assert json.loads(one) == {
        "id": new_id,
        "carId": 105,
        "userId": 1007,
        "start": "2026-03-01T08:00:00Z",
        "end": None,
        "lifetime": 604800,
        "renewableAfter": 302400,
    }
    _, _, listed = await call(http, "GET", f"{sb.url}/cars/105/assignments", headers=headers)
    assert [a["id"] for a in json.loads(listed)] == [*before, new_id]
    assert [(d.status, d.payload) for d in sb.deliveries] == [(200, delivery.json())]
    assert sb.outcomes == [delivery.json()]


async def test_create_with_all_fields_normalises_timestamps(
    sb: Sandbox, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    sb.webhook_url = receiver.url
    body = json.dumps(
        {
            "carId": 201,
            "userId": 2005,
            "start": "2026-05-01T10:00:00.750+02:00",
            "end": "2026-05-08T10:00:00Z",
            "lifetime": 1209600,
            "renewableAfter": 86400,
            "extra": "ignored",
        }
    ).encode()
    status, _, _ = await call(
        http, "PUT", f"{sb.url}/assignments", headers=sb.auth_headers(2), body=body
    )
    assert status == 204
    await drained(sb)
    payload = receiver.payloads()[0]
    assert receiver.received[0].headers.get("Secret") is None  # no secret configured
    assert payload["operationSucceeded"] is True
    assert payload["customerId"] == 2
    assert payload["start"] == "2026-05-01T08:00:00Z"
    assert (payload["lifetime"], payload["renewableAfter"]) == (1209600, 86400)
    record = sb.store.assignments[payload["assignmentId"]]
    assert record.start == datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
    assert record.end == datetime(2026, 5, 8, 10, 0, tzinfo=UTC)


async def test_update_with_string_values_and_removals(
    sb: Sandbox, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    sb.webhook_url, sb.webhook_secret = receiver.url, SECRET
    original = sb.store.assignments[50001]
    patch = json.dumps(
        [
            {"op": "replace", "path": "/end", "value": "2026-12-24T18:00:00Z"},
            {"op": "replace", "path": "/lifetime", "value": "1209600"},
            {"op": "remove", "path": "/userId"},
            {"op": "replace", "path": "/start", "value": "2026-12-01T08:00:00Z"},
        ]
    ).encode()
    status, _, answer = await call(
        http, "PATCH", f"{sb.url}/assignments/50001", headers=sb.auth_headers(1), body=patch
    )
    assert (status, answer) == (204, b"")
    await drained(sb)
    assert receiver.payloads() == [
        {
            "checksum": md5(patch),
            "assignmentId": 50001,
            "customerId": 1,
            "operationSucceeded": True,
            "errorMessage": None,
            "carId": original.car_id,
            "userId": None,
            "start": "2026-12-01T08:00:00Z",
            "end": "2026-12-24T18:00:00Z",
            "lifetime": 1209600,
            "renewableAfter": 604800,  # a default follows the lifetime
        }
    ]
    assert receiver.received[0].headers["Secret"] == SECRET
    _, _, one = await call(http, "GET", f"{sb.url}/assignments/50001", headers=sb.auth_headers(1))
    assert json.loads(one) == {
        "id": 50001,
        "carId": original.car_id,
        "userId": None,
        "start": "2026-12-01T08:00:00Z",
        "end": "2026-12-24T18:00:00Z",
        "lifetime": 1209600,
        "renewableAfter": 604800,
    }
    # numbers are accepted for the integer paths too; remove resets to the defaults
    patch = json.dumps(
        [
            {"op": "replace", "path": "/renewableAfter", "value": 7200},
            {"op": "replace", "path": "/userId", "value": 1002},
            {"op": "replace", "path": "/end", "value": None},
        ]
    ).encode()
    await call(http, "PATCH", f"{sb.url}/assignments/50001", headers=sb.auth_headers(1), body=patch)
    patch2 = b'[{"op": "remove", "path": "/lifetime"}]'
    await call(
        http, "PATCH", f"{sb.url}/assignments/50001", headers=sb.auth_headers(1), body=patch2
    )
    await drained(sb)
    second, third = receiver.payloads()[1:]
    assert (second["userId"], second["end"], second["renewableAfter"]) == (1002, None, 7200)
    assert third["operationSucceeded"] is True
    assert (third["lifetime"], third["renewableAfter"]) == (604800, 7200)
    record = sb.store.assignments[50001]
    assert (record.user_id, record.end, record.lifetime) == (1002, None, 604800)


async def test_delete_reports_the_deleted_assignment(
    sb: Sandbox, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    sb.webhook_url = receiver.url
    record = sb.store.assignments[50002]
    status, _, answer = await call(
        http, "DELETE", f"{sb.url}/assignments/50002", headers=sb.auth_headers(1)
    )
    assert (status, answer) == (204, b"")
    await drained(sb)
    assert receiver.payloads() == [
        {
            "checksum": md5(b"DELETE /assignments/50002"),
            "assignmentId": 50002,
            "customerId": 1,
            "operationSucceeded": True,
            "errorMessage": None,
            "carId": record.car_id,
            "userId": record.user_id,
            "start": record.start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "end": record.end.strftime("%Y-%m-%dT%H:%M:%SZ") if record.end else None,
        }
    ]
    status, _, body = await call(
        http, "GET", f"{sb.url}/assignments/50002", headers=sb.auth_headers(1)
    )
    assert (status, body.decode()) == (404, ASSIGNMENT_NOT_FOUND)


async def test_writes_apply_in_arrival_order(sb: Sandbox, http: aiohttp.ClientSession) -> None:
    headers = sb.auth_headers(1)
    url = f"{sb.url}/assignments/50003"
    for day in (10, 11, 12):
        body = json.dumps(
            [{"op": "replace", "path": "/end", "value": f"2027-01-{day}T00:00:00Z"}]
        ).encode()
        assert (await call(http, "PATCH", url, headers=headers, body=body))[0] == 204
    assert (await call(http, "DELETE", url, headers=headers))[0] == 204
    await drained(sb)
    assert [(o.get("end"), o["operationSucceeded"]) for o in sb.outcomes] == [
        ("2027-01-10T00:00:00Z", True),
        ("2027-01-11T00:00:00Z", True),
        ("2027-01-12T00:00:00Z", True),
        ("2027-01-12T00:00:00Z", True),
    ]
    assert 50003 not in sb.store.assignments


def create(car: int = 101, user: int = 1001, **extra: Any) -> dict[str, Any]:
    return {"carId": car, "userId": user, "start": "2026-02-01T08:00:00Z", **extra}


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (create(car=201), CAR_NOT_FOUND),  # customer 2's car
        (create(car=9999), CAR_NOT_FOUND),
        (create(user=2001), USER_NOT_FOUND),
        (create(user=9999), USER_NOT_FOUND),
        (create(lifetime=604799), LIFETIME_OUT_OF_RANGE),
        (create(lifetime=2419201), LIFETIME_OUT_OF_RANGE),
        (create(lifetime=0), LIFETIME_OUT_OF_RANGE),
        (create(renewableAfter=0), RENEWABLE_AFTER_OUT_OF_RANGE),
        (create(renewableAfter=604800), RENEWABLE_AFTER_OUT_OF_RANGE),
        (create(lifetime=1209600, renewableAfter=1209600), RENEWABLE_AFTER_OUT_OF_RANGE),
        (create(renewableAfter=-5), RENEWABLE_AFTER_OUT_OF_RANGE),
        (create(end="2026-02-01T08:00:00Z"), END_NOT_AFTER_START),
        (create(end="2026-01-01T08:00:00Z"), END_NOT_AFTER_START),
    ],
)
async def test_failed_creates_change_nothing(
    sb: Sandbox, http: aiohttp.ClientSession, receiver: Receiver, body: dict[str, Any], error: str
) -> None:
    sb.webhook_url = receiver.url
    before = sb.store.dump_fixture()
    raw = json.dumps(body).encode()
    assert (await call(http, "PUT", f"{sb.url}/assignments", headers=sb.auth_headers(1), body=raw))[
        0
    ] == 204
    await drained(sb)
    assert sb.store.dump_fixture() == before
    assert receiver.payloads() == [
        {
            "checksum": md5(raw),
            "assignmentId": None,
            "carId": body["carId"],
            "userId": body["userId"],
            "start": body["start"],
            "end": body.get("end"),
            "customerId": 1,
            "operationSucceeded": False,
            "errorMessage": error,
            "lifetime": body.get("lifetime"),
            "renewableAfter": body.get("renewableAfter"),
        }
    ]


@pytest.mark.parametrize(
    ("body", "value"),
    [
        (create(lifetime=604800), 604800),
        (create(lifetime=2419200), 2419200),
    ],
)
async def test_lifetime_bounds_are_inclusive(
    sb: Sandbox, http: aiohttp.ClientSession, body: dict[str, Any], value: int
) -> None:
    await call(
        http,
        "PUT",
        f"{sb.url}/assignments",
        headers=sb.auth_headers(1),
        body=json.dumps(body).encode(),
    )
    await drained(sb)
    (outcome,) = sb.outcomes
    assert outcome["operationSucceeded"] is True
    assert (outcome["lifetime"], outcome["renewableAfter"]) == (value, value // 2)


@pytest.mark.parametrize(
    ("assignment", "patch", "error"),
    [
        (
            99999,
            [{"op": "replace", "path": "/end", "value": "2027-01-01T00:00:00Z"}],
            ASSIGNMENT_NOT_FOUND,
        ),
        (
            50050,
            [{"op": "replace", "path": "/end", "value": "2027-01-01T00:00:00Z"}],
            ASSIGNMENT_NOT_FOUND,
        ),  # customer 2's assignment
        (50001, [{"op": "remove", "path": "/carId"}], REMOVE_CAR_ID_NOT_ALLOWED),
        (50001, [{"op": "replace", "path": "/start", "value": None}], REMOVE_START_NOT_ALLOWED),
        (50001, [{"op": "replace", "path": "/carId", "value": "201"}], CAR_NOT_FOUND),
        (50001, [{"op": "replace", "path": "/userId", "value": "2001"}], USER_NOT_FOUND),
        (50001, [{"op": "replace", "path": "/lifetime", "value": "99"}], LIFETIME_OUT_OF_RANGE),
        (
            50001,
            [{"op": "replace", "path": "/renewableAfter", "value": "5000000"}],
            RENEWABLE_AFTER_OUT_OF_RANGE,
        ),
        (
            50001,
            [{"op": "replace", "path": "/end", "value": "2000-01-01T00:00:00Z"}],
            END_NOT_AFTER_START,
        ),
    ],
)
async def test_failed_updates_change_nothing(
    sb: Sandbox,
    http: aiohttp.ClientSession,
    assignment: int,
    patch: list[dict[str, Any]],
    error: str,
) -> None:
    before = sb.store.dump_fixture()
    raw = json.dumps(patch).encode()
    assert (
        await call(
            http,
            "PATCH",
            f"{sb.url}/assignments/{assignment}",
            headers=sb.auth_headers(1),
            body=raw,
        )
    )[0] == 204
    await drained(sb)
    assert sb.store.dump_fixture() == before
    (outcome,) = sb.outcomes
    assert outcome["operationSucceeded"] is False
    assert outcome["errorMessage"] == error
    assert (outcome["checksum"], outcome["assignmentId"], outcome["customerId"]) == (
        md5(raw),
        assignment,
        1,
    )


async def test_failed_update_reports_the_requested_fields(
    sb: Sandbox, http: aiohttp.ClientSession
) -> None:
    record = sb.store.assignments[50001]
    raw = b'[{"op": "replace", "path": "/lifetime", "value": "3000000"}]'
    await call(http, "PATCH", f"{sb.url}/assignments/50001", headers=sb.auth_headers(1), body=raw)
    await drained(sb)
    (outcome,) = sb.outcomes
    assert outcome == {
        "checksum": md5(raw),
        "assignmentId": 50001,
        "customerId": 1,
        "operationSucceeded": False,
        "errorMessage": LIFETIME_OUT_OF_RANGE,
        "carId": record.car_id,
        "userId": record.user_id,
        "start": record.start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "end": record.end.strftime("%Y-%m-%dT%H:%M:%SZ") if record.end else None,
        "lifetime": 3000000,
        "renewableAfter": record.renewable_after if record.renewable_after_explicit else 1500000,
    }
    assert sb.store.assignments[50001] == record


async def test_failed_deletes_change_nothing(sb: Sandbox, http: aiohttp.ClientSession) -> None:
    before = sb.store.dump_fixture()
    for assignment in (99999, 50050):  # unknown; customer 2's
        assert (
            await call(
                http, "DELETE", f"{sb.url}/assignments/{assignment}", headers=sb.auth_headers(1)
            )
        )[0] == 204
    await drained(sb)
    assert sb.store.dump_fixture() == before
    assert sb.outcomes == [
        {
            "checksum": md5(f"DELETE /assignments/{a}".encode()),
            "assignmentId": a,
            "customerId": 1,
            "operationSucceeded": False,
            "errorMessage": ASSIGNMENT_NOT_FOUND,
            "carId": None,
            "userId": None,
            "start": None,
            "end": None,
        }
        for a in (99999, 50050)
    ]


async def test_uninstall_removes_car_assignments_with_unsolicited_webhooks(
    sb: Sandbox, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    sb.webhook_url, sb.webhook_secret = receiver.url, SECRET
    ids = [a.id for a in sb.store.assignments_for_car(102)]
    assert ids
    removed = sb.store.remove_car_assignments(102)
    assert [a.id for a in removed] == ids
    await drained(sb)
    assert [
        (p["assignmentId"], p["operationSucceeded"], p["carId"], p["checksum"])
        for p in receiver.payloads()
    ] == [(i, True, 102, md5(f"DELETE /assignments/{i}".encode())) for i in ids]
    assert all(r.headers["Secret"] == SECRET for r in receiver.received)
    _, _, body = await call(
        http, "GET", f"{sb.url}/cars/102/assignments", headers=sb.auth_headers(1)
    )
    assert json.loads(body) == []


async def test_webhook_failures_are_recorded_not_raised(
    sb: Sandbox, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    receiver.status = 500
    sb.webhook_url = receiver.url
    body = json.dumps(create()).encode()
    await call(http, "PUT", f"{sb.url}/assignments", headers=sb.auth_headers(1), body=body)
    await drained(sb)
    assert [d.status for d in sb.deliveries] == [500]
    # nothing listens here: the attempt fails fast and is recorded with its error
    sb.webhook_url = "http://127.0.0.1:9/hook"
    await call(http, "PUT", f"{sb.url}/assignments", headers=sb.auth_headers(1), body=body)
    await drained(sb)
    last = sb.deliveries[-1]
    assert last.status is None and last.error
    assert (await call(http, "GET", f"{sb.url}/cars", headers=sb.auth_headers(1)))[0] == 200
    assert len(sb.outcomes) == 2 and all(o["operationSucceeded"] for o in sb.outcomes)


async def test_without_webhook_url_outcomes_are_still_recorded(
    sb: Sandbox, http: aiohttp.ClientSession
) -> None:
    await call(
        http,
        "PUT",
        f"{sb.url}/assignments",
        headers=sb.auth_headers(1),
        body=json.dumps(create()).encode(),
    )
    await drained(sb)
    assert len(sb.outcomes) == 1 and sb.deliveries == []


# --- 415 and 400 ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"), [("PUT", "/assignments"), ("PATCH", "/assignments/50001")]
)
@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/x-www-form-urlencoded", "application/xml"]
)
async def test_unsupported_media_type_problem(
    sb: Sandbox, http: aiohttp.ClientSession, method: str, path: str, content_type: str | None
) -> None:
    headers = sb.auth_headers(1)
    if content_type is not None:
        headers["Content-Type"] = content_type
    async with http.request(
        method, f"{sb.url}{path}", headers=headers, data=b"[]" if content_type else None
    ) as response:
        assert response.status == 415
        assert response.headers["Content-Type"] == "application/problem+json; charset=utf-8"
        problem = await response.json(content_type=None)
    assert set(problem) == {"type", "title", "status", "traceId"}
    assert problem["type"] == "https://tools.ietf.org/html/rfc7231#section-6.5.13"
    assert problem["title"] == "Unsupported Media Type"
    assert problem["status"] == "415"
    assert re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-00", problem["traceId"])
    await drained(sb)
    assert sb.outcomes == []


async def test_json_content_type_with_charset_is_accepted(
    sb: Sandbox, http: aiohttp.ClientSession
) -> None:
    status, _, _ = await call(
        http,
        "PUT",
        f"{sb.url}/assignments",
        headers=sb.auth_headers(1),
        body=json.dumps(create()).encode(),
        content_type="application/json; charset=utf-8",
    )
    assert status == 204


@pytest.mark.parametrize(
    ("method", "path", "body", "message"),
    [
        ("PUT", "/assignments", b"{not json", "The request body is not valid JSON"),
        ("PUT", "/assignments", b"", "The request body is not valid JSON"),
        ("PUT", "/assignments", b"\xff\xfe", "The request body is not valid JSON"),
        ("PUT", "/assignments", b'{"carId": NaN}', "The request body is not valid JSON"),
        ("PUT", "/assignments", b"[]", "The request body must be a JSON object."),
        (
            "PUT",
            "/assignments",
            b'{"userId": 1001, "start": "2026-01-01T00:00:00Z"}',
            "The field 'carId' is required.",
        ),
        (
            "PUT",
            "/assignments",
            b'{"carId": "101", "userId": 1001, "start": "2026-01-01T00:00:00Z"}',
            "The field 'carId' must be a 32-bit integer.",
        ),
        (
            "PUT",
            "/assignments",
            b'{"carId": true, "userId": 1001, "start": "2026-01-01T00:00:00Z"}',
            "The field 'carId' must be a 32-bit integer.",
        ),
        (
            "PUT",
            "/assignments",
            b'{"carId": 101, "userId": 1001}',
            "The field 'start' is required.",
        ),
        (
            "PUT",
            "/assignments",
            b'{"carId": 101, "userId": 1001, "start": "tomorrow"}',
            "The field 'start' must be a date-time string",
        ),
        (
            "PUT",
            "/assignments",
            b'{"carId": 101, "userId": 1001, "start": "2026-01-01T00:00:00Z", '
            b'"lifetime": "604800"}',
            "The field 'lifetime' must be a 32-bit integer or null.",
        ),
        (
            "PUT",
            "/assignments",
            b'{"carId": 101, "userId": 1001, "start": "2026-01-01T00:00:00Z", "end": 5}',
            "The field 'end' must be a date-time string",
        ),
        (
            "PATCH",
            "/assignments/50001",
            b'{"op": "remove", "path": "/end"}',
            "The request body must be a JSON array of patch operations.",
        ),
        (
            "PATCH",
            "/assignments/50001",
            b'[{"op": "add", "path": "/end", "value": null}]',
            "Patch operation 0: 'op' must be 'replace' or 'remove'.",
        ),
        (
            "PATCH",
            "/assignments/50001",
            b'[{"op": "remove", "path": "/end"}, {"op": "remove", "path": "/color"}]',
            "Patch operation 1: 'path' must be one of",
        ),
        (
            "PATCH",
            "/assignments/50001",
            b'[{"op": "replace", "path": "/lifetime", "value": "abc"}]',
            "Patch operation 0: the value of /lifetime must be an integer",
        ),
        (
            "PATCH",
            "/assignments/50001",
            b'[{"op": "replace", "path": "/lifetime", "value": true}]',
            "Patch operation 0: the value of /lifetime must be an integer",
        ),
        (
            "PATCH",
            "/assignments/50001",
            b'[{"op": "replace", "path": "/end", "value": "soon"}]',
            "Patch operation 0: the value of /end must be a date-time string",
        ),
        (
            "PATCH",
            "/assignments/50001",
            b'[{"op": "replace", "path": "/end"}]',
            "Patch operation 0: 'replace' needs a 'value'.",
        ),
        ("PATCH", "/assignments/50001", b"[1]", "Patch operation 0 must be a JSON object."),
        (
            "PATCH",
            "/assignments/50001",
            b"[" * 30000 + b"]" * 30000,
            "The request body is nested too deeply.",
        ),
    ],
)
async def test_malformed_bodies_get_400(
    sb: Sandbox, http: aiohttp.ClientSession, method: str, path: str, body: bytes, message: str
) -> None:
    status, ctype, answer = await call(
        http, method, f"{sb.url}{path}", headers=sb.auth_headers(1), body=body
    )
    assert (status, ctype) == (400, TEXT)
    assert answer.decode().startswith(message)
    await drained(sb)
    assert sb.outcomes == []  # nothing was queued
    assert (await call(http, "GET", f"{sb.url}/cars/101", headers=sb.auth_headers(1)))[0] == 200


@pytest.mark.parametrize("path", ["/assignments/abc", "/assignments/0", "/assignments/-3"])
async def test_writes_to_bad_path_ids_get_404(
    sb: Sandbox, http: aiohttp.ClientSession, path: str
) -> None:
    status, _, body = await call(http, "DELETE", f"{sb.url}{path}", headers=sb.auth_headers(1))
    assert (status, body.decode()) == (404, ASSIGNMENT_NOT_FOUND)
    status, _, body = await call(
        http, "PATCH", f"{sb.url}{path}", headers=sb.auth_headers(1), body=b"[]"
    )
    assert (status, body.decode()) == (404, ASSIGNMENT_NOT_FOUND)


# --- rate limit -------------------------------------------------------------------------------


async def test_rate_limit_answers_429_with_retry_after(
    make_sandbox: Any, http: aiohttp.ClientSession
) -> None:
    sb = await make_sandbox(rate_limit=RateLimit(3, window=60))
    headers = sb.auth_headers(1)
    statuses = []
    for _ in range(3):
        statuses.append((await call(http, "GET", f"{sb.url}/cars", headers=headers))[0])
    assert statuses == [200, 200, 200]
    for path in ("/cars", "/customers"):
        async with http.get(f"{sb.url}{path}", headers=headers) as response:
            assert response.status == 429
            retry_after = response.headers["Retry-After"]
            body = await response.json()
        assert retry_after.isdigit() and 1 <= int(retry_after) <= 60
        assert body == {
            "status": "429",
            "message": f"Rate limit is exceeded. Try again in {retry_after} seconds.",
        }
    # the token endpoint is limited too; a wrong API key is refused before counting
    async with http.post(
        f"{sb.url}/oauth2/token",
        data=token_form(sb),
        headers={"flinkey-API-Key": sb.config.api_key},
    ) as response:
        assert response.status == 429
    assert (await call(http, "GET", f"{sb.url}/cars", headers={"flinkey-API-Key": "x"}))[0] == 401
    sb.rate_limit = None
    assert (await call(http, "GET", f"{sb.url}/cars", headers=headers))[0] == 200


async def test_sliding_window_recovers(make_sandbox: Any, http: aiohttp.ClientSession) -> None:
    sb = await make_sandbox(rate_limit=RateLimit(2, window=0.3, sliding=True))
    headers = sb.auth_headers(1)
    statuses = [(await call(http, "GET", f"{sb.url}/cars", headers=headers))[0] for _ in range(3)]
    assert statuses == [200, 200, 429]
    await asyncio.sleep(0.35)
    assert (await call(http, "GET", f"{sb.url}/cars", headers=headers))[0] == 200


def test_rate_limiter_windows_with_a_fake_clock() -> None:
    now = [100.0]
    fixed = RateLimiter(RateLimit(2, window=10), clock=lambda: now[0])
    assert [fixed.check("k"), fixed.check("k")] == [None, None]
    now[0] = 103.2
    assert fixed.check("k") == 7  # the window [100, 110) ends in 6.8 s: rounded up
    assert fixed.check("other") is None  # counted per key
    now[0] = 110.0
    assert fixed.check("k") is None
    sliding = RateLimiter(RateLimit(2, window=10, sliding=True), clock=lambda: now[0])
    assert sliding.check("k") is None
    now[0] = 115.0
    assert sliding.check("k") is None
    assert sliding.check("k") == 5  # the request at 110 leaves the window at 120
    now[0] = 119.9
    assert sliding.check("k") == 1  # never below one second
    now[0] = 120.0
    assert sliding.check("k") is None
