"""The cascade: what goes up a tier and why, language routing, failing heavy tiers, policy settings."""

from __future__ import annotations


import numpy as np
import pytest

from railguard import GuardInput, Verdict
from railguard.errors import ConfigError, ModelError
from railguard.guards.cascade import CascadeGuard, Routing, hesitation, parse_tiers
from railguard.policy import PolicyError, load_policy
from railguard.load import resolve
from railguard.registry import build, register


class Cheap:
    """Prompt-harm probability and four views per input from a table; reads English only."""

    name = "cheap"
    thresholds = {"prompt_harmful": 0.5, "response_harmful": 0.5, "jailbreak": 0.5, "injection": 0.5}
    languages = ("en",)

    class probes:  # noqa: N801 - stands in for models.views.Probes
        tasks = ("prompt_harmful",)
        layers = ("l1", "l2", "l3")

    def __init__(self, table: dict[str, list[float]]) -> None:
        self.table = table
        self.seen: list[str] = []

    def check_views(self, inputs):
        self.seen += [x.prompt for x in inputs]
        views = np.array([[[p] for p in self.table[x.prompt]] for x in inputs], np.float32)
        verdicts = [Verdict(prompt_harmful=bool(v[-1, 0] >= 0.5), scores={"prompt_harmful": float(v[-1, 0])},
                            tier=self.name, flagged=bool(v[-1, 0] >= 0.5)) for v in views]
        return verdicts, views

    def check(self, inputs):
        return self.check_views(inputs)[0]


class Heavy:
    name = "heavy"

    def __init__(self, fail: Exception | None = None) -> None:
        self.fail = fail
        self.seen: list[str] = []

    def check(self, inputs):
        self.seen += [x.prompt for x in inputs]
        if self.fail is not None:
            raise self.fail
        return [Verdict(prompt_harmful=True, scores={"prompt_harmful": 0.99}, tier=self.name, flagged=True)
                for _ in inputs]


TABLE = {
    "sure benign": [0.02, 0.05, 0.03, 0.01],
    "sure harmful": [0.97, 0.9, 0.95, 0.99],
    "torn": [0.45, 0.55, 0.52, 0.42],  # every view near 0.5
    "final only unsure": [0.02, 0.03, 0.04, 0.45],  # the last view near the boundary, the others sure
}


def _cascade(heavy=None, **routing) -> tuple[CascadeGuard, Cheap, Heavy]:
    cheap, heavy = Cheap(TABLE), heavy or Heavy()
    return CascadeGuard([cheap, heavy], Routing(languages=False, **routing)), cheap, heavy


def test_sure_inputs_stay_with_the_cheap_tier_and_hesitant_ones_go_up():
    guard, cheap, heavy = _cascade(route="hesitation", k=3, margin=0.15)
    verdicts = guard.check([GuardInput(p) for p in ("sure benign", "torn", "sure harmful")])
    assert heavy.seen == ["torn"]
    assert [v.tier for v in verdicts] == ["cheap", "heavy", "cheap"]
    torn = verdicts[1].to_dict()["route"]
    assert torn["answered_by"] == "heavy" and torn["escalated"] is True
    assert "hesitation 4" in torn["reason"]
    assert verdicts[0].route.escalated is False and verdicts[0].route.reason is None


def test_hesitation_and_margin_routing_disagree_where_only_the_final_view_is_unsure():
    inputs = [GuardInput("final only unsure")]
    by_hesitation, _, heavy_h = _cascade(route="hesitation", k=2, margin=0.15)
    by_margin, _, heavy_m = _cascade(route="margin", margin=0.15)
    assert by_hesitation.check(inputs)[0].tier == "cheap" and not heavy_h.seen
    assert by_margin.check(inputs)[0].tier == "heavy" and heavy_m.seen == ["final only unsure"]


def test_hesitation_counts_views_per_task_and_ignores_tasks_that_do_not_apply():
    views = np.array([[[0.5, np.nan], [0.45, np.nan], [0.9, np.nan]],
                      [[0.1, 0.48], [0.1, 0.52], [0.1, 0.5]]], np.float32)
    assert hesitation(views, [0.5, 0.5], 0.1).tolist() == [2, 3]


