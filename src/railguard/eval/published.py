"""F1 figures other papers report on the benchmarks we run: shown beside ours, never mixed with them.

The figures live in ``railguard/data/published.csv``, one row per (model, benchmark, task), each
citing its paper or model card and table, and saying how the figure was checked (``verified_via``).
A figure we could not check is not in the file. ``f1_kind`` is ``fixed`` (the model's own decision
rule, as our runs) or ``optimal`` (the threshold tuned on the test set itself, which flatters the
model); ``fpr`` and ``auprc`` are given where the source prints them.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from importlib import resources

PUBLISHED_FILE = "published.csv"
REPORTED_LABEL = "reported, not run here"


@dataclass(frozen=True, slots=True)
class Reported:
    model: str
    benchmark: str
    task: str
    f1: float | None
    fpr: float | None
    auprc: float | None
    f1_kind: str
    source: str
    table: str
    url: str
    verified_via: str
    note: str

    @property
    def citation(self) -> str:
        return f"{self.source}, {self.table}"

    def to_dict(self) -> dict:
        return {name: getattr(self, name) for name in self.__slots__}


def _num(text: str) -> float | None:
    text = (text or "").strip()
    return float(text) if text else None


def parse(text: str) -> list[Reported]:
    rows = csv.DictReader(io.StringIO(text))
    return [Reported(model=r["model"], benchmark=r["benchmark"], task=r["task"], f1=_num(r["f1"]),
                     fpr=_num(r["fpr"]), auprc=_num(r["auprc"]), f1_kind=r["f1_kind"], source=r["source"],
                     table=r["table"], url=r["url"], verified_via=r["verified_via"], note=r["note"])
            for r in rows]


def load() -> list[Reported]:
    """Every published figure shipped with railguard."""
    text = resources.files("railguard").joinpath("data", PUBLISHED_FILE).read_text(encoding="utf-8")
    return parse(text)


def for_benchmarks(names: set[tuple[str, str]]) -> list[Reported]:
    """The figures for these (benchmark, task) pairs, in file order."""
    return [r for r in load() if (r.benchmark, r.task) in names]
