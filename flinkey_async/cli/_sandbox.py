"""``flinkey sandbox``: serve the flinkey API v3 emulator until Ctrl-C.

It prints where it listens and the credentials it accepts (the sandbox's own, which are no
secrets: ``FLINKEY_API_KEY=...`` lines a shell or a test can read), never the webhook secret.
``--access-log`` adds one line per request on stderr: method, path and query, status and
time, never a header or a body.
"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import attrs

from ._errors import CliError, ExitCode, config_error, usage_error

__all__ = ["SandboxOptions", "run_sandbox"]


@attrs.frozen
class SandboxOptions:
    """The options of ``flinkey sandbox`` (see its ``--help``)."""

    host: str = "127.0.0.1"
    port: int = 8080
    fixture: str | None = None
    empty: bool = False
    api_key: str = attrs.field(default="sandbox-api-key", repr=False)
    username: str = "manager@example.com"
    password: str = attrs.field(default="sandbox-password", repr=False)
    sdk_key: str = attrs.field(default="sandbox-sdk-key", repr=False)
    token_lifetime: float = 3600.0
    write_delay: float = 0.05
    webhook_url: str | None = None
    webhook_secret: str | None = attrs.field(default=None, repr=False)
    rate_limit: int | None = None
    rate_window: float = 1.0
    max_body_bytes: int = 64 * 1024
    fault_429: float = 0.0
    fault_500: float = 0.0
    fault_reset: float = 0.0
    latency: tuple[float, float] = (0.0, 0.0)
    webhook_delay: float = 0.0
    webhook_duplicate: float = 0.0
    webhook_drop: float = 0.0
    seed: int | None = None
    access_log: bool = False


def _import_sandbox() -> Any:
    try:
        from .. import sandbox
    except ModuleNotFoundError as exc:
        raise config_error(
            f"the sandbox needs the 'sandbox' extra (module {exc.name!r} is not installed): "
            "pip install 'flinkey_async[sandbox]'"
        ) from None
    return sandbox


def _config(options: SandboxOptions) -> Any:
    sb = _import_sandbox()
    if options.fixture is not None and options.empty:
        raise usage_error("--fixture and --empty exclude each other")
    if not options.host.strip():
        raise usage_error(
            "--host is empty: give the interface to listen on, e.g. 127.0.0.1 (this machine "
            "only) or 0.0.0.0 (every interface)"
        )
    route = sb.RouteFaults(
        rate_limit=options.fault_429,
        server_error=options.fault_500,
        reset=options.fault_reset,
        latency=options.latency,
    )
    hooks = sb.WebhookFaults(
        delay=options.webhook_delay,
        duplicate=options.webhook_duplicate,
        drop=options.webhook_drop,
    )
    faults = None
    if route != sb.RouteFaults() or hooks != sb.WebhookFaults():
        faults = sb.FaultConfig(routes={"*": route}, webhooks=hooks, seed=options.seed)
    fixture = None if options.empty else (options.fixture or sb.DEFAULT_FIXTURE)
    try:
        return sb.SandboxConfig(
            api_key=options.api_key,
            username=options.username,
            password=options.password,
            sdk_key=options.sdk_key,
            token_lifetime=options.token_lifetime,
            write_delay=options.write_delay,
            webhook_url=options.webhook_url,
            webhook_secret=options.webhook_secret,
            rate_limit=(
                sb.RateLimit(options.rate_limit, options.rate_window)
                if options.rate_limit
                else None
            ),
            max_body_bytes=options.max_body_bytes,
            faults=faults,
            seed=options.seed,
            fixture=fixture,
        )
    except (TypeError, ValueError) as exc:
        raise usage_error(f"invalid sandbox option: {exc}") from None


def _make_sandbox(config: Any) -> Any:
    """The sandbox, its fixture loaded; a fixture it cannot use is a one-line error."""
    sb = _import_sandbox()
    path = config.fixture
    try:
        return sb.Sandbox(config)
    except OSError as exc:
        raise config_error(
            f"cannot read the fixture {os.fspath(path)}: {exc.strerror or exc}"
        ) from None
    except json.JSONDecodeError as exc:
        raise config_error(f"the fixture {os.fspath(path)} is not valid JSON: {exc}") from None
    except UnicodeDecodeError:
        raise config_error(f"the fixture {os.fspath(path)} is not UTF-8 text") from None
    except KeyError as exc:
        raise config_error(
            f"the fixture {os.fspath(path)} is malformed: a record lacks the key {exc}"
        ) from None
    except (TypeError, ValueError, AttributeError) as exc:
        reason = str(exc).removeprefix("malformed fixture: ")
        raise config_error(f"the fixture {os.fspath(path)} is malformed: {reason}") from None


def _access_log() -> Any:
    from aiohttp import web

    @web.middleware
    async def log(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        began = time.perf_counter()
        status: object = "-"
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        except asyncio.CancelledError:
            status = "dropped"
            raise
        except Exception:
            status = 500
            raise
        finally:
            took = (time.perf_counter() - began) * 1000
            peer = request.remote or "-"
            print(
                f"{peer} {request.method} {request.rel_url} {status} {took:.1f}ms",
                file=sys.stderr,
                flush=True,
            )

    return log


def _banner(sandbox: Any, config: Any, options: SandboxOptions) -> None:
    customers = sandbox.customer_ids
    names = {c: getattr(sandbox.store.customers.get(c), "name", "") for c in customers}
    lines = [
        f"flinkey sandbox listening on {sandbox.url}",
        "accepted credentials (the sandbox's own; use them as environment variables):",
        f"  FLINKEY_BASE_URL={shlex.quote(sandbox.url)}",
        f"  FLINKEY_API_KEY={shlex.quote(config.api_key)}",
        f"  FLINKEY_USERNAME={shlex.quote(config.username)}",
        f"  FLINKEY_PASSWORD={shlex.quote(config.password)}",
        f"  FLINKEY_SDK_KEY={shlex.quote(config.sdk_key)}",
    ]
    if customers:
        lines.append(f"  FLINKEY_CUSTOMER_ID={customers[0]}")
        lines.append("customers: " + "; ".join(f"{c} {names[c]}".rstrip() for c in customers))
    else:
        lines.append("customers: none (empty store)")
    hooks = (
        f"POSTed to {config.webhook_url}"
        + (" with a Secret header" if config.webhook_secret else " without a Secret header")
        if config.webhook_url
        else "none (writes are observed by polling)"
    )
    lines.append(f"writes applied after {config.write_delay:g} s; webhooks: {hooks}")
    if options.access_log:
        lines.append("access log on stderr")
    lines.append("press Ctrl-C to stop")
    print("\n".join(lines), flush=True)


def run_sandbox(options: SandboxOptions) -> None:
    """Serve until SIGINT or SIGTERM (then exit status 0)."""
    config = _config(options)

    async def serve() -> None:
        sandbox = _make_sandbox(config)
        if options.access_log:
            sandbox.app.middlewares.insert(0, _access_log())
        try:
            await sandbox.start(options.host, options.port)
        except OSError as exc:
            raise config_error(
                f"cannot listen on {options.host}:{options.port}: {exc.strerror or exc}"
            ) from None
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            _banner(sandbox, config, options)
            await stop.wait()
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            await sandbox.stop()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:  # before the signal handlers were installed
        raise CliError(ExitCode.INTERRUPTED, "interrupted") from None
    print("flinkey sandbox stopped", flush=True)
