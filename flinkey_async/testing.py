"""pytest plugin: test your flinkey integration against the local sandbox, offline.

Installed with flinkey_async (entry point ``pytest11``), so the fixtures are available in any
project that has flinkey_async, pytest and pytest-asyncio installed:

``flinkey_sandbox_config``
    The :class:`~flinkey_async.sandbox.SandboxConfig` used; override this fixture in your
    ``conftest.py`` to change write delay, rate limit, faults, fixture data, ...
``flinkey_sandbox``
    A running :class:`~flinkey_async.sandbox.Sandbox` on a free port of 127.0.0.1 (one per
    test); seed data through ``flinkey_sandbox.store``.
``flinkey_client``
    A :class:`~flinkey_async.FlinkeyClient` bound to it, authenticated with the sandbox's API
    manager (password grant) for the first customer of its data.

Example::

    async def test_booking_creates_assignment(flinkey_client, flinkey_sandbox):
        op = await flinkey_client.assignments.create(car_id=101, user_id=1001, start=start)
        await flinkey_sandbox.drain()      # writes are applied asynchronously
        assert any(a.user_id == 1001 for a in await flinkey_client.assignments.list_for_car(101))

The sandbox needs the ``flinkey_async[sandbox]`` extra; nothing is imported from it until a
fixture is used, so the plugin costs nothing in test runs that do not use it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .client import FlinkeyClient
    from .sandbox import Sandbox, SandboxConfig

__all__ = ["flinkey_client", "flinkey_sandbox", "flinkey_sandbox_config"]


@pytest.fixture
def flinkey_sandbox_config() -> SandboxConfig:
    """The sandbox configuration; override it to change the sandbox's behaviour."""
    from .sandbox import SandboxConfig

    return SandboxConfig(write_delay=0.01)


try:
    import pytest_asyncio

    _HAVE_PYTEST_ASYNCIO = True
except ImportError:  # pragma: no cover - exercised only without pytest-asyncio
    _HAVE_PYTEST_ASYNCIO = False


if _HAVE_PYTEST_ASYNCIO:

    @pytest_asyncio.fixture
    async def flinkey_sandbox(flinkey_sandbox_config: SandboxConfig) -> AsyncIterator[Sandbox]:
        """A running sandbox (stopped after the test)."""
        from .sandbox import Sandbox

        async with Sandbox(flinkey_sandbox_config) as sandbox:
            yield sandbox

    @pytest_asyncio.fixture
    async def flinkey_client(flinkey_sandbox: Sandbox) -> AsyncIterator[FlinkeyClient]:
        """A client bound to :func:`flinkey_sandbox` (first customer, password grant)."""
        from .client import FlinkeyClient

        customers = flinkey_sandbox.customer_ids
        if not customers:
            raise RuntimeError("the sandbox has no customer: seed one with store.add_customer()")
        config = flinkey_sandbox.config
        assert flinkey_sandbox.url is not None
        async with FlinkeyClient(
            config.api_key,
            customers[0],
            username=config.username,
            password=config.password,
            base_url=flinkey_sandbox.url,
        ) as client:
            yield client

else:  # pragma: no cover

    def _needs_pytest_asyncio(*_: Any) -> Any:
        pytest.fail("flinkey_async's fixtures need pytest-asyncio: pip install pytest-asyncio")

    flinkey_sandbox = pytest.fixture(name="flinkey_sandbox")(_needs_pytest_asyncio)
    flinkey_client = pytest.fixture(name="flinkey_client")(_needs_pytest_asyncio)
