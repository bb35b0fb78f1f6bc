"""``client.cars``: the wire of every operation (``GET /cars``, ``/cars/{carId}``,
``/cars/{carId}/events`` with its bounded pages) and the decoding of the documented schemas."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from aiohttp import web

from flinkey_async import F, Query
from flinkey_async.errors import DecodeError, NotFoundError, ValidationError
from flinkey_async.models.cars import Car
from flinkey_async.models.events import DEFAULT_EVENTS_TOP, Event, EventType
from tests.support.recording import RecordingServer, json_response
from tests.support.wire import assert_headers, client_for

FULL_CAR: dict[str, Any] = {
    "id": 7,
    "name": "Golf",
    "description": "Pool car",
    "vin": "WVWZZZ1JZXW000001",
    "licensePlate": "HH-AB 123",
    "brand": "Volkswagen",
    "model": "Golf",
}
BARE_CAR: dict[str, Any] = {
    "id": 8,
    "name": "Clio",
    "description": None,
    "vin": None,
    "licensePlate": None,
    "brand": None,
    "model": None,
}
EVENT: dict[str, Any] = {
    "id": 501,
    "dateTime": "2026-03-01T09:00:00",
    "utcDateTime": "2026-03-01T08:00:00Z",
    "userId": 9,
    "carId": 7,
    "type": "CarOpened",
    "userAgent": "flinkey App/3.8",
    "latitude": 53.55,
    "longitude": 10,
}


def events_page(count: int, first: int = 1) -> list[dict[str, Any]]:
    return [{**EVENT, "id": first + i} for i in range(count)]


async def test_list_with_query(server: RecordingServer) -> None:
    server.on("GET", "/cars", lambda r, _: json_response([FULL_CAR, BARE_CAR]))
    query = Query().filter(F.license_plate.startswith("HH")).orderby("name").top(2)
    async with client_for(server) as client:
        cars = await client.cars.list(query=query)
    assert cars == [
        Car(7, "Golf", "Pool car", "WVWZZZ1JZXW000001", "HH-AB 123", "Volkswagen", "Golf"),
        Car(8, "Clio", None, None, None, None, None),
    ]
    (rec,) = server.requests
    assert (rec.method, rec.raw_path) == (
        "GET",
        "/v3/cars?$filter=startswith(licensePlate,'HH')&$orderby=name&$top=2",
    )
    assert_headers(rec, customer=True)


async def test_get(server: RecordingServer) -> None:
    server.on("GET", "/cars/8", lambda r, _: json_response(BARE_CAR))
    async with client_for(server) as client:
        assert await client.cars.get(8) == Car(8, "Clio", None, None, None, None, None)
    (rec,) = server.requests
    assert (rec.method, rec.raw_path, rec.query_string) == ("GET", "/v3/cars/8", "")
    assert_headers(rec, customer=True)


async def test_get_unknown_car_is_not_found(server: RecordingServer) -> None:
    text = "Unable to find a car for the given carId which is assigned to the given customerId."
    server.on("GET", "/cars/9", lambda r, _: web.Response(status=404, text=text))
    async with client_for(server) as client:
        with pytest.raises(NotFoundError) as info:
            await client.cars.get(9)
    assert info.value.message == text


@pytest.mark.parametrize("missing", ["id", "name"])
async def test_a_car_without_a_required_field_is_a_decode_error(
    server: RecordingServer, missing: str
) -> None:
    car = {k: v for k, v in FULL_CAR.items() if k != missing}
    server.on("GET", "/cars/7", lambda r, _: json_response(car))
    async with client_for(server) as client:
        with pytest.raises(DecodeError, match=repr(missing)):
            await client.cars.get(7)


async def test_iter_pages_with_skip_and_top(server: RecordingServer) -> None:
    server.queue(
        "GET",
        "/cars",
        lambda r, _: json_response([{**BARE_CAR, "id": 1}, {**BARE_CAR, "id": 2}]),
        lambda r, _: json_response([{**BARE_CAR, "id": 3}]),
    )
    async with client_for(server) as client:
        ids = [car.id async for car in client.cars.iter(page_size=2)]
    assert ids == [1, 2, 3]
    assert [r.raw_path for r in server.requests] == [
        "/v3/cars?$top=2&$skip=0",
        "/v3/cars?$top=2&$skip=2",
    ]
    for rec in server.requests:
        assert_headers(rec, customer=True)


async def test_events_without_top_send_the_default_top(server: RecordingServer) -> None:
    server.on("GET", "/cars/7/events", lambda r, _: json_response([EVENT]))
    async with client_for(server) as client:
        events = await client.cars.events(7)
        await client.cars.events(7, query=Query().orderby("utcDateTime", desc=True))
    assert events == [
        Event(
            id=501,
            date_time=datetime(2026, 3, 1, 9),
            utc_date_time=datetime(2026, 3, 1, 8, tzinfo=UTC),
            user_id=9,
            car_id=7,
            type=EventType.CAR_OPENED,
            user_agent="flinkey App/3.8",
            latitude=53.55,
            longitude=10.0,
        )
    ]
    assert DEFAULT_EVENTS_TOP == 100
    assert [r.raw_path for r in server.requests] == [
        "/v3/cars/7/events?$top=100",
        "/v3/cars/7/events?$orderby=utcDateTime%20desc&$top=100",
    ]
    for rec in server.requests:
        assert_headers(rec, customer=True)


async def test_events_keep_the_callers_top_and_skip(server: RecordingServer) -> None:
    server.on("GET", "/cars/7/events", lambda r, _: json_response([]))
    async with client_for(server) as client:
        await client.cars.events(7, query=Query().skip(10).top(5))
    assert server.requests[0].raw_path == "/v3/cars/7/events?$top=5&$skip=10"


async def test_iter_events_pages_every_request_bounded(server: RecordingServer) -> None:
    server.queue(
        "GET",
        "/cars/7/events",
        lambda r, _: json_response(events_page(3)),
        lambda r, _: json_response(events_page(3, 4)),
        lambda r, _: json_response(events_page(1, 7)),
    )
    async with client_for(server) as client:
        ids = [e.id async for e in client.cars.iter_events(7, page_size=3)]
    assert ids == [1, 2, 3, 4, 5, 6, 7]
    assert [r.raw_path for r in server.requests] == [
        "/v3/cars/7/events?$top=3&$skip=0",
        "/v3/cars/7/events?$top=3&$skip=3",
        "/v3/cars/7/events?$top=3&$skip=6",
    ]


async def test_iter_events_default_page_is_the_default_top(server: RecordingServer) -> None:
    server.on("GET", "/cars/7/events", lambda r, _: json_response([]))
    async with client_for(server) as client:
        assert [e async for e in client.cars.iter_events(7)] == []
    assert server.requests[0].raw_path == "/v3/cars/7/events?$top=100&$skip=0"


@pytest.mark.parametrize(
    ("date_time", "expected"),
    [
        # no offset: the zone is not documented, so the SDK keeps it naive
        ("2026-03-01T09:00:00", datetime(2026, 3, 1, 9)),
        # an offset is kept as sent, not converted
        (
            "2026-03-01T09:00:00+01:00",
            datetime(2026, 3, 1, 9, tzinfo=timezone(timedelta(hours=1))),
        ),
        ("2026-03-01T08:00:00Z", datetime(2026, 3, 1, 8, tzinfo=UTC)),
    ],
)
async def test_event_date_time_is_not_given_an_assumed_zone(
    server: RecordingServer, date_time: str, expected: datetime
) -> None:
    server.on(
        "GET", "/cars/7/events", lambda r, _: json_response([{**EVENT, "dateTime": date_time}])
    )
    async with client_for(server) as client:
        (event,) = await client.cars.events(7)
    assert event.date_time == expected
    assert event.date_time.utcoffset() == expected.utcoffset()
    assert event.utc_date_time.tzinfo is UTC


async def test_event_nullable_fields_and_an_undocumented_type(server: RecordingServer) -> None:
    item = {**EVENT, "latitude": None, "longitude": None, "type": "CarLocked"}
    server.on(
        "GET", "/cars/7/events", lambda r, _: json_response([item, {**EVENT, "type": "CarClosed"}])
    )
    async with client_for(server) as client:
        unknown, closed = await client.cars.events(7)
    assert (unknown.latitude, unknown.longitude) == (None, None)
    assert unknown.type == "CarLocked" and not isinstance(unknown.type, EventType)
    assert closed.type is EventType.CAR_CLOSED
    assert str(closed.type) == "CarClosed"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("userId", None),
        ("latitude", "53.5"),
        ("latitude", True),
        ("type", 1),
        ("utcDateTime", None),
    ],
)
async def test_event_fields_of_the_wrong_type_are_decode_errors(
    server: RecordingServer, field: str, value: object
) -> None:
    server.on("GET", "/cars/7/events", lambda r, _: json_response([{**EVENT, field: value}]))
    async with client_for(server) as client:
        with pytest.raises(DecodeError, match=repr(field)):
            await client.cars.events(7)


async def test_arguments_are_checked_before_sending(server: RecordingServer) -> None:
    async with client_for(server) as client:
        with pytest.raises(ValidationError, match="car_id"):
            await client.cars.get(0)
        with pytest.raises(ValidationError, match="car_id"):
            await client.cars.events(True)
        with pytest.raises(ValidationError, match="licencePlate"):
            await client.cars.list(query=Query().filter(F.licencePlate == "x"))
        with pytest.raises(ValidationError, match="select"):
            await client.cars.list(query=Query().select("id"))
        with pytest.raises(ValidationError, match="nmae"):
            await client.cars.events(7, query=Query().orderby("nmae"))
    assert server.requests == []
