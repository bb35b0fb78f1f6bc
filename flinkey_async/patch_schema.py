"""What a resource's ``PATCH`` accepts, declared per resource (pure).

A :class:`PatchSchema` lists the patchable paths of one resource (:class:`PatchField`: the
value type, whether ``null`` may be written, whether the path may be removed) and the rules
that relate them. Each resource declares its schema in its own module (the assignments' is
:data:`flinkey_async.models.assignments.ASSIGNMENT_PATCH`); :class:`~flinkey_async.JsonPatch`
builds bodies against one.
"""

from __future__ import annotations

import difflib
import enum
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import attrs

from ._converter import format_datetime, to_camel, wire_datetime
from ._validate import check_aware, check_id
from .errors import ValidationError

__all__ = [
    "PatchField",
    "PatchRule",
    "PatchSchema",
    "ValueKind",
    "convert_value",
    "escape_pointer_segment",
    "unescape_pointer_segment",
]


def escape_pointer_segment(segment: str) -> str:
    """Escape one JSON-pointer segment (RFC 6901): ``~`` -> ``~0``, then ``/`` -> ``~1``."""
    return segment.replace("~", "~0").replace("/", "~1")


def unescape_pointer_segment(segment: str) -> str:
    return segment.replace("~1", "/").replace("~0", "~")


class ValueKind(enum.Enum):
    """The type of value a patch path takes."""

    #: A database id: an ``int`` > 0, sent as ``"42"``.
    ID = "id"
    #: A timezone-aware ``datetime``, sent as ``"2026-01-01T08:00:00Z"`` (UTC, whole seconds).
    DATETIME = "datetime"
    #: A number of seconds > 0 (``lifetime``, ``renewableAfter``), sent as ``"302400"``; a
    #: field's own ``check`` narrows it, and how it relates to other paths is checked by the
    #: schema's ``rules``.
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
        check: an extra check of a replaced value, ``check(value, pointer) -> value``, run
            after the kind's own (for example the lifetime bounds).
        resets_to_default: a ``remove`` (or ``null``) makes the server apply its default
            rather than store ``null`` (what polling can expect after the patch).
    """

    pointer: str
    attribute: str
    kind: ValueKind
    nullable: bool = True
    removable: bool = True
    check: Callable[[Any, str], Any] | None = attrs.field(default=None, eq=False, repr=False)
    resets_to_default: bool = False

    @classmethod
    def of(cls, attribute: str, kind: ValueKind, **options: Any) -> PatchField:
        """The field of a model attribute: its pointer is the wire name (``car_id`` ->
        ``/carId``)."""
        return cls("/" + escape_pointer_segment(to_camel(attribute)), attribute, kind, **options)


#: A cross-path rule: receives the replaced values so far (pointer -> Python value, ``None`` for
#: ``null``) and the removed pointers; raises ValidationError when they do not fit together.
PatchRule = Callable[[Mapping[str, Any], frozenset[str]], None]


@attrs.frozen
class PatchSchema:
    """The patchable paths of one resource, and the rules that relate them."""

    resource: str
    fields: tuple[PatchField, ...]
    rules: tuple[PatchRule, ...] = ()
    #: The read model the patched resource is returned as (its attributes are the fields').
    model: type[Any] | None = attrs.field(default=None, eq=False)
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


def convert_value(field: PatchField, value: Any) -> tuple[Any, str | None]:
    """(checked Python value, wire value) of a ``replace``, by the field's kind: ids and seconds
    as decimal strings, datetimes as UTC ``yyyy-MM-ddTHH:mm:ssZ`` (kept as UTC datetimes with
    whole seconds), ``None`` as ``null``."""
    if value is None:
        if not field.nullable:
            raise ValidationError(
                field.pointer,
                f"cannot be null (the {field.attribute} is required)",
            )
        return None, None
    kind = field.kind
    python: Any
    wire: str
    if kind is ValueKind.ID:
        python = check_id(value, field.pointer)
        wire = str(python)
    elif kind is ValueKind.DATETIME:
        moment: datetime = check_aware(value, field.pointer)
        python, wire = wire_datetime(moment, field.pointer), format_datetime(moment, field.pointer)
    elif kind is ValueKind.SECONDS:
        python = _check_seconds(value, field.pointer)
        wire = str(python)
    else:
        if not isinstance(value, str):
            raise ValidationError(field.pointer, f"must be a str, got {type(value).__name__}")
        python = wire = value
    if field.check is not None:
        python = field.check(python, field.pointer)
    return python, wire
