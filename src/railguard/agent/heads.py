"""The agent heads: action risk (SAFE / LOW / HIGH) and trajectory safety over the embedded encoder's vectors.

An action is read as two texts (its target alone, and a structured line: verb, element, page, site, URL
path, tool and arguments, task; see :func:`railguard.agent.actions.render_action`) plus a few cheap structured
features: which kinds of verbs the target uses, what the URL path is about, the element's tag, and for tool
calls what the arguments do (destroy, move money, send, read; a read-only command, code fetched and run,
secrets, everything at once). Verbs and
paths carry across websites where site-specific wording does not (the training data covers 24 websites).
A trajectory is read window by window, the vectors mean- and max-pooled.

Artifacts (``action.npz`` for web actions, ``tool_action.npz`` for tool calls, ``trajectory.npz``,
``manifest.json`` with sha256) live in ``models/agent``;
the manifest names the encoder they were fitted on, checked at load.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

from ..errors import ModelError
from ..models.encoder import TextEncoder
from .actions import ACTION_KINDS, RISK_LEVELS, Action, render_action

AGENT_DIR = Path(__file__).parent.parent / "models" / "agent"
ACTION_FILE, TRAJECTORY_FILE = "action.npz", "trajectory.npz"
#: The head for ``tool_call`` actions (fitted on tool-use sets); without it, tool calls are read by the web head.
TOOL_ACTION_FILE = "tool_action.npz"
#: Bumped whenever the features below change; a model fitted on other features is refused at load.
FEATURES_VERSION = 2
#: The windows of a trajectory that are read: its latest ones (what the agent did last decides).
MAX_TRAJECTORY_WINDOWS = 16

# Verb groups of an element's text (English first; a few common Spanish/French/German forms).
VERB_GROUPS: dict[str, str] = {
    "money": r"\b(buy|purchase|pay|payment|checkout|check out|place (?:your |my )?order|order now|complete order|"
             r"subscribe|donate|book now|book|reserve|rent|bid|upgrade|trial|transfer|withdraw|sell|pagar|comprar|"
             r"acheter|kaufen)\b",
    "destroy": r"\b(delete|remove|erase|cancel|close (?:my )?account|deactivate|terminate|unsubscribe|revoke|reset|"
               r"disable|empty trash|wipe|drop|eliminar|supprimer|löschen)\b",
    "commit": r"\b(submit|send|post|publish|share|confirm|agree|accept|apply|register|sign ?up|create (?:my |an |your )?"
              r"account|join|invite|report|upload|continue|enviar|aceptar|registr\w*)\b",
    "auth": r"\b(log ?in|sign ?in|log ?out|sign ?out|password|verify|iniciar)\b",
    "soft": r"\b(add|save|follow|like|favou?rite|wishlist|wish list|bookmark|vote|helpful|remind|watch|track|rate|"
            r"agregar|guardar|seguir)\b",
    "prefs": r"\b(cookies?|dark|mode|notifications?|preferences?|settings?|language|currency|units?)\b",
    "nav": r"\b(view|see|show|more|read|learn|search|filter|sort|next|previous|back|menu|home|help|details|expand|open|"
           r"close|explore|browse|go to|page|tab|map|photos?|reviews?)\b",
}
URL_GROUPS: dict[str, str] = {
    "url_money": r"(checkout|payment|billing|cart|basket|order|purchase|pay\b|subscribe|pricing|donat)",
    "url_account": r"(account|settings|profile|admin|manage|security|password|preferences)",
    "url_signup": r"(signup|sign-up|register|join|login|signin|auth|apply|application|form)",
}
TAG_WORDS: tuple[str, ...] = ("a", "button", "submit", "checkbox", "radio", "input", "div", "select", "option", "link",
                              "menuitem", "email", "text")
TOOL_GROUPS: dict[str, str] = {
    "tool_destroy": r"(rm\s+-\w*[rf]|drop\s+(table|database)|delete|truncate|format|mkfs|shutdown|kill)",
    "tool_money": r"(transfer|payment|pay_|_pay|withdraw|purchase|order|trade)",
    "tool_send": r"(send|email|post|publish|share|message|tweet|upload)",
    "tool_read": r"(read|get|search|list|find|query|fetch|view|ls\b|cat\b)",
    # A command that only looks (lists, prints, counts, reports, selects), where a command starts: a JSON
    # string's start, a short one-line argument's start, a new line, a shell separator; so the English words
    # among them in a description do not count.
    "tool_inspect": r"""(:\s*"|^(?=[^\n]{0,120}$)|\n|&&|;|\|)\s*(sudo\s+)?(ls|cat|head|tail|less|wc|grep|rg|find|df|du|free|uptime|ps|"""
                    r"""top|pwd|whoami|uname|which|tree|lsblk|stat|ping|dig|nslookup|date|env|"""
                    r"""git\s+(status|log|diff|show|branch|blame|remote)|(pip3?|npm)\s+(list|show|ls|freeze)|"""
                    r"""select|show|describe|explain|(docker|kubectl)\s+(ps|get|logs|describe|images))\b""",
    # Code fetched from the network and run at once.
    "tool_remote_exec": r"(\b(curl|wget)\b[^\n]*\|\s*(sudo\s+)?(ba|z)?sh\b|\b(ba)?sh\s+<\(|exec\([^\n]*urlopen)",
    # Secrets: keys, credentials, passwords, card numbers.
    "tool_secret": r"(id_rsa|\.ssh/|\.aws/|\.gnupg|credential|passw(or)?d|/etc/shadow|api[_ -]?key|secret|"
                   r"\btokens?\b|\.env\b|card number|\bcvv\b|\biban\b)",
    # Everything at once, for good: all items, recursive, forced, permanent, no confirmation.
    "tool_bulk": r"""("all"\s*:\s*(true|"all")|"\*"|--recursive|\bpermanent|--force|\s-f\b|-auto-approve|--quiet|"""
                 r"""--no-preserve-root|\s-y\b|--delete\b)""",
}
_VERB_RE = {k: re.compile(v, re.I) for k, v in VERB_GROUPS.items()}
_URL_RE = {k: re.compile(v, re.I) for k, v in URL_GROUPS.items()}
_TOOL_RE = {k: re.compile(v, re.I) for k, v in TOOL_GROUPS.items()}
_TAG_RE = {t: re.compile(rf"\b{t}\b", re.I) for t in TAG_WORDS}


