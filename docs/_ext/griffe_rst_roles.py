"""A griffe extension for the API reference: the SDK's docstrings use Sphinx roles
(``:class:`~flinkey_async.Query```), which Markdown would show as written. Each role becomes
an optional autorefs cross-reference: a link where the object is rendered in the reference,
plain code where it is not (never a warning), with the name resolved the way Python would
from the docstring's scope. ``Example::`` before an indented block loses its second colon.

Used by ``mkdocs.yml`` (``extensions:`` of the mkdocstrings Python handler).
"""

from __future__ import annotations

import html
import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:class|func|meth|data|attr|mod|exc|obj):`(?P<tilde>~?)(?P<target>[^`]+)`")
LITERAL_INTRO = re.compile(r"(?<=\S)::$", re.MULTILINE)


def resolve(obj: griffe.Object | griffe.Alias, target: str) -> str | None:
    """The full path of ``target`` seen from ``obj``'s scope, or None."""
    if target.startswith("flinkey_async"):
        return target
    head, _, rest = target.partition(".")
    try:
        found = obj.resolve(head)
    except Exception:  # griffe's NameResolutionError, or a scope it cannot walk
        return None
    return f"{found}.{rest}" if rest else found


def convert(obj: griffe.Object | griffe.Alias, text: str) -> str:
    def role(match: re.Match[str]) -> str:
        target = match["target"].strip().removesuffix("()")
        shown = target.rsplit(".", 1)[-1] if match["tilde"] else target
        code = f"<code>{html.escape(shown)}</code>"
        identifier = resolve(obj, target.lstrip("."))
        if identifier is None:
            return code
        return f'<autoref identifier="{html.escape(identifier)}" optional>{code}</autoref>'

    return LITERAL_INTRO.sub(":", ROLE.sub(role, text))


class RstRoles(griffe.Extension):
    """Rewrites the roles of every docstring of a loaded package."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        self._walk(pkg, set())

    def _walk(self, obj: griffe.Object, seen: set[str]) -> None:
        if obj.path in seen:
            return
        seen.add(obj.path)
        if obj.docstring is not None:
            obj.docstring.value = convert(obj, obj.docstring.value)
        for member in obj.members.values():
            if not member.is_alias:
                assert isinstance(member, griffe.Object)
                self._walk(member, seen)
