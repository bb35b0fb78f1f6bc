"""OData query options in one immutable :class:`Query`, and the field checks made with them.

Every method of a :class:`Query` returns a new Query, so one query can be shared and extended
freely, also by concurrent tasks; extending a shared base query never renders its filter's
operands again (a node keeps its text once written, see :mod:`flinkey_async.odata.expr`). A
query's string is its options' texts joined, computed once per Query.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection
from typing import Any, NamedTuple
from urllib.parse import unquote

import attrs

from .._converter import wire_name
from ..errors import ValidationError
from .expr import Expr, F, Field, Raw, as_expr

__all__ = ["Query", "model_fields"]


def _field_name(field: str | Field, argument: str) -> str:
    """The wire name of ``field`` (a name in either spelling, or a :class:`Field`)."""
    if isinstance(field, Field):
        return field.name
    if isinstance(field, str):
        name = field.strip()
        if " " in name:
            raise ValidationError(
                argument, f"{field!r} is not a field name (for descending order use desc=True)"
            )
        return F[name].name
    raise TypeError(f"{argument} needs a field name (str) or F.<field>, got {type(field).__name__}")


def _check_count(value: Any, argument: str) -> int:
    # type() rather than isinstance(): True is an int, but not a count.
    if type(value) is not int or value < 0:
        raise ValidationError(argument, f"must be an int >= 0, got {value!r}")
    count: int = value
    return count


def _check_flag(value: Any, argument: str) -> bool:
    if value is not True and value is not False:
        raise ValidationError(argument, f"must be True or False, got {value!r}")
    flag: bool = value
    return flag


class _Options(NamedTuple):
    """A query's options, in the order they are written."""

    filter: Expr | None = None
    orderby: tuple[tuple[str, bool], ...] = ()
    select: tuple[str, ...] = ()
    top: int | None = None
    skip: int | None = None
    with_count: bool | None = None  # $count (a NamedTuple has a count() method)


_NO_OPTIONS = _Options()


