"""``railguard train --task action_risk|trajectory``: the agent heads over the shipped encoder's vectors.

Action risk learns from ``webguard``'s train split (WebGuard's held-out-website split: 650 clicks on 24
websites, one of which holds 295 of them) plus a small written lexicon of common web and tool actions
(:data:`LEXICON`, weighted low). Rows are weighted so that every website counts about the same (square-root
balance) and every risk level the same. Calibration and the HIGH threshold are chosen on out-of-fold
predictions of a 6-fold cross-validation grouped by website, so what is tuned is how the model does on
websites it has not seen; the test split is never read here.

Trajectory safety learns from the train splits of ``rjudge`` and ``assebench_security``; a seeded 20% of
them is held out for calibration and the threshold.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from pathlib import Path

import numpy as np

from .. import __version__
from ..actions import RISK_LEVELS, Action, Turn, render_trajectory
from ..errors import ConfigError, require
from ..models.agent_heads import (ACTION_FILE, FEATURES_VERSION, TRAJECTORY_FILE, ActionHead, TrajectoryHead,
                            action_features, softmax, trajectory_features)
from ..models.artifacts import EMBEDDED_DIR, MANIFEST, read_manifest, sha256_file, write_manifest
from ..models.encoder import TextEncoder
from ..progress import progress_bar
from .data import DEFAULT_SEED, data_hashes, read_rows

log = logging.getLogger(__name__)

ACTION_SOURCE = "webguard"
TRAJECTORY_SOURCES: tuple[str, ...] = ("rjudge", "assebench_security")
FOLDS = 6
#: Out-of-fold HIGH recall the threshold must reach (the WebGuard paper's fine-tuned 7B model: 0.76).
MIN_HIGH_RECALL = 0.80
LEXICON_WEIGHT = 0.3
WEBSITE_BALANCE = 0.5  # row weight ∝ (1 / rows of its website) ** this
TRAJECTORY_HELDOUT = 0.2

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


def webguard_action(row: dict) -> Action:
    """A WebGuard row as the Action an agent would propose (its element description is annotator text,
    not something an agent has, so it is left out)."""
    return Action(kind=(row.get("action") or "click").lower() if (row.get("action") or "").lower() in
                  ("click", "type", "submit") else "click",
                  target=row.get("target_text") or row.get("element_description") or "(no text)",
                  url=row.get("url"), element_tag=row.get("tag_head"), page_title=row.get("page_title"),
                  task=row.get("task"))


def _encoder(threads: int | None = None) -> TextEncoder:
    from ..config import settings

    return TextEncoder.from_spec(EMBEDDED_DIR, read_manifest(EMBEDDED_DIR)["encoder"],
                                 threads=threads or settings().threads)


def _in_batches(fn, items: list, label: str, progress: bool, step: int = 64) -> np.ndarray:
    parts = []
    with progress_bar(label, total=len(items), enabled=progress) as bar:
        for s in range(0, len(items), step):
            parts.append(fn(items[s : s + step]))
            bar.advance(len(items[s : s + step]))
    return np.vstack(parts)


def _balanced_weights(levels: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Each website weighs ~sqrt(its size); then every level gets the same total weight."""
    counts = Counter(groups)
    w = np.array([(1.0 / counts[g]) ** WEBSITE_BALANCE for g in groups])
    for k in range(len(RISK_LEVELS)):
        sel = levels == k
        if sel.any():
            w[sel] /= w[sel].sum()
    return w / w.mean()


def _fit_action(x: np.ndarray, y: np.ndarray, w: np.ndarray, seed: int):
    lm = require("sklearn.linear_model", "train")
    return lm.LogisticRegression(C=1.0, max_iter=5000, random_state=seed).fit(x, y, sample_weight=w)


def action_metrics(y: np.ndarray, pred: np.ndarray, weight: np.ndarray | None = None) -> dict:
    """Accuracy, macro-F1, HIGH recall/precision and the confusion matrix (rows: true, columns: predicted,
    in RISK_LEVELS order); with ``weight``, each row counts by its weight."""
    w = np.ones(len(y)) if weight is None else weight
    k = len(RISK_LEVELS)
    cm = np.zeros((k, k))
    for t, p, wi in zip(y, pred, w):
        cm[t, p] += wi
    f1s = []
    for c in range(k):
        tp, fp, fn = cm[c, c], cm[:, c].sum() - cm[c, c], cm[c, :].sum() - cm[c, c]
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
    high = RISK_LEVELS.index("HIGH")
    out = {"n": int(len(y)), "accuracy": float(np.trace(cm) / cm.sum()) if cm.sum() else 0.0,
           "macro_f1": float(np.mean(f1s)),
           "high_recall": float(cm[high, high] / cm[high].sum()) if cm[high].sum() else 0.0,
           "high_precision": float(cm[high, high] / cm[:, high].sum()) if cm[:, high].sum() else 0.0,
           "confusion": [[round(float(v), 3) for v in row] for row in cm]}
    return {k2: (round(v, 4) if isinstance(v, float) else v) for k2, v in out.items()}


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


