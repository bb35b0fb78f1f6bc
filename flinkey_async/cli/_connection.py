"""Where a command sends its requests, and as whom: the connection options and environment
variables, the in-process sandbox of ``--sandbox``, and ``--debug``'s description of the
target (which never shows a secret).

Every option falls back to its environment variable (:data:`ENVIRONMENT`); an option given on
the command line wins. Nothing here prints or raises with a secret's value: messages name the
option or variable, never what it holds.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import os
import secrets
import sys
from collections.abc import AsyncIterator
from typing import Annotated, Any

import attrs
import typer
from yarl import URL

from .._validate import check_id
from ..client import DEFAULT_BASE_URL, UAT_BASE_URL, FlinkeyClient
from ..errors import ValidationError
from ._errors import config_error, usage_error

__all__ = [
    "DebugFlag",
    "BASE_URL_ALIASES",
    "CONNECTION_PANEL",
    "ENVIRONMENT",
    "Connected",
    "ConnectionOptions",
    "connect",
    "connection_parameters",
    "debug_enabled",
    "enable_debug",
    "note",
]

#: The help panel of the connection options.
CONNECTION_PANEL = "Connection (options win over environment variables)"

#: Option -> environment variable, as documented in ``--help`` and ``docs/cli.md``.
ENVIRONMENT: dict[str, str] = {
    "base_url": "FLINKEY_BASE_URL",
    "api_key": "FLINKEY_API_KEY",
    "customer_id": "FLINKEY_CUSTOMER_ID",
    "token": "FLINKEY_TOKEN",
    "username": "FLINKEY_USERNAME",
    "password": "FLINKEY_PASSWORD",
}

#: Names accepted in place of a base URL.
BASE_URL_ALIASES: dict[str, str] = {
    "production": DEFAULT_BASE_URL,
    "prod": DEFAULT_BASE_URL,
    "uat": UAT_BASE_URL,
}

_HELP = {
    "base_url": "API base URL ending in /v3, or production or uat; unset: production, with a "
    "warning",
    "api_key": "the flinkey-API-Key of the flinkey Portal's Developer page; a secret: prefer "
    "the variable",
    "customer_id": "the Customer-ID to act for (flinkey customers list shows yours)",
    "token": "a bearer token obtained elsewhere, instead of --username and --password; a "
    "secret: prefer the variable",
    "username": "an API manager's username (tokens are then fetched and refreshed)",
    "password": "the API manager's password; a secret: prefer the variable",
}

_METAVAR = {
    "base_url": "URL",
    "api_key": "KEY",
    "customer_id": "ID",
    "token": "TOKEN",
    "username": "NAME",
    "password": "PASSWORD",
}

_debug = False
_IMPLICIT = "the default, as neither --base-url nor FLINKEY_BASE_URL is set"
_logger = logging.getLogger("flinkey_async")


def enable_debug() -> None:
    """``--debug``: SDK log lines (method, path, status; never headers) and tracebacks."""
    global _debug
    if _debug:
        return
    _debug = True
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("flinkey: debug: %(message)s"))
    _logger.addHandler(handler)
    _logger.setLevel(logging.DEBUG)


#: ``--debug`` taken after a command that has no connection options (``sandbox``, ``demo``,
#: ``webhooks serve``), as the root and every resource command take it.
DebugFlag = Annotated[
    bool,
    typer.Option(
        "--debug",
        metavar="",
        help="show SDK log lines and a full traceback on errors (as before the command)",
    ),
]


def debug_enabled() -> bool:
    return _debug


def note(message: str) -> None:
    """A ``--debug`` line on stderr."""
    if _debug:
        print(f"flinkey: debug: {message}", file=sys.stderr, flush=True)


def _warn(message: str) -> None:
    print(f"flinkey: warning: {message}", file=sys.stderr, flush=True)


def connection_parameters() -> list[inspect.Parameter]:
    """The Typer parameters every API command takes (see :class:`ConnectionOptions`)."""
    params = [
        inspect.Parameter(
            name,
            inspect.Parameter.KEYWORD_ONLY,
            default=None,
            annotation=Annotated[
                str | None,
                typer.Option(
                    "--" + name.replace("_", "-"),
                    help=f"{_HELP[name]}; env {variable}",
                    metavar=_METAVAR[name],
                    show_default=False,
                    rich_help_panel=CONNECTION_PANEL,
                ),
            ],
        )
        for name, variable in ENVIRONMENT.items()
    ]
    params.append(
        inspect.Parameter(
            "sandbox",
            inspect.Parameter.KEYWORD_ONLY,
            default=False,
            annotation=Annotated[
                bool,
                typer.Option(
                    "--sandbox",
                    metavar="",
                    help="run against a fresh in-process sandbox (bundled data; credentials "
                    "filled in from it; writes confirmed by its webhooks); ignores the "
                    "FLINKEY_* variables",
                    rich_help_panel=CONNECTION_PANEL,
                ),
            ],
        )
    )
    return params


@attrs.frozen
class ConnectionOptions:
    """The connection options as given (``None``: not on the command line)."""

    base_url: str | None = None
    api_key: str | None = attrs.field(default=None, repr=False)
    customer_id: str | None = None
    token: str | None = attrs.field(default=None, repr=False)
    username: str | None = None
    password: str | None = attrs.field(default=None, repr=False)
    sandbox: bool = False

    @classmethod
    def pop_from(cls, values: dict[str, Any]) -> ConnectionOptions:
        """Take the connection options out of a command's keyword arguments."""
        return cls(**{a.name: values.pop(a.name) for a in attrs.fields(cls)})


