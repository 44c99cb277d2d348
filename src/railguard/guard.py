"""The one protocol every backend implements, and the optional capabilities a guard declares beside it.

A caller that needs more than ``check`` asks ``isinstance(guard, HasThresholds)`` (and so on): the capability
is part of the guard's declared interface, never found by probing attributes. A wrapper (policy, media) holds
the guard it wraps in ``inner`` and passes through only the capabilities it names.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

from .types import GuardInput, Verdict

if TYPE_CHECKING:
    import numpy as np

    from .policy import Policy

T = TypeVar("T")
#: A check done in steps: each ``next()`` does one short piece of the work; the generator returns the verdicts.
Steps = Generator[None, None, list[Verdict]]


@runtime_checkable
class Guard(Protocol):
    """Turns a batch of GuardInputs into a batch of Verdicts, one per input, in order."""

    name: str

    def check(self, inputs: Sequence[GuardInput]) -> list[Verdict]: ...


@runtime_checkable
class HasThresholds(Protocol):
    """Decides each task by comparing a calibrated score with these thresholds."""

    thresholds: Mapping[str, float]


@runtime_checkable
class HasManifest(Protocol):
    """Runs model files described by a manifest (sha256 of every file, thresholds, training record)."""

    manifest: Mapping[str, Any]
    model_dir: Path


@runtime_checkable
class Describes(Protocol):
    """Says what it runs (package versions, weights' hashes, endpoint) for an evaluation's provenance."""

    def provenance(self) -> dict[str, Any]: ...


@runtime_checkable
class JudgesTasks(Protocol):
    """Judges only these tasks (the others stay undecided, None, in its verdicts)."""

    tasks: frozenset[str]


@runtime_checkable
class ReadsLanguages(Protocol):
    """Reads text in these languages (ISO 639-1 codes); None: any language."""

    languages: tuple[str, ...] | None


@runtime_checkable
class HasEncoder(Protocol):
    """Runs a text encoder that other parts may share (custom categories, agent heads)."""

    encoder: Any


@runtime_checkable
class HasLayerViews(Protocol):
    """Besides verdicts, gives per-layer probe scores that a cascade reads as hesitation."""

    probes: Any

    def check_views(self, inputs: Sequence[GuardInput]) -> tuple[list[Verdict], np.ndarray]: ...


@runtime_checkable
class HasPolicy(Protocol):
    """Its verdicts carry the actions of this policy (a PolicyGuard, or a wrapper passing it through)."""

    policy: Policy


@runtime_checkable
class Wraps(Protocol):
    """A wrapper around another guard."""

    inner: Guard


@runtime_checkable
class Closeable(Protocol):
    """Holds threads, sessions or connections to release."""

    def close(self) -> None: ...


#: The attributes (data and methods) each capability is made of: what a wrapper copies from the guard it wraps
#: when it passes that capability through (see :func:`pass_through`).
CAPABILITY_ATTRIBUTES: dict[type, tuple[str, ...]] = {
    HasThresholds: ("thresholds",), HasManifest: ("manifest", "model_dir"), Describes: ("provenance",),
    JudgesTasks: ("tasks",), ReadsLanguages: ("languages",), HasEncoder: ("encoder",),
    HasLayerViews: ("probes", "check_views"), HasPolicy: ("policy",), Wraps: ("inner",), Closeable: ("close",),
}


def pass_through(wrapper: Any, inner: Guard, capabilities: Sequence[type]) -> None:
    """Give ``wrapper`` each of ``capabilities`` that ``inner`` declares, as ``inner`` has it (the same values
    and bound methods); a capability ``inner`` lacks stays absent, so ``isinstance(wrapper, HasThresholds)``
    answers for ``inner``. Nothing else of ``inner`` is forwarded."""
    for capability in capabilities:
        if isinstance(inner, capability):
            for attribute in CAPABILITY_ATTRIBUTES[capability]:
                setattr(wrapper, attribute, getattr(inner, attribute))


def thresholds_of(guard: Guard) -> dict[str, float]:
    """The guard's per-task thresholds ({} for a guard that does not decide by thresholds)."""
    return {t: float(v) for t, v in guard.thresholds.items()} if isinstance(guard, HasThresholds) else {}


def reads(guard: Guard, language: str | None) -> bool:
    """Whether a guard reads text in ``language`` (a guard that declares no languages reads any)."""
    return language is None or not isinstance(guard, ReadsLanguages) or not guard.languages \
        or language in guard.languages


def has_views(guard: Guard) -> bool:
    """Whether a guard gives layer views for hesitation (an embedded guard with its probes)."""
    return isinstance(guard, HasLayerViews) and guard.probes is not None


def unwrap(guard: Guard, kind: type) -> Any:
    """The guard of type ``kind`` that ``guard`` is or wraps (through policy and media wrappers), else None."""
    while not isinstance(guard, kind):
        if not isinstance(guard, Wraps):
            return None
        guard = guard.inner
    return guard


@runtime_checkable
class ChecksInSteps(Protocol):
    """A guard that can do ``check(inputs)`` in short steps, so that a server can put other requests' work between
    them. The verdicts are exactly ``check(inputs)``'s; ``max_windows=None`` does it all in one step."""

    def check_steps(self, inputs: Sequence[GuardInput], *, max_windows: int | None = None) -> Steps: ...


def check_steps(guard: Guard, inputs: Sequence[GuardInput], *, max_windows: int | None = None) -> Steps:
    """``guard``'s check of ``inputs`` in steps of at most ``max_windows`` encoder windows each when it declares
    :class:`ChecksInSteps`, else in one step (its ``check``)."""
    if isinstance(guard, ChecksInSteps):
        return guard.check_steps(inputs, max_windows=max_windows)
    return _one_step(guard, inputs)


def _one_step(guard: Guard, inputs: Sequence[GuardInput]) -> Steps:
    return guard.check(inputs)
    yield  # unreachable: makes this function a generator


def run_steps(steps: Generator[None, None, T]) -> T:
    """All the steps at once; their result."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value
