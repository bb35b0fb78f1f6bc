"""The single cattrs converter: camelCase on the wire, snake_case in Python, UTC datetimes.

Wire rules:

* attribute ``renewable_after`` is ``renewableAfter`` on the wire (one rename rule for every
  model, :func:`to_camel`);
* datetimes are written as ``yyyy-MM-ddTHH:mm:ssZ``: aware datetimes are converted to UTC and
  sub-second parts are truncated; naive datetimes are rejected (:func:`format_datetime`);
* any ISO-8601 form the server sends (``Z``, offsets, fractions) is parsed into an aware UTC
  datetime; a timestamp without an offset is taken as UTC (:func:`parse_datetime`);
* integers must be JSON integers (``bool`` is not an integer here); a ``float`` field takes any
  JSON number (an integer too, as a JSON writer may drop a ``.0``), never a string or a ``bool``;
* a field's wire name may be set explicitly (metadata :data:`WIRE_NAME`, for the few snake_case
  keys such as ``id_token``), and a field may name its own hooks (:data:`STRUCTURE_WITH`,
  :data:`UNSTRUCTURE_WITH`); :func:`known_or_str` decodes documented enumerations without
  breaking on a value added later;
* unknown extra keys from the server are ignored, so new server fields never break old clients.

Structuring is the hot path of every list call, so the per-class hooks are generated once by a
hook factory registered on the converter: straight-line code that reads each key, checks the type
inline and calls the attrs ``__init__`` once, with no per-field dispatch. ``structure`` wraps every
failure into :class:`~flinkey_async.errors.DecodeError`.
"""

from __future__ import annotations

import enum
import linecache
import re
import types
import typing
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, TypeVar, get_args, get_origin

import attrs
import cattrs
from cattrs.gen import make_dict_unstructure_fn, override

# orjson parses JSON about twice as fast as the standard library (benchmarks/decode.py).
from orjson import loads as _loads

from .errors import DecodeError, ValidationError

__all__ = [
    "OMIT_IF_NONE",
    "STRUCTURE_WITH",
    "UNSTRUCTURE_WITH",
    "WIRE_NAME",
    "converter",
    "decode",
    "diagnose",
    "format_datetime",
    "int_or_numeric_str",
    "known_or_str",
    "loads",
    "parse_datetime",
    "structure",
    "to_camel",
    "unstructure",
    "wire_datetime",
    "wire_name",
]

T = TypeVar("T")
E = TypeVar("E", bound=enum.Enum)

_CAMEL = re.compile(r"_([a-z0-9])")


def to_camel(name: str) -> str:
    """``renewable_after`` -> ``renewableAfter`` (names already in camelCase are unchanged)."""
    return _CAMEL.sub(lambda m: m.group(1).upper(), name)


def format_datetime(value: datetime, argument: str = "datetime") -> str:
    """An aware datetime as ``yyyy-MM-ddTHH:mm:ssZ`` in UTC (sub-seconds truncated).

    Raises :class:`ValidationError` (naming ``argument``) for naive datetimes, non-datetimes and
    datetimes that fall outside the representable range once converted to UTC.
    """
    offset: timedelta | None
    if type(value) is datetime:
        # The offset of the commonest zones without datetime.utcoffset(), which costs several
        # times as much as the rest: none for UTC, and a fixed timezone's own.
        zone = value.tzinfo
        if zone is UTC:
            offset = _NO_OFFSET
        elif type(zone) is timezone:
            offset = zone.utcoffset(None)
        else:
            offset = value.utcoffset()
    elif isinstance(value, datetime):
        offset = value.utcoffset()
    else:
        raise ValidationError(
            argument, f"expected a timezone-aware datetime, got {type(value).__name__}"
        )
    if offset is None:
        raise ValidationError(
            argument,
            "naive datetime: give it a timezone, e.g. datetime(..., tzinfo=UTC) or "
            "dt.astimezone() for local time",
        )
    # Shifting by the offset and writing the fields gives the same text as
    # astimezone(UTC).strftime(...), several times faster (it is on the hot path of filters).
    try:
        if offset:
            value = value - offset
    except OverflowError:
        raise ValidationError(argument, f"{value!r} is out of range in UTC") from None
    year = value.year
    if year < 1000:
        return value.isoformat()[:19] + "Z"  # isoformat() pads the year to 4 digits
    digits = _TWO_DIGITS
    return (
        f"{year}-{digits[value.month]}-{digits[value.day]}"
        f"T{digits[value.hour]}:{digits[value.minute]}:{digits[value.second]}Z"
    )


