"""The keys of the held-out split and of duplicate detection: training holds these texts out, evaluation
reads the same ones (the benign held-out benchmark), both by the same hash."""

from __future__ import annotations

import hashlib
import re

#: The held-out split of the training pool (used for calibration, thresholds and the benign FPR checks).
HELDOUT_FRACTION = 0.12
DEFAULT_SEED = 13


_NON_ALNUM = re.compile(r"[\W_]+", re.UNICODE)


def norm_key(text: str) -> str:
    """Case- and punctuation-insensitive key for duplicate detection."""
    return _NON_ALNUM.sub(" ", text.lower()).strip()


def holdout_of(key: str, fraction: float, seed: int) -> bool:
    h = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(h[:4], "big") / 2**32 < fraction
