"""The layers of src/dsqn (docs/architecture.md): the import graph has no cycle, every import
goes down (or sideways) the layer table, and no module imports another's private names.

Imports are read from the source with ``ast`` (every ``import`` statement, also inside functions
and ``TYPE_CHECKING`` blocks), so that a lazy import cannot hide a dependency. The root package
``dsqn`` is the public facade: Python imports it before any submodule, and it re-exports
:func:`dsqn.load_agent` lazily; an import of one of its names is an edge to the module that
defines the name, and it may import nothing of ``dsqn`` at module level (so that
``import dsqn.spiking`` stays free of flax). Relative imports are resolved to the modules they
name.
"""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
ROOT = "dsqn"

LAYERS: tuple[tuple[str, ...], ...] = (
    ("dsqn.spiking", "dsqn.models.convolution"),
    (
        "dsqn.models.networks",
        "dsqn.networks",
        "dsqn.models.conversion",
        "dsqn.models.nir",
        "dsqn.config.games",
    ),
    (
        "dsqn.config",
        "dsqn.runtime",
        "dsqn.learning.replay",
        "dsqn.learning.losses",
        "dsqn.learning.evaluation_stats",
    ),
    ("dsqn.envs",),
    (
        "dsqn.learning.agent",
        "dsqn.learning.evaluation",
        "dsqn.training.chunk",
        "dsqn.training.logs",
        "dsqn.training.memory_budget",
        "dsqn.rundir.checkpoints",
    ),
    ("dsqn.rundir",),
    (
        "dsqn.training.loop",
        "dsqn.training.launch",
        "dsqn.training.write_failures",
        "dsqn.analyses",
    ),
    ("dsqn.reports",),
    ("dsqn.cli",),
)
"""Layer 0 first; a module may import modules of its own layer or of lower ones. A name stands
for the module and, for a package, everything in it."""


def module_name(path: Path) -> str:
    """``.../dsqn/envs/stepping.py`` -> ``dsqn.envs.stepping`` (from the last ``dsqn`` folder)."""
    parts = path.with_suffix("").parts
    parts = parts[len(parts) - 1 - parts[::-1].index(ROOT) :]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted((SRC / ROOT).rglob("*.py"))}


def imported_module(node: ast.ImportFrom, source: str, is_package: bool) -> str | None:
    """The absolute name of the module ``from M import ...`` reads, relative imports resolved
    against ``source`` (a package's ``__init__`` when ``is_package``)."""
    if node.level == 0:
        return node.module
    package = source.split(".") if is_package else source.split(".")[:-1]
    if node.level - 1 > len(package) - 1:
        raise AssertionError(f"{source}: a relative import goes above the package root")
    base = package[: len(package) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports(path: Path, known: set[str], *, top_level: bool = False) -> set[tuple[str, str]]:
    """``(module, name)`` of every import of a ``dsqn`` module in ``path`` (with ``top_level``,
    only those that importing the module runs); ``name`` is the imported name for
    ``from M import name`` when it is not itself a module, else ''."""
    tree = ast.parse(path.read_text())
    source, is_package = module_name(path), path.name == "__init__.py"
    found = set()
    for node in tree.body if top_level else ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {(a.name, "") for a in node.names if a.name.split(".")[0] == ROOT}
        elif isinstance(node, ast.ImportFrom):
            module = imported_module(node, source, is_package)
            if not module or module.split(".")[0] != ROOT:
                continue
            for alias in node.names:
                sub = f"{module}.{alias.name}"
                found.add((sub, "") if sub in known else (module, alias.name))
    return found


def root_exports(mods: dict[str, Path]) -> set[str]:
    """The modules the root package re-exports names from (its lazy imports)."""
    return {target for target, _ in imports(mods[ROOT], set(mods))} - {ROOT}


def graph(mods: dict[str, Path], *, top_level: bool = False) -> dict[str, set[str]]:
    """Module -> the modules it imports; an import of the root package's names goes to the
    modules that define them."""
    known, exported = set(mods), root_exports(mods)
    edges = {}
    for name, path in mods.items():
        targets = set()
        for target, imported in imports(path, known, top_level=top_level):
            targets |= exported if target == ROOT and imported else {target}
        edges[name] = targets - {name, ROOT}
    return edges


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


def test_relative_imports_resolve_to_the_modules_they_name(tmp_path):
    package = tmp_path / "dsqn" / "pkg"
    package.mkdir(parents=True)
    (package / "mod.py").write_text(
        "from . import sibling\nfrom .sibling import f\nfrom .. import config\n"
        "from ..envs import stepping\n"
    )
    (package / "__init__.py").write_text("from .mod import g\nfrom . import mod\n")
    known = {"dsqn.pkg.sibling", "dsqn.pkg.mod", "dsqn.config", "dsqn.envs.stepping"}
    assert imports(package / "mod.py", known) == {
        ("dsqn.pkg.sibling", ""),
        ("dsqn.pkg.sibling", "f"),
        ("dsqn.config", ""),
        ("dsqn.envs.stepping", ""),
    }
    assert imports(package / "__init__.py", known) == {("dsqn.pkg.mod", "g"), ("dsqn.pkg.mod", "")}


def test_every_module_is_in_a_layer():
    """A new module needs a place in the table (and in docs/architecture.md); a package's
    ``__init__`` that imports nothing of dsqn needs none."""
    edges, mods = graph(modules()), modules()
    unplaced = []
    for name in mods:
        try:
            layer_of(name)
        except AssertionError:
            if edges[name] and name != ROOT:
                unplaced.append(name)
    assert not unplaced, f"modules in no layer of LAYERS: {unplaced}"


def test_the_root_packages_lazy_exports_resolve(tmp_path):
    """Every name of ``dsqn.__all__`` is the object of the module the root imports it from, and
    an import of it counts as a dependency on that module."""
    import dsqn
    from dsqn.rundir import loading

    mods = modules()
    assert root_exports(mods) == {"dsqn.rundir.loading"}
    for name in dsqn.__all__:
        assert getattr(dsqn, name) is getattr(loading, name)
    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        dsqn.nonexistent  # noqa: B018
    user = tmp_path / "dsqn" / "user.py"
    user.parent.mkdir()
    user.write_text("from dsqn import load_agent\n")
    assert graph({**mods, "dsqn.user": user})["dsqn.user"] == {"dsqn.rundir.loading"}


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


@pytest.mark.parametrize(
    "module", ["dsqn.training.chunk", "dsqn.rundir.loading", "dsqn.rundir.files"]
)
def test_training_and_loading_do_not_import_evaluation_or_analysis(module):
    """Importing the training system does not import the evaluation module (it builds its envs
    from dsqn.envs); importing the loader imports neither envs (envpool) nor evaluation."""
    forbidden = {"dsqn.learning.evaluation", "dsqn.analyses"}
    if module != "dsqn.training.chunk":
        forbidden |= {"dsqn.envs", "dsqn.training.chunk"}
    edges = graph(modules(), top_level=True)
    reached, todo = set(), [module]
    while todo:  # everything importing the module imports, directly or not
        for target in edges[todo.pop()]:
            if target not in reached:
                reached.add(target)
                todo.append(target)
    bad = {m for m in reached if any(m == f or m.startswith(f + ".") for f in forbidden)}
    assert not bad, f"importing {module} imports {sorted(bad)}"
