"""``railguard train --task action_risk|trajectory``: the agent heads over the shipped encoder's vectors.

The rows come from :mod:`.agent_data`: WebGuard's train split (650 clicks on 24 websites, graded by hand) plus
the second pool of agent sets (ToolEmu cases, Agent-SafetyBench, ST-WebAgentBench, ASB, RedCode, AgentDojo,
SafeAgentBench, RiOSWorld, ToolSword), each weighted by how far its labels can be trusted, capped, and with a
group-held-out part (unseen tools, tasks, scenarios) that is never trained on; plus a small written lexicon
of common web and tool actions (:data:`LEXICON`, weighted low). The tool head also reads written everyday tool
calls (:mod:`.everyday_tools`: SAFE and LOW calls beside HIGH neighbours, as JSON arguments), which hold a
fixed share of every level's weight (:data:`EVEN_SHARE_SOURCES`). Within a source every group (a website, a
toolkit) counts about the same (square-root balance); over all rows every risk level the same. Calibration and
the HIGH threshold are chosen on out-of-fold predictions of a 6-fold cross-validation grouped by source and
group, so what is tuned is how the model does on websites and tools it has not seen; no test split is read.

Trajectory safety learns from the train splits of ``rjudge`` and ``assebench_security`` and from the graded
ToolEmu and OpenAgentSafety trajectories, PrivacyLens and Agent-SafetyBench; the held-out groups (whole
instructions, cases, tasks) calibrate it and choose the threshold.
"""

from __future__ import annotations

import logging
import random
import re
from collections import Counter
from pathlib import Path

import numpy as np

from .. import __version__
from ..agent.actions import RISK_LEVELS, Action, render_trajectory
from ..datasets.agent import trajectory_input
from ..config import CoreSettings
from ..errors import ConfigError, require
from ..agent.heads import (ACTION_FILE, FEATURES_VERSION, TOOL_ACTION_FILE, TRAJECTORY_FILE, ActionHead,
                                  TrajectoryHead, action_features, softmax, trajectory_features)
from ..models.artifacts import EMBEDDED_DIR, MANIFEST, encoder_sha256, read_manifest, verify, write_manifest
from ..models.encoder import TextEncoder
from ..progress import progress_bar
from .agent_data import (ACTION_SOURCES, NON_COMMERCIAL, TRAJECTORY_SOURCES, ActionRow, TrajectoryRow, action_rows,
                         heldout_groups, present, trajectory_rows)
from ..eval.metrics import action_metrics
from ..datasets.readers import data_hashes
from .data import DEFAULT_SEED
from .embed_cache import EmbeddingCache
from .everyday_tools import LICENSE as EVERYDAY_LICENSE
from .everyday_tools import RELIABILITY as EVERYDAY_RELIABILITY
from .everyday_tools import SHARE as EVERYDAY_SHARE
from .everyday_tools import SOURCE as EVERYDAY_SOURCE
from .everyday_tools import everyday_rows
from .heads import best_f1_threshold, binary_metrics, logistic, platt

log = logging.getLogger(__name__)

FOLDS = 6
#: Out-of-fold HIGH recall the threshold must reach (the WebGuard paper's fine-tuned 7B model: 0.76).
MIN_HIGH_RECALL = 0.80
LEXICON_WEIGHT = 0.3
WEBSITE_BALANCE = 0.5  # row weight ∝ (1 / rows of its website) ** this

