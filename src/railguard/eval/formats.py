"""Benchmarks we cannot ship, read from the files their publishers distribute.

``railguard eval --bench toxicchat=path/to/toxic-chat_annotation_test.csv`` reads one file in the
format of its dataset card and yields labelled items per task. Each format names the columns it
reads; a file without them is an InputError that lists what was found. Formats:

- ``wildguardtest``: allenai/wildguardmix ``test/wildguard_test.parquet`` -> prompt_harmful,
  response_harmful, refusal, each also per part (``wildguardtest:adversarial`` / ``:vanilla``);
- ``toxicchat``: lmsys/toxic-chat ``data/0124/toxic-chat_annotation_test.csv`` -> prompt_harmful
  (``toxicity``) and jailbreak (``jailbreaking``);
- ``aegis``: nvidia/Aegis-AI-Content-Safety-Dataset-1.0 (``text``, ``text_type``, ``labels_0`` ..
  ``labels_4``) -> prompt_harmful of the user messages, by annotator majority;
- ``aegis2``: nvidia/Aegis-AI-Content-Safety-Dataset-2.0 ``test.json`` -> prompt_harmful,
  response_harmful (redacted prompts are skipped);
- ``beavertails``: PKU-Alignment/BeaverTails ``round0/30k/test.jsonl.gz`` -> response_harmful
  (``not is_safe``, judged on the question-answer pair);
- ``openai_moderation``: openai/moderation-api-release ``data/samples-1680.jsonl.gz`` -> prompt_harmful
  (any of S, H, V, HR, SH, S3, H2, V2 is 1; a missing key is unknown);
- ``xstest``: paul-rottger/xstest ``xstest_prompts.csv`` -> prompt_harmful (``label``), or a model
  completions CSV (``completion``, ``final_label``) -> refusal.

Every format also reads the same columns from Parquet, CSV or JSON lines (``.gz`` allowed, not for
Parquet), so a copy saved from the Hugging Face viewer works as well as the original file.
"""

from __future__ import annotations

import csv
import gzip
import json
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError, InputError
from ..types import GuardInput, Task
from .items import Item

_CSV_FIELD_LIMIT = 2**31 - 1
_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f"}

Record = Mapping[str, Any]
Parsed = dict[str, list[Item]]


def _bool(value: Any) -> bool | None:
    """True/False from a bool, a 0/1 number or a 'true'/'false' string; None when missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return bool(value)
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    return None


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = value if isinstance(value, str) else str(value)
    return text if text.strip() else None


def _read_json(path: Path, opener: Callable) -> Iterator[Record]:
    with opener(path, "rt", encoding="utf-8") as f:
        head = f.read(1)
        while head and head.isspace():
            head = f.read(1)
        f.seek(0)
        if head == "[":
            data = json.load(f)
            yield from data
            return
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as exc:
                    raise InputError(f"{path} line {n} is not valid JSON: {exc.msg}") from None


def _read_csv(path: Path, opener: Callable) -> Iterator[Record]:
    csv.field_size_limit(_CSV_FIELD_LIMIT)
    with opener(path, "rt", encoding="utf-8", newline="") as f:
        yield from csv.DictReader(f)


def _read_parquet(path: Path) -> Iterator[Record]:
    import pyarrow.parquet as pq

    try:
        yield from pq.read_table(path).to_pylist()
    except Exception as exc:  # pyarrow raises several unrelated types for unreadable files
        raise InputError(f"{path} is not a readable Parquet file: {exc}") from None


def read_records(path: str | Path) -> list[dict]:
    """Every row of a .parquet, .csv, .json (an array) or .jsonl file (.gz for the text ones)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"benchmark file not found: {path}")
    name = path.name.lower()
    gz = name.endswith(".gz")
    stem = name[:-3] if gz else name
    opener: Callable = gzip.open if gz else open
    suffix = Path(stem).suffix
    try:
        if suffix in (".parquet", ".pq") and not gz:
            rows = _read_parquet(path)
        elif suffix in (".csv", ".tsv"):
            rows = _read_csv(path, opener)
        elif suffix in (".json", ".jsonl", ".ndjson"):
            rows = _read_json(path, opener)
        else:
            raise InputError(f"cannot read {path}: use a .parquet, .csv, .json or .jsonl file (.gz allowed "
                             "for the text ones)")
        out = [dict(r) for r in rows]
    except (UnicodeDecodeError, gzip.BadGzipFile, EOFError) as exc:
        raise InputError(f"{path} could not be read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{path} is not valid JSON: {exc.msg}") from None
    if not out:
        raise InputError(f"{path} holds no rows")
    return out


