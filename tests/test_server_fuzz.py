"""Property-based: whatever a client sends, the server answers with a non-5xx status and a JSON body."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from server_support import make_app

from fastapi.testclient import TestClient

FIELDS = ["input", "model", "prompt", "response", "context", "id", "type", "text", "image_url"]
leaves = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
          | st.text(max_size=30) | st.sampled_from(["bomb", "", "fake", "omni-moderation-latest", "\ud800"]))
json_values = st.recursive(
    leaves,
    lambda children: st.lists(children, max_size=6)
    | st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), children, max_size=5),
    max_leaves=25,
)
# Mostly near-misses of the real schemas, so validation is exercised beyond its first check.
shaped = (st.fixed_dictionaries({"input": json_values}, optional={"model": leaves})
          | st.lists(st.fixed_dictionaries({"prompt": json_values}, optional={"response": leaves, "context": json_values,
                                                                              "id": leaves}), max_size=4))
bodies = (shaped | json_values).map(lambda v: json.dumps(v).encode()) | st.binary(max_size=200)


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    with TestClient(make_app(tmp_path_factory.mktemp("fuzz"))) as c:
        yield c


@settings(max_examples=50, deadline=None, database=None,  # no .hypothesis folder in the checkout
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies, path=st.sampled_from(["/v1/moderations", "/v1/guard"]),
       content_type=st.sampled_from(["application/json", "text/plain", None]))
def test_no_input_gives_a_5xx(client, body, path, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    response = client.post(path, content=body, headers=headers)
    assert response.status_code < 500, (response.status_code, response.text)
    payload = response.json()
    if response.status_code >= 400:
        assert set(payload["error"]) == {"message", "type", "param", "code"}
