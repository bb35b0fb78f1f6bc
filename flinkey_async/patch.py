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

What a :class:`~flinkey_async.patch_schema.PatchSchema` decides, per path: the value type,
whether ``null`` may be written, and whether the path may be removed. Each resource declares its
own; :data:`~flinkey_async.models.assignments.ASSIGNMENT_PATCH` is the assignments' (and the
default).
Values go on the wire as strings, exactly as the schema documents: ids and seconds as decimal
strings (``"604800"``), datetimes as UTC ``"yyyy-MM-ddTHH:mm:ssZ"`` (aware datetimes only;
sub-seconds truncated), ``None`` as ``null``. A ``remove`` has no ``value``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

import attrs

from ._converter import to_camel
from .errors import ValidationError
from .models.assignments import ASSIGNMENT_PATCH
from .odata import Field
from .patch_schema import (
    PatchField,
    PatchSchema,
    ValueKind,
    convert_value,
    escape_pointer_segment,
    unescape_pointer_segment,
)

__all__ = [
    "ASSIGNMENT_PATCH",
    "JsonPatch",
    "PatchField",
    "PatchOperation",
    "PatchSchema",
    "ValueKind",
    "escape_pointer_segment",
    "pointer",
]


def pointer(path: str | Field) -> str:
    """Normalise ``/carId``, ``/car_id``, ``car_id`` or ``F.car_id`` to ``/carId``."""
    if isinstance(path, Field):
        return "/" + escape_pointer_segment(path.name)
    if not isinstance(path, str):
        raise TypeError(f"a patch path must be a str or F.<field>, got {type(path).__name__}")
    if not path:
        raise ValidationError("patch", "empty path; give a field path such as '/end'")
    body = path[1:] if path.startswith("/") else path
    return "/" + "/".join(
        escape_pointer_segment(to_camel(unescape_pointer_segment(segment)))
        for segment in body.split("/")
    )


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
                "patch",
                f"path {operation.path!r} is already in this patch; each path may appear once",
            )
        patch = object.__new__(JsonPatch)
        patch.__attrs_init__(self.schema, (*self.operations, operation))
        patch._check_rules()
        return patch

    def replace(self, path: str | Field, value: Any) -> JsonPatch:
        """A new patch that also replaces ``path`` with ``value`` (``None`` is sent as ``null``
        where the schema allows it)."""
        field = self.schema.field(pointer(path), path)
        python_value, wire = convert_value(field, value)
        return self._add(PatchOperation("replace", field.pointer, wire, python_value))

    def remove(self, path: str | Field) -> JsonPatch:
        """A new patch that also removes ``path`` (where the schema allows it)."""
        field = self.schema.field(pointer(path), path)
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
        return {
            field(op.path).attribute: op.python_value
            for op in self.operations
            if op.op == "replace"
        }

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
