"""The package's import graph: no cycles, and no module imports a layer above its own.

Layers, lowest first (a module may import its own layer and those below it):
0 ``srlab`` itself, ``errors``, ``config``, ``device``; 1 ``nets``, ``metrics``; 2 ``data``;
3 ``weights``; 4 ``infer``, ``zoo``, ``losses``; 5 ``models``; 6 ``runs``; 7 the commands
(``train``, ``evaluate``, ``prepare``, ``export``, ``compare``, ``degrade``, ``upscale``);
8 ``bench`` (nothing imports it). Every ``import`` statement counts, also those inside functions;
imports under ``if TYPE_CHECKING:`` (annotations only, never run) do not.
"""

from __future__ import annotations

import ast
from pathlib import Path

import srlab

ROOT = Path(srlab.__file__).resolve().parent
LAYERS = {
    "srlab": 0, "errors": 0, "config": 0, "device": 0,
    "nets": 1, "metrics": 1,
    "data": 2,
    "weights": 3,
    "infer": 4, "zoo": 4, "losses": 4,
    "models": 5,
    "runs": 6,
    "train": 7, "evaluate": 7, "prepare": 7, "export": 7, "compare": 7, "degrade": 7, "upscale": 7,
    "bench": 8,
}  # fmt: skip


def modules() -> dict[str, Path]:
    """Dotted name -> file of every module of the package."""
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def import_graph() -> dict[str, set[str]]:
    """Module -> the srlab modules it imports (``from srlab.x import name`` counts as an import of ``srlab.x``)."""
    mods = modules()

    def known(name: str) -> str:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name

    graph: dict[str, set[str]] = {m: set() for m in mods}
    for name, path in mods.items():
        tree = ast.parse(path.read_text())
        typing_only = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If) and _is_type_checking(block.test)
                       for stmt in block.body for n in ast.walk(stmt)}
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue  # `if TYPE_CHECKING:` imports are for annotations, never run
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [f"{node.module}.{a.name}" for a in node.names]
            else:
                continue
            graph[name] |= {known(t) for t in targets if t.startswith("srlab")} - {name, ""}
    return graph


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def layer(module: str) -> int:
    parts = module.split(".")
    return LAYERS[parts[1] if len(parts) > 1 else "srlab"]


def test_every_top_level_name_has_a_layer_and_the_top_level_stays_small() -> None:
    top = {p.stem for p in ROOT.glob("*.py")} | {p.name for p in ROOT.iterdir() if (p / "__init__.py").is_file()}
    assert top - {"__init__", "__main__"} <= set(LAYERS), top - set(LAYERS)
    assert len(list(ROOT.glob("*.py"))) <= 12


def test_no_module_imports_a_higher_layer() -> None:
    upward = [f"{m} ({layer(m)}) -> {t} ({layer(t)})" for m, ts in import_graph().items() for t in ts
              if layer(t) > layer(m)]
    assert upward == []


def test_no_import_cycles() -> None:
    graph, index, low, stack, on_stack, cycles = import_graph(), {}, {}, [], set(), []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
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
                cycles.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    assert cycles == []
