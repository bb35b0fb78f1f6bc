"""The ``flinkey`` Typer app: the root (``--version``, ``--debug``), ``sandbox``, ``demo`` and
one group per resource (:mod:`._resources`), and :func:`run`, which turns every outcome into
one of the documented exit codes with at most one line on stderr."""

from __future__ import annotations

import os
import platform
import sys
import traceback
from collections.abc import Sequence
from typing import Annotated, Any

import typer

from .._version import __version__
from ._connection import DebugFlag, debug_enabled, enable_debug
from ._errors import CliError, ExitCode
from ._parsing import probability, seconds_range
from ._resources import GROUPS, build_group, run_async
from ._sandbox import SandboxOptions, run_sandbox
from ._webhooks import webhooks_app

__all__ = ["app", "run"]

_HELP = """\
The flinkey API v3 from the command line: a command group per resource
(assignments, customers, cars, ...), a local sandbox of the API, a tour.

Environment variables (an option of the same name wins):
  FLINKEY_BASE_URL     API base URL ending in /v3, or production or uat
                       (unset: production, with a warning)
  FLINKEY_API_KEY      the flinkey-API-Key (secret)
  FLINKEY_CUSTOMER_ID  the Customer-ID to act for
  FLINKEY_TOKEN        a bearer token (secret), or else
  FLINKEY_USERNAME     an API manager's username and
  FLINKEY_PASSWORD     its password (secret)
  FLINKEY_SDK_KEY      the SDK Key, for sdk-tokens create (secret)
--sandbox runs a command against a fresh in-process sandbox instead.

Output: --output table|json|csv (default: table on a terminal, else JSON).

Exit codes: 0 ok, 1 API or operation failure, 2 usage error,
3 configuration error, 4 timeout (a write not confirmed within --wait),
130 interrupted. Reference: docs/cli.md
"""

app = typer.Typer(
    name="flinkey",
    help=_HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)


def _version(value: bool) -> None:
    if value:
        print(
            f"flinkey {__version__} (flinkey_async {__version__}, Python "
            f"{platform.python_version()})"
        )
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_version,
            is_eager=True,
            metavar="",
            help="print the version and exit",
        ),
    ] = False,
    debug: Annotated[
        bool,
        typer.Option(
            "--debug",
            metavar="",
            help="show the target environment (never a secret), SDK log lines and a full "
            "traceback on errors; also accepted after any command",
        ),
    ] = False,
) -> None:
    """The flinkey API v3 from the command line."""
    if debug:
        enable_debug()


def _checked_range(text: str) -> str:
    seconds_range(text)  # a malformed range is a usage error of --latency
    return text


_FAULTS = "Fault injection (probabilities 0..1, on every route)"
_DATA = "Data and credentials"


