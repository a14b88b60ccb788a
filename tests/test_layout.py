"""The layout of the code: imports run one way (``search`` -> ``effdet_graph`` -> ``graphspec``) with no circle
between modules nor between subpackages, code outside a package uses its public API, ``import search`` loads neither
torch nor a search library, and the runnable search scripts' folder holds no module that would shadow an installed
one when a script runs from it."""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("graphspec", "effdet_graph", "search")
#: What each package may import: the layers below it.
LAYERS = {"graphspec": set(), "effdet_graph": {"graphspec"}, "search": {"graphspec", "effdet_graph"}}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _runtime_imports(tree: ast.Module, module: str, is_package: bool, modules: set[str]) -> Iterator[str]:
    """The modules ``module`` imports when it is imported: top-level statements, ``if TYPE_CHECKING`` left out
    (imports inside functions run later, on a call). ``from package import submodule`` imports the submodule;
    ``from module import name``, the module."""
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        for statement in ast.walk(node) if isinstance(node, (ast.If, ast.Try)) else [node]:
            if isinstance(statement, ast.Import):
                yield from (alias.name for alias in statement.names)
            elif isinstance(statement, ast.ImportFrom):
                base = statement.module or ""
                if statement.level:
                    anchor = module.split(".") if is_package else module.split(".")[:-1]
                    base = ".".join(anchor[: len(anchor) - statement.level + 1] + ([base] if base else []))
                for alias in statement.names:
                    yield f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base


def import_graph() -> nx.DiGraph:
    """Module -> module it imports at import time, over this project's packages."""
    files = {_module_name(path): path for package in PACKAGES for path in (ROOT / package).rglob("*.py")}
    graph = nx.DiGraph()
    graph.add_nodes_from(files)
    for module, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for imported in _runtime_imports(tree, module, path.name == "__init__.py", set(files)):
            if imported in files and imported != module:
                graph.add_edge(module, imported)
    return graph


def test_no_module_imports_itself_through_a_circle():
    cycles = list(nx.simple_cycles(import_graph()))
    assert cycles == [], "import circles: " + "; ".join(" -> ".join([*c, c[0]]) for c in cycles[:5])


def subpackage(module: str) -> str:
    """The subpackage a module belongs to: its first two name parts (``effdet_graph.model.detector`` ->
    ``effdet_graph.model``, ``search.space.kinds.edges`` -> ``search.space``); a top-level module is itself."""
    return ".".join(module.split(".")[:2])


def test_no_subpackage_imports_itself_through_a_circle():
    """Modules may import each other one way and their subpackages still go round (``a.x -> b.y``, ``b.z -> a.w``):
    then neither subpackage can be read, tested or imported without the other."""
    graph = nx.DiGraph()
    for a, b in import_graph().edges:
        if subpackage(a) != subpackage(b):
            graph.add_edge(subpackage(a), subpackage(b))
    cycles = list(nx.simple_cycles(graph))
    assert cycles == [], "subpackage circles: " + "; ".join(" -> ".join([*c, c[0]]) for c in cycles[:5])


def _all_of(module: str) -> set[str] | None:
    """The names of ``module``'s ``__all__`` (a literal list), or ``None`` where it has none."""
    path = ROOT / module.replace(".", "/")
    path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets):
            return set(ast.literal_eval(node.value))
    return None


def _imported_names(folders: tuple[str, ...]) -> Iterator[tuple[str, str, str]]:
    """``(importer, module, name)`` of every ``from effdet_graph... / search... import name`` in ``folders``, at any
    depth (in functions and ``if TYPE_CHECKING`` too), ``name`` a submodule left out."""
    files = {_module_name(path): path for package in PACKAGES for path in (ROOT / package).rglob("*.py")}
    for folder in folders:
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ImportFrom) and not node.level and node.module in files:
                    for alias in node.names:
                        if f"{node.module}.{alias.name}" not in files:
                            yield _module_name(path), node.module, alias.name


