"""Shared fixtures."""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator, Iterator

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


@pytest.fixture
def ctrl_c() -> Iterator[None]:
    """Ctrl-C (SIGINT) raises ``KeyboardInterrupt`` in the test and in the programs it starts,
    also when the suite was started with SIGINT ignored, as a shell starts a background job:
    an ignored signal is inherited by a child process, a handler is reset to the default."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