# Common actions by the risk WebGuard's rubric gives them: SAFE has no lasting effect (reading, moving
# around, display choices), LOW a small reversible change to the user's own state, HIGH what is hard to
# undo or reaches money, accounts, other people or the public.
LEXICON: dict[str, tuple[str, ...]] = {
    "SAFE": ("View details", "See all", "Show more", "Read more", "Learn more", "Next", "Previous", "Back", "Close",
             "Menu", "Home", "Help", "Search", "Filter", "Sort by price", "Expand", "Collapse", "Photos", "Reviews",
             "Map", "English", "Español", "Français", "Deutsch", "Italiano", "Português", "US Dollar USD", "Euro EUR",
             "British Pound GBP", "Japanese Yen JPY", "Facebook", "Twitter", "LinkedIn", "Instagram", "About us",
             "Contact", "FAQ", "Careers", "Blog", "Privacy policy", "Terms of use", "Page 2", "Load more", "Explore",
             "Browse categories", "Open menu", "See reviews", "Zoom in", "Next slide", "Cancel", "Dismiss", "Skip",
             "Table of contents", "Compare", "Directions", "Size guide", "Shipping info", "Back to results"),
    "LOW": ("Add to cart", "Add to bag", "Add to basket", "Save", "Save for later", "Add to wishlist", "Follow", "Like",
            "Favorite", "Bookmark", "Vote", "Helpful", "Log in", "Sign in", "Log out", "Accept all cookies",
            "Reject all", "Dark mode", "Enable notifications", "Remind me", "Watch", "Add to list", "Add to watchlist",
            "Update quantity", "Apply coupon", "Save preferences", "Remember me", "Rate 5 stars", "Add to favorites",
            "Select size M", "Add to my trip", "Save search", "Track this item", "Add to collection", "Mark as read",
            "Upvote", "Edit profile", "Update settings"),
    "HIGH": ("Place order", "Buy now", "Purchase", "Pay now", "Complete purchase", "Confirm payment", "Checkout",
             "Proceed to payment", "Subscribe", "Start free trial", "Upgrade plan", "Donate", "Book now", "Reserve",
             "Confirm booking", "Submit", "Submit application", "Send", "Send message", "Post", "Publish", "Share",
             "Post review", "Delete", "Delete account", "Remove", "Cancel subscription", "Close account", "Deactivate",
             "Unsubscribe", "Change password", "Sign up", "Create account", "Register", "Join now", "I agree",
             "Agree and continue", "Accept terms", "Apply now", "Transfer funds", "Send money", "Upload",
             "Invite members", "Confirm", "Sign up for newsletter", "Request quote", "Delete all", "Empty trash",
             "Remove member", "Revoke access", "Make public", "Withdraw", "Sell", "Comprar", "Eliminar cuenta"),
}
LEXICON_TOOLS: dict[str, tuple[tuple[str, str], ...]] = {
    "SAFE": (("search", '{"query": "weather in Paris"}'), ("read_file", '{"path": "notes.txt"}'),
             ("shell", '{"cmd": "ls -la"}'), ("get_calendar", '{"day": "today"}'), ("web_search", '{"q": "python"}')),
    "LOW": (("write_file", '{"path": "draft.md"}'), ("create_event", '{"title": "lunch"}'),
            ("shell", '{"cmd": "mkdir build"}'), ("add_to_cart", '{"item": "book"}')),
    "HIGH": (("send_email", '{"to": "all@company.com"}'), ("transfer_money", '{"amount": 500}'),
             ("shell", '{"cmd": "rm -rf /home/user"}'), ("delete_repository", '{"name": "prod"}'),
             ("post_tweet", '{"text": "..."}'), ("sql", '{"query": "DROP TABLE users"}')),
}
_TAGS = {"SAFE": ("a", "a", "button", 'button type="button"', 'div role="button"'),
         "ACT": ("button", 'button type="button"', 'button type="submit"', 'input type="submit"', "a")}
_PATHS = {"SAFE": ("/", "/search", "/en/", "/browse/category", "/article/2024/story", "/product/123", "/help"),
          "LOW": ("/product/123", "/settings", "/cart", "/", "/user/profile", "/preferences", "/login"),
          "HIGH": ("/checkout", "/account/settings", "/signup", "/register", "/billing/payment", "/compose", "/apply")}
_SITES = ("www.shop.example.com", "www.travel.example.co.uk", "news.example.org", "app.example.io", "forum.example.net")
_TITLES = ("Home", "Checkout", "Account settings", "Search results", "Product", "Sign up", "Inbox", "Profile", "Cart")


def lexicon_actions(seed: int, per_level: int = 250) -> list[tuple[Action, str]]:
    """Written examples: each lexicon phrase on varied elements, sites and pages, plus tool calls."""
    rnd = random.Random(seed)
    out: list[tuple[Action, str]] = []
    for level, phrases in LEXICON.items():
        for _ in range(per_level):
            path = rnd.choice(_PATHS[level] + _PATHS["SAFE"][:2])
            out.append((Action("click", target=rnd.choice(phrases),
                               element_tag=rnd.choice(_TAGS["SAFE" if level == "SAFE" else "ACT"]),
                               url=f"https://{rnd.choice(_SITES)}{path}", page_title=rnd.choice(_TITLES)), level))
        for tool, args in LEXICON_TOOLS[level]:
            out.append((Action("tool_call", tool=tool, arguments=args), level))
    return out


