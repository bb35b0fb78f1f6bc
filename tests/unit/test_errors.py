"""errors.from_response: every documented body shape maps to its exception (pure)."""

from __future__ import annotations

import json

import pytest

from flinkey_async import errors
from flinkey_async.errors import from_response, parse_retry_after

KEY_401 = (
    "Access denied due to invalid subscription key. Make sure to provide a valid key for "
    "an active subscription."
)
TOKEN_401 = "Unauthorized. Access token is missing or invalid."
MANAGER_404 = "Unable to find a manager for the given OAuth ID claim data."
PROBLEM_415 = {
    "type": "https://tools.ietf.org/html/rfc7231#section-6.5.13",
    "title": "Unsupported Media Type",
    "status": "415",
    "traceId": "00-abc-01",
}


def body(data: object) -> bytes:
    return json.dumps(data).encode()


# Every documented error response of the Assignments page, with the exact message.
DOCUMENTED = [
    (401, body({"statusCode": 401, "message": KEY_401}), errors.InvalidApiKeyError, KEY_401),
    (401, body({"statusCode": 401, "message": TOKEN_401}), errors.InvalidTokenError, TOKEN_401),
    (404, MANAGER_404.encode(), errors.NotFoundError, MANAGER_404),
    (
        404,
        b"Unable to find an assignment for the given assignmentId.",
        errors.NotFoundError,
        "Unable to find an assignment for the given assignmentId.",
    ),
    (
        404,
        b"Unable to find a car for the given carId which is assigned to the given customerId.",
        errors.NotFoundError,
        "Unable to find a car for the given carId which is assigned to the given customerId.",
    ),
    (
        404,
        b"Unable to find an user for the given userId which is assigned to the given customerId.",
        errors.NotFoundError,
        "Unable to find an user for the given userId which is assigned to the given customerId.",
    ),
    (415, body(PROBLEM_415), errors.UnsupportedMediaTypeError, "Unsupported Media Type"),
    (
        429,
        body({"status": "429", "message": "Rate limit is exceeded. Try again in 7 seconds."}),
        errors.RateLimitError,
        "Rate limit is exceeded. Try again in 7 seconds.",
    ),
    (500, b"Internal server error.", errors.ServerError, "Internal server error."),
]


@pytest.mark.parametrize(("status", "raw", "cls", "message"), DOCUMENTED)
def test_documented_errors_map_to_their_exception(
    status: int, raw: bytes, cls: type[errors.FlinkeyApiError], message: str
) -> None:
    err = from_response(status, {}, raw, method="GET", path="/assignments/1")
    assert type(err) is cls
    assert err.status == status
    assert err.message == message
    assert isinstance(err, errors.FlinkeyError)
    assert message in str(err) and "GET /assignments/1" in str(err)


def test_problem_object_keeps_trace_id() -> None:
    err = from_response(415, {}, body(PROBLEM_415))
    assert err.trace_id == "00-abc-01"
    assert "00-abc-01" in str(err)


def test_429_retry_after_from_text_when_no_header() -> None:
    message = "Rate limit is exceeded. Try again in 7 seconds."
    err = from_response(429, {}, body({"status": "429", "message": message}))
    assert isinstance(err, errors.RateLimitError)
    assert err.retry_after == 7.0


def test_429_retry_after_header_wins_and_apim_shape() -> None:
    raw = body({"statusCode": 429, "message": "Rate limit is exceeded. Try again in 9 seconds."})
    err = from_response(429, {"retry-after": "3"}, raw)
    assert isinstance(err, errors.RateLimitError)
    assert err.retry_after == 3.0


def test_status_comes_from_status_line_not_body() -> None:
    err = from_response(503, {}, body({"statusCode": 401, "message": "x"}))
    assert type(err) is errors.ServerError and err.status == 503


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", ""),
        (b"   ", ""),
        (b'"Invalid brand provided."', "Invalid brand provided."),
        (b"<html>\x00\xff garbage", "<html>\x00\ufffd garbage"),
        (b"{not json", "{not json"),
        (body([1, 2]), "[1, 2]"),
        (body({"title": "Bad Request", "traceId": "t1"}), "Bad Request"),
        (body({"error": "invalid_grant", "error_description": "bad password"}), "bad password"),
    ],
)
def test_malformed_and_unusual_bodies(raw: bytes, message: str) -> None:
    err = from_response(400, {}, raw)
    assert type(err) is errors.BadRequestError
    assert err.message == message


def test_unknown_401_and_other_statuses() -> None:
    assert type(from_response(401, {}, b"nope")) is errors.AuthenticationError
    assert type(from_response(409, {}, b"Some other conflict.")) is errors.ConflictError
    # the documented 409 texts of PUT /installations have ConflictError subclasses
    for text, cls in [
        (b"The product is already installed into a car.", errors.ProductAlreadyInstalledError),
        (b"The product has no service assigned.", errors.ProductHasNoServiceError),
        (
            b"There is already installed a product of the same type in the car.",
            errors.ProductTypeAlreadyInstalledError,
        ),
    ]:
        conflict = from_response(409, {}, text)
        assert type(conflict) is cls and isinstance(conflict, errors.ConflictError)
        assert conflict.message == text.decode()
    assert type(from_response(418, {}, b"teapot")) is errors.FlinkeyApiError
    assert type(from_response(403, {}, b"")) is errors.PermissionDeniedError


def test_long_garbage_is_cut() -> None:
    err = from_response(500, {}, b"x" * 5000)
    assert len(err.message) <= 1001


@pytest.mark.parametrize(
    ("headers", "message", "expected"),
    [
        ({"Retry-After": "5"}, "", 5.0),
        ({"Retry-After": "2.5"}, "", 2.5),
        ({"Retry-After": "-3"}, "", 0.0),
        ({"Retry-After": "nan"}, "Try again in 4 seconds.", 4.0),
        ({"Retry-After": "inf"}, "", None),
        ({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, "", 0.0),
        ({"Retry-After": "garbage"}, "", None),
        ({}, "Rate limit is exceeded. Try again in 12 seconds.", 12.0),
        ({}, "Rate limit is exceeded. Try again in x seconds.", None),
        ({}, "", None),
    ],
)
def test_parse_retry_after(headers: dict[str, str], message: str, expected: float | None) -> None:
    assert parse_retry_after(headers, message) == expected


def test_validation_error_is_value_error_and_names_argument() -> None:
    err = errors.ValidationError("lifetime", "must be between ...")
    assert isinstance(err, ValueError)
    assert err.argument == "lifetime"
    assert str(err).startswith("lifetime:")


def test_decode_error_shows_short_excerpt() -> None:
    err = errors.DecodeError("bad", body=b"a" * 1000)
    assert err.excerpt is not None and len(err.excerpt) == 201
    assert "aaaa" in str(err)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"a" * 200, "a" * 200),
        (b"a" * 201, "a" * 200 + "…"),
        (b"a" * 800 + b"b", "a" * 200 + "…"),
        ("ö".encode() * 200, "ö" * 200),
        ("ö".encode() * 201, "ö" * 200 + "…"),
        ("😀".encode() * 200, "😀" * 200),  # 800 bytes: all of them are read
        ("😀".encode() * 200 + b"x", "😀" * 200 + "…"),
        (b"\xff" * 300, "\ufffd" * 200 + "…"),
    ],
)
def test_an_excerpt_is_the_start_of_the_body_whatever_its_encoding(
    body: bytes, expected: str
) -> None:
    assert errors.excerpt(body) == expected
    assert errors.excerpt(body.decode("utf-8", "replace")) == expected
