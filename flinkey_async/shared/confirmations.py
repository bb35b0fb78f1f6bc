"""Webhook confirmations shared across processes, on Redis (extra ``flinkey_async[redis]``).

With one :class:`~flinkey_async.webhooks.OperationTracker` per process, ``await op.wait()``
is confirmed only when flinkey's webhook reaches the process that sent the write. Shared, any
process may receive it:

* every receiver publishes each *verified* webhook to one Redis **stream**
  (:class:`RedisWebhookBus`, given to a receiver as ``publisher=``) *before* it answers 204,
  and answers 503 when it cannot (flinkey then delivers it again): what flinkey saw
  acknowledged is in Redis;
* every :class:`SharedTracker` (an ``OperationTracker`` that reads the stream) resolves its
  own process's pending operations from it, with the tracker's correlation unchanged
  (assignment ids, create keys, checksums), and ignores the others' (they are unsolicited
  events for it);
* a stream entry resolves at most one operation in all the processes: a tracker resolves
  one of its operations with an entry only once it has *claimed* the entry in Redis, and an
  entry another tracker claimed is unsolicited for it. Writes of the same kind to the same
  target in flight in two processes at once (identical creates, updates of one assignment)
  therefore each get an event of their own: two identical creates report two ids, never the
  same one twice. Which of them gets which event is first come, first served, as within one
  process (``strict_checksum=True`` makes an update take only an event with its own
  checksum, where the checksums agree)::

    async with SharedTracker.connect("redis://127.0.0.1:6379/0") as tracker:
        add_webhook_routes(app, secret=secret, publisher=tracker.bus)   # in the receivers
        async with FlinkeyClient(..., tracker=tracker) as client:       # in the writers
            op = await client.assignments.create(car_id=7, user_id=9, start=start)
            outcome = await op.wait()     # confirmed, whichever process got the webhook

**Stream layout.** Keys share the hash tag ``{prefix}`` (one Redis Cluster slot):
``{prefix}:events`` is the stream, one entry per delivery (fields ``v`` = format ``1``,
``kind`` = the kind the route told or empty, ``repeat`` = ``1`` for a delivery already
published, ``body`` = the webhook's JSON body as received); ``{prefix}:seen:<sha256 of the
fingerprint>`` marks a delivery as published (``SET NX EX dedupe_ttl``). One Lua script sets
the mark, appends the entry and trims the stream, atomically: a mark never exists without
its entry, so a receiver that fails halfway answers 503 and the retry is published.
``{prefix}:claim:<entry id>`` holds the random id of the tracker that resolved an operation
with that entry (set if absent, by a Lua script), until :attr:`SharedTracker.claim_ttl`
seconds (twice the retention, or the lookback if longer, plus ``orphan_ttl``) after the
*entry's* time, the milliseconds of its id (``PXAT``), not after the claim: trimming is
approximate, so an entry may stay readable long after ``retention``. The script refuses to
claim an entry once Redis's clock is within a margin (1 s, or a tenth of ``claim_ttl`` if
less) of that time, and the tracker skips such an entry as too old (with a warning): a
claim lasts as long as anybody may still make one, however long its entry is kept.

**Duplicates.** A delivery already published by any receiver (same
:attr:`~flinkey_async.webhooks.AssignmentEvent.fingerprint`) is published again with
``repeat=1``: it is answered 204, not handed to the receiver's handler again, and each
tracker's own fingerprint memory makes it resolve nothing twice (while two identical writes
in flight, whose events are identical, still both resolve, as with one process: a repeat is
claimed like any entry). A tracker remembers the fingerprint of an entry only once the entry
resolved one of its operations, not of one another tracker claimed nor of one that matched
nothing here, so that a later identical event (published as a repeat) can still be the
outcome of its own identical write; an entry that matches nothing here is a duplicate when
it is a repeat (not reported to ``on_unsolicited``, not kept), else unsolicited. A repeated
success is never the outcome of a create or delete: an id is created or deleted once.

**Retention.** Each publication trims the stream to the last ``retention`` seconds (``MINID
~``, stream ids are Redis's clock in milliseconds) and at most ``max_len`` entries
(``MAXLEN ~``); marks expire after ``dedupe_ttl``, claims (one per entry that resolved an
operation) ``claim_ttl`` after their entry's time. Memory in Redis is bounded by these.

**Early events.** A tracker keeps events that resolved nothing for ``orphan_ttl`` seconds,
and one that starts reads the stream back ``lookback`` seconds (``orphan_ttl`` by default):
an event published before the process that sent the write expected it still resolves it,
once claimed (in a background task started by ``expect()``; if another tracker holds the
claim, the next kept event that fits is tried, else the operation waits for a new one). A
tracker started again after :meth:`~SharedTracker.aclose` resumes after the last entry it
read (it reads an entry once) and claims the kept events of its pending operations again.
An operation that ``wait()`` saw settled by polling leaves the tracker: no entry is claimed
for an operation already settled.

**Failures.**

* Redis unreachable when a tracker or bus starts:
  :class:`~flinkey_async.errors.RedisUnavailableError`.
* Lost while running: writes are unaffected (they never touch Redis). Receivers answer 503.
  The tracker's reader retries with backoff (at most 2 s apart) and resumes from the last
  stream id it read, so nothing published meanwhile is missed (within ``retention``). A
  claim Redis does not answer counts the same: the reader retries from that entry (claiming
  it again tells whether the unanswered claim was made), and a kept event's claim is
  retried while the operation is pending, even once the event is no longer kept (such a
  claim failing while the reader still reads does not count Redis as lost); nothing is
  resolved unclaimed. Meanwhile, ``wait()`` falls back to polling the read endpoints: its
  outcome is then ``confirmed=False`` with ``fallback_reason`` saying why, and a write
  flinkey rejected ends in :class:`~flinkey_async.errors.OperationTimeoutError` (polling
  cannot see a rejection) unless its webhook arrives once Redis is back.
* Slow: every command has a deadline (``timeout``; a blocking read ``read_block`` more), so
  a receiver answers 503 and a reader counts Redis as lost, instead of hanging.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from types import TracebackType
from typing import Any, Final, NamedTuple, NoReturn, TypeVar

import orjson
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from ..auth import Secret
from ..errors import OperationTimeoutError, RedisUnavailableError, WebhookPayloadError
from ..operations import OperationOutcome, PendingOperation
from ..operations.pending import check_wait
from ..webhooks.events import DEFAULT_MAX_BYTES, KINDS, AssignmentEvent, EventHandler, parse_body
from ..webhooks.tracker import OperationTracker, _Entry
from ._urls import URL_HINT, misplaced_at, server_of

__all__ = [
    "DEFAULT_DEDUPE_TTL",
    "DEFAULT_MAX_LEN",
    "DEFAULT_PREFIX",
    "DEFAULT_RETENTION",
    "DEFAULT_TIMEOUT",
    "RedisWebhookBus",
    "SharedTracker",
    "StreamEntry",
]

logger = logging.getLogger("flinkey_async.shared")

#: Default prefix (hash tag) of the keys.
DEFAULT_PREFIX: Final = "flinkey"
#: Default seconds the stream keeps an entry.
DEFAULT_RETENTION: Final = 600.0
#: Default most entries the stream keeps (approximately).
DEFAULT_MAX_LEN: Final = 100_000
#: Default seconds a delivery is remembered as published (to recognise repeats).
DEFAULT_DEDUPE_TTL: Final = 3600.0
#: Default seconds one Redis command may take.
DEFAULT_TIMEOUT: Final = 2.0

_FORMAT: Final = b"1"
_MAX_ENTRY_BYTES: Final = DEFAULT_MAX_BYTES
_BACKOFF_FIRST: Final = 0.05
_BACKOFF_MAX: Final = 2.0
_FIRST: Final = asyncio.FIRST_COMPLETED
_MAX_SEQ: Final = 2**64 - 1  # the largest sequence number of a stream id

# KEYS: stream, mark. ARGV: body, kind, dedupe ttl (s), retention (ms), max length.
_PUBLISH: Final = """
local first = redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[3])
local rep = '0'
if not first then rep = '1' end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local oldest = now - tonumber(ARGV[4])
if oldest < 0 then oldest = 0 end
local id = redis.call('XADD', KEYS[1], 'MINID', '~', tostring(oldest), '*',
                      'v', '1', 'kind', ARGV[2], 'repeat', rep, 'body', ARGV[1])