class CachedEncoder:
    """The encoder with its vectors kept in the training cache (``RAILGUARD_EMBED_CACHE``): what the agent
    features read of an encoder (``dim``, ``windows``, ``encode``), the vectors the encoder's own."""

    def __init__(self, encoder: TextEncoder, cache: EmbeddingCache) -> None:
        self.encoder, self.cache, self.dim = encoder, cache, encoder.dim

    def windows(self, text: str):
        return self.encoder.windows(text)

    def encode(self, windows) -> np.ndarray:
        return self.cache.encode(self.encoder, list(windows))


def _encoder(threads: int | None = None, settings: CoreSettings | None = None) -> TextEncoder | CachedEncoder:
    encoder = TextEncoder.from_spec(EMBEDDED_DIR, read_manifest(EMBEDDED_DIR)["encoder"],
                                    threads=threads or (settings or CoreSettings.from_env()).threads)
    cache = EmbeddingCache.for_encoder(encoder)  # only with RAILGUARD_EMBED_CACHE set
    return CachedEncoder(encoder, cache) if cache else encoder


def _in_batches(fn, items: list, label: str, progress: bool, step: int = 64) -> np.ndarray:
    parts = []
    with progress_bar(label, total=len(items), enabled=progress) as bar:
        for s in range(0, len(items), step):
            parts.append(fn(items[s : s + step]))
            bar.advance(len(items[s : s + step]))
    return np.vstack(parts)


#: Sources that hold a set share of every level's weight: the written calls are all in one style (JSON
#: arguments) unlike the pool's descriptions, so a level they weighed more in would be learnt from the style;
#: and a modest share, so that they complement the pool rather than outweigh it.
EVEN_SHARE_SOURCES: dict[str, float] = {EVERYDAY_SOURCE: EVERYDAY_SHARE}


def source_weights(labels: np.ndarray, sources: np.ndarray, groups: np.ndarray, reliability: np.ndarray
                   ) -> np.ndarray:
    """Row weights: within a source each group weighs ~sqrt(its size) and the source as a whole its row count
    times its label reliability; then every label gets the same total weight. A source of
    :data:`EVEN_SHARE_SOURCES` then holds its share of every label's weight."""
    counts = Counter(groups)
    w = np.array([(1.0 / counts[g]) ** WEBSITE_BALANCE for g in groups])
    for name in set(sources):
        sel = sources == name
        w[sel] *= reliability[sel] * sel.sum() / w[sel].sum()
    for k in set(labels.tolist()):
        sel = labels == k
        w[sel] /= w[sel].sum()
    for name, share in EVEN_SHARE_SOURCES.items():
        for k in set(labels.tolist()):
            own, rest = (sources == name) & (labels == k), (sources != name) & (labels == k)
            if own.any() and rest.any():  # own : rest = share : (1 - share), the label's total still 1
                w[own] *= share / w[own].sum()
                w[rest] *= (1.0 - share) / w[rest].sum()
    return w / w.mean()


def _fit_action(x: np.ndarray, y: np.ndarray, w: np.ndarray, seed: int):
    return logistic(x, y, w, seed=seed, max_iter=5000)


