"""FlinkeyClient: the entry point. Owns the session layer and exposes the resources."""

from __future__ import annotations

from types import TracebackType

import aiohttp
from yarl import URL

from ._session import DEFAULT_TIMEOUT, SessionLayer
from ._validate import check_id
from .auth import PasswordGrant, StaticToken
from .operations import OperationWatcher
from .resources.assignments import Assignments
from .retry import RetryPolicy

__all__ = ["DEFAULT_BASE_URL", "UAT_BASE_URL", "FlinkeyClient"]

#: Production API.
DEFAULT_BASE_URL = "https://api.flinkey.de/v3"
#: flinkey's test environment (access on request from flinkey).
UAT_BASE_URL = "https://api-uat.flinkey.de/v3"


class FlinkeyClient:
    """An asyncio client for the flinkey API v3.

    Use it as ``async with FlinkeyClient(...) as client:`` or call :meth:`aclose` when done;
    create one per application and share it: it keeps one connection pool.

    Args:
        api_key: the ``flinkey-API-Key`` from the flinkey Portal's Developer page.
        customer_id: the customer database id sent as ``Customer-ID``.
        token: a bearer token obtained elsewhere (cannot be refreshed), or
        username, password: an API manager's credentials; tokens are then fetched and refreshed
            automatically.
        base_url: defaults to production; :data:`UAT_BASE_URL` or a sandbox URL also work.
        session: an ``aiohttp.ClientSession`` to use; the client never closes it.
        timeout: per-request timeout (default 30 s total, 10 s to connect), also on a
            caller's ``session``.
        retry: a :class:`RetryPolicy` (default: 3 retries, never duplicating a write).
        connection_limit: size of the connection pool the client creates.
        tracker: an :class:`~flinkey_async.webhooks.OperationTracker` fed by a webhook
            receiver; writes are then confirmed by flinkey's webhooks. Without one,
            ``PendingOperation.wait()`` polls the read endpoints. Also settable later as
            :attr:`tracker`.
    """

    def __init__(
        self,
        api_key: str,
        customer_id: int,
        *,
        token: str | None = None,
        username: str | None = None,
        password: str | None = None,
        base_url: str | URL = DEFAULT_BASE_URL,
        session: aiohttp.ClientSession | None = None,
        timeout: aiohttp.ClientTimeout = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        connection_limit: int = 100,
        tracker: OperationWatcher | None = None,
    ) -> None:
        if not isinstance(api_key, str) or not api_key:
            raise TypeError("api_key must be a non-empty string")
        check_id(customer_id, "customer_id")
        if token is not None and (username is not None or password is not None):
            raise TypeError("give either token= or username= and password=, not both")
        if token is None and (not username or not password):
            raise TypeError("credentials missing: give token= or both username= and password=")
        self._session = SessionLayer(
            api_key=api_key, customer_id=customer_id, base_url=base_url, session=session,
            timeout=timeout, retry=retry, connection_limit=connection_limit,
        )
        if token is not None:
            self._session.token_provider = StaticToken(token)
        else:
            assert username is not None and password is not None
            self._session.token_provider = PasswordGrant(username, password,
                                                         self._session.fetch_token)
        #: The :class:`~flinkey_async.webhooks.OperationTracker` that confirms writes from
        #: webhooks, or ``None`` (``PendingOperation.wait()`` then polls). Setting it affects
        #: writes sent afterwards.
        self.tracker: OperationWatcher | None = tracker
        #: Assignment operations.
        self.assignments = Assignments(self)

    @property
    def customer_id(self) -> int:
        return self._session.customer_id

    @property
    def base_url(self) -> URL:
        return self._session.base_url

    async def aclose(self) -> None:
        """Close the connection pool (a caller-supplied session is left open)."""
        await self._session.aclose()

    async def __aenter__(self) -> FlinkeyClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"FlinkeyClient(base_url={str(self.base_url)!r}, customer_id={self.customer_id})"