def _is_package(module: str) -> bool:
    return (ROOT / module.replace(".", "/") / "__init__.py").is_file()


def test_code_outside_a_package_uses_its_public_api():
    """What the project's code (effdet_graph, search, benchmarks, examples) imports from a subpackage other than its
    own, or from another package's top-level module, is named in its ``__all__``; code outside ``effdet_graph``
    imports it through the facade, a subpackage or a top-level module, never a module inside a subpackage; and
    nothing, tests included, imports a private name."""
    everywhere = _imported_names((*PACKAGES, "benchmarks", "examples", "tests"))
    assert [f"{who}: {module}.{name}" for who, module, name in everywhere if name.startswith("_")] == []
    hidden, deep = [], []
    for who, module, name in _imported_names((*PACKAGES, "benchmarks", "examples")):
        if module.count(".") > 1 and module.startswith("effdet_graph.") and not who.startswith("effdet_graph"):
            deep.append(f"{who}: {module}")
        package = module if _is_package(module) else module.rsplit(".", 1)[0]
        if package in PACKAGES:  # a top-level module: public to the other packages where it has an __all__
            outside, api = who.split(".")[0] != package, module
        else:  # a subpackage: public outside it
            outside, api = who != package and not who.startswith(package + "."), package
        if module in PACKAGES or not outside:  # the facade (an import checks its names), or inside the package
            continue
        public = _all_of(api)
        if public is None and api == module:  # a top-level module without __all__ (search.run, say)
            public = {name}
        if name not in (public or set()):
            hidden.append(f"{who}: {module}.{name}")
    assert hidden == [], "used outside its package, missing from the package's __all__"
    assert deep == [], "imported from a module inside an effdet_graph subpackage"


def test_imports_run_one_way():
    upward = [
        f"{a} imports {b}"
        for a, b in import_graph().edges
        if a.split(".")[0] != b.split(".")[0] and b.split(".")[0] not in LAYERS[a.split(".")[0]]
    ]
    assert upward == []


def test_the_import_graph_sees_imports():
    """The graph is not empty by accident: it holds edges this layout is known to have."""
    graph = import_graph()
    assert graph.has_edge("search.run", "search.space.loader") and graph.has_edge("search.cli", "search.run")
    assert graph.number_of_edges() > 200


def test_import_search_loads_no_torch_and_no_search_library():
    code = "import sys, search; print(sorted({'torch', 'optuna', 'ray'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


def test_search_has_a_handful_of_top_level_modules():
    modules = sorted(p.stem for p in (ROOT / "search").glob("*.py") if p.stem != "__init__")
    assert modules == ["cli", "compound", "objective", "registry", "request", "run", "topology"]


@pytest.mark.parametrize("script", ["compound", "topology"])
def test_a_search_script_shadows_no_installed_module(script):
    """Run as ``python search/<script>.py``, the script's folder comes first on ``sys.path``: a module or package
    of ``search/`` named like an installed one would replace it for every import, Ray's and torch's included."""
    here = {p.stem for p in (ROOT / "search").iterdir() if p.suffix == ".py" or (p / "__init__.py").is_file()}
    installed = {m.name for m in pkgutil.iter_modules() if Path(str(getattr(m.module_finder, "path", ""))) != ROOT}
    assert here & (installed | set(sys.stdlib_module_names)) == set()
    assert script in here


def test_the_tests_mirror_the_packages():
    """A package's tests are in ``tests/<package>/``; the project-wide ones (the README, this layout, the
    crash-consistency harness in ``tests/faults/``) at the top."""
    folders = sorted(p.name for p in (ROOT / "tests").iterdir() if p.is_dir() and p.name != "__pycache__")
    assert folders == sorted([*PACKAGES, "benchmarks", "faults"])
    loose = sorted(p.name for p in (ROOT / "tests").glob("test_*.py"))
    assert loose == ["test_layout.py", "test_readme.py"]
