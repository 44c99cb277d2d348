"""Progress bars on stderr for long work: a live bar on a terminal, a plain line every
:data:`LINE_EVERY_S` seconds when stderr is a file or a pipe (a log, CI), nothing when disabled."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from typing import Protocol


class Advance(Protocol):
    def advance(self, n: int = 1) -> None: ...


class _Null:
    def advance(self, n: int = 1) -> None:
        return None


#: How often a progress line is written when stderr is not a terminal.
LINE_EVERY_S = 30.0


class _Lines:
    """Progress as plain lines (done/total, rate, time left) for a stderr that is not a terminal."""

    def __init__(self, description: str, total: int | None, stream) -> None:
        self._description, self._total, self._stream = description, total, stream
        self._done = 0
        self._start = self._last = time.monotonic()

    def advance(self, n: int = 1) -> None:
        self._done += n
        now = time.monotonic()
        if now - self._last >= LINE_EVERY_S:
            self._last = now
            self.write(now)

    def write(self, now: float) -> None:
        elapsed = now - self._start
        rate = self._done / elapsed if elapsed > 0 else 0.0
        line = f"{self._description}: {self._done:,}"
        if self._total:
            line += f"/{self._total:,} ({100 * self._done / self._total:.0f}%)"
        line += f", {rate:,.1f}/s, {elapsed / 60:.1f} min"
        if self._total and rate > 0 and self._done < self._total:
            line += f", about {(self._total - self._done) / rate / 60:.1f} min left"
        print(line, file=self._stream, flush=True)


class _Rich:
    def __init__(self, progress, task) -> None:
        self._progress, self._task = progress, task

    def advance(self, n: int = 1) -> None:
        self._progress.advance(self._task, n)


@contextlib.contextmanager
def progress_bar(description: str, total: int | None, enabled: bool = True) -> Iterator[Advance]:
    """``with progress_bar("encoding", total=n) as bar: bar.advance(k)`` — rows/s and ETA on stderr."""
    if not enabled:
        yield _Null()
        return
    if not sys.stderr.isatty():
        lines = _Lines(description, total, sys.stderr)
        yield lines
        lines.write(time.monotonic())
        return
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn,
                               TimeElapsedColumn, TimeRemainingColumn)

    console = Console(file=sys.stderr)
    from rich.progress import ProgressColumn
    from rich.text import Text

    class RateColumn(ProgressColumn):
        def render(self, task) -> Text:
            return Text(f"{task.speed:,.0f}/s" if task.speed else "", style="progress.data.speed")

    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TaskProgressColumn(),
               RateColumn(), TimeElapsedColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task(description, total=total)
        yield _Rich(progress, task)
