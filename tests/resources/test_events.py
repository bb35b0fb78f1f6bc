"""``client.events``: ``GET /events/{eventId}`` on the wire, decoded as the ``Event`` schema."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from aiohttp import web

from flinkey_async.errors import NotFoundError, ValidationError
from flinkey_async.models.events import Event, EventType
from tests.support.recording import RecordingServer, json_response
from tests.support.wire import assert_headers, client_for

EVENT = {
    "id": 77,
    "dateTime": "2026-07-01T10:30:00",
    "utcDateTime": "2026-07-01T08:30:00Z",
    "userId": 9,
    "carId": 7,
    "type": "CarClosed",
    "userAgent": "flinkey App/3.8 (iOS)",
    "latitude": None,
    "longitude": None,
}


async def test_get(server: RecordingServer) -> None:
    server.on("GET", "/events/77", lambda r, _: json_response(EVENT))
    async with client_for(server) as client:
        event = await client.events.get(77)
    assert event == Event(
        id=77,
        date_time=datetime(2026, 7, 1, 10, 30),
        utc_date_time=datetime(2026, 7, 1, 8, 30, tzinfo=UTC),
        user_id=9,
        car_id=7,
        type=EventType.CAR_CLOSED,
        user_agent="flinkey App/3.8 (iOS)",
        latitude=None,
        longitude=None,
    )
    (rec,) = server.requests
    assert (rec.method, rec.raw_path) == ("GET", "/v3/events/77")
    assert_headers(rec, customer=True)


async def test_unknown_event_is_not_found(server: RecordingServer) -> None:
    server.on("GET", "/events/78", lambda r, _: web.Response(status=404, text="no such event"))
    async with client_for(server) as client:
        with pytest.raises(NotFoundError, match="no such event"):
            await client.events.get(78)


@pytest.mark.parametrize("bad", [0, -1, 2**31, "77", None])
async def test_event_id_is_checked_before_sending(server: RecordingServer, bad: object) -> None:
    async with client_for(server) as client:
        with pytest.raises(ValidationError, match="event_id"):
            await client.events.get(bad)  # type: ignore[arg-type]
    assert server.requests == []
