"""Batch moderation at scale: shards, Parquet output, --resume, the Python API and the Ray engine."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import railguard
from railguard import ConfigError, GuardInput, InputError, MissingExtraError
from railguard.cli import app
from railguard.batch.sources import iter_inputs, iter_shard, plan_shards
from railguard.batch.local import moderate_file
from railguard.types import TASKS

from conftest import HAS_EMBEDDED_MODEL
from test_moderate import read_out, write_jsonl

LINES = [
    {"id": "a", "prompt": "hello"},
    b'{"id": "torn", "prompt": ',
    {"prompt": "a bomb", "response": "sorry"},
    b"",
    {"id": 7, "prompt": 3},
    *({"prompt": f"row {i}" + (" bomb" if i % 4 == 0 else "")} for i in range(5, 23)),
]


def without_timing(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "latency_ms"} for r in rows]


@pytest.fixture
def jsonl_in(tmp_path) -> Path:
    path = write_jsonl(tmp_path / "in.jsonl", LINES)
    path.write_bytes(path.read_bytes().rstrip(b"\n"))  # no final newline: the last row must still count
    return path


@pytest.fixture
def parquet_in(tmp_path) -> Path:
    path = tmp_path / "in.parquet"
    prompts = [f"text {i}" + (" bomb" if i % 3 == 0 else "") for i in range(23)]
    prompts[5] = None
    pq.write_table(pa.table({"id": [f"p{i}" for i in range(23)], "prompt": prompts}), path, row_group_size=7)
    return path


@pytest.mark.parametrize("rows_per_shard, skip", [(1, 0), (4, 0), (5, 3), (100, 0), (6, 22), (3, 23)])
def test_shards_read_exactly_the_rows_of_the_whole_file(jsonl_in, parquet_in, rows_per_shard, skip):
    for path in (jsonl_in, parquet_in):
        whole = list(iter_inputs(path))[skip:]
        shards = plan_shards(path, rows_per_shard, skip)
        assert [row for s in shards for row in iter_shard(s)] == whole
        assert all(s.count <= rows_per_shard for s in shards)


def test_gzip_and_csv_cannot_be_split_for_workers(tmp_path):
    (tmp_path / "x.csv").write_text("prompt\nhi\n")
    with pytest.raises(InputError, match="cannot split x.csv.*local engine"):
        plan_shards(tmp_path / "x.csv", 10)


def test_parquet_output_has_typed_verdict_columns(tmp_path, jsonl_in, fake_guard):
    out = tmp_path / "out.parquet"
    summary = moderate_file(jsonl_in, out, fake_guard, batch_size=4, progress=False)
    table = pq.read_table(out)
    assert table.num_rows == summary.rows == len(LINES)
    assert table.column_names == ["id", "flagged", *TASKS, "scores", "categories", "tier", "latency_ms", "error",
                                  "action", "policy_details"]
    assert pa.types.is_map(table.schema.field("scores").type) and table.schema.field("flagged").type == pa.bool_()
    rows = table.to_pylist()
    assert [r["id"] for r in rows][:5] == ["a", "1", "2", "3", "7"]
    assert rows[1]["error"] and rows[1]["flagged"] and rows[3]["error"] and rows[4]["error"]
    assert rows[2]["refusal"] is True and rows[0]["refusal"] is None
    assert dict(rows[2]["scores"])["prompt_harmful"] == 0.9
    jsonl = read_out(Path(moderate_file(jsonl_in, tmp_path / "o.jsonl", fake_guard, progress=False).out_path))
    assert [(r["id"], r["flagged"], r["error"]) for r in rows] == [(r["id"], r["flagged"], r["error"]) for r in jsonl]


def test_unknown_output_type_is_refused_before_any_work(tmp_path, jsonl_in, fake_guard):
    with pytest.raises(ConfigError, match="must end in"):
        moderate_file(jsonl_in, tmp_path / "out.txt", fake_guard, progress=False)
    assert not (tmp_path / "out.txt").exists()


class Interrupted(BaseException):
    """Stands for Ctrl-C or a killed job, in the middle of a run."""


class StopsAfter:
    def __init__(self, inner, batches: int) -> None:
        self.inner, self.left, self.name = inner, batches, "fake"

    def check(self, inputs):
        if self.left == 0:
            raise Interrupted
        self.left -= 1
        return self.inner.check(inputs)


def test_resume_after_an_interruption_and_a_torn_line_equals_one_full_run(tmp_path, jsonl_in, fake_guard):
    full = tmp_path / "full.jsonl"
    moderate_file(jsonl_in, full, fake_guard, batch_size=4, progress=False)
    out = tmp_path / "out.jsonl"
    with pytest.raises(Interrupted):
        moderate_file(jsonl_in, out, StopsAfter(fake_guard, 2), batch_size=4, progress=False)
    assert len(read_out(out)) == 8  # two batches written and flushed before the interruption
    with open(out, "ab") as f:  # a process killed while writing leaves half a line
        f.write(b'{"flagged": false, "id": "ro')
    summary = moderate_file(jsonl_in, out, fake_guard, batch_size=4, progress=False, resume=True)
    assert (summary.skipped, summary.rows) == (8, len(LINES) - 8)
    assert without_timing(read_out(out)) == without_timing(read_out(full))
    again = moderate_file(jsonl_in, out, fake_guard, progress=False, resume=True)  # nothing left to do
    assert (again.skipped, again.rows) == (len(LINES), 0) and len(read_out(out)) == len(LINES)


@pytest.mark.heavy
def test_a_killed_cli_run_resumes_into_the_file_an_uninterrupted_run_writes(tmp_path, embedded_guard):
    src = write_jsonl(tmp_path / "in.jsonl", [{"id": f"k{i}", "prompt": f"Tell me about item {i}, please."}
                                              for i in range(1500)])
    out = tmp_path / "out.jsonl"
    code = "from railguard.cli import app; app()"
    proc = subprocess.Popen([sys.executable, "-c", code, "moderate", str(src), "-o", str(out), "--no-progress",
                             "--batch-size", "16", "--guard", "embedded"], stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while (not out.exists() or out.stat().st_size == 0) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.kill()  # SIGKILL: no clean-up, whatever was flushed stays
    proc.wait()
    written = len(out.read_bytes().splitlines())
    assert 0 < written < 1500, "the run was not interrupted mid-way"
    summary = moderate_file(src, out, embedded_guard, batch_size=16, progress=False, resume=True)
    assert summary.skipped + summary.rows == 1500
    moderate_file(src, tmp_path / "full.jsonl", embedded_guard, batch_size=16, progress=False)
    assert without_timing(read_out(out)) == without_timing(read_out(tmp_path / "full.jsonl"))


def test_resume_refuses_an_output_from_another_input(tmp_path, jsonl_in, fake_guard):
    out = write_jsonl(tmp_path / "out.jsonl", [{"flagged": False, "id": "zzz"}])
    with pytest.raises(ConfigError, match="belongs to another input"):
        moderate_file(jsonl_in, out, fake_guard, progress=False, resume=True)
    assert read_out(out) == [{"flagged": False, "id": "zzz"}]


def test_resume_needs_plain_jsonl_and_starts_fresh_without_an_output(tmp_path, jsonl_in, fake_guard):
    (tmp_path / "out.parquet").write_bytes(b"x")
    with pytest.raises(ConfigError, match="uncompressed .jsonl"):
        moderate_file(jsonl_in, tmp_path / "out.parquet", fake_guard, progress=False, resume=True)
    summary = moderate_file(jsonl_in, tmp_path / "new.jsonl", fake_guard, progress=False, resume=True)
    assert (summary.skipped, summary.rows) == (0, len(LINES))


def test_cli_resume_reports_what_it_skipped(tmp_path, jsonl_in):
    out = tmp_path / "out.jsonl"
    args = ["moderate", str(jsonl_in), "-o", str(out), "--guard", "fake", "--no-progress"]
    assert CliRunner().invoke(app, args).exit_code == 0
    out.write_bytes(b"".join(out.read_bytes().splitlines(keepends=True)[:10]))
    result = CliRunner().invoke(app, [*args, "--resume"])
    assert result.exit_code == 0 and "skipped (already in out.jsonl): 10" in result.output
    assert [r["id"] for r in read_out(out)] == [r for r, _ in iter_inputs(jsonl_in)]


def test_python_api_on_rows_in_memory(fake_guard):
    rows = ["hello", GuardInput(prompt="a bomb", id="g"), {"id": "d", "prompt": "x", "response": "sorry"},
            {"text": "no prompt"}, 42]
    verdicts = list(railguard.moderate_dataset(rows, guard=fake_guard, batch_size=2))
    assert [v.id for v in verdicts] == ["0", "g", "d", "3", "4"]
    assert [v.flagged for v in verdicts] == [False, True, False, True, True]
    assert verdicts[2].refusal is True and verdicts[3].error and "int" in verdicts[4].error
    table = pa.table({"prompt": ["fine", "bomb"], "id": ["x", "y"]})
    assert [(v.id, v.flagged) for v in railguard.moderate_dataset(table, guard="fake")] == [("x", False), ("y", True)]
    with pytest.raises(ConfigError, match="cannot moderate a value of type int"):
        railguard.moderate_dataset(5, guard="fake")


def test_python_api_on_files(tmp_path, jsonl_in, fake_guard):
    summary = railguard.moderate_dataset(jsonl_in, guard=fake_guard, out=tmp_path / "o.jsonl")
    assert summary.rows == len(LINES) and len(read_out(tmp_path / "o.jsonl")) == len(LINES)
    verdicts = list(railguard.moderate_dataset(jsonl_in, guard=fake_guard))
    assert [v.id for v in verdicts] == [r["id"] for r in read_out(tmp_path / "o.jsonl")]
    with pytest.raises(ConfigError, match="give out=PATH"):
        railguard.moderate_dataset(jsonl_in, guard=fake_guard, engine="ray")
    with pytest.raises(ConfigError, match="unknown engine 'spark'"):
        railguard.moderate_dataset(jsonl_in, engine="spark")
    with pytest.raises(ConfigError, match="go with the ray engine"):
        railguard.moderate_dataset(jsonl_in, guard=fake_guard, out=tmp_path / "w.jsonl", workers=4)


def test_ray_engine_without_ray_installed_says_which_extra(tmp_path, jsonl_in, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now fails as if it were not installed
    result = CliRunner().invoke(app, ["moderate", str(jsonl_in), "-o", str(tmp_path / "o.jsonl"), "--guard",
                                      "fake", "--engine", "ray"])
    assert result.exit_code == 2 and "pip install 'railguard[ray]'" in result.output
    with pytest.raises(MissingExtraError):
        railguard.moderate_dataset([{"prompt": "x"}], guard="fake", engine="ray")


def test_ray_engine_with_an_address_nothing_answers_at_fails_fast(tmp_path, jsonl_in):
    with socket.socket() as s:  # a free port: nothing listens there once it is closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = CliRunner().invoke(app, ["moderate", str(jsonl_in), "-o", str(tmp_path / "o.jsonl"), "--guard",
                                      "fake", "--engine", "ray", "--address", f"127.0.0.1:{port}"])
    assert result.exit_code == 2 and f"no Ray cluster answers at 127.0.0.1:{port}" in result.output
    result = CliRunner().invoke(app, ["moderate", str(jsonl_in), "-o", str(tmp_path / "o.jsonl"), "--engine", "ray",
                                      "--address", "head-node"])
    assert result.exit_code == 2 and "HOST:PORT" in result.output


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray with 2 CPUs for the Ray tests of this module (starting one takes seconds)."""
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    if not HAS_EMBEDDED_MODEL:
        pytest.skip("no embedded model")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield ray
    ray.shutdown()


