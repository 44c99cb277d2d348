"""The one protocol every backend implements."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from .types import GuardInput, Verdict


@runtime_checkable
class Guard(Protocol):
    """Turns a batch of GuardInputs into a batch of Verdicts, one per input, in order."""

    name: str

    def check(self, inputs: Sequence[GuardInput]) -> list[Verdict]: ...
