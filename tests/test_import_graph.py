"""The import graph of ``app``: no circles between modules, and every module in a layer (issue 20).

A circle means no module of it can be read, tested or imported on its own; the usual way in is
a state class or a protocol in a lower module (see ``app/context.py``). Type-only imports count:
they tie the modules together for the reader all the same. A module that no layer of the
layers contract names is checked by no layer rule, so each one must be named.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import grimp

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def _circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, successors = work[-1]
            for succ in successors:
                if succ not in index:
                    index[succ] = low[succ] = len(index)
                    stack.append(succ)
                    on_stack.add(succ)
                    work.append((succ, iter(sorted(edges.get(succ, ())))))
                    break
                if succ in on_stack:
                    low[node] = min(low[node], index[succ])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def test_the_circle_finder_finds_circles() -> None:
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}
    assert _circles(edges) == [["a", "b", "c"]]


def test_no_module_of_app_imports_itself_through_others() -> None:
    graph = grimp.build_graph("app")
    edges = {m: set(graph.find_modules_directly_imported_by(m)) for m in graph.modules}
    circles = _circles(edges)
    described = [
        f"{module} imports {sorted(edges[module] & set(circle))}"
        for circle in circles
        for module in circle
    ]
    assert not circles, "import circles:\n" + "\n".join(described)


def _layer_names() -> set[str]:
    """The modules the layers contract of ``pyproject.toml`` names, in any of its layers."""
    config = tomllib.loads(PYPROJECT.read_text())["tool"]["importlinter"]
    [contract] = [c for c in config["contracts"] if c["name"].startswith("Layers:")]
    return {
        name.strip()
        for layer in contract["layers"]
        for name in re.split(r"[|:]", layer)
        if name.strip()
    }


def _unnamed(modules: set[str], names: set[str], imports: dict[str, set[str]]) -> list[str]:
    """The modules in no layer: neither named nor inside a named package.

    A package's ``__init__`` that imports nothing of ``app`` may go unnamed (it holds no
    code that could import upwards); one that imports something must be named like a module.
    """
    packages = {m.rpartition(".")[0] for m in modules}
    return sorted(
        module
        for module in modules
        if not any(module == name or module.startswith(name + ".") for name in names)
        and (module not in packages or imports[module] & modules)
    )


def test_the_unnamed_finder_finds_modules_outside_every_layer() -> None:
    modules = {"a", "a.b", "a.b.c", "a.d", "a.e", "a.e.f"}
    imports: dict[str, set[str]] = {m: set() for m in modules} | {"a.e": {"a.d"}}
    assert _unnamed(modules, {"a.b"}, imports) == ["a.d", "a.e", "a.e.f"]


def test_every_module_of_app_has_a_layer() -> None:
    graph = grimp.build_graph("app")
    modules = set(graph.modules)
    imports = {m: set(graph.find_modules_directly_imported_by(m)) for m in modules}
    names = _layer_names()
    assert not sorted(names - modules), "the layers name modules that do not exist"
    unnamed = _unnamed(modules, names, imports)
    assert not unnamed, (
        "modules in no layer of the layers contract (pyproject.toml; docs/architecture.md"
        " says which): " + ", ".join(unnamed)
    )


ISSUE_PACKAGES = (
    "console",
    "occurrences",
    "status_changes",
    "triage",
    "lifecycle",
    "notifications",
    "issues",
)
ARROW = re.compile(r"^\s*(\w+)(?:\[[^\]]*\])?\s*-->\s*(\w+)", re.MULTILINE)


def test_the_architecture_diagram_draws_every_import_between_the_issue_packages() -> None:
    text = (PYPROJECT.parent / "docs" / "architecture.md").read_text()
    mermaid = text.split("```mermaid", 1)[1].split("```", 1)[0]
    drawn = set(ARROW.findall(mermaid))
    graph = grimp.build_graph("app")
    actual = {
        (source, target)
        for source in ISSUE_PACKAGES
        for target in ISSUE_PACKAGES
        if source != target
        and graph.direct_import_exists(
            importer=f"app.{source}", imported=f"app.{target}", as_packages=True
        )
    }
    assert drawn == actual, f"missing: {sorted(actual - drawn)}; not in the code: {drawn - actual}"