redis.call('XTRIM', KEYS[1], 'MAXLEN', '~', ARGV[5])
return {id, rep}
"""

# KEYS: claim. ARGV: owner, expiry (ms since the epoch: the entry's time + ttl), margin (ms).
# 1: the entry is the owner's (claimed now, or already); 0: another owner's; -1: too old to
# be claimed (its claim, which lasts until the expiry, may be gone already).
_CLAIM: Final = """
local held = redis.call('GET', KEYS[1])
if held then
  if held == ARGV[1] then return 1 end
  return 0
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if now >= tonumber(ARGV[2]) - tonumber(ARGV[3]) then return -1 end
redis.call('SET', KEYS[1], ARGV[1], 'PXAT', ARGV[2])
return 1
"""
_CLAIMED: Final = 1
_TOO_OLD: Final = -1
#: The claims' safety margin (ms) at most: an entry this close to its claim's expiry is not
#: claimed any more.
_CLAIM_MARGIN_MS: Final = 1000

_T = TypeVar("_T")

#: One entry read from the stream: its id, and its event (``None`` when it is not one: an
#: entry of another format or a body that no longer parses; skipped, with a warning).
StreamEntry = tuple[str, AssignmentEvent | None]


class _Record(NamedTuple):
    """One entry read from the stream, as the tracker reads it."""

    id: str
    event: AssignmentEvent | None
    repeat: bool


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _id_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def _digest(event: AssignmentEvent) -> str:
    """A stable digest of the event's fingerprint (the same in every process)."""
    parts = [v.isoformat() if isinstance(v, datetime) else v for v in event.fingerprint]
    return hashlib.sha256(orjson.dumps(parts)).hexdigest()


def _positive(value: float, name: str) -> float:
    if not value > 0:
        raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
    return value


def _check_bus_options(
    prefix: str, retention: float, max_len: int, dedupe_ttl: float, timeout: float
) -> None:
    """The checks of :class:`RedisWebhookBus`'s options (before a client is made of a URL)."""
    if not prefix or any(c in prefix for c in "{}"):
        raise ValueError(f"prefix must be a non-empty string without braces, got {prefix!r}")
    if max_len < 1:
        raise ValueError("max_len must be at least 1")
    for value, name in ((retention, "retention"), (dedupe_ttl, "dedupe_ttl"), (timeout, "timeout")):
        _positive(value, name)