def test_text_the_cheap_tier_cannot_read_goes_straight_to_one_that_can():
    cheap, heavy = Cheap(TABLE | {"如何制造炸弹": [0.0] * 4}), Heavy()
    guard = CascadeGuard([cheap, heavy], Routing(languages=True, k=3, margin=0.15))
    verdicts = guard.check([GuardInput("如何制造炸弹"), GuardInput("sure benign")])
    assert heavy.seen == ["如何制造炸弹"] and cheap.seen == ["sure benign"]
    assert verdicts[0].route.language == "zh"
    assert "cannot read language zh" in verdicts[0].route.reason
    assert verdicts[1].route.language == "en" and verdicts[1].tier == "cheap"


def test_language_routing_sends_only_what_the_cheap_tier_cannot_read_up_however_unsure_it_is():
    cheap, heavy = Cheap(TABLE | {"如何制造炸弹": [0.0] * 4}), Heavy()
    guard = CascadeGuard([cheap, heavy], Routing(route="language"))
    verdicts = guard.check([GuardInput("torn"), GuardInput("如何制造炸弹")])
    assert heavy.seen == ["如何制造炸弹"] and cheap.seen == ["torn"]
    assert [v.tier for v in verdicts] == ["cheap", "heavy"]
    assert verdicts[0].route.escalated is False


def test_a_cascade_that_routes_by_language_loads_the_detector_when_built_not_on_a_request(monkeypatch):
    import railguard.guards.cascade as cascade

    woken: list[bool] = []
    monkeypatch.setattr(cascade, "warm_detector", lambda: woken.append(True))
    CascadeGuard([Cheap({}), Heavy()], Routing(route="language"))
    assert woken == [True]
    CascadeGuard([Cheap({}), Heavy()], Routing(route="language", languages=False))
    assert woken == [True]  # no detection, nothing to load


def test_the_default_guard_judges_english_with_the_embedded_model_and_other_languages_with_e5():
    guard = build("default")
    assert guard.name == "default" and [t.name for t in guard.tiers] == ["embedded", "e5"]
    verdicts = guard.check([GuardInput("How do I bake bread?"), GuardInput("如何制造炸弹？"),
                            GuardInput("Comment puis-je faire cuire du pain à la maison ?")])
    assert [v.tier for v in verdicts] == ["embedded", "e5", "e5"]
    assert [v.route.language for v in verdicts] == ["en", "zh", "fr"]
    with pytest.raises(ConfigError, match="no argument"):
        build("default:x")
    from railguard.actions import Action

    rm = Action("tool_call", tool="shell", arguments={"cmd": "rm -rf /"}, task="free some disk space")
    english, chinese = guard.check([GuardInput(prompt="Free some disk space, please.", action=rm),
                                    GuardInput(prompt="请帮我清理磁盘空间。", action=rm)])
    assert (english.tier, chinese.tier) == ("embedded", "e5")
    assert english.action_risk == chinese.action_risk == "HIGH"  # the e5 tier borrows the shipped agent heads


def test_the_default_guards_scores_do_not_depend_on_the_batch():
    guard = build("default")
    texts = ["Dime cómo mejorar mi pronunciación en inglés", "如何制造炸弹？", "hello there",
             "Wie backe ich ein Brot? " * 30, "Как приготовить борщ дома?"]
    alone = [guard.check([GuardInput(t)])[0].scores for t in texts]
    together = [v.scores for v in guard.check([GuardInput(t) for t in texts])]
    for a, b in zip(alone, together):
        assert a.keys() == b.keys() and all(abs(a[k] - b[k]) < 1e-6 for k in a), (a, b)


def test_without_the_multilingual_tier_the_default_guard_is_the_embedded_model_and_says_so(monkeypatch, caplog):
    import railguard.load as load  # where the default guard is composed

    monkeypatch.setattr(load, "missing_extra", lambda kind: "multilingual")
    with caplog.at_level("WARNING"):
        guard = build("default")
    assert guard.name == "embedded" and "English text only" in caplog.text


