"""Every Python block of ``README.md`` and of the pages under ``docs/`` runs, as written,
against the sandbox (with Sybil: https://sybil.readthedocs.io).

How a page's blocks run (the README says the same to its readers):

* A page is one session, as in ``python -m asyncio``: its blocks run in order, in one
  namespace, and a block with a top-level ``await`` runs on one event loop kept for the page.
  A block without one runs as a script would, so ``asyncio.run(main())`` works.
* Nothing is provided: a page's first block makes what the page needs (a ``Sandbox``, a
  client); examples never reach beyond 127.0.0.1 (any other address is refused here).
* A block with a file name for title (````python title="test_booking.py"````; also ``ini``,
  ``toml`` and ``json`` blocks) is a file of a small project in a temporary directory. A
  ``test_*.py`` file is then run with pytest in a subprocess, in pytest-asyncio's default
  (strict) mode unless the page shows a configuration file, and must pass with every warning
  an error.
* ``<!-- skip: next -->`` (Sybil's syntax) leaves out the next block: only for a block that
  is not an example (the architecture page's summary of signatures).
* A page that names ``FLINKEY_REDIS_URL`` gets a real Redis server (the suite's), its URL in
  that variable.
* After the page's last block, what it left open (clients, sandboxes, receivers, servers)
  is closed, as leaving the REPL would.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import os
import re
import shlex
import socket
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from aiohttp import web
from sybil import Document, Example, Region
from sybil.evaluators.doctest import DocTestEvaluator
from sybil.evaluators.python import pad
from sybil.parsers.abstract.doctest import DocTestStringParser
from sybil.parsers.markdown import SkipParser
from sybil.parsers.markdown.lexers import RawFencedCodeBlockLexer

from flinkey_async import FlinkeyClient
from flinkey_async.sandbox import Sandbox
from flinkey_async.webhooks._receiving import ReceiverCore
from tests.support.redis_server import RedisServer

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]

PYTHON = {"python", "py", "python3", "pycon"}
PROJECT_FILES = PYTHON | {"ini", "toml", "cfg", "json"}
INFO = re.compile(r"(?P<language>[\w+-]+)(?P<attributes>[^\n]*)$\n", re.MULTILINE)
TITLE = re.compile(r"""\btitle=(?:"(?P<double>[^"]*)"|'(?P<single>[^']*)')""")
LOCAL_HOSTS = {"127.0.0.1", "::1", "localhost"}

# pytest-asyncio's own notice in a project that does not set its fixture loop scope: a
# user's project without configuration sees it; it says nothing about the example.
UNSET_LOOP_SCOPE = (  # -W takes the message literally
    'ignore:The configuration option "asyncio_default_fixture_loop_scope" is unset'
    ":pytest.PytestDeprecationWarning"
)