def _setting(options: ConnectionOptions, name: str) -> tuple[str | None, str]:
    """(value, where it came from) of one setting; an empty variable counts as unset, an
    empty option is a usage error (it must never silently mean the default)."""
    given = getattr(options, name)
    flag = "--" + name.replace("_", "-")
    variable = ENVIRONMENT[name]
    if given is not None:
        if not given.strip():
            raise usage_error(
                f"{flag} is empty: give a value, or leave the option out to use {variable}"
            )
        return given, flag
    value = os.environ.get(variable)
    return (value if value and value.strip() else None), variable


@attrs.frozen
class Connected:
    """A ready client and what ``--debug`` and error hints need to know of its target."""

    client: FlinkeyClient
    base_url: URL
    #: With ``--sandbox``: the in-process sandbox's ``SandboxConfig`` (its credentials fill
    #: in secret parameters such as ``sdk_key``); else ``None``.
    sandbox_config: Any = None


def _environment_name(url: URL) -> str:
    text = str(url).rstrip("/")
    if text == DEFAULT_BASE_URL:
        return "production"
    if text == UAT_BASE_URL:
        return "UAT"
    return "custom"


def _base_url(options: ConnectionOptions) -> tuple[URL, str]:
    value, source = _setting(options, "base_url")
    if value is None:
        return URL(DEFAULT_BASE_URL), _IMPLICIT
    value = BASE_URL_ALIASES.get(value.strip().lower(), value.strip())
    try:
        url = URL(value)
    except (TypeError, ValueError):
        url = None
    if url is None or not url.is_absolute() or url.scheme not in ("http", "https") or not url.host:
        raise config_error(
            f"{source} must be an absolute http(s) URL such as https://api.flinkey.de/v3 "
            f"(or production, uat), got {value!r}"
        )
    if url.query_string or url.fragment or url.user or url.password:
        raise config_error(f"{source} must not carry a query, a fragment or credentials")
    return url, source


def _customer_id(options: ConnectionOptions, required: bool) -> tuple[int, str]:
    value, source = _setting(options, "customer_id")
    if value is None:
        if not required:
            return 1, "not needed"  # not sent by this command; the client needs one
        raise config_error(
            "no customer id: set FLINKEY_CUSTOMER_ID or pass --customer-id "
            "(flinkey customers list shows the customers you may act for)"
        )
    try:
        return check_id(int(value.strip()), "customer_id"), source
    except (ValueError, ValidationError):
        raise config_error(f"{source} must be a positive integer id, got {value!r}") from None


