"""Evaluation: run guards over the public safety benchmarks; score, time and report them.

>>> from railguard.eval import evaluate, markdown_table
>>> print(markdown_table(evaluate(["embedded"], ["xstest"], data_dir)))  # doctest: +SKIP

>>> from railguard.eval import run, report
>>> result = run(["embedded", "peer:svguardian"], ["all"], data_dir)  # doctest: +SKIP
>>> report.write_report(report.results_dict(result), "reports/full")  # doctest: +SKIP
"""

from __future__ import annotations

from .benchmarks import BENCHMARKS, BenchSpec, known_names
from .runner import BenchResult, EvalRun, evaluate, markdown_table, run

__all__ = ["BENCHMARKS", "BenchSpec", "BenchResult", "EvalRun", "evaluate", "run", "markdown_table",
           "known_names"]
