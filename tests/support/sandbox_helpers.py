"""Helpers shared by the sandbox tests."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import quote

import attrs
from aiohttp import web
from aiohttp.test_utils import TestServer
from yarl import URL

from flinkey_async.sandbox import Sandbox


@attrs.define
class Received:
    """One webhook POST as the receiver got it."""

    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    """A local webhook endpoint recording every POST; answers ``status``."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.status = 200
        self.server: TestServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("/hook"))

    async def _handle(self, request: web.Request) -> web.Response:
        self.received.append(Received(dict(request.headers), await request.read()))
        return web.Response(status=self.status)

    def payloads(self) -> list[Any]:
        return [r.json() for r in self.received]


def odata_url(base: str, path: str, **options: str) -> URL:
    """``base + path`` with OData options percent-encoded as OData clients send them
    (``%20`` for spaces, ``%2B`` for ``+``, ``%27`` for quotes), sent verbatim."""
    query = "&".join(f"${name}={quote(value, safe='')}" for name, value in options.items())
    return URL(f"{base}{path}?{query}" if query else f"{base}{path}", encoded=True)


async def drained(sandbox: Sandbox, seconds: float = 5.0) -> None:
    """``sandbox.drain()`` bounded in time."""
    async with asyncio.timeout(seconds):
        await sandbox.drain()
