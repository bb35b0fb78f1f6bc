"""The exception tree drawn in docs/errors.md is the code's: every class it names exists in
``flinkey_async.errors`` and derives from the class it is drawn under (classes added to the
code later may be missing from the drawing; the API reference lists them all)."""

from __future__ import annotations

import re
from pathlib import Path

from flinkey_async import errors

PAGE = Path(__file__).resolve().parents[2] / "docs" / "errors.md"
LINE = re.compile(r"^(?P<indent>[│ ]*)(?:[├└]── )?(?P<name>[A-Za-z]+Error)\b")


def drawn_tree() -> list[tuple[int, str]]:
    text = PAGE.read_text(encoding="utf-8")
    block = text.split("```text\n", 1)[1].split("```", 1)[0]
    found = []
    for line in block.splitlines():
        match = LINE.match(line)
        assert match, f"not a line of the tree: {line!r}"
        depth = len(match["indent"]) // 4 + (0 if line.startswith("FlinkeyError") else 1)
        found.append((depth, match["name"]))
    return found


def test_the_drawn_exception_tree_is_the_codes() -> None:
    tree = drawn_tree()
    assert tree[0] == (0, "FlinkeyError") and len(tree) >= 25
    parents: list[str] = []
    for depth, name in tree:
        cls = getattr(errors, name)
        assert isinstance(cls, type) and issubclass(cls, errors.FlinkeyError), name
        del parents[depth:]
        if parents:
            parent = getattr(errors, parents[-1])
            assert parent in cls.__bases__, f"{name} is drawn under {parents[-1]}"
        parents.append(name)
