"""JSON Patch (RFC 6902) bodies for flinkey's ``PATCH`` endpoints (pure; no I/O).

flinkey documents one PATCH endpoint, ``PATCH /assignments/{assignmentId}``. It accepts only the
operations ``replace`` and ``remove``, on the paths ``/carId``, ``/userId``, ``/start``, ``/end``,
``/lifetime`` and ``/renewableAfter``, and types every ``value`` as a string or ``null``. The body
is sent with ``Content-Type: application/json``, as flinkey documents (not
``application/json-patch+json``).

:class:`JsonPatch` builds such a body from explicit changes and checks each change when it is
made, so a mistake raises :class:`~flinkey_async.errors.ValidationError` at the line that made
it::

    from flinkey_async import JsonPatch

    patch = JsonPatch().replace("/lifetime", 1209600).remove("/end")
    patch.to_json()
    # [{"op": "replace", "path": "/lifetime", "value": "1209600"},
    #  {"op": "remove", "path": "/end"}]

What a :class:`PatchSchema` decides, per path: the value type, whether ``null`` may be written,
and whether the path may be removed. :data:`ASSIGNMENT_PATCH` is the schema of assignments.
Values go on the wire as strings, exactly as the schema documents: ids and seconds as decimal
strings (``"604800"``), datetimes as UTC ``"yyyy-MM-ddTHH:mm:ssZ"`` (aware datetimes only;
sub-seconds truncated), ``None`` as ``null``. A ``remove`` has no ``value``.
"""

from __future__ import annotations

import difflib
import enum
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Literal

import attrs

from ._converter import format_datetime, to_camel, wire_datetime
from ._validate import check_aware, check_id, check_lifetimes, check_window
from .errors import ValidationError
from .models import DEFAULT_LIFETIME, MAX_LIFETIME
from .odata import Field

__all__ = [
    "ASSIGNMENT_PATCH",
    "JsonPatch",
    "PatchField",
    "PatchOperation",
    "PatchSchema",
    "ValueKind",
    "escape_pointer_segment",
]


class ValueKind(enum.Enum):
    """The type of value a patch path takes."""

    #: A database id: an ``int`` > 0, sent as ``"42"``.
    ID = "id"
    #: A timezone-aware ``datetime``, sent as ``"2026-01-01T08:00:00Z"`` (UTC, whole seconds).
    DATETIME = "datetime"
    #: An assignment lifetime in seconds: ``604800 <= value <= 2419200``, sent as ``"604800"``.
    LIFETIME = "lifetime"
    #: A number of seconds > 0 (``renewableAfter``), sent as ``"302400"``. How it relates to
    #: other paths is checked by the schema's ``rules``.
    SECONDS = "seconds"
    #: A ``str``, sent as it is.
    STRING = "string"


@attrs.frozen
class PatchField:
    """One patchable path of a resource.

    Attributes:
        pointer: the JSON pointer, e.g. ``"/carId"``.
        attribute: the Python name used in messages and :meth:`JsonPatch.values`, e.g. ``"car_id"``.
        kind: the value type.
        nullable: whether ``replace(path, None)`` (sent as ``null``) is allowed.
        removable: whether ``remove(path)`` is allowed.
    """

    pointer: str
    attribute: str
    kind: ValueKind
    nullable: bool = True
    removable: bool = True


#: A cross-path rule: receives the replaced values so far (pointer -> Python value, ``None`` for
#: ``null``) and the removed pointers; raises ValidationError when they do not fit together.
PatchRule = Callable[[Mapping[str, Any], frozenset[str]], None]


