"""The policy schema, walked: in every section, at every depth, an unknown key and a value of the wrong type are
each one error that names the field and its line in the file. The cases are made from the schema itself, so a
new section or field is covered the day it is declared."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from railguard.policy import PolicyError, load_policy
from railguard.policy.schema import SCHEMA, SECTIONS, Listing, Name, Record, Table, Texts, Where, dotted

#: Valid values for the leaves a record requires, so that a mistake in a sibling field is the one reported.
VALID = {Name: "advice", Texts: ["an example"]}
WRONG_LEAF = {"oops": 1}  # a mapping is the wrong type for every leaf
WRONG_CONTAINER = 42  # and a number for every record, table and listing


def _containers(spec: Any, path: Where) -> Iterator[tuple[Where, Any]]:
    yield path, spec
    if isinstance(spec, Record):
        for key, field in spec.fields.items():
            if isinstance(field, Record | Table | Listing):
                yield from _containers(field, path + (key,))
    elif isinstance(spec, Table):
        yield from _containers(spec.entry, path + (spec.known[0],))
    elif isinstance(spec, Listing):
        yield from _containers(spec.entry, path + (0,))


def _required(record: Record, but: str | None = None) -> dict[str, Any]:
    return {key: VALID[type(record.fields[key])] for key in record.required if key != but}


def _document(path: Where, value: Any, siblings: dict[str, Any] | None = None) -> Any:
    """The smallest document with ``value`` at ``path`` (and ``siblings`` beside it)."""
    node: Any = {**(siblings or {}), path[-1]: value} if path and isinstance(path[-1], str) else value
    for part in reversed(path[:-1] if path and isinstance(path[-1], str) else path):
        node = [node] if isinstance(part, int) else {part: node}
    return node


def _cases() -> Iterator[tuple[str, Any, Where]]:
    """(id, document, the path the error must name) for each mistake."""
    for path, spec in _containers(SCHEMA, ()):
        where = dotted(path) or "the top level"
        if isinstance(spec, Record):
            yield f"unknown key in {where}", _document(path + ("no_such_key",), 1), path + ("no_such_key",)
            for key, field in spec.fields.items():
                wrong = WRONG_CONTAINER if isinstance(field, Record | Table | Listing) else WRONG_LEAF
                yield (f"wrong type of {dotted(path + (key,))}",
                       _document(path + (key,), wrong, _required(spec, but=key)), path + (key,))
        elif isinstance(spec, Table):
            yield f"unknown name in {where}", _document(path + ("no_such_name",), {}), path + ("no_such_name",)


CASES = {case_id: (document, path) for case_id, document, path in _cases()}


def test_the_cases_reach_every_section():
    wrong_types = {path[0] for case_id, (document, path) in CASES.items() if case_id.startswith("wrong")}
    unknown_keys = {path[0] for case_id, (document, path) in CASES.items() if case_id.startswith("unknown")
                    and len(path) > 1}
    assert wrong_types == set(SECTIONS)
    assert unknown_keys == {s for s in SECTIONS if isinstance(SCHEMA.fields[s], Record | Table | Listing)}


@pytest.mark.parametrize("case_id", sorted(CASES))
def test_a_mistake_anywhere_is_one_error_naming_its_field_and_line(tmp_path: Path, case_id: str):
    document, path = CASES[case_id]
    text = yaml.safe_dump(document, default_flow_style=None, sort_keys=False)
    line = len(text.splitlines())  # one level a line: the mistake is on the last
    file = tmp_path / "policy.yaml"
    file.write_text(text, encoding="utf-8")
    with pytest.raises(PolicyError) as err:
        load_policy(file)
    message = str(err.value)
    assert message.startswith(f"policy {file}, line {line}: {dotted(path)}"), (text, message)


def test_the_same_mistake_in_a_mapping_names_the_field_without_a_line():
    with pytest.raises(PolicyError, match=r"^policy <mapping>: cascade\.route: 'fast' is not one of"):
        load_policy({"cascade": {"route": "fast"}})


def test_the_first_mistake_in_the_file_is_the_one_reported(tmp_path: Path):
    file = tmp_path / "policy.yaml"
    file.write_text("tasks:\n  injection: {action: nuke}\non_error: maybe\n", encoding="utf-8")
    with pytest.raises(PolicyError, match="line 2: tasks.injection.action"):
        load_policy(file)


def test_extends_merges_each_section_as_the_schema_says(tmp_path: Path):
    (tmp_path / "base.yaml").write_text(
        "extends: strict\ncustom_categories:\n  - name: a\n    examples: [x]\n  - name: b\n    examples: [y]\n"
        "cascade: {k: 3, margin: 0.2}\npii: {action: flag, threshold: 0.3}\n", encoding="utf-8")
    (tmp_path / "child.yaml").write_text(
        "extends: base.yaml\ncustom_categories:\n  - name: b\n    examples: [z]\n  - name: c\n    examples: [w]\n"
        "cascade: {route: margin}\npii: {threshold: 0.6}\ntasks: {injection: {threshold: 0.2}}\n", encoding="utf-8")
    policy = load_policy(tmp_path / "child.yaml")
    assert [(c.name, c.examples) for c in policy.custom_categories] == [("a", ("x",)), ("b", ("z",)), ("c", ("w",))]
    assert policy.cascade == {"route": "margin"}  # a cascade is replaced whole
    assert (policy.pii.action, policy.pii.threshold, policy.pii.enabled) == ("flag", 0.6, True)  # key by key
    strict = load_policy("strict").tasks["injection"]
    assert policy.tasks["injection"] == type(strict)(action=strict.action, threshold=0.2)