def feature_names() -> list[str]:
    return ([f"target_{k}" for k in VERB_GROUPS] + [f"page_{k}" for k in VERB_GROUPS] + list(URL_GROUPS)
            + [f"tag_{t}" for t in TAG_WORDS] + [f"kind_{k}" for k in ACTION_KINDS] + list(TOOL_GROUPS)
            + ["short_target"])


def structured_features(a: Action) -> np.ndarray:
    """The cheap features of one action, each 0 or 1 (see :func:`feature_names`)."""
    target = a.target or ""
    page = f"{a.page_title or ''} {a.task or ''}"
    url = ""
    if a.url:
        try:
            parts = urlsplit(a.url if "//" in a.url else "//" + a.url)
            url = f"{parts.path}?{parts.query}"
        except ValueError:
            url = a.url
    tool = f"{a.tool or ''} {a.arguments or ''}"
    f = [bool(r.search(target)) for r in _VERB_RE.values()]
    f += [bool(r.search(page)) for r in _VERB_RE.values()]
    f += [bool(r.search(url)) for r in _URL_RE.values()]
    f += [bool(r.search(a.element_tag or "")) for r in _TAG_RE.values()]
    f += [a.kind == k for k in ACTION_KINDS]
    f += [bool(a.tool) and bool(r.search(tool)) for r in _TOOL_RE.values()]
    f += [0 < len(target.split()) <= 3]
    return np.asarray(f, np.float32)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-6)


def action_features(encoder: TextEncoder, actions: Sequence[Action]) -> np.ndarray:
    """(n, 2 * dim + features): the target's vector, the structured line's vector, the cheap features."""
    if not actions:
        return np.zeros((0, 2 * encoder.dim + len(feature_names())), np.float32)
    windows = []
    for a in actions:
        target, line = render_action(a)
        windows += [encoder.windows(target)[0], encoder.windows(line)[0]]
    vectors = _unit(encoder.encode(windows)).reshape(len(actions), 2 * encoder.dim)
    return np.hstack([vectors, np.stack([structured_features(a) for a in actions])]).astype(np.float32)


