"""What every resource module shares: reads that decode into models, paged iteration, and
asynchronous writes that return a :class:`~flinkey_async.operations.PendingOperation`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from .._session import SessionLayer, encode_json
from ..errors import ValidationError
from ..odata import Pager, Query, model_fields
from ..operations import OperationKind, PendingOperation, body_checksum

if TYPE_CHECKING:
    from ..client import FlinkeyClient

__all__ = ["Resource"]

T = TypeVar("T")


class Resource:
    """Base of the resource namespaces (``client.assignments``, ...)."""

    def __init__(self, client: FlinkeyClient) -> None:
        self._client = client

    @property
    def _session(self) -> SessionLayer:
        return self._client._session

    @staticmethod
    def _checked_query(query: Query | None, model: type[Any], resource: str) -> Query | None:
        """Reject a query that is not a :class:`Query` or names fields ``model`` does not have."""
        if query is None:
            return None
        if not isinstance(query, Query):
            raise TypeError(f"query must be a flinkey_async.Query, got {type(query).__name__}")
        query.check_fields(model_fields(model), resource)
        if query.selected:
            raise ValidationError(
                "query",
                f"$select makes the server return partial {resource} records, which "
                f"{model.__name__} cannot hold without inventing the missing fields; "
                "leave select() out of queries passed to this method",
            )
        return query

    async def _get(self, segments: Sequence[str | int], model: Any,
                   query: Query | None = None) -> Any:
        response = await self._session.request(
            "GET", segments, query=query.encoded() if query is not None else None
        )
        return response.decode(model)

    async def _iterate(self, segments: Sequence[str | int], item: type[T],
                       query: Query | None, page_size: int) -> AsyncIterator[T]:
        """Walk ``$skip``/``$top`` pages lazily; a caller's ``$top`` is an overall limit and a
        page shorter than the page size ends the iteration. Items beyond what a page asked for
        (a server that ignored ``$top``) are not yielded."""
        pager = Pager(query, page_size)
        while (page := pager.next_query()) is not None:
            items: list[T] = await self._get(segments, list[item], page)  # type: ignore[valid-type]
            for value in items[: pager.feed(len(items))]:
                yield value

    async def _write(
        self,
        kind: OperationKind,
        method: str,
        segments: Sequence[str | int],
        body: Any,
        *,
        assignment_id: int | None = None,
        **fields: Any,
    ) -> PendingOperation:
        """Send an asynchronous write and return what was sent.

        A tracker attached to the client learns of the operation *before* the request leaves,
        so a confirmation webhook that arrives before the 204 is not missed.
        """
        data = encode_json(body) if body is not None else None
        checksum = body_checksum(data if data is not None else
                                 f"{method} /{'/'.join(map(str, segments))}".encode())
        tracker = self._client.tracker
        op = PendingOperation(kind=kind, customer_id=self._session.customer_id,
                              assignment_id=assignment_id, body=body, checksum=checksum,
                              sent_at=datetime.now(UTC), client=self._client, watcher=tracker,
                              **fields)
        if tracker is not None:
            tracker.expect(op)
        try:
            await self._session.request(method, segments, json_bytes=data)
        except BaseException:
            if tracker is not None:
                tracker.discard(op)
            raise
        return op

