"""The file journal: records survive a process, a torn last line is ignored, a corrupt one is a
typed error, settled records are dropped when the file is opened again."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import orjson
import pytest

from flinkey_async.errors import FlinkeyError
from flinkey_async.journal import FileJournal, Journal, JournalEntry, JournalError

START = datetime(2031, 1, 1, 9, 30, tzinfo=timezone(timedelta(hours=1)))


def create(car: int = 7) -> JournalEntry:
    return JournalEntry.new("create", 1, car, user_id=9, start=START, end=None, lifetime=1_209_600)


def test_records_are_read_back_by_a_new_journal(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    journal = FileJournal(path)
    assert isinstance(journal, Journal)
    first, second = (
        create(),
        JournalEntry.new(
            "update",
            1,
            8,
            assignment_id=55,
            patch=[{"op": "replace", "path": "/end", "value": "2031-02-01T00:00:00Z"}],
        ),
    )
    journal.sent(first)
    journal.sent(second)
    journal.settled([first.id])
    again = FileJournal(path).pending()
    assert again == [second]
    assert again[0].patch == second.patch
    assert FileJournal(path).pending() == [second]  # opening twice changes nothing
    # Datetimes come back in UTC, whole seconds, equal to what was sent.
    journal.sent(first)
    (read,) = [e for e in FileJournal(path).pending() if e.kind == "create"]
    assert read.start == START and read.start is not None and read.start.tzinfo is UTC
    assert read.lifetime == 1_209_600 and read.user_id == 9 and read.end is None


def test_opening_drops_settled_records_from_the_file(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    journal = FileJournal(path)
    entries = [create(car) for car in range(1, 51)]
    for entry in entries:
        journal.sent(entry)
    journal.settled(e.id for e in entries[1:])
    assert len(path.read_text().splitlines()) == 50 + 49
    assert [e.id for e in FileJournal(path).pending()] == [entries[0].id]
    assert len(path.read_text().splitlines()) == 1  # compacted


def test_a_torn_last_line_is_ignored_and_a_corrupt_record_is_a_typed_error(
    tmp_path: Path,
) -> None:
    path = tmp_path / "j.jsonl"
    journal = FileJournal(path)
    kept = create()
    journal.sent(kept)
    with open(path, "ab") as file:
        file.write(b'{"v":1,"record":"sent","id":"ab')  # killed while writing
    assert FileJournal(path).pending() == [kept]
    path.write_bytes(path.read_bytes() + b'{"v":1,"record":"sent","kind":"move"}\n')
    with pytest.raises(JournalError, match="corrupt record on line 2") as caught:
        FileJournal(path)
    assert isinstance(caught.value, FlinkeyError)
    path.write_bytes(b"[1, 2]\n" + path.read_bytes())
    with pytest.raises(JournalError, match="line 1"):
        FileJournal(path)


def test_an_unusable_path_is_a_typed_error(tmp_path: Path) -> None:
    directory = tmp_path / "a-directory"
    directory.mkdir()
    with pytest.raises(JournalError, match="cannot use the journal"):
        FileJournal(directory)
    path = tmp_path / "j.jsonl"
    journal = FileJournal(path)
    os.chmod(tmp_path, 0o500)
    try:
        if os.access(tmp_path, os.W_OK):  # root ignores permissions: make the write fail
            path.unlink()
            path.mkdir()
        with pytest.raises(JournalError, match="cannot write"):
            journal.sent(create())
        assert journal.pending() == []  # nothing recorded: nothing claimed
    finally:
        os.chmod(tmp_path, 0o700)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("sentAt", "0001-01-01T00:00:00+05:00"),  # before datetime.min once in UTC
        ("start", "9999-12-31T23:59:59-05:00"),  # after datetime.max once in UTC
        ("end", "9999-12-31T23:00:00-01:00"),
    ],
)
def test_a_datetime_out_of_range_in_utc_is_a_corrupt_record(
    tmp_path: Path, field: str, value: str
) -> None:
    path = tmp_path / "j.jsonl"
    kept = create()
    FileJournal(path).sent(kept)
    before = path.read_bytes()
    record = {**kept.to_json(), "id": "corrupt", field: value}
    path.write_bytes(before + orjson.dumps(record) + b"\n")
    with pytest.raises(JournalError, match=rf"corrupt record on line 2: {field} .*out of range"):
        FileJournal(path)
    assert path.read_bytes() == before + orjson.dumps(record) + b"\n"  # not rewritten
