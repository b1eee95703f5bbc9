"""The package's layout: one job a file, no file too long, no import cycle.

Backend-independent: runs in the torch process only (the others skip).
"""

import ast
import os

import keras
import pytest

import keras_elm

ROOT = os.path.dirname(keras_elm.__file__)
MAX_LINES = 600

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "torch",
    reason="reads source files only: once, in the torch process",
)


def _modules():
    """`{module name: path}` of every `.py` file under `keras_elm/`."""
    found = {}
    for folder, _, names in os.walk(ROOT):
        for name in names:
            if not name.endswith(".py"):
                continue
            path = os.path.join(folder, name)
            parts = os.path.relpath(path, os.path.dirname(ROOT))[:-3]
            parts = parts.split(os.sep)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(name, path):
    """The keras_elm modules that `name` imports, anywhere in it.

    Imports inside functions count too: a module that imports, even
    lazily, one that imports it back is a cycle (as `scan/common.py` and
    `scan/jax_core.py` were).
    """
    with open(path, encoding="utf-8") as file:
        tree = ast.parse(file.read(), path)
    package = name if path.endswith("__init__.py") else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("keras_elm"):
                    found.add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")
                parent = parent[: len(parent) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            if not base.startswith("keras_elm"):
                continue
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                found.add(submodule if submodule in MODULES else base)
    found.discard(name)
    return {module for module in found if module in MODULES}


def test_no_file_in_the_package_is_over_600_lines():
    long = {}
    for name, path in MODULES.items():
        with open(path, encoding="utf-8") as file:
            lines = sum(1 for _ in file)
        if lines > MAX_LINES:
            long[name] = lines
    assert not long, f"files over {MAX_LINES} lines: {long}"


def test_no_import_cycle_inside_the_package():
    graph = {name: _imports(name, path) for name, path in MODULES.items()}
    cycles = []
    state = {}  # name -> "visiting" | "done"

    def visit(name, trail):
        state[name] = "visiting"
        for other in sorted(graph[name]):
            if state.get(other) == "visiting":
                cycles.append(trail[trail.index(other) :] + [other])
            elif other not in state:
                visit(other, trail + [other])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert not cycles, "import cycles: " + "; ".join(
        " -> ".join(cycle) for cycle in cycles
    )


def test_the_cycle_finder_finds_a_cycle(tmp_path, monkeypatch):
    """The check above can fail: two modules importing each other."""
    first, second = tmp_path / "a.py", tmp_path / "b.py"
    first.write_text("from keras_elm import b\n")
    second.write_text("import keras_elm.a\n")
    monkeypatch.setitem(MODULES, "keras_elm.a", str(first))
    monkeypatch.setitem(MODULES, "keras_elm.b", str(second))
    assert _imports("keras_elm.a", str(first)) == {"keras_elm.b"}
    assert _imports("keras_elm.b", str(second)) == {"keras_elm.a"}
    with pytest.raises(AssertionError, match="keras_elm.a -> keras_elm.b"):
        test_no_import_cycle_inside_the_package()
