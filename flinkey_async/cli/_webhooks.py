"""``flinkey webhooks serve``: a webhook relay, receiving flinkey's webhooks and publishing
each verified one to Redis, for the :class:`~flinkey_async.shared.confirmations.SharedTracker`
of other processes (batch jobs with no URL flinkey can reach, several workers).

The secret is read from the environment variable named by ``--secret-env`` and never printed;
the Redis URL is shown by host, port and database only (never its password). ``GET /healthz``
answers 200 while Redis answers, else 503. SIGTERM or SIGINT stops it gracefully (requests
in flight are answered), with exit status 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from typing import Annotated, Any

import typer

from ._connection import DebugFlag, enable_debug
from ._errors import CliError, ExitCode, config_error, usage_error

__all__ = ["webhooks_app"]

webhooks_app = typer.Typer(
    help="Receive flinkey's webhooks: a relay publishing them to Redis.",
    no_args_is_help=True,
    add_completion=False,
)

_REDIS = "Redis"


@webhooks_app.command("serve")
def serve(
    redis: Annotated[
        str,
        typer.Option(
            "--redis",
            metavar="URL",
            envvar="FLINKEY_REDIS_URL",
            help="Redis to publish to: redis://[:password@]host:port/db, rediss:// for TLS "
            "(env FLINKEY_REDIS_URL; its password is never printed)",
            rich_help_panel=_REDIS,
        ),
    ],
    secret_env: Annotated[
        str,
        typer.Option(
            metavar="VAR",
            help="name of the environment variable holding the webhook secret (the Secret "
            "header's value set in the flinkey Portal; never printed)",
        ),
    ] = "FLINKEY_WEBHOOK_SECRET",
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(min=0, max=65535, help="port to listen on (0: any free port)")
    ] = 8080,
    path: Annotated[
        str, typer.Option(help="path of the webhook route (also PATH/created, ...)")
    ] = "/webhooks/flinkey",
    health_path: Annotated[
        str, typer.Option(help="path of the health endpoint (GET; 200 while Redis answers)")
    ] = "/healthz",
    prefix: Annotated[
        str, typer.Option(help="prefix (hash tag) of the Redis keys", rich_help_panel=_REDIS)
    ] = "flinkey",
    retention: Annotated[
        float,
        typer.Option(
            metavar="SECONDS",
            min=1,
            help="seconds the stream keeps an event",
            rich_help_panel=_REDIS,
        ),
    ] = 600.0,
    max_len: Annotated[
        int,
        typer.Option(
            metavar="N", min=1, help="most events the stream keeps", rich_help_panel=_REDIS
        ),
    ] = 100_000,
    dedupe_ttl: Annotated[
        float,
        typer.Option(
            metavar="SECONDS",
            min=1,
            help="seconds a delivery stays known, to recognise repeats",
            rich_help_panel=_REDIS,
        ),
    ] = 3600.0,
    redis_timeout: Annotated[
        float,
        typer.Option(
            metavar="SECONDS",
            min=0.001,
            help="seconds one Redis command may take (else 503)",
            rich_help_panel=_REDIS,
        ),
    ] = 2.0,
    debug: DebugFlag = False,
) -> None:
    """Receive flinkey's webhooks and publish each verified one to Redis, until SIGTERM.

    Answers 204 once the event is in Redis, 503 (flinkey delivers it again) when Redis cannot
    take it, 401 for a wrong Secret header. The SharedTracker of each writing process
    resolves its writes from the stream. GET --health-path reports whether Redis answers.
    """
    if debug:
        enable_debug()
    secret = os.environ.get(secret_env)
    if not secret:
        raise config_error(
            f"the environment variable {secret_env} (--secret-env) holding the webhook secret "
            "is not set or empty"
        )
    for name, value in (("--path", path), ("--health-path", health_path)):
        if not value.startswith("/") or (value.endswith("/") and value != "/"):
            raise usage_error(f"{name} must start with '/' and not end with '/', got {value!r}")
    if not prefix or any(c in prefix for c in "{}"):  # so that a refusal below is the URL's
        raise usage_error(f"--prefix must be a non-empty string without braces, got {prefix!r}")
    try:
        asyncio.run(
            _serve(
                secret=secret,
                url=redis,
                host=host,
                port=port,
                path=path,
                health_path=health_path,
                bus_options={
                    "prefix": prefix,
                    "retention": retention,
                    "max_len": max_len,
                    "dedupe_ttl": dedupe_ttl,
                    "timeout": redis_timeout,
                },
            )
        )
    except KeyboardInterrupt:  # before the signal handlers were installed
        raise CliError(ExitCode.INTERRUPTED, "interrupted") from None
    print("flinkey webhooks relay stopped", flush=True)


async def _serve(
    *,
    secret: str,
    url: str,
    host: str,
    port: int,
    path: str,
    health_path: str,
    bus_options: dict[str, Any],
) -> None:
    try:
        from aiohttp import web

        from ..errors import RedisUnavailableError
        from ..shared._urls import URL_HINT
        from ..shared.confirmations import RedisWebhookBus
        from ..webhooks.receiver import WEBHOOK_RECEIVER_KEY, webhook_app
        from ..webhooks.server import start_webhook_server
    except ModuleNotFoundError as exc:
        raise config_error(
            f"the relay needs the 'redis' extra (module {exc.name!r} is not installed): "
            "pip install 'flinkey_async[redis]'"
        ) from None
    made: RedisWebhookBus | None = None
    # The options were checked: a refusal is the URL's, answered with a fixed hint (no text
    # of the error, which could quote a part of the URL), outside the handler.
    with contextlib.suppress(TypeError, ValueError):
        made = RedisWebhookBus.from_url(url, **bus_options)
    del url
    if made is None:
        raise usage_error(f"--redis: not a Redis URL; {URL_HINT}")
    bus = made
    try:
        try:
            await bus.ping()
        except RedisUnavailableError as exc:
            raise CliError(ExitCode.FAILURE, f"cannot start the relay: {exc}") from None
        app = webhook_app(secret=secret, path=path, publisher=bus)
        del secret
        receiver = app[WEBHOOK_RECEIVER_KEY]

        async def health(_request: web.Request) -> web.Response:
            reachable = await bus.reachable()
            stats = receiver.stats
            return web.json_response(
                {
                    "status": "ok" if reachable else "unavailable",
                    "redis": "reachable" if reachable else "unreachable",
                    "received": stats.received,
                    "published": stats.published,
                    "duplicates": stats.duplicates,
                    "unavailable": stats.unavailable,
                },
                status=200 if reachable else 503,
            )

        app.router.add_get(health_path, health)
        try:
            runner = await start_webhook_server(app, host, port, access_log=None)
        except OSError as exc:
            raise config_error(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        try:
            bound = runner.addresses[0][1] if runner.addresses else port
            base = f"http://{host}:{bound}"
            print(
                f"flinkey webhooks relay listening on {base}{path}\n"
                f"health: {base}{health_path}\n"
                f"publishing to Redis at {bus.where}, stream {bus.stream_key}\n"
                "press Ctrl-C to stop",
                flush=True,
            )
            await _until_signalled()
        finally:
            await runner.cleanup()
    finally:
        await bus.aclose()


async def _until_signalled() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
