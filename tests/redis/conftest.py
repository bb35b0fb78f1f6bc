"""Fixtures: a real Redis server for the shared-mode tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.redis_server import RedisServer


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One Redis server for the session (tests use their own key prefixes). It is never
    restarted, so it keeps nothing on disk: an ``fsync`` per write on a busy machine can stall
    it beyond the clients' command deadline (tests that restart Redis use their own)."""
    server = RedisServer(persist=False)
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def own_redis_server() -> Iterator[RedisServer]:
    """A Redis server of the test's own, which it may stop and start again."""
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.close()