@attrs.frozen
class PatchSchema:
    """The patchable paths of one resource, and the rules that relate them."""

    resource: str
    fields: tuple[PatchField, ...]
    rules: tuple[PatchRule, ...] = ()
    _by_pointer: dict[str, PatchField] = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        by_pointer = {f.pointer: f for f in self.fields}
        if len(by_pointer) != len(self.fields):
            raise ValueError(f"{self.resource}: a path is listed twice")
        for pointer in by_pointer:
            if not pointer.startswith("/"):
                raise ValueError(f"{self.resource}: {pointer!r} is not a JSON pointer")
        object.__setattr__(self, "_by_pointer", by_pointer)

    @property
    def pointers(self) -> tuple[str, ...]:
        """The allowed paths, in documented order."""
        return tuple(f.pointer for f in self.fields)

    def field(self, pointer: str, given: object = None) -> PatchField:
        """The field for ``pointer``; an unknown path raises :class:`ValidationError`
        (``given``, the path as the caller wrote it, is named in the message)."""
        found = self._by_pointer.get(pointer)
        if found is None:
            shown = repr(pointer)
            if given is not None and not (isinstance(given, str) and given == pointer):
                shown += f" (given as {given!r})"
            close = difflib.get_close_matches(pointer, self.pointers, n=1, cutoff=0.6)
            lowered = {p.lower(): p for p in self.pointers}.get(pointer.lower())
            hint = lowered or (close[0] if close else None)
            suggestion = f" (did you mean {hint!r}?)" if hint else ""
            raise ValidationError(
                "patch",
                f"unknown path {shown} for {self.resource}{suggestion}; allowed: "
                + ", ".join(self.pointers),
            )
        return found


def _check_seconds(value: Any, argument: str) -> int:
    if type(value) is not int:
        raise ValidationError(argument, f"must be an int (seconds), got {type(value).__name__}")
    if value <= 0:
        raise ValidationError(argument, f"must be greater than 0, got {value}")
    return value


def _check_lifetime(value: Any, argument: str) -> int:
    try:
        check_lifetimes(value, None)
    except ValidationError as exc:
        raise ValidationError(argument, exc.message) from None
    result: int = value
    return result


def _assignment_rules(values: Mapping[str, Any], removed: frozenset[str]) -> None:
    """Rules between the paths of an assignment patch (see :data:`ASSIGNMENT_PATCH`)."""
    lifetime = values.get("/lifetime")
    if "/lifetime" in removed or ("/lifetime" in values and lifetime is None):
        lifetime = DEFAULT_LIFETIME  # removing (or nulling) it resets it to the default
    renewable_after = values.get("/renewableAfter")
    if renewable_after is not None:
        if lifetime is not None:
            try:
                check_lifetimes(lifetime, renewable_after)
            except ValidationError as exc:
                raise ValidationError("/renewableAfter", exc.message) from None
        elif renewable_after >= MAX_LIFETIME:
            # The stored lifetime is unknown here; no valid lifetime is above MAX_LIFETIME.
            raise ValidationError(
                "/renewableAfter",
                f"must be less than the lifetime, which is at most {MAX_LIFETIME} seconds "
                f"(28 days); got {renewable_after}",
            )
    start = values.get("/start")
    end = values.get("/end")
    if start is not None and end is not None:
        try:
            check_window(start, end)
        except ValidationError as exc:
            raise ValidationError("/end", exc.message) from None