class RedisWebhookBus:
    """Publishes verified webhook events to a Redis stream, and reads them back (see the
    module's documentation for the stream layout, duplicates and retention).

    Give it to a receiver as ``publisher=`` (:func:`~flinkey_async.webhooks.webhook_app`,
    :func:`~flinkey_async.webhooks.add_webhook_routes`,
    :func:`~flinkey_async.webhooks.start_webhook_server`,
    :class:`~flinkey_async.webhooks.ASGIWebhookReceiver`), and to a :class:`SharedTracker`.
    Every method bounds its Redis commands by ``timeout`` seconds and raises
    :class:`~flinkey_async.errors.RedisUnavailableError` when Redis does not answer (its
    message names the server by host and port, never a password).

    Args:
        client: a ``redis.asyncio.Redis`` (bytes responses, i.e. ``decode_responses=False``).
        prefix: the keys' prefix, used as their hash tag: ``{prefix}:events``, ...
        retention: seconds the stream keeps an entry (also how far back a reader that lost
            its connection can catch up).
        max_len: most entries the stream keeps (approximate trimming).
        dedupe_ttl: seconds a delivery stays known as published.
        timeout: seconds one command may take.
        close_client: :meth:`aclose` closes ``client`` too (so does a bus from :meth:`from_url`).
        where: how messages name the server (default: from the client's connection settings).
    """

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        prefix: str = DEFAULT_PREFIX,
        retention: float = DEFAULT_RETENTION,
        max_len: int = DEFAULT_MAX_LEN,
        dedupe_ttl: float = DEFAULT_DEDUPE_TTL,
        timeout: float = DEFAULT_TIMEOUT,
        close_client: bool = False,
        where: str | None = None,
    ) -> None:
        _check_bus_options(prefix, retention, max_len, dedupe_ttl, timeout)
        self._client = client
        self.prefix = prefix
        self.retention = _positive(retention, "retention")
        self.max_len = max_len
        self.dedupe_ttl = _positive(dedupe_ttl, "dedupe_ttl")
        self.timeout = _positive(timeout, "timeout")
        self._close_client = close_client
        if where is None:
            kwargs = client.connection_pool.connection_kwargs
            where = (
                f"unix:{kwargs['path']}"
                if "path" in kwargs
                else f"{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}"
                f"/{kwargs.get('db', 0)}"
            )
        self.where = where
        self.stream_key = f"{{{prefix}}}:events"
        self._script = client.register_script(_PUBLISH)
        self._claim_script = client.register_script(_CLAIM)
        #: Events published (first deliveries and repeats).
        self.published = 0
        #: Repeated deliveries recognised.
        self.repeats = 0

    @classmethod
    def from_url(
        cls,
        url: str | Secret,
        *,
        prefix: str = DEFAULT_PREFIX,
        retention: float = DEFAULT_RETENTION,
        max_len: int = DEFAULT_MAX_LEN,
        dedupe_ttl: float = DEFAULT_DEDUPE_TTL,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> RedisWebhookBus:
        """A bus on a new client of ``url`` (``redis://[:password@]host:port/db``,
        ``rediss://`` for TLS, ``unix:///path``; a string or a
        :class:`~flinkey_async.auth.Secret`, wrapped on entry); nothing is sent until it is
        used (``async with`` it, or :meth:`ping`, to find out now whether Redis answers). A
        malformed URL raises ``ValueError`` naming the server by host, port and database at
        most, never quoting the URL."""
        secret = url if isinstance(url, Secret) else Secret(url) if isinstance(url, str) else None
        del url
        if not secret:
            raise TypeError("url must be a non-empty Redis URL string")
        _check_bus_options(prefix, retention, max_len, dedupe_ttl, timeout)
        where = server_of(secret.reveal())
        client: aioredis.Redis | None = None
        if not misplaced_at(secret.reveal()):
            # redis-py's error would quote a part of the URL (a password's, when it holds an
            # unencoded '/', '?' or '#'): it is replaced by a fixed hint.
            with contextlib.suppress(ValueError):
                client = aioredis.Redis.from_url(
                    secret.reveal(),
                    socket_timeout=None,  # every command has its deadline (_call)
                    socket_connect_timeout=timeout,
                    retry=Retry(NoBackoff(), 0),
                    decode_responses=False,
                    protocol=2,
                )
        if client is None:
            raise ValueError(f"not a Redis URL ({where}): {URL_HINT}")
        return cls(
            client,
            prefix=prefix,
            retention=retention,
            max_len=max_len,
            dedupe_ttl=dedupe_ttl,
            timeout=timeout,
            close_client=True,
            where=where,
        )

    def __repr__(self) -> str:
        try:
            return f"{type(self).__name__}({self.where}, prefix={self.prefix!r})"
        except AttributeError:  # half-built: its constructor raised
            return f"{type(self).__name__}(<not set up>)"

    def __reduce__(self) -> NoReturn:
        raise TypeError("a RedisWebhookBus cannot be pickled: its client may hold a password")

    async def __aenter__(self) -> RedisWebhookBus:
        await self.ping()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the Redis client, when the bus owns it."""
        if self._close_client:
            await self._client.aclose()

    async def _call(self, what: str, command: Awaitable[_T], *, extra: float = 0.0) -> _T:
        """Run one Redis command within ``timeout`` (+ ``extra``) seconds."""
        try:
            async with asyncio.timeout(self.timeout + extra):
                return await command
        except TimeoutError:
            message = f"Redis at {self.where} did not answer {what} within {self.timeout:g} s"
            # a connection whose reply is still due must not answer the next command
            await self._drop_connections()
        except (RedisError, OSError) as exc:
            message = f"Redis at {self.where} is unavailable ({what}: {type(exc).__name__}: {exc})"
        raise RedisUnavailableError(message)

    async def _drop_connections(self) -> None:
        try:
            async with asyncio.timeout(self.timeout):
                await self._client.connection_pool.disconnect()
        except (TimeoutError, RedisError, OSError):
            logger.debug("closing the connections to Redis at %s failed", self.where)

    # -- health ------------------------------------------------------------------------------
    async def ping(self) -> None:
        """Check that Redis answers; :class:`~flinkey_async.errors.RedisUnavailableError`
        otherwise (also for a wrong password or a server refusing commands)."""
        await self._call("PING", self._client.ping())

    async def reachable(self) -> bool:
        """True when Redis answers a PING in time (for health checks; never raises)."""
        try:
            await self.ping()
        except RedisUnavailableError:
            return False
        return True

    async def server_time_ms(self) -> int:
        """Redis's clock, in milliseconds (the clock of the stream's ids)."""
        seconds, micros = await self._call("TIME", self._client.time())
        return int(seconds) * 1000 + int(micros) // 1000

    # -- publishing ----------------------------------------------------------------------------
    async def publish(self, event: AssignmentEvent) -> bool:
        """Publish one verified event (a receiver calls this before answering 204); True for
        its first delivery, False for a repeated one (published all the same, marked
        ``repeat``). Raises :class:`~flinkey_async.errors.RedisUnavailableError` when it
        could not be published: then nothing was (answer 503)."""
        body = orjson.dumps(dict(event.payload) if event.payload else _payload_of(event))
        mark = f"{{{self.prefix}}}:seen:{_digest(event)}"
        args = [
            body,
            event.kind or "",
            max(1, round(self.dedupe_ttl)),
            max(1, round(self.retention * 1000)),
            self.max_len,
        ]
        result = await self._call(
            "a publication", self._script(keys=[self.stream_key, mark], args=args)
        )
        self.published += 1
        first = _text(result[1]) == "0"
        if not first:
            self.repeats += 1
        return first

    # -- reading -------------------------------------------------------------------------------
    async def read(self, after: str, *, block: float = 1.0, count: int = 500) -> list[StreamEntry]:
        """The entries after stream id ``after`` (at most ``count``), waiting up to ``block``
        seconds for one to arrive (0: do not wait)."""
        return [(record.id, record.event) for record in await self._read(after, block, count)]

    async def _read(self, after: str, block: float, count: int) -> list[_Record]:
        """:meth:`read`, with each entry's ``repeat`` flag."""
        command = self._client.xread(
            {self.stream_key: after}, count=count, block=round(block * 1000) if block else None
        )
        reply = await self._call("a read of the stream", command, extra=block)
        return [_entry(entry_id, fields) for entry_id, fields in _entries(reply)]

    def claim_key(self, entry_id: str) -> str:
        """The key of the claim of stream entry ``entry_id``: ``{prefix}:claim:<entry id>``."""
        return f"{{{self.prefix}}}:claim:{entry_id}"

    async def claim(self, entry_id: str, owner: str, ttl: float) -> bool:
        """Claim stream entry ``entry_id`` for ``owner``, until ``ttl`` seconds after the
        entry's own time (the milliseconds of its id; ``PXAT``): True when it is ``owner``'s
        (claimed now, or already), False when another owner holds it or when the entry is too
        old to be claimed (Redis's clock is past that time less a margin: 1 s, or a tenth of
        ``ttl`` if less). Raises :class:`~flinkey_async.errors.RedisUnavailableError` when
        Redis does not answer (the claim may or may not have been made: claiming again
        tells)."""
        return await self._claim(entry_id, owner, ttl) == _CLAIMED

    async def _claim(self, entry_id: str, owner: str, ttl: float) -> int:
        """:meth:`claim`'s answer: 1 (``owner``'s), 0 (another's) or -1 (too old)."""
        ttl_ms = max(1, round(ttl * 1000))
        keys = [self.claim_key(entry_id)]
        args: list[str | int] = [
            owner,
            _id_key(entry_id)[0] + ttl_ms,
            min(_CLAIM_MARGIN_MS, ttl_ms // 10),
        ]
        reply = await self._call("a claim", self._claim_script(keys=keys, args=args))
        return int(reply)

    async def last_id(self) -> str:
        """The id of the stream's newest entry (``"0-0"`` when it is empty)."""
        reply = await self._call("XREVRANGE", self._client.xrevrange(self.stream_key, count=1))
        return _text(reply[0][0]) if reply else "0-0"

    async def length(self) -> int:
        """The number of entries the stream holds."""
        return int(await self._call("XLEN", self._client.xlen(self.stream_key)))

    async def delete(self) -> None:
        """Delete the stream (the marks and the claims expire by themselves); for tests."""
        await self._call("DEL", self._client.delete(self.stream_key))


def _payload_of(event: AssignmentEvent) -> dict[str, Any]:
    """The wire payload of an event made without one (handmade events)."""

    def wire(value: Any) -> Any:
        return value.isoformat().replace("+00:00", "Z") if isinstance(value, datetime) else value

    return {
        "checksum": event.checksum,
        "customerId": event.customer_id,
        "operationSucceeded": event.operation_succeeded,
        "assignmentId": event.assignment_id,
        "errorMessage": event.error_message,
        "carId": event.car_id,
        "userId": event.user_id,
        "start": wire(event.start),
        "end": wire(event.end),
        "lifetime": event.lifetime,
        "renewableAfter": event.renewable_after,
    }


def _entries(reply: Any) -> list[tuple[Any, Any]]:
    """The ``(id, fields)`` pairs of an XREAD reply (RESP2 list or RESP3 map)."""
    if not reply:
        return []
    streams = reply.values() if isinstance(reply, dict) else (s[1] for s in reply)
    found: list[tuple[Any, Any]] = []
    for entries in streams:
        if isinstance(entries, list) and len(entries) == 1 and isinstance(entries[0], list):
            entries = entries[0]  # RESP3 wraps the entries once more
        found.extend((entry[0], entry[1]) for entry in entries)
    return found


def _entry(raw_id: Any, fields: Any) -> _Record:
    """One entry of a read; one that cannot be read (whatever it holds) is skipped, with a
    warning (``event`` None): it must not stop the reader."""
    entry_id = _text(raw_id)
    try:
        return _parse_entry(entry_id, fields)
    except Exception as exc:
        logger.warning(
            "skipped stream entry %s: unreadable (%s: %s)", entry_id, type(exc).__name__, exc
        )
        return _Record(entry_id, None, False)


def _parse_entry(entry_id: str, fields: Any) -> _Record:
    if not isinstance(fields, dict) or fields.get(b"v") != _FORMAT:
        logger.warning("skipped stream entry %s: not a webhook entry of format 1", entry_id)
        return _Record(entry_id, None, False)
    repeat = fields.get(b"repeat") == b"1"
    kind_text = _text(fields.get(b"kind", b""))  # (not UTF-8: no kind of ours)
    kind = kind_text if kind_text in KINDS else None
    try:
        event = parse_body(fields.get(b"body", b""), kind, _MAX_ENTRY_BYTES)
    except WebhookPayloadError as exc:
        logger.warning("skipped stream entry %s: %s", entry_id, exc)
        return _Record(entry_id, None, repeat)
    return _Record(entry_id, event, repeat)


class _StreamRef:
    """Where an event kept as an orphan came from: its stream entry, whether that was a
    repeated delivery, whether this tracker cannot claim the entry (``taken``: another
    tracker holds the claim, or the entry is too old), and whether it settled one of this
    tracker's operations (``used``, once claimed)."""

    __slots__ = ("entry_id", "repeat", "taken", "used")

    def __init__(self, entry_id: str, repeat: bool) -> None:
        self.entry_id = entry_id
        self.repeat = repeat
        self.taken = False
        self.used = False


#: A kept event that may report an operation: its token in the orphans, the event, its source.
_Kept = tuple[int, AssignmentEvent, object]


def _redelivered(event: AssignmentEvent, source: _StreamRef, entry: _Entry) -> bool:
    """Whether ``event``, a success the stream marked as a repeated delivery, cannot report
    ``entry``'s create or delete: an id is created or deleted once, so its first delivery
    reported another one (this tracker's own repeats of a success it took are duplicates by
    its fingerprint memory already; this catches those of an entry another tracker claimed)."""
    return source.repeat and event.operation_succeeded and entry.op.kind in ("create", "delete")


class SharedTracker(OperationTracker):
    """An :class:`~flinkey_async.webhooks.OperationTracker` fed by a Redis stream that every
    process's receivers publish to (see the module's documentation): ``wait()`` is confirmed
    whichever process received the webhook.

    Attach it to a client like any tracker (``FlinkeyClient(..., tracker=tracker)``); give
    its :attr:`bus` to the receivers as ``publisher=`` (the receivers need no tracker). Start
    it (``async with``, or :meth:`start`/:meth:`aclose`) in the event loop of the client:
    it reads the stream in a background task, from ``lookback`` seconds before it started,
    and resolves the operations of this process; the others' events are unsolicited here
    (``on_unsolicited``; kept ``orphan_ttl`` seconds in case their write is expected late).
    It resolves an operation with an entry only once it has claimed the entry in Redis, so
    an entry resolves one operation in all the processes; an entry another tracker claimed
    is unsolicited here (counted in :attr:`claims_lost`). An event kept as an orphan is
    claimed in a background task when its write is expected; the write's ``wait()`` returns
    once the claim is made.

    When Redis is lost, ``wait()`` polls the read endpoints instead (``poll_interval``
    doubling up to ``max_poll_interval``) while still listening; its outcome then has
    ``confirmed=False`` and ``fallback_reason`` set, and the operation leaves the tracker (no
    later entry is claimed for it). The reader reconnects with backoff and resumes after the
    last entry it read, as does a tracker started again after :meth:`aclose`.
    :attr:`available` tells the state.

    Args:
        bus: where the events are read.
        lookback: seconds of the stream read back at start (default: ``orphan_ttl``).
        read_block: seconds one read waits for entries.
        batch: most entries per read.
        poll_interval: seconds between the polling fallback's first reads.
        max_poll_interval: the longest the polling fallback's interval grows to, doubling.
        close_bus: :meth:`aclose` closes the bus too (so does a tracker from
            :meth:`connect`).
        on_unsolicited: called with each event that resolves no operation of this process
            (sync or async), as for ``OperationTracker``.
        strict_checksum: accept an event for an operation only when its checksum equals
            the operation's, as for ``OperationTracker``.
        pending_ttl: seconds a pending operation is kept, as for ``OperationTracker``.
        orphan_ttl: seconds an unsolicited event is kept for an operation expected late,
            as for ``OperationTracker``.
        max_orphans: most unsolicited events kept, as for ``OperationTracker``.
        memory: event fingerprints and created ids remembered, as for ``OperationTracker``.
        clock: monotonic clock, replaceable in tests.
        max_callback_tasks: async ``on_unsolicited`` calls running at once, as for
            ``OperationTracker``.
        max_callback_backlog: ``on_unsolicited`` calls waiting at most (beyond, dropped),
            as for ``OperationTracker``.
    """

    def __init__(
        self,
        bus: RedisWebhookBus,
        *,
        lookback: float | None = None,
        read_block: float = 1.0,
        batch: int = 500,
        poll_interval: float = 0.5,
        max_poll_interval: float = 5.0,
        close_bus: bool = False,
        on_unsolicited: EventHandler | None = None,
        strict_checksum: bool = False,
        pending_ttl: float = 3600.0,
        orphan_ttl: float = 10.0,
        max_orphans: int = 1000,
        memory: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
        max_callback_tasks: int = 100,
        max_callback_backlog: int = 1000,
    ) -> None:
        super().__init__(
            on_unsolicited=on_unsolicited,
            strict_checksum=strict_checksum,
            pending_ttl=pending_ttl,
            orphan_ttl=orphan_ttl,
            max_orphans=max_orphans,
            memory=memory,
            clock=clock,
            max_callback_tasks=max_callback_tasks,
            max_callback_backlog=max_callback_backlog,
        )
        if lookback is not None and not lookback >= 0:
            raise ValueError("lookback must be a number of seconds >= 0")
        if batch < 1:
            raise ValueError("batch must be at least 1")
        if not 0 < poll_interval <= max_poll_interval:
            raise ValueError("need 0 < poll_interval <= max_poll_interval")
        self.bus = bus
        self.lookback = orphan_ttl if lookback is None else lookback
        self.read_block = _positive(read_block, "read_block")
        self.batch = batch
        self.poll_interval = poll_interval
        self.max_poll_interval = max_poll_interval
        self._close_bus = close_bus
        self._task: asyncio.Task[None] | None = None
        self._last_id = "0-0"
        self._read_before = False  # started once: a restart resumes after _last_id
        self._down: asyncio.Event | None = None
        self._progress: asyncio.Event | None = None
        self._reason: str | None = "not started"
        # this tracker's name in the entries' claims (random: unique across processes)
        self._owner = secrets.token_hex(12)
        # one claim at a time: its check, the claim and the settling are one step
        self._claiming = asyncio.Lock()
        self._adopting: set[asyncio.Task[None]] = set()
        # id(op) -> (its entry, the kept event whose claim is unanswered or in flight): taken
        # up again by start() when aclose() cancelled the claiming task
        self._held: dict[int, tuple[_Entry, _Kept]] = {}
        #: Seconds after an entry's own time (its id's milliseconds) its claim is kept: twice
        #: the retention (or the lookback, if longer) plus ``orphan_ttl``. An entry is not
        #: claimed any more (skipped as too old) once nearly that old, however long the
        #: stream keeps it.
        self.claim_ttl = 2 * max(bus.retention, self.lookback) + orphan_ttl
        #: Stream entries read so far.
        self.entries_read = 0
        #: Stream entries this tracker claimed (each to resolve one of its operations).
        self.claims = 0
        #: Stream entries that would have resolved an operation here but that another tracker
        #: had claimed (unsolicited events for this one).
        self.claims_lost = 0
        #: Times the connection to Redis was lost.
        self.disconnections = 0
        #: ``wait()`` calls that fell back to polling.
        self.fallbacks = 0

    @classmethod
    def connect(
        cls,
        url: str | Secret,
        *,
        prefix: str = DEFAULT_PREFIX,
        retention: float = DEFAULT_RETENTION,
        max_len: int = DEFAULT_MAX_LEN,
        dedupe_ttl: float = DEFAULT_DEDUPE_TTL,
        timeout: float = DEFAULT_TIMEOUT,
        **options: Any,
    ) -> SharedTracker:
        """A tracker on a new :class:`RedisWebhookBus` of ``url`` (closed with it); use it as
        ``async with SharedTracker.connect(url) as tracker:``. ``options`` are the
        constructor's. Starting raises :class:`~flinkey_async.errors.RedisUnavailableError`
        when Redis does not answer. ``url`` is wrapped in a
        :class:`~flinkey_async.auth.Secret` on entry, as :meth:`RedisWebhookBus.from_url`
        does."""
        secret = Secret(url) if isinstance(url, str) else url
        del url
        bus = RedisWebhookBus.from_url(
            secret,
            prefix=prefix,
            retention=retention,
            max_len=max_len,
            dedupe_ttl=dedupe_ttl,
            timeout=timeout,
        )
        return cls(bus, close_bus=True, **options)

    def __repr__(self) -> str:
        try:
            state = "available" if self.available else f"unavailable: {self._reason}"
            return f"{type(self).__name__}({self.bus!r}, {state}, pending={self.pending})"
        except AttributeError:  # half-built: its constructor raised
            return f"{type(self).__name__}(<not set up>)"

    # -- lifecycle -----------------------------------------------------------------------------
    async def __aenter__(self) -> SharedTracker:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def start(self) -> None:
        """Check Redis and start reading the stream, ``lookback`` seconds back. Started again
        after :meth:`aclose`, it resumes after the last entry it read instead (an entry is
        read once), and claims the kept events of its pending operations again.

        Raises:
            RedisUnavailableError: Redis does not answer (the bus is closed then, when the
                tracker owns it).
        """
        if self._task is not None:
            return
        try:
            now = await self.bus.server_time_ms()
        except RedisUnavailableError:
            if self._close_bus:
                await self.bus.aclose()
            raise
        if not self._read_before:
            # reading resumes after _last_id: just before the first millisecond to read
            first = max(0, now - round(self.lookback * 1000))
            self._last_id = f"{first - 1}-{_MAX_SEQ}" if first else "0-0"
            self._read_before = True
        self._down = asyncio.Event()
        self._progress = asyncio.Event()
        self._claiming = asyncio.Lock()
        self._reason = None
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name=f"flinkey SharedTracker reader ({self.bus.where})"
        )
        self._resume_adoptions()

    def _resume_adoptions(self) -> None:
        """Claim again (in tasks) the kept events of the pending operations: those whose
        claiming :meth:`aclose` cancelled, or that were expected while closed."""
        held, self._held = self._held, {}
        for entry in list(self._entries.values()):
            kept = held.get(id(entry.op))
            if kept is not None and kept[0] is entry:
                self._start_adoption(entry, kept[1])
            elif self._orphans:
                self._claim_orphan(entry)

    async def aclose(self) -> None:
        """Stop reading (pending operations stay pending; their ``wait()`` polls; a claim
        being made for one is taken up again by :meth:`start`), then close the bus when the
        tracker owns it."""
        task, self._task = self._task, None
        if task is not None:
            tasks = [task, *self._adopting]
            for running in tasks:
                running.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._reason = "the tracker was closed"
            if self._down is not None:
                self._down.set()
        if self._close_bus:
            await self.bus.aclose()

    @property
    def available(self) -> bool:
        """True while the stream is being read (Redis answers)."""
        return self._task is not None and self._reason is None

    @property
    def unavailable_reason(self) -> str | None:
        """Why the stream is not being read, or None while it is."""
        return None if self.available else self._reason

    @property
    def last_id(self) -> str:
        """The id of the last stream entry read (reading resumes after it)."""
        return self._last_id

    async def wait_available(self, available: bool = True, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Return once the stream is being read (``available=False``: once it is not, e.g.
        after Redis was lost); ``TimeoutError`` after ``timeout`` seconds."""
        if self._task is None:
            raise RuntimeError("the SharedTracker is not started")
        async with asyncio.timeout(timeout):
            while self.available != available:
                if available:
                    assert self._progress is not None
                    await self._progress.wait()
                else:
                    assert self._down is not None
                    await self._down.wait()

    async def sync(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Return once every entry published before this call has been read (for tests and
        orderly shutdowns). Raises :class:`~flinkey_async.errors.RedisUnavailableError`, or
        ``TimeoutError`` after ``timeout`` seconds."""
        if self._task is None or self._progress is None:
            raise RuntimeError("the SharedTracker is not started")
        async with asyncio.timeout(timeout):
            target = _id_key(await self.bus.last_id())
            while _id_key(self._last_id) < target:
                await self._progress.wait()

    def _mark_down(self, reason: str) -> None:
        if self._reason is None:
            self.disconnections += 1
            logger.warning(
                "lost the webhook stream: %s; waits fall back to polling until it is back",
                reason,
            )
        self._reason = reason
        if self._down is not None:
            self._down.set()

    def _mark_up(self) -> None:
        if self._reason is not None:
            logger.warning("webhook stream back; reading on after entry %s", self._last_id)
            self._reason = None
            self._down = asyncio.Event()

    def _signal_progress(self) -> None:
        progress = self._progress
        if progress is not None:
            self._progress = asyncio.Event()
            progress.set()

    async def _run(self) -> None:
        backoff = _BACKOFF_FIRST
        while True:
            try:
                records = await self.bus._read(self._last_id, self.read_block, self.batch)
                for record in records:
                    # a claim Redis did not answer raises: the next read starts at this entry
                    await self._take(record)
                    self._last_id = record.id
                    self.entries_read += 1
            except RedisUnavailableError as exc:
                self._mark_down(str(exc))
                self._signal_progress()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _BACKOFF_MAX)
                continue
            except Exception as exc:  # never let the reader die
                logger.exception("reading the webhook stream failed")
                self._mark_down(f"reading failed: {type(exc).__name__}")
                self._signal_progress()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _BACKOFF_MAX)
                continue
            backoff = _BACKOFF_FIRST
            self._mark_up()
            self._signal_progress()

    # -- claims --------------------------------------------------------------------------------
    def _waiting(self, entry: _Entry) -> bool:
        """Whether ``entry`` is still this tracker's pending operation, to settle with an
        event; one settled otherwise meanwhile (by polling) leaves the tracker."""
        if self._entries.get(id(entry.op)) is not entry:
            return False  # settled, discarded or forgotten
        if entry.op.state.done:
            self._remove(entry)
            return False
        return True

    async def _take(self, record: _Record) -> None:
        """Resolve with one stream entry the operation of this tracker it reports, if any,
        once the entry is claimed. Raises
        :class:`~flinkey_async.errors.RedisUnavailableError` when the claim got no answer
        (then nothing was done: the entry is taken again after reconnecting)."""
        event = record.event
        if event is None:
            return
        try:
            async with self._claiming:
                source = _StreamRef(record.id, record.repeat)
                now = self._clock()
                self._prune(now)
                target = self._target(event)
                if target is None:
                    # Nothing here to resolve: its fingerprint is not remembered, so that a
                    # later identical event (a repeat) can still be the outcome of a write
                    # of this tracker's. A repeat is a duplicate; a first delivery is kept.
                    if record.repeat:
                        self.duplicates += 1
                    else:
                        self._unsolicited(now, event, source)
                elif _redelivered(event, source, target):
                    self.duplicates += 1
                else:
                    status = await self.bus._claim(record.id, self._owner, self.claim_ttl)
                    if status == _CLAIMED:
                        self.claims += 1
                        self._settle_claimed(event, source)
                    elif status == _TOO_OLD:
                        self._too_old(record.id)
                    else:  # another tracker's outcome: unsolicited here, not remembered
                        self.claims_lost += 1
                        source.taken = True
                        self._unsolicited(self._clock(), event, source)
        except RedisUnavailableError:
            raise
        except Exception:  # a bug must not stop the reader at this entry for ever
            logger.exception("handling stream entry %s failed; skipped it", record.id)

    def _settle_claimed(self, event: AssignmentEvent, source: _StreamRef) -> None:
        """Settle the operation of this tracker's that ``event`` (an entry it claimed) reports
        now, remembering its fingerprint; should the operation have gone while the claim was
        made, the event is an orphan of this tracker's, which keeps its claim."""
        target = self._target(event)
        if target is None or _redelivered(event, source, target):
            self._unsolicited(self._clock(), event, source)
            return
        source.used = True
        self._seen.put(event.fingerprint, target.identity)
        self._settle(target, event)

    def _too_old(self, entry_id: str) -> None:
        logger.warning(
            "skipped stream entry %s: too old to be claimed (its claim lasts %g s from the "
            "entry's time); the operation it fits waits for another event",
            entry_id,
            self.claim_ttl,
        )

    def _claim_orphan(self, entry: _Entry) -> None:
        """An event kept from the stream settles an operation expected only now once claimed
        (in a task: see :meth:`_adopt_from_stream`); one handed to :meth:`resolve` settles it
        at once, as with an ``OperationTracker``."""
        for token, event, source in self._orphans_for(entry):
            if not isinstance(source, _StreamRef):
                self._adopt(entry, token, event)
                return
            if not (source.taken or source.used or _redelivered(event, source, entry)):
                self._start_adoption(entry)
                return

    def _start_adoption(self, entry: _Entry, held: _Kept | None = None) -> None:
        if self._task is None:  # not reading (closed): start() claims it
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # expected from outside the event loop: nowhere to claim it
            logger.warning(
                "an orphan for the %s was not claimed: no running event loop", entry.op.describe()
            )
            return
        task = loop.create_task(
            self._adopt_from_stream(entry, held),
            name=f"flinkey SharedTracker claim ({self.bus.where})",
        )
        self._adopting.add(task)
        task.add_done_callback(self._adopting.discard)

    async def _adopt_from_stream(self, entry: _Entry, held: _Kept | None = None) -> None:
        """Claim the kept events that can report ``entry``'s operation, oldest first (after
        ``held``, a claim that got no answer before), and settle it with the first one
        claimed. One another tracker claimed is passed over (the operation waits on for
        another event); one Redis did not answer for is tried again with backoff while the
        operation is pending, even once the event is no longer kept (it is known to be in
        the stream: nothing else reads it again). An error is logged, never raised."""
        key = id(entry.op)
        try:
            await self._adopt_loop(entry, held)
        except asyncio.CancelledError:
            raise  # (closed: start() takes the claim in flight, kept in _held, up again)
        except Exception:
            logger.exception("claiming a kept event for the %s failed", entry.op.describe())
        kept = self._held.get(key)
        if kept is not None and kept[0] is entry:
            del self._held[key]

    async def _adopt_loop(self, entry: _Entry, held: _Kept | None) -> None:
        tried: set[int] = set()
        backoff = _BACKOFF_FIRST
        warned = False
        while True:
            async with self._claiming:
                self._prune(self._clock())
                if not self._waiting(entry):
                    return
                if held is not None:  # its claim got no answer: still the one to make?
                    by_id, creates = self._candidates(held[1])
                    found: _Kept | None = held if entry in by_id or entry in creates else None
                    held = None
                else:
                    found = next((f for f in self._orphans_for(entry) if f[0] not in tried), None)
                    if found is None:
                        return
                if found is None:
                    continue
                token, event, source = found
                tried.add(token)
                if not isinstance(source, _StreamRef):
                    self._adopt(entry, token, event)
                    return
                if source.taken or source.used or _redelivered(event, source, entry):
                    continue
                self._held[id(entry.op)] = (entry, found)  # in flight: see aclose()
                try:
                    status = await self.bus._claim(source.entry_id, self._owner, self.claim_ttl)
                except RedisUnavailableError as exc:
                    # The reader tells whether Redis is lost: a claim failing alone does not
                    # make the waits poll. The same claim is made again (claiming tells
                    # whether this one was made).
                    log = logger.debug if warned or not self.available else logger.warning
                    log(
                        "the claim of stream entry %s for the %s got no answer (%s); retrying",
                        source.entry_id,
                        entry.op.describe(),
                        exc,
                    )
                    warned = True
                    held = found
                else:
                    self._held.pop(id(entry.op), None)
                    if status != _CLAIMED:
                        if status == _TOO_OLD:
                            self._too_old(source.entry_id)
                        else:
                            self.claims_lost += 1
                        source.taken = True
                        continue
                    self.claims += 1
                    if self._waiting(entry):
                        source.used = True
                        self._adopt(entry, token, event)
                    return  # (else the event stays an orphan of this tracker's, claimed)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _BACKOFF_MAX)

    # -- waiting -------------------------------------------------------------------------------
    async def wait(self, op: PendingOperation, timeout: float | None = 30.0) -> OperationOutcome:  # noqa: ASYNC109
        """The outcome of ``op``: confirmed by its webhook (from any process), or, while Redis
        is unavailable, observed by polling (``confirmed=False``, ``fallback_reason`` set;
        ``op`` then leaves the tracker, so that no later entry is claimed for it).

        Raises:
            OperationFailedError: flinkey reported a failure (or polling proved one).
            OperationTimeoutError: neither arrived within ``timeout`` seconds.
            RuntimeError: this tracker is not waiting for ``op``.
        """
        check_wait(timeout)
        state = op.state
        if state.done or not self.is_pending(op) or not op.can_poll:
            return await super().wait(op, timeout)
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout

        def remaining() -> float | None:
            return None if deadline is None else max(0.0, deadline - loop.time())

        event_task = loop.create_task(state.wait_event())
        tasks: set[asyncio.Future[Any]] = {event_task}
        poll_task: asyncio.Task[OperationOutcome] | None = None
        reason = self.unavailable_reason
        try:
            if reason is None and self._down is not None:
                down_task = loop.create_task(self._down.wait())
                tasks.add(down_task)
                await asyncio.wait(
                    {event_task, down_task},
                    timeout=remaining(),
                    return_when=asyncio.FIRST_COMPLETED,
                )
                reason = self.unavailable_reason
            if not event_task.done() and reason is not None and remaining() != 0.0:
                self.fallbacks += 1
                reason = f"Redis unavailable: {reason}"
                logger.debug("waiting for the %s by polling: %s", op.describe(), reason)
                poll_task = loop.create_task(
                    op.poll(
                        remaining(),
                        poll_interval=self.poll_interval,
                        max_poll_interval=self.max_poll_interval,
                        reason=reason,
                    )
                )
                tasks.add(poll_task)
                await asyncio.wait(
                    {event_task, poll_task},
                    timeout=remaining(),
                    return_when=asyncio.FIRST_COMPLETED,
                )
            if event_task.done():
                return op.result()
            if poll_task is not None and poll_task.done():
                try:
                    return poll_task.result()
                except OperationTimeoutError as exc:
                    raise OperationTimeoutError(
                        f"the {op.describe()} was not confirmed within {timeout} s ({reason}; "
                        f"no webhook arrived meanwhile), and: {exc}"
                    ) from None
            raise OperationTimeoutError(
                f"the {op.describe()} was not confirmed within {timeout} s"
                + (f" ({reason}; polling did not observe it either)" if reason else "")
                + ": no matching webhook reached any receiver publishing to Redis at "
                f"{self.bus.where}. Check that the webhook URL registered in the flinkey Portal "
                "reaches such a receiver and that its secret matches; the write may still be "
                "applied later"
            )
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if state.done:  # settled by polling: no entry is claimed for it any more
                self.discard(op)
