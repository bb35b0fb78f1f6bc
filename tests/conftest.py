"""Shared fixtures."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest

from tests.support.recording import RecordingServer

# Every event loop of the suite runs in asyncio's debug mode (asyncio reads this variable
# whenever a loop is made): never-awaited coroutines and unclosed resources are reported.
os.environ.setdefault("PYTHONASYNCIODEBUG", "1")


@pytest.fixture
async def server() -> AsyncIterator[RecordingServer]:
    srv = RecordingServer()
    await srv.start()
    yield srv
    await srv.close()