#: The assignment schema (``PATCH /assignments/{assignmentId}``):
#:
#: * ``/carId`` (id) and ``/start`` (datetime) may be replaced, not removed, and not set to
#:   ``null``;
#: * ``/userId`` (id), ``/end`` (datetime; ``null`` means unrestricted), ``/lifetime`` and
#:   ``/renewableAfter`` (seconds) may be replaced, set to ``null`` or removed.
#:
#: Checks: ids > 0; datetimes aware; ``604800 <= lifetime <= 2419200``; ``renewableAfter > 0``
#: and below ``lifetime`` when both are in the patch (a ``lifetime`` removed or set to ``null``
#: in the same patch resets it to the documented default, 604800). A ``renewableAfter`` without a
#: ``lifetime`` in the same patch is compared with the *stored* lifetime, which only the server
#: knows, so the SDK then only rejects values no valid lifetime allows (``>= 2419200``). When
#: both ``/start`` and ``/end`` are replaced, ``end`` must be after ``start``. The server has
#: the final word; its verdict arrives by webhook.
ASSIGNMENT_PATCH = PatchSchema(
    resource="assignment",
    fields=(
        PatchField("/carId", "car_id", ValueKind.ID, nullable=False, removable=False),
        PatchField("/userId", "user_id", ValueKind.ID),
        PatchField("/start", "start", ValueKind.DATETIME, nullable=False, removable=False),
        PatchField("/end", "end", ValueKind.DATETIME),
        PatchField("/lifetime", "lifetime", ValueKind.LIFETIME),
        PatchField("/renewableAfter", "renewable_after", ValueKind.SECONDS),
    ),
    rules=(_assignment_rules,),
)


def escape_pointer_segment(segment: str) -> str:
    """Escape one JSON-pointer segment (RFC 6901): ``~`` -> ``~0``, then ``/`` -> ``~1``."""
    return segment.replace("~", "~0").replace("/", "~1")


def _unescape_pointer_segment(segment: str) -> str:
    return segment.replace("~1", "/").replace("~0", "~")


def _pointer(path: str | Field) -> str:
    """Normalise ``/carId``, ``/car_id``, ``car_id`` or ``F.car_id`` to ``/carId``."""
    if isinstance(path, Field):
        return "/" + escape_pointer_segment(path.name)
    if not isinstance(path, str):
        raise TypeError(f"a patch path must be a str or F.<field>, got {type(path).__name__}")
    if not path:
        raise ValidationError("patch", "empty path; give a field path such as '/end'")
    body = path[1:] if path.startswith("/") else path
    return "/" + "/".join(
        escape_pointer_segment(to_camel(_unescape_pointer_segment(segment)))
        for segment in body.split("/")
    )


def _convert(field: PatchField, value: Any) -> tuple[Any, str | None]:
    """(normalised Python value, wire value) for a replace, checked per the field's kind."""
    if value is None:
        if not field.nullable:
            raise ValidationError(
                field.pointer,
                f"cannot be null (the {field.attribute} of an assignment is required)",
            )
        return None, None
    kind = field.kind
    if kind is ValueKind.ID:
        number = check_id(value, field.pointer)
        return number, str(number)
    if kind is ValueKind.DATETIME:
        moment = check_aware(value, field.pointer)
        return wire_datetime(moment, field.pointer), format_datetime(moment, field.pointer)
    if kind is ValueKind.LIFETIME:
        number = _check_lifetime(value, field.pointer)
        return number, str(number)
    if kind is ValueKind.SECONDS:
        number = _check_seconds(value, field.pointer)
        return number, str(number)
    if not isinstance(value, str):
        raise ValidationError(field.pointer, f"must be a str, got {type(value).__name__}")
    return value, value


@attrs.frozen
class PatchOperation:
    """One operation: ``op`` is ``"replace"`` or ``"remove"``; ``value`` is the wire value
    (a string or ``None``, only for ``replace``); ``python_value`` the checked Python value."""

    op: Literal["replace", "remove"]
    path: str
    value: str | None = None
    python_value: Any = attrs.field(default=None, eq=False, repr=False)

    def to_json(self) -> dict[str, str | None]:
        """The operation as a JSON object (a ``remove`` has no ``value`` key)."""
        if self.op == "remove":
            return {"op": "remove", "path": self.path}
        return {"op": "replace", "path": self.path, "value": self.value}


