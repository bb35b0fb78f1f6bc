"""The ``flinkey`` command line (also ``python -m flinkey_async``).

``flinkey sandbox``      run the local flinkey API emulator until Ctrl-C
``flinkey demo``         a guided tour of the SDK against an in-process sandbox
``flinkey assignments``  get, list, create, update and delete assignments

The ``assignments`` commands read their credentials from the environment:
``FLINKEY_API_KEY``, ``FLINKEY_CUSTOMER_ID``, and ``FLINKEY_TOKEN`` or ``FLINKEY_USERNAME`` +
``FLINKEY_PASSWORD``; ``FLINKEY_BASE_URL`` (default: production) points them at UAT or a
sandbox. Results are printed as JSON (camelCase, as on the wire).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ._converter import unstructure
from .client import DEFAULT_BASE_URL, FlinkeyClient
from .errors import FlinkeyError
from .odata import Query
from .patch import ASSIGNMENT_PATCH, JsonPatch, ValueKind, pointer

__all__ = ["main"]


def _probability(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def _seconds_range(text: str) -> tuple[float, float]:
    low, _, high = text.partition(",")
    try:
        pair = (float(low), float(high or low))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LOW,HIGH seconds, got {text!r}") from None
    if pair[0] < 0 or pair[1] < pair[0]:
        raise argparse.ArgumentTypeError(f"expected 0 <= LOW <= HIGH, got {text!r}")
    return pair


def _aware_datetime(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO-8601 datetime: {text!r}") from None
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} has no timezone: add Z or an offset, e.g. 2026-03-01T08:00:00Z"
        )
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="flinkey", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sandbox = commands.add_parser(
        "sandbox",
        help="run the local flinkey API emulator",
        description="Serve the flinkey API v3 emulator until Ctrl-C. Writes are applied after "
        "--write-delay and reported by webhook to --webhook-url.",
    )
    sandbox.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    sandbox.add_argument("--port", type=int, default=8080, help="port (default 8080; 0: any)")
    data = sandbox.add_mutually_exclusive_group()
    data.add_argument(
        "--fixture", metavar="PATH", help="JSON fixture to load instead of the bundled one"
    )
    data.add_argument("--empty", action="store_true", help="start with no data at all")
    sandbox.add_argument(
        "--api-key",
        default="sandbox-api-key",
        help="the accepted flinkey-API-Key (default sandbox-api-key)",
    )
    sandbox.add_argument(
        "--username",
        default="manager@example.com",
        help="API manager username (default manager@example.com)",
    )
    sandbox.add_argument(
        "--password",
        default="sandbox-password",
        help="API manager password (default sandbox-password)",
    )
    sandbox.add_argument(
        "--token-lifetime",
        type=float,
        default=3600.0,
        metavar="SECONDS",
        help="access token lifetime (default 3600)",
    )
    sandbox.add_argument(
        "--write-delay",
        type=float,
        default=0.05,
        metavar="SECONDS",
        help="delay before a write is applied and reported (default 0.05)",
    )
    sandbox.add_argument("--webhook-url", help="where to POST webhook outcomes (default: none)")
    sandbox.add_argument("--webhook-secret", help="value of the Secret header on webhooks")
    sandbox.add_argument(
        "--rate-limit",
        type=int,
        metavar="N",
        help="allow N requests per --rate-window per API key (default: no limit)",
    )
    sandbox.add_argument(
        "--rate-window",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="rate-limit window (default 1)",
    )
    sandbox.add_argument(
        "--max-body-bytes",
        type=int,
        default=64 * 1024,
        metavar="N",
        help="larger request bodies get 413 (default 65536)",
    )
    faults = sandbox.add_argument_group("fault injection (probabilities 0..1, on every route)")
    faults.add_argument(
        "--fault-429",
        type=_probability,
        default=0.0,
        metavar="P",
        help="answer 429 with Retry-After",
    )
    faults.add_argument(
        "--fault-500",
        type=_probability,
        default=0.0,
        metavar="P",
        help="answer 500 Internal server error.",
    )
    faults.add_argument(
        "--fault-reset",
        type=_probability,
        default=0.0,
        metavar="P",
        help="close the connection without an answer",
    )
    faults.add_argument(
        "--latency",
        type=_seconds_range,
        default=(0.0, 0.0),
        metavar="LOW,HIGH",
        help="add LOW..HIGH seconds to every answer",
    )
    faults.add_argument(
        "--webhook-delay",
        type=_probability,
        default=0.0,
        metavar="P",
        help="deliver a webhook late",
    )
    faults.add_argument(
        "--webhook-duplicate",
        type=_probability,
        default=0.0,
        metavar="P",
        help="deliver a webhook twice",
    )
    faults.add_argument(
        "--webhook-drop",
        type=_probability,
        default=0.0,
        metavar="P",
        help="never deliver a webhook",
    )
    faults.add_argument("--seed", type=int, help="seed for reproducible faults")

    commands.add_parser(
        "demo",
        help="a guided tour of the SDK against an in-process sandbox",
        description="Start a sandbox and a webhook receiver in this process, "
        "then create, list, update and delete an assignment, each "
        "write awaited to its confirmation.",
    )

    assignments = commands.add_parser(
        "assignments", help="assignment operations (credentials from FLINKEY_* variables)"
    )
    ops = assignments.add_subparsers(dest="operation", required=True, metavar="OPERATION")
    get = ops.add_parser("get", help="one assignment")
    get.add_argument("assignment_id", type=int)
    for name, what in (("list-for-car", "car_id"), ("list-for-user", "user_id")):
        lister = ops.add_parser(name, help=f"assignments of one {what.split('_')[0]}")
        lister.add_argument(what, type=int)
        lister.add_argument(
            "--filter",
            dest="filter_raw",
            metavar="ODATA",
            help='raw OData $filter, e.g. "start ge 2026-01-01T00:00:00Z"',
        )
        lister.add_argument("--orderby", action="append", default=[], metavar="FIELD[:desc]")
        lister.add_argument("--top", type=int)
        lister.add_argument("--skip", type=int)
    create = ops.add_parser("create", help="give a user access to a car")
    create.add_argument("--car", type=int, required=True, dest="car_id")
    create.add_argument("--user", type=int, required=True, dest="user_id")
    create.add_argument("--start", type=_aware_datetime, required=True)
    create.add_argument("--end", type=_aware_datetime)
    create.add_argument("--lifetime", type=int)
    create.add_argument("--renewable-after", type=int)
    update = ops.add_parser("update", help="change an assignment (JSON Patch)")
    update.add_argument("assignment_id", type=int)
    update.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="PATH=VALUE",
        help="replace a field, e.g. --set end=2026-04-01T00:00:00Z",
    )
    update.add_argument("--remove", action="append", default=[], metavar="PATH")
    delete = ops.add_parser("delete", help="remove an assignment")
    delete.add_argument("assignment_id", type=int)
    for writer in (create, update, delete):
        writer.add_argument(
            "--wait",
            type=float,
            metavar="SECONDS",
            help="poll until the change is visible (at most SECONDS)",
        )
    return parser


# -- flinkey sandbox -----------------------------------------------------------------------------
def _sandbox_config(args: argparse.Namespace) -> Any:
    from .sandbox import FaultConfig, RateLimit, RouteFaults, SandboxConfig, WebhookFaults
    from .sandbox.config import DEFAULT_FIXTURE

    faults = None
    route = RouteFaults(
        rate_limit=args.fault_429,
        server_error=args.fault_500,
        reset=args.fault_reset,
        latency=args.latency,
    )
    hooks = WebhookFaults(
        delay=args.webhook_delay, duplicate=args.webhook_duplicate, drop=args.webhook_drop
    )
    if route != RouteFaults() or hooks != WebhookFaults():
        faults = FaultConfig(routes={"*": route}, webhooks=hooks, seed=args.seed)
    fixture = None if args.empty else (args.fixture or DEFAULT_FIXTURE)
    return SandboxConfig(
        api_key=args.api_key,
        username=args.username,
        password=args.password,
        token_lifetime=args.token_lifetime,
        write_delay=args.write_delay,
        webhook_url=args.webhook_url,
        webhook_secret=args.webhook_secret,
        rate_limit=RateLimit(args.rate_limit, args.rate_window) if args.rate_limit else None,
        max_body_bytes=args.max_body_bytes,
        faults=faults,
        seed=args.seed,
        fixture=fixture,
    )


def _run_sandbox(args: argparse.Namespace) -> int:
    from .sandbox import Sandbox, serve

    config = _sandbox_config(args)

    def ready(sandbox: Sandbox) -> None:
        print(f"flinkey sandbox listening on {sandbox.url}", flush=True)
        print(
            f"  customers: {', '.join(map(str, sandbox.customer_ids)) or 'none'}; "
            f"API manager: {config.username}",
            flush=True,
        )
        print("  press Ctrl-C to stop", flush=True)

    async def run() -> None:
        task = asyncio.ensure_future(serve(config, args.host, args.port, on_ready=ready))
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    try:
        asyncio.run(run())
    except OSError as exc:
        print(
            f"flinkey sandbox: cannot listen on {args.host}:{args.port}: {exc.strerror}",
            file=sys.stderr,
        )
        return 1
    print("flinkey sandbox stopped", flush=True)
    return 0


# -- flinkey assignments -------------------------------------------------------------------------
def _client_from_env() -> FlinkeyClient:
    env = os.environ
    missing = [n for n in ("FLINKEY_API_KEY", "FLINKEY_CUSTOMER_ID") if not env.get(n)]
    if missing:
        raise SystemExit(f"flinkey: set {' and '.join(missing)} (see flinkey --help)")
    try:
        customer_id = int(env["FLINKEY_CUSTOMER_ID"])
    except ValueError:
        raise SystemExit("flinkey: FLINKEY_CUSTOMER_ID must be an integer") from None
    base_url = env.get("FLINKEY_BASE_URL", DEFAULT_BASE_URL)
    if env.get("FLINKEY_TOKEN"):
        return FlinkeyClient(
            env["FLINKEY_API_KEY"], customer_id, token=env["FLINKEY_TOKEN"], base_url=base_url
        )
    if env.get("FLINKEY_USERNAME") and env.get("FLINKEY_PASSWORD"):
        return FlinkeyClient(
            env["FLINKEY_API_KEY"],
            customer_id,
            username=env["FLINKEY_USERNAME"],
            password=env["FLINKEY_PASSWORD"],
            base_url=base_url,
        )
    raise SystemExit("flinkey: set FLINKEY_TOKEN, or FLINKEY_USERNAME and FLINKEY_PASSWORD")


def _query(args: argparse.Namespace) -> Query | None:
    query = Query()
    if args.filter_raw:
        query = query.filter_raw(args.filter_raw)
    for item in args.orderby:
        name, _, direction = item.partition(":")
        query = query.orderby(name, desc=direction.lower() == "desc")
    if args.top is not None:
        query = query.top(args.top)
    if args.skip is not None:
        query = query.skip(args.skip)
    return query if str(query) else None


def _patch(args: argparse.Namespace) -> JsonPatch:
    patch = JsonPatch()
    for item in args.set:
        path, sep, raw = item.partition("=")
        if not sep:
            raise SystemExit(f"flinkey: --set takes PATH=VALUE, got {item!r}")
        path_text = "/" + path.lstrip("/")
        value: Any
        if raw.lower() == "null":
            value = None
        elif ASSIGNMENT_PATCH.field(pointer(path_text), path_text).kind is ValueKind.DATETIME:
            value = _aware_datetime(raw)
        else:
            try:
                value = int(raw)
            except ValueError:
                raise SystemExit(f"flinkey: {path} takes an integer, got {raw!r}") from None
        patch = patch.replace(path_text, value)
    for path in args.remove:
        patch = patch.remove("/" + path.lstrip("/"))
    return patch


def _print(value: Any) -> None:
    print(json.dumps(unstructure(value), indent=2, ensure_ascii=False))


async def _assignments(args: argparse.Namespace) -> int:
    async with _client_from_env() as client:
        resource = client.assignments
        if args.operation == "get":
            _print(await resource.get(args.assignment_id))
            return 0
        if args.operation == "list-for-car":
            _print(await resource.list_for_car(args.car_id, query=_query(args)))
            return 0
        if args.operation == "list-for-user":
            _print(await resource.list_for_user(args.user_id, query=_query(args)))
            return 0
        if args.operation == "create":
            op = await resource.create(
                car_id=args.car_id,
                user_id=args.user_id,
                start=args.start,
                end=args.end,
                lifetime=args.lifetime,
                renewable_after=args.renewable_after,
            )
        elif args.operation == "update":
            op = await resource.update(args.assignment_id, _patch(args))
        else:
            op = await resource.delete(args.assignment_id)
        print(f"accepted: {op.describe()} (applied asynchronously by flinkey)")
        if args.wait is not None:
            outcome = await op.wait(timeout=args.wait)
            print(f"observed: {outcome!r}")
        return 0


# -- entry point ---------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``flinkey`` command; returns the exit status."""
    args = _parser().parse_args(argv)
    if args.command == "sandbox":
        return _run_sandbox(args)
    if args.command == "demo":
        from .demo import run_demo

        return asyncio.run(run_demo())
    try:
        return asyncio.run(_assignments(args))
    except FlinkeyError as exc:
        print(f"flinkey: {exc}", file=sys.stderr)
        return 2