@app.command("sandbox")
def sandbox(
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(min=0, max=65535, help="port to listen on (0: any free port)")
    ] = 8080,
    fixture: Annotated[
        str | None,
        typer.Option(
            metavar="PATH",
            help="JSON fixture to load instead of the bundled one (2 customers with cars, "
            "users and assignments)",
            rich_help_panel=_DATA,
        ),
    ] = None,
    empty: Annotated[
        bool,
        typer.Option(
            "--empty", metavar="", help="start with no data at all", rich_help_panel=_DATA
        ),
    ] = False,
    api_key: Annotated[
        str, typer.Option(help="the accepted flinkey-API-Key", rich_help_panel=_DATA)
    ] = "sandbox-api-key",
    username: Annotated[
        str, typer.Option(help="the API manager's username", rich_help_panel=_DATA)
    ] = "manager@example.com",
    password: Annotated[
        str, typer.Option(help="the API manager's password", rich_help_panel=_DATA)
    ] = "sandbox-password",
    sdk_key: Annotated[
        str,
        typer.Option(help="the accepted sdkKey of POST /sdk/token", rich_help_panel=_DATA),
    ] = "sandbox-sdk-key",
    token_lifetime: Annotated[
        float,
        typer.Option(metavar="SECONDS", min=0.001, help="access token lifetime, in seconds"),
    ] = 3600.0,
    write_delay: Annotated[
        float,
        typer.Option(
            metavar="SECONDS",
            min=0,
            help="seconds between a write's 204 and its application (and webhook)",
        ),
    ] = 0.05,
    webhook_url: Annotated[
        str | None,
        typer.Option(metavar="URL", help="where to POST webhook outcomes (default: nowhere)"),
    ] = None,
    webhook_secret: Annotated[
        str | None,
        typer.Option(
            metavar="SECRET", help="value of the Secret header of webhooks (never printed)"
        ),
    ] = None,
    rate_limit: Annotated[
        int | None,
        typer.Option(
            metavar="N",
            min=1,
            help="allow N requests per --rate-window per API key (default: no limit)",
        ),
    ] = None,
    rate_window: Annotated[
        float, typer.Option(metavar="SECONDS", min=0.001, help="rate-limit window, in seconds")
    ] = 1.0,
    max_body_bytes: Annotated[
        int, typer.Option(metavar="N", min=1, help="larger request bodies get 413")
    ] = 64 * 1024,
    fault_429: Annotated[
        float,
        typer.Option(
            "--fault-429",
            metavar="P",
            parser=probability,
            help="answer 429 with Retry-After",
            rich_help_panel=_FAULTS,
        ),
    ] = 0.0,
    fault_500: Annotated[
        float,
        typer.Option(
            "--fault-500",
            metavar="P",
            parser=probability,
            help="answer 500 Internal server error",
            rich_help_panel=_FAULTS,
        ),
    ] = 0.0,
    fault_reset: Annotated[
        float,
        typer.Option(
            metavar="P",
            parser=probability,
            help="close the connection without an answer",
            rich_help_panel=_FAULTS,
        ),
    ] = 0.0,
    latency: Annotated[
        str | None,
        typer.Option(
            metavar="LOW,HIGH",
            parser=_checked_range,
            help="add LOW..HIGH seconds to every answer",
            rich_help_panel=_FAULTS,
        ),
    ] = None,
    webhook_delay: Annotated[
        float,
        typer.Option(
            metavar="P",
            parser=probability,
            help="deliver a webhook late",
            rich_help_panel=_FAULTS,
        ),
    ] = 0.0,
    webhook_duplicate: Annotated[
        float,
        typer.Option(
            metavar="P",
            parser=probability,
            help="deliver a webhook twice",
            rich_help_panel=_FAULTS,
        ),
    ] = 0.0,
    webhook_drop: Annotated[
        float,
        typer.Option(
            metavar="P",
            parser=probability,
            help="never deliver a webhook",
            rich_help_panel=_FAULTS,
        ),
    ] = 0.0,
    seed: Annotated[
        int | None, typer.Option(help="seed for reproducible faults", rich_help_panel=_FAULTS)
    ] = None,
    access_log: Annotated[
        bool,
        typer.Option(
            "--access-log",
            metavar="",
            help="one line per request on stderr: client, method, path and query, status, "
            "time (no headers, no bodies)",
        ),
    ] = False,
    debug: DebugFlag = False,
) -> None:
    """Serve the flinkey API v3 emulator until Ctrl-C.

    Prints its URL and the credentials it accepts (as FLINKEY_* variables). Writes are applied
    after --write-delay and reported by webhook to --webhook-url.
    """
    if debug:
        enable_debug()
    run_sandbox(
        SandboxOptions(
            host=host,
            port=port,
            fixture=fixture,
            empty=empty,
            api_key=api_key,
            username=username,
            password=password,
            sdk_key=sdk_key,
            token_lifetime=token_lifetime,
            write_delay=write_delay,
            webhook_url=webhook_url,
            webhook_secret=webhook_secret,
            rate_limit=rate_limit,
            rate_window=rate_window,
            max_body_bytes=max_body_bytes,
            fault_429=fault_429,
            fault_500=fault_500,
            fault_reset=fault_reset,
            latency=seconds_range(latency) if latency else (0.0, 0.0),
            webhook_delay=webhook_delay,
            webhook_duplicate=webhook_duplicate,
            webhook_drop=webhook_drop,
            seed=seed,
            access_log=access_log,
        )
    )


