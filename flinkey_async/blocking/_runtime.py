"""The machinery under the blocking client: one event loop in one thread, and calls into it.

A :class:`Runner` starts anyio's blocking portal (an asyncio event loop in a daemon thread),
makes the asynchronous :class:`~flinkey_async.FlinkeyClient` *in* that loop, and from then on
every coroutine of the client, its resources and its pending operations runs there: the
aiohttp session is made, used and closed by that one loop, so no call can meet a closed loop.
Calling threads only wait for results; any number of them may wait at once.

The generated classes (:mod:`._generated`) are thin: each method forwards to
:meth:`Runner.call` (a coroutine; a pending operation it returns is wrapped in a
``BlockingOperation``), :meth:`Runner.iterate` (an async iterator) or :meth:`Runner.call_sync`
(a plain method, run in the loop's thread so that it never races the loop).
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import functools
import threading
import typing
import warnings
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any, Generic, ParamSpec, Self, TypeVar

from anyio.from_thread import BlockingPortal, start_blocking_portal

from ..auth import as_secret
from ..client import FlinkeyClient as AsyncFlinkeyClient
from ..errors import ClientClosedError
from ..operations import PendingOperation

__all__ = ["ClientBase", "OperationBase", "ResourceBase", "Runner", "secret_on_entry"]

P = ParamSpec("P")
T = TypeVar("T")
W = TypeVar("W")

#: How long a calling thread waits at most between checks for an interrupt (a KeyboardInterrupt
#: is seen at once on POSIX; where a signal cannot interrupt a wait, within this time).
_WAKE_INTERVAL = 0.25
#: After an interrupt, how long the calling thread waits for the cancelled coroutine to finish
#: (its ``finally`` blocks, the connection it was using given back) before re-raising.
_CANCEL_GRACE = 5.0

_CLOSED = "this FlinkeyClient is closed"


def secret_on_entry(value: T, argument: str) -> T:
    """A credential wrapped in a :class:`~flinkey_async.auth.Secret` on entry (``None`` stays
    ``None``), so that no frame of the blocking constructor holds it as a plain string. Used for
    parameters typed ``str | Secret``: the result is still of that type."""
    result: Any = as_secret(value, argument)  # type: ignore[arg-type]
    return typing.cast(T, result)


class Runner:
    """The event loop of one blocking client and its views: anyio's blocking portal, and the
    asynchronous client made in it (:attr:`client`)."""

    def __init__(self, factory: Callable[[], AsyncFlinkeyClient]) -> None:
        self._lock = threading.Lock()
        self._closed = False
        portal_cm = start_blocking_portal(name="flinkey-blocking")
        self.portal: BlockingPortal = portal_cm.__enter__()
        self._portal_cm: AbstractContextManager[BlockingPortal] | None = portal_cm
        try:
            self._loop, self._thread = self.portal.call(_loop_and_thread)
            self._thread_id = self._thread.ident
            #: The asynchronous client, made (and later closed) in the loop's thread.
            self.client: AsyncFlinkeyClient = self.portal.call(factory)
        except BaseException:
            self._closed = True
            self._stop_portal()
            raise
        _OPEN.add(self)
        _reap_abandoned()

    @property
    def closed(self) -> bool:
        """True once :meth:`close` began (or the client was collected unclosed)."""
        return self._closed

    def _in_loop_thread(self) -> bool:
        return threading.get_ident() == self._thread_id

    # -- calls ---------------------------------------------------------------------------------
    def call(self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn(*args, **kwargs)`` in the loop and return its result; its exception is
        raised unchanged. An interrupt (``KeyboardInterrupt``) of the waiting thread cancels
        the coroutine, waits briefly for it to unwind and is re-raised."""
        result: T = self._run(functools.partial(fn, *args, **kwargs), awaited=True)
        return result

    def call_sync(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run the plain function ``fn`` in the loop's thread (directly, once the loop is gone:
        nothing can race it then)."""
        if self._closed or self._in_loop_thread():
            return fn(*args, **kwargs)
        try:
            result: T = self._run(functools.partial(fn, *args, **kwargs), awaited=False)
        except ClientClosedError:
            if self._closed:  # closed in between: run it here
                return fn(*args, **kwargs)
            raise
        return result

    def iterate(
        self,
        owner: object,
        fn: Callable[P, AsyncIterator[T]],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> Iterator[T]:
        """Make the async iterator in the loop (so that argument errors raise here, as they do
        for the asynchronous method) and return a plain iterator over it: each ``next()``
        runs one step in the loop. Leaving the loop early (``break``) or dropping the iterator
        closes the async iterator in the loop. The iterator keeps ``owner`` (the resource that
        made it, and through it the client) alive."""
        source = self._run(functools.partial(fn, *args, **kwargs), awaited=False)
        return self._steps(owner, source)

    def _steps(self, owner: object, source: AsyncIterator[T]) -> Iterator[T]:
        # ``owner`` is only held: the generator's frame keeps it while the iteration lasts
        async def step() -> tuple[bool, Any]:
            try:
                return True, await source.__anext__()
            except StopAsyncIteration:
                return False, None

        try:
            while True:
                more, item = self.call(step)
                if not more:
                    return
                yield item
        finally:
            aclose = getattr(source, "aclose", None)
            if aclose is not None and not self._closed and not self._in_loop_thread():
                # once the loop stopped, it closed the generator itself
                with contextlib.suppress(ClientClosedError):
                    self.call(aclose)

    def _run(self, fn: Callable[[], Any], *, awaited: bool = True, closing: bool = False) -> Any:
        if self._closed and not closing:
            raise ClientClosedError(_CLOSED)
        if self._in_loop_thread():
            raise RuntimeError(
                "a blocking FlinkeyClient cannot be called from its own event loop's thread "
                "(from a tracker or receiver callback running there); use the asynchronous "
                "client there"
            )
        finished = threading.Event()
        abandoned = threading.Event()
        running: list[asyncio.Task[Any]] = []

        async def run() -> Any:
            try:
                if abandoned.is_set():  # interrupted before the loop took the call
                    raise asyncio.CancelledError
                task = asyncio.current_task()
                if task is not None:
                    running.append(task)
                result = fn()
                return await result if awaited else result
            finally:
                finished.set()

        try:
            future = self.portal.start_task_soon(run)
        except RuntimeError:  # the portal stopped since the check above
            raise ClientClosedError(_CLOSED) from None
        except BaseException:
            # KeyboardInterrupt while the loop had not taken the call yet (it was busy): the
            # call must not start later, unseen (a write sent after the caller was told it
            # was interrupted); one that has just started is cancelled like any other.
            abandoned.set()
            for task in running:
                task.get_loop().call_soon_threadsafe(task.cancel)
            finished.wait(_CANCEL_GRACE)
            raise
        try:
            while not concurrent.futures.wait((future,), timeout=_WAKE_INTERVAL).done:
                pass
        except BaseException:  # KeyboardInterrupt (or another asynchronous exception)
            future.cancel()  # anyio cancels the task's scope
            finished.wait(_CANCEL_GRACE)
            raise
        try:
            return future.result()
        except concurrent.futures.CancelledError:
            raise ClientClosedError("the FlinkeyClient was closed during the call") from None

    # -- closing -------------------------------------------------------------------------------
    def close_client(self, client: AsyncFlinkeyClient, timeout: float) -> None:
        """Close a view's asynchronous client (the loop keeps running for the others)."""
        # ClientClosedError: the root closed meanwhile, and with it every view
        if not self._closed:
            with contextlib.suppress(ClientClosedError):
                self.call(client.aclose, timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Close the asynchronous client (calls in flight get ``timeout`` seconds), cancel
        what is still running in the loop (a ``wait()`` polling, say), stop the loop and join
        its thread. Harmless when already closed."""
        if self._in_loop_thread():
            raise RuntimeError("close() cannot be called from the client's own event loop")
        with self._lock:
            if self._closed and self._portal_cm is None:
                return
            self._closed = True
            _OPEN.discard(self)
            try:
                self._run(functools.partial(self.client.aclose, timeout), closing=True)
            except ClientClosedError:  # the loop had already stopped
                pass
            finally:
                self._stop_portal()
        _reap_abandoned()

    def _stop_portal(self) -> None:
        portal_cm, self._portal_cm = self._portal_cm, None
        if portal_cm is None:
            return
        with contextlib.suppress(RuntimeError):  # already stopping
            self.portal.call(self.portal.stop, True)
        portal_cm.__exit__(None, None, None)  # joins the thread

    def abandon(self) -> None:
        """The client was collected without :meth:`close`: warn, and close it in the loop
        without waiting here (a finalizer may run in any thread, the loop's included). The
        runner is kept until its thread has ended, and its portal is then let go of by a
        thread that may join it (the next runner made, or the exit)."""
        if self._closed:
            return
        self._closed = True
        _OPEN.discard(self)
        _ABANDONED.add(self)
        portal, client = self.portal, self.client

        async def shutdown() -> None:
            try:
                await client.aclose()
            finally:
                await portal.stop(cancel_remaining=True)

        def start() -> None:
            task = asyncio.get_running_loop().create_task(shutdown())
            _SHUTTING_DOWN.add(task)
            task.add_done_callback(_SHUTTING_DOWN.discard)

        with contextlib.suppress(RuntimeError):  # the loop is already gone
            self._loop.call_soon_threadsafe(start)
        # last: with warnings turned into errors, the closing above is already under way
        warnings.warn(
            "a flinkey_async.blocking.FlinkeyClient was never closed: use `with "
            "FlinkeyClient(...) as client:` or call close(); it is being closed now",
            ResourceWarning,
            stacklevel=2,
        )


def _loop_and_thread() -> tuple[asyncio.AbstractEventLoop, threading.Thread]:
    return asyncio.get_running_loop(), threading.current_thread()


def _reap_abandoned() -> None:
    for runner in list(_ABANDONED):
        if not runner._thread.is_alive():
            _ABANDONED.discard(runner)
            runner._stop_portal()


#: Runners not closed yet: closed at interpreter exit (the loop thread is a daemon thread, which
#: is still running when ``atexit`` handlers run).
_OPEN: weakref.WeakSet[Runner] = weakref.WeakSet()
#: Runners of clients collected unclosed, until their thread has ended and been joined.
_ABANDONED: set[Runner] = set()
#: Shutdowns started by :meth:`Runner.abandon` (asyncio keeps only weak references to tasks).
_SHUTTING_DOWN: set[asyncio.Task[None]] = set()


@atexit.register
def _close_at_exit() -> None:
    for runner in list(_OPEN):
        with contextlib.suppress(Exception):  # one failure must not keep the others open
            runner.close()
    for runner in list(_ABANDONED):
        _ABANDONED.discard(runner)
        with contextlib.suppress(Exception):
            runner._stop_portal()


class ResourceBase(Generic[W]):
    """A blocking resource: the asynchronous resource (``_async``) and the runner of its
    client. ``_owner`` keeps the client that made it alive (an unclosed client is closed when
    the last object made from it is gone)."""

    __slots__ = ("_async", "_owner", "_runner")

    def __init__(self, owner: ClientBase, wrapped: W) -> None:
        self._runner = owner._runner
        self._owner = owner
        self._async = wrapped

    def __repr__(self) -> str:
        return f"<blocking {type(self._async).__name__} of {self._owner!r}>"


class OperationBase:
    """A blocking :class:`~flinkey_async.PendingOperation`: ``wait()`` blocks, ``done()``,
    ``result()`` and every attribute are the pending operation's (:attr:`async_operation`)."""

    __slots__ = ("_async", "_owner", "_runner")

    def __init__(self, runner: Runner, owner: object, wrapped: PendingOperation) -> None:
        self._runner = runner
        self._owner = owner
        self._async = wrapped

    @property
    def async_operation(self) -> PendingOperation:
        """The :class:`~flinkey_async.PendingOperation` itself (what
        :attr:`OperationOutcome.operation <flinkey_async.OperationOutcome.operation>` holds,
        and what a tracker knows)."""
        return self._async

    def __repr__(self) -> str:
        return f"Blocking{self._async!r}"


class ClientBase:
    """The lifecycle of a blocking client: the runner it shares with its views, closing, the
    context manager. A client made by the constructor owns the runner; a view made by
    ``for_customer`` shares it and keeps its parent alive."""

    _runner: Runner
    _async: AsyncFlinkeyClient
    _parent: ClientBase | None

    def _start(self, factory: Callable[[], AsyncFlinkeyClient]) -> None:
        self._parent = None
        self._runner = Runner(factory)
        self._async = self._runner.client
        weakref.finalize(self, self._runner.abandon).atexit = False

    def _view(self, client: AsyncFlinkeyClient) -> Self:
        view = object.__new__(type(self))
        view._parent = self
        view._runner = self._runner
        view._async = client
        return view

    @property
    def portal(self) -> BlockingPortal:
        """The anyio :class:`~anyio.from_thread.BlockingPortal` running this client's event
        loop: ``client.portal.call(coroutine_function, *args)`` runs anything else there (a
        webhook receiver feeding the client's tracker, for instance)."""
        return self._runner.portal

    def close(self, timeout: float = 10.0) -> None:
        """Close the client: new calls raise :class:`~flinkey_async.errors.ClientClosedError`,
        calls in flight get up to ``timeout`` seconds to finish, then the connection pool is
        closed, whatever still runs in the loop (a ``wait()`` polling) is cancelled and the
        loop's thread ends. Closing a view (``for_customer``) only stops the view. Closing
        again does nothing."""
        if self._parent is None:
            self._runner.close(timeout)
        else:
            self._runner.close_client(self._async, timeout)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        client = getattr(self, "_async", None)
        if client is None:  # a constructor that raised
            return "flinkey_async.blocking.FlinkeyClient(<not set up>)"
        return f"flinkey_async.blocking.{client!r}"

    def __reduce__(self) -> Any:
        raise TypeError(
            "a FlinkeyClient cannot be pickled: it holds credentials, a connection pool and "
            "an event loop thread; make one per process"
        )