def train_action_risk(data_dir: Path, out_dir: Path, *, seed: int = DEFAULT_SEED, progress: bool = True) -> dict:
    """Fit, calibrate and save the action-risk head (``action.npz``); returns the updated manifest."""
    model_selection = require("sklearn.model_selection", "train")
    lm = require("sklearn.linear_model", "train")
    rows = [r for r in read_rows(data_dir, ACTION_SOURCE) if r.get("split") == "train" and r.get("risk") in RISK_LEVELS]
    if len(rows) < 30:
        raise ConfigError(f"too few labelled train rows in {data_dir}/{ACTION_SOURCE}: {len(rows)}")
    encoder = _encoder()
    actions = [webguard_action(r) for r in rows]
    y = np.array([RISK_LEVELS.index(r["risk"]) for r in rows])
    groups = np.array([r.get("website") or r.get("domain") or "?" for r in rows])
    lexicon = lexicon_actions(seed)
    x = _in_batches(lambda part: action_features(encoder, part), actions, "encoding webguard", progress)
    x_lex = _in_batches(lambda part: action_features(encoder, part), [a for a, _ in lexicon], "encoding lexicon",
                        progress)
    y_lex = np.array([RISK_LEVELS.index(level) for _, level in lexicon])
    w = _balanced_weights(y, groups)
    w_lex = np.full(len(y_lex), LEXICON_WEIGHT)

    oof_logits = np.zeros((len(y), len(RISK_LEVELS)))
    folds = model_selection.GroupKFold(n_splits=min(FOLDS, len(set(groups))))
    for fit_idx, held_idx in folds.split(x, y, groups):
        clf = _fit_action(np.vstack([x[fit_idx], x_lex]), np.concatenate([y[fit_idx], y_lex]),
                          np.concatenate([_balanced_weights(y[fit_idx], groups[fit_idx]), w_lex]), seed)
        oof_logits[held_idx] = clf.decision_function(x[held_idx])
    calib = lm.LogisticRegression(C=100.0, max_iter=2000, random_state=seed).fit(oof_logits, y, sample_weight=w)
    oof_probs = softmax(oof_logits @ calib.coef_.T + calib.intercept_)
    threshold, margin = _choose_decision(oof_probs, y, w)

    final = _fit_action(np.vstack([x, x_lex]), np.concatenate([y, y_lex]), np.concatenate([w, w_lex]), seed)
    head = ActionHead(final.coef_.astype(np.float32), final.intercept_.astype(np.float32),
                      calib.coef_.astype(np.float32), calib.intercept_.astype(np.float32), threshold, margin)
    oof_pred = np.array([RISK_LEVELS.index(level) for level in head.levels(oof_probs)])
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    head.save(out / ACTION_FILE)
    meta = {"levels": list(RISK_LEVELS), "high_threshold": threshold, "low_margin": margin, "train_rows": len(rows),
            "websites": len(set(groups)), "lexicon_rows": len(lexicon), "lexicon_weight": LEXICON_WEIGHT,
            "min_high_recall": MIN_HIGH_RECALL, "seed": seed,
            "heldout": "out-of-fold, 6-fold cross-validation grouped by website, over the train split",
            "heldout_metrics": action_metrics(y, oof_pred),
            "heldout_metrics_website_balanced": action_metrics(y, oof_pred, w),
            "data": data_hashes(data_dir, [ACTION_SOURCE])}
    return _update_manifest(out, "action", meta)


def trajectory_rows(data_dir: Path, split: str) -> list[dict]:
    rows = []
    for name in TRAJECTORY_SOURCES:
        rows += [r for r in read_rows(data_dir, name) if r.get("split") == split and r.get("unsafe") is not None]
    return rows


def trajectory_input(row: dict) -> tuple[tuple[Turn, ...], str | None]:
    """A trajectory row's turns (as railguard Turns) and the agent's profile."""
    turns = []
    for t in row.get("trajectory") or ():
        data = {k: t.get(k) for k in ("role", "content", "thought", "action") if t.get(k) not in (None, "")}
        if data.get("role") in ("user", "agent", "environment") and len(data) > 1:
            turns.append(Turn(**data))
    return tuple(turns), row.get("profile")


