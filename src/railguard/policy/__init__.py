"""User policy: which tasks and categories count, their thresholds, and what happens when one fires.

A policy is a YAML file (or a preset shipped in ``railguard/data/policies``); every key is optional and an
unknown key is an error. Each rule has an *action*, mildest first: ``allow`` (reported, nothing else),
``flag`` (reported and marked for review; ``verdict.flagged`` stays false), ``redact`` (PII and secrets
only: the verdict carries the text with those spans replaced) and ``block`` (``verdict.flagged`` is
true). ``verdict.action`` is the strongest action any rule took, ``verdict.explanation`` lists the rules
that fired with their score and threshold.

.. code-block:: yaml

    extends: default            # a preset or another policy file; every policy extends `default`
    description: what this policy is for
    on_error: block             # a guard that cannot decide: block (fail-closed, default) or allow
    tasks:                      # threshold default: the model's calibrated threshold
      prompt_harmful: {threshold: 0.6, action: block}
      injection: {action: flag}
      refusal: {enabled: false} # drop a task from the verdict altogether
    categories:
      default: {threshold: 0.5, action: flag}   # every category not named below
      sexual: {threshold: 0.7, action: block}
    pii: {entities: [EMAIL_ADDRESS, CREDIT_CARD], action: redact, threshold: 0.5, redaction: type}
    secrets: {action: block}
    custom_categories:
      - name: investment_advice
        description: asking which stocks or crypto to buy
        examples: ["Which stocks should I buy this week?"]
        negative_examples: ["What is a stock?"]
        threshold: 0.5
        action: block

``extends`` merges: mappings key by key (the child wins), lists replaced whole, custom categories by name.
Naming ``pii`` or ``secrets`` in a file switches it on unless that file says ``enabled: false``.

The package: :mod:`.schema` declares every section and field once (one validator and one merger walk it),
:mod:`.load` reads presets and YAML files with the line of every field and resolves ``extends``, :mod:`.model`
holds the values (:class:`Policy` and its rules). The wrapper that applies a policy is
:class:`railguard.guards.policy.PolicyGuard`, built by :func:`railguard.load.under_policy`.
"""

from __future__ import annotations

from .load import PRESETS, load_policy, preset_text
from .model import (
    CUSTOM_ACTION,
    CUSTOM_THRESHOLD,
    ON_ERROR,
    PII_ENTITIES,
    REDACTION_STYLES,
    CustomCategory,
    PiiRule,
    Policy,
    PolicyError,
    Rule,
    SecretsRule,
)

__all__ = [
    "PRESETS", "ON_ERROR", "REDACTION_STYLES", "PII_ENTITIES", "CUSTOM_THRESHOLD", "CUSTOM_ACTION",
    "PolicyError", "Rule", "PiiRule", "SecretsRule", "CustomCategory", "Policy", "load_policy", "preset_text",
]
