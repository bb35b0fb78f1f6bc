"""The resource commands, declared in one table (:data:`GROUPS`) and built from the SDK.

Each :class:`Group` is one resource of the client (``client.assignments``) and becomes a
command group (``flinkey assignments``); each :class:`Command` names one method of the
resource and becomes one command. The command's arguments and options come from the method's
signature and its return type:

* a positional parameter is an argument (``assignment_id`` -> ``ASSIGNMENT_ID``), a
  keyword-only one an option (``renewable_after`` -> ``--renewable-after``; rename it with
  ``flags``); ints, strs, floats, bools and datetimes (which must carry a zone) are
  understood, and ids must be positive;
* a parameter typed :class:`~flinkey_async.auth.Secret` (``sdk_key``) is read from its option
  or from ``FLINKEY_<NAME>`` (``FLINKEY_SDK_KEY``), filled in by ``--sandbox``, and never
  printed;
* ``query: Query | None`` of a list method becomes ``--filter``, ``--orderby``, ``--top`` and
  ``--skip``; when the resource also has the paging twin (``iter`` of ``list``,
  ``iter_for_car`` of ``list_for_car``, ``iter_events`` of ``events``), ``--all`` and
  ``--page-size`` walk every page with a progress display;
* a ``JsonPatch`` parameter becomes ``--set PATH=VALUE`` and ``--remove PATH``, checked
  against the group's ``patch_schema``;
* a method returning a ``PendingOperation`` is an asynchronous write: it prints the operation
  (``{"operation": "create", "accepted": true, ...}``) and takes ``--wait SECONDS``; one
  returning ``None`` is a synchronous write and prints ``{"operation": ..., "applied": true,
  ...the arguments}``; one returning a ``Secret`` prints it masked unless ``--reveal``;
* every command takes ``--output``, the connection options (``--base-url``, ``--api-key``,
  ...; see :mod:`._connection`), ``--sandbox`` and ``--debug``.

Adding a resource to the CLI is one entry in :data:`GROUPS` (its class, its help text and
its methods); ``tests/e2e/test_cli.py`` fails while a resource of
:class:`flinkey_async.resources.Resources` has no entry, and while ``docs/cli.md`` does not
list every command and option.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import re
import types
import typing
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Annotated, Any, Literal, Union

import attrs
import typer

from .._converter import to_camel, wire_name
from .._wire import MAX_ID
from ..auth import Secret
from ..errors import FlinkeyError
from ..models.assignments import ASSIGNMENT_PATCH
from ..odata import Query
from ..operations import OperationOutcome, PendingOperation
from ..patch import JsonPatch
from ..patch_schema import PatchSchema
from ..resources import (
    Assignments,
    Cars,
    Customers,
    Events,
    Groups,
    Installations,
    Keyfobs,
    Pairings,
    Products,
    Resource,
    SdkTokens,
    Services,
    Users,
)
from ._connection import (
    CONNECTION_PANEL,
    ConnectionOptions,
    connect,
    connection_parameters,
    enable_debug,
)
from ._errors import CliError, ExitCode, config_error, from_sdk_error, usage_error
from ._output import (
    OutputFormat,
    emit,
    iterate_with_progress,
    resolve_format,
    to_data,
    wait_with_progress,
)
from ._parsing import DATETIME_HELP, aware_datetime, build_patch, orderby_key
from ._reconcile import add_reconcile

__all__ = ["GROUPS", "PARAMETER_HELP", "Command", "Group", "build_group", "run_async"]


@attrs.frozen
class Command:
    """One command: the resource method it calls, and what the CLI adds to it.

    Attributes:
        method: the method of the resource (``"list_for_car"``); the command is its name with
            dashes (``list-for-car``) unless ``name`` is given.
        help: the one-line help (default: the method docstring's first sentence).
        flags: parameter -> option name, where the parameter's own name reads badly on the
            command line (``{"car_id": "--car"}``).
        params_help: parameter -> help text, for parameters :data:`PARAMETER_HELP` does not
            describe (or describes otherwise).
        customer_scoped: whether it needs a customer id (default: the group's).
        from_connection: parameters filled with the connection's customer id
            (``FLINKEY_CUSTOMER_ID`` / ``--customer-id``) rather than options of their own.
        column: the field name of a result that is a plain value, or a list of them
            (``GET /brands`` answers strings).
    """

    method: str
    help: str | None = None
    name: str | None = None
    flags: Mapping[str, str] = attrs.field(factory=dict)
    params_help: Mapping[str, str] = attrs.field(factory=dict)
    customer_scoped: bool | None = None
    from_connection: tuple[str, ...] = ()
    column: str = "value"

    @property
    def command_name(self) -> str:
        return self.name or self.method.replace("_", "-")


@attrs.frozen
class Group:
    """One resource of the client as a command group.

    Attributes:
        attribute: the client attribute (``"assignments"``, ``"sdk_tokens"``); the group is
            called by it with dashes (``sdk-tokens``) unless ``name`` is given.
        resource: the resource class, whose method signatures define the commands.
        help: the group's one-line help.
        commands: its commands, in the order ``--help`` lists them.
        customer_scoped: whether its requests carry a ``Customer-ID`` (``customers`` do not).
        patch_schema: the :class:`PatchSchema` its ``JsonPatch`` parameters are checked
            against, if any.
    """

    attribute: str
    resource: type[Resource]
    help: str
    commands: tuple[Command, ...]
    customer_scoped: bool = True
    patch_schema: PatchSchema | None = None
    name: str | None = None
    #: Commands written by hand, added to the group's app: ``add(app, run_async, common)``,
    #: where ``common(kind)`` gives the options every command takes (output, connection, debug).
    extra: tuple[Callable[[typer.Typer, Any, Any], None], ...] = ()

    @property
    def command_name(self) -> str:
        return self.name or self.attribute.replace("_", "-")


_PRODUCT_FLAGS = {"product_id": "--product"}
_PRODUCT_HELP = {"product_id": "the product's id (or give --serial-number or --unique-id)"}

# -- the table: one entry per resource of the client ------------------------------------------
GROUPS: tuple[Group, ...] = (
    Group(
        "assignments",
        Assignments,
        "Assignments: who may open which car, and when (asynchronous writes).",
        commands=(
            Command("get", help="Show one assignment (GET /assignments/{id})."),
            Command(
                "list_for_car",
                help="List the assignments of one car (GET /cars/{carId}/assignments).",
            ),
            Command(
                "list_for_user",
                help="List the assignments of one user (GET /users/{userId}/assignments).",
            ),
            Command(
                "create",
                help="Give a user access to a car (PUT /assignments; applied asynchronously).",
                flags={"car_id": "--car", "user_id": "--user"},
            ),
            Command(
                "update",
                help="Change an assignment with a JSON Patch (PATCH /assignments/{id}; "
                "applied asynchronously).",
            ),
            Command(
                "delete",
                help="Remove an assignment (DELETE /assignments/{id}; applied asynchronously).",
            ),
        ),
        patch_schema=ASSIGNMENT_PATCH,
        extra=(add_reconcile,),
    ),
    Group(
        "customers",
        Customers,
        "Customers: the customers your API manager may act for (ids for --customer-id).",
        commands=(Command("list", help="List the customers you may act for (GET /customers)."),),
        customer_scoped=False,
    ),
    Group(
        "cars",
        Cars,
        "Cars of the customer, and their events.",
        commands=(
            Command("list", help="List the cars (GET /cars)."),
            Command("get", help="Show one car (GET /cars/{carId})."),
            Command(
                "events",
                help="List the events of one car: opened, closed (GET /cars/{carId}/events).",
            ),
        ),
    ),
    Group(
        "events",
        Events,
        "Events: a car opened or closed.",
        commands=(Command("get", help="Show one event (GET /events/{eventId})."),),
    ),
    Group(
        "users",
        Users,
        "Users of the customer.",
        commands=(
            Command("list", help="List the users (GET /users)."),
            Command("get", help="Show one user (GET /users/{userId})."),
            Command(
                "find_by_email",
                help="Find users by their exact e-mail address (GET /users with a $filter).",
            ),
        ),
    ),
    Group(
        "products",
        Products,
        "Products: flinkey Boxes and flinkey IQs.",
        commands=(
            Command("list", help="List the products (GET /products)."),
            Command("get", help="Show one product (GET /products/{productId})."),
        ),
    ),
    Group(
        "services",
        Services,
        "Services: the contracts of products.",
        commands=(
            Command("list", help="List the services (GET /services)."),
            Command("get", help="Show one service (GET /services/{serviceId})."),
        ),
    ),
    Group(
        "installations",
        Installations,
        "Installations: products into and out of cars (synchronous writes).",
        commands=(
            Command(
                "install",
                help="Install a product into a car (PUT /installations).",
                flags={"car_id": "--car", **_PRODUCT_FLAGS},
                params_help=_PRODUCT_HELP,
            ),
            Command(
                "uninstall",
                help="Take a product out of a car (DELETE /installations); taking out a "
                "flinkey Box removes all of the car's assignments.",
                flags={"car_id": "--car", **_PRODUCT_FLAGS},
                params_help=_PRODUCT_HELP,
            ),
        ),
    ),
    Group(
        "pairings",
        Pairings,
        "Pairings: services with products (synchronous writes).",
        commands=(
            Command(
                "pair",
                help="Pair a service with a product (PUT /pairings).",
                flags={"service_id": "--service", **_PRODUCT_FLAGS},
                params_help=_PRODUCT_HELP,
            ),
            Command(
                "unpair",
                help="Unlink a service from a product (DELETE /pairings).",
                flags={"service_id": "--service", **_PRODUCT_FLAGS},
                params_help=_PRODUCT_HELP,
            ),
        ),
    ),
    Group(
        "groups",
        Groups,
        "Groups of cars.",
        commands=(
            Command("list", help="List the groups (GET /groups)."),
            Command("cars", help="List the cars of one group (GET /groups/{groupId}/cars)."),
        ),
    ),
    Group(
        "keyfobs",
        Keyfobs,
        "The keyfob catalog: car brands and their keys (no customer id needed).",
        commands=(
            Command("brands", help="List the brands of the catalog (GET /brands).", column="brand"),
            Command("keys", help="List the keys of one brand (GET /brands/{brand}/keys)."),
        ),
        customer_scoped=False,
    ),
    Group(
        "sdk_tokens",
        SdkTokens,
        "Tokens for the flinkey mobile SDK (secrets: shown only with --reveal).",
        commands=(
            Command(
                "create",
                help="Create an id_token for a user of the customer (POST /sdk/token).",
                flags={"user_id": "--user"},
                from_connection=("customer_id",),
                column="idToken",
            ),
        ),
        customer_scoped=False,
    ),
    # A new resource of the SDK is one more entry here, e.g.
    #   Group("widgets", Widgets, "Widgets: ...", commands=(Command("list"), Command("get"))),
)

#: Help and metavar of parameters by name, shared by every resource.
PARAMETER_HELP: dict[str, tuple[str, str]] = {
    "start": ("DATETIME", f"when access begins; {DATETIME_HELP}"),
    "end": ("DATETIME", f"when access ends ({DATETIME_HELP}); left out: no end"),
    "lifetime": (
        "SECONDS",
        "how long a digital key stays valid, in seconds: 604800 to 2419200 (7 to 28 days); "
        "left out: the server's default, 604800",
    ),
    "renewable_after": (
        "SECONDS",
        "seconds after which a key may be renewed, more than 0 and less than the lifetime; "
        "left out: the server's default, half the lifetime",
    ),
    "serial_number": ("TEXT", "the product's serial number (instead of --product)"),
    "unique_id": ("TEXT", "the product's unique id (instead of --product)"),
    "email_address": ("EMAIL", "the e-mail address, matched exactly"),
    "brand": ("BRAND", "a brand as flinkey keyfobs brands lists it, e.g. AUDI"),
    "sdk_key": ("KEY", "the SDK Key of the flinkey Portal's Developer page; a secret"),
}

_QUERY_PANEL = "Query (OData, applied by the server)"
_PATCH_PANEL = "Patch (JSON Patch operations, in order)"
_OUTPUT_PANEL = "Output"

_Kind = Literal["read", "list", "write", "action", "secret"]


# -- building ---------------------------------------------------------------------------------
@attrs.frozen
class _Plan:
    """How one command maps its values onto one resource method."""

    group: Group
    command: Command
    kind: _Kind
    arguments: tuple[str, ...]  # SDK parameters filled from the command line as they are
    secrets: tuple[str, ...]  # SDK parameters read from an option or FLINKEY_<NAME>
    query: str | None
    patch: str | None
    pager: str | None
    flags: Mapping[str, str]  # SDK argument -> how the command line names it
    columns: tuple[str, ...]  # of a read's table or CSV (the model's wire names)

    @property
    def customer_scoped(self) -> bool:
        scoped = self.command.customer_scoped
        scoped = self.group.customer_scoped if scoped is None else scoped
        return scoped or bool(self.command.from_connection)


def secret_variable(name: str) -> str:
    """The environment variable of a secret parameter: ``sdk_key`` -> ``FLINKEY_SDK_KEY``."""
    return "FLINKEY_" + name.upper()


def _unwrap_optional(hint: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(hint)
    if origin is Union or origin is types.UnionType:
        args = typing.get_args(hint)
        members = [a for a in args if a is not type(None)]
        if len(members) == 1:
            return members[0], len(members) != len(args)
    return hint, False


def _mentions(hint: Any, cls: type[Any]) -> bool:
    return hint is cls or cls in typing.get_args(hint)


def _first_sentence(doc: str | None) -> str:
    text = inspect.cleandoc(doc or "").split("\n\n")[0]
    text = re.sub(r":\w+:`~?([^`]+)`", r"\1", text).replace("``", "")
    text = " ".join(text.split())
    return text.split(". ")[0].rstrip(".") + "." if text else ""


def _param(
    name: str, hint: Any, info: Any, default: Any = inspect.Parameter.empty
) -> inspect.Parameter:
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=Annotated[hint, info]
    )


def _secret_parameter(flags: dict[str, str], command: Command, name: str) -> inspect.Parameter:
    flag = command.flags.get(name, "--" + name.replace("_", "-"))
    flags[name] = flag
    metavar, help_text = PARAMETER_HELP.get(name, ("SECRET", f"the {name.replace('_', ' ')}"))
    help_text = command.params_help.get(name, help_text)
    info = typer.Option(
        flag,
        metavar=metavar,
        help=f"{help_text}; prefer the variable, never printed; env {secret_variable(name)}",
        show_default=False,
        rich_help_panel=CONNECTION_PANEL,
    )
    return _param(name, str | None, info, None)


def _value_parameter(
    flags: dict[str, str], command: Command, param: inspect.Parameter, hint: Any, where: str
) -> inspect.Parameter:
    base, optional = _unwrap_optional(hint)
    if base not in (int, str, float, bool, datetime):
        raise TypeError(f"{where}: cannot build an option for {param.name}: {hint!r}")
    metavar, help_text = PARAMETER_HELP.get(param.name, ("", ""))
    help_text = command.params_help.get(param.name, help_text)
    extra: dict[str, Any] = {}
    if base is int and param.name.endswith("_id"):
        metavar = metavar or param.name.upper()
        help_text = help_text or f"the {param.name[: -len('_id')].replace('_', ' ')}'s id"
        extra.update(min=1, max=MAX_ID)
    if base is datetime:
        metavar = metavar or "DATETIME"
        help_text = help_text or DATETIME_HELP
        extra["parser"] = aware_datetime
    required = param.default is inspect.Parameter.empty
    if param.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD and required:
        flags[param.name] = metavar or param.name.upper()
        info = typer.Argument(
            help=help_text, metavar=metavar or param.name.upper(), show_default=False, **extra
        )
        return _param(param.name, base, info)
    flag = command.flags.get(param.name, "--" + param.name.replace("_", "-"))
    flags[param.name] = flag
    if base is bool:
        extra["metavar"] = ""
    elif metavar:
        extra["metavar"] = metavar
    default = None if required else param.default
    info = typer.Option(flag, help=help_text, show_default=default not in (None, False), **extra)
    if required:
        return _param(param.name, base, info)
    return _param(param.name, base if base is bool and not optional else base | None, info, default)


def _query_parameters(pager: str | None) -> list[inspect.Parameter]:
    params = [
        _param(
            "filter",
            str | None,
            typer.Option(
                "--filter",
                metavar="ODATA",
                help="OData $filter, sent as written, with the fields' wire names, e.g. "
                '"id gt 100 and name ne null"',
                rich_help_panel=_QUERY_PANEL,
            ),
            None,
        ),
        _param(
            "orderby",
            list[str] | None,
            typer.Option(
                "--orderby",
                metavar="FIELD[:asc|desc]",
                help="sort by a field, ascending unless :desc; repeat for more keys",
                rich_help_panel=_QUERY_PANEL,
            ),
            None,
        ),
        _param(
            "top",
            int | None,
            typer.Option(
                "--top",
                metavar="N",
                min=0,
                max=MAX_ID,
                help="at most N items ($top" + ("; with --all: in total)" if pager else ")"),
                rich_help_panel=_QUERY_PANEL,
            ),
            None,
        ),
        _param(
            "skip",
            int | None,
            typer.Option(
                "--skip",
                metavar="N",
                min=0,
                max=MAX_ID,
                help="leave out the first N items ($skip)",
                rich_help_panel=_QUERY_PANEL,
            ),
            None,
        ),
    ]
    if pager is not None:
        params += [
            _param(
                "all_pages",
                bool,
                typer.Option(
                    "--all",
                    metavar="",
                    help="fetch page after page ($top/$skip) until the last, with progress on "
                    "a terminal; without it, one request",
                    rich_help_panel=_QUERY_PANEL,
                ),
                False,
            ),
            _param(
                "page_size",
                int,
                typer.Option(
                    "--page-size",
                    metavar="N",
                    min=1,
                    max=MAX_ID,
                    help="items per page with --all",
                    rich_help_panel=_QUERY_PANEL,
                ),
                100,
            ),
        ]
    return params


def _patch_parameters(schema: PatchSchema) -> list[inspect.Parameter]:
    paths = ", ".join(p.lstrip("/") for p in schema.pointers)
    return [
        _param(
            "set_values",
            list[str] | None,
            typer.Option(
                "--set",
                metavar="PATH=VALUE",
                help=f"replace a field, e.g. --set end=2026-04-01T00:00:00Z; datetimes need a "
                f"zone, null clears; paths: {paths}; repeatable",
                rich_help_panel=_PATCH_PANEL,
            ),
            None,
        ),
        _param(
            "remove_paths",
            list[str] | None,
            typer.Option(
                "--remove",
                metavar="PATH",
                help="remove a field, e.g. --remove end (no end); repeatable",
                rich_help_panel=_PATCH_PANEL,
            ),
            None,
        ),
    ]


def _common_parameters(kind: _Kind) -> list[inspect.Parameter]:
    params = []
    if kind == "write":
        params.append(
            _param(
                "wait",
                float | None,
                typer.Option(
                    "--wait",
                    metavar="SECONDS",
                    min=0,
                    help="wait up to SECONDS until the write is confirmed (by webhook with "
                    "--sandbox, else by polling the API); not confirmed in time: exit 4",
                    rich_help_panel=_OUTPUT_PANEL,
                ),
                None,
            )
        )
    if kind == "secret":
        params.append(
            _param(
                "reveal",
                bool,
                typer.Option(
                    "--reveal",
                    metavar="",
                    help="print the secret itself (by default it is shown as ***)",
                    rich_help_panel=_OUTPUT_PANEL,
                ),
                False,
            )
        )
    params.append(
        _param(
            "output",
            OutputFormat | None,
            typer.Option(
                "--output",
                "-o",
                metavar="table|json|csv",
                help="table, json or csv (default: table on a terminal, json otherwise)",
                rich_help_panel=_OUTPUT_PANEL,
                show_default=False,
            ),
            None,
        )
    )
    params += connection_parameters()
    params.append(
        _param(
            "debug",
            bool,
            typer.Option(
                "--debug",
                metavar="",
                help="show the target (never a secret), SDK log lines and tracebacks",
                rich_help_panel=_OUTPUT_PANEL,
            ),
            False,
        )
    )
    return params


def _kind(returned: Any) -> _Kind:
    if returned is PendingOperation:
        return "write"
    if returned is None or returned is type(None):
        return "action"
    if returned is Secret:
        return "secret"
    if typing.get_origin(returned) is list:
        return "list"
    return "read"


def _columns(returned: Any, column: str) -> tuple[str, ...]:
    """The wire names of what a read returns (a model, or a list of them); ``column`` for
    plain values."""
    item = typing.get_args(returned)[0] if typing.get_origin(returned) is list else returned
    if attrs.has(item):
        return tuple(wire_name(a) for a in attrs.fields(item))
    return (column,) if item in (str, int, float) else ()


def _twin(resource: type[Resource], method: str) -> str | None:
    """The paging method of a list method: ``iter`` of ``list``, ``iter_for_car`` of
    ``list_for_car``, ``iter_events`` of ``events``."""
    twin = "iter" + method[len("list") :] if method.startswith("list") else "iter_" + method
    return twin if callable(getattr(resource, twin, None)) else None


def _plan(group: Group, command: Command) -> tuple[_Plan, list[inspect.Parameter]]:
    where = f"{group.resource.__name__}.{command.method}"
    method = getattr(group.resource, command.method)
    hints = typing.get_type_hints(method)
    kind = _kind(hints.get("return"))
    pager = _twin(group.resource, command.method) if kind == "list" else None
    flags: dict[str, str] = {name: "--customer-id" for name in command.from_connection}
    arguments: list[str] = []
    secret_names: list[str] = []
    query = patch = None
    params: list[inspect.Parameter] = []
    for param in list(inspect.signature(method).parameters.values())[1:]:
        hint = hints.get(param.name, Any)
        base, _ = _unwrap_optional(hint)
        if param.name in command.from_connection:
            continue
        if base is Query:
            query = param.name
        elif base is JsonPatch:
            if group.patch_schema is None:
                raise TypeError(f"{where}: a JsonPatch parameter needs the group's patch_schema")
            patch = param.name
            flags[param.name] = "--set/--remove"
        elif _mentions(hint, Secret):
            params.append(_secret_parameter(flags, command, param.name))
            secret_names.append(param.name)
        else:
            params.append(_value_parameter(flags, command, param, hint, where))
            arguments.append(param.name)
    if query is not None and kind == "list":
        params += _query_parameters(pager)
        flags.update(
            query="--filter/--orderby", top="--top", skip="--skip", page_size="--page-size"
        )
    if patch is not None:
        assert group.patch_schema is not None
        params += _patch_parameters(group.patch_schema)
    params += _common_parameters(kind)
    plan = _Plan(
        group,
        command,
        kind,
        tuple(arguments),
        tuple(secret_names),
        query if kind == "list" else None,
        patch,
        pager,
        flags,
        _columns(hints.get("return"), command.column) if kind in ("read", "list") else (),
    )
    return plan, params


# -- running ----------------------------------------------------------------------------------
def _build_query(values: dict[str, Any]) -> Query | None:
    query = Query()
    if values.get("filter"):
        query = query.filter_raw(values["filter"])
    for item in values.get("orderby") or ():
        field, descending = orderby_key(item)
        query = query.orderby(field, desc=descending)
    if values.get("top") is not None:
        query = query.top(values["top"])
    if values.get("skip") is not None:
        query = query.skip(values["skip"])
    return query if str(query) else None


def _operation_data(op: PendingOperation, outcome: OperationOutcome | None) -> dict[str, Any]:
    """An asynchronous write as printed: what was accepted, then what ``--wait`` learnt (the
    outcome's fields, camelCase; ``event`` is the webhook's JSON)."""
    data: dict[str, Any] = {
        "operation": op.kind,
        "description": op.describe(),
        "accepted": True,
        "assignmentId": op.assignment_id,
        "checksum": op.checksum,
    }
    if outcome is None:
        return data
    for field in attrs.fields(type(outcome)):
        if field.name == "operation":
            continue
        value = getattr(outcome, field.name)
        if field.name == "event" and value is not None:
            payload = getattr(value, "payload", None)
            value = dict(payload) if payload else value
        data[to_camel(field.name)] = to_data(value)
    return data


def _scalars(items: Any, column: str) -> Any:
    if isinstance(items, list) and any(not isinstance(i, Mapping) for i in items):
        return [{column: i} for i in items]
    return items


def _secret_values(plan: _Plan, values: dict[str, Any], sandbox_config: Any) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name in plan.secrets:
        given = values.get(name)
        variable = secret_variable(name)
        if given is not None and not given.strip():
            raise usage_error(
                f"{plan.flags[name]} is empty: give a value, or leave the option out to use "
                f"{variable}"
            )
        value = given if given else os.environ.get(variable)
        if sandbox_config is not None:
            value = getattr(sandbox_config, name, value)
        if not value:
            what = name.replace("_", " ").replace("sdk", "SDK")
            raise config_error(f"no {what}: set {variable} or pass {plan.flags[name]}")
        found[name] = Secret(value)
    return found


async def _execute(plan: _Plan, values: dict[str, Any], options: ConnectionOptions) -> None:
    fmt = resolve_format(values.pop("output"))
    group, command = plan.group, plan.command
    try:
        call = {name: values[name] for name in plan.arguments}
        if plan.query is not None:
            call[plan.query] = _build_query(values)
        if plan.patch is not None:
            assert group.patch_schema is not None
            call[plan.patch] = build_patch(
                group.patch_schema, values.get("set_values") or [], values.get("remove_paths") or []
            )
    except FlinkeyError as exc:
        raise from_sdk_error(exc, flags=plan.flags) from exc
    if options.sandbox and any(values.get(name) for name in plan.secrets):
        given = ", ".join(plan.flags[n] for n in plan.secrets if values.get(n))
        raise CliError(
            ExitCode.USAGE, f"--sandbox fills in the connection itself: leave out {given}"
        )
    async with connect(options, customer_scoped=plan.customer_scoped) as connected:
        resource = getattr(connected.client, group.attribute)
        method = getattr(resource, command.method)
        secrets = _secret_values(plan, values, connected.sandbox_config)
        for name in command.from_connection:
            call[name] = connected.client.customer_id
        try:
            if plan.kind == "write":
                op: PendingOperation = await method(**call)
                outcome = None
                if values.get("wait") is not None:
                    timeout = values["wait"]
                    outcome = await wait_with_progress(
                        op.wait(timeout=timeout), f"waiting for the {op.describe()}", timeout
                    )
                emit(_operation_data(op, outcome), fmt)
            elif plan.kind == "action":
                await method(**call, **secrets)
                echoed = {to_camel(k): to_data(v) for k, v in call.items() if v is not None}
                emit({"operation": command.command_name, "applied": True, **echoed}, fmt)
            elif plan.kind == "secret":
                secret: Secret = await method(**call, **secrets)
                shown = secret.reveal() if values.get("reveal") else "***"
                emit({command.column: shown}, fmt)
            elif plan.pager is not None and values.get("all_pages"):
                pages = getattr(resource, plan.pager)(**call, page_size=values["page_size"])
                items = await iterate_with_progress(pages, "fetching items", to_data)
                emit(_scalars(items, command.column), fmt, columns=plan.columns)
            else:
                result = to_data(await method(**call, **secrets))
                shown = _scalars(result, command.column) if plan.kind == "list" else result
                emit(shown, fmt, columns=plan.columns)
        except FlinkeyError as exc:
            raise from_sdk_error(exc, base_url=connected.base_url, flags=plan.flags) from exc


def run_async(main: Callable[[], Any]) -> Any:
    """Run a coroutine function to completion; Ctrl-C ends it cleanly (exit status 130)."""
    try:
        return asyncio.run(main())
    except KeyboardInterrupt:
        raise CliError(ExitCode.INTERRUPTED, "interrupted") from None


def _callback(plan: _Plan) -> Callable[..., None]:
    def callback(**values: Any) -> None:
        if values.pop("debug", False):
            enable_debug()
        options = ConnectionOptions.pop_from(values)
        run_async(lambda: _execute(plan, values, options))

    return callback


def build_group(group: Group) -> typer.Typer:
    """The Typer app of one resource."""
    app = typer.Typer(help=group.help, no_args_is_help=True, add_completion=False)
    for command in group.commands:
        plan, params = _plan(group, command)
        callback = _callback(plan)
        callback.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        callback.__name__ = command.method
        method = getattr(group.resource, command.method)
        callback.__doc__ = command.help or _first_sentence(method.__doc__)
        app.command(name=command.command_name)(callback)
    for add in group.extra:
        add(app, run_async, _common_parameters)
    return app
