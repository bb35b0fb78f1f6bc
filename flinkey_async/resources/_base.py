"""What every resource module shares: reads that decode into models, paged iteration,
synchronous JSON writes (:meth:`Resource._send`: applied when the answer arrives), and
asynchronous writes that return a :class:`~flinkey_async.operations.PendingOperation`.

A resource holds a :class:`Context` (the pipeline and the tracker slot it shares with its
client), never the client itself."""

from __future__ import annotations

from collections.abc import AsyncIterator, Coroutine, Sequence
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar, overload

from .._pipeline import Pipeline, Response, encode_json
from ..errors import DecodeError, OutcomeUnknownError, ServerError, ValidationError
from ..odata import Query, model_fields
from ..operations import OperationKind, PendingOperation, Probe, Tracker, body_checksum
from ..pagination import Pager

__all__ = ["Context", "Resource", "resource"]

T = TypeVar("T")
R = TypeVar("R", bound="Resource")


class Context:
    """What a client's resources share: the request pipeline, and the tracker that confirms
    writes (``None``: writes are confirmed by polling). The client's ``tracker`` attribute
    reads and sets :attr:`tracker` here."""

    __slots__ = ("pipeline", "tracker")

    def __init__(self, pipeline: Pipeline, tracker: Tracker | None = None) -> None:
        self.pipeline = pipeline
        self.tracker = tracker


class Resource:
    """Base of the resource namespaces (``client.assignments``, ...)."""

    def __init__(self, context: Context) -> None:
        self._context = context

    @property
    def _pipeline(self) -> Pipeline:
        return self._context.pipeline

    @staticmethod
    def _checked_query(query: Query | None, model: type[Any] | None, resource: str) -> Query | None:
        """Reject a query that is not a :class:`Query` or names fields ``model`` does not have
        (``model=None``: the items are plain values, which have no fields to name)."""
        if query is None:
            return None
        if not isinstance(query, Query):
            raise TypeError(f"query must be a flinkey_async.Query, got {type(query).__name__}")
        if model is None:
            named = sorted(query.fields())
            if named:
                raise ValidationError(
                    "query",
                    f"{resource} are plain values without fields, so the query cannot name "
                    f"{', '.join(map(repr, named))}; page them with top() and skip()",
                )
            return query
        query.check_fields(model_fields(model), resource)
        if query.selected:
            raise ValidationError(
                "query",
                f"$select makes the server return partial {resource} records, which "
                f"{model.__name__} cannot hold without inventing the missing fields; "
                "leave select() out of queries passed to this method",
            )
        return query

    def _get(
        self,
        segments: Sequence[str | int],
        model: Any,
        query: Query | None = None,
        *,
        customer_scoped: bool = True,
    ) -> Coroutine[Any, Any, Any]:
        """``GET`` and decode into ``model``: the pipeline's coroutine (``await`` it)."""
        return self._context.pipeline.get(
            segments,
            model,
            query=query.encoded() if query is not None else None,
            customer_scoped=customer_scoped,
        )

    async def _send(
        self,
        method: str,
        segments: Sequence[str | int],
        body: Any = None,
        *,
        customer_scoped: bool = True,
    ) -> Response:
        """A synchronous write: ``body`` (JSON-ready data, or bytes already encoded, such as a
        ``SecretBody`` that masks a credential) sent as ``application/json``; the 2xx answer
        is returned, anything else raises its typed error. Unlike :meth:`_write`, no
        :class:`~flinkey_async.operations.PendingOperation` follows: the server applied the
        write when it answered."""
        data = body if body is None or isinstance(body, bytes) else encode_json(body)
        return await self._pipeline.request(
            method, segments, json_bytes=data, customer_scoped=customer_scoped
        )

    async def _iterate(
        self, segments: Sequence[str | int], item: type[T], query: Query | None, page_size: int
    ) -> AsyncIterator[T]:
        """Walk ``$skip``/``$top`` pages lazily; a caller's ``$top`` is an overall limit and a
        page shorter than the page size ends the iteration. Items beyond what a page asked for
        (a server that ignored ``$top``) are not yielded, and a full page equal to the one
        before it (a server that ignored ``$skip``, which would never end) raises
        :class:`DecodeError`."""
        pager = Pager(query, page_size)
        previous: list[T] = []
        while (page := pager.next_query()) is not None:
            items: list[T] = await self._get(segments, list[item], page)  # type: ignore[valid-type]
            if items and items == previous:
                raise DecodeError(
                    f"GET /{'/'.join(map(str, segments))}: the page at $skip={page.offset} "
                    "repeats the page before it (the server ignored $skip); stopped reading"
                )
            previous = items
            for value in items[: pager.feed(len(items))]:
                yield value

    async def _write(
        self,
        kind: OperationKind,
        method: str,
        segments: Sequence[str | int],
        body: Any,
        *,
        description: str,
        probe: Probe,
        assignment_id: int | None = None,
        create_key: tuple[Any, ...] | None = None,
        request: Any = None,
        baseline: frozenset[int] = frozenset(),
    ) -> PendingOperation:
        """Send an asynchronous write and return what was sent.

        A tracker attached to the client learns of the operation *before* the request leaves,
        so a confirmation webhook that arrives before the 204 is not missed.
        """
        data = encode_json(body) if body is not None else None
        checksum = body_checksum(
            data if data is not None else f"{method} /{'/'.join(map(str, segments))}".encode()
        )
        tracker = self._context.tracker
        op = PendingOperation(
            kind=kind,
            customer_id=self._pipeline.customer_id,
            assignment_id=assignment_id,
            body=body,
            checksum=checksum,
            sent_at=datetime.now(UTC),
            description=description,
            create_key=create_key,
            request=request,
            baseline=baseline,
            probe=probe,
            watcher=tracker,
        )
        if tracker is not None:
            tracker.expect(op)
        try:
            await self._pipeline.request(method, segments, json_bytes=data)
        except (OutcomeUnknownError, ServerError, DecodeError) as exc:
            # flinkey may have applied it (a DecodeError: a 2xx answer that could not be
            # read, so it was received): keep expecting its webhook, and hand the operation
            # to the caller, who can still await it (it is never sent again).
            exc.operation = op
            raise
        except BaseException:
            if tracker is not None:
                tracker.discard(op)
            raise
        return op


class resource(Generic[R]):
    """A resource of the client, declared in one line: ``cars = resource(Cars)``.

    Made on first use from the owner's ``_context`` and kept (one per client), like
    ``functools.cached_property``; the class's docstring is the attribute's.
    """

    def __init__(self, cls: type[R]) -> None:
        self._cls = cls
        self.__doc__ = cls.__doc__
        self._name = ""

    def __set_name__(self, owner: type[Any], name: str) -> None:
        self._name = name

    @overload
    def __get__(self, instance: None, owner: type[Any] | None = None) -> resource[R]: ...

    @overload
    def __get__(self, instance: object, owner: type[Any] | None = None) -> R: ...

    def __get__(self, instance: object | None, owner: type[Any] | None = None) -> Any:
        if instance is None:
            return self
        made = self._cls(instance._context)  # type: ignore[attr-defined]
        instance.__dict__[self._name] = made  # later reads find it first
        return made
