"""``peer:profanity``: alt-profanity-check (PyPI ``alt-profanity-check``, import ``profanity_check``).

``pip install 'railguard[peers-profanity]'`` (it pulls scikit-learn, pinned exactly, and scipy).

What it is: a TF-IDF over English words and a linear SVM, Platt-calibrated (scikit-learn's
``CalibratedClassifierCV``), trained on offensive-language data; ``predict_prob`` gives P(offensive)
per text. Its vectorizer and model ship in its wheel as joblib pickles made with one scikit-learn
release, and each of its releases pins that release exactly (1.9.1 pins ``scikit-learn==1.9.1``): with
another scikit-learn the pickles load with ``InconsistentVersionWarning`` and may not load at all, so
we refuse to build it then and say which version to install.

How its answer maps onto a Verdict, honestly:

- ``prompt_harmful``: P(offensive) of the prompt at 0.5 (what its ``predict`` decides), score = that
  probability. It is a profanity and insult detector standing in for a harm classifier: a polite
  request for bomb instructions is not offensive language, and swearing that harms no one is;
- ``categories``: ``harassment`` = the same probability (offensive language aimed at someone is what it
  learned). Not ``hate``: it cannot tell an attack on a protected group from swearing;
- ``response_harmful``, ``refusal``, ``jailbreak`` and ``injection``: None (not judged); context
  documents are not read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ...errors import ConfigError, require
from ...types import GuardInput, Task, Verdict
from .. import spec
from .texts import checked, score_texts

EXTRA = "peers-profanity"
PACKAGE = "alt-profanity-check"
THRESHOLD = 0.5  # profanity_check.predict's decision for its two calibrated classes


def pinned_sklearn(requirements: Sequence[str]) -> str | None:
    """The exact scikit-learn version a package's requirements pin (``scikit-learn==X``), else None."""
    for requirement in requirements:
        text = requirement.split(";", 1)[0].replace(" ", "")
        name, sep, version = text.partition("==")
        if sep and name.lower().replace("_", "-") == "scikit-learn":
            return version
    return None


@dataclass(frozen=True, slots=True)
class ProfanityOptions:
    batch_size: int = 256

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {self.batch_size}")


class Profanity:
    """alt-profanity-check behind the Guard protocol."""

    name = "peer:profanity"
    tasks = frozenset({Task.PROMPT_HARMFUL.value})

    def __init__(self, options: ProfanityOptions | None = None) -> None:
        from importlib.metadata import PackageNotFoundError, requires, version

        self.options = options or ProfanityOptions()
        require("sklearn", EXTRA)
        try:
            pinned = pinned_sklearn(requires(PACKAGE) or [])
        except PackageNotFoundError:
            pinned = None  # not installed: the import below says how to install it
        installed = version("scikit-learn")
        if pinned is not None and pinned != installed:
            raise ConfigError(
                f"{PACKAGE} {version(PACKAGE)} ships a model pickled with scikit-learn {pinned}, but scikit-learn "
                f"{installed} is installed; install the pair it was made for (pip install scikit-learn=={pinned}) "
                f"or the {PACKAGE} release that pins {installed}")
        self._predict_prob = require("profanity_check", EXTRA).predict_prob
        self.sklearn_version = installed

    def provenance(self) -> dict:
        from importlib.metadata import version

        return {"package": PACKAGE, "package_version": version(PACKAGE), "scikit_learn": self.sklearn_version,
                "threshold": THRESHOLD}

    def _scores(self, texts: list[str]) -> list[float]:
        return list(self._predict_prob(texts))

    def check(self, inputs: Sequence[GuardInput]) -> list[Verdict]:
        items = checked(inputs)
        scored = score_texts(items, self._scores, context=False, batch_size=self.options.batch_size)
        verdicts = []
        for x, s in zip(items, scored):
            harmful = s.prompt >= THRESHOLD
            verdicts.append(Verdict(
                prompt_harmful=harmful,
                scores={Task.PROMPT_HARMFUL.value: s.prompt},
                categories={"harassment": s.prompt},
                tier=self.name,
                latency_ms=s.latency_ms,
                id=x.id,
                flagged=harmful,
            ))
        return verdicts


def build(**options) -> Profanity:
    return Profanity(spec.options(ProfanityOptions, options, kind="peer:profanity"))
