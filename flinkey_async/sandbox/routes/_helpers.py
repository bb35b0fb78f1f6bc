"""What every route handler uses: the :class:`RouteContext`, and the generic read helpers.

Every GET with the OData tip answers through :func:`get_list` or :func:`get_one` (the two GETs
the reference documents without it, the groups', through :func:`get_plain_list`, which ignores
query options). Without a query string a list
answer is served from a cache of encoded bodies that the store's ``version`` invalidates (any
change of the data clears it); with one, the OData options (parsed once per distinct query
string and schema, :mod:`flinkey_async.sandbox.odata_eval`) are applied to the records in their
wire shape. Lists take every option; single objects ``$select`` only. An invalid query raises
:class:`~flinkey_async.sandbox.odata_eval.ODataError`, which the checks turn into a 400 answer.

Path ids that are not integers in ``1..2147483647`` (:func:`path_id` is None) get the
resource's 404 text, as an unknown id does.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Hashable, Iterable
from typing import Any, TypeVar

from aiohttp import web

from ..._wire import dumps
from ..config import SandboxConfig
from ..odata_eval import EntitySchema, QueryOptions, parse_query
from ..responses import json_response, text_response, unsupported_media_type
from ..store import SandboxStore, parse_id
from ..writes.bodies import BodyError, Refusal
from ..writes.queue import WriteQueue

__all__ = [
    "Handler",
    "ReadCache",
    "SyncWrite",
    "apply_sync_write",
    "RouteContext",
    "get_list",
    "get_one",
    "get_plain_list",
    "is_json",
    "path_id",
]

_RecordT = TypeVar("_RecordT")

#: Most distinct (schema, query string) pairs whose parsed options are kept.
_MAX_QUERIES = 1024


class ReadCache:
    """Encoded list bodies by key, valid for one store version, and parsed query options."""

    def __init__(self) -> None:
        self._bodies: dict[Hashable, bytes] = {}
        self._version = -1
        self._queries: dict[tuple[str, str, bool], QueryOptions] = {}

    def body(self, version: int, key: Hashable, build: Callable[[], bytes]) -> bytes:
        """The body cached under ``key`` for store ``version``, built when missing."""
        if self._version != version:
            self._bodies.clear()
            self._version = version
        body = self._bodies.get(key)
        if body is None:
            body = self._bodies[key] = build()
        return body

    def options(self, request: web.Request, schema: EntitySchema, single: bool) -> QueryOptions:
        """The request's OData options over ``schema`` (raises ``ODataError``)."""
        key = (schema.name, request.rel_url.raw_query_string, single)
        options = self._queries.get(key)
        if options is None:
            options = parse_query(request.query.items(), schema, single=single)
            if len(self._queries) >= _MAX_QUERIES:
                self._queries.clear()
            self._queries[key] = options
        return options


class RouteContext:
    """What a route handler may use of its sandbox.

    Attributes:
        config: the sandbox's configuration.
        store: its data.
        writes: its write queue (``writes.put(write)``).
        issue_token: issues a fresh access token.
        customer_ids: the customers the API manager may act for, by id.
        reads: the read cache of :func:`get_list` and :func:`get_one`.
    """

    def __init__(
        self,
        config: SandboxConfig,
        store: SandboxStore,
        writes: WriteQueue,
        *,
        issue_token: Callable[[], str],
        customer_ids: Callable[[], list[int]],
    ) -> None:
        self.config = config
        self.store = store
        self.writes = writes
        self.issue_token = issue_token
        self.customer_ids = customer_ids
        self.reads = ReadCache()
        self._trace = random.Random(config.seed)

    def unsupported_media_type(self) -> web.Response:
        """415 with the next trace id of this sandbox."""
        return unsupported_media_type(self._trace)


#: A route handler: the context, the request, and its customer id (0 on routes without
#: ``Customer-ID``).
Handler = Callable[[RouteContext, web.Request, int], Awaitable[web.StreamResponse]]


#: A synchronous write: ``apply(store, customer_id, body)`` changes the data or raises
#: :class:`~flinkey_async.sandbox.writes.bodies.Refusal` (or ``BodyError``).
SyncWrite = Callable[[SandboxStore, int, bytes], None]


async def apply_sync_write(
    context: RouteContext, request: web.Request, customer_id: int, apply: SyncWrite
) -> web.Response:
    """A write applied at once: a JSON body (415 otherwise), then 204, or the refusal's
    status and bare text (400 with the shape problem for a body that is not JSON)."""
    if not is_json(request):
        return context.unsupported_media_type()
    body = await request.read()
    try:
        apply(context.store, customer_id, body)
    except BodyError as exc:
        return text_response(str(exc), 400)
    except Refusal as exc:
        return text_response(exc.text, exc.status)
    return web.Response(status=204)


def path_id(request: web.Request, name: str) -> int | None:
    """The path parameter ``name`` as an id in ``1..2147483647``, else None."""
    return parse_id(request.match_info[name])


def is_json(request: web.Request) -> bool:
    """The request body is declared ``application/json`` or ``application/*+json``."""
    mime = request.content_type
    return mime == "application/json" or (
        mime.startswith("application/") and mime.endswith("+json")
    )


def get_list(
    context: RouteContext,
    request: web.Request,
    schema: EntitySchema,
    scope: Hashable,
    records: Callable[[], Iterable[Any]],
) -> web.Response:
    """A list answer: ``records()`` (in their wire shape, by id; plain values for a schema
    without properties, which can then only be paged) with the request's OData options
    applied. ``scope`` tells lists of one ``schema`` apart in the cache (the customer, or the
    parent's id)."""
    if not request.query_string:
        body = context.reads.body(
            context.store.version, (schema.name, scope), lambda: dumps(list(records()))
        )
        return json_response(body)
    options = context.reads.options(request, schema, single=False)
    return json_response(dumps(options.apply(list(records()))))


def get_plain_list(
    context: RouteContext, name: str, scope: Hashable, records: Callable[[], Iterable[Any]]
) -> web.Response:
    """A list answer without OData (for the GETs documented without the OData tip): query
    options are ignored, as custom options are. ``name`` and ``scope`` key the cache."""
    body = context.reads.body(context.store.version, (name, scope), lambda: dumps(list(records())))
    return json_response(body)


def get_one(
    context: RouteContext,
    request: web.Request,
    schema: EntitySchema,
    record: _RecordT | None,
    wire: Callable[[_RecordT], dict[str, Any]],
    not_found: str,
) -> web.Response:
    """A single-object answer: ``wire(record)`` with the request's ``$select`` applied, or
    404 with the text ``not_found`` when ``record`` is None."""
    if record is None:
        return text_response(not_found, 404)
    shape = wire(record)
    if request.query_string:
        shape = dict(context.reads.options(request, schema, single=True).select_one(shape))
    return json_response(dumps(shape))
