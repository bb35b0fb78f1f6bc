"""Decode throughput: a 100,000-item assignment list, JSON bytes -> models.

Compares, in the same run and on the same bytes:

* flinkey_async: the SDK's own decode path (``Response.decode()``: orjson, then the converter);
* a hand-written ``orjson.loads`` + attrs constructor loop (no type checks at all);
* msgspec (``msgspec.json.Decoder(list[Struct])``, parse and validate together);
* pydantic v2 (``TypeAdapter(list[Model]).validate_json``).

Run: ``python benchmarks/decode.py [items] [repeats]``. Prints assignments/second and ratios.
Targets: >= 1.1 x the hand-written loop and >= 2 x pydantic v2 (called as users call it), with
no process-wide switch of the garbage collector: the SDK structures a list in place, so each
parsed object is freed as its model is made and the collector is not triggered (see
``flinkey_async._converter.decode``). pydantic is also shown with the collector paused, to show
how much of its time the collector takes.
"""

from __future__ import annotations

import gc
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import msgspec
import orjson
import pydantic
from pydantic.alias_generators import to_camel

from flinkey_async._pipeline import Response
from flinkey_async.models import Assignment


def make_body(n: int) -> bytes:
    """Realistic records: every timestamp distinct (one start every 7 minutes and 13 seconds)."""
    base = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
    items = []
    for i in range(n):
        start = datetime.fromtimestamp(base + i * 433, UTC)
        end = datetime.fromtimestamp(base + i * 433 + 86_400 + i % 3600, UTC)
        items.append(
            {
                "id": i + 1,
                "carId": 1000 + i % 50,
                "userId": None if i % 7 == 0 else 2000 + i % 300,
                "start": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "end": None if i % 3 == 0 else end.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "lifetime": 604800 + (i % 10) * 1000,
                "renewableAfter": 302400,
            }
        )
    return orjson.dumps(items)


def sdk(body: bytes) -> list[Assignment]:
    result: list[Assignment] = Response(200, {}, body).decode(list[Assignment])
    return result


def _dt(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo is UTC else parsed.astimezone(UTC)


def hand_written(body: bytes) -> list[Assignment]:
    return [
        Assignment(
            d["id"],
            d["carId"],
            d["userId"],
            _dt(d["start"]),
            None if d["end"] is None else _dt(d["end"]),
            d["lifetime"],
            d["renewableAfter"],
        )
        for d in orjson.loads(body)
    ]


class MsgspecAssignment(msgspec.Struct, rename="camel", frozen=True):
    id: int
    car_id: int
    user_id: int | None
    start: datetime
    end: datetime | None
    lifetime: int | None = None
    renewable_after: int | None = None


_msgspec_decoder = msgspec.json.Decoder(list[MsgspecAssignment])


def with_msgspec(body: bytes) -> list[MsgspecAssignment]:
    return _msgspec_decoder.decode(body)


class PydanticAssignment(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(alias_generator=to_camel, frozen=True)
    id: int
    car_id: int
    user_id: int | None
    start: datetime
    end: datetime | None
    lifetime: int | None = None
    renewable_after: int | None = None


_pydantic_adapter = pydantic.TypeAdapter(list[PydanticAssignment])


def with_pydantic(body: bytes) -> list[PydanticAssignment]:
    return _pydantic_adapter.validate_json(body)


def with_pydantic_gc_paused(body: bytes) -> list[PydanticAssignment]:
    gc.disable()
    try:
        return _pydantic_adapter.validate_json(body)
    finally:
        gc.enable()


def best_rates(
    contenders: list[tuple[str, Callable[[bytes], Any]]], body: bytes, n: int, repeats: int
) -> dict[str, float]:
    """Items per second of each contender, best of ``repeats`` rounds; every round times each
    contender once, in turn, so that a slow phase of the machine hits them all alike."""
    best = dict.fromkeys((name for name, _ in contenders), float("inf"))
    for _ in range(repeats):
        for name, fn in contenders:
            started = time.perf_counter()
            fn(body)
            best[name] = min(best[name], time.perf_counter() - started)
    return {name: n / seconds for name, seconds in best.items()}


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 9
    body = make_body(n)
    reference = hand_written(body)
    assert sdk(body) == reference, "the SDK decodes differently from the hand-written loop"
    assert len(with_msgspec(body)) == n and len(with_pydantic(body)) == n
    contenders = [
        ("flinkey_async", sdk),
        ("hand-written orjson+attrs", hand_written),
        ("msgspec", with_msgspec),
        ("pydantic v2", with_pydantic),
        ("pydantic v2, gc paused", with_pydantic_gc_paused),
    ]
    rates = best_rates(contenders, body, n, repeats)
    ours = rates["flinkey_async"]
    print(f"decoding {n:,} assignments ({len(body) / 1e6:.1f} MB), best of {repeats}")
    print(f"{'pipeline':28} {'assignments/s':>14} {'flinkey_async / it':>20}")
    for name, rate in rates.items():
        print(f"{name:28} {rate:14,.0f} {ours / rate:20.2f}")
    hand, pyd = rates["hand-written orjson+attrs"], rates["pydantic v2"]
    print(
        f"target >= 1.10 x hand-written: {ours / hand:.2f} "
        f"({'met' if ours / hand >= 1.1 else 'NOT met'})"
    )
    print(
        f"target >= 2.00 x pydantic v2:  {ours / pyd:.2f} "
        f"({'met' if ours / pyd >= 2 else 'NOT met'})"
    )


if __name__ == "__main__":
    main()