def _require(rows: list[dict], columns: Iterable[str], fmt: str, path: Path) -> None:
    present = set().union(*(r.keys() for r in rows[:50]))
    missing = [c for c in columns if c not in present]
    if missing:
        raise InputError(f"{path} is not a {fmt} file: it lacks the column(s) {', '.join(missing)}; found: "
                         f"{', '.join(sorted(present)) or 'none'}")


def _add(out: Parsed, task: str, prompt: str | None, label: bool | None, *, response: str | None = None,
         with_response: bool = False, id: Any = None, groups: tuple[str, ...] = ()) -> None:
    if prompt is None or label is None or (with_response and response is None):
        return
    inp = GuardInput(prompt=prompt, response=response if with_response else None,
                     id=None if id is None else str(id))
    out.setdefault(task, []).append(Item(inp, label, groups))


_HARMFUL, _RESPONSE, _REFUSAL = Task.PROMPT_HARMFUL.value, Task.RESPONSE_HARMFUL.value, Task.REFUSAL.value


def _label(value: Any, positive: str, negative: str) -> bool | None:
    text = _text(value)
    if text is None:
        return None
    text = text.strip().lower()
    return True if text == positive else False if text == negative else None


def _wildguardtest(rows: list[dict], path: Path) -> Parsed:
    _require(rows, ("prompt", "prompt_harm_label"), "WildGuardTest", path)
    out: Parsed = {}
    for i, r in enumerate(rows):
        adversarial = _bool(r.get("adversarial"))
        groups = () if adversarial is None else (f"wildguardtest:{'adversarial' if adversarial else 'vanilla'}",)
        prompt, response = _text(r.get("prompt")), _text(r.get("response"))
        _add(out, _HARMFUL, prompt, _label(r.get("prompt_harm_label"), "harmful", "unharmful"), id=i,
             groups=groups)
        _add(out, _RESPONSE, prompt, _label(r.get("response_harm_label"), "harmful", "unharmful"),
             response=response, with_response=True, id=i, groups=groups)
        _add(out, _REFUSAL, prompt, _label(r.get("response_refusal_label"), "refusal", "compliance"),
             response=response, with_response=True, id=i, groups=groups)
    return out


def _toxicchat(rows: list[dict], path: Path) -> Parsed:
    _require(rows, ("user_input", "toxicity"), "ToxicChat", path)
    out: Parsed = {}
    for r in rows:
        prompt, rid = _text(r.get("user_input")), r.get("conv_id")
        _add(out, _HARMFUL, prompt, _bool(r.get("toxicity")), id=rid)
        _add(out, Task.JAILBREAK.value, prompt, _bool(r.get("jailbreaking", r.get("jailbreak"))), id=rid)
    return out


#: Aegis 1.0 annotators may say "Needs Caution"; we count it as unsafe (the "defensive" reading the
#: Aegis authors trained Aegis-Guard-Defensive on). A tie between safe and unsafe votes is left out.
AEGIS_SAFE = "safe"
_AEGIS_LABEL_COLUMNS = tuple(f"labels_{i}" for i in range(5))


def _aegis_vote(row: Mapping[str, Any]) -> bool | None:
    unsafe = safe = 0
    for col in _AEGIS_LABEL_COLUMNS:
        value = _text(row.get(col))
        if value is None or value.strip().lower() == "none":
            continue
        if value.strip().lower() == AEGIS_SAFE:
            safe += 1
        else:
            unsafe += 1
    if unsafe == safe:
        return None
    return unsafe > safe


def _aegis(rows: list[dict], path: Path) -> Parsed:
    if "prompt_label" in rows[0] and "labels_0" not in rows[0]:
        raise InputError(f"{path} looks like Aegis 2.0 (it has prompt_label); use --bench aegis2={path}")
    _require(rows, ("text", "text_type", "labels_0"), "Aegis 1.0", path)
    out: Parsed = {}
    for r in rows:
        if str(r.get("text_type", "")).strip().lower() != "user_message":
            continue
        _add(out, _HARMFUL, _text(r.get("text")), _aegis_vote(r), id=r.get("id"))
    return out


def _aegis2(rows: list[dict], path: Path) -> Parsed:
    if "labels_0" in rows[0] and "prompt_label" not in rows[0]:
        raise InputError(f"{path} looks like Aegis 1.0 (it has labels_0); use --bench aegis={path}")
    _require(rows, ("prompt", "prompt_label"), "Aegis 2.0", path)
    out: Parsed = {}
    for r in rows:
        prompt = _text(r.get("prompt"))
        # Redacted prompts (suicide-detection samples) must be fetched separately; they are not text here.
        if prompt is None or prompt.strip() == "REDACTED" or _text(r.get("reconstruction_id_if_redacted")):
            continue
        _add(out, _HARMFUL, prompt, _label(r.get("prompt_label"), "unsafe", "safe"), id=r.get("id"))
        _add(out, _RESPONSE, prompt, _label(r.get("response_label"), "unsafe", "safe"),
             response=_text(r.get("response")), with_response=True, id=r.get("id"))
    return out


