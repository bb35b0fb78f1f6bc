"""The suite's Redis server is real: it answers, keeps data across a restart, and stops."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from tests.support.redis_server import RedisServer


async def test_a_restarted_server_keeps_what_it_acknowledged(own_redis_server: RedisServer) -> None:
    client = aioredis.Redis.from_url(own_redis_server.url)
    try:
        await client.xadd("flinkey:test", {"n": "1"})
    finally:
        await client.aclose()
    own_redis_server.stop(kill=True)
    own_redis_server.start()
    client = aioredis.Redis.from_url(own_redis_server.url)
    try:
        entries: Any = await client.xrange("flinkey:test")
    finally:
        await client.aclose()
    assert [fields for _, fields in entries] == [{b"n": b"1"}]
