"""Every resource of the SDK against the sandbox over real HTTP: the fixture's data through each
read (OData on the list endpoints), each synchronous write and its effect, every documented
error text arriving typed, and an uninstall whose assignment deletions reach a webhook handler
and a tracker as unsolicited delete events."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from flinkey_async import F, FlinkeyClient, OperationTracker, Query, RetryPolicy, webhook_app
from flinkey_async.auth import Secret
from flinkey_async.errors import (
    BadRequestError,
    ConflictError,
    NotFoundError,
    ProductAlreadyInstalledError,
    ProductHasNoServiceError,
    ProductTypeAlreadyInstalledError,
)
from flinkey_async.models.events import EventType
from flinkey_async.models.products import ProductType
from flinkey_async.sandbox import (
    CAR_NOT_FOUND,
    EVENT_NOT_FOUND,
    GROUP_NOT_FOUND,
    INSTALL_NO_VALID_CAR_ID,
    INSTALL_NO_VALID_PRODUCT,
    INVALID_BRAND,
    INVALID_SDK_TOKEN_REQUEST,
    MANAGER_NOT_FOUND,
    PAIR_NO_VALID_PRODUCT,
    PAIR_NO_VALID_SERVICE_ID,
    PRODUCT_ALREADY_INSTALLED,
    PRODUCT_ALREADY_PAIRED,
    PRODUCT_HAS_NO_SERVICE,
    PRODUCT_NOT_FOUND,
    PRODUCT_NOT_INSTALLED,
    PRODUCT_TYPE_ALREADY_INSTALLED,
    SERVICE_ALREADY_PAIRED,
    SERVICE_NOT_FOUND,
    SERVICE_NOT_PAIRED,
    UNINSTALL_NO_VALID_CAR_ID,
    UNINSTALL_NO_VALID_PRODUCT,
    UNPAIR_NO_VALID_PRODUCT,
    UNPAIR_NO_VALID_SERVICE_ID,
    USER_NOT_FOUND,
    Keyfob,
    Product,
    Sandbox,
    SandboxConfig,
    Service,
)
from flinkey_async.webhooks import DEFAULT_PATH, WEBHOOK_RECEIVER_KEY, AssignmentEvent

CUSTOMER = 1
NO_RETRY = RetryPolicy.disabled()
SECRET = "resources-e2e-secret"


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with Sandbox(SandboxConfig(write_delay=0.005)) as sb:
        yield sb


def client_for(sandbox: Sandbox, customer_id: int = CUSTOMER, **kw: Any) -> FlinkeyClient:
    assert sandbox.url is not None
    config = sandbox.config
    return FlinkeyClient(
        config.api_key,
        customer_id,
        username=config.username,
        password=config.password,
        base_url=sandbox.url,
        retry=NO_RETRY,
        **kw,
    )


@pytest.fixture
async def client(sandbox: Sandbox) -> AsyncIterator[FlinkeyClient]:
    async with client_for(sandbox) as c:
        yield c


# -- cars and events ---------------------------------------------------------------------------


async def test_cars(sandbox: Sandbox, client: FlinkeyClient) -> None:
    cars = await client.cars.list()
    assert [c.id for c in cars] == list(range(101, 111))
    bare = await client.cars.get(110)
    assert (bare.name, bare.vin, bare.license_plate, bare.brand, bare.model) == (
        "Citroën C3",
        None,
        None,
        None,
        None,
    )
    vws = await client.cars.list(
        query=Query().filter(F.brand == "Volkswagen").orderby("name", desc=True)
    )
    assert [c.id for c in vws] == [107, 106, 101]  # by name, descending
    unplated = await client.cars.list(query=Query().filter(F.license_plate == None))  # noqa: E711
    assert [c.id for c in unplated] == [108, 110]
    assert [c.id async for c in client.cars.iter(query=Query().skip(2).top(5), page_size=2)] == [
        103,
        104,
        105,
        106,
        107,
    ]
    with pytest.raises(NotFoundError) as info:
        await client.cars.get(201)  # the other customer's car
    assert info.value.message == CAR_NOT_FOUND


async def test_events(sandbox: Sandbox, client: FlinkeyClient) -> None:
    events = await client.cars.events(101)
    assert len(events) == 14 and [e.id for e in events] == sorted(e.id for e in events)
    first = events[0]
    # dateTime is the car's local time without an offset (CET here): kept naive
    assert first.date_time.tzinfo is None
    assert first.utc_date_time == datetime(2026, 3, 20, 7, 15, tzinfo=UTC)
    assert first.date_time == datetime(2026, 3, 20, 8, 15)
    assert first.type is EventType.CAR_OPENED
    walked = [e.id async for e in client.cars.iter_events(101, page_size=4)]
    assert walked == [e.id for e in events]
    latest_closed = await client.cars.events(
        101,
        query=Query().filter(F.type == "CarClosed").orderby("utcDateTime", desc=True).top(2),
    )
    assert [e.type for e in latest_closed] == [EventType.CAR_CLOSED] * 2
    assert latest_closed[0].utc_date_time > latest_closed[1].utc_date_time
    nowhere = await client.cars.events(101, query=Query().filter(F.latitude == None))  # noqa: E711
    assert nowhere and all(e.longitude is None for e in nowhere)
    assert await client.events.get(first.id) == first
    assert (await client.events.get(600015)).car_id == 102
    with pytest.raises(NotFoundError) as info:
        await client.events.get(600017)  # an event of the other customer's car
    assert info.value.message == EVENT_NOT_FOUND
    with pytest.raises(NotFoundError) as info:
        await client.cars.events(201)
    assert info.value.message == CAR_NOT_FOUND


async def test_event_local_times_across_a_change_of_daylight_saving(sandbox: Sandbox) -> None:
    async with client_for(sandbox, 2) as client:
        events = await client.cars.events(201)
    # Dublin switched to summer time at 01:00 UTC: the local clock jumps, UTC does not
    assert [e.utc_date_time - events[0].utc_date_time for e in events] == [
        timedelta(0),
        timedelta(hours=1),
        timedelta(hours=2),
    ]
    assert [e.date_time.hour for e in events] == [0, 2, 3]


# -- users ---------------------------------------------------------------------------------------


async def test_users(sandbox: Sandbox, client: FlinkeyClient) -> None:
    users = await client.users.list()
    assert [u.id for u in users] == list(range(1001, 1021))
    jurgen = await client.users.get(1001)
    assert (jurgen.user_data.first_name, jurgen.user_data.last_name) == ("Jürgen", "Groß")
    assert await client.users.find_by_email(jurgen.email_address) == [jurgen]
    # the sandbox's eq compares exactly, as the SDK sends: another case finds nobody here
    assert await client.users.find_by_email(jurgen.email_address.upper()) == []
    assert await client.users.find_by_email("nobody@example.com") == []
    named = await client.users.list(query=Query().filter(F.email_address.endswith(".de")).top(3))
    assert len(named) == 3 and all(u.email_address.endswith(".de") for u in named)
    assert len([u async for u in client.users.iter(page_size=7)]) == 20
    with pytest.raises(NotFoundError) as info:
        await client.users.get(2001)
    assert info.value.message == USER_NOT_FOUND


# -- products, services --------------------------------------------------------------------------


async def test_products_and_services(client: FlinkeyClient) -> None:
    products = await client.products.list()
    assert [p.id for p in products] == [301, 302, 303, 304, 305, 311, 312]
    iqs = await client.products.list(query=Query().filter(F.type == "flinkey IQ"))
    assert [(p.id, p.type) for p in iqs] == [(311, ProductType.IQ), (312, ProductType.IQ)]
    ending = await client.products.get(303)
    assert ending.dongle_termination_time_stamp == datetime(2027, 1, 31, 23, tzinfo=UTC)
    assert [p.id async for p in client.products.iter(page_size=3)] == [p.id for p in products]
    with pytest.raises(NotFoundError) as info:
        await client.products.get(321)
    assert info.value.message == PRODUCT_NOT_FOUND

    services = await client.services.list(query=Query().orderby("name"))
    assert len(services) == 7
    ended = await client.services.list(query=Query().filter(F.is_terminated == True))  # noqa: E712
    assert [(s.id, s.termination_cause) for s in ended] == [
        (407, "Vertrag gekündigt / contract cancelled")
    ]
    assert ended[0].termination_date == datetime(2025, 12, 31, 23, tzinfo=UTC)
    active = await client.services.get(401)
    assert (active.is_terminated, active.termination_date, active.termination_cause) == (
        False,
        None,
        None,
    )
    assert len([s async for s in client.services.iter(page_size=2)]) == 7
    with pytest.raises(NotFoundError) as info:
        await client.services.get(421)
    assert info.value.message == SERVICE_NOT_FOUND


# -- installations and pairings ------------------------------------------------------------------


def installed_in(sandbox: Sandbox, product_id: int) -> int | None:
    product = sandbox.store.get(Product, product_id)
    assert product is not None
    return product.car_id


async def test_install_and_its_documented_refusals(sandbox: Sandbox, client: FlinkeyClient) -> None:
    refusals: list[tuple[Any, type[Exception], str]] = [
        (
            {"car_id": 105, "product_id": 302},
            ProductAlreadyInstalledError,
            PRODUCT_ALREADY_INSTALLED,
        ),
        (
            {"car_id": 105, "unique_id": "B0X-5E1A-0305"},
            ProductHasNoServiceError,
            PRODUCT_HAS_NO_SERVICE,
        ),
        (
            {"car_id": 101, "product_id": 304},
            ProductTypeAlreadyInstalledError,
            PRODUCT_TYPE_ALREADY_INSTALLED,
        ),
        ({"car_id": 201, "product_id": 312}, NotFoundError, CAR_NOT_FOUND),
        ({"car_id": 105, "product_id": 321}, NotFoundError, PRODUCT_NOT_FOUND),
        ({"car_id": 105, "serial_number": "no-such-serial"}, NotFoundError, PRODUCT_NOT_FOUND),
    ]
    for kwargs, error, text in refusals:
        with pytest.raises(error) as info:
            await client.installations.install(**kwargs)
        assert type(info.value) is error
        assert info.value.message == text  # type: ignore[attr-defined]
    # The 400s: the SDK never sends such a body; the escape hatch does.
    for body, text in [
        ({"productId": 312}, INSTALL_NO_VALID_CAR_ID),
        ({"carId": "105", "productId": 312}, INSTALL_NO_VALID_CAR_ID),
        ({"carId": 105}, INSTALL_NO_VALID_PRODUCT),
        ({"carId": 105, "serialNumber": ""}, INSTALL_NO_VALID_PRODUCT),
    ]:
        with pytest.raises(BadRequestError) as bad:
            await client.request("PUT", "installations", json=body)
        assert bad.value.message == text
    async with client_for(sandbox, 999) as stranger:
        with pytest.raises(NotFoundError) as info:
            await stranger.installations.install(car_id=105, product_id=312)
    assert info.value.message == MANAGER_NOT_FOUND
    assert installed_in(sandbox, 304) is None and installed_in(sandbox, 305) is None
    await client.installations.install(car_id=104, serial_number="FB-2024-000304")
    assert installed_in(sandbox, 304) == 104


async def test_uninstall_refusals(sandbox: Sandbox, client: FlinkeyClient) -> None:
    with pytest.raises(ConflictError) as conflict:
        await client.installations.uninstall(car_id=102, product_id=301)
    assert conflict.value.message == PRODUCT_NOT_INSTALLED
    with pytest.raises(NotFoundError) as info:
        await client.installations.uninstall(car_id=201, product_id=321)
    assert info.value.message == CAR_NOT_FOUND
    for body, text in [
        ({"productId": 301}, UNINSTALL_NO_VALID_CAR_ID),
        ({"carId": 101, "productId": 0}, UNINSTALL_NO_VALID_PRODUCT),
    ]:
        with pytest.raises(BadRequestError) as bad:
            await client.request("DELETE", "installations", json=body)
        assert bad.value.message == text
    assert installed_in(sandbox, 301) == 101
    assert len(sandbox.store.assignments_for_car(101)) == 5


async def test_pairings(sandbox: Sandbox, client: FlinkeyClient) -> None:
    def paired(service_id: int) -> int | None:
        service = sandbox.store.get(Service, service_id)
        assert service is not None
        return service.product_id

    await client.pairings.pair(service_id=406, unique_id="B0X-5E1A-0305")
    assert paired(406) == 305
    await client.installations.install(car_id=105, product_id=305)  # it has a service now
    assert installed_in(sandbox, 305) == 105
    conflicts: list[tuple[dict[str, Any], str]] = [
        ({"service_id": 406, "product_id": 312}, SERVICE_ALREADY_PAIRED),
        ({"service_id": 407, "product_id": 301}, PRODUCT_ALREADY_PAIRED),
    ]
    for kwargs, text in conflicts:
        with pytest.raises(ConflictError) as conflict:
            await client.pairings.pair(**kwargs)
        assert conflict.value.message == text
    with pytest.raises(NotFoundError) as missing:
        await client.pairings.pair(service_id=421, product_id=312)
    assert missing.value.message == SERVICE_NOT_FOUND
    with pytest.raises(NotFoundError) as missing:
        await client.pairings.pair(service_id=406, product_id=321)
    assert missing.value.message == PRODUCT_NOT_FOUND
    with pytest.raises(ConflictError) as conflict:
        await client.pairings.unpair(service_id=406, product_id=301)
    assert conflict.value.message == SERVICE_NOT_PAIRED
    await client.pairings.unpair(service_id=406, serial_number="FB-2024-000305")
    assert paired(406) is None
    for method, body, text in [
        ("PUT", {"productId": 312}, PAIR_NO_VALID_SERVICE_ID),
        ("PUT", {"serviceId": 406}, PAIR_NO_VALID_PRODUCT),
        ("DELETE", {"serviceId": 0, "productId": 312}, UNPAIR_NO_VALID_SERVICE_ID),
        ("DELETE", {"serviceId": 406, "uniqueId": 5}, UNPAIR_NO_VALID_PRODUCT),
    ]:
        with pytest.raises(BadRequestError) as bad:
            await client.request(method, "pairings", json=body)
        assert bad.value.message == text


async def test_the_writes_need_a_json_body(sandbox: Sandbox) -> None:
    assert sandbox.url is not None
    async with aiohttp.ClientSession() as http:
        for method, path in [
            ("PUT", "installations"),
            ("DELETE", "installations"),
            ("PUT", "pairings"),
            ("DELETE", "pairings"),
            ("POST", "sdk/token"),
        ]:
            async with http.request(
                method,
                f"{sandbox.url}/{path}",
                data=b'{"carId": 101}',
                headers={**sandbox.auth_headers(CUSTOMER), "Content-Type": "text/plain"},
            ) as answer:
                assert answer.status == 415, (method, path)
                assert (await answer.json(content_type=None))["title"] == "Unsupported Media Type"


async def test_uninstalling_a_box_deletes_the_cars_assignments_unsolicited() -> None:
    events: list[AssignmentEvent] = []
    unsolicited: list[AssignmentEvent] = []
    tracker = OperationTracker(on_unsolicited=unsolicited.append)

    async def handler(event: AssignmentEvent) -> None:
        events.append(event)

    app = webhook_app(secret=SECRET, tracker=tracker, handler=handler)
    async with TestServer(app) as hooks:
        config = SandboxConfig(
            write_delay=0.005,
            # a Portal webhook registered for deletes: the events arrive as deletes
            webhook_url=str(hooks.make_url(DEFAULT_PATH + "/deleted")),
            webhook_secret=SECRET,
        )
        async with Sandbox(config) as sandbox, client_for(sandbox, tracker=tracker) as client:
            doomed = sorted(a.id for a in await client.assignments.list_for_car(101))
            assert len(doomed) == 5
            # taking out the IQ leaves the assignments alone
            await client.installations.uninstall(car_id=101, product_id=311)
            assert len(await client.assignments.list_for_car(101)) == 5
            await client.installations.uninstall(car_id=101, serial_number="FB-2023-000301")
            assert installed_in(sandbox, 301) is None
            assert await client.assignments.list_for_car(101) == []
            await sandbox.drain()
            await app[WEBHOOK_RECEIVER_KEY].drain()
            for aid in doomed:
                with pytest.raises(NotFoundError):
                    await client.assignments.get(aid)
    assert sorted(e.assignment_id for e in events if e.assignment_id is not None) == doomed
    assert all(e.kind == "delete" and e.operation_succeeded for e in events)
    assert all(e.car_id == 101 and e.customer_id == CUSTOMER for e in events)
    assert tracker.unsolicited == len(doomed) == len(unsolicited)
    assert sorted(e.assignment_id for e in unsolicited if e.assignment_id) == doomed
    assert tracker.pending == 0


# -- groups ----------------------------------------------------------------------------------------


async def test_groups(client: FlinkeyClient) -> None:
    groups = await client.groups.list()
    assert [(g.id, g.name) for g in groups] == [
        (701, "Pool Hamburg & Bremen"),
        (702, "Vorführwagen"),
        (703, "Leer (empty)"),
    ]
    assert [c.id for c in await client.groups.cars(701)] == [101, 102, 106]
    assert await client.groups.cars(703) == []
    # no OData here: the sandbox ignores query options, as they are not documented
    assert len(await client.request("GET", "groups", query={"$top": 1})) == 3
    with pytest.raises(NotFoundError) as info:
        await client.groups.cars(721)
    assert info.value.message == GROUP_NOT_FOUND


# -- the keyfob catalog ----------------------------------------------------------------------------


async def test_keyfob_catalog(sandbox: Sandbox) -> None:
    # no Customer-ID: a client for a customer the manager does not have still reads it
    async with client_for(sandbox, 999) as client:
        brands = await client.keyfobs.brands()
        assert brands[:3] == ["AUDI", "BMW", "CITROËN"] and "ŠKODA" in brands
        assert await client.keyfobs.brands(query=Query().skip(1).top(2)) == ["BMW", "CITROËN"]
        skoda = await client.keyfobs.keys("ŠKODA")
        assert [(k.id, k.box_name, k.box_sap_number) for k in skoda] == [
            (809, "flinkey Box M", "4000-1101"),
            (810, "flinkey Box S", None),
        ]
        assert skoda[0].key_form.image_url.startswith("https://")
        vw = await client.keyfobs.keys(
            "VOLKSWAGEN", query=Query().filter(F.box_name.contains("Box L"))
        )
        assert [k.id for k in vw] == [814]
        for brand in ["škoda", " AUDI", "..", "../cars", "AUDI/keys", "%41UDI"]:
            with pytest.raises(BadRequestError) as info:
                await client.keyfobs.keys(brand)
            assert info.value.message == INVALID_BRAND
        hostile = "VW/Audi?x=1#%.. ẞ"
        sandbox.store.add_keyfob(Keyfob(999, hostile, 1, "Flip", "https://example.com/f.png"))
        (key,) = await client.keyfobs.keys(hostile)
        assert (key.id, key.brand) == (999, hostile)
        assert hostile in await client.keyfobs.brands()


# -- App SDK tokens --------------------------------------------------------------------------------


def claims(token: Secret) -> dict[str, Any]:
    header, payload, signature = token.reveal().split(".")
    assert json.loads(base64.urlsafe_b64decode(header + "==")) == {"alg": "HS256", "typ": "JWT"}
    assert signature
    result: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=="))
    return result


async def test_sdk_tokens(sandbox: Sandbox) -> None:
    key = sandbox.config.sdk_key
    # no Customer-ID header: the customer is in the body
    async with client_for(sandbox, 999) as client:
        token = await client.sdk_tokens.create(customer_id=1, sdk_key=key, user_id=1001)
        assert isinstance(token, Secret) and "***" in repr(token)
        assert claims(token)["customerId"] == 1 and claims(token)["userId"] == 1001
        other = await client.sdk_tokens.create(customer_id=2, sdk_key=Secret(key), user_id=2005)
        assert claims(other)["userId"] == 2005 and other != token
        for customer_id, sdk_key, user_id in [
            (1, "wrong-key", 1001),
            (1, key, 2001),  # a user of the other customer
            (3, key, 1001),  # no such customer
            (1, key, 1999),  # no such user
        ]:
            with pytest.raises(BadRequestError) as info:
                await client.sdk_tokens.create(
                    customer_id=customer_id, sdk_key=sdk_key, user_id=user_id
                )
            assert info.value.message == INVALID_SDK_TOKEN_REQUEST
            assert sdk_key not in str(info.value)
        with pytest.raises(BadRequestError) as info:
            await client.request("POST", "sdk/token", json={"customerId": 1}, customer_scoped=False)
        assert info.value.message == INVALID_SDK_TOKEN_REQUEST


async def test_customer_scoped_resources_refuse_a_stranger(sandbox: Sandbox) -> None:
    async with client_for(sandbox, 999) as stranger:
        calls = [
            stranger.cars.list(),
            stranger.cars.events(101),
            stranger.events.get(600001),
            stranger.users.list(),
            stranger.products.list(),
            stranger.services.get(401),
            stranger.groups.list(),
            stranger.groups.cars(701),
            stranger.pairings.pair(service_id=406, product_id=305),
            stranger.installations.uninstall(car_id=101, product_id=301),
        ]
        for call in calls:
            with pytest.raises(NotFoundError) as info:
                await call
            assert info.value.message == MANAGER_NOT_FOUND