class Query:
    """OData query options (``$filter``, ``$orderby``, ``$select``, ``$top``, ``$skip``,
    ``$count``). Immutable: every method returns a new Query, so one Query can be shared and
    extended freely, also by concurrent tasks.

    ``str(query)`` (and :meth:`encoded`) is the percent-encoded query string without a leading
    ``?``, ready for ``yarl.URL(base + "?" + str(query), encoded=True)``; :meth:`to_params` gives
    the decoded name/value pairs. Queries with the same options are equal and hash alike.
    """

    # The options are private and read through the properties below, which cannot be assigned;
    # no other attribute can be added.
    __slots__ = ("__weakref__", "_encoded", "_options")

    def __init__(self) -> None:
        """An empty query: no options."""
        self._options = _NO_OPTIONS
        self._encoded: str | None = None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Query):
            return NotImplemented
        return self._options == other._options

    def __hash__(self) -> int:
        return hash(self._options)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_query, (self._options,))

    # Options ---------------------------------------------------------------------------
    def filter(self, expression: Expr | Field) -> Query:
        """Add a ``$filter`` condition; repeated calls are combined with ``and``.

        ``expression`` is built with :data:`F` (a boolean :class:`Field` also works). A plain
        string raises :class:`TypeError`: use :meth:`filter_raw` for pre-written text.
        """
        expr = expression if isinstance(expression, Expr) else as_expr(expression, "filter()")
        o = self._options
        combined = expr if o.filter is None else o.filter & expr
        return _query(_Options(combined, o.orderby, o.select, o.top, o.skip, o.with_count))

    def filter_raw(self, text: str) -> Query:
        """Add pre-written OData filter text in decoded form, e.g. ``"name eq 'x'"``.

        **Unsafe escape hatch**: the text is sent verbatim (only percent-encoded for the URL).
        Quotes in it are not doubled, nothing is checked, and :meth:`check_fields` cannot see
        the fields it uses. Prefer :meth:`filter` with :data:`F`. Combined with other conditions
        it is parenthesised.
        """
        return self.filter(Raw(text))

    def orderby(self, field: str | Field, desc: bool = False) -> Query:
        """Add a ``$orderby`` key (ascending unless ``desc=True``); repeat for more keys.

        ``field`` is a name (``"start"``, ``"renewable_after"``) or a field (``F.start``).
        """
        name = _field_name(field, "orderby")
        descending = _check_flag(desc, "desc")
        o = self._options
        for existing, _ in o.orderby:
            if existing == name:
                raise ValidationError("orderby", f"already ordered by {name!r}")
        orderby = (*o.orderby, (name, descending))
        return _query(_Options(o.filter, orderby, o.select, o.top, o.skip, o.with_count))

    def select(self, *fields: str | Field) -> Query:
        """Add fields to ``$select`` (the server then returns only those fields)."""
        if not fields:
            raise ValidationError("select", "select() needs at least one field")
        o = self._options
        names = list(o.select)
        for field in fields:
            name = _field_name(field, "select")
            if name not in names:
                names.append(name)
        select = tuple(names)
        return _query(_Options(o.filter, o.orderby, select, o.top, o.skip, o.with_count))

    def top(self, n: int) -> Query:
        """Set ``$top``: return at most ``n`` items (an int >= 0)."""
        top = _check_count(n, "top")
        o = self._options
        return _query(_Options(o.filter, o.orderby, o.select, top, o.skip, o.with_count))

    def skip(self, n: int) -> Query:
        """Set ``$skip``: leave out the first ``n`` items (an int >= 0)."""
        skip = _check_count(n, "skip")
        o = self._options
        return _query(_Options(o.filter, o.orderby, o.select, o.top, skip, o.with_count))

    def count(self, value: bool = True) -> Query:
        """Set ``$count`` (flinkey returns bare arrays and may ignore this option)."""
        with_count = _check_flag(value, "count")
        o = self._options
        return _query(_Options(o.filter, o.orderby, o.select, o.top, o.skip, with_count))

    def with_page(self, skip: int, top: int) -> Query:
        """A copy with ``$skip`` and ``$top`` replaced: one page of a paged listing (see
        :class:`~flinkey_async.pagination.Pager`)."""
        page_top = _check_count(top, "top")
        page_skip = _check_count(skip, "skip")
        o = self._options
        return _query(_Options(o.filter, o.orderby, o.select, page_top, page_skip, o.with_count))

    # Read access -----------------------------------------------------------------------
    @property
    def ordering(self) -> tuple[tuple[str, bool], ...]:
        """The ``$orderby`` keys as ``(wire_name, descending)`` pairs."""
        return self._options.orderby

    @property
    def selected(self) -> tuple[str, ...]:
        """The ``$select`` fields (wire names)."""
        return self._options.select

    @property
    def limit(self) -> int | None:
        """``$top``, or ``None``."""
        return self._options.top

    @property
    def offset(self) -> int | None:
        """``$skip``, or ``None``."""
        return self._options.skip

    # Output ----------------------------------------------------------------------------
    def encoded(self) -> str:
        """The percent-encoded query string, without a leading ``?`` (empty without options).

        Options come in a fixed order: ``$filter``, ``$orderby``, ``$select``, ``$top``,
        ``$skip``, ``$count``. Computed once per Query.
        """
        encoded = self._encoded
        if encoded is None:
            encoded = self._encoded = "&".join(_option_texts(self._options))
        return encoded

    def __str__(self) -> str:
        return self.encoded()

    def to_params(self) -> list[tuple[str, str]]:
        """The options as ``(name, decoded value)`` pairs, in the order of :meth:`encoded`."""
        text = self.encoded()
        if not text:
            return []
        pairs = []
        for part in text.split("&"):  # "&" and "=" inside values are always encoded
            name, _, value = part.partition("=")
            pairs.append((name, unquote(value)))
        return pairs

    def __repr__(self) -> str:
        return f"Query({'&'.join(f'{n}={v}' for n, v in self.to_params())!r})"

    # Field checks ----------------------------------------------------------------------
    def fields(self) -> set[str]:
        """The wire names of all fields referenced in ``$filter``, ``$orderby`` and ``$select``
        (text added with :meth:`filter_raw` is not inspected)."""
        options = self._options
        names = set(options.select)
        names.update(name for name, _ in options.orderby)
        if options.filter is not None:
            names.update(options.filter.fields())
        return names

    def check_fields(self, allowed: Collection[str], resource: str) -> None:
        """Raise :class:`ValidationError` (argument ``"query"``) if the query references a field
        not in ``allowed`` (wire names), suggesting close matches::

            query: unknown field 'carid' for car assignments; known: end, id, start, userId
        """
        known = set(allowed)
        unknown = sorted(self.fields() - known)
        if not unknown:
            return
        listing = ", ".join(sorted(known))
        messages = [
            f"unknown field {name!r} for {resource}{_suggest(name, known)}; known: {listing}"
            for name in unknown
        ]
        raise ValidationError("query", "; ".join(messages))


def _query(options: _Options) -> Query:
    """A Query with ``options`` (also how a pickled Query is made again)."""
    query = Query()
    query._options = options
    return query


def _option_texts(options: _Options) -> list[str]:
    """The ``name=value`` texts of the options that are set, percent-encoded, in order."""
    texts = []
    if options.filter is not None:
        texts.append("$filter=" + options.filter.encoded())
    if options.orderby:
        keys = [f"{name}%20desc" if desc else name for name, desc in options.orderby]
        texts.append("$orderby=" + ",".join(keys))
    if options.select:
        texts.append("$select=" + ",".join(options.select))
    if options.top is not None:
        texts.append(f"$top={options.top}")
    if options.skip is not None:
        texts.append(f"$skip={options.skip}")
    if options.with_count is not None:
        texts.append("$count=true" if options.with_count else "$count=false")
    return texts


def _suggest(name: str, known: Collection[str]) -> str:
    by_lower = {k.lower(): k for k in known}
    if name.lower() in by_lower:
        return f" (did you mean {by_lower[name.lower()]!r}?)"
    close = difflib.get_close_matches(name, sorted(known), n=3, cutoff=0.6)
    if not close:
        return ""
    return " (did you mean " + " or ".join(repr(c) for c in close) + "?)"


def model_fields(cls: type[Any]) -> frozenset[str]:
    """The wire names of an attrs model's fields, for :meth:`Query.check_fields`
    (``CarAssignment`` -> ``{"id", "userId", "start", "end"}``)."""
    return frozenset(wire_name(a) for a in attrs.fields(cls))
