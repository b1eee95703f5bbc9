"""Runs every docstring example of every module in `keras_elm`.

Two forms are run, one pytest item per docstring (id `module.qualname`, so
`-k keras_elm.data.shd` or `-k tpr_at_fpr` selects):

- doctests (`>>> ...`), with `ELLIPSIS | NORMALIZE_WHITESPACE`, in the
  module's globals plus `np`, `keras` and `keras_elm`;
- fenced ```python blocks, each run on its own (`exec` in a fresh
  namespace: the block brings its own imports).

Both run in a temporary working folder. The modules are found by walking
the package, never listed here: a module that fails to import is one
failing item named after it. `keras_elm.scan.<backend>_core` runs only in
its backend's process, `triton_core` only where Triton is installed, and a
module whose optional dependency is missing is skipped, naming it.
"""

import builtins
import dataclasses
import doctest
import importlib
import importlib.util
import io
import pkgutil
import re
import textwrap
import traceback

import keras
import numpy as np
import pytest

BACKEND = keras.backend.backend()
BACKEND_CORES = ("jax", "tensorflow", "torch")
OPTIONS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
# A fenced block: its opening fence, its body, a closing fence as indented.
FENCED = re.compile(
    r"^(?P<indent>[ \t]*)```python[ \t]*\n(?P<body>.*?)^(?P=indent)```[ \t]*$",
    re.MULTILINE | re.DOTALL,
)


@dataclasses.dataclass
class Case:
    """One pytest item: a docstring to run, or why its module cannot be."""

    id: str
    test: doctest.DocTest = None
    blocks: tuple = ()  # (first line in the file, source) per fenced block
    skip: str = None
    error: str = None


def _skip_reason(name):
    """Why module `name` does not run in this process, or None."""
    parts = name.split(".")
    if parts[:2] == ["keras_elm", "scan"] and len(parts) == 3:
        core = parts[2]
        if core.endswith("_core") and core[: -len("_core")] in BACKEND_CORES:
            if core != f"{BACKEND}_core":
                return f"{name} runs in the {core[:-5]} test process"
        if core == "triton_core" and importlib.util.find_spec("triton") is None:
            return f"{name} needs triton, which is not installed"
    return None


def _format_import_error():
    """The current traceback without importlib's own frames."""
    lines = traceback.format_exc().splitlines(keepends=True)
    return "".join(line for line in lines if "<frozen importlib" not in line)


def _import(name):
    """(module, None, None), (None, skip, None) or (None, None, error)."""
    try:
        return importlib.import_module(name), None, None
    except ModuleNotFoundError as error:
        missing = (error.name or "").split(".")[0]
        if missing and missing != "keras_elm":
            return None, f"{name} needs {missing}, which is not installed", None
        return None, None, _format_import_error()
    except Exception:
        return None, None, _format_import_error()


def _locate(test):
    """`test` with its line fixed where a decorator misled the finder.

    `DocTestFinder` takes a decorated function's line from the wrapper's
    code (`contextlib.contextmanager` gives a line of contextlib.py), so the
    docstring is looked up in the source file instead.
    """
    try:
        with open(test.filename, encoding="utf-8") as f:
            source = f.read()
    except (OSError, TypeError):
        return test
    position = source.find(test.docstring or "\0")
    if position >= 0:
        test.lineno = source.count("\n", 0, position)
    return test


def _fenced_blocks(test):
    """The fenced python blocks of a docstring, with their file lines."""
    blocks = []
    for match in FENCED.finditer(test.docstring or ""):
        offset = test.docstring.count("\n", 0, match.start("body"))
        first = (test.lineno or 0) + offset + 1  # 1-based line in the file
        blocks.append((first, textwrap.dedent(match.group("body"))))
    return tuple(blocks)


def _module_names():
    """Every module of `keras_elm`, with the packages that fail to import."""
    failed = {}

    def on_error(name):
        failed[name] = traceback.format_exc()

    # The path without importing the package, which may itself fail.
    path = importlib.util.find_spec("keras_elm").submodule_search_locations
    names = ["keras_elm"]
    for info in pkgutil.walk_packages(path, "keras_elm.", onerror=on_error):
        names.append(info.name)
    return sorted(set(names) | set(failed))


