"""The layering holds: minifm's own modules (kernels/ included, as minifm.kernels) form no
import cycle, and none of them imports another of minifm's modules inside a function (only
optional third-party packages are imported late: numba, cupy, matplotlib, ...)."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {"minifm": ROOT / "minifm", "minifm.kernels": ROOT / "kernels"}


def _modules():
    """{module name: path} for every .py file of the packages."""
    found = {}
    for package, folder in PACKAGES.items():
        for path in folder.rglob("*.py"):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join([package, *parts])] = path
    return found


def _imports(name, path, modules):
    """(imported own module, inside a function?) for each import in one module."""
    tree = ast.parse(path.read_text())
    is_package = path.name == "__init__.py"
    inside = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            inside.update(id(n) for n in ast.walk(node) if n is not node)
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = name.split(".") if is_package else name.split(".")[:-1]
                parts = parts[:len(parts) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            # `from X import y` depends on the module X.y when y is one, else on X
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                       for a in node.names]
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            # a package is always imported before its modules: that edge is no dependency
            if target and target != name and not name.startswith(target + "."):
                yield target, id(node) in inside


def _graph():
    modules = _modules()
    graph, late = {m: set() for m in modules}, []
    for name, path in modules.items():
        for target, is_late in _imports(name, path, modules):
            graph[name].add(target)
            if is_late:
                late.append(f"{name} imports {target} inside a function")
    return graph, late


def _cycles(graph):
    """Strongly connected components of more than one module (Tarjan, iteratively)."""
    index, low, on_stack, stack, result, counter = {}, {}, set(), [], [], [0]
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter[0]
                    counter[0] += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    result.append(sorted(component))
    return result


def test_no_import_cycles_among_minifm_modules():
    graph, _ = _graph()
    assert {"minifm.tensor", "minifm.autograd"} <= graph["minifm.ops.elementwise"]  # edges seen
    assert _cycles(graph) == []


def test_no_own_imports_inside_functions():
    _, late = _graph()
    assert late == []


def test_the_check_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
