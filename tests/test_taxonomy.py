"""The one mapping table from our categories to WildGuard, Llama Guard 3 and OpenAI names."""

from __future__ import annotations

from railguard import taxonomy as tx


def test_every_category_maps_to_known_names():
    for c in tx.CATEGORIES:
        assert set(c.wildguard) <= set(tx.WILDGUARD_CATEGORIES), c.name
        assert set(c.llama_guard) <= set(tx.LLAMA_GUARD_CATEGORIES), c.name
        assert set(c.openai) <= set(tx.OPENAI_CATEGORIES), c.name
        assert c.wildguard and c.llama_guard, f"{c.name} has no WildGuard or Llama Guard counterpart"


def test_projections_take_the_max_and_fill_every_name():
    scores = dict.fromkeys(tx.CATEGORY_NAMES, 0.0) | {"crime": 0.2, "fraud": 0.7, "self_harm": 0.9}
    oa = tx.to_openai(scores)
    assert list(oa) == list(tx.OPENAI_CATEGORIES)
    assert oa["illicit"] == 0.7  # crime, cybercrime and fraud all map to illicit: the max wins
    assert oa["self-harm"] == oa["self-harm/intent"] == oa["self-harm/instructions"] == 0.9
    assert oa["sexual"] == 0.0
    lg = tx.to_llama_guard(scores)
    assert lg["S2"] == 0.7 and lg["S11"] == 0.9 and set(lg) == set(tx.LLAMA_GUARD_CATEGORIES)
    wg = tx.to_wildguard(scores)
    assert wg["fraud_assisting_illegal_activities"] == 0.7 and len(wg) == 13


def test_threatening_needs_both_parents():
    oa = tx.to_openai({"hate": 0.9, "violence": 0.3})
    assert oa["hate/threatening"] == 0.3
    assert tx.to_openai({"hate": 0.9})["hate/threatening"] == 0.0


def test_sexual_minors_also_counts_as_sexual():
    oa = tx.to_openai({"sexual_minors": 0.8})
    assert oa["sexual/minors"] == 0.8 and oa["sexual"] == 0.8
