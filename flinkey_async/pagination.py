"""Walking a list page by page with ``$top``/``$skip``: pure bookkeeping, no I/O.

The network layer (``resources/_base.py``) asks a :class:`Pager` for each page's query and tells
it how many items came back; the pager decides where the next page starts and when to stop.
"""

from __future__ import annotations

from .errors import ValidationError
from .odata.query import Query

__all__ = ["Pager"]


class Pager:
    """Per-page queries for walking a list with ``$top``/``$skip`` (pure bookkeeping).

    The caller's ``$skip`` is where the first page starts; the caller's ``$top`` is an overall
    limit on the number of items, not a page size. Every other option (filter, ordering, select,
    count) is kept on every page. Iteration ends after a page shorter than requested, or when
    the overall limit is reached. The network layer does::

        pager = Pager(query, page_size=100)
        while (page_query := pager.next_query()) is not None:
            items = await fetch(page_query)
            for item in items[: pager.feed(len(items))]:
                yield item

    :meth:`feed` returns how many of the received items belong to the result, so a server that
    ignored ``$top`` and sent more cannot push the result past the limit. Order by a stable key
    (``orderby``) when paging through data that may change meanwhile.
    """

    __slots__ = ("_asked", "_base", "_done", "_offset", "_page_size", "_remaining")

    def __init__(self, query: Query | None, page_size: int) -> None:
        if type(page_size) is not int or page_size < 1:
            raise ValidationError("page_size", f"must be an int >= 1, got {page_size!r}")
        if query is not None and not isinstance(query, Query):
            raise TypeError(f"query must be a Query or None, got {type(query).__name__}")
        self._base = query if query is not None else Query()
        self._page_size = page_size
        self._offset = self._base.offset or 0
        self._remaining = self._base.limit
        self._done = self._remaining == 0
        self._asked: int | None = None

    @property
    def done(self) -> bool:
        """``True`` once no further page should be requested."""
        return self._done

    def next_query(self) -> Query | None:
        """The query for the next page, or ``None`` when the iteration is over.

        Call :meth:`feed` with the page's item count before asking for the next page.
        """
        if self._done:
            return None
        if self._asked is not None:
            raise RuntimeError("feed() the previous page's item count before the next query")
        top = self._page_size
        if self._remaining is not None:
            top = min(top, self._remaining)
        self._asked = top
        return self._base.with_page(self._offset, top)

    def feed(self, count: int) -> int:
        """Record that the last page returned ``count`` items; returns how many to keep."""
        asked = self._asked
        if asked is None:
            raise RuntimeError("feed() called without a pending next_query()")
        if type(count) is not int or count < 0:
            raise ValidationError("count", f"must be an int >= 0, got {count!r}")
        self._asked = None
        keep = min(count, asked)
        self._offset += keep
        if self._remaining is not None:
            self._remaining -= keep
            if self._remaining <= 0:
                self._done = True
        if count < asked:
            self._done = True
        return keep
