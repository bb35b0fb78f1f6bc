"""A journal of writes sent but not yet settled, so that a sync job killed at any moment can be
run again without duplicating what it had sent.

flinkey applies writes asynchronously: its ``204`` means "accepted", and the change shows a
moment later (with its webhook). A job killed between the two cannot learn from a fresh read
what it had sent: the car's list does not show the create yet, and a re-run would create it a
second time. The journal closes that gap.
:meth:`~flinkey_async.resources.assignments.Assignments.reconcile` with ``journal=`` records
each write **before** it leaves and marks it settled once its outcome
is known (applied or refused). A re-run first settles what an earlier run left open: it waits,
for at most ``settle`` seconds after each write was sent, until the write shows in flinkey's
data (a create by its car, user, start and end; a delete by its absence; an update by its
values), and only then reads and plans. A write that never shows within that time was refused
or lost, and the plan makes it again.

:class:`FileJournal` keeps the journal in a file of JSON lines, appended with one ``write()``
per record (a process killed at any moment leaves whole lines, or one torn last line, which is
ignored), rewritten without its settled records when opened. Give each worker of a partitioned
job its own file (or share one: appends of whole lines do not interleave). ``fsync=True``
also survives a crash of the machine, at the cost of one disk flush per record. Any object with
the :class:`Journal` methods can replace it (a database table, for example).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import attrs
import orjson

from ._converter import format_datetime
from .errors import JournalError

__all__ = ["FileJournal", "Journal", "JournalEntry", "JournalError", "WriteKind"]

WriteKind = Literal["create", "update", "delete"]
_KINDS = ("create", "update", "delete")
_VERSION = 1


@attrs.frozen
class JournalEntry:
    """One write as recorded before it was sent.

    Attributes:
        id: unique id of the record.
        kind: ``create``, ``update`` or ``delete``.
        customer_id: the ``Customer-ID`` it was sent for.
        car_id: the car whose assignments it changes.
        sent_at: when it was recorded, just before it was sent (aware UTC).
        user_id, start, end, lifetime, renewable_after: what a create sent.
        assignment_id: the assignment an update or a delete is for.
        patch: the JSON-Patch body an update sent.
    """

    id: str
    kind: WriteKind
    customer_id: int
    car_id: int
    sent_at: datetime
    user_id: int | None = None
    start: datetime | None = None
    end: datetime | None = None
    lifetime: int | None = None
    renewable_after: int | None = None
    assignment_id: int | None = None
    patch: list[dict[str, Any]] | None = attrs.field(default=None, eq=False)

    @classmethod
    def new(cls, kind: WriteKind, customer_id: int, car_id: int, **fields: Any) -> JournalEntry:
        """A record with a fresh id, sent now."""
        return cls(uuid.uuid4().hex, kind, customer_id, car_id, datetime.now(UTC), **fields)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "v": _VERSION,
            "record": "sent",
            "id": self.id,
            "kind": self.kind,
            "customerId": self.customer_id,
            "carId": self.car_id,
            "sentAt": self.sent_at.astimezone(UTC).isoformat(),
        }
        for name, value in (
            ("userId", self.user_id),
            ("start", None if self.start is None else format_datetime(self.start)),
            ("end", None if self.end is None else format_datetime(self.end)),
            ("lifetime", self.lifetime),
            ("renewableAfter", self.renewable_after),
            ("assignmentId", self.assignment_id),
            ("patch", self.patch),
        ):
            if value is not None:
                data[name] = value
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JournalEntry:
        """The entry of a ``sent`` record; ``ValueError``/``KeyError``/``TypeError`` when it is
        not one."""
        kind = data["kind"]
        if kind not in _KINDS:
            raise ValueError(f"unknown kind {kind!r}")

        def when(key: str) -> datetime | None:
            value = data.get(key)
            if value is None:
                return None
            parsed = datetime.fromisoformat(str(value))
            if parsed.tzinfo is None:
                raise ValueError(f"{key} has no time zone")
            try:
                return parsed.astimezone(UTC)
            except OverflowError:
                # 0001-01-01T00:00+05:00 or 9999-12-31T23:59-05:00: no such instant in UTC.
                raise ValueError(f"{key} {value!r} is out of range in UTC") from None

        def integer(key: str) -> int | None:
            value = data.get(key)
            if value is None:
                return None
            if type(value) is not int:
                raise TypeError(f"{key} is not an integer")
            return value

        sent_at = when("sentAt")
        customer, car = integer("customerId"), integer("carId")
        if sent_at is None or customer is None or car is None or not isinstance(data["id"], str):
            raise ValueError("a record needs id, customerId, carId and sentAt")
        patch = data.get("patch")
        if patch is not None and not (
            isinstance(patch, list) and all(isinstance(p, dict) for p in patch)
        ):
            raise TypeError("patch is not a list of operations")
        return cls(
            data["id"],
            kind,
            customer,
            car,
            sent_at,
            user_id=integer("userId"),
            start=when("start"),
            end=when("end"),
            lifetime=integer("lifetime"),
            renewable_after=integer("renewableAfter"),
            assignment_id=integer("assignmentId"),
            patch=patch,
        )


@runtime_checkable
class Journal(Protocol):
    """Where a job records the writes it sends (see the module)."""

    def pending(self) -> list[JournalEntry]:
        """The writes recorded as sent and not settled, oldest first."""
        ...

    def sent(self, entry: JournalEntry) -> None:
        """Record ``entry`` (called before it is sent; it must be stored when this returns)."""
        ...

    def settled(self, entry_ids: Iterable[str]) -> None:
        """Record that these writes' outcomes are known."""
        ...


