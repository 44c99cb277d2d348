"""The shape of the package, read from its source: the import graph has no cycles, runtime code does not import
training code, and no caller probes a guard's attributes (capabilities are declared in railguard/guard.py)."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "railguard"

#: Imports allowed to point from one layer into another that imports it back, each with its reason. Keep empty
#: where possible; an entry names the edge ("module -> module") that closes the loop.
KNOWN_LAYER_EXCEPTIONS: dict[str, str] = {}
#: Layers that must not import the training package at all (everything that runs at inference time).
TRAINING = "railguard.train"
MAY_IMPORT_TRAINING = ("railguard.train", "railguard.eval", "railguard.cli")


def _modules() -> dict[str, tuple[Path, bool]]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return out


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    """Nodes under ``if TYPE_CHECKING:`` (not imported at run time)."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
            skipped |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    return skipped


def import_graph() -> dict[str, set[str]]:
    """module -> the railguard modules it imports, at module level or inside functions (``import_module`` of a
    literal name included). Importing ``a.b.c`` is an edge to ``a.b.c`` only (not to the packages above it), and
    a name found by computation (the registry's table of lazy backends, the CLI's ``import_extra``) is no edge."""
    modules = _modules()

    def known(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for module, (path, is_package) in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skipped = _type_checking_nodes(tree)
        package = module if is_package else module.rpartition(".")[0]
        targets: set[str | None] = set()
        for node in ast.walk(tree):
            if id(node) in skipped:
                continue
            if isinstance(node, ast.Import):
                targets |= {known(a.name) for a in node.names if a.name.startswith("railguard")}
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                if source.startswith("railguard"):
                    for a in node.names:  # `from . import x` imports the module x; `from .m import f`, module m
                        target = known(f"{source}.{a.name}")
                        targets.add(target if target != module else known(source))
            elif (isinstance(node, ast.Call) and ast.unparse(node.func) == "importlib.import_module" and node.args
                  and isinstance(node.args[0], ast.Constant) and str(node.args[0].value).startswith("railguard")):
                targets.add(known(node.args[0].value))
        graph[module] = {t for t in targets if t is not None and t != module}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_import_graph_finds_a_planted_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    graph = import_graph()
    assert "railguard.guard" in graph["railguard.guards.cascade"]  # module level
    assert "railguard.guards.policy" in graph["railguard.load"]  # inside a function


def test_no_import_cycles_in_the_package():
    assert cycles(import_graph()) == []


def test_runtime_code_does_not_import_training_code():
    graph = import_graph()
    offending = sorted(f"{m} -> {t}" for m, targets in graph.items() for t in targets
                       if t.startswith(TRAINING) and not m.startswith(MAY_IMPORT_TRAINING))
    assert offending == []


def test_evaluation_and_training_do_not_import_each_other_in_a_loop():
    """Training may evaluate (train/improve.py reads the benchmarks); evaluation reads the shared datasets,
    not the training package, but for the known exceptions listed above."""
    graph = import_graph()
    eval_to_train = sorted(f"{m} -> {t}" for m, targets in graph.items() for t in targets
                           if m.startswith("railguard.eval") and t.startswith(TRAINING))
    assert eval_to_train == sorted(KNOWN_LAYER_EXCEPTIONS)


#: Packages below the edges: each may import nothing from the packages named with it (the CLI and the server sit
#: on top of them, never the other way round).
MUST_NOT_IMPORT: dict[str, tuple[str, ...]] = {
    "railguard.batch": ("railguard.cli", "railguard.server"),
    "railguard.server.proxy": ("railguard.cli", "railguard.server.app", "railguard.server.routes"),
    "railguard.audit": ("railguard.cli", "railguard.server", "railguard.train", "railguard.eval"),
    "railguard.agent": ("railguard.cli", "railguard.server", "railguard.train", "railguard.eval"),
}


def test_lower_packages_import_nothing_from_the_edges():
    graph = import_graph()
    offending = sorted(f"{m} -> {t}" for m, targets in graph.items() for t in targets
                       for lower, edges in MUST_NOT_IMPORT.items()
                       if (m == lower or m.startswith(lower + ".")) and t.startswith(edges))
    assert offending == []


#: Names that hold a guard in the callers (a tier of a cascade, a wrapper's inner guard, ...).
GUARD_NAMES = ("guard", "tier", "inner", "cheap", "heavy", "backend", "wrapped")


def _names_a_guard(node: ast.expr) -> bool:
    name = node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else ""
    return any(part in name.lower() for part in GUARD_NAMES)


def test_no_guard_is_probed_with_getattr_or_hasattr_outside_the_capability_protocols():
    """A caller asks ``isinstance(guard, HasThresholds)`` (railguard/guard.py), never ``getattr(guard, ...)``.
    The scan looks at every getattr/hasattr whose first argument is named like a guard."""
    probes = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == PACKAGE / "guard.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id in ("getattr", "hasattr") and node.args and _names_a_guard(node.args[0])):
                probes.append(f"{path.relative_to(PACKAGE)}:{node.lineno}: {ast.unparse(node)}")
    assert probes == []


def test_the_probe_scan_sees_a_probe():
    tree = ast.parse("getattr(self.inner, 'thresholds', None)\nhasattr(tier, 'languages')\ngetattr(row, 'x')")
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
    assert [_names_a_guard(c.args[0]) for c in calls] == [True, True, False]


def test_every_capability_protocol_says_what_it_is_made_of():
    """The attribute table a wrapper passes capabilities through by lists exactly each protocol's members."""
    from railguard import guard as capabilities

    for protocol, attributes in capabilities.CAPABILITY_ATTRIBUTES.items():
        members = set(protocol.__annotations__) | {n for n, v in vars(protocol).items()
                                                   if callable(v) and not n.startswith("_")}
        assert members == set(attributes), protocol.__name__


#: Modules that moved, by their old import path: each old path is a thin re-export of its new home.
MOVED = {
    "railguard.moderate": "railguard.batch.local",
    "railguard.judging": "railguard.batch.core",
    "railguard.ray_engine": "railguard.batch.ray",
    "railguard.io": "railguard.batch.sources",
    "railguard.outputs": "railguard.batch.sinks",
    "railguard.server.audit": "railguard.audit",
    "railguard.server.apis": "railguard.server.proxy.apis",
    "railguard.server.conversation": "railguard.server.proxy.conversation",
    "railguard.actions": "railguard.agent.actions",
    "railguard.agent_io": "railguard.agent.io",
    "railguard.agent_rules": "railguard.agent.rules",
    "railguard.guards.agent": "railguard.agent.guard",
    "railguard.models.agent_heads": "railguard.agent.heads",
}


def test_old_import_paths_still_give_the_same_objects():
    for old, new in MOVED.items():
        if old.startswith("railguard.server.") and new != "railguard.audit":
            pytest.importorskip("fastapi")
        old_module, new_module = importlib.import_module(old), importlib.import_module(new)
        assert old_module.__all__, old
        for name in old_module.__all__:
            assert getattr(old_module, name) is getattr(new_module, name), f"{old}.{name}"


#: The layers the README's Layout section draws, top to bottom: a module may import from its own layer and the
#: ones below, never above. The most specific prefix decides ("railguard.agent.actions", the Action type, is a
#: leaf while the rest of agent/ is a guard).
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("entry points", ("railguard.cli", "railguard.server", "railguard.integrations")),
    ("jobs", ("railguard.batch", "railguard.eval", "railguard.train")),
    ("composition", ("railguard.load",)),
    ("guards", ("railguard.guards", "railguard.agent", "railguard.media", "railguard.policy",
                "railguard.custom_categories")),
    ("models and data", ("railguard.models", "railguard.datasets", "railguard.lang", "railguard.evasion",
                         "railguard.rails", "railguard.conversation", "railguard.audit")),
    ("leaves", ("railguard.types", "railguard.guard", "railguard.verdicts", "railguard.errors", "railguard.config",
                "railguard.taxonomy", "railguard.progress", "railguard.registry", "railguard.agent.actions")),
)


def layer_of(module: str) -> int | None:
    found = [(len(p), i) for i, (_, prefixes) in enumerate(LAYERS) for p in prefixes
             if module == p or module.startswith(p + ".")]
    return max(found)[1] if found else None


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    """Imports from a higher layer; the old import paths (re-exports of their new homes) and the package root
    (``__version__``, the public API) are not layered."""
    return sorted(f"{m} -> {t}" for m, targets in graph.items() if m not in MOVED for t in targets
                  if layer_of(m) is not None and layer_of(t) is not None and layer_of(t) < layer_of(m))


def test_layers_point_down():
    graph = import_graph()
    unlayered = sorted(m for m in graph if layer_of(m) is None and m != "railguard" and m not in MOVED)
    assert unlayered == [], "modules the layer table does not place"
    assert upward_imports(graph) == []


def test_the_layer_check_sees_an_upward_import():
    assert upward_imports({"railguard.types": {"railguard.server.app"}}) == ["railguard.types -> railguard.server.app"]
