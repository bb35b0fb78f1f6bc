"""The converter and models: camelCase wire names, UTC datetimes, strict types, partial items."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import attrs
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from flinkey_async._converter import (
    decode,
    format_datetime,
    parse_datetime,
    structure,
    to_camel,
    unstructure,
)
from flinkey_async.errors import DecodeError, ValidationError
from flinkey_async.models import Assignment, CarAssignment, UserAssignment
from flinkey_async.models.customers import Customer

FULL = {
    "id": 5,
    "carId": 7,
    "userId": 9,
    "start": "2026-03-01T08:00:00Z",
    "end": "2026-03-08T08:00:00Z",
    "lifetime": 604800,
    "renewableAfter": 302400,
}


def test_full_assignment() -> None:
    a = structure(FULL, Assignment)
    assert a == Assignment(
        id=5,
        car_id=7,
        user_id=9,
        start=datetime(2026, 3, 1, 8, tzinfo=UTC),
        end=datetime(2026, 3, 8, 8, tzinfo=UTC),
        lifetime=604800,
        renewable_after=302400,
    )
    assert a.start.tzinfo is UTC


def test_unknown_fields_are_ignored() -> None:
    a = structure({**FULL, "newServerField": {"x": 1}, "isActive": True}, Assignment)
    assert a.id == 5


def test_nulls_and_absent_nullable_fields() -> None:
    data = {"id": 1, "carId": 2, "userId": None, "start": "2026-03-01T08:00:00Z", "end": None}
    a = structure(data, Assignment)
    assert a.user_id is None and a.end is None and a.lifetime is None


def test_partial_list_items_have_no_invented_fields() -> None:
    items = structure(
        [{"id": 1, "userId": 3, "start": "2026-03-01T08:00:00Z", "end": None}], list[CarAssignment]
    )
    assert items == [
        CarAssignment(id=1, user_id=3, start=datetime(2026, 3, 1, 8, tzinfo=UTC), end=None)
    ]
    assert {a.name for a in attrs.fields(CarAssignment)} == {"id", "user_id", "start", "end"}
    user_items = structure(
        [{"id": 2, "carId": None, "start": "2026-03-01T08:00:00Z"}], list[UserAssignment]
    )
    assert user_items[0].car_id is None
    assert {a.name for a in attrs.fields(UserAssignment)} == {"id", "car_id", "start", "end"}


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        ("2026-03-01T08:00:00Z", datetime(2026, 3, 1, 8, tzinfo=UTC)),
        ("2026-03-01T10:00:00+02:00", datetime(2026, 3, 1, 8, tzinfo=UTC)),
        ("2026-03-01T08:00:00.123456Z", datetime(2026, 3, 1, 8, 0, 0, 123456, tzinfo=UTC)),
        ("2026-03-01T08:00:00.1234567Z", datetime(2026, 3, 1, 8, 0, 0, 123456, tzinfo=UTC)),
        ("2026-03-01T08:00:00", datetime(2026, 3, 1, 8, tzinfo=UTC)),
    ],
)
def test_parse_datetime_forms(wire: str, expected: datetime) -> None:
    parsed = parse_datetime(wire)
    assert parsed == expected
    assert parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        ({**FULL, "id": "5"}, "integer"),
        ({**FULL, "id": True}, "integer"),
        ({**FULL, "carId": 7.5}, "integer"),
        ({**FULL, "start": "yesterday"}, "yesterday"),
        ({**FULL, "start": None}, "string"),
        ({k: v for k, v in FULL.items() if k != "carId"}, "carId"),
        ([FULL], "JSON object"),
    ],
)
def test_malformed_replies_raise_decode_error(bad: object, why: str) -> None:
    with pytest.raises(DecodeError) as info:
        structure(bad, Assignment)
    assert why in str(info.value)


NESTED = "[" * 1_000 + "1" + "]" * 1_000  # JSON 1,000 levels deep (orjson reads up to 1,024)


@pytest.mark.parametrize(
    ("model", "bad"),
    [
        (Assignment, {**FULL, "start": "2026-03-01T08:00:00Z" + "x" * 1_000_000}),
        (Assignment, {**FULL, "carId": "7" * 1_000_000}),
        (Assignment, {**FULL, "carId": "NESTED"}),
        (Customer, {"id": "NESTED", "name": "x"}),
        (Customer, {"id": "x" * 1_000_000, "name": "x"}),
        (list[Customer], [{"id": "NESTED", "name": "x"}]),
    ],
)
def test_a_hostile_value_gives_a_short_decode_error(model: Any, bad: object) -> None:
    """However long or deep the server's value, the error names the field in a short message
    and keeps no earlier exception (whose message might quote the whole value) alive."""
    body = json.dumps(bad).replace('"NESTED"', NESTED).encode()
    data = orjson.loads(body)
    with pytest.raises(DecodeError) as structured:
        structure(data, model, body=body)
    with pytest.raises(DecodeError) as decoded:
        decode(body, model)
    for info in (structured, decoded):
        assert len(str(info.value)) < 700
        assert "field " in str(info.value)
        assert info.value.__context__ is None and info.value.__cause__ is None


def test_list_must_be_a_list() -> None:
    with pytest.raises(DecodeError, match="JSON array"):
        structure({"value": []}, list[CarAssignment])


def test_format_datetime_utc_whole_seconds() -> None:
    cet = timezone(timedelta(hours=1))
    assert (
        format_datetime(datetime(2026, 3, 1, 9, 0, 0, 999999, tzinfo=cet)) == "2026-03-01T08:00:00Z"
    )
    with pytest.raises(ValidationError, match="naive"):
        format_datetime(datetime(2026, 3, 1, 9), "start")


def test_unstructure_uses_camel_case_and_wire_datetimes() -> None:
    a = structure(FULL, Assignment)
    assert unstructure(a) == FULL


def test_to_camel() -> None:
    assert to_camel("renewable_after") == "renewableAfter"
    assert to_camel("carId") == "carId"
    assert to_camel("id") == "id"


@given(
    st.datetimes(
        min_value=datetime(1970, 1, 1), max_value=datetime(9999, 1, 1), timezones=st.timezones()
    )
)
def test_datetime_roundtrip(dt: datetime) -> None:
    try:
        dt.utcoffset()
        dt.astimezone(UTC)
    except (OverflowError, ValueError):
        return
    expected = dt.astimezone(UTC).replace(microsecond=0)
    if not datetime(1970, 1, 1, tzinfo=UTC) <= expected < datetime(9999, 1, 1, tzinfo=UTC):
        return
    assert parse_datetime(format_datetime(dt)) == expected


@pytest.mark.parametrize(
    ("value", "wire"),
    [
        (datetime(5, 1, 2, 3, 4, 5, tzinfo=UTC), "0005-01-02T03:04:05Z"),
        (datetime(999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), "0999-12-31T23:59:59Z"),
        (datetime(1000, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=1))), "0999-12-31T23:30:00Z"),
        (datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC), "9999-12-31T23:59:59Z"),
    ],
)
def test_format_datetime_pads_every_field(value: datetime, wire: str) -> None:
    assert format_datetime(value) == wire


class _Subclassed(datetime):
    pass


_ZONES = st.one_of(
    st.just(UTC),
    st.timedeltas(
        min_value=timedelta(hours=-23, minutes=-59), max_value=timedelta(hours=23, minutes=59)
    ).map(timezone),
    st.timezones(),
)


@given(st.datetimes(timezones=_ZONES), st.booleans())
def test_format_datetime_matches_astimezone_for_every_kind_of_zone(
    dt: datetime, subclass: bool
) -> None:
    # UTC and fixed offsets take a shortcut past datetime.utcoffset(); any zone, and datetime
    # subclasses, must give exactly what converting to UTC gives.
    if subclass:
        dt = _Subclassed(
            dt.year,
            dt.month,
            dt.day,
            dt.hour,
            dt.minute,
            dt.second,
            dt.microsecond,
            tzinfo=dt.tzinfo,
            fold=dt.fold,
        )
    try:
        expected = dt.astimezone(UTC).isoformat()[:19] + "Z"
    except (OverflowError, ValueError):
        with pytest.raises(ValidationError, match="out of range"):
            format_datetime(dt, "start")
        return
    assert format_datetime(dt) == expected