def _client(options: ConnectionOptions, *, customer_scoped: bool) -> Connected:
    if options.sandbox:
        raise AssertionError("--sandbox is opened by _sandbox_client")
    url, url_source = _base_url(options)
    api_key, key_source = _setting(options, "api_key")
    if api_key is None:
        raise config_error("no API key: set FLINKEY_API_KEY or pass --api-key")
    customer_id, customer_source = _customer_id(options, customer_scoped)
    token, token_source = _setting(options, "token")
    username, user_source = _setting(options, "username")
    password, password_source = _setting(options, "password")
    if token is not None and (username is not None or password is not None):
        given = ", ".join(s for v, s in ((username, user_source), (password, password_source)) if v)
        raise config_error(
            f"give a token ({token_source}) or a username and password ({given}), not both"
        )
    if token is None and (username is None or password is None):
        missing = [s for v, s in ((username, user_source), (password, password_source)) if not v]
        raise config_error(
            "no credentials: set FLINKEY_TOKEN, or FLINKEY_USERNAME and FLINKEY_PASSWORD "
            f"(or pass --token, or --username and --password); missing: {', '.join(missing)}"
        )
    try:
        if token is not None:
            client = FlinkeyClient(api_key, customer_id, token=token, base_url=url)
            auth = f"bearer token from {token_source}"
        else:
            client = FlinkeyClient(
                api_key, customer_id, username=username, password=password, base_url=url
            )
            auth = (
                f"password grant as {username} (from {user_source}; password from "
                f"{password_source})"
            )
    except ValidationError as exc:
        sources = {
            "api_key": key_source,
            "token": token_source,
            "username": user_source,
            "password": password_source,
        }
        source = sources.get(exc.argument, exc.argument)  # the option or the variable
        raise config_error(f"{source}: {exc.message}") from None
    except (TypeError, ValueError) as exc:
        raise config_error(str(exc)) from None
    if url_source == _IMPLICIT:
        _warn(
            f"neither --base-url nor FLINKEY_BASE_URL is set: using production "
            f"({DEFAULT_BASE_URL}); set FLINKEY_BASE_URL=production (or uat, or a sandbox URL) "
            "to choose explicitly"
        )
    shown = url_source if url_source == _IMPLICIT else f"from {url_source}"
    note(f"target: {url} ({_environment_name(url)}; {shown})")
    note(f"customer: {customer_id} (from {customer_source})")
    note(f"API key: set (from {key_source}); auth: {auth}")
    return Connected(client, url)


@contextlib.asynccontextmanager
async def _sandbox_client(
    options: ConnectionOptions, *, customer_scoped: bool
) -> AsyncIterator[Connected]:
    """A client of a fresh in-process sandbox whose webhooks confirm the writes."""
    try:
        from aiohttp import web

        from ..sandbox import Sandbox, SandboxConfig
        from ..webhooks import OperationTracker, webhook_app
    except ModuleNotFoundError as exc:
        raise config_error(
            f"--sandbox needs the 'sandbox' extra (module {exc.name!r} is not installed): "
            "pip install 'flinkey_async[sandbox]'"
        ) from None
    given = [
        "--" + name.replace("_", "-")
        for name in ENVIRONMENT
        if name != "customer_id" and getattr(options, name) is not None
    ]
    if given:
        raise usage_error(f"--sandbox fills in the connection itself: leave out {', '.join(given)}")
    secret = secrets.token_urlsafe(24)
    tracker = OperationTracker()
    receiver = web.AppRunner(webhook_app(secret=secret, tracker=tracker), access_log=None)
    await receiver.setup()
    try:
        await web.TCPSite(receiver, "127.0.0.1", 0).start()
        hook_url = f"http://127.0.0.1:{receiver.addresses[0][1]}/webhooks/flinkey"
        config = SandboxConfig(write_delay=0.05, webhook_url=hook_url, webhook_secret=secret)
        async with Sandbox(config) as sandbox:
            assert sandbox.url is not None
            if options.customer_id is not None:
                customer_id, source = _customer_id(options, customer_scoped)
            else:
                customer_id, source = sandbox.customer_ids[0], "the sandbox's first customer"
            url = URL(sandbox.url)
            note(f"target: {url} (in-process sandbox; webhooks to {hook_url})")
            note(
                f"customer: {customer_id} (from {source}; sandbox customers: "
                f"{', '.join(map(str, sandbox.customer_ids))})"
            )
            note(f"API key: the sandbox's; auth: password grant as {config.username}")
            client = FlinkeyClient(
                config.api_key,
                customer_id,
                username=config.username,
                password=config.password,
                base_url=url,
                tracker=tracker,
            )
            async with client:
                yield Connected(client, url, config)
    finally:
        await receiver.cleanup()


@contextlib.asynccontextmanager
async def connect(
    options: ConnectionOptions, *, customer_scoped: bool = True
) -> AsyncIterator[Connected]:
    """The client a command uses, closed afterwards."""
    if options.sandbox:
        async with _sandbox_client(options, customer_scoped=customer_scoped) as connected:
            yield connected
        return
    connected = _client(options, customer_scoped=customer_scoped)
    async with connected.client:
        yield connected
