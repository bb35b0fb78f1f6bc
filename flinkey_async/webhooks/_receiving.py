"""What both webhook receivers do, whatever serves them (framework-free; no I/O of its own).

:class:`ReceiverCore` holds a receiver's settings, counters and bookkeeping: the secret check,
the body read within a time and size limit, parsing, the refusal of a bad request (status,
text, counter, rate-limited warning), duplicate detection (through the tracker, or a bounded
LRU of fingerprints), the handler calls and their shutdown. The aiohttp receiver
(:mod:`.receiver`) and the ASGI one (:mod:`.asgi`) only translate their framework's request
and response to it.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterable, Awaitable, Callable, Mapping
from typing import Final, NoReturn, Protocol

import attrs

from ..auth import Secret
from ..errors import FlinkeyError, WebhookAuthenticationError, WebhookError, WebhookPayloadError
from ._tasks import LRU, Callbacks, Warnings, logger, positive
from .events import (
    DEFAULT_MAX_BYTES,
    AssignmentEvent,
    EventHandler,
    EventKind,
    parse_body,
    secret_problem,
    wrap_secret,
)
from .tracker import OperationTracker

__all__ = [
    "DEFAULT_BODY_TIMEOUT",
    "DEFAULT_PATH",
    "DEFAULT_PUBLISH_TIMEOUT",
    "KIND_ROUTES",
    "BodyTimeout",
    "BodyTooLarge",
    "ReceiverCore",
    "ReceiverStats",
    "Refusal",
    "WebhookPublisher",
    "check_path",
    "collect_body",
]

#: Default path of the receiver's route.
DEFAULT_PATH: Final = "/webhooks/flinkey"

#: Default seconds to read a request body in.
DEFAULT_BODY_TIMEOUT: Final = 10.0

#: Default seconds a receiver gives its publisher to record one event before answering 503.
DEFAULT_PUBLISH_TIMEOUT: Final = 5.0

#: The last path segment of a route that takes the events of one operation, and its kind.
KIND_ROUTES: Final[Mapping[str, EventKind]] = {
    "created": "create",
    "updated": "update",
    "deleted": "delete",
}

#: How long cancelled handler calls get to finish once cancelled, at shutdown.
_CANCEL_GRACE: Final = 1.0


@attrs.define
class ReceiverStats:
    """Counters of a webhook receiver (:class:`~flinkey_async.webhooks.WebhookReceiver` or
    :class:`~flinkey_async.webhooks.ASGIWebhookReceiver`)."""

    #: Requests received.
    received: int = 0
    #: Events handed on (to the tracker and the handler).
    delivered: int = 0
    #: Repeated deliveries recognised and not handed on again.
    duplicates: int = 0
    #: Requests refused with 401 (wrong or missing secret).
    unauthorized: int = 0
    #: Requests refused with 413 (body too large).
    too_large: int = 0
    #: Requests refused with 400 (malformed body).
    malformed: int = 0
    #: Requests refused with 408 (body not read within ``body_timeout``).
    timed_out: int = 0
    #: Handler calls dropped because ``max_handler_tasks`` + ``max_handler_backlog`` calls
    #: were running or waiting (the event still reached the tracker).
    handler_dropped: int = 0
    #: Events recorded by the receiver's ``publisher`` (first deliveries and repeats).
    published: int = 0
    #: Requests answered 503 because the ``publisher`` could not record the event (flinkey
    #: retries them).
    unavailable: int = 0


class WebhookPublisher(Protocol):
    """Records every verified event where other processes read it (implemented by
    :class:`~flinkey_async.shared.confirmations.RedisWebhookBus`): a receiver with a
    publisher answers 204 only once :meth:`publish` returned, and 503 when it raised."""

    async def publish(self, event: AssignmentEvent) -> bool:
        """Record ``event``; True for its first delivery, False for a repeated one (recorded
        as such). Raises a :class:`~flinkey_async.errors.FlinkeyError` when it could not
        record it."""
        ...


class BodyTooLarge(WebhookPayloadError):
    """The body is larger than ``max_bytes`` (413)."""


class BodyTimeout(WebhookPayloadError):
    """The body was not read within ``body_timeout`` (408)."""


@attrs.frozen
class Refusal:
    """How to answer a refused request: the status, a short text, and whether to close the
    connection once answered (the body did not arrive in time: its rest is not waited for)."""

    status: int
    text: str
    close: bool = False
    retry_after: int | None = None


def check_path(path: str) -> str:
    """A route path: starts with ``/`` and does not end with one (``/`` itself excepted)."""
    if not path.startswith("/") or (path.endswith("/") and path != "/"):
        raise ValueError(f"path must start with '/' and not end with '/', got {path!r}")
    return path


async def collect_body(chunks: AsyncIterable[bytes], length: int | None, limit: int) -> bytes:
    """The body from its chunks, refused (:class:`BodyTooLarge`) as soon as its announced
    ``length`` or the bytes read so far exceed ``limit``: a larger body is never held."""
    if length is not None and length > limit:
        raise BodyTooLarge(f"body of {length} bytes, more than the {limit} accepted")
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"body larger than the {limit} bytes accepted")
        parts.append(chunk)
    return b"".join(parts)


class ReceiverCore:
    """The framework-free part of a webhook receiver (see the module's docstring); the
    arguments are documented on :class:`~flinkey_async.webhooks.WebhookReceiver`."""

    def __init__(
        self,
        *,
        secret: str | Secret | None,
        tracker: OperationTracker | None = None,
        handler: EventHandler | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
        memory: int = 10_000,
        body_timeout: float = DEFAULT_BODY_TIMEOUT,
        max_handler_tasks: int = 100,
        max_handler_backlog: int = 1000,
        shutdown_timeout: float = 10.0,
        warning_interval: float = 60.0,
        publisher: WebhookPublisher | None = None,
        publish_timeout: float = DEFAULT_PUBLISH_TIMEOUT,
    ) -> None:
        secret = wrap_secret(secret)
        if max_bytes < 1:
            raise ValueError("max_bytes must be positive")
        if not shutdown_timeout >= 0:
            raise ValueError("shutdown_timeout must be a number of seconds >= 0")
        self._secret = secret
        self.tracker = tracker
        self.handler = handler
        self.max_bytes = max_bytes
        self.body_timeout = positive(body_timeout, "body_timeout")
        self.shutdown_timeout = shutdown_timeout
        self.publisher = publisher
        self.publish_timeout = positive(publish_timeout, "publish_timeout")
        self.stats = ReceiverStats()
        self._recent = LRU(memory)
        self._warnings = Warnings(warning_interval)
        self._callbacks = Callbacks(
            "handler", limit=max_handler_tasks, backlog=max_handler_backlog, warnings=self._warnings
        )

    def __repr__(self) -> str:
        secured = "with secret" if self._secret is not None else "without secret"
        shared = ", publisher=True" if self.publisher is not None else ""
        return f"{type(self).__name__}({secured}, tracker={self.tracker is not None}{shared})"

    def __reduce__(self) -> NoReturn:
        raise TypeError(f"a {type(self).__name__} cannot be pickled: it holds the webhook secret")

    @property
    def _tasks(self) -> set[asyncio.Task[None]]:
        """The running and waiting handler calls."""
        return self._callbacks.tasks

    # -- one request -----------------------------------------------------------------------

    def _secret_problem(self, headers: Mapping[str, str]) -> str | None:
        """Why the request's ``Secret`` headers are refused, or None (also without a secret)."""
        return None if self._secret is None else secret_problem(headers, self._secret)

    async def _accept(
        self, problem: str | None, read: Callable[[], Awaitable[bytes]], kind: EventKind | None
    ) -> AssignmentEvent:
        """The event of one request whose secret check gave ``problem``: its body is read with
        ``read()`` within ``body_timeout`` and parsed. Raises :class:`WebhookError` (the
        request's headers are never a local of this frame)."""
        if problem is not None:
            raise WebhookAuthenticationError(problem)
        try:
            async with asyncio.timeout(self.body_timeout):
                body = await read()
        except TimeoutError:
            raise BodyTimeout(f"webhook body not received within {self.body_timeout:g} s") from None
        return parse_body(body, kind, self.max_bytes)

    def _refusal(self, exc: WebhookError, remote: str | None) -> Refusal:
        """Count and log (rate-limited) a refused request; how to answer it."""
        if isinstance(exc, WebhookAuthenticationError):
            self.stats.unauthorized += 1
            reason, refusal = "unauthorized", Refusal(401, "missing or wrong Secret header")
        elif isinstance(exc, BodyTooLarge):
            self.stats.too_large += 1
            text = f"body larger than {self.max_bytes} bytes"
            reason, refusal = "too_large", Refusal(413, text)
        elif isinstance(exc, BodyTimeout):
            self.stats.timed_out += 1
            reason, refusal = "timed_out", Refusal(408, str(exc), close=True)
        else:
            self.stats.malformed += 1
            reason, refusal = "malformed", Refusal(400, str(exc))
        self._warnings.warn(reason, "webhook from %s refused: %s", remote, exc)
        return refusal

    async def take(self, event: AssignmentEvent, remote: str | None = None) -> Refusal | None:
        """Record one verified event with the publisher (if any), then :meth:`deliver` it;
        the :class:`Refusal` to answer (503) when the publisher could not record it within
        ``publish_timeout`` (nothing is handed on then: flinkey delivers it again), else
        None (answer 204)."""
        repeat = False
        if self.publisher is not None:
            try:
                async with asyncio.timeout(self.publish_timeout):
                    repeat = not await self.publisher.publish(event)
            except (FlinkeyError, TimeoutError) as exc:
                self.stats.unavailable += 1
                reason = exc if isinstance(exc, FlinkeyError) else "timed out"
                self._warnings.warn(
                    "unavailable", "webhook from %s answered 503: not published: %s", remote, reason
                )
                return Refusal(503, "the event could not be recorded; retry later", retry_after=1)
            self.stats.published += 1
        self.deliver(event, repeat=repeat)
        return None

    def deliver(self, event: AssignmentEvent, *, repeat: bool = False) -> bool:
        """Hand one parsed event to the tracker and the handler; False for a repeated
        delivery (nothing is handed on). ``repeat``: the publisher knows it as a repeated
        delivery (the tracker, when there is one, still decides, since two identical writes
        in flight produce identical events)."""
        if self.tracker is not None:
            resolution = self.tracker.resolve(event)
            # A repeat the publisher recorded and that resolved nothing here was handed on
            # where it first arrived (perhaps another process).
            if resolution.duplicate or (repeat and resolution.operation is None):
                self.stats.duplicates += 1
                return False
            event = resolution.event
        else:
            fingerprint = event.fingerprint
            known = fingerprint in self._recent
            self._recent.put(fingerprint, None)
            if repeat or known:
                self.stats.duplicates += 1
                return False
        self.stats.delivered += 1
        if self.handler is not None and not self._callbacks.call(self.handler, event):
            self.stats.handler_dropped += 1
        return True

    # -- handler calls -----------------------------------------------------------------------

    def _all_tasks(self) -> set[asyncio.Task[None]]:
        tasks = set(self._callbacks.tasks)
        if self.tracker is not None:
            tasks |= self.tracker._tasks
        return tasks

    async def drain(self) -> None:
        """Wait until the handler (and ``on_unsolicited``) calls started so far are done."""
        while True:
            tasks = self._all_tasks()
            if not tasks:
                return
            await asyncio.gather(*tasks, return_exceptions=True)

    async def aclose(self, timeout: float | None = None) -> None:  # noqa: ASYNC109
        """Let running handler (and ``on_unsolicited``) calls finish, for at most ``timeout``
        seconds; then cancel those still running or waiting, and wait for them to end (a
        call that ignores its cancellation is given up after a second, with an error
        logged).

        Args:
            timeout: seconds to wait; None means the receiver's ``shutdown_timeout``;
                ``math.inf`` waits as long as it takes.
        """
        limit = self.shutdown_timeout if timeout is None else timeout
        if not limit >= 0:
            raise ValueError("timeout must be a number of seconds >= 0")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        while tasks := self._all_tasks():
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            await asyncio.wait(tasks, timeout=None if remaining == math.inf else remaining)
        if not tasks:
            return
        logger.warning(
            "cancelling %d webhook handler calls still running after %g s", len(tasks), limit
        )
        for task in tasks:
            task.cancel()
        _done, stuck = await asyncio.wait(tasks, timeout=_CANCEL_GRACE)
        if stuck:
            logger.error("%d webhook handler calls ignored their cancellation", len(stuck))
