"""Fixtures of the sandbox tests: running sandboxes, an HTTP session, a webhook receiver."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from flinkey_async.sandbox import Sandbox, SandboxConfig
from tests.support.sandbox_helpers import Receiver


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    app = web.Application()
    app.router.add_post("/hook", rec._handle)
    rec.server = TestServer(app)
    await rec.server.start_server()
    yield rec
    await rec.server.close()


MakeSandbox = Callable[..., Awaitable[Sandbox]]


@pytest.fixture
async def make_sandbox() -> AsyncIterator[MakeSandbox]:
    """``await make_sandbox(**config_fields)``: a started sandbox, stopped after the test."""
    started: list[Sandbox] = []

    async def make(**fields: Any) -> Sandbox:
        fields.setdefault("write_delay", 0.01)
        sandbox = Sandbox(SandboxConfig(**fields))
        await sandbox.start()
        started.append(sandbox)
        return sandbox

    yield make
    for sandbox in started:
        await sandbox.stop()


@pytest.fixture
async def sb(make_sandbox: MakeSandbox) -> Sandbox:
    """A started sandbox with the bundled fixture and a 10 ms write delay."""
    return await make_sandbox()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session
