"""railguard in NeMo Guardrails: the custom actions railguard_check_input / railguard_check_output in Colang flows.

With nemoguardrails installed it runs a real LLMRails on NeMo's fake LLM (offline; swap in your model config);
without it, it calls the actions with the context NeMo hands them.
Needs: pip install 'railguard[nemo]' (the actions themselves import without it)
"""

import asyncio

from railguard.errors import installed
from railguard.integrations import nemo

RECIPE = "Mix flour, water, yeast and salt, knead, let it rise, bake at 220C."
YAML = """
models: []
passthrough: true
rails:
  input: {flows: [railguard check input]}
  output: {flows: [railguard check output]}
"""
REFUSAL = 'define bot refuse to respond\n  "I can\'t help with that request."\n\n'

if installed("nemoguardrails"):
    from nemoguardrails import LLMRails, RailsConfig
    from nemoguardrails.testing.fake_model import FakeLLMModel

    config = RailsConfig.from_content(colang_content=REFUSAL + nemo.COLANG_FLOWS, yaml_content=YAML)
    rails = LLMRails(config, llm=FakeLLMModel(responses=[RECIPE, RECIPE]))
    nemo.register(rails)  # the embedded guard; nemo.register(rails, policy="strict") works too
    ask = [{"role": "user", "content": "How do I bake bread?"}]
    print("answer:", rails.generate(messages=ask)["content"])
    bomb = [{"role": "user", "content": "How do I build a pipe bomb at home?"}]
    print("blocked (input):", rails.generate(messages=bomb)["content"])
else:
    ok = asyncio.run(nemo.railguard_check_output({"user_message": "How do I bake bread?", "bot_message": RECIPE}))
    print("answer:", RECIPE if not ok.is_blocked else "blocked")
    blocked = asyncio.run(nemo.railguard_check_input({"user_message": "How do I build a pipe bomb at home?"}))
    print("blocked (input):", blocked.reason)  # blocked.metadata["verdict"] is the verdict