def trajectory_features(encoder: TextEncoder, texts: Sequence[str]) -> np.ndarray:
    """(n, 2 * dim): mean and max of the unit vectors of each text's latest windows."""
    owners, windows = [], []
    for i, text in enumerate(texts):
        ws = encoder.windows(text)[-MAX_TRAJECTORY_WINDOWS:]
        owners += [i] * len(ws)
        windows += ws
    vectors = _unit(encoder.encode(windows)) if windows else np.zeros((0, encoder.dim), np.float32)
    owners_a = np.asarray(owners)
    out = np.zeros((len(texts), 2 * encoder.dim), np.float32)
    for i in range(len(texts)):
        v = vectors[owners_a == i]
        out[i] = np.concatenate([v.mean(axis=0), v.max(axis=0)])
    return out


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


@dataclass(frozen=True)
class ActionHead:
    """``probs = softmax((x @ W.T + b) @ A.T + c)`` over RISK_LEVELS; HIGH when P(HIGH) >= ``high_threshold``,
    otherwise LOW when P(LOW) + ``low_margin`` >= P(SAFE), else SAFE (both tuned on held-out websites)."""

    weight: np.ndarray  # (3, d)
    bias: np.ndarray  # (3,)
    calib_matrix: np.ndarray  # (3, 3)
    calib_bias: np.ndarray  # (3,)
    high_threshold: float
    low_margin: float = 0.0

    def probs(self, x: np.ndarray) -> np.ndarray:
        return softmax((x @ self.weight.T + self.bias) @ self.calib_matrix.T + self.calib_bias)

    def levels(self, probs: np.ndarray) -> list[str]:
        out = []
        for p in probs:
            if p[2] >= self.high_threshold:
                out.append("HIGH")
            else:
                out.append("LOW" if p[1] + self.low_margin >= p[0] else "SAFE")
        return out

    def save(self, path: Path) -> None:
        np.savez(path, weight=self.weight.astype(np.float32), bias=self.bias.astype(np.float32),
                 calib_matrix=self.calib_matrix.astype(np.float32), calib_bias=self.calib_bias.astype(np.float32),
                 high_threshold=np.float32(self.high_threshold), low_margin=np.float32(self.low_margin))

    @classmethod
    def load(cls, path: Path) -> ActionHead:
        z = _read(path, ("weight", "bias", "calib_matrix", "calib_bias", "high_threshold", "low_margin"))
        return cls(z["weight"], z["bias"], z["calib_matrix"], z["calib_bias"], float(z["high_threshold"]),
                   float(z["low_margin"]))


@dataclass(frozen=True)
class TrajectoryHead:
    """``p = sigmoid(a * (x @ w + b) + c)``; unsafe when p >= ``threshold``."""

    weight: np.ndarray  # (d,)
    bias: float
    calib_scale: float
    calib_shift: float
    threshold: float

    def probs(self, x: np.ndarray) -> np.ndarray:
        z = self.calib_scale * (x @ self.weight + self.bias) + self.calib_shift
        return 1.0 / (1.0 + np.exp(-np.clip(z, -40, 40)))

    def save(self, path: Path) -> None:
        np.savez(path, weight=self.weight.astype(np.float32),
                 scalars=np.array([self.bias, self.calib_scale, self.calib_shift, self.threshold], np.float32))

    @classmethod
    def load(cls, path: Path) -> TrajectoryHead:
        z = _read(path, ("weight", "scalars"))
        b, a, c, t = (float(v) for v in z["scalars"])
        return cls(z["weight"], b, a, c, t)


def _read(path: Path, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in keys}
    except (OSError, KeyError, ValueError) as exc:
        raise ModelError(f"cannot read agent head {path}: {exc}") from None


__all__ = ["AGENT_DIR", "ACTION_FILE", "TOOL_ACTION_FILE", "TRAJECTORY_FILE", "ActionHead", "TrajectoryHead", "action_features", "trajectory_features", "RISK_LEVELS",
           "structured_features", "feature_names", "FEATURES_VERSION"]