def _beavertails(rows: list[dict], path: Path) -> Parsed:
    _require(rows, ("prompt", "response", "is_safe"), "BeaverTails", path)
    out: Parsed = {}
    for i, r in enumerate(rows):
        safe = _bool(r.get("is_safe"))
        _add(out, _RESPONSE, _text(r.get("prompt")), None if safe is None else not safe,
             response=_text(r.get("response")), with_response=True, id=i)
    return out


#: The category keys of the OpenAI moderation release; a missing key means "not labelled".
OPENAI_MODERATION_KEYS = ("S", "H", "V", "HR", "SH", "S3", "H2", "V2")


def _openai_moderation(rows: list[dict], path: Path) -> Parsed:
    _require(rows, ("prompt",), "OpenAI moderation release", path)
    present = set().union(*(r.keys() for r in rows[:50]))
    if not present & set(OPENAI_MODERATION_KEYS):
        raise InputError(f"{path} is not an OpenAI moderation release file: it has none of the category keys "
                         f"{', '.join(OPENAI_MODERATION_KEYS)}")
    out: Parsed = {}
    for i, r in enumerate(rows):
        flags = [_bool(r.get(k)) for k in OPENAI_MODERATION_KEYS]
        known = [f for f in flags if f is not None]
        label = True if any(known) else (False if known else None)
        _add(out, _HARMFUL, _text(r.get("prompt")), label, id=i)
    return out


XSTEST_REFUSALS = ("2_full_refusal", "3_partial_refusal")
XSTEST_COMPLIANCE = ("1_full_compliance",)


def _xstest(rows: list[dict], path: Path) -> Parsed:
    out: Parsed = {}
    if "completion" in rows[0]:
        _require(rows, ("prompt", "completion", "final_label"), "XSTest completions", path)
        for r in rows:
            final = (_text(r.get("final_label")) or "").strip()
            label = True if final in XSTEST_REFUSALS else False if final in XSTEST_COMPLIANCE else None
            _add(out, _REFUSAL, _text(r.get("prompt")), label, response=_text(r.get("completion")),
                 with_response=True, id=r.get("id"))
        return out
    _require(rows, ("prompt", "label"), "XSTest prompts", path)
    for r in rows:
        _add(out, _HARMFUL, _text(r.get("prompt")), _label(r.get("label"), "unsafe", "safe"), id=r.get("id"))
    return out


@dataclass(frozen=True, slots=True)
class FileFormat:
    """A published benchmark file: how to read it and where it comes from."""

    name: str
    source: str
    parse: Callable[[list[dict], Path], Parsed]
    group_prefix: str = ""


FORMATS: dict[str, FileFormat] = {
    f.name: f
    for f in (
        FileFormat("wildguardtest", "allenai/wildguardmix test/wildguard_test.parquet", _wildguardtest,
                   "wildguardtest"),
        FileFormat("toxicchat", "lmsys/toxic-chat data/0124/toxic-chat_annotation_test.csv", _toxicchat),
        FileFormat("aegis", "nvidia/Aegis-AI-Content-Safety-Dataset-1.0 (user messages)", _aegis),
        FileFormat("aegis2", "nvidia/Aegis-AI-Content-Safety-Dataset-2.0 test.json", _aegis2),
        FileFormat("beavertails", "PKU-Alignment/BeaverTails round0/30k/test.jsonl.gz", _beavertails),
        FileFormat("openai_moderation", "openai/moderation-api-release data/samples-1680.jsonl.gz",
                   _openai_moderation),
        FileFormat("xstest", "paul-rottger/xstest xstest_prompts.csv (or a model completions CSV)", _xstest),
    )
}


def known_formats() -> str:
    return ", ".join(FORMATS)


def load_file(name: str, path: str | Path) -> Parsed:
    """Labelled items per task from one published benchmark file."""
    fmt = FORMATS.get(name)
    if fmt is None:
        raise ConfigError(f"no reader for benchmark files named '{name}'; NAME=PATH takes one of: {known_formats()}")
    path = Path(path)
    parsed = fmt.parse(read_records(path), path)
    if not any(parsed.values()):
        raise InputError(f"{path} has no labelled rows for {name}")
    return parsed