def _cases():
    cases = []
    finder = doctest.DocTestFinder(exclude_empty=False)
    extra = {"np": np, "keras": keras}
    for name in _module_names():
        skip = _skip_reason(name)
        if skip:
            cases.append(Case(id=name, skip=skip))
            continue
        module, skip, error = _import(name)
        if module is None:
            cases.append(Case(id=name, skip=skip, error=error))
            continue
        try:
            extra["keras_elm"] = importlib.import_module("keras_elm")
            tests = finder.find(module, globs={**vars(module), **extra})
        except Exception:
            cases.append(Case(id=name, error=traceback.format_exc()))
            continue
        for test in sorted(tests, key=lambda t: t.name):
            test = _locate(test)
            blocks = _fenced_blocks(test)
            if test.examples or blocks:
                cases.append(Case(id=test.name, test=test, blocks=blocks))
    return cases


CASES = _cases()


def _run_block(case, first, source):
    path = case.test.filename or "<docstring>"
    namespace = {"__name__": "docstring_example", "__builtins__": builtins}
    try:
        # Padded so that a traceback names the line of the source file.
        exec(compile("\n" * (first - 1) + source, path, "exec"), namespace)
    except Exception as exception:
        # Without this file's own frame.
        error = "".join(
            traceback.format_exception(
                type(exception), exception, exception.__traceback__.tb_next
            )
        )
    else:
        return
    pytest.fail(
        f"the ```python block at {path}:{first} ({case.id}) raised:\n{error}",
        pytrace=False,
    )


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_docstring_example(case, tmp_path, monkeypatch):
    if case.skip:
        pytest.skip(case.skip)
    if case.error:
        pytest.fail(f"{case.id} does not import:\n{case.error}", pytrace=False)
    monkeypatch.chdir(tmp_path)
    try:
        _run(case)
    finally:
        if BACKEND == "jax":  # `data_parallel` leaves its distribution set
            keras.distribution.set_distribution(None)


def _run(case):
    if case.test.examples:
        runner = doctest.DocTestRunner(verbose=False, optionflags=OPTIONS)
        report = io.StringIO()
        test = doctest.DocTest(
            case.test.examples,
            dict(case.test.globs),  # a fresh copy per run
            case.test.name,
            case.test.filename,
            case.test.lineno,
            case.test.docstring,
        )
        result = runner.run(test, out=report.write)
        if result.failed:
            pytest.fail(report.getvalue(), pytrace=False)
    for first, source in case.blocks:
        _run_block(case, first, source)


# The harness itself.


def test_a_module_that_fails_to_import_is_a_failure():
    module, skip, error = _import("keras_elm._no_such_module")
    assert module is None and skip is None
    assert "keras_elm._no_such_module" in error


def test_a_missing_optional_dependency_is_a_skip(monkeypatch, tmp_path):
    (tmp_path / "needs_extra.py").write_text("import no_such_extra_package\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    module, skip, error = _import("needs_extra")
    assert module is None and error is None
    assert "needs_extra needs no_such_extra_package" in skip


@pytest.mark.parametrize(
    "name, skipped",
    [
        (f"keras_elm.scan.{BACKEND}_core", False),
        *[
            (f"keras_elm.scan.{other}_core", True)
            for other in BACKEND_CORES
            if other != BACKEND
        ],
        ("keras_elm.scan", False),
        ("keras_elm.layer", False),
    ],
)
def test_backend_cores_run_in_their_backend_only(name, skipped):
    assert (_skip_reason(name) is not None) == skipped


def test_fenced_blocks_are_found_with_their_file_lines():
    docstring = (
        "Summary.\n\n    Example:\n\n    ```python\n    import os\n"
        "    print(os.sep)\n    ```\n\n    ```bash\n    ls\n    ```\n    "
    )
    test = doctest.DocTest([], {}, "m.f", "m.py", 10, docstring)
    assert _fenced_blocks(test) == ((16, "import os\nprint(os.sep)\n"),)
