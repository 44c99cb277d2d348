"""``peer:svguardian``: SecureVector Guardian (PyPI ``securevector-guardian-model``, import ``svguardian``).

What it is: a word + character n-gram TF-IDF and logistic regression over eight classes (benign,
prompt_injection, jailbreak, data_exfiltration, pii, social_engineering, harmful_content,
model_attack), run in pure Python from a weights file inside its wheel. Long texts are scanned in
windows and base64/hex blobs are decoded and rescanned (its ``window.predict_windowed``). It needs no
torch and, with the bundled weights, no network: we ask for the weights with ``download=False`` and
fail with a clear message rather than let it fetch them.

How its answer maps onto a Verdict, honestly:

- it answers one question per text, "is this a threat?" (``verdict == "malicious"``, i.e. the
  probability mass outside ``benign`` is at least its calibrated threshold), plus the top threat class;
- ``prompt_harmful``: that answer for the prompt, score = its malicious probability. Its threat
  classes include injection and jailbreak attempts, which our taxonomy does not call harmful, so on
  prompt-harm benchmarks it is a threat detector standing in for a harm classifier;
- ``injection``: the same answer over the prompt and every context document (any threat), score =
  the highest malicious probability;
- ``jailbreak``: True only when the top threat class of the prompt is ``jailbreak`` (no score: the
  model does not give a per-class probability after windowing);
- ``response_harmful`` and ``refusal``: None. The peer does not judge responses or refusals.
- ``categories`` stays empty: its classes are attack types, not harm categories.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from ...errors import ConfigError, require
from ...models.artifacts import sha256_file
from ...types import GuardInput, Task, Verdict
from ...verdicts import check_inputs

EXTRA = "peers"
PACKAGE = "securevector-guardian-model"
JAILBREAK_CLASS = "jailbreak"


class SVGuardian:
    """SecureVector Guardian behind the Guard protocol."""

    name = "peer:svguardian"
    tasks = frozenset({Task.PROMPT_HARMFUL.value, Task.INJECTION.value, Task.JAILBREAK.value})

    def __init__(self) -> None:
        svguardian = require("svguardian", EXTRA)
        pure = require("svguardian.model.pure_infer", EXTRA)
        window = require("svguardian.window", EXTRA)
        path = svguardian.resolve_runtime(download=False)
        if not path or not Path(path).is_file():
            raise ConfigError(
                "SecureVector Guardian has no bundled weights here and railguard will not let it download "
                "them; reinstall the wheel (pip install --force-reinstall securevector-guardian-model) or set "
                "SV_GUARDIAN_RUNTIME to a local guardian.runtime.json.gz"
            )
        try:
            self._model = pure.PureGuardian.load(path)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot load SecureVector Guardian weights from {path}: {exc}") from None
        self._predict = window.predict_windowed
        self.runtime_path = Path(path)

    def provenance(self) -> dict:
        from importlib.metadata import version

        return {"package": PACKAGE, "package_version": version(PACKAGE),
                "weights_file": self.runtime_path.name,
                "weights_sha256": sha256_file(self.runtime_path),
                "threshold": self._model.threshold}

    def _judge(self, text: str) -> tuple[bool, float, str | None]:
        out = self._predict(self._model, text)
        threat = out["verdict"] == "malicious"
        return threat, float(out["malicious_score"]), out.get("category") if threat else None

    def check(self, inputs: Sequence[GuardInput]) -> list[Verdict]:
        verdicts = []
        for x in check_inputs(inputs):
            start = time.perf_counter()
            prompt_threat, prompt_score, category = self._judge(x.prompt) if x.prompt.strip() else (False, 0.0, None)
            injection, injection_score = prompt_threat, prompt_score
            for doc in x.context:
                if doc.strip():
                    threat, doc_score, _ = self._judge(doc)
                    injection = injection or threat
                    injection_score = max(injection_score, doc_score)
            jailbreak = category == JAILBREAK_CLASS
            verdicts.append(Verdict(
                prompt_harmful=prompt_threat,
                injection=injection,
                jailbreak=jailbreak,
                scores={Task.PROMPT_HARMFUL.value: prompt_score, Task.INJECTION.value: injection_score},
                tier=self.name,
                latency_ms=(time.perf_counter() - start) * 1000.0,
                id=x.id,
                flagged=prompt_threat or injection,
            ))
        return verdicts


def build(**options) -> SVGuardian:
    if options:
        raise ConfigError(f"peer:svguardian takes no options, got {', '.join(sorted(options))}")
    return SVGuardian()
