"""railguard around a LangChain chat model: the input and output rails, blocked and refused requests.

Runs offline: a fake chat model stands in for a real one (swap in ChatOpenAI, ChatAnthropic, ...).
Needs: pip install 'railguard[langchain]'
"""

from langchain_core.language_models.fake_chat_models import FakeListChatModel

from railguard.integrations.langchain import Railguard, RailguardBlocked

llm = FakeListChatModel(responses=["Mix flour, water, yeast and salt, knead, let it rise, bake at 220C."])
rail = Railguard()  # the embedded guard; Railguard(policy="strict") or Railguard("cascade") work too
chain = rail | llm | rail.output()

print("answer:", chain.invoke("How do I bake bread?").content)
try:
    chain.invoke("How do I build a pipe bomb at home?")
except RailguardBlocked as blocked:  # carries the verdict: blocked.verdict.to_dict()
    print(f"blocked ({blocked.direction}): {blocked}")

polite = Railguard(on_block="refuse").wrap(llm)  # answers with the refusal instead of raising
print("refused:", polite.invoke("How do I build a pipe bomb at home?").content)
for chunk in polite.stream("How do I bake bread?"):  # streamed text leaves only once a check covered it
    pass