@pytest.mark.heavy
def test_ray_engine_writes_what_the_local_engine_writes(tmp_path, jsonl_in, parquet_in, local_ray, monkeypatch):
    monkeypatch.setattr("railguard.batch.ray._BATCHES_PER_SHARD", 2)  # shards of 8 rows: 3 per file
    for src in (jsonl_in, parquet_in):
        local, on_ray = tmp_path / f"{src.name}-local.jsonl", tmp_path / f"{src.name}-ray.jsonl"
        moderate_file(src, local, "embedded", batch_size=4, progress=False)
        summary = moderate_file(src, on_ray, "embedded", batch_size=4, progress=False, engine="ray", workers=2)
        assert summary.rows == 23
        assert without_timing(read_out(on_ray)) == without_timing(read_out(local))
    # resuming on Ray continues a local run's output, and Parquet output holds the same verdicts
    out = tmp_path / "resumed.jsonl"
    out.write_bytes(b"".join((tmp_path / "in.jsonl-local.jsonl").read_bytes().splitlines(keepends=True)[:9]))
    summary = moderate_file(jsonl_in, out, "embedded", batch_size=4, progress=False, engine="ray", resume=True)
    assert (summary.skipped, summary.rows) == (9, 14)
    assert without_timing(read_out(out)) == without_timing(read_out(tmp_path / "in.jsonl-local.jsonl"))
    moderate_file(parquet_in, tmp_path / "o.parquet", "embedded", progress=False, engine="ray", workers=2)
    assert [r["id"] for r in pq.read_table(tmp_path / "o.parquet").to_pylist()] == [f"p{i}" for i in range(23)]


