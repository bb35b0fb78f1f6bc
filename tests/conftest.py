"""Shared fixtures."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from recording import RecordingServer


@pytest.fixture
async def server() -> AsyncIterator[RecordingServer]:
    srv = RecordingServer()
    await srv.start()
    yield srv
    await srv.close()
