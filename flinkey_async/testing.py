"""pytest plugin: test your flinkey integration against the local sandbox, offline.

Installed with flinkey_async (entry point ``pytest11``): the fixtures are available in any
project that has ``flinkey_async[sandbox]`` and pytest-asyncio installed, in pytest-asyncio's
strict mode (mark the tests ``@pytest.mark.asyncio``) as in its auto mode:

``flinkey_sandbox_config``
    The :class:`~flinkey_async.sandbox.SandboxConfig` used; override this fixture in your
    ``conftest.py`` to change write delay, rate limit, faults, fixture data, ...
``flinkey_sandbox``
    A running :class:`~flinkey_async.sandbox.Sandbox` on a free port of 127.0.0.1 (one per
    test, or one per session: see below); seed data through ``flinkey_sandbox.store``.
``flinkey_client``
    A :class:`~flinkey_async.FlinkeyClient` bound to it, authenticated with the sandbox's API
    manager (password grant) for the first customer of its data. Without a tracker, its
    writes' ``wait()`` polls the read endpoints (``outcome.confirmed`` is False).
``flinkey_webhook_receiver``
    A :class:`~flinkey_async.webhooks.WebhookReceiver` with an
    :class:`~flinkey_async.webhooks.OperationTracker` (``receiver.tracker``), served on a
    free port of 127.0.0.1; the sandbox's ``webhook_url`` and ``webhook_secret`` point at it
    during the test.
``flinkey_confirmed_client``
    Like ``flinkey_client``, with that tracker: every ``wait()`` is confirmed by the
    sandbox's webhook (``outcome.confirmed`` is True, a rejected write raises
    :class:`~flinkey_async.errors.OperationFailedError` with the sandbox's reason).
``flinkey_redis_url``
    The Redis server of the shared mode: ``--flinkey-redis-url`` (or the ini option
    ``flinkey_redis_url``, or the environment variable ``FLINKEY_REDIS_URL``); a test using it
    without one fails, saying so. Override the fixture to start a server of your own.
``flinkey_shared_tracker``
    A started :class:`~flinkey_async.shared.confirmations.SharedTracker` on that Redis, with
    keys of its own (a random ``prefix``, whose stream is deleted after the test): give
    ``flinkey_shared_tracker.bus`` to receivers as ``publisher=`` and the tracker to clients,
    in as many processes as the test starts (pass them ``bus.prefix``). Needs the
    ``flinkey_async[redis]`` extra.

Example::

    import pytest

    @pytest.mark.asyncio
    async def test_booking_creates_assignment(flinkey_confirmed_client):
        op = await flinkey_confirmed_client.assignments.create(car_id=101, user_id=1001,
                                                              start=start)
        outcome = await op.wait(timeout=5)     # confirmed by the sandbox's webhook
        items = await flinkey_confirmed_client.assignments.list_for_car(101)
        assert outcome.assignment_id in {a.id for a in items}

**One sandbox per session.** ``--flinkey-sandbox-scope=session`` (or the ini option
``flinkey_sandbox_scope = session``) starts one sandbox for the whole run: faster, but tests
then share its data. The sandbox and the tests must then run in one event loop: set
pytest-asyncio's ``asyncio_default_fixture_loop_scope`` and ``asyncio_default_test_loop_scope``
to ``session`` (the plugin refuses to start otherwise), and make an override of
``flinkey_sandbox_config`` session-scoped.

A shared-mode test, with the sandbox's webhooks published to Redis::

    @pytest.mark.asyncio
    async def test_confirmed_through_redis(flinkey_sandbox, flinkey_shared_tracker):
        app = webhook_app(secret="s", publisher=flinkey_shared_tracker.bus)
        runner = await start_webhook_server(app, "127.0.0.1", 0)
        flinkey_sandbox.webhook_url = f"http://127.0.0.1:{runner.addresses[0][1]}/webhooks/flinkey"
        flinkey_sandbox.webhook_secret = "s"
        async with FlinkeyClient(..., tracker=flinkey_shared_tracker) as client:
            ...                                 # every wait() confirmed through Redis
        await runner.cleanup()

The sandbox needs the ``flinkey_async[sandbox]`` extra; nothing is imported from it until a
fixture is used, so the plugin costs nothing in test runs that do not use it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import AsyncIterator
from types import ModuleType
from typing import TYPE_CHECKING, Any, Final

import pytest

if TYPE_CHECKING:
    from .client import FlinkeyClient
    from .sandbox import Sandbox, SandboxConfig
    from .shared.confirmations import SharedTracker
    from .webhooks import OperationTracker, WebhookReceiver

__all__ = [
    "flinkey_client",
    "flinkey_confirmed_client",
    "flinkey_redis_url",
    "flinkey_sandbox",
    "flinkey_sandbox_config",
    "flinkey_shared_tracker",
    "flinkey_webhook_receiver",
]

#: The scopes ``--flinkey-sandbox-scope`` accepts.
SCOPES: Final = ("function", "session")
_OPTION: Final = "flinkey_sandbox_scope"
_REDIS_OPTION: Final = "flinkey_redis_url"
_NO_REDIS: Final = (
    "this test needs a Redis server for flinkey_async's shared mode: pass "
    "--flinkey-redis-url=redis://127.0.0.1:6379/0 (or set the ini option flinkey_redis_url, "
    "or the environment variable FLINKEY_REDIS_URL), or override the flinkey_redis_url fixture"
)

_MISSING_EXTRA: Final = (
    "flinkey_async's sandbox needs the {name} package, which is not installed: "
    "install flinkey_async[sandbox] (pip install 'flinkey_async[sandbox]')"
)

_LOOP_SCOPES: Final = (
    "flinkey_sandbox_scope is 'session': the sandbox and the tests must then run in one "
    "event loop. Set, in your pytest configuration: asyncio_default_fixture_loop_scope = "
    "session and asyncio_default_test_loop_scope = session (found {fixture!r} and {test!r})."
)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("flinkey_async")
    group.addoption(
        "--flinkey-sandbox-scope",
        dest=_OPTION,
        choices=SCOPES,
        default=None,
        help="start one flinkey sandbox per test (function, the default) or per session",
    )
    parser.addini(_OPTION, "scope of the flinkey_sandbox fixture: function or session")
    group.addoption(
        "--flinkey-redis-url",
        dest=_REDIS_OPTION,
        default=None,
        metavar="URL",
        help="Redis server of the flinkey_shared_tracker fixture (redis://host:port/db)",
    )
    parser.addini(_REDIS_OPTION, "Redis URL of the flinkey_shared_tracker fixture")


def sandbox_scope(config: pytest.Config) -> str:
    """The scope of ``flinkey_sandbox``: the command line's, else the ini file's, else
    ``"function"``."""
    scope = config.getoption(_OPTION, None) or config.getini(_OPTION) or "function"
    if scope not in SCOPES:
        raise pytest.UsageError(f"{_OPTION} must be one of {', '.join(SCOPES)}, got {scope!r}")
    return str(scope)


def pytest_configure(config: pytest.Config) -> None:
    if sandbox_scope(config) != "session":
        return
    try:
        fixture = config.getini("asyncio_default_fixture_loop_scope")
        test = config.getini("asyncio_default_test_loop_scope")
    except ValueError:  # pragma: no cover - pytest-asyncio is not installed
        return
    if fixture != "session" or test != "session":
        raise pytest.UsageError(_LOOP_SCOPES.format(fixture=fixture, test=test))


def _dynamic_scope(fixture_name: str, config: pytest.Config) -> Any:
    return sandbox_scope(config)


def _sandbox_module() -> ModuleType:
    """:mod:`flinkey_async.sandbox`, or a test failure saying which extra to install."""
    try:
        from . import sandbox
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.split(".")[0] != "odata_query":
            raise
    else:
        return sandbox
    # outside the except clause: the report shows this message, not the import's traceback
    pytest.fail(_MISSING_EXTRA.format(name="odata-query"), pytrace=False)


@pytest.fixture(scope=_dynamic_scope)
def flinkey_sandbox_config() -> SandboxConfig:
    """The sandbox configuration; override it to change the sandbox's behaviour."""
    config: SandboxConfig = _sandbox_module().SandboxConfig(write_delay=0.01)
    return config


