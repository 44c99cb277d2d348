"""Guarding agents: what an agent is about to do (an action, a tool call) and what it did so far (a trajectory).

``actions`` holds the values (:class:`~railguard.agent.actions.Action`, ``Turn``, reading an LLM API's tool
call) and the texts the heads read; ``rules`` the rule layer that puts a floor under an action's risk (the
built-in rules are data: ``railguard/data/agent_rules.yaml``) and a policy's ``agent`` section; ``heads`` the
action and trajectory heads and their features over the embedded encoder (the model files stay in
``railguard/models/agent``); ``guard`` the :class:`~railguard.agent.guard.AgentGuard` (``load_guard("agent")``);
``compose`` a text guard with the agent guard beside it (what :mod:`railguard.load` builds for the embedded
and e5 tiers, so that the text guards know nothing of agents); ``io`` reading actions from command-line options
and JSON lines. This package imports nothing from training,
evaluation, the server or the CLI; ``railguard.server.routes.actions`` serves it over HTTP.

The training and evaluation side of the feature stays in its layers: ``railguard.train.agent`` fits the heads,
``railguard.train.agent_data`` and ``railguard.train.everyday_tools`` write their training rows,
``railguard.eval.agent`` scores them, and ``railguard.datasets.agent`` reads the agent datasets as inputs (shared
by training and evaluation).

The old module paths (``railguard.actions``, ``railguard.agent_io``, ``railguard.agent_rules``,
``railguard.guards.agent``, ``railguard.models.agent_heads``) still import: each re-exports its new home.
"""
