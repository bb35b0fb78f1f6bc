"""A real local aiohttp server that records the exact bytes it receives, for wire tests."""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
from aiohttp import web
from aiohttp.test_utils import TestServer

API_KEY = "test-api-key-Zq3"
TOKEN = "test-token-Xy9"
CUSTOMER_ID = 42


@attrs.define
class Recorded:
    method: str
    raw_path: str
    path: str
    query_string: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


Handler = Callable[[web.Request, Recorded], web.StreamResponse | Awaitable[web.StreamResponse]]


def json_response(
    data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=json.dumps(data).encode(),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def token_response(token: str = TOKEN, expires_in: str = "3600") -> web.Response:
    return json_response({"token_type": "Bearer", "expires_in": expires_in, "access_token": token})


class RecordingServer:
    """Answers from a route table ``(METHOD, path) -> handler`` (or a queue of one-shot
    answers per route) and records every request as it arrived on the wire."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.routes: dict[tuple[str, str], Handler] = {}
        self.queued: dict[tuple[str, str], list[Handler]] = {}
        self.server: TestServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("/v3"))

    def on(self, method: str, path: str, handler: Handler) -> None:
        self.routes[(method, path)] = handler

    def queue(self, method: str, path: str, *handlers: Handler) -> None:
        self.queued.setdefault((method, path), []).extend(handlers)

    def for_path(self, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.path == path]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        rec = Recorded(
            request.method,
            request.raw_path,
            request.path,
            request.query_string,
            dict(request.headers),
            body,
        )
        self.requests.append(rec)
        key = (request.method, request.path.removeprefix("/v3"))
        queued = self.queued.get(key)
        handler = queued.pop(0) if queued else self.routes.get(key)
        if handler is None:
            return web.Response(status=599, text=f"no route for {key}")
        result = handler(request, rec)
        return await result if inspect.isawaitable(result) else result

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self.server = TestServer(app)
        await self.server.start_server()

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()