def _choose_decision(probs: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    """The P(HIGH) threshold and the LOW margin with the best weighted macro-F1 among those keeping HIGH
    recall >= MIN_HIGH_RECALL on the out-of-fold predictions."""
    best, best_f1 = (0.10, 0.0), -1.0
    for t in np.round(np.arange(0.10, 0.81, 0.02), 2):
        for margin in (0.0, 0.05, 0.10, 0.15):
            head = ActionHead(np.zeros((3, 1)), np.zeros(3), np.eye(3), np.zeros(3), float(t), margin)
            pred = np.array([RISK_LEVELS.index(level) for level in head.levels(probs)])
            m = action_metrics(y, pred, w)
            if m["high_recall"] >= MIN_HIGH_RECALL and m["macro_f1"] > best_f1 + 1e-9:
                best, best_f1 = (float(t), margin), m["macro_f1"]
    if best_f1 < 0:
        log.warning("no HIGH threshold reaches out-of-fold HIGH recall %.2f; using 0.10", MIN_HIGH_RECALL)
    return best


def _columns(rows: list[ActionRow] | list[TrajectoryRow], label: str) -> tuple[np.ndarray, ...]:
    return (np.array([getattr(r, label) for r in rows]), np.array([r.source for r in rows]),
            np.array([r.group for r in rows]), np.array([r.weight for r in rows], float))


def per_source(sources: np.ndarray, score) -> dict[str, dict]:
    """``score(selection)`` for each source's rows."""
    return {name: score(sources == name) for name in sorted(set(sources.tolist()))}


#: The web head learns from WebGuard alone: adding ST-WebAgentBench's templated policy violations lowered its
#: out-of-fold figures on WebGuard's websites (accuracy 0.722 -> 0.711, HIGH recall 0.870 -> 0.707), so that
#: source is only scored against it.
WEB_SOURCES: tuple[str, ...] = ("webguard",)


def _fit_risk_head(train: list[ActionRow], held: list[ActionRow], lexicon: list[tuple[Action, str]], encoder,
                   seed: int, progress: bool, label: str) -> tuple[ActionHead, dict]:
    """One action-risk head: fitted on ``train`` and the lexicon, calibrated and thresholded out of fold
    (folds grouped by source and group); scored on ``held``."""
    model_selection = require("sklearn.model_selection", "train")
    y, src, groups, rel = _columns(train, "level")
    x = _in_batches(lambda part: action_features(encoder, [r.action for r in part]), train,
                    f"encoding {label} actions", progress)
    x_lex = _in_batches(lambda part: action_features(encoder, part), [a for a, _ in lexicon],
                        f"encoding {label} lexicon", progress)
    y_lex = np.array([RISK_LEVELS.index(level) for _, level in lexicon])
    w = source_weights(y, src, groups, rel)
    w_lex = np.full(len(y_lex), LEXICON_WEIGHT)

    oof_logits = np.zeros((len(y), len(RISK_LEVELS)))
    folds = model_selection.GroupKFold(n_splits=min(FOLDS, len(set(groups))))
    for fit_idx, held_idx in folds.split(x, y, groups):
        clf = _fit_action(np.vstack([x[fit_idx], x_lex]), np.concatenate([y[fit_idx], y_lex]),
                          np.concatenate([source_weights(y[fit_idx], src[fit_idx], groups[fit_idx], rel[fit_idx]),
                                          w_lex]), seed)
        oof_logits[held_idx] = clf.decision_function(x[held_idx])
    calib = platt(oof_logits, y, w, seed=seed, max_iter=2000)
    oof_probs = softmax(oof_logits @ calib.coef_.T + calib.intercept_)
    threshold, margin = _choose_decision(oof_probs, y, w)

    final = _fit_action(np.vstack([x, x_lex]), np.concatenate([y, y_lex]), np.concatenate([w, w_lex]), seed)
    head = ActionHead(final.coef_.astype(np.float32), final.intercept_.astype(np.float32),
                      calib.coef_.astype(np.float32), calib.intercept_.astype(np.float32), threshold, margin)
    oof_pred = np.array([RISK_LEVELS.index(level) for level in head.levels(oof_probs)])
    heldout = {}
    if held:
        y_h, src_h, _, _ = _columns(held, "level")
        x_h = _in_batches(lambda part: action_features(encoder, [r.action for r in part]), held,
                          f"encoding held-out {label} actions", progress)
        pred_h = np.array([RISK_LEVELS.index(level) for level in head.levels(head.probs(x_h))])
        heldout = per_source(src_h, lambda sel: action_metrics(y_h[sel], pred_h[sel]))
    meta = {"levels": list(RISK_LEVELS), "high_threshold": threshold, "low_margin": margin, "train_rows": len(train),
            "rows_per_source": dict(Counter(src.tolist())), "groups": len(set(groups)),
            "lexicon_rows": len(lexicon), "lexicon_weight": LEXICON_WEIGHT, "min_high_recall": MIN_HIGH_RECALL,
            "seed": seed,
            "heldout": "out-of-fold, 6-fold cross-validation grouped by source and website/toolkit/task, over the "
                       "train rows; heldout_groups: the saved head on rows it never saw (held-out groups)",
            "heldout_metrics": action_metrics(y, oof_pred),
            "heldout_metrics_balanced": action_metrics(y, oof_pred, w),
            "heldout_per_source": per_source(src, lambda sel: action_metrics(y[sel], oof_pred[sel])),
            "heldout_groups": heldout}
    return head, meta


def train_action_risk(data_dir: Path, out_dir: Path, *, seed: int = DEFAULT_SEED, progress: bool = True,
                      sources: tuple[str, ...] | None = None, settings: CoreSettings | None = None) -> dict:
    """Fit, calibrate and save the two action-risk heads, returning the updated manifest: the web head
    (``action.npz``: clicks, typing, submits, navigation; from :data:`WEB_SOURCES`) and the tool head
    (``tool_action.npz``: ``tool_call`` actions; from every tool source). Each reports out-of-fold figures
    per source and the saved head's figures on the held-out groups. ``settings``: the encoder's threads."""
    names = sources or present(data_dir, (n for n in ACTION_SOURCES if n not in NON_COMMERCIAL))
    rows = action_rows(data_dir, names)
    is_tool = [r.action.kind == "tool_call" for r in rows]
    web = [r for r, t in zip(rows, is_tool) if not t]
    tool = [r for r, t in zip(rows, is_tool) if t]
    web_train = [r for r in web if r.split == "train" and r.source in WEB_SOURCES]
    if len(web_train) < 30:
        raise ConfigError(f"too few labelled web action rows in {data_dir} ({', '.join(WEB_SOURCES)}): "
                          f"{len(web_train)}")
    encoder = _encoder(settings=settings)
    lexicon = lexicon_actions(seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    head, meta = _fit_risk_head(web_train, [r for r in web if r.source not in WEB_SOURCES or r.split == "heldout"],
                                lexicon, encoder, seed, progress, "web")
    head.save(out / ACTION_FILE)
    manifest = _update_manifest(out, "action", {**meta, "data": data_hashes(data_dir, WEB_SOURCES),
                                                "sources": source_licenses(data_dir, list(WEB_SOURCES))})
    if tool:  # the written everyday calls complement the pool's tool sets; they are no tool head on their own
        tool += everyday_rows(seed)
    tool_train = [r for r in tool if r.split == "train"]
    if len(tool_train) < 30 or len({r.level for r in tool_train}) < 2:
        log.warning("too few labelled tool-call rows (%d) for a tool head; tool calls use the web head", len(tool_train))
        return manifest
    head, meta = _fit_risk_head(tool_train, [r for r in tool if r.split == "heldout"],
                                [(a, lv) for a, lv in lexicon if a.kind == "tool_call"], encoder, seed, progress, "tool")
    head.save(out / TOOL_ACTION_FILE)
    tool_names = sorted({r.source for r in tool_train})
    pool = [n for n in tool_names if n != EVERYDAY_SOURCE]
    meta.update(reliability={n: ACTION_SOURCES[n].reliability if n in ACTION_SOURCES else EVERYDAY_RELIABILITY
                             for n in tool_names},
                data=data_hashes(data_dir, pool), sources=source_licenses(data_dir, tool_names))
    return _update_manifest(out, "tool_action", meta)


def source_licenses(data_dir: Path, names: list[str]) -> dict[str, dict]:
    """Every source a head read, with its license as its SOURCE.md states it (the written calls are ours)."""
    out = {}
    for name in names:
        if name == EVERYDAY_SOURCE:
            out[name] = {"license": EVERYDAY_LICENSE, "non_commercial": False}
            continue
        card = Path(data_dir) / name / "SOURCE.md"
        text = card.read_text(encoding="utf-8") if card.is_file() else ""
        m = re.search(r"^-?\s*license[^:\n]*:\s*(.+)$", text, re.M | re.I)
        stated = m.group(1).strip() if m else "not stated"
        out[name] = {"license": stated, "non_commercial": name in NON_COMMERCIAL
                     or bool(re.search(r"\bNC\b|NonCommercial|non-commercial", stated, re.I))}
    return out


def trajectory_text(row: dict) -> str:
    turns, profile = trajectory_input(row)
    return render_trajectory(turns, profile)


def train_trajectory(data_dir: Path, out_dir: Path, *, seed: int = DEFAULT_SEED, progress: bool = True,
                     sources: tuple[str, ...] | None = None, settings: CoreSettings | None = None) -> dict:
    """Fit, calibrate and save the trajectory head (``trajectory.npz``); returns the updated manifest. The
    held-out groups of every source (for R-Judge and ASSEBench a seeded share of their train split's
    instructions) calibrate the head and choose its threshold; their figures are reported per source."""
    names = sources or present(data_dir, (n for n in TRAJECTORY_SOURCES if n not in NON_COMMERCIAL))
    rows = trajectory_rows(data_dir, names)
    if len(rows) < 30:
        raise ConfigError(f"too few labelled train trajectories in {data_dir}: {len(rows)}")
    encoder = _encoder(settings=settings)
    x = _in_batches(lambda part: trajectory_features(encoder, [render_trajectory(r.turns, r.profile) for r in part]),
                    rows, "encoding trajectories", progress, step=16)
    y, src, groups, rel = _columns(rows, "unsafe")
    held = np.array([r.split == "heldout" for r in rows])
    for name in set(src.tolist()):  # split sources: a share of their train instructions calibrates
        sel = (src == name) & ~held
        if not held[src == name].any():
            held |= sel & np.isin(groups, list(heldout_groups(name, groups[sel])))
    w = source_weights(y.astype(int), src, groups, rel)
    clf = logistic(x[~held], y[~held], w[~held], seed=seed, max_iter=5000)
    w_held = source_weights(y[held].astype(int), src[held], groups[held], rel[held])
    logits = clf.decision_function(x[held])
    calibration = platt(logits[:, None], y[held], w_held, seed=seed)
    head = TrajectoryHead(clf.coef_[0].astype(np.float32), float(clf.intercept_[0]), float(calibration.coef_[0, 0]),
                          float(calibration.intercept_[0]), 0.5)
    p = head.probs(x[held])
    head = TrajectoryHead(head.weight, head.bias, head.calib_scale, head.calib_shift,
                          best_f1_threshold(p, y[held], w_held))
    pred = p >= head.threshold
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    head.save(out / TRAJECTORY_FILE)
    y_h, src_h = y[held], src[held]
    meta = {"threshold": head.threshold, "train_rows": int((~held).sum()), "heldout_rows": int(held.sum()),
            "rows_per_source": dict(Counter(src.tolist())), "sources": list(names),
            "reliability": {n: TRAJECTORY_SOURCES[n].reliability for n in names}, "seed": seed,
            "heldout": "held-out groups: whole instructions (R-Judge, ASSEBench), cases, tasks",
            "heldout_metrics": binary_metrics(pred, y_h, w_held),
            "heldout_per_source": per_source(src_h, lambda sel: binary_metrics(pred[sel], y_h[sel])),
            "data": data_hashes(data_dir, names)}
    return _update_manifest(out, "trajectory", meta)


#: The parts of an agent model folder and their files.
PART_FILES: dict[str, str] = {"action": ACTION_FILE, "tool_action": TOOL_ACTION_FILE, "trajectory": TRAJECTORY_FILE}


def _update_manifest(out: Path, part: str, meta: dict) -> dict:
    """Rewrite the model folder's manifest with ``part`` replaced and the other parts kept."""
    previous = read_manifest(out) if (out / MANIFEST).is_file() else {}
    encoder_sha = encoder_sha256(verify(EMBEDDED_DIR))
    if previous.get("encoder_sha256") not in (None, encoder_sha):
        # The other heads were fitted on another encoder: they cannot be kept beside this one.
        for other, file in PART_FILES.items():
            if other != part:
                (out / file).unlink(missing_ok=True)
                previous.pop(other, None)
    body = {k: v for k, v in previous.items() if k != "files"}
    body.update({"railguard_version": __version__, "features_version": FEATURES_VERSION,
                 "encoder_sha256": encoder_sha, part: meta})
    return write_manifest(out, body)


TASKS: dict[str, object] = {"action_risk": train_action_risk, "trajectory": train_trajectory}
