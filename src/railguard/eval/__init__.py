"""Evaluation: run guards over the public safety benchmarks and report F1, precision, recall and FPR.

>>> from railguard.eval import evaluate, markdown_table
>>> print(markdown_table(evaluate(["embedded"], ["xstest"], data_dir)))  # doctest: +SKIP
"""

from __future__ import annotations

from .benchmarks import BENCHMARKS, BenchSpec, known_names
from .runner import BenchResult, evaluate, markdown_table

__all__ = ["BENCHMARKS", "BenchSpec", "BenchResult", "evaluate", "markdown_table", "known_names"]
