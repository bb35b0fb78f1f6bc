"""``flinkey webhooks serve``: the relay, run as a process, publishes signed webhooks to Redis,
reports Redis's reachability on its health endpoint, never prints the secret, and exits 0
on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import redis

from tests.support.redis_server import RedisServer

ROOT = Path(__file__).resolve().parents[2]
SECRET = "relay-cli-secret-do-not-print"
VAR = "FLINKEY_TEST_RELAY_CLI_SECRET"
PAYLOAD = {
    "checksum": "A" * 32,
    "assignmentId": 6001,
    "customerId": 1,
    "operationSucceeded": True,
    "errorMessage": None,
}


def relay(*args: str, secret: str | None = SECRET) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONASYNCIODEBUG"}
    if secret is not None:
        env[VAR] = secret
    return subprocess.Popen(
        [sys.executable, "-m", "flinkey_async", "webhooks", "serve", "--secret-env", VAR, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )


def request(url: str, body: dict[str, Any] | None = None, secret: str = SECRET) -> tuple[int, str]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Secret": secret})
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_the_relay_publishes_reports_its_health_and_stops_on_sigterm(
    own_redis_server: RedisServer,
) -> None:
    process = relay("--port", "0", "--redis", own_redis_server.url, "--prefix", "relaycli")
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith("flinkey webhooks relay listening on http://127.0.0.1:"), first
        hook = first.split(" on ", 1)[1].strip()
        health = process.stdout.readline().split(": ", 1)[1].strip()
        assert health.endswith("/healthz")
        assert "publishing to Redis at 127.0.0.1:" in process.stdout.readline()

        assert request(hook, PAYLOAD) == (204, "")
        assert request(hook, PAYLOAD)[0] == 204  # a repeat: published as such
        assert request(hook, PAYLOAD, secret="wrong")[0] == 401
        client = redis.Redis.from_url(own_redis_server.url)
        try:
            entries: Any = client.xrange("{relaycli}:events")
        finally:
            client.close()
        assert [json.loads(f[b"body"]) for _, f in entries] == [PAYLOAD, PAYLOAD]
        assert [f[b"repeat"] for _, f in entries] == [b"0", b"1"]

        status, text = request(health)
        report = json.loads(text)
        assert status == 200 and report["redis"] == "reachable"
        assert (report["received"], report["published"], report["duplicates"]) == (3, 2, 1)

        own_redis_server.stop(kill=True)
        status, text = request(health)
        assert status == 503 and json.loads(text)["redis"] == "unreachable"
        assert request(hook, {**PAYLOAD, "assignmentId": 6002})[0] == 503
        own_redis_server.start()
        assert request(health)[0] == 200

        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=10)
    assert process.returncode == 0, err
    assert out.endswith("flinkey webhooks relay stopped\n")
    assert SECRET not in out + err


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_the_relay_refuses_to_start_without_its_secret_or_its_redis() -> None:
    unreachable = f"redis://:pw-not-shown@127.0.0.1:{free_port()}/0"
    process = relay("--port", "0", "--redis", unreachable, secret=None)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 3 and out == ""
    assert err.strip() == (
        f"flinkey: the environment variable {VAR} (--secret-env) holding the webhook secret "
        "is not set or empty"
    )
    process = relay("--port", "0", "--redis", unreachable, "--redis-timeout", "0.5")
    out, err = process.communicate(timeout=30)
    assert process.returncode == 1 and out == ""
    assert err.startswith("flinkey: cannot start the relay: Redis at 127.0.0.1:")
    assert len(err.strip().splitlines()) == 1
    assert "pw-not-shown" not in err and SECRET not in err
