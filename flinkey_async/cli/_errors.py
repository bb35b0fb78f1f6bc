"""Exit codes, the CLI's own errors, and how every other error becomes one line.

Every command exits with the same codes (:class:`ExitCode`); an error is ONE line on stderr,
``flinkey: <message>``, and ``--debug`` adds the traceback. SDK exceptions never carry
credentials in their text (see :mod:`flinkey_async.errors`), and neither do the messages
written here.
"""

from __future__ import annotations

import enum
import re
import sys
from collections.abc import Mapping

import typer
from yarl import URL

from ..errors import (
    AuthenticationError,
    FlinkeyError,
    InvalidApiKeyError,
    InvalidTokenError,
    NotFoundError,
    OperationError,
    OperationTimeoutError,
    TransportError,
    ValidationError,
)

__all__ = ["CliError", "ExitCode", "config_error", "from_sdk_error", "usage_error"]


class ExitCode(enum.IntEnum):
    """The exit status of every ``flinkey`` command."""

    #: Success.
    OK = 0
    #: The API answered with an error, the request failed (connection, decoding), flinkey
    #: reported that a write failed, or the sandbox could not serve.
    FAILURE = 1
    #: A usage error: an unknown command or option, a missing or malformed argument, or a
    #: value the SDK rejected before sending anything.
    USAGE = 2
    #: A configuration error: missing or invalid credentials, customer id or base URL
    #: (options or environment variables), a missing extra, an unreadable or malformed
    #: sandbox fixture, an address the sandbox cannot listen on.
    CONFIGURATION = 3
    #: A write was accepted but not confirmed within ``--wait`` seconds.
    TIMEOUT = 4
    #: Interrupted (Ctrl-C).
    INTERRUPTED = 130


class CliError(Exception):
    """An error with its exit status and its one-line message (no ``flinkey:`` prefix)."""

    def __init__(self, code: ExitCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = " ".join(message.split())  # one line, whatever the source wrote
        #: The command a usage error belongs to (``flinkey assignments create``), for its
        #: ``(see ... --help)``: the command being parsed or run when it was raised.
        self.command_path: str | None = _command_path() if code is ExitCode.USAGE else None


def _command_path() -> str | None:
    """The path of the command whose parameters are parsed or whose callback runs now."""
    globals_module = sys.modules.get(typer.BadParameter.__module__.rpartition(".")[0] + ".globals")
    get_current_context = getattr(globals_module, "get_current_context", None)
    ctx = get_current_context(silent=True) if get_current_context is not None else None
    path = getattr(ctx, "command_path", None)
    return path if isinstance(path, str) and path else None


def usage_error(message: str) -> CliError:
    return CliError(ExitCode.USAGE, message)


def config_error(message: str) -> CliError:
    return CliError(ExitCode.CONFIGURATION, message)


def _without_v3(base_url: URL | None) -> bool:
    return base_url is not None and not base_url.path.rstrip("/").endswith("/v3")


def from_sdk_error(
    exc: FlinkeyError,
    *,
    base_url: URL | None = None,
    flags: Mapping[str, str] | None = None,
) -> CliError:
    """The :class:`CliError` for an exception of the SDK.

    ``base_url`` (the one used) adds the hint for a 404 from a base URL without ``/v3``;
    ``flags`` maps SDK argument names to the command's options (``lifetime`` ->
    ``--lifetime``), so that a rejected argument is named as the user typed it.
    """
    if isinstance(exc, ValidationError):
        flags = flags or {}
        message = exc.message
        for argument, flag in flags.items():
            if "_" in argument:  # product_id -> --product; plain words stay as they are
                message = re.sub(rf"\b{re.escape(argument)}\b", flag, message)
        return usage_error(f"{flags.get(exc.argument, exc.argument)}: {message}")
    if isinstance(exc, OperationTimeoutError):
        return CliError(ExitCode.TIMEOUT, str(exc))
    if isinstance(exc, OperationError):
        return CliError(ExitCode.FAILURE, str(exc))
    message = str(exc)
    if isinstance(exc, NotFoundError) and _without_v3(base_url):
        message += (
            f" (hint: the base URL {base_url} does not end in /v3; the flinkey API v3 is "
            "served under /v3, e.g. https://api.flinkey.de/v3)"
        )
    elif isinstance(exc, InvalidApiKeyError):
        message += " (hint: check --api-key / FLINKEY_API_KEY)"
    elif isinstance(exc, InvalidTokenError):
        message += (
            " (hint: check --token / FLINKEY_TOKEN, or use --username and --password, which "
            "fetch and refresh tokens)"
        )
    elif isinstance(exc, AuthenticationError):
        message += " (hint: check the API key and the credentials)"
    elif isinstance(exc, TransportError) and base_url is not None:
        message += f" (base URL {base_url})"
    return CliError(ExitCode.FAILURE, message)