class Page:
    """The session of one page: its event loop and its project directory."""

    def __init__(self, project: Path) -> None:
        self.runner = asyncio.Runner()
        self.project = project
        self.blocks = 0
        lexer = RawFencedCodeBlockLexer(info_pattern=INFO)
        self.doctests = DocTestStringParser(DocTestEvaluator())
        self.parsers: list[Callable[[Document], Iterable[Region]]] = [
            SkipParser(),
            lambda document: self._regions(lexer(document), document),
        ]

    def _regions(self, regions: Iterable[Region], document: Document) -> Iterator[Region]:
        for region in regions:
            language = region.lexemes["language"].lower()
            match = TITLE.search(region.lexemes["attributes"])
            title = (match["double"] or match["single"]) if match else None
            source = region.lexemes["source"]
            if title is not None and language in PROJECT_FILES:
                region.parsed = (title, source)
                region.evaluator = self.write_file
                yield region
            elif language in PYTHON and source.lstrip().startswith(">>>"):
                for doctest in self.doctests(source, document.path):
                    doctest.adjust(region, source)
                    yield doctest
            elif language in PYTHON:
                region.parsed = source
                region.evaluator = self.run_python
                yield region

    # -- evaluators -----------------------------------------------------------------------

    def run_python(self, example: Example) -> None:
        self.blocks += 1
        source = pad(example.parsed, example.line + example.parsed.line_offset)
        code = compile(
            source, example.path, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True
        )
        namespace = example.namespace
        namespace.setdefault("__name__", "__main__")
        if code.co_flags & inspect.CO_COROUTINE:
            self.runner.run(eval(code, namespace))
        else:
            exec(code, namespace)

    def write_file(self, example: Example) -> None:
        self.blocks += 1
        name, source = example.parsed
        path = self.project / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(str(source), encoding="utf-8")
        if path.suffix == ".py" and path.name.startswith("test_"):
            self._pytest(path, example)

    def _pytest(self, path: Path, example: Example) -> None:
        configured = any(
            (self.project / name).exists()
            for name in ("pytest.ini", "pyproject.toml", "tox.ini", "setup.cfg")
        )
        if not configured:  # a project without configuration: pytest's and its plugins' defaults
            (self.project / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
        command = [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-W",
            "error",
            "-W",
            UNSET_LOOP_SCOPE,
            str(path.relative_to(self.project)),
        ]
        result = subprocess.run(
            command,
            cwd=self.project,
            capture_output=True,
            text=True,
            timeout=180,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
            check=False,
        )
        if result.returncode != 0:
            raise AssertionError(
                f"{example.path}, line {example.line}: {shlex.join(command)} failed "
                f"(exit status {result.returncode}):\n{result.stdout}\n{result.stderr}"
            )

    # -- the end of the page ----------------------------------------------------------------

    def close(self, namespace: dict[str, Any]) -> None:
        try:
            self.runner.run(close_left_open(list(namespace.values())))
        finally:
            self.runner.close()


async def close_left_open(values: list[Any]) -> None:
    """Close what a page left open: servers first, then receivers, clients and sandboxes."""
    for value in values:
        if isinstance(value, uvicorn.Server):
            value.should_exit = True
    for value in values:
        if isinstance(value, asyncio.Task) and not value.done():
            await asyncio.wait([value], timeout=5)
    for value in values:
        if isinstance(value, web.BaseRunner):
            await value.cleanup()
        elif isinstance(value, ReceiverCore):
            await value.aclose()
    for value in values:
        if isinstance(value, FlinkeyClient):
            await value.aclose()
    for value in values:
        if isinstance(value, Sandbox):
            await value.stop()


def refuse_remote(monkeypatch: pytest.MonkeyPatch) -> None:
    """Examples may connect to 127.0.0.1 only: anything else is refused."""
    getaddrinfo = socket.getaddrinfo
    connect = socket.socket.connect

    def local(host: Any) -> bool:
        if isinstance(host, bytes):
            host = host.decode()
        return host is None or str(host) in LOCAL_HOSTS

    def checked_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if not local(host):
            raise OSError(f"documentation examples may not resolve {host!r}: use 127.0.0.1")
        return getaddrinfo(host, *args, **kwargs)

    def checked_connect(self: socket.socket, address: Any) -> None:
        if self.family in (socket.AF_INET, socket.AF_INET6) and not local(address[0]):
            raise OSError(f"documentation examples may not connect to {address!r}")
        connect(self, address)

    monkeypatch.setattr(socket, "getaddrinfo", checked_getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", checked_connect)


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_every_python_block_runs(
    page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    refuse_remote(monkeypatch)
    redis = None
    if "FLINKEY_REDIS_URL" in page.read_text(encoding="utf-8"):
        redis = RedisServer(persist=False)  # the shared-mode examples need a real Redis
        redis.start()
        monkeypatch.setenv("FLINKEY_REDIS_URL", redis.url)
    session = Page(tmp_path / "project")
    session.project.mkdir()
    document = Document.parse(str(page), *session.parsers)
    monkeypatch.chdir(tmp_path)  # files an example writes land here
    try:
        for example in document.examples():
            example.evaluate()
    finally:
        session.close(document.namespace)
        if redis is not None:
            redis.close()


def test_the_readme_and_the_guides_have_python_blocks() -> None:
    """The collection above finds the blocks (a changed fence syntax would hide them all)."""
    for name in ("README.md", "docs/confirming-writes.md", "docs/testing.md", "docs/updating.md"):
        session = Page(Path("unused"))
        try:
            document = Document.parse(str(ROOT / name), *session.parsers)
            assert len(list(document.examples())) >= 2, name
        finally:
            session.runner.close()
