"""`keras_elm.data.neuronio.splits` and the package's layout."""

import ast
import importlib
import os
import pathlib
import shutil
import sys
import tempfile
import types

import keras
import numpy as np
import pytest

import keras_elm
from keras_elm.data import neuronio

BACKEND = keras.backend.backend()
PACKAGE = "keras_elm.data.neuronio"
FOLDER = os.path.dirname(neuronio.__file__)
SUBMODULES = ("files", "windows", "evaluation", "simulator")
# The public names of `keras_elm/data/neuronio.py` before it became a
# package: each must still be importable from the package.
OLD_NAMES = (
    "BURN_IN EVALUATION_STRIDE EvaluationSet FILE_NAME IGNORE_MS KAGGLE_URLS "
    "MAX_EVALUATION_SPIKES NUM_INPUTS NUM_SEGMENTS NeuronIOWindows "
    "SIMULATIONS_PER_FILE SIMULATION_KEYS SIMULATOR_VERSION SIM_DURATION_MS "
    "SOMA_OFFSET SOMA_SCALE SOMA_THRESHOLD SPLITS SPLIT_FOLDERS Simulation "
    "WINDOW WINDOWS_PER_SIMULATION evaluate evaluation_set list_files load "
    "read_file simulate simulation_arrays sliding_windows stitch "
    "window_starts"
).split()


def _one_process(backend="torch"):
    """Simulating tests do not depend on the backend: run them once."""
    if BACKEND != backend:
        pytest.skip(f"runs in the {backend} test process")


@pytest.fixture(scope="module")
def small_file(tmp_path_factory):
    """One simulated file, 1 simulation of 1,100 ms: room for windows."""
    folder = tmp_path_factory.mktemp("small")
    (path,) = neuronio.simulate(
        str(folder), simulations_per_file=1, duration_ms=1100
    )
    return path


@pytest.fixture
def fake_simulate(monkeypatch, small_file):
    """`simulate` in `splits`, copying `small_file` instead: records calls."""
    calls = []

    def simulate(directory, **kwargs):
        calls.append((os.path.basename(directory), kwargs))
        os.makedirs(directory, exist_ok=True)
        path = os.path.join(directory, os.path.basename(small_file))
        shutil.copyfile(small_file, path)
        return [path]

    monkeypatch.setattr(neuronio, "simulate", simulate)
    return calls


def _mtimes(folder):
    return {
        str(path): path.stat().st_mtime_ns
        for path in pathlib.Path(folder).rglob("*")
    }


# --- the simulated stand-in ---------------------------------------------------


def test_smoke_fixture_is_written_at_its_path_once(tmp_path):
    _one_process()
    data = neuronio.splits(
        smoke=True,
        num_samples=1,
        seed=3,
        cache_dir=str(tmp_path),
        batch_size=2,
        steps_per_epoch=1,
    )
    folder = os.path.join(tmp_path, "smoke_data", "neuronio3000-n1-seed3")
    assert data["test"] == folder
    for split, count in (("train", 1), ("val", 2), ("test", 2)):
        (path,) = neuronio.list_files(folder, split)
        simulations = neuronio.read_file(path)
        assert len(simulations) == count
        assert {sim.duration_ms for sim in simulations} == {3000}
    inputs, targets, weights = data["train"][0]
    assert inputs.shape == (2, neuronio.WINDOW, neuronio.NUM_INPUTS)
    assert sorted(targets) == ["soma", "spike"]
    assert not weights[:, : neuronio.BURN_IN].any()
    assert weights[:, neuronio.BURN_IN :].all()
    assert data["train"].shuffle and not data["val"].shuffle
    before = _mtimes(tmp_path)
    again = neuronio.splits(
        smoke=True, num_samples=1, seed=3, cache_dir=str(tmp_path)
    )
    assert again["test"] == folder
    assert _mtimes(tmp_path) == before  # reused, not rewritten


