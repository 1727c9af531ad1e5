"""The import graph of ``app`` has no circles between modules (issue 20).

A circle means no module of it can be read, tested or imported on its own; the usual way in is
a state class or a protocol in a lower module (see ``app/context.py``). Type-only imports count:
they tie the modules together for the reader all the same.
"""

from __future__ import annotations

import grimp


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
