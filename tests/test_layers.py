"""The house's layers, read from the code: every import of `src/siliconlab` (module level, inside functions, under
TYPE_CHECKING: all of them are arrows) looks down or sideways within its layer, never up, and no modules import
each other in a circle. The layer order is written once, here; docs/architecture.md states the same order and
this test holds the two together, and its folder map to the modules that exist.

Why lazy imports count: an import inside a function still makes the lower module depend on the higher one; it
only hides the dependency from the import-time check (and from the reader).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "siliconlab"
DOCS = ROOT / "docs" / "architecture.md"

#: Top to bottom. A module belongs to the layer of its top-level package or module under `siliconlab/`
#: (`__init__` is the package face, `siliconlab.load`). A layer imports only itself and the layers below it.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("__init__", "__main__", "cli", "client", "client_stream"),
    ("serve", "demo"),
    ("batch",),
    ("tasks",),
    ("bench",),
    ("convert",),
    ("units",),
    ("models",),
    (
        "data",
        "text",
        "ops",
        "monitor",
        "store",
        "paths",
        "progress",
        "tables",
        "cpu_features",
        "errors",
        "log",
        "version",
    ),
)

#: Most lines a module may have (house style): past it, a module holds more than one idea.
MAX_LINES = 400


def module_files() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package."""
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def imports(modules: dict[str, Path]) -> set[tuple[str, str]]:
    """(importer, imported) pairs between modules of the package, every import statement in the file counted."""
    edges = set()
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([node.module] if node.module else []))
                targets = [
                    f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names
                ]
            for target in targets:
                while target and target not in modules:  # a name inside a module -> the module
                    target = target.rpartition(".")[0]
                if target and target != name:
                    edges.add((name, target))
    return edges


def component(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def layer_of() -> dict[str, int]:
    return {name: depth for depth, layer in enumerate(LAYERS) for name in layer}


def circles(edges: set[tuple[str, str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan), each sorted."""
    graph: dict[str, list[str]] = {}
    for a, b in edges:
        graph.setdefault(a, []).append(b)
        graph.setdefault(b, [])
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                group.append(top)
                if top == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_every_module_has_a_layer() -> None:
    known = layer_of()
    components = {component(m) for m in module_files()}
    assert sorted(components - set(known)) == [], "modules with no layer: add them to LAYERS and the docs"
    assert sorted(set(known) - components) == [], "LAYERS names what does not exist"
    assert sum(len(layer) for layer in LAYERS) == len(known), "a name stands in two layers"


def test_no_import_from_a_higher_layer() -> None:
    known = layer_of()
    upward = sorted(f"{a} -> {b}" for a, b in imports(module_files()) if known[component(b)] < known[component(a)])
    assert upward == []


def test_no_import_circles() -> None:
    assert circles(imports(module_files())) == []


def test_circles_are_found() -> None:
    """The checker itself: a loop through three modules is one circle; a chain is none."""
    assert circles({("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")}) == [["a", "b", "c"]]
    assert circles({("a", "b"), ("b", "c")}) == []


def test_lazy_imports_are_arrows(tmp_path: Path) -> None:
    """An import inside a function, and a relative one, count like a module-level import."""
    pkg = tmp_path / "siliconlab"
    (pkg / "low").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "low" / "__init__.py").write_text("")
    (pkg / "low" / "a.py").write_text("def f():\n    from siliconlab.high import g\n")
    (pkg / "low" / "b.py").write_text("from .a import f\n")
    (pkg / "high.py").write_text("")
    modules = {"siliconlab": pkg / "__init__.py", "siliconlab.low": pkg / "low" / "__init__.py",
               "siliconlab.low.a": pkg / "low" / "a.py", "siliconlab.low.b": pkg / "low" / "b.py",
               "siliconlab.high": pkg / "high.py"}  # fmt: skip
    assert imports(modules) == {("siliconlab.low.a", "siliconlab.high"), ("siliconlab.low.b", "siliconlab.low.a")}


def docs_layers() -> list[tuple[str, ...]]:
    """The layer list of docs/architecture.md: the first fenced block under '## Layers', one layer a line,
    names before the description (two spaces or more), comma-separated."""
    text = DOCS.read_text()
    section = text.split("## Layers", 1)[1]
    block = section.split("```", 2)[1]
    layers = []
    for line in block.strip("\n").splitlines():
        names = re.split(r"\s{2,}", line.strip().removeprefix("└─").strip(), maxsplit=1)[0]
        layers.append(tuple(name.strip().strip("`") for name in names.split(",")))
    return layers


def test_docs_state_the_same_layers() -> None:
    assert docs_layers() == list(LAYERS)


def test_docs_map_every_module() -> None:
    """Each module file appears in the folder map: by its path, or by its name in a row about its folder."""
    text = DOCS.read_text().split("## Folder map", 1)[1].split("\n## ", 1)[0]
    rows = [re.findall(r"`([^`]+)`", line) for line in text.splitlines() if line.startswith("| `")]
    missing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "__init__.py" and not _defines(path):  # a package's face: its folder's row covers it
            continue
        relative = path.relative_to(PACKAGE).as_posix()
        folder = relative.rpartition("/")[0]
        listed = any(relative in row or (path.name in row and _folder(row[0]) == folder) for row in rows)
        if not listed:
            missing.append(relative)
    assert missing == []


def _defines(path: Path) -> bool:
    """Does the module define a function or class of its own (not only hand names on)?"""
    kinds = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    return any(isinstance(node, kinds) for node in ast.parse(path.read_text()).body)


def _folder(first: str) -> str:
    """The folder a map row is about: its first path's folder, or the path itself when it names a folder."""
    return first.rstrip("/") if first.endswith("/") else first.rpartition("/")[0]


def test_modules_are_short() -> None:
    long = {
        path.relative_to(PACKAGE).as_posix(): lines
        for path in PACKAGE.rglob("*.py")
        if (lines := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


def test_monitor_stands_alone() -> None:
    """The sensors import no other siliconlab module (docs/architecture.md): bench and the CLI read them, and a
    recording or the dashboard runs without the model stack."""
    outside = sorted(f"{a} -> {b}" for a, b in imports(module_files()) if component(a) == "monitor" != component(b))
    assert outside == []