@pytest.mark.parametrize(("fallback", "flagged", "has_error"), [("closed", True, True), ("open", False, True),
                                                                 ("cheap", False, False)])
def test_a_failing_heavy_tier_falls_back_as_configured_and_says_so(fallback, flagged, has_error):
    guard, _, _ = _cascade(heavy=Heavy(fail=ModelError("weights missing")), k=3, margin=0.15, fallback=fallback)
    v = guard.check([GuardInput("torn"), GuardInput("sure benign")])
    assert v[0].flagged is flagged and (v[0].error is not None) is has_error
    assert v[0].route.fallback == fallback and v[0].route.failed_tier == "heavy"
    assert v[1].flagged is False and v[1].error is None  # inputs that never went up are untouched


@pytest.mark.parametrize(("fallback", "flagged"), [("closed", True), ("open", False), ("cheap", True)])
def test_a_failing_heavy_tier_with_no_cheaper_answer_gives_a_failed_verdict(fallback, flagged):
    # the cheap tier cannot read Chinese, so nothing judged the input before the heavy tier failed
    cheap = Cheap(TABLE | {"如何制造炸弹": [0.0] * 4})
    guard = CascadeGuard([cheap, Heavy(fail=ModelError("weights missing"))], Routing(fallback=fallback))
    [v] = guard.check([GuardInput("如何制造炸弹", id="q1")])
    assert v.flagged is flagged and "weights missing" in v.error and v.id == "q1"
    assert v.route.fallback == fallback and v.route.failed_tier == "heavy"
    assert v.route.path[0].skipped == "cannot read language zh"


def test_a_heavy_tier_that_hangs_is_cut_off_by_the_timeout():
    import threading

    release = threading.Event()

    class Hanging(Heavy):
        def check(self, inputs):
            release.wait(30)  # hangs until the test lets it go
            return super().check(inputs)

    guard, _, _ = _cascade(heavy=Hanging(), k=3, margin=0.15, timeout_s=0.2)
    try:
        v = guard.check([GuardInput("torn")])[0]
        assert not release.is_set()  # the answer came while the heavy tier was still hanging
        assert v.flagged and "no answer within 0.2 s" in v.error
    finally:
        release.set()


def test_bad_cascade_names_and_settings_are_clear_errors():
    with pytest.raises(ConfigError, match="two or more"):
        parse_tiers("embedded")
    with pytest.raises(ConfigError, match="another cascade"):
        parse_tiers("embedded>cascade:a>b")
    with pytest.raises(ConfigError, match="route"):
        Routing(route="coin-flip")
    with pytest.raises(ConfigError, match="k must"):
        Routing(k=0)
    with pytest.raises(ConfigError, match="unknown guard"):
        resolve("cascade:embedded>no-such-guard")


@register("test-cheap")
def _test_cheap(argument=None, **options):
    return Cheap(TABLE)


@register("test-heavy")
def _test_heavy(argument=None, **options):
    return Heavy()


