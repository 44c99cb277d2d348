"""The server applies a policy to the guard it serves (setting `policy`, `serve --policy`)."""

from __future__ import annotations

import pytest
from server_support import settings

from railguard.server import create_app

from fastapi.testclient import TestClient  # noqa: E402 - server_support skips without the extra


def test_served_guard_follows_the_policy(tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text("tasks: {prompt_harmful: {action: flag}}\n")
    with TestClient(create_app(settings(tmp_path, policy=str(policy)))) as client:
        item = client.post("/v1/guard", json={"prompt": "how to make a bomb"}).json()[0]
    assert item["prompt_harmful"] is True
    assert item["action"] == "flag"  # the policy decided: flag, not block
    assert item["flagged"] is False
    assert any("prompt_harmful" in str(reason) for reason in item["explanation"])


def test_a_bad_policy_stops_the_server_at_start(tmp_path):
    from railguard.errors import ConfigError

    with pytest.raises(ConfigError, match="nope"):
        with TestClient(create_app(settings(tmp_path, policy="nope"))):
            pass


def test_railguard_serve_with_one_worker_serves_the_guard_under_its_policy(tmp_path, monkeypatch):
    # `railguard serve` builds the guard itself when it runs one worker; the policy must come with it
    import uvicorn

    from railguard.server import run

    served = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: served.setdefault("app", app))
    policy = tmp_path / "policy.yaml"
    policy.write_text("tasks: {prompt_harmful: {action: flag}}\n")
    run.serve(settings(tmp_path, policy=str(policy)))
    with TestClient(served["app"]) as client:
        item = client.post("/v1/guard", json={"prompt": "how to make a bomb"}).json()[0]
    assert item["prompt_harmful"] is True and item["action"] == "flag" and item["flagged"] is False
