"""A cascade of guards, cheapest first: each tier answers what it is sure of and hands on the rest.

``cascade:embedded>e5>hf:/models/wildguard`` runs the embedded model on everything. An input goes up a
tier when

- the tier cannot read its language (the embedded model reads English; :mod:`railguard.lang` tells), or
- the tier *hesitates* (D²-Monitor, Liu et al. 2026): several views of the same input — calibrated probes on
  the pooled hidden states of inner encoder layers, plus the model's own heads — are asked for each task,
  and the number of views whose probability lies within ``margin`` of the decision threshold is counted;
  ``k`` or more such views send the input on. ``route="margin"`` is the plain baseline: escalate when the
  final score of any task lies within ``margin`` of its threshold. Tiers without layer probes use it.
  ``route="language"`` escalates on language alone: each input goes to the first tier that reads it, whose
  answer stands (the default guard, :data:`railguard.load.DEFAULT_TIERS`, routes this way).

A heavy tier that fails or times out falls back by ``fallback``: ``closed`` (default: flagged, the error
said in the verdict), ``cheap`` (the cheaper tier's answer stands) or ``open`` (not flagged, the error said).
Every verdict carries ``route``: which tier answered, and why the input went up.

This module holds the guard, given its tiers; :mod:`railguard.load` composes the ``cascade:`` and ``default``
names from the guards the registry builds.
"""

from __future__ import annotations

import concurrent.futures
import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from ..errors import ConfigError, RailguardError
from ..guard import Guard, ReadsLanguages, has_views, reads, thresholds_of
from ..lang import detect, warm_detector
from ..types import GuardInput, Route, RouteStep, Verdict
from ..verdicts import routed

log = logging.getLogger(__name__)

ROUTES: tuple[str, ...] = ("hesitation", "margin", "language")
FALLBACKS: tuple[str, ...] = ("closed", "cheap", "open")
#: Tasks whose uncertainty can send an input up (a refusal is information, not a violation).
ROUTED_TASKS: tuple[str, ...] = ("prompt_harmful", "response_harmful", "jailbreak", "injection")
_LANGUAGE_SAMPLE = 600  # characters of prompt and of response the language detector reads


@dataclass(frozen=True, slots=True)
class Routing:
    """When an input goes up a tier. The defaults escalate only what every view is unsure of (k is capped
    at the number of views), the conservative end of the sweep in the README."""

    route: str = "hesitation"
    k: int = 6
    margin: float = 0.1
    languages: bool = True
    fallback: str = "closed"
    timeout_s: float | None = None

    def __post_init__(self) -> None:
        if self.route not in ROUTES:
            raise ConfigError(f"cascade route must be one of {', '.join(ROUTES)}, got {self.route!r}")
        if self.fallback not in FALLBACKS:
            raise ConfigError(f"cascade fallback must be one of {', '.join(FALLBACKS)}, got {self.fallback!r}")
        if not isinstance(self.k, int) or self.k < 1:
            raise ConfigError(f"cascade k must be a whole number ≥ 1, got {self.k!r}")
        if not 0.0 <= float(self.margin) <= 0.5:
            raise ConfigError(f"cascade margin must lie in 0..0.5, got {self.margin!r}")
        if self.timeout_s is not None and not self.timeout_s > 0:
            raise ConfigError(f"cascade timeout_s must be positive, got {self.timeout_s!r}")


def parse_tiers(argument: str | None) -> list[str]:
    """``"embedded>e5>hf:/path"`` -> ``["embedded", "e5", "hf:/path"]``."""
    tiers = [t.strip() for t in (argument or "").split(">")]
    if len(tiers) < 2 or not all(tiers):
        raise ConfigError("a cascade names two or more guards, cheapest first: cascade:embedded>e5")
    if any(t.startswith("cascade") for t in tiers):
        raise ConfigError("a cascade cannot contain another cascade; list all tiers in one: cascade:a>b>c")
    return tiers


