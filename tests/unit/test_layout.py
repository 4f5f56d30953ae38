"""The house rules of the code's layout, read from the sources themselves.

- no import circle between modules, nor between the rooms (subpackages) they live in;
- the product (picodaq) never imports its test harness (picodaq_hil), statically (the import in a
  Python without the harness is tests/integration/test_layout_imports.py);
- no module over 500 lines outside generated files;
- every name of the public API (picodaq.__all__) is importable from picodaq.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import picodaq

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {"picodaq": ROOT / "host" / "picodaq", "picodaq_hil": ROOT / "hil" / "picodaq_hil"}
GENERATED = {ROOT / "host" / "picodaq" / "contracts.py", ROOT / "firmware" / "picodaq_fw" / "contracts.py"}
MAX_LINES = 500


def modules() -> dict[str, Path]:
    out = {}
    for pkg, root in PACKAGES.items():
        for p in root.rglob("*.py"):
            parts = [pkg, *p.relative_to(root).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = p
    return out


MODULES = modules()


def _targets(name: str, path: Path, node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if node.level:
        base = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        if node.level > 1:
            base = base[: -(node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    return [f"{target}.{a.name}" if f"{target}.{a.name}" in MODULES else target for a in node.names]


def imports_of(name: str, path: Path) -> set[str]:
    """Every picodaq/picodaq_hil module this one imports, at any depth (lazy imports count), but
    not under `if TYPE_CHECKING:` (annotations only)."""
    tree = ast.parse(path.read_text())
    typing_only = {
        id(c)
        for n in ast.walk(tree)
        if isinstance(n, ast.If) and "TYPE_CHECKING" in ast.unparse(n.test)
        for c in ast.walk(n)
    }
    deps = set()
    for n in ast.walk(tree):
        if id(n) in typing_only or not isinstance(n, (ast.Import, ast.ImportFrom)):
            continue
        for t in _targets(name, path, n):
            while t and t not in MODULES:
                t = t.rpartition(".")[0]
            if t and t != name:
                deps.add(t)
    return deps


GRAPH = {m: imports_of(m, p) for m, p in MODULES.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def room(module: str) -> str:
    """The subpackage a module lives in (picodaq.core, picodaq_hil.faults), or itself at the top."""
    parts = module.split(".")
    if len(parts) > 2 or MODULES[module].name == "__init__.py":
        return ".".join(parts[:2])
    return module


def test_no_module_imports_itself_back():
    assert cycles(GRAPH) == []


def test_the_rooms_import_only_downwards():
    rooms: dict[str, set[str]] = {}
    for m, deps in GRAPH.items():
        if m == "picodaq":  # the public API re-exports from every room, by design
            continue
        for d in deps:
            if room(m) != room(d):
                rooms.setdefault(room(m), set()).add(room(d))
    assert cycles(rooms) == []


def test_the_product_never_imports_the_harness_in_its_sources():
    offenders = {m: sorted(d for d in deps if d.startswith("picodaq_hil")) for m, deps in GRAPH.items()}
    assert {m: d for m, d in offenders.items() if d and m.startswith("picodaq.")} == {}


def test_no_module_is_over_500_lines():
    files = [p for p in MODULES.values()] + list((ROOT / "firmware").rglob("*.py"))
    long = {
        str(p.relative_to(ROOT)): n
        for p in files
        if p not in GENERATED and (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


@pytest.mark.parametrize("name", picodaq.__all__)
def test_the_public_api_is_importable_from_picodaq(name):
    value = getattr(picodaq, name)
    assert getattr(value, "__name__", name) == name or name.isupper()