@attrs.frozen(init=False)
class JsonPatch:
    """An immutable, checked JSON Patch: ``replace`` and ``remove`` return new patches.

    ``JsonPatch()`` patches an assignment (:data:`ASSIGNMENT_PATCH`, the only PATCH endpoint
    flinkey documents); pass ``schema=`` for another resource. Paths may be written as JSON
    pointers (``"/renewableAfter"``), snake_case (``"/renewable_after"``, ``"renewable_after"``)
    or fields (``F.renewable_after``). Each path may appear once. Every check runs when the
    operation is added; see :data:`ASSIGNMENT_PATCH` for the assignment rules.
    """

    schema: PatchSchema
    operations: tuple[PatchOperation, ...]

    def __init__(self, *, schema: PatchSchema = ASSIGNMENT_PATCH) -> None:
        if not isinstance(schema, PatchSchema):
            raise TypeError(f"schema must be a PatchSchema, got {type(schema).__name__}")
        self.__attrs_init__(schema, ())

    def _add(self, operation: PatchOperation) -> JsonPatch:
        if any(existing.path == operation.path for existing in self.operations):
            raise ValidationError(
                "patch", f"path {operation.path!r} is already in this patch; each path may "
                "appear once"
            )
        patch = object.__new__(JsonPatch)
        patch.__attrs_init__(self.schema, (*self.operations, operation))
        patch._check_rules()
        return patch

    def replace(self, path: str | Field, value: Any) -> JsonPatch:
        """A new patch that also replaces ``path`` with ``value`` (``None`` is sent as ``null``
        where the schema allows it)."""
        field = self.schema.field(_pointer(path), path)
        python_value, wire = _convert(field, value)
        return self._add(PatchOperation("replace", field.pointer, wire, python_value))

    def remove(self, path: str | Field) -> JsonPatch:
        """A new patch that also removes ``path`` (where the schema allows it)."""
        field = self.schema.field(_pointer(path), path)
        if not field.removable:
            raise ValidationError(
                "patch",
                f"{field.pointer} cannot be removed from an {self.schema.resource} (it is "
                "required); replace it instead",
            )
        return self._add(PatchOperation("remove", field.pointer))

    def _check_rules(self) -> None:
        replaced = {op.path: op.python_value for op in self.operations if op.op == "replace"}
        removed = frozenset(op.path for op in self.operations if op.op == "remove")
        for rule in self.schema.rules:
            rule(replaced, removed)

    # Output ----------------------------------------------------------------------------
    def to_json(self) -> list[dict[str, str | None]]:
        """The body as JSON-ready data; an empty patch raises :class:`ValidationError`."""
        if not self.operations:
            raise ValidationError("patch", "the patch is empty; add replace() or remove() calls")
        return [op.to_json() for op in self.operations]

    def to_body(self, schema: PatchSchema) -> list[dict[str, str | None]]:
        """Check the patch for sending to ``schema``'s endpoint and return its body.

        Raises :class:`ValidationError` if the patch was built for another resource or is empty.
        The body is sent with ``Content-Type: application/json``.
        """
        if self.schema != schema:
            raise ValidationError(
                "patch", f"this patch was built for {self.schema.resource}, not {schema.resource}"
            )
        # The rules already ran when each operation was added (_add).
        return self.to_json()

    def values(self) -> dict[str, Any]:
        """The replaced values by attribute name (``{"end": datetime(...), "lifetime": ...}``),
        as sent: datetimes in UTC with whole seconds, ``None`` for ``null``."""
        field = self.schema.field
        return {field(op.path).attribute: op.python_value for op in self.operations
                if op.op == "replace"}

    @property
    def paths(self) -> tuple[str, ...]:
        """The paths in this patch, in order."""
        return tuple(op.path for op in self.operations)

    def __len__(self) -> int:
        return len(self.operations)

    def __iter__(self) -> Iterator[PatchOperation]:
        return iter(self.operations)

    def __repr__(self) -> str:
        ops = ", ".join(
            f"{op.op} {op.path}" + (f"={op.value!r}" if op.op == "replace" else "")
            for op in self.operations
        )
        return f"JsonPatch({self.schema.resource}: {ops or 'empty'})"

