"""The embedded default: one small encoder pass per text window, shared by every task and category head.

A text that hides what it says (leetspeak, look-alike letters, zero-width characters, base64 / hex / rot13
payloads, repetition, spaced-out letters) is also read through its normalized views (:mod:`railguard.evasion`);
each view's windows are judged with the text's own, and the worst window decides. Ordinary text has no view."""

from __future__ import annotations

import time
from collections.abc import Generator, Sequence
from pathlib import Path

import numpy as np

from ..config import CoreSettings, Settings
from ..errors import ModelError
from ..evasion import views as evasion_views
from ..guard import Steps, run_steps
from ..lang import script_language
from ..models.artifacts import EMBEDDED_DIR, verify
from ..models.encoder import TextEncoder, Window
from ..models.heads import Heads
from ..models.views import Probes
from ..registry import register
from ..types import FLAG_TASKS, TASKS, GuardInput, Verdict, decide
from ..verdicts import check_inputs

_PROMPT, _RESPONSE, _CONTEXT = 0, 1, 2


class EmbeddedGuard:
    """Runs offline on the CPU from a model directory (the one shipped in the package by default)."""

    def __init__(self, model_dir: str | Path | None = None, *, threads: int | None = None,
                 batch_size: int | None = None, tier: str = "embedded", evasion: bool = True,
                 settings: CoreSettings | None = None) -> None:
        #: threads, batch size and model folder where not given (from the environment, now, unless passed)
        self.settings = cfg = settings if settings is not None else CoreSettings.from_env()
        #: Whether texts are also judged through their evasion views (leetspeak, base64, ...).
        self.evasion = evasion
        self.model_dir = Path(model_dir or cfg.model_dir or EMBEDDED_DIR)
        self.manifest = verify(self.model_dir)
        self.encoder = TextEncoder.from_spec(self.model_dir, self.manifest["encoder"], threads=threads or cfg.threads,
                                             batch_size=batch_size or cfg.batch_size)
        self.heads = Heads.load(self.model_dir, self.manifest["heads"])
        self.thresholds: dict[str, float] = dict(self.manifest["thresholds"])
        #: Stricter thresholds for text in a writing system whose benign text the model over-flags
        #: ({task: {script language: threshold}}, chosen on held-out benign text; see train.pipeline).
        self.script_thresholds: dict[str, dict[str, float]] = {
            task: dict(by) for task, by in self.manifest.get("script_thresholds", {}).items()}
        self.categories: tuple[str, ...] = tuple(h for h in self.heads.names if h not in TASKS)
        #: Recall-first categories ({category: floor}, chosen on held-out benign text; see train.pipeline): a
        #: prompt (answer) whose category score reaches the floor is harmful, its harm score lifted to the threshold.
        self.category_floors: dict[str, float] = {
            c: float(t) for c, t in self.manifest.get("category_floors", {}).items() if c in self.categories}
        self.name = tier
        self._col = {n: i for i, n in enumerate(self.heads.names)}
        spec = self.manifest.get("probes")
        self.probes: Probes | None = Probes.load(self.model_dir, spec) if spec else None
        #: The languages this model was trained to read (the cascade routes other text to a tier that can).
        # (manifest "languages": null or [] means any language)
        languages = self.manifest.get("languages", ["en"])
        self.languages: tuple[str, ...] | None = tuple(languages) if languages else None

    def _windows(self, x: GuardInput) -> list[tuple[int, Window]]:
        # Blank text says nothing: it gets no window and scores 0 rather than whatever [CLS][SEP] encodes to.
        out = [(_PROMPT, w) for t in self._readings(x.prompt) for w in self.encoder.windows(t)]
        if x.response is not None:
            out += [(_RESPONSE, w) for t in self._readings(x.response) for w in self.encoder.pair_windows(x.prompt, t)]
        for doc in x.context:
            out += [(_CONTEXT, w) for t in self._readings(doc) for w in self.encoder.windows(t)]
        return out

    def _readings(self, text: str) -> list[str]:
        """The text and its evasion views (the text first: a refusal is read from the answer's first window)."""
        if not text.strip():
            return []
        return [text] + [v.text for v in evasion_views(text)] if self.evasion else [text]

    def check(self, inputs: Sequence[GuardInput]) -> list[Verdict]:
        return self._check(inputs, views=False)[0]

    def check_steps(self, inputs: Sequence[GuardInput], *, max_windows: int | None = None) -> Steps:
        """:meth:`check` with at most ``max_windows`` windows encoded per step (the encoder is batch-invariant, so
        the verdicts are the same to the bit); the first step also cuts the texts into windows."""
        return (yield from self._steps(inputs, views=False, max_windows=max_windows))[0]

    def check_views(self, inputs: Sequence[GuardInput]) -> tuple[list[Verdict], np.ndarray]:
        """Verdicts plus every view's probability per input and hesitation task: (n, views, tasks), the
        inner-layer probes first and the model's own heads last; NaN where a task does not apply.
        Raises ModelError when the model has no probes (train it with `railguard train`)."""
        if self.probes is None:
            raise ModelError(f"the model in {self.model_dir} has no layer probes; add them with "
                             "`railguard train` (new models) or railguard.train.probes.add_probes")
        return self._check(inputs, views=True)

    def _check(self, inputs: Sequence[GuardInput], views: bool) -> tuple[list[Verdict], np.ndarray]:
        return run_steps(self._steps(inputs, views, None))

    def _steps(self, inputs: Sequence[GuardInput], views: bool, max_windows: int | None
               ) -> Generator[None, None, tuple[list[Verdict], np.ndarray]]:
        start = time.perf_counter()
        busy_s = 0.0  # time spent in the steps, not between them
        inputs = check_inputs(inputs)
        owners: list[tuple[int, int]] = []
        windows: list[Window] = []
        for i, x in enumerate(inputs):
            for role, w in self._windows(x):
                owners.append((i, role))
                windows.append(w)
        layers = self.probes.layers if views and self.probes is not None else ()
        step = max(1, max_windows or len(windows) or 1)
        parts = []
        for first in range(0, max(1, len(windows)), step):
            if first:
                busy_s += time.perf_counter() - start
                yield
                start = time.perf_counter()
            parts.append(self.encoder.encode_views(windows[first:first + step], layers))
        pooled = np.concatenate([p[0] for p in parts])
        layer_states = np.concatenate([p[1] for p in parts])
        probs = self.heads.probs(pooled) if windows else np.zeros((0, len(self._col)))
        per_input: list[dict[int, np.ndarray]] = [{} for _ in inputs]
        for (i, role), row in zip(owners, probs):
            per_input[i].setdefault(role, []).append(row)
        view_probs = self._view_probs(inputs, owners, layer_states, probs) if views else np.zeros((0,))
        elapsed_ms = (busy_s + time.perf_counter() - start) * 1000.0
        share = elapsed_ms / max(1, len(inputs))
        verdicts = [self._verdict(x, {r: np.stack(v) for r, v in rows.items()}, share)
                    for x, rows in zip(inputs, per_input)]
        return verdicts, view_probs

    def _view_probs(self, inputs: Sequence[GuardInput], owners: list[tuple[int, int]], layer_states: np.ndarray,
                    head_probs: np.ndarray) -> np.ndarray:
        tasks = self.probes.tasks
        n_views = len(self.probes.layers) + 1
        per_window = np.zeros((len(owners), n_views, len(tasks)), np.float32)
        if len(owners):
            per_window[:, :-1] = self.probes.probs(layer_states)
            per_window[:, -1] = head_probs[:, [self._col[t] for t in tasks]]
        # A task reads the same windows as the verdict does: the worst window decides, per view.
        reads = {"prompt_harmful": {_PROMPT}, "jailbreak": {_PROMPT}, "injection": {_PROMPT, _CONTEXT},
                 "response_harmful": {_RESPONSE}}
        out = np.full((len(inputs), n_views, len(tasks)), np.nan, np.float32)
        for w, (i, role) in enumerate(owners):
            for t, task in enumerate(tasks):
                if role in reads.get(task, ()):
                    out[i, :, t] = np.fmax(out[i, :, t], per_window[w, :, t])
        for i, x in enumerate(inputs):  # blank text has no windows and scores 0 in the verdict
            for t, task in enumerate(tasks):
                applies = task != "response_harmful" or x.response is not None
                if applies and np.isnan(out[i, 0, t]):
                    out[i, :, t] = 0.0
        return out

    def _verdict(self, x: GuardInput, rows: dict[int, np.ndarray], latency_ms: float) -> Verdict:
        col = self._col
        zeros = np.zeros((1, len(col)), np.float32)
        rows.setdefault(_PROMPT, zeros)
        if x.response is not None:
            rows.setdefault(_RESPONSE, zeros)
        prompt = rows[_PROMPT].max(axis=0)
        injection_rows = [rows[_PROMPT]] + ([rows[_CONTEXT]] if _CONTEXT in rows else [])
        scores: dict[str, float | None] = {
            "prompt_harmful": float(prompt[col["prompt_harmful"]]),
            "response_harmful": None,
            "refusal": None,
            "jailbreak": float(prompt[col["jailbreak"]]),
            "injection": float(np.concatenate(injection_rows)[:, col["injection"]].max()),
        }
        category_rows = [rows[_PROMPT]]
        if _RESPONSE in rows:
            response = rows[_RESPONSE]
            scores["response_harmful"] = float(response[:, col["response_harmful"]].max())
            # A refusal shows at the start of an answer; later windows only add noise.
            scores["refusal"] = float(response[0, col["refusal"]])
            category_rows.append(response)
        cats = np.concatenate(category_rows).max(axis=0)
        thresholds = self._thresholds(x.prompt)
        for cat, floor in self.category_floors.items():
            for task, role in (("prompt_harmful", _PROMPT), ("response_harmful", _RESPONSE)):
                if scores[task] is not None:
                    scores[task] = _lifted(scores[task], float(rows[role][:, col[cat]].max()), floor,
                                           thresholds[task])
        decisions = {t: decide(scores[t], thresholds[t]) for t in TASKS}
        return Verdict(
            **decisions,
            scores={k: v for k, v in scores.items() if v is not None},
            categories={c: float(cats[col[c]]) for c in self.categories},
            tier=self.name,
            latency_ms=latency_ms,
            id=x.id,
            flagged=any(decisions[t] for t in FLAG_TASKS),
        )

    def _thresholds(self, prompt: str) -> dict[str, float]:
        """Each task's threshold for this prompt: its writing system's where it has one (the script read once)."""
        script = script_language(prompt) if self.script_thresholds else None
        return {t: self.script_thresholds.get(t, {}).get(script, self.thresholds[t]) for t in TASKS}

    def _threshold(self, task: str, prompt: str) -> float:
        return self._thresholds(prompt)[task]


def _lifted(score: float, category: float, floor: float, threshold: float) -> float:
    """A harm score lifted by a recall-first category's score: at the floor it is the task's threshold, and it
    rises with the category's score to 1 (a score already higher stays)."""
    if category < floor:
        return score
    return max(score, threshold + (category - floor) / max(1e-6, 1.0 - floor) * (1.0 - threshold))


@register("embedded", "the shipped CPU model (or embedded:/path/to/model-dir from `railguard train`)", settings=True)
def _embedded(argument: str | None = None, *, settings: Settings | None = None, **options) -> EmbeddedGuard:
    return EmbeddedGuard(argument, settings=None if settings is None else settings.core, **options)
