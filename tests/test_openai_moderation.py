"""``openai-moderation:`` against railguard's own server on loopback (its fake guard flags "bomb"), and remote
guards named in a server's ``model`` field once the operator configured them (setting ``models``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.importorskip("httpx", reason="the remote extra is not installed: pip install 'railguard[remote]'")
pytest.importorskip("fastapi", reason="the server extra is not installed: pip install 'railguard[server]'")
from fastapi.testclient import TestClient  # noqa: E402
from server_support import live_server, make_app, settings  # noqa: E402 - skips without fastapi/uvicorn

from railguard import load_guard  # noqa: E402
from railguard.types import GuardInput  # noqa: E402

KEY = "sk-test-moderation-0123456789"


@pytest.fixture(scope="module")
def railguard_url(tmp_path_factory) -> Iterator[str]:
    """A railguard server (fake guard, one API key) on a free loopback port."""
    with live_server(make_app(tmp_path_factory.mktemp("upstream"), api_keys=[KEY])) as url:
        yield url


def test_moderation_api_as_a_guard(railguard_url, monkeypatch):
    monkeypatch.setenv("RAILGUARD_ENDPOINT_API_KEY", KEY)
    guard = load_guard(f"openai-moderation:{railguard_url}")
    assert guard.name == f"openai-moderation:{railguard_url}/v1"
    harmful, benign, answered = guard.check([
        GuardInput(prompt="how to build a bomb", id="h"),
        GuardInput(prompt="what is the weather like", id="b"),
        GuardInput(prompt="tell me a story", response="first, build a bomb", id="r"),
    ])
    assert harmful.id == "h" and harmful.tier == guard.name and harmful.error is None
    assert harmful.prompt_harmful is True and harmful.flagged is True and harmful.response_harmful is None
    assert harmful.scores["prompt_harmful"] == pytest.approx(0.9)
    assert harmful.categories["weapons"] == pytest.approx(0.9)  # weapons -> illicit/violent -> weapons again
    assert harmful.refusal is None and harmful.jailbreak is None and harmful.injection is None
    assert benign.prompt_harmful is False and benign.flagged is False
    assert answered.prompt_harmful is False and answered.response_harmful is True and answered.flagged is True


def test_batches_are_split_into_requests(railguard_url, monkeypatch):
    monkeypatch.setenv("RAILGUARD_ENDPOINT_API_KEY", KEY)
    guard = load_guard(f"openai-moderation:{railguard_url}#fake?batch_size=2&concurrency=2")
    inputs = [GuardInput(prompt="a bomb" if i % 3 == 0 else "a cake", id=str(i)) for i in range(7)]
    verdicts = guard.check(inputs)
    assert [v.id for v in verdicts] == [x.id for x in inputs]
    assert [v.prompt_harmful for v in verdicts] == [i % 3 == 0 for i in range(7)]


def test_a_refused_key_fails_closed(railguard_url, monkeypatch):
    monkeypatch.setenv("RAILGUARD_ENDPOINT_API_KEY", "sk-wrong")
    v = load_guard(f"openai-moderation:{railguard_url}").check([GuardInput(prompt="hello")])[0]
    assert v.flagged is True and v.prompt_harmful is None and "HTTP 401" in v.error


def test_server_serves_a_remote_guard_the_operator_configured(railguard_url, tmp_path, monkeypatch):
    monkeypatch.setenv("RAILGUARD_ENDPOINT_API_KEY", KEY)
    remote = f"openai-moderation:{railguard_url}"
    with TestClient(make_app(tmp_path, models=[remote])) as client:
        listed = [m["id"] for m in client.get("/v1/models").json()["data"]]
        assert remote in listed
        answer = client.post("/v1/moderations", json={"input": ["build a bomb", "bake a cake"], "model": remote})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["model"] == remote
        assert [r["flagged"] for r in body["results"]] == [True, False]
        assert body["results"][0]["railguard"]["tier"] == f"{remote}/v1"
        # Anything with an argument that the operator did not configure is still refused.
        other = client.post("/v1/moderations", json={"input": "hi", "model": f"openai-moderation:{railguard_url}/x"})
        assert other.status_code == 404 and other.json()["error"]["code"] == "model_not_found"


def test_models_setting_reads_a_comma_separated_environment_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("RAILGUARD_MODELS", "hf:/models/wildguard, endpoint:http://gpu:8000/v1#llama-guard-3")
    assert settings(tmp_path).models == ("hf:/models/wildguard", "endpoint:http://gpu:8000/v1#llama-guard-3")
