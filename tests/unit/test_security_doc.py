"""SECURITY.md names the tests that check its promises: every name must exist."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = re.compile(r"`(tests/[\w/]+\.py)(?:::(\w+))?`|`::(\w+)`")


def references() -> list[tuple[str, str | None]]:
    """(file, test name or None) for every reference, ``::name`` meaning the last file."""
    found: list[tuple[str, str | None]] = []
    current: str | None = None
    for match in REFERENCE.finditer((ROOT / "SECURITY.md").read_text(encoding="utf-8")):
        path, name, bare = match.groups()
        if path is not None:
            current = path
            found.append((path, name))
        else:
            assert current is not None, f"::{bare} before any file"
            found.append((current, bare))
    return found


def test_every_test_named_in_security_md_exists() -> None:
    refs = references()
    assert len(refs) >= 20
    for path, name in refs:
        source = ROOT / path
        assert source.is_file(), f"SECURITY.md names {path}, which does not exist"
        if name is None:
            continue
        tree = ast.parse(source.read_text(encoding="utf-8"))
        names = {
            node.name
            for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        }
        assert name in names, f"SECURITY.md names {path}::{name}, which does not exist"
