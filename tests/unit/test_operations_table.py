"""``docs/operations.md`` lists every operation of the API reference: each ``METHOD /path`` that
``flinkey-api.md`` mentions is a row of its table, each row has one of the four statuses, and
every SDK method a row names exists."""

from __future__ import annotations

import os
import re
from pathlib import Path

import flinkey_async.webhooks
from flinkey_async import FlinkeyClient
from flinkey_async.resources import resource

ROOT = Path(__file__).resolve().parents[2]
TABLE = ROOT / "docs" / "operations.md"
#: A copy of the project's API reference, kept with the tests so that they run anywhere
#: (``FLINKEY_API_REFERENCE`` points elsewhere); :func:`test_the_copy_is_current` compares it
#: with the original beside the checkout, where there is one.
VENDORED = ROOT / "tests" / "conformance" / "reference" / "flinkey-api.md"
ORIGINAL = ROOT.parent / "shared" / "docs" / "flinkey-api.md"
REFERENCE = Path(os.environ.get("FLINKEY_API_REFERENCE", str(VENDORED)))
OPERATION = re.compile(r"\b(GET|PUT|PATCH|DELETE|POST) (/[A-Za-z0-9_{}./|-]*[A-Za-z0-9_}])")
STATUSES = {"supported", "not documented", "not found", "does not exist"}
SDK_CALL = re.compile(r"\bclient\.(\w+)(?:\.(\w+))?\(")


def operations(text: str) -> set[str]:
    """``METHOD /path`` of every mention, path parameters as ``{}`` and ``a|b`` alternatives of
    the last segment expanded (``GET /groups/{id}/users|services``)."""
    found: set[str] = set()
    for method, path in OPERATION.findall(text):
        path = re.sub(r"\{[^}]*\}", "{}", path)
        head, _, last = path.rpartition("/")
        for alternative in last.split("|"):
            found.add(f"{method} {head}/{alternative}")
    return found


def rows() -> list[list[str]]:
    cells = []
    for line in TABLE.read_text(encoding="utf-8").splitlines():
        if line.startswith("| ") and not line.startswith("| Operation"):
            cells.append([cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]])
    return cells


def test_the_reference_is_there() -> None:
    assert REFERENCE.is_file(), (
        f"the API reference {REFERENCE} is missing: the operations table cannot be checked "
        "(set FLINKEY_API_REFERENCE to its path)"
    )


def test_the_readme_carries_the_same_table() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    table = [
        line for line in TABLE.read_text(encoding="utf-8").splitlines() if line.startswith("|")
    ]
    start = readme.index(table[0])
    assert readme[start : start + len(table)] == table


def test_the_copy_is_current() -> None:
    """The vendored copy equals the original wherever the original is at hand (a development
    checkout, CI); on a machine without it the copy is all there is."""
    if ORIGINAL.is_file():
        assert VENDORED.read_bytes() == ORIGINAL.read_bytes(), (
            f"{VENDORED} is stale: copy {ORIGINAL} over it"
        )
    assert VENDORED.is_file()


def test_every_operation_of_the_reference_is_a_row() -> None:
    mentioned = operations(REFERENCE.read_text(encoding="utf-8"))
    assert len(mentioned) >= 30
    listed: set[str] = set()
    for operation, *_ in rows():
        listed |= operations(operation)
    missing = sorted(mentioned - listed)
    assert not missing, f"docs/operations.md lacks {missing}"
    assert not sorted(listed - mentioned), "the table lists operations the reference does not"


def test_every_row_has_a_status_and_a_section() -> None:
    table = rows()
    assert len(table) >= 40
    for operation, section, method, status in table:
        assert status in STATUSES, operation
        assert re.fullmatch(r"\d+(, \d+)*", section), operation
        assert all(2 <= int(s) <= 16 for s in section.split(", ")), operation
        if status == "supported":
            assert method and method != "none", operation
        if status == "not documented":
            assert "client.request(" in method, operation


def test_every_sdk_method_named_exists() -> None:
    client = FlinkeyClient("key", 1, token="token")  # never sends: no session is made
    named = 0
    for _operation, _section, method, _status in rows():
        for attribute, member in SDK_CALL.findall(method):
            named += 1
            value = getattr(client, attribute)
            if member:
                assert isinstance(getattr(FlinkeyClient, attribute), resource), attribute
                assert callable(getattr(value, member)), f"client.{attribute}.{member}"
            else:
                assert callable(value), f"client.{attribute}"
        for function in re.findall(r"`(\w+)\(", method):
            if function[0].islower() and function != "client":
                assert callable(getattr(flinkey_async.webhooks, function)), function
    assert named >= 30
