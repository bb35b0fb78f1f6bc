"""A sync job in its own process, for the crash tests: reconcile the cars named on the command
line to the desired list in a JSON file, with a journal, then print the report's counts.

``python -m tests.e2e.reconcile_job URL TOKEN DESIRED.json JOURNAL CAR [CAR ...]``
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import datetime

from flinkey_async import DesiredAssignment, FlinkeyClient, RetryPolicy


def load(path: str) -> list[DesiredAssignment]:
    with open(path, encoding="utf-8") as file:
        items = json.load(file)
    return [
        DesiredAssignment(
            item["car_id"],
            item["user_id"],
            datetime.fromisoformat(item["start"]),
            None if item["end"] is None else datetime.fromisoformat(item["end"]),
            item["lifetime"],
        )
        for item in items
    ]


async def main(url: str, token: str, desired: str, journal: str, cars: list[int]) -> None:
    async with FlinkeyClient(
        "sandbox-api-key",
        1,
        token=token,
        base_url=url,
        retry=RetryPolicy(max_retries=8, backoff_base=0.01, backoff_max=0.1, max_retry_after=2),
    ) as client:
        report = await client.assignments.reconcile(
            load(desired), cars=cars, concurrency=4, timeout=10, journal=journal, settle=4
        )
    print(
        json.dumps(
            {
                "ok": report.ok,
                "created": len(report.created),
                "updated": len(report.updated),
                "deleted": len(report.deleted),
                "unchanged": len(report.unchanged),
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    url, token, desired, journal, *cars = sys.argv[1:]
    asyncio.run(main(url, token, desired, journal, [int(c) for c in cars]))