def trajectory_text(row: dict) -> str:
    turns, profile = trajectory_input(row)
    return render_trajectory(turns, profile)


def _best_f1_threshold(p: np.ndarray, labels: np.ndarray) -> float:
    best, best_f1 = 0.5, -1.0
    for t in np.round(np.arange(0.2, 0.81, 0.01), 2):
        pred = p >= t
        tp, fp, fn = (pred & labels).sum(), (pred & ~labels).sum(), (~pred & labels).sum()
        f1 = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
        if f1 > best_f1 + 1e-9:
            best, best_f1 = float(t), f1
    return best


def train_trajectory(data_dir: Path, out_dir: Path, *, seed: int = DEFAULT_SEED, progress: bool = True) -> dict:
    """Fit, calibrate and save the trajectory head (``trajectory.npz``); returns the updated manifest."""
    lm = require("sklearn.linear_model", "train")
    rows = trajectory_rows(data_dir, "train")
    if len(rows) < 30:
        raise ConfigError(f"too few labelled train trajectories in {data_dir}: {len(rows)}")
    encoder = _encoder()
    x = _in_batches(lambda part: trajectory_features(encoder, [trajectory_text(r) for r in part]), rows,
                    "encoding trajectories", progress, step=16)
    y = np.array([bool(r["unsafe"]) for r in rows])
    rng = np.random.default_rng(seed)
    held = np.zeros(len(rows), bool)
    for name in TRAJECTORY_SOURCES:  # the same share of each source held out
        idx = np.array([i for i, r in enumerate(rows) if r.get("source") == name])
        if len(idx):
            held[rng.choice(idx, int(round(TRAJECTORY_HELDOUT * len(idx))), replace=False)] = True
    clf = lm.LogisticRegression(C=1.0, max_iter=5000, random_state=seed, class_weight="balanced").fit(x[~held], y[~held])
    logits = clf.decision_function(x[held])
    platt = lm.LogisticRegression(C=100.0, random_state=seed).fit(logits[:, None], y[held])
    head = TrajectoryHead(clf.coef_[0].astype(np.float32), float(clf.intercept_[0]), float(platt.coef_[0, 0]),
                          float(platt.intercept_[0]), 0.5)
    p = head.probs(x[held])
    head = TrajectoryHead(head.weight, head.bias, head.calib_scale, head.calib_shift, _best_f1_threshold(p, y[held]))
    pred = p >= head.threshold
    tp, fp, fn = int((pred & y[held]).sum()), int((pred & ~y[held]).sum()), int((~pred & y[held]).sum())
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    head.save(out / TRAJECTORY_FILE)
    meta = {"threshold": head.threshold, "train_rows": int((~held).sum()), "heldout_rows": int(held.sum()),
            "sources": list(TRAJECTORY_SOURCES), "seed": seed,
            "heldout_metrics": {"f1": round(2 * tp / (2 * tp + fp + fn), 4) if tp else 0.0,
                                "precision": round(tp / (tp + fp), 4) if tp + fp else 0.0,
                                "recall": round(tp / (tp + fn), 4) if tp + fn else 0.0},
            "data": data_hashes(data_dir, TRAJECTORY_SOURCES)}
    return _update_manifest(out, "trajectory", meta)


def _update_manifest(out: Path, part: str, meta: dict) -> dict:
    """Rewrite the model folder's manifest with ``part`` replaced and the other part kept."""
    previous = read_manifest(out) if (out / MANIFEST).is_file() else {}
    encoder_sha = sha256_file(EMBEDDED_DIR / read_manifest(EMBEDDED_DIR)["encoder"]["onnx"])
    if previous.get("encoder_sha256") not in (None, encoder_sha):
        # The other head was fitted on another encoder: it cannot be kept beside this one.
        other = TRAJECTORY_FILE if part == "action" else ACTION_FILE
        (out / other).unlink(missing_ok=True)
        previous.pop("trajectory" if part == "action" else "action", None)
    body = {k: v for k, v in previous.items() if k != "files"}
    body.update({"railguard_version": __version__, "features_version": FEATURES_VERSION,
                 "encoder_sha256": encoder_sha, part: meta})
    return write_manifest(out, body)


TASKS: dict[str, object] = {"action_risk": train_action_risk, "trajectory": train_trajectory}
