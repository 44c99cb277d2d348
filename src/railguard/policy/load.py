"""Reading policies: presets and YAML files with the line of every field, ``extends`` resolved, the result
checked against :mod:`.schema` and built into a :class:`~.model.Policy`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from .model import Policy, PolicyError, build_policy
from .schema import Where, dotted, merge, validate

#: Presets shipped in the package (railguard/data/policies), by name.
PRESETS: tuple[str, ...] = ("default", "strict", "permissive", "children", "enterprise")


@dataclass(slots=True)
class Document:
    """One parsed policy document: its data, where it came from and the line of every field."""

    data: Any
    origin: str
    lines: dict[Where, int]
    base_dir: Path | None = None

    def error(self, path: Where, message: str) -> PolicyError:
        """``message`` about the value at ``path``, told at its line (or the nearest enclosing one)."""
        line = self.lines.get(path)
        while line is None and path:
            path = path[:-1]
            line = self.lines.get(path)
        where = f"{self.origin}, line {line}" if line else self.origin
        return PolicyError(f"policy {where}: {message}")


def _parse_yaml(text: str, origin: str, base_dir: Path | None) -> Document:
    import yaml

    try:
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f", line {mark.line + 1}" if mark is not None else ""
        raise PolicyError(f"policy {origin}{line}: not valid YAML: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise PolicyError(f"policy {origin}: not valid YAML: {exc}") from None
    doc = Document(data if data is not None else {}, origin, {}, base_dir)
    if node is not None:
        _walk(node, (), doc)
    return doc


def _walk(node: Any, path: Where, doc: Document) -> None:
    import yaml

    doc.lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: set[Any] = set()
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if key in seen:
                line = key_node.start_mark.line + 1
                raise PolicyError(f"policy {doc.origin}, line {line}: {dotted(path + (key,))}: duplicate key "
                                  f"'{key}' (each key may appear once)")
            seen.add(key)
            doc.lines[path + (key,)] = key_node.start_mark.line + 1
            _walk(value_node, path + (key,), doc)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, path + (i,), doc)


def preset_text(name: str) -> str:
    """The YAML of a shipped preset, as written."""
    if name not in PRESETS:
        raise PolicyError(f"unknown policy preset '{name}'; presets: {', '.join(PRESETS)}")
    return (resources.files("railguard") / "data" / "policies" / f"{name}.yaml").read_text(encoding="utf-8")


def _read(spec: str, base_dir: Path | None) -> Document:
    if spec in PRESETS:
        return _parse_yaml(preset_text(spec), f"preset '{spec}'", None)
    path = Path(spec).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    if not path.is_file():
        raise PolicyError(f"no policy file or preset named '{spec}'; presets: {', '.join(PRESETS)}")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(f"cannot read policy file {path}: {exc}") from None
    return _parse_yaml(text, str(path), path.parent)


def _resolve(doc: Document, chain: tuple[str, ...]) -> dict[str, Any]:
    """The document's settings over everything it extends (every policy but ``default`` extends ``default``)."""
    own = validate(doc.data, doc.error)
    parent = own.pop("extends", "default" if doc.origin != "preset 'default'" else None)
    if parent is None:
        return own
    if parent in chain:
        raise doc.error(("extends",), f"extends: '{parent}' extends itself (cycle: {' -> '.join(chain + (parent,))})")
    return merge(_resolve(_read(parent, doc.base_dir), chain + (parent,)), own)


def load_policy(spec: str | Path | Mapping[str, Any] | Policy) -> Policy:
    """A validated policy from a preset name, a YAML file path, a mapping in the file schema, or a Policy.

    Raises :class:`PolicyError` naming the file, line and field of the first mistake.
    """
    if isinstance(spec, Policy):
        return spec
    if isinstance(spec, Mapping):
        doc = Document(dict(spec), "<mapping>", {}, Path.cwd())
        return build_policy(_resolve(doc, ()), "<mapping>")
    if isinstance(spec, Path | str):
        text = str(spec)
        if not text.strip():
            raise PolicyError(f"a policy is a preset name ({', '.join(PRESETS)}) or a YAML file path")
        doc = _read(text, Path.cwd())
        name = text if text in PRESETS else Path(text).stem
        return build_policy(_resolve(doc, (text,)), name)
    raise PolicyError(f"a policy is a preset name, a file path or a mapping, got {type(spec).__name__}")