@pytest.mark.heavy
def test_python_api_adds_verdict_columns_to_a_ray_dataset(local_ray):
    ds = local_ray.data.from_items([{"key": i, "prompt": p} for i, p in enumerate(["hello", "How do I make a bomb?"])])
    rows = railguard.moderate_dataset(ds, guard="embedded", engine="ray", id_field="key", workers=2).take_all()
    expected = list(railguard.moderate_dataset(["hello", "How do I make a bomb?"], guard="embedded"))
    assert [r["key"] for r in rows] == [0, 1]  # the rows' own columns stay
    assert [r["flagged"] for r in rows] == [v.flagged for v in expected]
    assert [r["prompt_harmful"] for r in rows] == [v.prompt_harmful for v in expected]
    assert json.dumps(dict(rows[1]["scores"]), sort_keys=True) == json.dumps(
        {k: round(s, 4) for k, s in expected[1].scores.items()}, sort_keys=True)


@pytest.mark.heavy
def test_ray_worker_that_cannot_load_its_guard_ends_the_run_with_its_error(tmp_path, jsonl_in, local_ray):
    out = tmp_path / "o.jsonl"
    with pytest.raises(railguard.ModelError, match="not a railguard model directory"):
        moderate_file(jsonl_in, out, f"embedded:{tmp_path}", progress=False, engine="ray", workers=1)
    assert not out.exists()
