"""The installed ``flinkey`` console script, run in subprocesses against a sandbox (and the
same entry point, ``flinkey_async.cli.main``, called in this process where a matrix of
commands would otherwise start dozens of interpreters; a subprocess run of the same commands
checks that both print the same).

A module-wide ``flinkey sandbox`` process (with credentials of its own, so that a leak of any
of them is found) serves every command, in every output format; ``--sandbox`` runs commands
against an in-process one. Every error class has its exit status checked, every error is one
line on stderr, and no secret is ever printed, ``--debug`` included. ``docs/cli.md`` is
checked against the app, and the app against the SDK's resources.

Every subprocess is bounded by a timeout; ``subprocess.run`` closes its pipes, and the
sandbox process writes to files that are closed at teardown.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.request
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import attrs
import pytest
import typer

from flinkey_async.cli import main
from flinkey_async.cli._app import app
from flinkey_async.cli._connection import ENVIRONMENT
from flinkey_async.cli._docs import BEGIN, END, reference
from flinkey_async.cli._errors import ExitCode
from flinkey_async.cli._resources import GROUPS, secret_variable
from flinkey_async.resources import Resources, resource

ROOT = Path(__file__).resolve().parents[2]

# The module sandbox's credentials: distinct values, searched for in every output.
API_KEY = "cli-key-" + secrets.token_hex(6)
PASSWORD = "cli-password-" + secrets.token_hex(6)
SDK_KEY = "cli-sdk-key-" + secrets.token_hex(6)
WEBHOOK_SECRET = "cli-webhook-secret-" + secrets.token_hex(6)
USERNAME = "manager@example.com"

# asyncio's debug mode (PYTHONASYNCIODEBUG, inherited from the suite) reports slow steps.
_SLOW_STEP = re.compile(r"^Executing <.*> took \d+\.\d+ seconds$")


def _script() -> str:
    found = shutil.which("flinkey", path=sysconfig.get_path("scripts")) or shutil.which("flinkey")
    assert found, "the flinkey console script is not installed (pip install -e '.[cli]')"
    return found


FLINKEY = _script()


@attrs.frozen
class Result:
    code: int
    out: str
    err: str  # asyncio's slow-step reports removed

    @property
    def err_lines(self) -> list[str]:
        return self.err.splitlines()

    def json(self) -> Any:
        return json.loads(self.out)

    def csv(self) -> list[dict[str, str]]:
        return list(csv.DictReader(io.StringIO(self.out)))


def _base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLINKEY_")}
    env.update(COLUMNS="200", PYTHONWARNINGS="default", **extra)
    return env


def _without_slow_steps(stderr: str) -> str:
    return "\n".join(line for line in stderr.splitlines() if not _SLOW_STEP.match(line))


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> Result:
    proc = subprocess.run(
        [FLINKEY, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env if env is not None else _base_env(),
        stdin=subprocess.DEVNULL,
        check=False,
    )
    return Result(proc.returncode, proc.stdout, _without_slow_steps(proc.stderr))


def run_here(*args: str, env: dict[str, str]) -> Result:
    """The command through ``flinkey_async.cli.main`` in this process, with ``env`` as the
    whole environment for its duration: what the console script runs, without the ~0.6 s of
    a new interpreter."""
    out, err = io.StringIO(), io.StringIO()
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(args))
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return Result(code, out.getvalue(), _without_slow_steps(err.getvalue()))


def run_all(calls: Sequence[tuple[tuple[str, ...], dict[str, str]]]) -> list[Result]:
    """Run independent commands concurrently (each its own process)."""
    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(lambda call: run(*call[0], env=call[1]), calls))


def assert_no_secret(*results: Result, extra: Sequence[str] = ()) -> None:
    for result in results:
        for secret in (API_KEY, PASSWORD, SDK_KEY, WEBHOOK_SECRET, *extra):
            assert secret not in result.out and secret not in result.err, (secret, result)


def assert_one_error_line(result: Result, code: int, text: str) -> None:
    assert result.code == code, result
    assert "Traceback" not in result.err, result.err
    lines = [line for line in result.err_lines if not line.startswith("flinkey: warning:")]
    assert len(lines) == 1, result.err
    assert text in lines[0], result.err


@attrs.frozen
class Server:
    proc: subprocess.Popen[bytes]
    banner: str
    env: dict[str, str]  # the FLINKEY_* lines of the banner, on top of the base environment
    log_path: Path

    @property
    def url(self) -> str:
        return self.env["FLINKEY_BASE_URL"]

    def access_log(self) -> str:
        return self.log_path.read_text(encoding="utf-8")

    def with_env(self, **changes: str | None) -> dict[str, str]:
        env = dict(self.env)
        for name, value in changes.items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        return env


def _wait_for(predicate: Any, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("flinkey-sandbox")
    out_path, err_path = folder / "stdout.txt", folder / "stderr.txt"
    args = [
        FLINKEY,
        "--debug",
        "sandbox",
        "--port",
        "0",
        "--write-delay",
        "0.01",
        "--access-log",
        "--api-key",
        API_KEY,
        "--password",
        PASSWORD,
        "--sdk-key",
        SDK_KEY,
        "--webhook-url",
        "http://127.0.0.1:9/unreachable",
        "--webhook-secret",
        WEBHOOK_SECRET,
    ]
    server_env = _base_env()
    server_env.pop("PYTHONASYNCIODEBUG", None)  # the sandbox serves the whole module: fast
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        proc = subprocess.Popen(
            args, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=server_env
        )
        try:
            _wait_for(
                lambda: proc.poll() is not None or "press Ctrl-C" in out_path.read_text("utf-8"),
                "the sandbox's banner",
            )
            banner = out_path.read_text("utf-8")
            assert proc.poll() is None, (banner, err_path.read_text("utf-8"))
            env = _base_env()
            for line in banner.splitlines():
                if line.startswith("  FLINKEY_"):
                    name, _, value = line.strip().partition("=")
                    env[name] = shlex.split(value)[0]
            yield Server(proc, banner, env, err_path)
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=15)
            assert proc.returncode == 0, err_path.read_text("utf-8")
            assert out_path.read_text("utf-8").endswith("flinkey sandbox stopped\n")
            log = err_path.read_text("utf-8")
            assert "Traceback" not in log
            assert WEBHOOK_SECRET not in log and WEBHOOK_SECRET not in out_path.read_text("utf-8")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=15)


def _token(server: Server) -> str:
    request = urllib.request.Request(
        server.url + "/oauth2/token",
        data=f"grant_type=password&username={USERNAME}&password={PASSWORD}".encode(),
        headers={"flinkey-API-Key": API_KEY},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        token: str = json.load(answer)["access_token"]
    return token


def _command_paths() -> list[tuple[str, ...]]:
    root = typer.main.get_command(app)
    paths: list[tuple[str, ...]] = []

    def walk(command: Any, path: tuple[str, ...]) -> None:
        children = getattr(command, "commands", None)
        if not children:
            paths.append(path)
        for name, child in (children or {}).items():
            walk(child, (*path, name))

    walk(root, ())
    return paths


# -- help, version, docs ------------------------------------------------------------------------
def test_help_lists_the_commands_the_variables_and_the_exit_codes() -> None:
    result = run("--help")
    assert result.code == 0, result
    for group in GROUPS:
        assert group.command_name in result.out
    variables = (*ENVIRONMENT.values(), secret_variable("sdk_key"))
    for name in ("sandbox", "demo", *variables, "Exit codes", "--version"):
        assert name in result.out, name
    bare = run()
    assert bare.code == 2 and "Usage: flinkey" in bare.out and bare.err == "", bare
    version = run("--version")
    assert version.code == 0 and re.match(r"flinkey \d+\.\d+", version.out), version


def test_every_command_has_a_help_page(capsys: pytest.CaptureFixture[str]) -> None:
    # in-process (the installed script's help is checked above and for `sandbox` below)
    for path in _command_paths():
        assert main([*path, "--help"]) == 0, path
        assert "Usage: flinkey " + " ".join(path) in capsys.readouterr().out, path
    result = run("sandbox", "--help")
    assert result.code == 0
    for option in ("--fixture", "--empty", "--access-log", "--fault-429", "--webhook-drop"):
        assert option in result.out


def test_python_dash_m_is_the_same_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "flinkey_async", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0 and "assignments" in result.stdout


def test_docs_cli_md_is_the_generated_reference_of_the_app() -> None:
    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    generated = text[text.index(BEGIN) : text.index(END) + len(END)] + "\n"
    assert generated == reference(), (
        "docs/cli.md is out of date: run python -m flinkey_async.cli._docs docs/cli.md"
    )
    root = typer.main.get_command(app)
    for path in _command_paths():
        assert f"`flinkey {' '.join(path)}`" in text, path
        command: Any = root
        for name in path:
            command = command.commands[name]
        for param in command.params:
            for option in (*param.opts, *param.secondary_opts):
                if option.startswith("-") and option not in ("--help", "-h"):
                    assert f"`{option}`" in text, (path, option)
    for variable in (*ENVIRONMENT.values(), secret_variable("sdk_key")):
        assert f"`{variable}`" in text, variable
    for code in ExitCode:
        assert f"| {int(code)} |" in text, code


def test_every_resource_of_the_client_has_its_commands() -> None:
    declared = {name for name, value in vars(Resources).items() if isinstance(value, resource)}
    assert {g.attribute for g in GROUPS} == declared
    for group in GROUPS:
        assert getattr(Resources, group.attribute)._cls is group.resource
        for command in group.commands:
            assert callable(getattr(group.resource, command.method)), command


# -- the sandbox command -----------------------------------------------------------------------
def test_sandbox_prints_the_credentials_it_accepts_never_the_webhook_secret(
    server: Server,
) -> None:
    banner = server.banner
    assert banner.startswith("flinkey sandbox listening on http://127.0.0.1:")
    assert server.env["FLINKEY_API_KEY"] == API_KEY
    assert server.env["FLINKEY_PASSWORD"] == PASSWORD
    assert server.env["FLINKEY_USERNAME"] == USERNAME
    assert server.env["FLINKEY_SDK_KEY"] == SDK_KEY
    assert server.env["FLINKEY_CUSTOMER_ID"] == "1"
    assert "customers: 1 Autohaus" in banner and "2 O'Reilly" in banner
    assert WEBHOOK_SECRET not in banner and "with a Secret header" in banner


def test_sandbox_configuration_errors_are_one_line(tmp_path: Path) -> None:
    bad_json = tmp_path / "bad.json"
    bad_json.write_text('{"customers": [', encoding="utf-8")
    no_name = tmp_path / "no-name.json"
    no_name.write_text('{"customers": [{"id": 1}]}', encoding="utf-8")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        calls = [
            (("sandbox", "--fixture", "/nonexistent.json"), 3, "cannot read the fixture"),
            (("sandbox", "--fixture", str(bad_json)), 3, "is not valid JSON"),
            (("sandbox", "--fixture", str(no_name)), 3, "is malformed"),
            (("sandbox", "--port", port), 3, f"cannot listen on 127.0.0.1:{port}"),
            (("sandbox", "--fixture", str(bad_json), "--empty"), 2, "exclude each other"),
            (("sandbox", "--fault-429", "1.5"), 2, "between 0 and 1"),
            (("sandbox", "--latency", "2,1"), 2, "LOW <= HIGH"),
        ]
        results = run_all([(args, _base_env()) for args, _, _ in calls])
    for (args, code, text), result in zip(calls, results, strict=True):
        assert_one_error_line(result, code, text)
        assert "cannot listen" not in result.err or "--port" in args


def test_debug_is_taken_after_every_command_as_before_it() -> None:
    """``--debug`` after ``sandbox``, ``demo`` or ``webhooks serve`` means what it means before
    the command (the root's help says so): the configuration error comes with its traceback."""
    env = _base_env()
    env.pop("FLINKEY_WEBHOOK_SECRET", None)
    serve = ("webhooks", "serve", "--redis", "redis://127.0.0.1:1/0")
    calls = [
        (("sandbox", "--fixture", "/nonexistent.json", "--debug"), 3, "cannot read the fixture"),
        (("--debug", "sandbox", "--fixture", "/nonexistent.json"), 3, "cannot read the fixture"),
        ((*serve, "--debug"), 3, "FLINKEY_WEBHOOK_SECRET (--secret-env)"),
        (("demo", "--debug", "--bogus"), 2, "No such option: --bogus"),
    ]
    results = run_all([(args, env) for args, _, _ in calls])
    for (args, code, text), result in zip(calls, results, strict=True):
        assert result.code == code, (args, result)
        assert text in result.err_lines[-1], (args, result.err)
        assert ("Traceback" in result.err) is (code == 3), (args, result.err)


# -- reads, in every format --------------------------------------------------------------------
READS: list[tuple[tuple[str, ...], str]] = [
    (("assignments", "get", "50003"), "50003"),
    (("assignments", "list-for-car", "102", "--orderby", "start:desc", "--top", "3"), "start"),
    (("assignments", "list-for-user", "1004", "--all", "--page-size", "1"), "carId"),
    (("customers", "list"), "Autohaus"),
    (("cars", "list", "--top", "3"), "Golf"),
    (("cars", "get", "103"), "103"),
    (("cars", "events", "101", "--all", "--page-size", "2", "--top", "3"), "600003"),
    (("events", "get", "600001"), "CarOpened"),
    (("users", "list", "--filter", "id le 1003"), "emailAddress"),
    (("users", "get", "1002"), "zoe.angstrom"),
    (("users", "find-by-email", "zoe.angstrom@mueller-soehne.de"), "1002"),
    (("products", "list", "--filter", "type eq 'flinkey IQ'"), "flinkey IQ"),
    (("products", "get", "302"), "FB-2023-000302"),
    (("services", "list", "--orderby", "id:desc", "--skip", "1", "--top", "2"), "name"),
    (("services", "get", "402"), "Octavia"),
    (("groups", "list"), "Pool Hamburg"),
    (("groups", "cars", "701"), "Octavia"),
    (("keyfobs", "brands", "--top", "3"), "AUDI"),
    (("keyfobs", "keys", "AUDI"), "keyForm"),
]


def test_every_read_command_in_every_output_format(server: Server) -> None:
    calls = [
        ((*args, "--output", fmt), server.env)
        for args, _ in READS
        for fmt in ("json", "csv", "table")
    ]
    calls.append((READS[1][0], server.env))  # no --output, and stdout is no TTY: JSON
    results = [run_here(*args, env=env) for args, env in calls]
    for (args, _), result in zip(calls, results, strict=True):
        assert result.code == 0 and result.err == "", (args, result)
    assert_no_secret(*results)
    # The console script prints the same (a read that changes nothing, in every format, and
    # the default format).
    scripted = [3, 4, 5, len(calls) - 1]
    for index, result in zip(scripted, run_all([calls[i] for i in scripted]), strict=True):
        assert result == results[index], (calls[index][0], result, results[index])
    for index, (args, expected) in enumerate(READS):
        as_json, as_csv, as_table = results[3 * index : 3 * index + 3]
        data = as_json.json()
        assert data, args
        rows = as_csv.csv()
        assert len(rows) == (len(data) if isinstance(data, list) else 1), args
        first = data[0] if isinstance(data, list) else data
        assert list(rows[0]) == list(first), args
        assert expected in as_json.out and expected in as_csv.out, args
        assert expected in as_table.out and "│" in as_table.out, args
    assert results[-1].json() == results[3].json()
    ordered = [item["start"] for item in results[3].json()]
    assert ordered == sorted(ordered, reverse=True) and len(ordered) == 3
    assert [e["id"] for e in results[18].json()] == [600001, 600002, 600003]  # pages of 2
    assert [u["id"] for u in results[24].json()] == [1001, 1002, 1003]
    assert {p["type"] for p in results[33].json()} == {"flinkey IQ"}
    assert [s["id"] for s in results[39].json()] == [406, 405]
    assert [b["brand"] for b in results[51].json()] == ["AUDI", "BMW", "CITROËN"]


# -- writes, in every format -------------------------------------------------------------------
def _assignment_life(env: dict[str, str], fmt: str, month: int) -> None:
    """Create (the new id read from the output), update, delete: one format, ``--wait``."""
    create = ("assignments", "create", "--car", "104", "--user", "1003")
    start = f"2032-{month:02d}-01T08:00:00+01:00"
    result = run_here(*create, "--start", start, "--wait", "15", "-o", fmt, env=env)
    assert result.code == 0 and result.err == "", result
    if fmt == "json":
        data = result.json()
        assert data["operation"] == "create" and data["accepted"] is True
        assert data["confirmed"] is False and data["event"] is None  # observed by polling
        assert data["assignment"]["userId"] == 1003
        assignment_id = data["assignmentId"]
    elif fmt == "csv":
        (row,) = result.csv()
        assert row["operation"] == "create" and row["confirmed"] == "false"
        assignment_id = int(row["assignmentId"])
    else:
        match = re.search(r"assignmentId\s*│\s*(\d+)", result.out)
        assert match and "confirmed" in result.out, result.out
        assignment_id = int(match.group(1))
    got = run_here("assignments", "get", str(assignment_id), "-o", "json", env=env).json()
    assert (got["carId"], got["userId"], got["start"]) == (
        104,
        1003,
        f"2032-{month:02d}-01T07:00:00Z",
    )
    update = ("--set", "lifetime=1209600", "--set", "renewable_after=3600", "--remove", "end")
    result = run_here(
        "assignments", "update", str(assignment_id), *update, "--wait", "15", "-o", fmt, env=env
    )
    assert result.code == 0 and result.err == "" and "update" in result.out, result
    got = run_here("assignments", "get", str(assignment_id), env=env).json()
    assert (got["lifetime"], got["renewableAfter"], got["end"]) == (1209600, 3600, None)
    result = run_here(
        "assignments", "delete", str(assignment_id), "--wait", "15", "-o", fmt, env=env
    )
    assert result.code == 0 and result.err == "" and "delete" in result.out, result
    assert run_here("assignments", "get", str(assignment_id), env=env).code == 1


def test_assignment_writes_print_output_a_script_can_use(server: Server) -> None:
    for month, fmt in enumerate(("json", "csv", "table"), start=1):
        _assignment_life(server.env, fmt, month)
    unconfirmed = run_here(
        "assignments",
        "create",
        "--car",
        "104",
        "--user",
        "1003",
        "--start",
        "2032-06-01T08:00:00Z",
        env=server.env,
    ).json()
    assert unconfirmed["accepted"] is True and unconfirmed["assignmentId"] is None
    assert "confirmed" not in unconfirmed
    assert "PATCH /v3/assignments/" in server.access_log()


def _product_life(env: dict[str, str], fmt: str, steps: Sequence[tuple[str, ...]]) -> None:
    for step in steps:
        result = run_here(*step, "-o", fmt, env=env)
        assert result.code == 0 and result.err == "", (step, result)
        assert_no_secret(result)
        if fmt == "json":
            data = result.json()
            assert data["operation"] == step[1] and data["applied"] is True, data
        elif fmt == "csv":
            (row,) = result.csv()
            assert row["operation"] == step[1] and row["applied"] == "true", row
        else:
            assert "applied" in result.out and step[1] in result.out, result.out


def test_synchronous_writes_and_sdk_tokens_in_every_format(server: Server) -> None:
    # one product (and car) per format
    lives = {
        "json": [
            ("pairings", "pair", "--service", "406", "--product", "312"),
            ("installations", "install", "--car", "108", "--product", "312"),
            ("installations", "uninstall", "--car", "108", "--serial-number", "IQ-2024-000312"),
            ("pairings", "unpair", "--service", "406", "--product", "312"),
        ],
        "csv": [
            ("pairings", "pair", "--service", "407", "--product", "305"),
            ("installations", "install", "--car", "109", "--product", "305"),
            ("installations", "uninstall", "--car", "109", "--product", "305"),
            ("pairings", "unpair", "--service", "407", "--serial-number", "FB-2024-000305"),
        ],
        "table": [
            ("pairings", "unpair", "--service", "404", "--product", "304"),
            ("pairings", "pair", "--service", "404", "--product", "304"),
            ("installations", "install", "--car", "110", "--product", "304"),
            ("installations", "uninstall", "--car", "110", "--product", "304"),
        ],
    }
    for fmt, steps in lives.items():
        _product_life(server.env, fmt, steps)
    create = ("sdk-tokens", "create", "--user", "1001")
    tokens = [
        run_here(*args, env=server.env)
        for args in [(*create, "-o", fmt) for fmt in ("json", "csv", "table")]
        + [(*create, "--reveal", "-o", "csv")]
    ]
    assert tokens[0].json() == {"idToken": "***"}
    assert tokens[1].csv() == [{"idToken": "***"}]
    assert "***" in tokens[2].out
    revealed = tokens[3].csv()[0]["idToken"]
    assert revealed.count(".") == 2 and all(revealed not in t.out for t in tokens[:3])
    assert_no_secret(*tokens)


def test_sandbox_option_confirms_writes_by_webhook() -> None:
    env = _base_env(FLINKEY_API_KEY="ignored", FLINKEY_BASE_URL="http://127.0.0.1:9/v3")
    create = ("assignments", "create", "--sandbox", "--car", "101", "--user", "1001")
    ok, rejected, listed, token = run_all(
        [
            ((*create, "--start", "2031-01-01T00:00:00Z", "--wait", "20", "-o", "json"), env),
            (
                (
                    "assignments",
                    "create",
                    "--sandbox",
                    "--car",
                    "101",
                    "--user",
                    "999999",
                    "--start",
                    "2031-01-01T00:00:00Z",
                    "--wait",
                    "20",
                ),
                env,
            ),
            (("customers", "list", "--sandbox", "-o", "csv"), env),
            (("sdk-tokens", "create", "--sandbox", "--user", "1001", "--reveal"), env),
        ]
    )
    assert ok.code == 0, ok
    data = ok.json()
    assert data["confirmed"] is True and data["event"]["operationSucceeded"] is True
    assert (
        isinstance(data["assignmentId"], int)
        and data["assignmentId"] == data["event"]["assignmentId"]
    )
    assert_one_error_line(rejected, 1, "failed: Unable to find an user")
    assert [row["id"] for row in listed.csv()] == ["1", "2"]
    assert token.code == 0 and token.json()["idToken"].count(".") == 2
    assert_no_secret(ok, rejected, listed, extra=("sandbox-api-key", "sandbox-password"))


# -- errors and exit codes ---------------------------------------------------------------------
def _shadow(folder: Path, module: str) -> str:
    """A directory for PYTHONPATH in which ``module`` is not installed (a missing extra)."""
    (folder / module).mkdir(parents=True)
    (folder / module / "__init__.py").write_text(
        f"raise ModuleNotFoundError({f'No module named {module!r}'!r}, name={module!r})\n"
    )
    return str(folder)


def test_every_error_class_has_its_exit_code_and_one_line(server: Server, tmp_path: Path) -> None:
    env = server.with_env
    get = ("assignments", "get", "50004")
    start = "2033-01-01T08:00:00Z"
    create = ("assignments", "create", "--car", "105", "--user", "1005", "--start")
    no_typer = _shadow(tmp_path / "no-typer", "typer")
    no_odata = _shadow(tmp_path / "no-odata", "odata_query")
    cases: list[tuple[tuple[str, ...], dict[str, str], int, str]] = [
        # 2: usage
        ((*get, "--bogus"), env(), 2, "No such option: --bogus"),
        (("assignments", "get"), env(), 2, "Missing argument"),
        (("assignments", "get", "0"), env(), 2, "ASSIGNMENT_ID"),
        (("assignments", "nope"), env(), 2, "No such command"),
        (
            ("assignments", "list-for-car", "101", "--orderby", "start:up"),
            env(),
            2,
            "the direction must be asc or desc, got 'up'",
        ),
        (
            ("assignments", "list-for-car", "101", "--orderby", "usrId"),
            env(),
            2,
            "unknown field 'usrId'",
        ),
        (
            ("assignments", "update", "50004", "--set", "end=2027-01-01T00:00:00"),
            env(),
            2,
            "has no timezone",
        ),
        (("assignments", "update", "50004", "--set", "end="), env(), 2, "has no value"),
        (("assignments", "update", "50004", "--set", "color=red"), env(), 2, "unknown path"),
        (("assignments", "update", "50004"), env(), 2, "nothing to change"),
        ((*create, "2033-01-01T08:00:00"), env(), 2, "has no timezone"),
        ((*create, start, "--lifetime", "60"), env(), 2, "--lifetime: must be between"),
        (
            ("installations", "install", "--car", "108"),
            env(),
            2,
            "exactly one of --product, --serial-number or --unique-id",
        ),
        ((*get, "--sandbox", "--base-url", server.url), env(), 2, "leave out --base-url"),
        # 1: API or operation failure
        (
            ("assignments", "get", "999999"),
            env(),
            1,
            "HTTP 404 on GET /assignments/999999: Unable to find an assignment",
        ),
        (get, env(FLINKEY_BASE_URL=server.url.removesuffix("/v3")), 1, "does not end in /v3"),
        (get, env(FLINKEY_API_KEY="wrong-key"), 1, "HTTP 401"),
        (get, env(FLINKEY_PASSWORD="wrong-password"), 1, "HTTP 400"),
        (get, env(FLINKEY_BASE_URL="http://127.0.0.1:9/v3"), 1, "cannot connect to 127.0.0.1:9"),
        (("keyfobs", "keys", "NOPE"), env(), 1, "Invalid brand provided."),
        # 3: configuration
        (
            get,
            env(FLINKEY_BASE_URL="not-a-url"),
            3,
            "FLINKEY_BASE_URL must be an absolute http(s) URL",
        ),
        ((*get, "--base-url", "ftp://x/v3"), env(), 3, "--base-url must be an absolute"),
        (get, env(FLINKEY_API_KEY=None), 3, "no API key: set FLINKEY_API_KEY"),
        (get, env(FLINKEY_CUSTOMER_ID=None), 3, "no customer id: set FLINKEY_CUSTOMER_ID"),
        (get, env(FLINKEY_CUSTOMER_ID="abc"), 3, "FLINKEY_CUSTOMER_ID must be a positive"),
        (get, env(FLINKEY_PASSWORD=None), 3, "missing: FLINKEY_PASSWORD"),
        (get, env(FLINKEY_TOKEN="t0ken"), 3, "not both"),
        (
            ("sdk-tokens", "create", "--user", "1001"),
            env(FLINKEY_SDK_KEY=None),
            3,
            "no SDK key: set FLINKEY_SDK_KEY",
        ),
        (get, env(PYTHONPATH=no_typer), 3, "the command line needs the 'cli' extra"),
        ((*get, "--sandbox"), env(PYTHONPATH=no_odata), 3, "--sandbox needs the 'sandbox' extra"),
        (("sandbox",), env(PYTHONPATH=no_odata), 3, "the sandbox needs the 'sandbox' extra"),
        # 4: timeout (polling never sees a create flinkey rejected)
        (
            (
                "assignments",
                "create",
                "--car",
                "105",
                "--user",
                "999999",
                "--start",
                start,
                "--wait",
                "1",
            ),
            env(),
            4,
            "was not observed within 1",
        ),
    ]
    # A missing extra needs an interpreter of its own (its modules shadowed on PYTHONPATH);
    # the rest run in this process.
    shadowed = {no_typer, no_odata}
    scripted = run_all([(a, e) for a, e, _, _ in cases if e.get("PYTHONPATH") in shadowed])
    results = [
        scripted.pop(0)
        if environment.get("PYTHONPATH") in shadowed
        else run_here(*a, env=environment)
        for a, environment, _, _ in cases
    ]
    for (args, _, code, text), result in zip(cases, results, strict=True):
        assert_one_error_line(result, code, text)
        assert result.out == "", (args, result)
    assert_no_secret(*results, extra=("wrong-password", "t0ken"))


def test_production_is_never_used_silently(server: Server) -> None:
    create = (
        "assignments",
        "create",
        "--car",
        "1",
        "--user",
        "1",
        "--start",
        "2033-01-01T08:00:00Z",
        "--lifetime",
        "60",
    )
    implicit, explicit = run_all(
        [
            (create, server.with_env(FLINKEY_BASE_URL=None)),
            (create, server.with_env(FLINKEY_BASE_URL="production")),
        ]
    )
    # both fail before anything is sent (--lifetime 60), so nothing reaches production
    assert implicit.code == 2 and explicit.code == 2
    assert implicit.err_lines[0].startswith("flinkey: warning: neither --base-url nor")
    assert "https://api.flinkey.de/v3" in implicit.err_lines[0]
    assert "warning" not in explicit.err


def test_debug_shows_the_target_and_the_traceback_never_a_secret(server: Server) -> None:
    token = _token(server)
    env_token = server.with_env(FLINKEY_TOKEN=token, FLINKEY_USERNAME=None, FLINKEY_PASSWORD=None)
    results = run_all(
        [
            (("--debug", "assignments", "get", "999999"), server.env),
            (("assignments", "get", "50005", "--debug", "-o", "csv"), server.env),
            (("assignments", "get", "999999", "--debug"), env_token),
            (("cars", "list", "--debug", "--top", "1"), env_token),
            (("assignments", "list-for-car", "101", "--top", "2", "-o", "table"), env_token),
            (("--debug", "sdk-tokens", "create", "--user", "1001"), server.env),
            (
                ("--debug", "sdk-tokens", "create", "--user", "1001"),
                server.with_env(FLINKEY_SDK_KEY="wrong-" + SDK_KEY),
            ),
            (("--debug", "assignments", "get", "50005"), server.with_env(FLINKEY_API_KEY="x y")),
            (("--debug", "customers", "list", "--sandbox"), _base_env()),
        ]
    )
    failed, csv_ok, token_failed, token_ok, table, sdk_ok, sdk_failed, bad_key, sandboxed = results
    assert failed.code == 1 and "Traceback" in failed.err
    assert failed.err_lines[-1].startswith("flinkey: HTTP 404 on GET /assignments/999999")
    assert f"target: {server.url} (custom; from FLINKEY_BASE_URL)" in failed.err
    assert "password grant as manager@example.com" in failed.err
    assert "GET /v3/assignments/999999 -> 404" in failed.err
    assert csv_ok.code == 0 and csv_ok.csv()[0]["id"] == "50005"
    assert token_failed.code == 1 and "bearer token from FLINKEY_TOKEN" in token_failed.err
    assert token_ok.code == 0 and table.code == 0
    assert sdk_ok.code == 0 and sdk_ok.json() == {"idToken": "***"}
    assert sdk_failed.code == 1 and "Invalid combination" in sdk_failed.err
    assert bad_key.code == 3 and "FLINKEY_API_KEY: must be a non-empty string" in bad_key.err
    assert sandboxed.code == 0 and "in-process sandbox" in sandboxed.err
    assert_no_secret(
        *results, extra=(token, "sandbox-api-key", "sandbox-password", "sandbox-sdk-key")
    )


@pytest.mark.usefixtures("ctrl_c")
def test_ctrl_c_during_wait_ends_cleanly_with_130(server: Server) -> None:
    before = len(server.access_log())
    proc = subprocess.Popen(
        [
            FLINKEY,
            "assignments",
            "create",
            "--car",
            "105",
            "--user",
            "999999",
            "--start",
            "2034-01-01T08:00:00Z",
            "--wait",
            "60",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=server.env,
    )
    try:
        _wait_for(lambda: "PUT /v3/assignments" in server.access_log()[before:], "the PUT")
        time.sleep(0.3)  # polling now
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=15)
    lines = [line for line in err.splitlines() if not _SLOW_STEP.match(line)]
    assert proc.returncode == 130, err
    assert lines == ["flinkey: interrupted"] and out == ""


def test_demo_runs_end_to_end() -> None:
    result = run("demo", timeout=120)
    assert result.code == 0, result
    assert "confirmed by webhook: assignment" in result.out
    assert "OperationFailedError: Unable to find an user" in result.out
    assert "4 webhook events received" in result.out