@pytest.mark.parametrize("smoke", [False, True], ids=["full", "smoke"])
@pytest.mark.parametrize("given", [True, False], ids=["cache_dir", "no-cache"])
def test_the_stand_in_lands_where_it_did(
    tmp_path, monkeypatch, fake_simulate, smoke, given
):
    made = []

    def mkdtemp(*args, **kwargs):
        if "dir" in kwargs:  # `publish_folder`'s own temporary folders
            return real_mkdtemp(*args, **kwargs)
        made.append(str(tmp_path / f"temporary{len(made)}"))
        os.makedirs(made[-1])
        return made[-1]

    real_mkdtemp = tempfile.mkdtemp
    monkeypatch.setattr(tempfile, "mkdtemp", mkdtemp)
    cache_dir = str(tmp_path / "cache") if given else None
    data = neuronio.splits(
        num_samples=9, seed=2, cache_dir=cache_dir, smoke=smoke, batch_size=3
    )
    root = cache_dir if given else made[0]
    assert len(made) == (0 if given else 1)
    name = (
        os.path.join("smoke_data", "neuronio3000-n9-seed2")
        if smoke
        else "simulated_neuronio_9_seed2"
    )
    assert data["test"] == os.path.join(root, name)
    duration = 3000 if smoke else neuronio.SIM_DURATION_MS
    assert fake_simulate == [
        (split, dict(simulations_per_file=n, duration_ms=duration, seed=s))
        for split, n, s in (("train", 9, 2), ("valid", 2, 3), ("test", 2, 4))
    ]
    # The default epoch: 10 windows a simulation of the (copied) files.
    assert len(data["train"]) == len(data["val"]) == 4
    assert data["train"][3][0].shape == (3, 500, neuronio.NUM_INPUTS)


def test_a_rerun_reuses_the_full_stand_in(tmp_path, fake_simulate):
    first = neuronio.splits(num_samples=2, cache_dir=str(tmp_path))
    before = _mtimes(tmp_path)
    second = neuronio.splits(num_samples=2, cache_dir=str(tmp_path))
    assert first["test"] == second["test"]
    assert len(fake_simulate) == 3  # the first call's three splits only
    assert _mtimes(tmp_path) == before


# --- the release's folder -----------------------------------------------------


@pytest.mark.parametrize("layout", ["split-folders", "flat"])
def test_a_data_dir_is_read_not_written(tmp_path, small_file, layout):
    names = ("train", "valid", "test") if layout == "split-folders" else ("",)
    for name in names:
        os.makedirs(tmp_path / name, exist_ok=True)
        shutil.copy(small_file, tmp_path / name)
    before = _mtimes(tmp_path)
    data = neuronio.splits(
        str(tmp_path), batch_size=2, steps_per_epoch=2, seed=1, smoke=True
    )
    assert data["test"] == str(tmp_path)
    assert len(data["train"]) == 2
    inputs, targets, weights = data["val"][1]
    assert inputs.shape == (2, 500, neuronio.NUM_INPUTS)
    data["val"].on_epoch_end()
    np.testing.assert_array_equal(data["val"][1][0], inputs)  # fixed windows
    assert _mtimes(tmp_path) == before  # nothing simulated, nothing cached


def test_a_missing_split_says_which(tmp_path, small_file):
    os.makedirs(tmp_path / "train")
    shutil.copy(small_file, tmp_path / "train")
    with pytest.raises(FileNotFoundError, match="split 'val'"):
        neuronio.splits(str(tmp_path))


# --- arguments ----------------------------------------------------------------

BAD_ARGUMENTS = [
    ("num_samples", 0, ValueError),
    ("num_samples", 1.5, TypeError),
    ("num_samples", "4", TypeError),
    ("batch_size", 0, ValueError),
    ("batch_size", True, TypeError),
    ("steps_per_epoch", 0, ValueError),
    ("steps_per_epoch", 2.0, TypeError),
    ("seed", -1, ValueError),
    ("seed", None, TypeError),
    ("smoke", "yes", TypeError),
    ("smoke", 1, TypeError),
    ("data_dir", 5, TypeError),
    ("cache_dir", 5, TypeError),
    ("cache_dir", ["a"], TypeError),
]


@pytest.mark.parametrize(
    "name, value, error",
    BAD_ARGUMENTS,
    ids=[f"{name}={value!r}" for name, value, _ in BAD_ARGUMENTS],
)
def test_bad_arguments_are_refused_by_name_before_any_work(
    tmp_path, fake_simulate, name, value, error
):
    kwargs = {"cache_dir": str(tmp_path / "cache"), name: value}
    with pytest.raises(error, match=f"`{name}`"):
        neuronio.splits(**kwargs)
    assert not fake_simulate
    assert not os.path.exists(tmp_path / "cache")