def wire_datetime(value: datetime, argument: str = "datetime") -> datetime:
    """An aware datetime as the wire carries it: in UTC, whole seconds (what
    :func:`format_datetime` writes, as a datetime). Raises :class:`ValidationError` when the
    UTC value is out of range."""
    try:
        return value.astimezone(UTC).replace(microsecond=0)
    except OverflowError:
        raise ValidationError(argument, f"{value!r} is out of range in UTC") from None


_TWO_DIGITS = [f"{n:02d}" for n in range(100)]
_NO_OFFSET = timedelta(0)


def parse_datetime(value: Any) -> datetime:
    """An ISO-8601 timestamp from the wire as an aware UTC datetime."""
    if type(value) is not str:
        raise TypeError(f"expected an ISO-8601 string, got {type(value).__name__}")
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is UTC:
        return parsed
    return _fix_datetime(parsed)


def _fix_datetime(value: datetime) -> datetime:
    """A parsed datetime in UTC: without an offset it is taken as UTC, else converted (a
    value that falls outside the representable range in UTC raises ``ValueError``)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{value.isoformat()} is out of range in UTC") from None


def _check_int(value: Any) -> int:
    if type(value) is int:
        return value
    raise TypeError(f"expected an integer, got {type(value).__name__}")


def _check_str(value: Any) -> str:
    if type(value) is str:
        return value
    raise TypeError(f"expected a string, got {type(value).__name__}")


def _check_bool(value: Any) -> bool:
    if type(value) is bool:
        return value
    raise TypeError(f"expected a boolean, got {type(value).__name__}")


def _check_float(value: Any) -> float:
    if type(value) is float:
        return value
    if type(value) is int:
        return float(value)
    raise TypeError(f"expected a number, got {type(value).__name__}")


def known_or_str(enum: type[E]) -> Callable[[Any], E | str]:
    """For documented enumerations of strings (``type: enum["CarOpened", "CarClosed"]``): a
    hook (:data:`STRUCTURE_WITH`) giving the ``enum`` member of a known value and the plain
    string of a value added later, so that a new value never breaks decoding. Anything but a
    string raises ``TypeError``. Use ``StrEnum`` members: both forms then compare equal to
    their text."""
    members: dict[str, E] = {member.value: member for member in enum}

    def structure_value(value: Any) -> E | str:
        if type(value) is not str:
            raise TypeError(f"expected a string, got {type(value).__name__}")
        return members.get(value, value)

    return structure_value


def int_or_numeric_str(value: Any) -> int:
    """For ids the API documents inconsistently (customer ids): an int or a decimal string."""
    if type(value) is int:
        return value
    if type(value) is str and value.strip().isdecimal():
        return int(value)
    raise TypeError(f"expected an integer or a numeric string, got {_shown(value)}")


def _shown(value: Any) -> str:
    """A value for an error message: a short str, int or float as its repr, anything else (a
    long string, a container, however deep) by its type and size only."""
    if type(value) in (int, float, bool) or (type(value) is str and len(value) <= 60):
        return _bounded(repr(value))
    size = f" of length {len(value)}" if isinstance(value, (str, list, dict)) else ""
    return f"a {type(value).__name__}{size}"


def _bounded(text: str, limit: int = 200) -> str:
    """``text`` cut to ``limit`` characters: a message quoting a server's value stays short,
    however long the value."""
    return text if len(text) <= limit else text[:limit] + "…"


# Scalar checks the generated hooks call inline, by type.
_SCALARS: dict[Any, Callable[[Any], Any]] = {
    int: _check_int,
    str: _check_str,
    bool: _check_bool,
    float: _check_float,
    datetime: parse_datetime,
}

converter = cattrs.Converter(detailed_validation=False)

#: Per-field metadata key: a callable used to structure the field instead of the type's check.
STRUCTURE_WITH = "flinkey_structure_with"
#: Per-field metadata key: leave the field out of the unstructured (wire) form when it is None.
OMIT_IF_NONE = "flinkey_omit_if_none"
#: Per-field metadata key: a callable writing the field's wire value (a ``Secret`` revealed
#: only where the request body is built, for example).
UNSTRUCTURE_WITH = "flinkey_unstructure_with"
#: Per-field metadata key: the field's wire name, where it is not the camelCase of the
#: attribute (``id_token`` of ``POST /sdk/token``).
WIRE_NAME = "flinkey_wire_name"


def wire_name(a: attrs.Attribute[Any]) -> str:
    """The wire name of a model attribute: its :data:`WIRE_NAME`, else its camelCase name."""
    explicit = a.metadata.get(WIRE_NAME)
    return explicit if isinstance(explicit, str) else to_camel(a.name)


def _split_optional(tp: Any) -> tuple[Any, bool]:
    origin = get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(get_args(tp)) == 2:
            return args[0], True
    return tp, False


def _field_hook(tp: Any) -> Callable[[Any], Any]:
    if tp in _SCALARS:
        return _SCALARS[tp]
    hook = converter.get_structure_hook(tp)
    return lambda value: hook(value, tp)


def _convert_lines(
    i: int, tp: Any, check: Callable[[Any], Any], custom: bool, globs: dict[str, Any]
) -> list[str]:
    """Lines that turn ``v{i}`` (not None) into a value of ``tp``, inline where possible."""
    globs[f"__c{i}"] = check
    if not custom and tp is datetime:
        globs["__iso"] = datetime.fromisoformat
        globs["__UTC"] = UTC
        return [f"v{i} = __iso(v{i})", f"if v{i}.tzinfo is not __UTC: v{i} = __c{i}(v{i})"]
    if not custom and tp in (int, str, bool):
        globs[f"__t{i}"] = tp
        return [f"if v{i}.__class__ is not __t{i}: v{i} = __c{i}(v{i})"]
    return [f"v{i} = __c{i}(v{i})"]


def _make_structure_fn(cls: type[Any]) -> Callable[[Any, Any], Any]:
    """Generate ``structure(data, cls)`` for an attrs class, as straight-line code: each key
    read once, scalar types checked inline, datetimes parsed inline, no per-field dispatch.
    (On failure, :func:`structure` finds the offending field on a slow path.)"""
    hints = typing.get_type_hints(cls)
    globs: dict[str, Any] = {
        "__cls": cls,
        "__dict": dict,
        "__MISSING": _MISSING,
        "__type_error": _type_error,
    }
    lines = [
        "def structure(o, _=None):",
        "    if o.__class__ is not __dict: __type_error(o)",
        "    g = o.get",
    ]
    kwargs: list[str] = []
    for i, a in enumerate(attrs.fields(cls)):
        globs[f"__k{i}"] = wire_name(a)
        tp, optional = _split_optional(hints[a.name])
        custom = a.metadata.get(STRUCTURE_WITH)
        is_custom = callable(custom)
        check = custom if is_custom else (_fix_datetime if tp is datetime else _field_hook(tp))
        convert = _convert_lines(i, tp, check, is_custom, globs)
        has_default = a.default is not attrs.NOTHING
        if isinstance(a.default, attrs.Factory):  # type: ignore[arg-type]
            raise TypeError(f"{cls.__name__}.{a.name}: factories are not supported here")
        if optional and (not has_default or a.default is None):
            # Missing and null mean the same here: one lookup, one test.
            lines.append(f"    v{i} = g(__k{i})")
            lines.append(f"    if v{i} is not None:")
            lines.extend(f"        {line}" for line in convert)
        elif optional or has_default:
            globs[f"__d{i}"] = a.default if has_default else None
            lines.append(f"    v{i} = g(__k{i}, __MISSING)")
            lines.append(f"    if v{i} is __MISSING: v{i} = __d{i}")
            guard = f"elif v{i} is not None:" if optional else "else:"
            lines.append(f"    {guard}")
            lines.extend(f"        {line}" for line in convert)
        else:
            lines.append(f"    v{i} = o[__k{i}]")
            lines.extend(f"    {line}" for line in convert)
        kwargs.append(f"v{i}")
    if _can_bypass_init(cls):
        # Frozen slotted classes set each field through object.__setattr__ in __init__; setting
        # the slots through their descriptors directly gives the same object, faster.
        globs["__new"] = object.__new__
        lines.append("    r = __new(__cls)")
        for i, a in enumerate(attrs.fields(cls)):
            globs[f"__s{i}"] = cls.__dict__[a.name].__set__
            lines.append(f"    __s{i}(r, v{i})")
        lines.append("    return r")
    else:
        lines.append(f"    return __cls({', '.join(kwargs)})")
    source = "\n".join(lines) + "\n"
    filename = f"<flinkey_async structure {cls.__module__}.{cls.__qualname__}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace: dict[str, Any] = {}
    exec(compile(source, filename, "exec"), globs, namespace)
    fn: Callable[[Any, Any], Any] = namespace["structure"]
    return fn


def _type_error(value: Any) -> None:
    raise TypeError(f"expected a JSON object, got {type(value).__name__}")


def _can_bypass_init(cls: type[Any]) -> bool:
    """True for slotted attrs classes whose ``__init__`` only stores its arguments."""
    if "__slots__" not in cls.__dict__ or "__attrs_post_init__" in dir(cls):
        return False
    return all(
        a.validator is None
        and a.converter is None
        and a.init
        and a.name in cls.__dict__
        and hasattr(cls.__dict__[a.name], "__set__")
        for a in attrs.fields(cls)
    )


class _Missing:
    __slots__ = ()


_MISSING = _Missing()


def _make_unstructure_fn(cls: type[Any]) -> Callable[[Any], dict[str, Any]]:
    overrides: dict[str, Any] = {
        a.name: override(
            rename=wire_name(a),
            omit_if_default=bool(a.metadata.get(OMIT_IF_NONE)),
            unstruct_hook=a.metadata.get(UNSTRUCTURE_WITH),
        )
        for a in attrs.fields(cls)
    }
    fn: Callable[[Any], dict[str, Any]] = make_dict_unstructure_fn(cls, converter, **overrides)
    return fn


converter.register_structure_hook_factory(attrs.has, _make_structure_fn)
converter.register_unstructure_hook_factory(attrs.has, _make_unstructure_fn)
converter.register_unstructure_hook(datetime, format_datetime)
converter.register_structure_hook(datetime, lambda v, _: parse_datetime(v))


# Scalars outside a model (``list[str]``) are checked as strictly as inside one: cattrs's own
# hooks would call ``str(5)`` or ``int("5")``.
def _scalar_hook(check: Callable[[Any], Any]) -> Callable[[Any, Any], Any]:
    return lambda value, _: check(value)


for _scalar, _check in _SCALARS.items():
    if _scalar is not datetime:
        converter.register_structure_hook(_scalar, _scalar_hook(_check))


def _structure_list(data: Any, tp: Any) -> list[Any]:
    (item_type,) = get_args(tp)
    hook = converter.get_structure_hook(item_type)
    if data.__class__ is not list:
        raise TypeError(f"expected a JSON array, got {type(data).__name__}")
    return [hook(item, item_type) for item in data]


def _is_list(tp: Any) -> bool:
    return get_origin(tp) is list


converter.register_structure_hook_func(_is_list, _structure_list)


def structure(data: Any, tp: type[T], *, body: bytes | None = None) -> T:
    """Structure decoded JSON into ``tp``; any mismatch raises :class:`DecodeError`."""
    try:
        result: T = converter.structure(data, tp)
        return result
    except (
        KeyError,
        TypeError,
        ValueError,
        AttributeError,
        OverflowError,
        RecursionError,
        cattrs.BaseValidationError,
    ) as exc:
        what = (
            f"list of {get_args(tp)[0].__name__}"
            if get_origin(tp) is list
            else getattr(tp, "__name__", None) or str(tp)
        )
        try:
            detail = diagnose(data, tp)
        except RecursionError:
            detail = "nested too deeply"
        if not detail:
            detail = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
        error = DecodeError(f"response is not a valid {what}: {_bounded(detail)}", body=body)
    raise error


def diagnose(data: Any, tp: Any) -> str | None:
    """Slow path, after a failure: which item and which field is wrong, and why."""
    if get_origin(tp) is list:
        if not isinstance(data, list):
            return f"expected a JSON array, got {type(data).__name__}"
        (item_type,) = get_args(tp)
        for index, item in enumerate(data):
            problem = diagnose(item, item_type)
            if problem:
                return f"item {index}: {problem}"
        return None
    if not attrs.has(tp):
        return None
    if not isinstance(data, dict):
        return f"expected a JSON object, got {type(data).__name__}"
    hints = typing.get_type_hints(tp)
    for a in attrs.fields(tp):
        key = wire_name(a)
        field_type, optional = _split_optional(hints[a.name])
        if key not in data:
            if optional or a.default is not attrs.NOTHING:
                continue
            return f"missing field {key!r}"
        value = data[key]
        if value is None and optional:
            continue
        custom = a.metadata.get(STRUCTURE_WITH)
        try:
            if callable(custom):
                custom(value)
            elif field_type in _SCALARS:
                _SCALARS[field_type](value)
            else:
                converter.structure(value, field_type)
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
            return f"field {key!r}: {_bounded(str(exc))}"
        except RecursionError:
            return f"field {key!r}: nested too deeply"
    return None


def loads(body: bytes) -> Any:
    """Parse JSON bytes; a body that is not JSON raises :class:`DecodeError` with an excerpt."""
    try:
        return _loads(body)
    except ValueError:
        raise DecodeError("response body is not valid JSON", body=body) from None


def decode(body: bytes, tp: type[T]) -> T:
    """JSON bytes straight to models: parse, then structure.

    A list is structured in place: each parsed object is replaced by its model as soon as it
    is made, so the object is freed at once. That keeps the number of live container objects
    flat, so CPython's cyclic garbage collector, which runs after every few hundred new ones,
    is not triggered while a large list is built (it would otherwise scan the growing list
    again and again); no process-wide switch of the collector is needed. The hook for each
    target type is looked up once and kept (every call after the first is a dict lookup).
    """
    try:
        item_type, hook = _DECODERS[tp]
    except KeyError:
        item_type, hook = _DECODERS.setdefault(tp, _decoder(tp))
    try:
        data = _loads(body)  # what loads() does, without its frame
    except ValueError:
        raise DecodeError("response body is not valid JSON", body=body) from None
    try:
        if item_type is None:
            result: T = hook(data, tp)
            return result
        if data.__class__ is not list:
            raise TypeError("not a list")
        for index, item in enumerate(data):
            data[index] = hook(item, item_type)
        return typing.cast(T, data)
    except (
        KeyError,
        TypeError,
        ValueError,
        AttributeError,
        OverflowError,
        RecursionError,
        cattrs.BaseValidationError,
    ):
        pass
    del data  # the first parse goes before the second is made
    # Slow path (a list may be half converted now): diagnose on a fresh parse of the body,
    # outside the handler, so the error raised keeps no context (whose message may quote a
    # value of any size).
    failed: T = structure(loads(body), tp, body=body)
    return failed


#: Per target type: (the item type of a list, or None) and the structure hook to call.
_DECODERS: dict[Any, tuple[Any, Callable[[Any, Any], Any]]] = {}


def _decoder(tp: Any) -> tuple[Any, Callable[[Any, Any], Any]]:
    if get_origin(tp) is list:
        (item_type,) = get_args(tp)
        return item_type, converter.get_structure_hook(item_type)
    return None, converter.get_structure_hook(tp)


def unstructure(value: Any) -> Any:
    """Python value (attrs model, datetime, ...) to its JSON-ready wire form."""
    return converter.unstructure(value)
