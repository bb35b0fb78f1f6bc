"""flinkey's assignment webhooks as events: verification and parsing (pure; no I/O).

flinkey applies assignment writes asynchronously and POSTs the outcome of each one to the
webhook URL registered in the flinkey Portal. A payload looks like::

    {"checksum": "12AB34567C8DE9012F3A45BCDE678901", "assignmentId": 5001, "customerId": 42,
     "operationSucceeded": true, "errorMessage": null, "carId": 7, "userId": 9,
     "start": "2026-01-01T08:00:00Z", "end": null, "lifetime": 604800, "renewableAfter": 302400}

Three things about these payloads shape this package:

* **No signature.** The only authenticity check is a static ``Secret`` header (the secret set in
  the Portal). :func:`verify_secret` compares it in constant time; the header name is
  case-insensitive. Serve the receiver over HTTPS only: the secret travels in clear text
  inside the request.
* **No event type.** A payload does not say whether it reports a create, an update or a
  delete. Its shape narrows it down (see :func:`parse_webhook`): a ``null`` ``assignmentId``
  can only be a failed create, and a failed event with an ``assignmentId`` is an update or a
  delete. A *successful* create looks exactly like an update or a delete that also carries the
  assignment's fields, so ``event.kind`` stays ``None`` unless the route says which operation it
  serves (``/created``, ``/updated``, ``/deleted``) or the tracker matches the event to a write
  this process sent, whose kind it knows.
* **No delivery guarantees are documented** (retries, order, duplicates). The receiver answers
  204 at once, recognises repeated deliveries, and hands each event on once.

The secret is held as a :class:`~flinkey_async.auth.Secret`: no frame of a traceback raised
here holds it, or the request's headers, as a plain string.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Final, TypeAlias

import attrs

from .._converter import diagnose, loads, parse_datetime, structure
from .._wire import SECRET_HEADER
from ..auth import Secret, as_secret
from ..errors import WebhookAuthenticationError, WebhookPayloadError
from ..models.assignments import AssignmentPayload, CreateKey, create_key
from ..operations import OperationKind

__all__ = [
    "DEFAULT_MAX_BYTES",
    "KINDS",
    "SECRET_HEADER",
    "AssignmentEvent",
    "EventHandler",
    "EventKind",
    "Fingerprint",
    "parse_body",
    "parse_webhook",
    "secret_problem",
    "verify_secret",
    "wrap_secret",
]

#: Largest webhook body accepted by default (a real payload is a few hundred bytes).
DEFAULT_MAX_BYTES: Final = 64 * 1024

#: What an event reports: ``"create"``, ``"update"`` or ``"delete"``.
EventKind: TypeAlias = OperationKind
#: Every kind.
KINDS: Final[frozenset[EventKind]] = frozenset({"create", "update", "delete"})

#: A user callback for events: ``async def handler(event) -> None`` (a plain function works too).
EventHandler: TypeAlias = Callable[["AssignmentEvent"], Awaitable[None] | None]


# -- events --------------------------------------------------------------------------------------


#: What makes two deliveries the same event (see :attr:`AssignmentEvent.fingerprint`).
Fingerprint: TypeAlias = tuple[Any, ...]

#: The documented payload fields, in order (the fingerprint of a delivery).
_PAYLOAD_FIELDS: Final = tuple(a.name for a in attrs.fields(AssignmentPayload))


def _no_payload() -> Mapping[str, Any]:
    return MappingProxyType({})


@attrs.frozen
class AssignmentEvent(AssignmentPayload):
    """One webhook event: the outcome of an assignment create, update or delete.

    Its fields are the documented payload's
    (:class:`~flinkey_async.models.assignments.AssignmentPayload`: ``checksum``,
    ``customer_id``, ``operation_succeeded``, ``assignment_id``, ``error_message``, ``car_id``,
    ``user_id``, ``start``, ``end``, ``lifetime``, ``renewable_after``; datetimes aware UTC),
    plus what the SDK learnt of it:

    Attributes:
        kind: ``"create"``, ``"update"`` or ``"delete"``, or ``None`` when neither the payload
            nor the route tells (see :func:`parse_webhook`). Events handed on by a receiver
            with an :class:`~flinkey_async.webhooks.OperationTracker` carry the kind of the
            write they were matched to.
        possible_kinds: the kinds the payload's shape allows (``kind``, when set, is one of
            them).
        payload: the whole decoded JSON object, unknown fields included (read-only).
    """

    kind: EventKind | None = None
    possible_kinds: frozenset[EventKind] = frozenset()
    payload: Mapping[str, Any] = attrs.field(factory=_no_payload, eq=False, repr=False)

    @property
    def fingerprint(self) -> Fingerprint:
        """Identifies a delivery: two deliveries with the same payload fields (checksum,
        assignment id, outcome and the assignment's fields) are the same event delivered
        twice."""
        return tuple(getattr(self, name) for name in _PAYLOAD_FIELDS)

    @property
    def create_key(self) -> CreateKey | None:
        """The key of the create this event may report (see
        :func:`~flinkey_async.models.assignments.create_key`), or ``None``."""
        if "create" not in self.possible_kinds:
            return None
        return create_key(self.customer_id, self.car_id, self.user_id, self.start, self.end)


# -- verification and parsing (pure) -----------------------------------------------------------


def wrap_secret(secret: str | Secret | None) -> Secret | None:
    """The configured secret as a :class:`~flinkey_async.auth.Secret` (``None`` stays
    ``None``): a non-string raises :class:`TypeError`, an empty one :class:`ValueError`."""
    wrapped = as_secret(secret, "secret")
    if wrapped is not None and not wrapped:
        raise ValueError("secret must be a non-empty string, or None to accept any request")
    return wrapped


def secret_problem(headers: Mapping[str, str], secret: Secret) -> str | None:
    """Why the ``Secret`` headers do not match ``secret``, or None when they do.

    It returns instead of raising, and the expected value only ever lives in the frame of
    :func:`_all_match`, so neither the expected value nor a received one is a local of any
    frame in the traceback of the error its caller raises.
    """
    name = SECRET_HEADER.lower()
    values = [v for k, v in headers.items() if isinstance(k, str) and k.lower() == name]
    if not values:
        return f"the webhook request has no {SECRET_HEADER} header"
    if not _all_match(values, secret):
        return f"the webhook request's {SECRET_HEADER} header does not match the configured secret"
    return None


def _all_match(values: list[str], secret: Secret) -> bool:
    """Every value equals the secret (constant time for values of the secret's length)."""
    expected = secret.reveal().encode("utf-8", "surrogatepass")
    ok = True
    for value in values:
        given = value.encode("utf-8", "surrogatepass") if isinstance(value, str) else b""
        ok &= hmac.compare_digest(given, expected)
    return ok


def verify_secret(headers: Mapping[str, str], secret: str | Secret | None) -> None:
    """Check the ``Secret`` header against ``secret`` in constant time.

    The header name is matched case-insensitively; every ``Secret`` header present must match.
    ``secret=None`` disables the check (flinkey sends no header when no secret is set in the
    Portal). ``secret`` may be a :class:`~flinkey_async.auth.Secret`; a plain string is wrapped
    on entry, so that no frame of a traceback holds it (nor the headers) as a plain string.

    Raises:
        WebhookAuthenticationError: the header is missing or wrong; the message never
            contains the expected or the received value.
        TypeError: ``secret`` is not a string, a ``Secret`` or None.
        ValueError: ``secret`` is empty.
    """
    secret = wrap_secret(secret)
    problem = None if secret is None else secret_problem(headers, secret)
    del headers  # may hold the right value (next to a wrong one): out of the raising frame
    if problem is not None:
        raise WebhookAuthenticationError(problem)


def _in_utc(value: datetime | None) -> datetime | None:
    """An aware datetime in UTC (a naive one is taken as UTC); OverflowError when the value
    falls outside the range of datetimes once in UTC."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value if value.tzinfo is UTC else value.astimezone(UTC)


def _has_fields(wire: AssignmentPayload) -> bool:
    """The payload carries ``carId``, ``userId`` and ``start`` (as a create's does)."""
    return wire.car_id is not None and wire.user_id is not None and wire.start is not None


def _possible_kinds(wire: AssignmentPayload, body: bytes) -> frozenset[EventKind]:
    has_fields = _has_fields(wire)
    if wire.assignment_id is None:
        if not has_fields:
            raise WebhookPayloadError(
                "webhook payload is malformed: without an assignmentId it can only report a "
                "failed create, which carries carId, userId and start",
                body=body,
            )
        return frozenset({"create"})
    if wire.operation_succeeded and has_fields:
        return KINDS
    return frozenset({"update", "delete"})


_DATETIME_KEYS: Final = ("start", "end")


def _malformed_detail(data: dict[str, Any]) -> str:
    """What is wrong with a payload that did not structure (slow path, never raises)."""
    try:
        detail = diagnose(data, AssignmentPayload)
    except Exception:  # e.g. an OverflowError from an out-of-range datetime
        detail = None
    if detail:
        return detail
    for key in _DATETIME_KEYS:
        value = data.get(key)
        if isinstance(value, str):
            try:
                _in_utc(parse_datetime(value))
            except Exception:
                return f"field {key!r} is not a datetime representable in UTC"
    return "unexpected field types"


def _structure_wire(data: dict[str, Any], data_bytes: bytes) -> AssignmentPayload:
    try:
        wire: AssignmentPayload = structure(data, AssignmentPayload)
        return wire
    except Exception:  # DecodeError, or whatever a field's check let through
        detail = _malformed_detail(data)
    raise WebhookPayloadError(f"webhook payload is malformed: {detail}", body=data_bytes)


def parse_body(body: bytes | str, kind: EventKind | None, max_bytes: int) -> AssignmentEvent:
    """The checks of :func:`parse_webhook` after the secret's (it never sees the headers).

    Raises only :class:`WebhookPayloadError`, whatever the body."""
    if isinstance(body, str):
        try:
            data_bytes = body.encode("utf-8")
        except UnicodeEncodeError:
            raise WebhookPayloadError("webhook body is not valid UTF-8 text") from None
    else:
        data_bytes = body
    if len(data_bytes) > max_bytes:
        raise WebhookPayloadError(
            f"webhook body is {len(data_bytes)} bytes, more than the {max_bytes} accepted"
        )
    try:
        data = loads(data_bytes)
    except Exception:  # DecodeError (orjson's errors are wrapped)
        raise WebhookPayloadError("webhook body is not valid JSON", body=data_bytes) from None
    if not isinstance(data, dict):
        raise WebhookPayloadError(
            f"webhook body must be a JSON object, got {type(data).__name__}", body=data_bytes
        )
    wire = _structure_wire(data, data_bytes)
    moments: dict[str, datetime | None] = {}
    for key in _DATETIME_KEYS:
        try:
            moments[key] = _in_utc(getattr(wire, key))
        except (OverflowError, ValueError):
            raise WebhookPayloadError(
                f"webhook payload is malformed: field {key!r} is not a datetime representable "
                "in UTC",
                body=data_bytes,
            ) from None
    possible = _possible_kinds(wire, data_bytes)
    if kind is not None:
        if kind == "create" and not _has_fields(wire):
            raise WebhookPayloadError(
                "webhook payload on the create route lacks carId, userId or start", body=data_bytes
            )
        if kind != "create" and wire.assignment_id is None:
            raise WebhookPayloadError(
                f"webhook payload on the {kind} route has no assignmentId", body=data_bytes
            )
        possible = frozenset({kind})
    resolved: EventKind | None = next(iter(possible)) if len(possible) == 1 else None
    fields = {name: getattr(wire, name) for name in _PAYLOAD_FIELDS}
    fields.update(moments)
    return AssignmentEvent(
        **fields, kind=resolved, possible_kinds=possible, payload=MappingProxyType(data)
    )


def parse_webhook(
    headers: Mapping[str, str],
    body: bytes | str,
    *,
    secret: str | Secret | None,
    kind: EventKind | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> AssignmentEvent:
    """Verify and parse one webhook request into an :class:`AssignmentEvent` (pure; no I/O).

    Checks, in order: the ``Secret`` header (:func:`verify_secret`; ``secret=None`` skips it),
    the size (at most ``max_bytes``), that the body is a JSON object, and the field types
    (``checksum`` string, ``customerId`` integer or numeric string, ``operationSucceeded``
    boolean, ``start``/``end`` ISO-8601 timestamps representable in UTC, the other documented
    fields of their documented types or ``null``; unknown fields are ignored). Whatever the
    body, nothing but :class:`WebhookAuthenticationError` or :class:`WebhookPayloadError` is
    raised for it.

    The kind is inferred from the shape, since flinkey sends no event type:

    * ``assignmentId`` ``null``: a failed create (it must carry ``carId``, ``userId``,
      ``start``); ``kind="create"``.
    * ``assignmentId`` set and ``operationSucceeded`` false, or no ``carId``/``userId``/
      ``start``: an update or a delete (a failed create has no id); ``kind=None``,
      ``possible_kinds={"update", "delete"}``.
    * ``assignmentId`` set, succeeded, with ``carId``, ``userId`` and ``start``: a successful
      create, or an update or delete whose payload carries the fields; ``kind=None``.

    Pass ``kind`` when the route serves one operation (a URL per operation in the Portal): it
    must be consistent with the shape (an update or a delete needs an ``assignmentId``; a
    create needs ``carId``, ``userId`` and ``start``). The :class:`OperationTracker` settles
    the rest by matching the event to the write this process sent.

    ``secret`` may be a :class:`~flinkey_async.auth.Secret`; a plain string is wrapped on
    entry. The headers (which hold the right secret once it is verified) are dropped before
    the body is looked at, so no frame in the traceback of an error holds the secret as a
    plain string.

    Raises:
        WebhookAuthenticationError: the ``Secret`` header is missing or wrong.
        WebhookPayloadError: the body is too large, not JSON, or not a webhook payload.
        TypeError: ``secret`` is not a string, a ``Secret`` or None.
        ValueError: ``secret`` is empty, or ``kind`` is not a kind.
    """
    secret = wrap_secret(secret)
    if kind is not None and kind not in KINDS:
        raise ValueError(f"kind must be 'create', 'update', 'delete' or None, got {kind!r}")
    problem = None if secret is None else secret_problem(headers, secret)
    del headers  # they hold the Secret header: out of every frame that raises below
    if problem is not None:
        raise WebhookAuthenticationError(problem)
    return parse_body(body, kind, max_bytes)