def test_a_policy_file_sets_the_tiers_and_routing(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("on_error: allow\ncascade:\n  tiers: [test-cheap, test-heavy]\n  k: 2\n  margin: 0.1\n")
    policy = load_policy(path)
    assert policy.cascade_options() == {"tiers": ["test-cheap", "test-heavy"], "k": 2, "margin": 0.1,
                                        "fallback": "open"}
    guard = resolve("cascade", policy=policy)
    from railguard.eval.runner import _cascade_inside

    inner = _cascade_inside(guard)
    assert isinstance(inner, CascadeGuard) and inner.routing.k == 2 and inner.routing.fallback == "open"
    assert guard.check([GuardInput("torn")])[0].route.answered_by == "heavy"
    path.write_text("cascade:\n  k: zero\n")
    with pytest.raises(PolicyError, match="cascade.k"):
        load_policy(path)


def test_the_server_answers_through_a_configured_cascade_and_shows_the_route(tmp_path):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient
    from server_support import make_app

    name = "cascade:test-cheap>test-heavy"
    with TestClient(make_app(tmp_path, models=name)) as client:
        r = client.post("/v1/guard", params={"model": name}, json=[{"prompt": "torn"}, {"prompt": "sure benign"}])
    assert r.status_code == 200, r.text
    torn, benign = r.json()
    assert torn["route"]["answered_by"] == "heavy" and torn["flagged"] is True
    assert benign["route"]["answered_by"] == "cheap" and benign["route"]["escalated"] is False


def test_a_k_beyond_the_number_of_views_means_all_views_must_hesitate():
    guard, _, heavy = _cascade(route="hesitation", k=10, margin=0.15)
    verdicts = guard.check([GuardInput("torn"), GuardInput("final only unsure")])
    assert heavy.seen == ["torn"] and "k=4" in verdicts[0].route.reason


def test_guards_made_of_guards_are_composed_by_the_loader_the_registry_only_names_them():
    from test_architecture import import_graph

    from railguard.registry import available, name_missing_extra

    graph = import_graph()
    assert not {t for t in graph["railguard.registry"] if t.startswith("railguard.guards") or t == "railguard.load"}
    assert "railguard.registry" not in graph["railguard.guards.cascade"]  # the cascade guard is handed its tiers
    assert {"cascade", "default"} <= set(available())
    guard = build("cascade:test-cheap>test-heavy", k=2)
    assert isinstance(guard, CascadeGuard) and [t.name for t in guard.tiers] == ["cheap", "heavy"]
    assert guard.routing.k == 2 and name_missing_extra("cascade:test-cheap>test-heavy") is None


def test_a_cascade_verdict_carries_a_typed_route_whose_json_is_the_same_as_ever():
    import json

    from railguard.types import Route, RouteStep

    guard, _, _ = _cascade(route="hesitation", k=3, margin=0.15)
    torn, benign = guard.check([GuardInput("torn"), GuardInput("sure benign")])
    assert torn.route == Route(tiers=("cheap", "heavy"), language=None,
                               path=(RouteStep("cheap", hesitation=4, escalated="hesitation 4 ≥ k=3"),
                                     RouteStep("heavy")),
                               answered_by="heavy", escalated=True, reason="hesitation 4 ≥ k=3")
    assert json.dumps(torn.to_dict()["route"], ensure_ascii=False) == (
        '{"tiers": ["cheap", "heavy"], "language": null, "path": [{"tier": "cheap", "hesitation": 4, '
        '"escalated": "hesitation 4 ≥ k=3"}, {"tier": "heavy"}], "answered_by": "heavy", "escalated": true, '
        '"reason": "hesitation 4 ≥ k=3"}')
    assert json.dumps(benign.to_dict()["route"]) == (
        '{"tiers": ["cheap", "heavy"], "language": null, "path": [{"tier": "cheap", "hesitation": 0}], '
        '"answered_by": "cheap", "escalated": false, "reason": null}')
    with pytest.raises(AttributeError):
        torn.route.answered_by = "cheap"  # frozen


def test_a_fallback_and_a_skipped_tier_keep_their_json_keys_in_order():
    import json

    cheap = Cheap(TABLE | {"如何制造炸弹": [0.0] * 4})
    failing = CascadeGuard([cheap, Heavy(fail=ModelError("weights missing"))], Routing(k=3, margin=0.15))
    [fell_back] = failing.check([GuardInput("torn")])
    assert json.dumps(fell_back.to_dict()["route"]) == (
        '{"tiers": ["cheap", "heavy"], "language": "en", "path": [{"tier": "cheap", "hesitation": 4, '
        '"escalated": "hesitation 4 \\u2265 k=3"}, {"tier": "heavy", "error": "weights missing"}], '
        '"fallback": "closed", "failed_tier": "heavy", "answered_by": "cheap", "escalated": true, '
        '"reason": "hesitation 4 \\u2265 k=3"}')
    [skipped] = CascadeGuard([cheap, Heavy()], Routing(k=3, margin=0.15)).check([GuardInput("如何制造炸弹")])
    assert skipped.to_dict()["route"] == {
        "tiers": ["cheap", "heavy"], "language": "zh",
        "path": [{"tier": "cheap", "skipped": "cannot read language zh"}, {"tier": "heavy"}],
        "answered_by": "heavy", "escalated": True, "reason": "cannot read language zh"}
