"""Cost of building and encoding an OData query with flinkey_async, as a fraction of the request
it is built for.

Run: ``python benchmarks/odata.py [--loops N] [--rounds R] [--requests M]``

The query is a 10-clause ``$filter`` mixing ``and``/``or``/``not``, strings (with a quote and an
``&``), ints, ``null``, datetimes in a non-UTC zone, ``startswith`` and ``in``, plus ``$orderby``
and ``$top``. Its build + ``str()`` is compared with one loopback GET through the SDK, measured
in the same run and process: a sandbox (``flinkey_async.sandbox``) is started, and
``client.assignments.get(50001)`` is called on a :class:`~flinkey_async.FlinkeyClient` pointed at
it (the whole pipeline: headers, URL, deadline, bounded read, the typed model). The target: the
query costs under 2 % of that request; the script exits with status 2 when it does not. The same
GET sent with a plain ``aiohttp.ClientSession`` (no SDK code on that path) is printed for
reference.

Also timed, as before, against the same string written by hand (all produce the identical
string, checked before timing):

* f-string: the filter written as one f-string with the quote doubling and UTC conversion it
  needs, then percent-encoded with ``urllib.parse.quote``;
* lean f-string: the same with the template pre-encoded by hand (``%20`` written into it) and
  ``quote`` applied to the one string literal only, the fastest correct hand-written form.

The measurements are interleaved in ``rounds``: each round takes one short sample of ``loops``
calls of each builder (the f-strings are the calibration: they run no SDK code) and
``requests`` GETs of each kind, so that a slow phase of a shared machine hits all of them alike.
The build time is the median of the per-call times of its samples (the best sample is printed
too); a GET's time is the median of the single requests.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import timeit
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import quote

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flinkey_async import FlinkeyClient
from flinkey_async.odata import F, Query
from flinkey_async.sandbox import Sandbox, SandboxConfig

CET = timezone(timedelta(hours=1))
START = datetime(2026, 3, 1, 9, 0, 0, 123456, tzinfo=CET)
END = datetime(2026, 4, 1, 9, 0, 0, tzinfo=CET)
NAME = "O'Brien & Co"
SAFE = "'()*,:;$@!"
TARGET_PERCENT = 2.0
ASSIGNMENT_ID = 50001
CUSTOMER_ID = 1


def build_with_sdk() -> str:
    query = (
        Query()
        .filter(
            (F.car_id == 7)
            & ((F.user_id == 9) | (F.user_id == None))  # noqa: E711 - builds "eq null"
            & (F.start >= START)
            & (F.end < END)
            & (F.name == NAME)
            & (F.lifetime >= 604800)
            & ~(F.renewable_after > 1000)
            & F.license_plate.startswith("B-")
            & F.id.in_([1, 2, 3])
        )
        .orderby("start", desc=True)
        .top(10)
    )
    return str(query)


def build_by_hand() -> str:
    name = NAME.replace("'", "''")
    start = START.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    end = END.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    text = (
        f"carId eq {7} and (userId eq {9} or userId eq null) and start ge {start} "
        f"and end lt {end} and name eq '{name}' and lifetime ge {604800} "
        f"and not (renewableAfter gt {1000}) and startswith(licensePlate,'{'B-'}') "
        f"and id in ({1},{2},{3})"
    )
    return "$filter=" + quote(text, safe=SAFE) + "&$orderby=start%20desc&$top=" + str(10)


def build_by_hand_lean() -> str:
    name = quote(NAME.replace("'", "''"), safe=SAFE)
    start = START.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    end = END.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return (
        f"$filter=carId%20eq%20{7}%20and%20(userId%20eq%20{9}%20or%20userId%20eq%20null)"
        f"%20and%20start%20ge%20{start}%20and%20end%20lt%20{end}%20and%20name%20eq%20'{name}'"
        f"%20and%20lifetime%20ge%20{604800}%20and%20not%20(renewableAfter%20gt%20{1000})"
        f"%20and%20startswith(licensePlate,'{'B-'}')%20and%20id%20in%20({1},{2},{3})"
        f"&$orderby=start%20desc&$top={10}"
    )


BUILDERS: dict[str, Callable[[], str]] = {
    "sdk": build_with_sdk,
    "manual": build_by_hand,
    "lean": build_by_hand_lean,
}


def sample_us(fn: Callable[[], str], loops: int) -> float:
    """The mean time of one call over ``loops`` calls, in microseconds."""
    return timeit.Timer(fn).timeit(number=loops) / loops * 1e6


async def raw_get_us(session: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> float:
    """The time of one GET with plain aiohttp, response body read, in microseconds."""
    began = time.perf_counter()
    async with session.get(url, headers=headers) as response:
        await response.read()
        if response.status != 200:
            raise RuntimeError(f"GET {url} answered {response.status}")
    return (time.perf_counter() - began) * 1e6


async def sdk_get_us(client: FlinkeyClient) -> float:
    """The time of one ``client.assignments.get()``, the typed model made, in microseconds."""
    began = time.perf_counter()
    await client.assignments.get(ASSIGNMENT_ID)
    return (time.perf_counter() - began) * 1e6


async def measure(
    loops: int, rounds: int, requests: int
) -> tuple[dict[str, list[float]], list[float], list[float]]:
    """Build samples per builder, and single-GET times through the SDK and with plain aiohttp,
    taken interleaved."""
    builds: dict[str, list[float]] = {name: [] for name in BUILDERS}
    sdk_gets: list[float] = []
    raw_gets: list[float] = []
    async with Sandbox(SandboxConfig(write_delay=0.01)) as sandbox:
        url = f"{sandbox.url}/assignments/{ASSIGNMENT_ID}"
        headers = sandbox.auth_headers(customer_id=CUSTOMER_ID)
        client = FlinkeyClient(
            sandbox.config.api_key, CUSTOMER_ID, token=sandbox.issue_token(), base_url=sandbox.url
        )
        async with client, aiohttp.ClientSession() as session:
            for fn in BUILDERS.values():  # warm-up
                sample_us(fn, loops // 5 or 1)
            for _ in range(requests * 5):
                await sdk_get_us(client)
                await raw_get_us(session, url, headers)
            for _ in range(rounds):
                for name, fn in BUILDERS.items():
                    builds[name].append(sample_us(fn, loops))
                for _ in range(requests):
                    sdk_gets.append(await sdk_get_us(client))
                    raw_gets.append(await raw_get_us(session, url, headers))
    return builds, sdk_gets, raw_gets


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loops", type=int, default=1000, help="builds per sample")
    parser.add_argument("--rounds", type=int, default=100, help="interleaved rounds")
    parser.add_argument("--requests", type=int, default=20, help="GETs per round")
    args = parser.parse_args()

    outputs = {name: fn() for name, fn in BUILDERS.items()}
    if len(set(outputs.values())) != 1:
        listing = "\n".join(f"  {name}: {text}" for name, text in outputs.items())
        print(f"outputs differ:\n{listing}", file=sys.stderr)
        return 1
    sdk_text = outputs["sdk"]
    print(f"query string ({len(sdk_text)} chars):\n  {sdk_text}")

    if args.rounds * args.requests < 500:
        parser.error("--rounds x --requests must be at least 500 (GETs per kind)")
    builds, sdk_gets, raw_gets = asyncio.run(measure(args.loops, args.rounds, args.requests))
    median = {name: statistics.median(samples) for name, samples in builds.items()}
    sdk_get = statistics.median(sdk_gets)
    raw_get = statistics.median(raw_gets)
    sdk_us = median["sdk"]
    percent = sdk_us / sdk_get * 100
    print(
        f"Query build + str():          {sdk_us:7.2f} us per query "
        f"(median of {len(builds['sdk'])} samples of {args.loops}; "
        f"best {min(builds['sdk']):.2f} us)"
    )
    print(
        f"GET through the SDK:          {sdk_get:7.2f} us per request "
        f"(median of {len(sdk_gets)}; fastest {min(sdk_gets):.2f} us)"
    )
    print(
        f"GET with plain aiohttp:       {raw_get:7.2f} us per request "
        f"(median of {len(raw_gets)}; fastest {min(raw_gets):.2f} us)"
    )
    print(
        f"build as a share of one GET:  {percent:7.2f} %  (through the SDK; target < "
        f"{TARGET_PERCENT:g} %; {sdk_us / raw_get * 100:.2f} % of the plain aiohttp GET)"
    )
    print(f"f-string + quote by hand:     {median['manual']:7.2f} us per query")
    print(f"lean f-string by hand:        {median['lean']:7.2f} us per query")
    print(f"ratio to the f-string:        {sdk_us / median['manual']:7.2f} x")
    print(f"ratio to the lean f-string:   {sdk_us / median['lean']:7.2f} x")
    if percent >= TARGET_PERCENT:
        print(f"target missed: {percent:.2f} % >= {TARGET_PERCENT:g} %", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
