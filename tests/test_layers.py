"""The layers of src/dsqn (docs/architecture.md): the import graph has no cycle, every import
goes down (or sideways) the layer table, and no module imports another's private names.

Imports are read from the source with ``ast`` (every ``import`` statement, also inside functions
and ``TYPE_CHECKING`` blocks), so that a lazy import cannot hide a dependency. The root package
``dsqn`` is the public facade: Python imports it before any submodule, and it re-exports
:func:`dsqn.load_agent` lazily; edges into it are not dependencies, and it may import nothing of
``dsqn`` at module level (so that ``import dsqn.spiking`` stays free of flax).
"""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
ROOT = "dsqn"

LAYERS: tuple[tuple[str, ...], ...] = (
    ("dsqn.spiking", "dsqn.convolution"),
    ("dsqn.networks", "dsqn.conversion", "dsqn.scores", "dsqn.nir"),
    (
        "dsqn.config",
        "dsqn.prng",
        "dsqn.sweep",
        "dsqn.replay",
        "dsqn.losses",
        "dsqn.distributed",
        "dsqn.versions",
        "dsqn.precision",
    ),
    ("dsqn.envs",),
    ("dsqn.agent", "dsqn.evaluate", "dsqn.train", "dsqn.checkpoint", "dsqn.logs", "dsqn.memory"),
    ("dsqn.run_dir", "dsqn.run_lock", "dsqn.trained"),
    (
        "dsqn.runner",
        "dsqn.reevaluate",
        "dsqn.energy",
        "dsqn.convert",
        "dsqn.robustness",
        "dsqn.video",
    ),
    ("dsqn.aggregates", "dsqn.report", "dsqn.plots"),
    ("dsqn.cli",),
)
"""Layer 0 first; a module may import modules of its own layer or of lower ones. A name stands
for the module and, for a package, everything in it."""


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted((SRC / ROOT).rglob("*.py"))}


def imports(path: Path, known: set[str], *, top_level: bool = False) -> set[tuple[str, str]]:
    """``(module, name)`` of every import of a ``dsqn`` module in ``path`` (with ``top_level``,
    only those that importing the module runs); ``name`` is the imported name for
    ``from M import name`` when it is not itself a module, else ''."""
    tree = ast.parse(path.read_text())
    found = set()
    for node in tree.body if top_level else ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {(a.name, "") for a in node.names if a.name.split(".")[0] == ROOT}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] != ROOT:
                continue
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add((sub, "") if sub in known else (node.module, alias.name))
    return found


def graph(mods: dict[str, Path], *, top_level: bool = False) -> dict[str, set[str]]:
    known = set(mods)
    return {
        name: {
            target
            for target, _ in imports(path, known, top_level=top_level)
            if target not in (name, ROOT)
        }
        for name, path in mods.items()
    }


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the directed graph as a path ``[a, b, ..., a]``, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = 2
        path.pop()
        return None

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def layer_of(module: str) -> int:
    for i, layer in enumerate(LAYERS):
        if any(module == m or module.startswith(m + ".") for m in layer):
            return i
    raise AssertionError(f"{module} is in no layer of LAYERS: add it (and to docs/architecture.md)")


def test_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_the_import_graph_has_no_cycle():
    edges = graph(modules())
    assert edges["dsqn.cli"], "the import reader found no imports: it is broken"
    cycle = find_cycle(edges)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_imports_go_down_the_layers():
    upward = [
        f"{source} (layer {layer_of(source)}) imports {target} (layer {layer_of(target)})"
        for source, targets in graph(modules()).items()
        if source != ROOT
        for target in targets
        if layer_of(target) > layer_of(source)
    ]
    assert not upward, "\n".join(upward)


def test_no_module_imports_another_modules_private_names():
    mods = modules()
    private = [
        f"{source} imports {name} from {target}"
        for source, path in mods.items()
        for target, name in imports(path, set(mods))
        if name.startswith("_") and target != source
    ]
    assert not private, "\n".join(private)


def test_the_root_package_imports_nothing_of_dsqn_at_module_level():
    tree = ast.parse((SRC / ROOT / "__init__.py").read_text())
    top = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    assert not top, "dsqn/__init__.py must re-export lazily (module __getattr__)"


@pytest.mark.parametrize("module", ["dsqn.train", "dsqn.trained", "dsqn.run_dir"])
def test_training_and_loading_do_not_import_evaluation_or_analysis(module):
    """Importing the training system does not import the evaluation module (it builds its envs
    from dsqn.envs); importing the loader imports neither envs (envpool) nor evaluation."""
    forbidden = {"dsqn.evaluate", "dsqn.energy", "dsqn.convert", "dsqn.robustness"}
    if module != "dsqn.train":
        forbidden |= {"dsqn.envs", "dsqn.train"}
    edges = graph(modules(), top_level=True)
    reached, todo = set(), [module]
    while todo:  # everything importing the module imports, directly or not
        for target in edges[todo.pop()]:
            if target not in reached:
                reached.add(target)
                todo.append(target)
    bad = {m for m in reached if any(m == f or m.startswith(f + ".") for f in forbidden)}
    assert not bad, f"importing {module} imports {sorted(bad)}"