class FileJournal:
    """A :class:`Journal` in a file of JSON lines (see the module). Opening it reads the file
    (created if missing) and rewrites it with only the records still pending."""

    def __init__(self, path: str | os.PathLike[str], *, fsync: bool = False) -> None:
        self.path = Path(path)
        self.fsync = fsync
        self._pending: dict[str, JournalEntry] = {}
        try:
            self._load()
            self._compact()
        except OSError as exc:
            raise JournalError(
                f"cannot use the journal {str(self.path)!r}: {exc.strerror or exc}"
            ) from None

    def __repr__(self) -> str:
        return f"FileJournal({str(self.path)!r}, pending={len(self._pending)})"

    def pending(self) -> list[JournalEntry]:
        return sorted(self._pending.values(), key=lambda e: e.sent_at)

    def sent(self, entry: JournalEntry) -> None:
        self._append([entry.to_json()])
        self._pending[entry.id] = entry

    def settled(self, entry_ids: Iterable[str]) -> None:
        ids = [i for i in entry_ids if i in self._pending]
        if not ids:
            return
        self._append([{"v": _VERSION, "record": "settled", "id": i} for i in ids])
        for i in ids:
            del self._pending[i]

    # -- the file ----------------------------------------------------------------------------
    def _load(self) -> None:
        try:
            text = self.path.read_bytes()
        except FileNotFoundError:
            return
        lines = text.split(b"\n")
        complete = text.endswith(b"\n")
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            last = number == len(lines)
            try:
                data = orjson.loads(line)
                if not isinstance(data, dict) or data.get("v") != _VERSION:
                    raise ValueError("not a record of this journal version")
                if data.get("record") == "settled":
                    self._pending.pop(str(data["id"]), None)
                elif data.get("record") == "sent":
                    entry = JournalEntry.from_json(data)
                    self._pending[entry.id] = entry
                else:
                    raise ValueError("unknown record")
            except (ValueError, KeyError, TypeError, OverflowError) as exc:
                if last and not complete:
                    break  # the torn last line of a process killed while writing it
                raise JournalError(
                    f"the journal {str(self.path)!r} has a corrupt record on line {number}: {exc}"
                ) from None

    def _compact(self) -> None:
        """Rewrite the file with the pending records only (atomically: a new file renamed)."""
        records = [entry.to_json() for entry in self.pending()]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(self.path.name + ".tmp")
        with open(temporary, "wb") as file:
            file.write(b"".join(orjson.dumps(r) + b"\n" for r in records))
            file.flush()
            if self.fsync:
                os.fsync(file.fileno())
        os.replace(temporary, self.path)

    def _append(self, records: list[dict[str, Any]]) -> None:
        data = b"".join(orjson.dumps(r) + b"\n" for r in records)
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                view = memoryview(data)
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
                if self.fsync:
                    os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise JournalError(
                f"cannot write to the journal {str(self.path)!r}: {exc.strerror or exc}"
            ) from None
