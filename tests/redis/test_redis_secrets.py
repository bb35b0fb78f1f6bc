"""The password of a Redis URL never shows: not in a ``repr``, ``vars()``, a pickle or a copy
of what holds it, not in an error's text, its chained exceptions (suppressed ones included)
or the locals of its traceback, and not in part when the URL is malformed. Against a real
Redis whose user needs the password."""

from __future__ import annotations

import asyncio
import copy
import os
import pickle
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from flinkey_async.errors import RedisUnavailableError
from flinkey_async.shared.confirmations import RedisWebhookBus, SharedTracker
from flinkey_async.shared.limiter import RedisRateLimit
from tests.support.leaks import everything
from tests.support.redis_server import RedisServer

ROOT = Path(__file__).resolve().parents[2]
USER = "secrets-test-user"
PASSWORD = "redis-Rp6-password"
WRONG = "wrong-Wq2-password"
NEVER = [PASSWORD, "Rp6", WRONG, "Wq2"]


def assert_no_password(text: str) -> None:
    shown = [secret for secret in NEVER if secret in text]
    assert not shown, shown


@pytest.fixture(scope="module")
def secret_user(redis_server: RedisServer) -> Iterator[int]:
    """A user of the session's Redis that needs :data:`PASSWORD`; yields the port."""
    admin = redis.Redis(host="127.0.0.1", port=redis_server.port)
    admin.acl_setuser(
        USER,
        enabled=True,
        reset=True,
        passwords=[f"+{PASSWORD}"],
        keys=["*"],
        channels=["*"],
        categories=["+@all"],
    )
    try:
        yield redis_server.port
    finally:
        admin.acl_deluser(USER)
        admin.close()


def url(port: int, password: str = PASSWORD) -> str:
    return f"redis://{USER}:{password}@127.0.0.1:{port}/0"


async def test_a_rate_limit_holds_its_url_as_a_secret(secret_user: int) -> None:
    shared = RedisRateLimit(url(secret_user), name="secrets-held", timeout=2.0)
    assert_no_password(repr(shared) + repr(vars(shared)))
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(shared)
    with pytest.raises(TypeError, match="cannot be pickled"):
        copy.copy(shared)
    async with shared:
        assert shared.state == "shared"
        await shared.acquire()  # the password works
        storage = shared._storage
        assert storage is not None
        assert_no_password(repr(vars(shared)) + repr(vars(storage)) + repr(vars(storage.bridge)))


def test_a_bus_refuses_pickling(secret_user: int) -> None:
    bus = RedisWebhookBus.from_url(url(secret_user))
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(bus)
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(SharedTracker(bus))
    assert_no_password(repr(bus) + repr(vars(bus)))


@pytest.mark.parametrize("cls", [RedisRateLimit, RedisWebhookBus, SharedTracker])
def test_a_half_built_shared_object_has_a_repr(cls: type[Any]) -> None:
    assert repr(object.__new__(cls)) == f"{cls.__name__}(<not set up>)"


#: Constructors refusing an option, by name (the test's frame must not hold the URL).
REFUSALS: dict[str, Callable[[str], Any]] = {
    "limit: name": lambda u: RedisRateLimit(u, name="not a name!"),
    "limit: workers": lambda u: RedisRateLimit(u, name="n", expected_workers=0),
    "limit: timeout": lambda u: RedisRateLimit(u, name="n", timeout=-1),
    "bus: retention": lambda u: RedisWebhookBus.from_url(u, retention=-1),
    "bus: prefix": lambda u: RedisWebhookBus.from_url(u, prefix="{x}"),
    "tracker: lookback": lambda u: SharedTracker.connect(u, lookback=-1),
    "tracker: batch": lambda u: SharedTracker.connect(u, batch=0),
    "tracker: retention": lambda u: SharedTracker.connect(u, retention=-1),
}


@pytest.mark.parametrize("refusal", list(REFUSALS))
def test_a_refused_option_shows_no_password(secret_user: int, refusal: str) -> None:
    with pytest.raises(ValueError) as info:
        REFUSALS[refusal](url(secret_user))
    assert_no_password(everything(info.value))


async def test_a_failed_start_keeps_no_chained_exception(secret_user: int) -> None:
    """A wrong password, and the right one given to a server that never answers: redis-py's
    exceptions (whose frames hold the password) are not kept as a context."""

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # until the client goes away
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    silent_port = server.sockets[0].getsockname()[1]
    try:
        for target, why in [
            (url(secret_user, WRONG), "AuthenticationError"),
            (url(silent_port), "TimeoutError"),
        ]:
            shared = RedisRateLimit(target, name="secrets-start", timeout=0.2, connect_timeout=0.3)
            with pytest.raises(RedisUnavailableError, match=why) as info:
                await shared.start()
            await shared.aclose()
            error = info.value
            assert error.__context__ is None and error.__cause__ is None
            assert_no_password(everything(error))
    finally:
        server.close()
        await server.wait_closed()


#: Passwords with an unencoded '/', '?' or '#': the parsers take their start for a port or a
#: host (and, when it is all digits, accept the URL as another server's; "1234?a=5678" puts
#: the '@' in a query value).
MALFORMED = [
    "LEAKED-Kp/rest",
    "LEAKED-Kp?rest",
    "LEAKED-Kp#rest",
    "1234/5678",
    "1234?5678",
    "1234?a=5678",
    "1234?db=0&a=5678",
]
MAKERS: dict[str, Callable[[str], Any]] = {
    "limit": lambda u: RedisRateLimit(u, name="n"),
    "bus": RedisWebhookBus.from_url,
    "tracker": SharedTracker.connect,
}


@pytest.mark.parametrize("maker", list(MAKERS))
@pytest.mark.parametrize("password", MALFORMED)
def test_a_malformed_url_is_refused_without_quoting_it(maker: str, password: str) -> None:
    with pytest.raises(ValueError, match="percent-encoded") as info:
        MAKERS[maker](f"redis://:{password}@127.0.0.1:6379/0")
    text = everything(info.value)
    for part in ("LEAKED", "Kp", "1234", "5678"):
        assert part not in text, part


def test_the_relay_refuses_a_malformed_url_without_quoting_it() -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONASYNCIODEBUG"}
    env["FLINKEY_TEST_SECRETS_WEBHOOK"] = "webhook-secret"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "flinkey_async",
            "webhooks",
            "serve",
            "--secret-env",
            "FLINKEY_TEST_SECRETS_WEBHOOK",
            "--port",
            "0",
            "--redis",
            "redis://:LEAKED-Kp/rest@127.0.0.1:1/0",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "--redis" in done.stderr and "percent-encoded" in done.stderr
    assert "LEAKED" not in done.stdout + done.stderr
