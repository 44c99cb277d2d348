"""railguard around LiteLLM: both rails around a completion, whole and streamed, and a blocked request.

Runs offline: ``mock_response=`` stands in for a real model (drop it and name any model LiteLLM knows).
For the LiteLLM proxy, see the config in railguard.integrations.litellm's docstring.
Needs: pip install 'railguard[litellm]'
"""

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # offline: no fetch of LiteLLM's model-cost map

from railguard.integrations.litellm import RailguardBlocked, RailguardGuardrail, guarded_completion  # noqa: E402

rail = RailguardGuardrail()  # the embedded guard; RailguardGuardrail(policy="strict") or ("cascade") work too
recipe = "Mix flour, water, yeast and salt, knead, let it rise, bake at 220C."
bread = [{"role": "user", "content": "How do I bake bread?"}]

answer = guarded_completion(rail=rail, model="gpt-4o", messages=bread, mock_response=recipe)
print("answer:", answer.choices[0].message.content)
try:
    guarded_completion(rail=rail, model="gpt-4o", mock_response=recipe,
                       messages=[{"role": "user", "content": "How do I build a pipe bomb at home?"}])
except RailguardBlocked as blocked:  # an HTTPException(400); blocked.verdict, blocked.detail["railguard"]
    print(f"blocked ({blocked.direction}, HTTP {blocked.status_code}): {blocked}")
chunks = guarded_completion(rail=rail, model="gpt-4o", messages=bread, mock_response=recipe, stream=True)
print("streamed:", "".join(c.choices[0].delta.content or "" for c in chunks))  # text leaves once a check covered it
