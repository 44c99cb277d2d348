"""The evaluation benchmarks: which shared dataset, which rows, which label and which verdict field.

Each benchmark reads ``<data_dir>/<dataset>/data.jsonl.gz`` (see the data README) and yields Items: a
GuardInput, its boolean label and the sub-groups it is also reported under (``harmbench:copyright``,
``multijail:zh``). A row whose label is null is not labelled for that task and is skipped.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from ..datasets.readers import read_rows
from ..datasets.split import DEFAULT_SEED, HELDOUT_FRACTION, holdout_of, norm_key
from ..errors import ConfigError
from ..types import GuardInput, Task
from .items import Item

log = logging.getLogger(__name__)

ALL = "all"
DATA_HINT = "set RAILGUARD_DATA or pass --data to point at the folder that holds <dataset>/data.jsonl.gz"
#: The seed of the shuffle that makes ``limit`` take the same rows on every run.
LIMIT_SEED = 13


def _no_groups(row: dict) -> tuple[str, ...]:
    return ()


def _by_language(prefix: str) -> Callable[[dict], tuple[str, ...]]:
    def groups(row: dict) -> tuple[str, ...]:
        return (f"{prefix}:{row.get('lang') or 'unknown'}",)

    return groups


def _harmbench_halves(row: dict) -> tuple[str, ...]:
    cats = set(row.get("categories") or ())
    out = []
    if cats & {"standard", "contextual"}:
        out.append("harmbench:standard+contextual")
    if "copyright" in cats:
        out.append("harmbench:copyright")
    return tuple(out)


def _is_test(row: dict) -> bool:
    return row.get("split") == "test"


def _benign_holdout(row: dict) -> bool:
    return holdout_of(norm_key(row["prompt"]), HELDOUT_FRACTION, DEFAULT_SEED)


@dataclass(frozen=True, slots=True)
class BenchSpec:
    """How to turn one dataset into labelled GuardInputs for one task.

    ``task`` is the Verdict field that is compared with the row's ``label`` field; ``with_response``
    passes the row's response along with its prompt; ``keep`` selects the rows (test split by default);
    ``groups`` names the sub-benchmarks a row is also reported under, each ``<group_prefix>:<part>``.
    """

    name: str
    dataset: str
    task: str
    label: str
    description: str
    with_response: bool = False
    keep: Callable[[dict], bool] = _is_test
    groups: Callable[[dict], tuple[str, ...]] = _no_groups
    group_prefix: str = ""
    group_help: str = ""
    #: Rows in their own schema (agents): row -> labelled Item, or None when not labelled.
    to_item: Callable[[dict], Item | None] | None = None
    #: Extra metrics beyond the binary ones: (items, verdicts) -> dict, shown under the table.
    details: Callable[[list, list], dict] | None = None

    def item(self, row: dict) -> Item | None:
        """The row as a labelled input, or None when it is not labelled for this task."""
        if self.to_item is not None:
            return self.to_item(row)
        label = row.get(self.label)
        prompt = row.get("prompt")
        response = row.get("response") if self.with_response else None
        if label is None or prompt is None or (self.with_response and response is None):
            return None
        inp = GuardInput(prompt=prompt, response=response, id=row.get("id"))
        return Item(inp, bool(label), self.groups(row))


_HARMFUL = Task.PROMPT_HARMFUL.value
_INJECTION = Task.INJECTION.value

BENCHMARKS: dict[str, BenchSpec] = {
    spec.name: spec
    for spec in (
        BenchSpec("openai_moderation", "openai_moderation", _HARMFUL, "prompt_harmful",
                  "harmful user text (OpenAI moderation release)"),
        BenchSpec("xstest", "xstest", _HARMFUL, "prompt_harmful",
                  "harmful prompts vs safe look-alikes; FPR = over-flagging of the safe ones"),
        BenchSpec("simple_safety_tests", "simple_safety_tests", _HARMFUL, "prompt_harmful",
                  "clearly harmful prompts (recall only)"),
        BenchSpec("harmbench", "harmbench", _HARMFUL, "prompt_harmful",
                  "harmful behaviours (recall only), also as its standard+contextual and copyright halves",
                  groups=_harmbench_halves, group_prefix="harmbench",
                  group_help="harmbench:standard+contextual, harmbench:copyright"),
        BenchSpec("multijail", "multijail", _HARMFUL, "prompt_harmful",
                  "harmful prompts in 10 languages (recall only), also per language",
                  groups=_by_language("multijail"), group_prefix="multijail",
                  group_help="multijail:<lang>"),
        BenchSpec("xstest_responses", "xstest_responses", Task.REFUSAL.value, "response_refusal",
                  "does the response refuse? (prompt + response)", with_response=True),
        BenchSpec("bipia", "bipia", _INJECTION, "injection",
                  "indirect injections hidden in emails, tables and code (test split)"),
        BenchSpec("injection_slabs", "injection_slabs", _INJECTION, "injection",
                  "direct prompt injections (test split)"),
        BenchSpec("injection_neuralchemy", "injection_neuralchemy", _INJECTION, "injection",
                  "injections, jailbreak personas and obfuscated commands (test split)"),
        BenchSpec("benign_multilingual_fpr", "benign_multilingual", _HARMFUL, "prompt_harmful",
                  "over-flagging of benign text per language (held-out part of the training pool)",
                  keep=_benign_holdout, groups=_by_language("benign_multilingual"),
                  group_prefix="benign_multilingual", group_help="benign_multilingual:<lang>"),
    )
}


def _agent_benchmarks() -> dict[str, BenchSpec]:
    """Agents: webguard (one action's risk; scored as HIGH vs the rest, with the three-level metrics
    under the table) and the trajectory sets; rows in their own schema, read by :mod:`.agent`."""
    from . import agent

    return {spec.name: spec for spec in (
        BenchSpec("webguard", "webguard", "action_high", "risk",
                  "is a proposed web action HIGH risk? (WebGuard held-out actions; SAFE/LOW/HIGH metrics below)",
                  to_item=agent.webguard_item, details=agent.action_details),
        BenchSpec("rjudge", "rjudge", "trajectory_unsafe", "unsafe",
                  "is an agent's trajectory unsafe? (R-Judge test split)", to_item=agent.trajectory_item),
        BenchSpec("assebench_security", "assebench_security", "trajectory_unsafe", "unsafe",
                  "is a tool-use trajectory unsafe? (ASSEBench security test split)", to_item=agent.trajectory_item),
    )}


BENCHMARKS.update(_agent_benchmarks())


def known_names() -> str:
    """The names ``--bench`` accepts, for help texts and error messages."""
    from .formats import known_formats

    names = [ALL, *BENCHMARKS]
    names += [spec.group_help for spec in BENCHMARKS.values() if spec.group_help]
    return ", ".join(names) + f"; or NAME=PATH for a published file, NAME one of {known_formats()}"


@dataclass(frozen=True, slots=True)
class Selection:
    """A benchmark to run, whole or narrowed to one sub-group (``multijail:zh``)."""

    spec: BenchSpec
    group: str | None = None


@dataclass(frozen=True, slots=True)
class FileSelection:
    """A published benchmark file to read (``toxicchat=path/to/file.csv``), see :mod:`.formats`."""

    format: str
    path: Path


def _spec_of_group(name: str) -> BenchSpec | None:
    prefix = name.partition(":")[0]
    return next((s for s in BENCHMARKS.values() if s.group_prefix and s.group_prefix == prefix), None)


def _file_selection(name: str) -> FileSelection:
    from .formats import FORMATS, known_formats

    fmt, _, path = (part.strip() for part in name.partition("="))
    if fmt not in FORMATS:
        raise ConfigError(f"no reader for benchmark files named '{fmt}'; NAME=PATH takes one of: {known_formats()}")
    if not path:
        raise ConfigError(f"'{name}' names no file; write {fmt}=path/to/file")
    return FileSelection(fmt, Path(path).expanduser())


def select(names: Iterable[str] | None) -> list[Selection | FileSelection]:
    """Benchmarks by name, in the order given; None or ``all`` means every benchmark in the data folder.

    ``NAME=PATH`` reads a published benchmark file in the format :mod:`.formats` names NAME.
    """
    names = [n.strip() for n in (names or [ALL]) if n and n.strip()] or [ALL]
    out: list[Selection | FileSelection] = []
    for name in names:
        if "=" in name:
            out.append(_file_selection(name))
        elif name == ALL:
            out += [Selection(spec) for spec in BENCHMARKS.values()]
        elif name in BENCHMARKS:
            out.append(Selection(BENCHMARKS[name]))
        elif ":" in name and (spec := _spec_of_group(name)) is not None:
            out.append(Selection(spec, name))
        else:
            raise ConfigError(f"unknown benchmark '{name}'; known benchmarks: {known_names()}")
    unique = {(s.format, s.path) if isinstance(s, FileSelection) else (s.spec.name, s.group): s for s in out}
    return list(unique.values())


def data_path(data_dir: Path, spec: BenchSpec) -> Path:
    return Path(data_dir) / spec.dataset / "data.jsonl.gz"


def check_data_dir(data_dir: Path | None) -> Path:
    """The data folder, or a ConfigError telling the user how to point at it."""
    if data_dir is None or not Path(data_dir).is_dir():
        raise ConfigError(f"benchmark data folder not found ({data_dir}); {DATA_HINT}")
    return Path(data_dir)


def load(spec: BenchSpec, data_dir: Path, *, group: str | None = None, limit: int | None = None,
         seed: int = LIMIT_SEED) -> list[Item]:
    """The benchmark's labelled items; with ``limit``, the first ``limit`` after a seeded shuffle."""
    rows = read_rows(check_data_dir(data_dir), spec.dataset)
    items = [it for row in rows if spec.keep(row) and (it := spec.item(row)) is not None]
    if group is not None:
        items = [it for it in items if group in it.groups]
        if not items:
            raise ConfigError(f"benchmark '{group}' has no labelled rows; known benchmarks: {known_names()}")
    items = limited(items, limit, seed)
    log.debug("benchmark %s: %d items", group or spec.name, len(items))
    return items


def limited(items: list[Item], limit: int | None, seed: int = LIMIT_SEED) -> list[Item]:
    """The first ``limit`` items after a seeded shuffle (the same ones on every run); all when None."""
    if limit is not None and limit < 1:
        raise ConfigError(f"limit must be at least 1, got {limit}")
    if limit is not None and limit < len(items):
        items = list(items)
        random.Random(seed).shuffle(items)
        items = items[:limit]
    return items
