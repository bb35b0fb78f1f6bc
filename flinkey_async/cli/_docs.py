"""The command reference of ``docs/cli.md``, generated from the Typer app.

``docs/cli.md`` holds it between :data:`BEGIN` and :data:`END`; ``tests/e2e/test_cli.py``
fails when the file and the app drift apart. Regenerate with::

    python -m flinkey_async.cli._docs docs/cli.md
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import typer

from ._app import app
from ._connection import ENVIRONMENT
from ._resources import GROUPS

__all__ = ["BEGIN", "END", "common_options", "reference", "update"]

BEGIN = "<!-- BEGIN GENERATED COMMAND REFERENCE (python -m flinkey_async.cli._docs docs/cli.md) -->"
END = "<!-- END GENERATED COMMAND REFERENCE -->"

#: Parameters every resource command takes, documented once ("Common options").
_COMMON_NAMES = frozenset({*ENVIRONMENT, "sandbox", "output", "debug"})
_GROUP_NAMES = frozenset(g.command_name for g in GROUPS)


def _commands(command: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Any]]:
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _commands(sub, (*path, name))


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _value(param: Any) -> str:
    if getattr(param, "is_flag", False):
        return "flag"
    if param.param_type_name == "argument":
        parts = ["value"]
    else:
        parts = [f"`{param.metavar}`" if param.metavar else "value"]
    # the range: on the parameter (Typer's own Click), or on its type (Click's IntRange)
    bounds = param if hasattr(param, "min") else getattr(param, "type", None)
    low, high = getattr(bounds, "min", None), getattr(bounds, "max", None)
    if low is not None or high is not None:
        parts.append(f"{'' if low is None else low}..{'' if high is None else high}")
    if getattr(param, "multiple", False):
        parts.append("repeatable")
    return ", ".join(parts)


def _default(param: Any) -> str:
    default = param.default
    if param.required:
        return "required"
    if default is None or default is False or default == () or callable(default):
        return ""
    if isinstance(default, float) and default.is_integer():
        default = int(default)
    return f"`{default}`"


def _name(param: Any) -> str:
    if param.param_type_name == "argument":
        return f"`{param.metavar or param.name.upper()}`"
    return ", ".join(f"`{o}`" for o in (*param.opts, *param.secondary_opts))


def _is_common(path: tuple[str, ...], param: Any) -> bool:
    return path[0] in _GROUP_NAMES and param.name in _COMMON_NAMES


def _row(param: Any) -> str:
    cells = (_name(param), _value(param), _default(param), param.help or "")
    return "| " + " | ".join(_cell(c) for c in cells) + " |"


def _usage(path: tuple[str, ...], command: Any) -> str:
    args = [
        (p.metavar or p.name.upper()) if p.required else f"[{p.metavar or p.name.upper()}]"
        for p in command.params
        if p.param_type_name == "argument"
    ]
    return " ".join(("flinkey", *path, "[OPTIONS]", *args))


def reference() -> str:
    """The generated part of ``docs/cli.md``."""
    root = typer.main.get_command(app)
    lines = [BEGIN, "", "## Common options", ""]
    lines.append(
        "Every resource command (all but `sandbox`, `demo` and `webhooks serve`) takes "
        "these. Each connection option falls back to its environment variable."
    )
    lines += ["", "| Option | Value | Description |", "|---|---|---|"]
    for param in common_options():
        cells = (_name(param), _value(param), param.help or "")
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    lines += ["", "## Command reference", ""]
    lines.append(
        "Generated from the command line itself (`flinkey COMMAND --help` shows the same). "
        "Every resource command also takes the [common options](#common-options)."
    )
    lines.append("")
    for path, command in _commands(root, ()):
        if not path or getattr(command, "commands", None):
            continue
        lines.append(f"### `flinkey {' '.join(path)}`")
        lines.append("")
        help_text = (command.help or "").strip()
        if help_text:
            lines.append(" ".join(help_text.split("\n\n")[0].split()))
            for paragraph in help_text.split("\n\n")[1:]:
                lines += ["", " ".join(paragraph.split())]
            lines.append("")
        lines += ["```", _usage(path, command), "```", ""]
        params = [
            p
            for p in command.params
            if not getattr(p, "hidden", False) and p.name != "help" and not _is_common(path, p)
        ]
        if params:
            lines += [
                "| Argument or option | Value | Default | Description |",
                "|---|---|---|---|",
            ]
            lines += [_row(p) for p in params]
            lines.append("")
    lines.append(END)
    return "\n".join(lines) + "\n"


def common_options() -> list[Any]:
    """The parameters of the common options (from ``assignments get``, which has them all)."""
    root = typer.main.get_command(app)
    command = root.commands["assignments"].commands["get"]  # type: ignore[attr-defined]
    return [p for p in command.params if _is_common(("assignments",), p)]


def update(text: str) -> str:
    """``text`` (``docs/cli.md``) with its generated part replaced by :func:`reference`."""
    head, sep, rest = text.partition(BEGIN)
    if not sep:
        raise ValueError(f"docs/cli.md has no {BEGIN!r} line")
    _, sep, tail = rest.partition(END)
    if not sep:
        raise ValueError(f"docs/cli.md has no {END!r} line")
    return head + reference().rstrip("\n") + tail


if __name__ == "__main__":
    for path in sys.argv[1:]:
        with open(path, encoding="utf-8") as fh:
            old = fh.read()
        new = update(old)
        if new != old:
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(new)
            print(f"updated {path}")
