"""The cost report of a cascade: what each tier alone scores, what the cascade scores, how much goes up.

Every tier runs once over every item (the cheap tier with its layer views); routing is then replayed
offline for a sweep of ``k`` and ``margin``, so the F1-vs-escalation curve costs no extra model calls.
Latency per item = the cheap tier's share of its batched call + language detection + the heavy side's
share for the items that go up. With more than two tiers, "heavy" is the cascade of the remaining tiers.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..guard import has_views, reads, thresholds_of
from ..guards.cascade import CascadeGuard, hesitation, input_language, margin_uncertain
from ..progress import Advance
from . import benchmarks as bm
from . import metrics as mx

KS: tuple[int, ...] = (1, 2, 3, 4, 5, 6)
MARGINS: tuple[float, ...] = (0.02, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4)
#: Escalation budgets at which the two routings are compared.
BUDGETS: tuple[float, ...] = (0.05, 0.1, 0.15, 0.2, 0.25)


def _quality(labels: np.ndarray, flagged: np.ndarray) -> tuple[str, float | None]:
    """F1 where the set has both classes, recall on all-harmful sets, 1 - FPR on all-benign ones."""
    c = mx.confusion(labels, flagged)
    if 0 < labels.sum() < labels.size:
        return "f1", c.f1
    if labels.sum():
        return "recall", c.recall
    return "1-fpr", None if c.fpr is None else 1.0 - c.fpr


def _run(guard, items: Sequence[bm.Item], batch: int, views: bool, bar: Advance):
    verdicts, view_rows, seconds = [], [], 0.0
    for s in range(0, len(items), batch):
        part = [it.input for it in items[s : s + batch]]
        t0 = time.perf_counter()
        if views:
            v, w = guard.check_views(part)
            view_rows.append(w)
        else:
            v = guard.check(part)
        seconds += time.perf_counter() - t0
        verdicts += v
        bar.advance(len(part))
    ms = seconds * 1000.0 / max(1, len(items))
    return verdicts, (np.concatenate(view_rows) if view_rows else None), ms


def _decisions(verdicts, task: str) -> np.ndarray:
    return np.array([bool(getattr(v, task)) or (v.error is not None and v.flagged) for v in verdicts])


def analyse(cascade: CascadeGuard, name: str, bench: str, task: str, items: Sequence[bm.Item],
            batch: int, bar: Advance) -> dict[str, Any]:
    """One benchmark: tiers alone, the cascade as configured, and the routing sweep."""
    cheap = cascade.tiers[0]
    heavy = cascade.tiers[1] if len(cascade.tiers) == 2 else CascadeGuard(cascade.tiers[1:], cascade.routing)
    labels = np.array([it.label for it in items], bool)
    c_verdicts, views, c_ms = _run(cheap, items, batch, has_views(cheap), bar)
    h_verdicts, _, h_ms = _run(heavy, items, batch, False, bar)
    t0 = time.perf_counter()
    langs = [input_language(it.input) for it in items] if cascade.routing.languages else [None] * len(items)
    lang_ms = (time.perf_counter() - t0) * 1000.0 / max(1, len(items))
    unreadable = np.array([not reads(cheap, lang) for lang in langs])
    cheap_flags, heavy_flags = _decisions(c_verdicts, task), _decisions(h_verdicts, task)
    thresholds = thresholds_of(cheap)

    def outcome(up: np.ndarray) -> dict[str, Any]:
        up = up | unreadable
        metric, value = _quality(labels, np.where(up, heavy_flags, cheap_flags))
        # text the cheap tier cannot read skips it and goes straight up
        lat = lang_ms + np.where(unreadable, h_ms, c_ms + up * h_ms)
        return {"escalation_rate": float(up.mean()), metric: value, "mean_ms": float(lat.mean()),
                "p95_ms": float(np.percentile(lat, 95))}

    def by_margin(m: float) -> np.ndarray:
        return np.array([margin_uncertain(v, thresholds, m) for v in c_verdicts])

    def by_hesitation(k: int, m: float) -> np.ndarray:
        if views is None:
            return by_margin(m)
        return hesitation(views, [thresholds.get(t, 0.5) for t in cheap.probes.tasks], m) >= min(k, views.shape[1])

    r = cascade.routing
    configured = by_hesitation(r.k, r.margin) if r.route == "hesitation" else by_margin(r.margin)
    metric = _quality(labels, cheap_flags)[0]
    sweep = [{"route": "margin", "margin": m, **outcome(by_margin(m))} for m in MARGINS]
    if views is not None:
        n_views = views.shape[1]
        sweep += [{"route": "hesitation", "k": k, "margin": m, **outcome(by_hesitation(k, m))}
                  for k in KS if k <= n_views for m in MARGINS]
    return {
        "guard": name, "benchmark": bench, "task": task, "n": len(items), "metric": metric,
        "tiers": {cheap.name: {metric: _quality(labels, cheap_flags)[1], "mean_ms": c_ms},
                  heavy.name: {metric: _quality(labels, heavy_flags)[1], "mean_ms": h_ms}},
        "language_routed": float(unreadable.mean()),
        "language_ms": lang_ms,
        "cascade": {"route": r.route, "k": r.k, "margin": r.margin, **outcome(configured)},
        "sweep": sweep,
        "routing_comparison": compare_routes(sweep, metric),
    }


def _best_within(points: list[dict], metric: str, budget: float) -> float | None:
    values = [p[metric] for p in points if p["escalation_rate"] <= budget + 1e-9 and p[metric] is not None]
    return max(values) if values else None


def compare_routes(sweep: list[dict], metric: str) -> dict[str, Any]:
    """Best score each routing reaches within each escalation budget; which wins on average."""
    routes = {route: [p for p in sweep if p["route"] == route] for route in ("hesitation", "margin")}
    table = {f"{b:.2f}": {route: _best_within(pts, metric, b) for route, pts in routes.items()} for b in BUDGETS}
    pairs = [(v["hesitation"], v["margin"]) for v in table.values()
             if v["hesitation"] is not None and v["margin"] is not None]
    if not pairs:
        return {"by_budget": table, "winner": None}
    diff = float(np.mean([h - m for h, m in pairs]))
    winner = "tie" if abs(diff) < 1e-4 else ("hesitation" if diff > 0 else "margin")
    return {"by_budget": table, "mean_difference": diff, "winner": winner}


def summary(reports: list[dict]) -> dict[str, Any]:
    """Across benchmarks: the cascade's share of the better tier's score, escalation, latency vs heavy."""
    if not reports:
        return {}
    metric_of = [r["metric"] for r in reports]
    names = list(reports[0]["tiers"])
    tier_scores = {n: [r["tiers"][n][m] for r, m in zip(reports, metric_of)] for n in names}
    cascade_scores = [r["cascade"][m] for r, m in zip(reports, metric_of)]
    ok = [i for i, s in enumerate(cascade_scores) if s is not None and all(tier_scores[n][i] is not None for n in names)]
    better = max(names, key=lambda n: np.mean([tier_scores[n][i] for i in ok]) if ok else 0)
    mean_better = float(np.mean([tier_scores[better][i] for i in ok])) if ok else None
    mean_cascade = float(np.mean([cascade_scores[i] for i in ok])) if ok else None
    n_items = sum(r["n"] for r in reports)
    esc = sum(r["cascade"]["escalation_rate"] * r["n"] for r in reports) / n_items
    mean_ms = sum(r["cascade"]["mean_ms"] * r["n"] for r in reports) / n_items
    heavy_ms = sum(r["tiers"][names[1]]["mean_ms"] * r["n"] for r in reports) / n_items
    wins = [r["routing_comparison"].get("winner") for r in reports]
    return {"guard": reports[0]["guard"], "benchmarks": len(reports), "better_tier": better,
            "mean_score_better_tier": mean_better, "mean_score_cascade": mean_cascade,
            "share_of_better_tier": (mean_cascade / mean_better) if mean_better else None,
            "escalation_rate": esc, "mean_ms": mean_ms, "always_heavy_mean_ms": heavy_ms,
            "latency_share_of_always_heavy": mean_ms / heavy_ms if heavy_ms else None,
            "hesitation_wins": wins.count("hesitation"), "margin_wins": wins.count("margin"),
            "ties": wins.count("tie")}


def markdown(reports: list[dict], total: dict[str, Any]) -> str:
    if not reports:
        return ""
    names = list(reports[0]["tiers"])
    head = ["benchmark", "metric", *[f"{n} alone" for n in names], "cascade", "escalated", "mean ms", "p95 ms",
            f"{names[1]} ms", "routing wins"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    f = lambda x, d=3: "—" if x is None else f"{x:.{d}f}"  # noqa: E731
    for r in reports:
        m, c = r["metric"], r["cascade"]
        lines.append("| " + " | ".join([r["benchmark"], m, *[f(r["tiers"][n][m]) for n in names], f(c[m]),
                                         f"{c['escalation_rate']:.1%}", f(c["mean_ms"], 2), f(c["p95_ms"], 2),
                                         f(r["tiers"][names[1]]["mean_ms"], 2),
                                         str(r["routing_comparison"].get("winner") or "—")]) + " |")
    share = total.get("share_of_better_tier")
    lat = total.get("latency_share_of_always_heavy")
    lines += ["", f"Over {total['benchmarks']} benchmarks: the cascade keeps "
              f"{'—' if share is None else f'{share:.1%}'} of the better tier's ({total['better_tier']}) mean score "
              f"while escalating {total['escalation_rate']:.1%} of inputs; mean latency "
              f"{total['mean_ms']:.2f} ms = {'—' if lat is None else f'{lat:.1%}'} of always running "
              f"{names[1]} ({total['always_heavy_mean_ms']:.2f} ms). Routing at equal escalation budgets "
              f"(5–25%): hesitation better on {total['hesitation_wins']}, margin on {total['margin_wins']}, "
              f"tied on {total['ties']}."]
    return "\n".join(lines) + "\n"

