"""moderate_file: one verdict line per input row, in order, ids kept, malformed rows as errors."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from railguard import ConfigError, InputError
from railguard.batch.local import moderate_file
from railguard.types import VERDICT_KEYS

OUTPUT_KEYS = set(VERDICT_KEYS) | {"id"}


def write_jsonl(path: Path, lines: list[bytes | dict]) -> Path:
    raw = [line if isinstance(line, bytes) else json.dumps(line).encode() for line in lines]
    path.write_bytes(b"\n".join(raw) + b"\n")
    return path


def read_out(path: Path) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def run(tmp_path: Path, src: Path, guard, **kw) -> tuple[list[dict], object]:
    out = tmp_path / "out.jsonl"
    summary = moderate_file(src, out, guard, progress=False, **kw)
    return read_out(out), summary


def test_rows_with_ids_keep_them_in_order(tmp_path, fake_guard):
    src = write_jsonl(tmp_path / "in.jsonl", [
        {"id": "a", "prompt": "hello there"},
        {"id": "b", "prompt": "how to build a bomb"},
        {"id": "c", "prompt": "what is 2+2", "response": "4"},
    ])
    rows, summary = run(tmp_path, src, fake_guard)
    assert [r["id"] for r in rows] == ["a", "b", "c"]
    assert [r["flagged"] for r in rows] == [False, True, False]
    assert rows[2]["refusal"] is False and rows[0]["refusal"] is None
    assert all(set(r) == OUTPUT_KEYS for r in rows)
    assert (summary.rows, summary.flagged, summary.errors) == (3, 1, 0)


def test_rows_without_ids_get_their_row_number(tmp_path, fake_guard):
    src = write_jsonl(tmp_path / "in.jsonl", [{"prompt": "one"}, {"prompt": "two"}, {"prompt": "bomb"}])
    rows, _ = run(tmp_path, src, fake_guard)
    assert [r["id"] for r in rows] == ["0", "1", "2"]
    assert [r["flagged"] for r in rows] == [False, False, True]


def test_malformed_rows_become_error_rows_in_place(tmp_path, fake_guard):
    src = write_jsonl(tmp_path / "in.jsonl", [
        {"id": "ok", "prompt": "hi"},
        b'{"id": "broken", "prompt": ',  # invalid JSON: its id cannot be read, so it gets its line number
        b'{"id": "latin1", "prompt": "caf\xe9"}',  # invalid UTF-8
        {"id": "int-prompt", "prompt": 5},
        b"",  # a blank line is a row too
        {"id": "null-prompt", "prompt": None},
        {"id": "no-prompt", "text": "hello"},
        {"id": "bad-context", "prompt": "hi", "context": ["doc", 3]},
        b"[1, 2]",
        {"id": 9, "prompt": "a bomb", "response": "sorry, no"},
        {"prompt": ""},
    ])
    rows, summary = run(tmp_path, src, fake_guard, batch_size=3)
    assert [r["id"] for r in rows] == [
        "ok", "1", "2", "int-prompt", "4", "null-prompt", "no-prompt", "bad-context", "8", "9", "10"]
    errors = [r["id"] for r in rows if r["error"]]
    assert errors == ["1", "2", "int-prompt", "4", "null-prompt", "no-prompt", "bad-context", "8"]
    assert all(r["flagged"] for r in rows if r["error"])  # fail-closed
    assert "JSON" in rows[1]["error"] and "UTF-8" in rows[2]["error"] and "blank" in rows[4]["error"]
    assert rows[9]["flagged"] is True and rows[9]["refusal"] is True
    assert rows[10]["error"] is None  # an empty prompt is valid
    assert all(set(r) == OUTPUT_KEYS for r in rows)
    assert (summary.rows, summary.errors, summary.flagged) == (11, 8, 9)


def test_a_file_without_a_final_newline_loses_no_row(tmp_path, fake_guard):
    src = tmp_path / "in.jsonl"
    src.write_text('{"prompt": "one"}\n{"prompt": "bomb"}')
    rows, _ = run(tmp_path, src, fake_guard)
    assert [r["id"] for r in rows] == ["0", "1"]


def test_gzipped_jsonl_and_custom_field_names(tmp_path, fake_guard):
    src = tmp_path / "in.jsonl.gz"
    with gzip.open(src, "wt") as f:
        f.write(json.dumps({"key": "k1", "text": "a bomb", "answer": "sorry"}) + "\n")
        f.write(json.dumps({"key": "k2", "text": "hello"}) + "\n")
    out = tmp_path / "out.jsonl.gz"
    moderate_file(src, out, fake_guard, text_field="text", response_field="answer", id_field="key", progress=False)
    rows = read_out(out)
    assert [(r["id"], r["flagged"], r["refusal"]) for r in rows] == [("k1", True, True), ("k2", False, None)]


def test_error_messages_count_lines_and_columns_from_one(tmp_path, fake_guard):
    src = write_jsonl(tmp_path / "in.jsonl", [
        {"prompt": "hi"},
        b'{"prompt": "a", }',  # the stray "}" is the 17th character
        b'{"prompt": "caf\xc3\xa9", "x": }',  # characters, not bytes: the "}" is the 25th
        b'{"prompt": "\xff"}',  # the 13th byte
        b"",
        {"text": "no prompt"},
    ])
    rows, _ = run(tmp_path, src, fake_guard)
    assert [r["error"] for r in rows] == [
        None,
        "line 2 is not valid JSON: Expecting property name enclosed in double quotes at column 17",
        "line 3 is not valid JSON: Expecting value at column 25",
        "line 4 is not valid UTF-8 (byte 13 of the line)",
        "line 5 is blank",
        "line 6 has no 'prompt' field",
    ]
    assert [r["id"] for r in rows] == ["0", "1", "2", "3", "4", "5"]  # ids stay the 0-based row numbers
    csv_src = tmp_path / "in.csv"
    csv_src.write_bytes(b'id,prompt\nx1,"two\nlines"\nx2,caf\xe9\n,\n')
    rows, _ = run(tmp_path, csv_src, fake_guard)
    assert rows[1]["error"] == "row 2 (line 4): text is not valid UTF-8"  # row 1 spans lines 2 and 3
    assert rows[2]["error"] is None and rows[0]["error"] is None


def test_csv_input(tmp_path, fake_guard):
    src = tmp_path / "in.csv"
    with open(src, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "prompt", "response"])
        writer.writerow(["x1", "a multi-line\nprompt about a bomb", ""])
        writer.writerow(["", "hello", "sorry, I can't"])
        writer.writerow(["x3", "plain", "sure"])
    with open(src, "ab") as f:
        f.write(b"x4,caf\xe9,\n")
    rows, summary = run(tmp_path, src, fake_guard)
    assert [r["id"] for r in rows] == ["x1", "1", "x3", "x4"]
    assert rows[0]["flagged"] is True and rows[0]["response_harmful"] is None  # empty cell: no response
    assert rows[1]["refusal"] is True
    assert rows[3]["error"] and "UTF-8" in rows[3]["error"]
    assert all(set(r) == OUTPUT_KEYS for r in rows)
    assert summary.rows == 4


def test_csv_without_the_text_column_is_a_clear_error(tmp_path, fake_guard):
    src = tmp_path / "in.csv"
    src.write_text("id,text\n1,hello\n")
    with pytest.raises(InputError, match="no column 'prompt'.*id, text"):
        run(tmp_path, src, fake_guard)
    assert not (tmp_path / "out.jsonl").exists()


def test_parquet_input(tmp_path, fake_guard):
    src = tmp_path / "in.parquet"
    table = pa.table({
        "id": [10, 11, None, 13],
        "prompt": ["hello", None, "a bomb", "fine"],
        "response": [None, None, "sorry", "ok"],
    })
    pq.write_table(table, src, row_group_size=2)
    rows, summary = run(tmp_path, src, fake_guard, batch_size=3)
    assert [r["id"] for r in rows] == ["10", "11", "2", "13"]
    assert [r["error"] is not None for r in rows] == [False, True, False, False]
    assert rows[2]["flagged"] is True and rows[2]["refusal"] is True
    assert all(set(r) == OUTPUT_KEYS for r in rows)
    assert (summary.rows, summary.errors) == (4, 1)


class FlakyGuard:
    """Fails any batch that contains the word "crash", like a backend choking on one input."""

    name = "flaky"

    def __init__(self, inner) -> None:
        self.inner = inner

    def check(self, inputs):
        if any("crash" in x.prompt for x in inputs):
            raise RuntimeError("backend fell over")
        return self.inner.check(inputs)


def test_a_row_the_guard_fails_on_fails_alone(tmp_path, fake_guard):
    src = write_jsonl(tmp_path / "in.jsonl", [{"prompt": p} for p in ["one", "crash me", "bomb", "four"]])
    rows, summary = run(tmp_path, src, FlakyGuard(fake_guard), batch_size=4)
    assert [r["id"] for r in rows] == ["0", "1", "2", "3"]
    assert [r["error"] is not None for r in rows] == [False, True, False, False]
    assert "backend fell over" in rows[1]["error"] and rows[1]["flagged"] is True
    assert rows[2]["flagged"] is True and summary.errors == 1


def test_guard_can_be_given_by_registry_name(tmp_path):
    src = write_jsonl(tmp_path / "in.jsonl", [{"prompt": "a bomb"}])
    rows, _ = run(tmp_path, src, "fake")
    assert rows[0]["flagged"] is True and rows[0]["tier"] == "fake"


def test_missing_input_file_is_an_input_error(tmp_path, fake_guard):
    with pytest.raises(InputError, match="not found"):
        run(tmp_path, tmp_path / "nope.jsonl", fake_guard)
    assert not (tmp_path / "out.jsonl").exists()


def test_unsupported_file_type_is_an_input_error(tmp_path, fake_guard):
    src = tmp_path / "in.txt"
    src.write_text("hello\n")
    with pytest.raises(InputError, match="supported files end in"):
        run(tmp_path, src, fake_guard)


def test_output_may_not_overwrite_the_input(tmp_path, fake_guard):
    src = write_jsonl(tmp_path / "in.jsonl", [{"prompt": "hi"}])
    with pytest.raises(ConfigError, match="overwrite the input"):
        moderate_file(src, src, fake_guard, progress=False)
    assert src.read_text() == '{"prompt": "hi"}\n'


def test_progress_bar_run_writes_the_same_rows(tmp_path, fake_guard):
    src = write_jsonl(tmp_path / "in.jsonl", [{"prompt": "one"}, b"oops", {"prompt": "bomb"}])
    out = tmp_path / "out.jsonl"
    summary = moderate_file(src, out, fake_guard, batch_size=2, progress=True)
    assert [r["id"] for r in read_out(out)] == ["0", "1", "2"] and summary.rows == 3


def test_truncated_gzip_is_a_clear_error(tmp_path, fake_guard):
    whole = gzip.compress(b"".join(json.dumps({"prompt": f"row {i}"}).encode() + b"\n" for i in range(100)))
    src = tmp_path / "in.jsonl.gz"
    src.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(InputError, match="not a readable gzip file"):
        run(tmp_path, src, fake_guard)