@pytest.fixture
def flinkey_redis_url(request: pytest.FixtureRequest) -> str:
    """The Redis URL of the shared mode (option, ini option or environment variable)."""
    config = request.config
    url = (
        config.getoption(_REDIS_OPTION, None)
        or config.getini(_REDIS_OPTION)
        or os.environ.get("FLINKEY_REDIS_URL")
    )
    if not url:
        pytest.fail(_NO_REDIS, pytrace=False)
    return str(url)


def _client(sandbox: Sandbox, tracker: OperationTracker | None = None) -> FlinkeyClient:
    """A client of the sandbox's first customer, authenticated as its API manager."""
    from .client import FlinkeyClient

    customers = sandbox.customer_ids
    if not customers:
        raise RuntimeError("the sandbox has no customer: seed one with store.add_customer()")
    config = sandbox.config
    assert sandbox.url is not None
    return FlinkeyClient(
        config.api_key,
        customers[0],
        username=config.username,
        password=config.password,
        base_url=sandbox.url,
        tracker=tracker,
    )


try:
    import pytest_asyncio

    _HAVE_PYTEST_ASYNCIO = True
except ImportError:  # pragma: no cover - exercised only without pytest-asyncio
    _HAVE_PYTEST_ASYNCIO = False


if _HAVE_PYTEST_ASYNCIO:

    @pytest_asyncio.fixture(scope=_dynamic_scope)
    async def flinkey_sandbox(flinkey_sandbox_config: SandboxConfig) -> AsyncIterator[Sandbox]:
        """A running sandbox (stopped after the test, or after the session)."""
        sandbox: Sandbox
        async with _sandbox_module().Sandbox(flinkey_sandbox_config) as sandbox:
            yield sandbox

    @pytest_asyncio.fixture
    async def flinkey_client(flinkey_sandbox: Sandbox) -> AsyncIterator[FlinkeyClient]:
        """A client bound to :func:`flinkey_sandbox` (first customer, password grant); its
        writes are observed by polling."""
        async with _client(flinkey_sandbox) as client:
            yield client

    @pytest_asyncio.fixture
    async def flinkey_webhook_receiver(
        flinkey_sandbox: Sandbox,
    ) -> AsyncIterator[WebhookReceiver]:
        """A webhook receiver with a tracker, served on a free port of 127.0.0.1, that the
        sandbox's webhooks go to during the test (its previous target is restored after)."""
        from .webhooks import DEFAULT_PATH, OperationTracker
        from .webhooks.receiver import WEBHOOK_RECEIVER_KEY, webhook_app
        from .webhooks.server import start_webhook_server

        secret = secrets.token_urlsafe(24)
        app = webhook_app(secret=secret, tracker=OperationTracker())
        runner = await start_webhook_server(app, "127.0.0.1", 0)
        previous = flinkey_sandbox.webhook_url, flinkey_sandbox.webhook_secret
        port = runner.addresses[0][1]
        flinkey_sandbox.webhook_url = f"http://127.0.0.1:{port}{DEFAULT_PATH}"
        flinkey_sandbox.webhook_secret = secret
        try:
            yield app[WEBHOOK_RECEIVER_KEY]
        finally:
            flinkey_sandbox.webhook_url, flinkey_sandbox.webhook_secret = previous
            await runner.cleanup()

    @pytest_asyncio.fixture
    async def flinkey_shared_tracker(flinkey_redis_url: str) -> AsyncIterator[SharedTracker]:
        """A started SharedTracker with keys of its own on :func:`flinkey_redis_url`."""
        try:
            from .shared.confirmations import SharedTracker
        except ModuleNotFoundError as exc:
            if exc.name is None or exc.name.split(".")[0] != "redis":
                raise
            missing = True
        else:
            missing = False
        if missing:
            pytest.fail(
                "flinkey_shared_tracker needs the redis package: install flinkey_async[redis]",
                pytrace=False,
            )
        from .errors import RedisUnavailableError

        prefix = f"flinkey-test-{secrets.token_hex(6)}"
        async with SharedTracker.connect(flinkey_redis_url, prefix=prefix) as tracker:
            try:
                yield tracker
            finally:
                with contextlib.suppress(RedisUnavailableError):
                    await tracker.bus.delete()

    @pytest_asyncio.fixture
    async def flinkey_confirmed_client(
        flinkey_sandbox: Sandbox, flinkey_webhook_receiver: WebhookReceiver
    ) -> AsyncIterator[FlinkeyClient]:
        """A client bound to :func:`flinkey_sandbox` whose writes are confirmed by the
        sandbox's webhooks (through :func:`flinkey_webhook_receiver`'s tracker)."""
        async with _client(flinkey_sandbox, flinkey_webhook_receiver.tracker) as client:
            yield client

else:  # pragma: no cover

    def _needs_pytest_asyncio(*_: Any) -> Any:
        pytest.fail("flinkey_async's fixtures need pytest-asyncio: pip install pytest-asyncio")

    flinkey_sandbox = pytest.fixture(name="flinkey_sandbox")(_needs_pytest_asyncio)
    flinkey_client = pytest.fixture(name="flinkey_client")(_needs_pytest_asyncio)
    flinkey_webhook_receiver = pytest.fixture(name="flinkey_webhook_receiver")(
        _needs_pytest_asyncio
    )
    flinkey_confirmed_client = pytest.fixture(name="flinkey_confirmed_client")(
        _needs_pytest_asyncio
    )
    flinkey_shared_tracker = pytest.fixture(name="flinkey_shared_tracker")(_needs_pytest_asyncio)
