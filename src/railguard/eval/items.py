"""What every benchmark yields: a labelled GuardInput (the benchmarks, the published formats and the agent
sets all build these)."""

from __future__ import annotations

from dataclasses import dataclass

from ..types import GuardInput


@dataclass(frozen=True, slots=True)
class Item:
    """One labelled input of a benchmark."""

    input: GuardInput
    label: bool
    groups: tuple[str, ...] = ()