def test_an_unwritable_cache_dir_is_a_value_error(tmp_path, fake_simulate):
    (tmp_path / "afile").write_bytes(b"")
    with pytest.raises(ValueError, match="`cache_dir`.*afile"):
        neuronio.splits(cache_dir=str(tmp_path / "afile" / "sub"))
    assert not fake_simulate


@pytest.mark.parametrize(
    "data_dir, expected",
    [(None, True), ("", True), ("~/data/neuronio", False)],
)
def test_is_synthetic(tmp_path, data_dir, expected):
    assert neuronio.is_synthetic(data_dir) is expected
    assert neuronio.is_synthetic(tmp_path) is False  # a PathLike folder


def test_is_synthetic_refuses_a_non_path():
    with pytest.raises(TypeError, match="`data_dir`"):
        neuronio.is_synthetic(5)


def test_the_texts_the_examples_print():
    assert neuronio.SYNTHETIC_NOTE == (
        "simulated by keras_elm's NumPy neuron (keras_elm.data.neuronio."
        "simulate), not the L5PC of NeuronIO; pass --data-dir for the real "
        "simulations"
    )
    assert neuronio.HELP == (
        "Pass --data-dir ~/data/neuronio, the NeuronIO release (Beniaguev "
        "et al., 2021) with train/, valid/ and test/ folders of .p files (or "
        "one flat folder); without --data-dir a stand-in is simulated."
    )


# --- the package --------------------------------------------------------------


def test_every_old_name_is_still_in_the_package():
    missing = [name for name in OLD_NAMES if not hasattr(neuronio, name)]
    assert not missing
    assert set(OLD_NAMES) | {"splits", "is_synthetic", "HELP"} <= set(
        neuronio.__all__
    )


def test_the_pretrained_constants_are_the_datas():
    assert keras_elm.pretrained.SOMA_VOLTAGE_SCALE == neuronio.SOMA_SCALE == 0.1
    assert (
        keras_elm.pretrained.SOMA_VOLTAGE_OFFSET_MV
        == neuronio.SOMA_OFFSET
        == -67.7
    )
    source = pathlib.Path(keras_elm.pretrained.__file__).read_text()
    assert "0.1\n" not in source and "-67.7\n" not in source


def _imported_modules(name):
    tree = ast.parse(pathlib.Path(FOLDER, f"{name}.py").read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            # `from keras_elm.data import neuronio` imports the package.
            found.update(
                f"{node.module}.{a.name}"
                for a in node.names
                if f"{node.module}.{a.name}" == PACKAGE
            )
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return found


@pytest.mark.parametrize("name", SUBMODULES)
def test_a_submodule_never_imports_the_package(name):
    imported = _imported_modules(name)
    assert PACKAGE not in imported
    siblings = {m for m in imported if m.startswith(PACKAGE + ".")}
    assert siblings <= {f"{PACKAGE}.{s}" for s in SUBMODULES}
    assert len(pathlib.Path(FOLDER, f"{name}.py").read_text().splitlines()) < (
        600
    )


@pytest.mark.parametrize("name", SUBMODULES)
def test_each_submodule_imports_alone(name):
    """Imported with a bare package (its `__init__` not run), as a cycle
    would break it."""
    saved = {
        key: module
        for key, module in sys.modules.items()
        if key == PACKAGE or key.startswith(PACKAGE + ".")
    }
    for key in saved:
        del sys.modules[key]
    bare = types.ModuleType(PACKAGE)
    bare.__path__ = [FOLDER]
    sys.modules[PACKAGE] = bare
    try:
        module = importlib.import_module(f"{PACKAGE}.{name}")
        assert sys.modules[PACKAGE] is bare  # the __init__ did not run
        public = [n for n in vars(module) if n in OLD_NAMES]
        assert public and all(hasattr(neuronio, n) for n in public)
    finally:
        for key in [k for k in sys.modules if k.startswith(PACKAGE)]:
            del sys.modules[key]
        sys.modules.update(saved)
