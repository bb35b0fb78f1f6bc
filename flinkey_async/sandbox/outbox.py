"""The webhook outbox: every outcome payload, and its delivery to the webhook URL.

Each payload the sandbox produces (an applied write, an unsolicited delete of an uninstall) is
appended to :attr:`Sandbox.outcomes` and, when a webhook URL is set, queued for delivery. One
worker POSTs the payloads in order, with ``Content-Type: application/json``,
``Target-Webhook-Address`` (the URL posted to) and, when a secret is set, the ``Secret``
header; the URL and the secret are read when a payload is sent, so they
may be changed at any time. Every attempt is recorded in :attr:`Sandbox.deliveries` as a
:class:`Delivery`.

Webhook faults (:class:`~flinkey_async.sandbox.faults.WebhookFaults`), drawn per payload: a
dropped payload is recorded (``dropped=True``) and never sent; a delayed one is sent
``delay`` seconds later by a task of its own, so it can overtake or be overtaken by others; a
duplicated one is sent twice, one right after the other.

The sender never follows redirects: a 3xx answer is recorded as the delivery's status, like any
other non-2xx one, and the body and its ``Secret`` go nowhere else. It ignores proxy settings
from the environment (``trust_env=False``). Memory stays bounded: both logs are
:class:`RecordLog` s keeping the last ``config.max_records`` entries.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any, SupportsIndex, TypeVar, overload

import aiohttp
import attrs

from .._wire import SECRET_HEADER, dumps
from .faults import WebhookFault

#: The delivery URL, sent with every webhook (documented on the newer webhook page).
TARGET_HEADER = "Target-Webhook-Address"

__all__ = ["Delivery", "Outbox", "RecordLog"]

log = logging.getLogger("flinkey_async.sandbox")


@attrs.define
class Delivery:
    """One webhook delivery attempt.

    Attributes:
        payload: the JSON payload (as a dict).
        body: the exact bytes POSTed.
        url: the target URL.
        status: the receiver's HTTP status, or None when nothing was received (an error, or a
            dropped delivery).
        error: the transport error, if any.
        duplicate: this is the second delivery of a duplicated payload (fault injection).
        delayed: extra seconds this delivery was held back (fault injection).
        dropped: the delivery was dropped (fault injection) and never sent.
        at: wall-clock time of the attempt (``time.time()``).
    """

    payload: dict[str, Any]
    body: bytes
    url: str
    status: int | None = None
    error: str | None = None
    duplicate: bool = False
    delayed: float = 0.0
    dropped: bool = False
    at: float = attrs.field(factory=time.time)


_T = TypeVar("_T")


class RecordLog(deque[_T]):
    """A ``collections.deque`` with a ``maxlen`` that reads like a list.

    Appending to a full log drops its oldest entry. Indexing, ``len``, iteration and ``in``
    work as on a deque; a slice gives a list (``log[2:]``), and a log equals a list (or
    deque) with the same items (``sandbox.outcomes == []``).
    """

    @overload
    def __getitem__(self, index: SupportsIndex) -> _T: ...

    @overload
    def __getitem__(self, index: slice) -> list[_T]: ...

    def __getitem__(self, index: SupportsIndex | slice) -> _T | list[_T]:
        if isinstance(index, slice):
            return list(self)[index]
        return super().__getitem__(index)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, list | deque):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    def __repr__(self) -> str:
        return f"RecordLog({list(self)!r}, maxlen={self.maxlen})"


class Outbox:
    """Records outcome payloads and delivers them to :attr:`url`.

    ``decide`` draws the fault of one delivery (the sandbox's fault injector, which may be
    replaced at run time). :meth:`start` and :meth:`stop` run inside the sandbox's event loop.
    """

    def __init__(
        self,
        outcomes: RecordLog[dict[str, Any]],
        deliveries: RecordLog[Delivery],
        *,
        url: str | None,
        secret: str | None,
        timeout: float,
        decide: Callable[[], WebhookFault],
    ) -> None:
        self.outcomes = outcomes
        self.deliveries = deliveries
        self.url = url
        self.secret = secret
        self._timeout = timeout
        self._decide = decide
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._delayed: set[asyncio.Task[None]] = set()
        self._worker: asyncio.Task[None] | None = None
        self._client: aiohttp.ClientSession | None = None

    def emit(self, payload: dict[str, Any]) -> None:
        """Record ``payload`` and, when a webhook URL is set, queue its delivery."""
        self.outcomes.append(payload)
        if self.url is not None:
            self._queue.put_nowait(payload)

    @property
    def idle(self) -> bool:
        """Nothing is queued and no delayed delivery is pending."""
        return self._queue.empty() and not self._delayed

    async def join(self) -> None:
        """Wait until every queued delivery, and every delayed one pending now, is done."""
        await self._queue.join()
        if self._delayed:
            await asyncio.gather(*list(self._delayed), return_exceptions=True)

    def start(self) -> None:
        """Open the HTTP client and start the delivery worker."""
        self._client = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self._timeout), trust_env=False
        )
        self._worker = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Abandon pending deliveries and close the HTTP client."""
        tasks = [*([self._worker] if self._worker is not None else []), *self._delayed]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._worker = None
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def _run(self) -> None:
        while True:
            payload = await self._queue.get()
            try:
                url = self.url
                if url is None:
                    continue
                secret = self.secret
                fault = self._decide()
                if fault.drop:
                    self.deliveries.append(Delivery(payload, dumps(payload), url, dropped=True))
                elif fault.delay > 0:
                    task = asyncio.create_task(self._deliver(url, secret, payload, fault))
                    self._delayed.add(task)
                    task.add_done_callback(self._delayed.discard)
                else:
                    await self._deliver(url, secret, payload, fault)
            except Exception:
                log.exception("sandbox: webhook delivery failed")
            finally:
                self._queue.task_done()

    async def _deliver(
        self, url: str, secret: str | None, payload: dict[str, Any], fault: WebhookFault
    ) -> None:
        if fault.delay > 0:
            await asyncio.sleep(fault.delay)
        await self._post(url, secret, payload, duplicate=False, delayed=fault.delay)
        if fault.duplicate:
            await self._post(url, secret, payload, duplicate=True, delayed=fault.delay)

    async def _post(
        self,
        url: str,
        secret: str | None,
        payload: dict[str, Any],
        *,
        duplicate: bool,
        delayed: float,
    ) -> None:
        body = dumps(payload)
        # The newer webhook page documents a second header, "a freely selectable address at
        # which webhook can be received": the delivery's own URL, as flinkey's dispatcher
        # would send it (receivers treat it as information only).
        headers = {"Content-Type": "application/json", TARGET_HEADER: url}
        if secret is not None:
            headers[SECRET_HEADER] = secret
        delivery = Delivery(payload, body, url, duplicate=duplicate, delayed=delayed)
        client = self._client
        try:
            if client is None:
                raise RuntimeError("the sandbox is not running")
            # never follow a redirect: it would re-POST the body and its Secret elsewhere
            async with client.post(
                url, data=body, headers=headers, allow_redirects=False
            ) as response:
                await response.read()
                delivery.status = response.status
            if delivery.status >= 300:
                log.warning("sandbox: webhook %s answered %s", url, delivery.status)
        except (aiohttp.ClientError, TimeoutError, OSError, RuntimeError) as exc:
            delivery.error = f"{type(exc).__name__}: {exc}"
            log.warning("sandbox: webhook delivery to %s failed: %s", url, delivery.error)
        self.deliveries.append(delivery)
