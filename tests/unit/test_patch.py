"""JsonPatch: paths, values, per-resource rules and the exact wire body."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from flinkey_async.errors import ValidationError
from flinkey_async.models import MAX_LIFETIME, MIN_LIFETIME
from flinkey_async.models.assignments import check_lifetimes
from flinkey_async.odata import F
from flinkey_async.patch import (
    ASSIGNMENT_PATCH,
    JsonPatch,
    PatchField,
    PatchOperation,
    PatchSchema,
    ValueKind,
    escape_pointer_segment,
)

START = datetime(2026, 1, 1, 8, tzinfo=UTC)
CET = timezone(timedelta(hours=1))


def test_exact_body_of_the_documented_example() -> None:
    patch = JsonPatch().replace("/lifetime", 1209600).remove("/end")
    assert patch.to_json() == [
        {"op": "replace", "path": "/lifetime", "value": "1209600"},
        {"op": "remove", "path": "/end"},
    ]
    assert json.dumps(patch.to_json()) == (
        '[{"op": "replace", "path": "/lifetime", "value": "1209600"}, '
        '{"op": "remove", "path": "/end"}]'
    )


def test_values_are_strings_or_null() -> None:
    body = (
        JsonPatch()
        .replace("/carId", 42)
        .replace("/userId", None)
        .replace("/start", datetime(2026, 1, 1, 9, 0, 0, 999999, tzinfo=CET))
        .replace("/end", None)
        .replace("/lifetime", 604800)
        .replace("/renewableAfter", 302400)
        .to_json()
    )
    assert body == [
        {"op": "replace", "path": "/carId", "value": "42"},
        {"op": "replace", "path": "/userId", "value": None},
        {"op": "replace", "path": "/start", "value": "2026-01-01T08:00:00Z"},
        {"op": "replace", "path": "/end", "value": None},
        {"op": "replace", "path": "/lifetime", "value": "604800"},
        {"op": "replace", "path": "/renewableAfter", "value": "302400"},
    ]
    assert json.loads(json.dumps(body))[1] == {"op": "replace", "path": "/userId", "value": None}


def test_remove_has_no_value_key() -> None:
    (op,) = JsonPatch().remove("/userId").to_json()
    assert op == {"op": "remove", "path": "/userId"}
    assert "value" not in op


# ---------------------------------------------------------------------------------------------
# Immutability
# ---------------------------------------------------------------------------------------------


def test_replace_and_remove_return_new_patches() -> None:
    empty = JsonPatch()
    one = empty.replace("/end", None)
    two = one.remove("/lifetime")
    assert len(empty) == 0 and len(one) == 1 and len(two) == 2
    assert one.paths == ("/end",) and two.paths == ("/end", "/lifetime")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        two.operations = ()  # type: ignore[misc]
    assert [op.op for op in two] == ["replace", "remove"]
    assert isinstance(two.operations[0], PatchOperation)
    # a shared base patch can be extended in different directions
    a = one.replace("/lifetime", 604800)
    b = one.remove("/lifetime")
    assert a.to_json()[1]["op"] == "replace" and b.to_json()[1]["op"] == "remove"
    assert one.paths == ("/end",)


def test_equality_and_repr() -> None:
    assert JsonPatch().remove("/end") == JsonPatch().remove("/end")
    assert JsonPatch().remove("/end") != JsonPatch().replace("/end", None)
    assert repr(JsonPatch().replace("/lifetime", 604800).remove("/end")) == (
        "JsonPatch(assignment: replace /lifetime='604800', remove /end)"
    )
    assert repr(JsonPatch()) == "JsonPatch(assignment: empty)"


# ---------------------------------------------------------------------------------------------
# Paths
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "pointer"),
    [
        ("/carId", "/carId"),
        ("/car_id", "/carId"),
        ("car_id", "/carId"),
        ("carId", "/carId"),
        (F.car_id, "/carId"),
        (F.carId, "/carId"),
        ("/renewable_after", "/renewableAfter"),
        (F.renewable_after, "/renewableAfter"),
        ("end", "/end"),
    ],
)
def test_path_spellings_normalise_to_the_documented_pointer(given: Any, pointer: str) -> None:
    assert JsonPatch().replace(given, None if pointer != "/carId" else 7).paths == (pointer,)


def test_default_schema_is_assignments() -> None:
    assert JsonPatch().schema is ASSIGNMENT_PATCH
    assert ASSIGNMENT_PATCH.pointers == (
        "/carId",
        "/userId",
        "/start",
        "/end",
        "/lifetime",
        "/renewableAfter",
    )


@pytest.mark.parametrize("path", ["/carid", "/name", "/car/id", "/", "/id", "lifetimes"])
def test_unknown_path_is_rejected_at_the_call(path: str) -> None:
    with pytest.raises(ValidationError) as info:
        JsonPatch().replace(path, 1)
    assert info.value.argument == "patch"
    message = info.value.message
    assert "unknown path" in message
    assert "allowed: /carId, /userId, /start, /end, /lifetime, /renewableAfter" in message
    with pytest.raises(ValidationError, match="unknown path"):
        JsonPatch().remove(path)


def test_unknown_path_message_names_the_path_and_suggests() -> None:
    with pytest.raises(ValidationError) as info:
        JsonPatch().replace("/carid", 7)
    assert "unknown path '/carid' for assignment (did you mean '/carId'?)" in info.value.message
    with pytest.raises(ValidationError) as info:
        JsonPatch().remove("/life_time")
    assert "'/lifeTime' (given as '/life_time')" in info.value.message
    with pytest.raises(ValidationError) as info:
        JsonPatch().remove(F.colour)
    assert "(given as F.colour)" in info.value.message


def test_bad_path_types() -> None:
    with pytest.raises(TypeError):
        JsonPatch().remove(5)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        JsonPatch().remove("")


def test_the_same_path_twice_is_rejected() -> None:
    with pytest.raises(ValidationError, match="once"):
        JsonPatch().replace("/end", None).replace("/end", START)
    with pytest.raises(ValidationError, match="once"):
        JsonPatch().replace("/lifetime", 604800).remove("lifetime")
    with pytest.raises(ValidationError, match="once"):
        JsonPatch().remove(F.user_id).remove("/userId")


def test_pointer_escaping_follows_rfc_6901() -> None:
    assert escape_pointer_segment("a/b") == "a~1b"
    assert escape_pointer_segment("a~b") == "a~0b"
    assert escape_pointer_segment("~1") == "~01"  # "~" first, then "/"
    assert escape_pointer_segment("/~") == "~1~0"
    schema = PatchSchema(
        "thing",
        (PatchField("/a~1b", "a_b", ValueKind.STRING), PatchField("/x~01", "x", ValueKind.STRING)),
    )
    patch = JsonPatch(schema=schema).replace("/a~1b", "v").replace("/x~01", "w")
    assert patch.paths == ("/a~1b", "/x~01")


# ---------------------------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/carId", "/userId"])
@pytest.mark.parametrize("bad", [0, -1, True, "7", 7.0])
def test_ids_are_checked(path: str, bad: Any) -> None:
    with pytest.raises(ValidationError) as info:
        JsonPatch().replace(path, bad)
    assert info.value.argument == path


@pytest.mark.parametrize("path", ["/start", "/end"])
def test_datetimes_must_be_aware(path: str) -> None:
    with pytest.raises(ValidationError, match="naive") as info:
        JsonPatch().replace(path, datetime(2026, 1, 1, 8))
    assert info.value.argument == path
    with pytest.raises(ValidationError, match="datetime"):
        JsonPatch().replace(path, "2026-01-01T08:00:00Z")


def test_datetimes_are_sent_in_utc_whole_seconds() -> None:
    patch = JsonPatch().replace(
        "/end", datetime(2026, 6, 30, 23, 30, 0, 500000, tzinfo=timezone(-timedelta(hours=2)))
    )
    assert patch.to_json()[0]["value"] == "2026-07-01T01:30:00Z"
    assert patch.values() == {"end": datetime(2026, 7, 1, 1, 30, tzinfo=UTC)}


def test_end_may_be_null_but_start_and_car_may_not() -> None:
    assert JsonPatch().replace("/end", None).to_json()[0]["value"] is None
    assert JsonPatch().replace("/userId", None).to_json()[0]["value"] is None
    with pytest.raises(ValidationError, match="null") as info:
        JsonPatch().replace("/start", None)
    assert info.value.argument == "/start"
    with pytest.raises(ValidationError, match="null"):
        JsonPatch().replace("/carId", None)


def test_car_and_start_cannot_be_removed() -> None:
    for path in ("/carId", "/start", F.start, "car_id"):
        with pytest.raises(ValidationError, match="cannot be removed"):
            JsonPatch().remove(path)
    for path in ("/userId", "/end", "/lifetime", "/renewableAfter"):
        assert JsonPatch().remove(path).to_json() == [{"op": "remove", "path": path}]


@pytest.mark.parametrize("good", [MIN_LIFETIME, 1209600, MAX_LIFETIME])
def test_lifetime_bounds_are_inclusive(good: int) -> None:
    assert JsonPatch().replace("/lifetime", good).to_json()[0]["value"] == str(good)


@pytest.mark.parametrize("bad", [MIN_LIFETIME - 1, MAX_LIFETIME + 1, 0, "604800", True, 7e5])
def test_lifetime_out_of_range_or_wrong_type(bad: Any) -> None:
    with pytest.raises(ValidationError) as info:
        JsonPatch().replace("/lifetime", bad)
    assert info.value.argument == "/lifetime"


def test_renewable_after_alone_is_checked_only_against_what_no_lifetime_allows() -> None:
    # The stored lifetime is unknown: anything below the largest valid lifetime may be fine.
    assert JsonPatch().replace("/renewableAfter", 1).to_json()[0]["value"] == "1"
    assert JsonPatch().replace("/renewableAfter", 1209600)  # above the default lifetime
    assert JsonPatch().replace("/renewableAfter", MAX_LIFETIME - 1)
    for bad in (MAX_LIFETIME, MAX_LIFETIME + 5, 0, -3, True, "60"):
        with pytest.raises(ValidationError) as info:
            JsonPatch().replace("/renewableAfter", bad)
        assert info.value.argument == "/renewableAfter"
    # Removing (or nulling) the lifetime resets it to the documented default, 604800: the
    # renewableAfter of the same patch must be below that.
    for reset in (JsonPatch().remove("/lifetime"), JsonPatch().replace("/lifetime", None)):
        with pytest.raises(ValidationError, match="604800"):
            reset.replace("/renewableAfter", 700000)
        assert reset.replace("/renewableAfter", 604799)


def test_lifetime_and_renewable_after_together_in_either_order() -> None:
    ok = JsonPatch().replace("/lifetime", 1209600).replace("/renewableAfter", 1209599)
    assert len(ok) == 2
    with pytest.raises(ValidationError, match="less than the lifetime") as info:
        JsonPatch().replace("/lifetime", 1209600).replace("/renewableAfter", 1209600)
    assert info.value.argument == "/renewableAfter"
    with pytest.raises(ValidationError, match="less than the lifetime"):
        JsonPatch().replace("/renewableAfter", 700000).replace("/lifetime", 604800)


@given(
    lifetime=st.integers(MIN_LIFETIME, MAX_LIFETIME),
    renewable_after=st.integers(-10, MAX_LIFETIME + 10),
)
def test_pairs_follow_check_lifetimes(lifetime: int, renewable_after: int) -> None:
    try:
        check_lifetimes(lifetime, renewable_after)
        expected_ok = True
    except ValidationError:
        expected_ok = False
    try:
        JsonPatch().replace("/lifetime", lifetime).replace("/renewableAfter", renewable_after)
        ok = True
    except ValidationError:
        ok = False
    assert ok == expected_ok


def test_window_is_checked_when_start_and_end_are_both_replaced() -> None:
    later = START + timedelta(hours=1)
    assert JsonPatch().replace("/start", START).replace("/end", later)
    assert JsonPatch().replace("/end", later).replace("/start", START)
    assert JsonPatch().replace("/start", START).replace("/end", None)
    for end in (START, START - timedelta(seconds=1), START + timedelta(microseconds=900000)):
        with pytest.raises(ValidationError, match="after start") as info:
            JsonPatch().replace("/start", START).replace("/end", end)
        assert info.value.argument == "/end"
        with pytest.raises(ValidationError, match="after start"):
            JsonPatch().replace("/end", end).replace("/start", START)
    # different zones, same instants
    with pytest.raises(ValidationError):
        JsonPatch().replace("/start", START).replace("/end", datetime(2026, 1, 1, 9, tzinfo=CET))
    # only one of them: the stored other one is unknown, nothing to compare
    assert JsonPatch().replace("/end", datetime(2000, 1, 1, tzinfo=UTC))


# ---------------------------------------------------------------------------------------------
# Output and sending
# ---------------------------------------------------------------------------------------------


def test_empty_patch_is_rejected_when_serialised() -> None:
    with pytest.raises(ValidationError) as info:
        JsonPatch().to_json()
    assert info.value.argument == "patch"
    with pytest.raises(ValidationError, match="empty"):
        JsonPatch().to_body(ASSIGNMENT_PATCH)


def test_to_body_checks_the_resource() -> None:
    patch = JsonPatch().replace("/end", None)
    assert patch.to_body(ASSIGNMENT_PATCH) == patch.to_json()
    other = PatchSchema("car", (PatchField("/name", "name", ValueKind.STRING),))
    with pytest.raises(ValidationError, match="built for assignment, not car"):
        patch.to_body(other)


def test_values_by_attribute_name() -> None:
    patch = (
        JsonPatch()
        .replace("/carId", 7)
        .replace("/start", START)
        .replace("/end", None)
        .remove("/lifetime")
    )
    assert patch.values() == {"car_id": 7, "start": START, "end": None}


def test_other_schemas() -> None:
    schema = PatchSchema(
        "car",
        (
            PatchField("/name", "name", ValueKind.STRING, nullable=False),
            PatchField("/groupId", "group_id", ValueKind.ID, removable=False),
        ),
    )
    patch = JsonPatch(schema=schema).replace("name", "Golf 'GTI'").replace(F.group_id, 3)
    assert patch.to_body(schema) == [
        {"op": "replace", "path": "/name", "value": "Golf 'GTI'"},
        {"op": "replace", "path": "/groupId", "value": "3"},
    ]
    with pytest.raises(ValidationError, match="str"):
        JsonPatch(schema=schema).replace("/name", 5)
    with pytest.raises(ValidationError, match="unknown path"):
        JsonPatch(schema=schema).remove("/end")
    with pytest.raises(TypeError):
        JsonPatch(schema="assignment")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="twice"):
        PatchSchema("x", (PatchField("/a", "a", ValueKind.ID), PatchField("/a", "b", ValueKind.ID)))
    with pytest.raises(ValueError, match="pointer"):
        PatchSchema("x", (PatchField("a", "a", ValueKind.ID),))