def input_language(x: GuardInput) -> str | None:
    text = " ".join(t[:_LANGUAGE_SAMPLE] for t in (x.prompt, x.response or "") if t.strip())
    return detect(text) if text else None


def hesitation(views: np.ndarray, thresholds: Sequence[float], margin: float) -> np.ndarray:
    """Per input, the most views any one task has within ``margin`` of its threshold.
    ``views``: (n, views, tasks) probabilities (NaN: task does not apply)."""
    near = np.abs(views - np.asarray(thresholds, np.float32)[None, None, :]) < margin
    return near.sum(axis=1).max(axis=1) if views.size else np.zeros(len(views), int)


def margin_uncertain(verdict: Verdict, thresholds: Mapping[str, float], margin: float) -> bool:
    """The baseline: some task's final score lies within ``margin`` of its threshold."""
    for task in ROUTED_TASKS:
        score = verdict.scores.get(task)
        if score is not None and not math.isnan(score) and task in thresholds:
            if abs(score - thresholds[task]) < margin:
                return True
    return False


class CascadeGuard:
    """Tiers cheapest first; see the module docstring. Of the capabilities of :mod:`railguard.guard` it declares
    only ReadsLanguages (None: any language, its tiers route by language); it passes none of its tiers' through."""

    def __init__(self, tiers: Sequence[Guard], routing: Routing | None = None, *, name: str | None = None) -> None:
        if len(tiers) < 2:
            raise ConfigError("a cascade needs two or more tiers")
        self.tiers = list(tiers)
        self.routing = routing or Routing()
        self.name = name or "cascade:" + ">".join(t.name for t in self.tiers)
        self.languages = None  # the cascade as a whole reads what its last tier reads
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        if self._detects_languages():
            warm_detector()  # lingua loads its models on its first text (~4 s): here, not in a user's request

    def _detects_languages(self) -> bool:
        """Detection only matters when some tier says which languages it reads."""
        return bool(self.routing.languages and any(isinstance(t, ReadsLanguages) and t.languages for t in self.tiers))

    # -- routing decisions -------------------------------------------------------------------------
    def escalations(self, level: int, inputs: Sequence[GuardInput]) -> tuple[list[Verdict], list[str | None],
                                                                              np.ndarray]:
        """Run tier ``level`` on ``inputs``: its verdicts, and for each input the reason to go up (None:
        this tier's answer stands), with the hesitation counts (-1 where not computed)."""
        tier, r = self.tiers[level], self.routing
        thresholds = thresholds_of(tier)
        if r.route == "language":
            verdicts = tier.check(inputs)
            counts = np.full(len(inputs), -1)
            reasons: list[str | None] = [None] * len(inputs)
        elif r.route == "hesitation" and has_views(tier):
            verdicts, views = tier.check_views(inputs)
            tasks = tier.probes.tasks
            counts = hesitation(views, [thresholds.get(t, 0.5) for t in tasks], r.margin)
            k = min(r.k, views.shape[1]) if views.size else r.k  # k beyond the views there are means all of them
            reasons = [f"hesitation {int(c)} ≥ k={k}" if c >= k else None for c in counts]
        else:
            verdicts = tier.check(inputs)
            counts = np.full(len(inputs), -1)
            reasons = [f"score within {r.margin} of a threshold" if margin_uncertain(v, thresholds, r.margin)
                       else None for v in verdicts]
        reasons = [reason if v.error is None else f"tier error: {v.error}" for v, reason in zip(verdicts, reasons)]
        return verdicts, reasons, counts

    def _call(self, tier: Guard, inputs: Sequence[GuardInput]) -> list[Verdict]:
        if self.routing.timeout_s is None:
            return tier.check(inputs)
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="cascade")
        future = self._pool.submit(tier.check, inputs)
        try:
            return future.result(timeout=self.routing.timeout_s)
        except concurrent.futures.TimeoutError:
            raise TimeoutError(f"no answer within {self.routing.timeout_s} s") from None

    def _fallback(self, previous: Verdict | None, tier_name: str, error: str, route: Route,
                  id: str | None = None) -> Verdict:
        mode = self.routing.fallback
        route = replace(route, fallback=mode, failed_tier=tier_name)
        message = f"tier {tier_name} failed ({error}); fallback {mode}"
        if previous is None:
            # No cheaper tier judged it (none reads its language): there is no answer to stand, so only "open"
            # lets it through.
            detail = ", and no cheaper tier read it" if mode == "cheap" else ""
            return replace(Verdict.failed(message + detail, tier=tier_name, id=id, flagged=mode != "open"), route=route)
        if mode == "cheap":
            return replace(previous, route=route)
        return replace(previous, flagged=mode == "closed", error=message, route=route)

    # -- the Guard protocol ------------------------------------------------------------------------
    def check(self, inputs: Sequence[GuardInput]) -> list[Verdict]:
        n = len(inputs)
        out: list[Verdict | None] = [None] * n
        detect_languages = self._detects_languages()
        languages = [input_language(x) if detect_languages else None for x in inputs]
        tiers = tuple(t.name for t in self.tiers)
        paths: list[list[RouteStep]] = [[] for _ in range(n)]

        def route(i: int) -> Route:
            return Route(tiers=tiers, language=languages[i], path=tuple(paths[i]))

        previous: list[Verdict | None] = [None] * n
        spent = [0.0] * n
        pending = list(range(n))
        last = len(self.tiers) - 1
        for level, tier in enumerate(self.tiers):
            if not pending:
                break
            here = [i for i in pending if level == last or reads(tier, languages[i])
                    or not any(reads(t, languages[i]) for t in self.tiers[level + 1:])]
            handled = set(here)
            for i in pending:
                if i not in handled:
                    paths[i].append(RouteStep(tier.name, skipped=f"cannot read language {languages[i]}"))
            if not here:
                continue
            batch = [inputs[i] for i in here]
            start = time.perf_counter()
            try:
                if level == last:
                    verdicts, reasons = self._call(tier, batch), [None] * len(here)
                    counts = np.full(len(here), -1)
                else:
                    verdicts, reasons, counts = self.escalations(level, batch)
            except (RailguardError, TimeoutError, OSError) as exc:
                if level == 0:
                    raise
                log.warning("cascade tier %s failed on %d inputs: %s", tier.name, len(here), type(exc).__name__)
                for i in here:
                    paths[i].append(RouteStep(tier.name, error=str(exc)))
                    out[i] = self._fallback(previous[i], tier.name, str(exc), route(i), inputs[i].id)
                pending = [i for i in pending if out[i] is None]
                continue
            share = (time.perf_counter() - start) * 1000.0 / len(here)
            for i, v, reason, c in zip(here, verdicts, reasons, counts):
                spent[i] += share
                paths[i].append(RouteStep(tier.name, hesitation=int(c) if c >= 0 else None, escalated=reason or None))
                if level > 0 and v.error is not None and previous[i] is not None:
                    out[i] = self._fallback(previous[i], tier.name, v.error, route(i))
                elif reason is None or level == last:
                    out[i] = v
                previous[i] = v
            pending = [i for i in pending if out[i] is None]
        return [routed(v, _answered(v, route(i) if v.route is None else v.route), ms) for i, (v, ms) in enumerate(zip(out, spent))]


def _answered(verdict: Verdict, route: Route) -> Route:
    """``route`` completed by who answered: the tier of ``verdict`` (a tier's own route, a fallback's or that of a
    cascade among the tiers, stands for the one built here), whether the input went up and the first reason why."""
    reasons = [step.escalated or step.skipped for step in route.path]
    return replace(route, answered_by=verdict.tier, escalated=any(reasons) or route.fallback is not None,
                   reason=next((r for r in reasons if r), None))