@app.command("demo")
def demo(debug: DebugFlag = False) -> None:
    """A guided tour of the SDK against an in-process sandbox.

    Starts a sandbox and a webhook receiver on free ports of 127.0.0.1, then creates, lists,
    updates and deletes an assignment, each write awaited to its confirmation. Nothing
    leaves this machine.
    """
    if debug:
        enable_debug()
    try:
        from ..demo import run_demo
        from ..sandbox import Sandbox  # noqa: F401 - the extra it needs
    except ModuleNotFoundError as exc:
        raise CliError(
            ExitCode.CONFIGURATION,
            f"the demo needs the 'sandbox' extra (module {exc.name!r} is not installed): "
            "pip install 'flinkey_async[sandbox]'",
        ) from None
    status = run_async(run_demo)
    if status:
        raise CliError(ExitCode.FAILURE, "the demo failed")


for _group in GROUPS:
    app.add_typer(build_group(_group), name=_group.command_name, help=_group.help)
app.add_typer(webhooks_app, name="webhooks")


# -- running ----------------------------------------------------------------------------------
def _click_exception(name: str) -> type[Exception]:
    """Click's exception class of that name, whichever Click Typer uses (its own copy since
    Typer 0.2x, the ``click`` package before)."""
    for cls in typer.BadParameter.__mro__:
        if cls.__name__ == name:
            return cls
    raise LookupError(name)


_UsageError = _click_exception("UsageError")
_ClickException = _click_exception("ClickException")


def _say(message: str) -> None:
    print(" ".join(message.split()), file=sys.stderr, flush=True)


def _trace(exc: BaseException) -> None:
    if debug_enabled():
        traceback.print_exception(exc, file=sys.stderr)


def run(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (see :class:`ExitCode`)."""
    args = list(sys.argv[1:] if argv is None else argv)
    command = typer.main.get_command(app)
    try:
        result: Any = command.main(args=args, prog_name="flinkey", standalone_mode=False)
    except CliError as exc:
        _trace(exc)
        if exc.code is ExitCode.USAGE:  # as Click's own usage errors: the command, its --help
            path = exc.command_path or "flinkey"
            _say(f"{path}: {exc.message} (see {path} --help)")
        else:
            _say(f"flinkey: {exc.message}")
        return int(exc.code)
    except _UsageError as exc:
        ctx = getattr(exc, "ctx", None)
        path = ctx.command_path if ctx is not None else "flinkey"
        message = exc.format_message()  # type: ignore[attr-defined]
        if message.strip():  # (no message: no command given, and the help was shown)
            _say(f"{path}: {message} (see {path} --help)")
        return int(ExitCode.USAGE)
    except _ClickException as exc:
        _say(f"flinkey: {exc.format_message()}")  # type: ignore[attr-defined]
        return int(getattr(exc, "exit_code", ExitCode.FAILURE))
    except (KeyboardInterrupt, typer.Abort):
        _say("flinkey: interrupted")
        return int(ExitCode.INTERRUPTED)
    except typer.Exit as exc:
        return int(getattr(exc, "exit_code", 0))
    except BrokenPipeError:
        # the reader of stdout went away (| head): quiet, and no error at interpreter exit
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115
        return int(ExitCode.FAILURE)
    except Exception as exc:
        _trace(exc)
        _say(
            f"flinkey: internal error: {type(exc).__name__}: {exc}"
            + ("" if debug_enabled() else " (run with --debug for the traceback)")
        )
        return int(ExitCode.FAILURE)
    if isinstance(result, int) and result == ExitCode.INTERRUPTED:
        _say("flinkey: interrupted")
    return result if isinstance(result, int) else 0
