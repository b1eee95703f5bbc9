"""Every dataset's `splits()`: the arrays, files and errors of the examples."""

import os

import keras
import numpy as np
import pytest

from keras_elm.data import aan
from keras_elm.data import cifar10
from keras_elm.data import imdb
from keras_elm.data import listops
from keras_elm.data import pathfinder
from keras_elm.data import shd

# NumPy only: the same in every backend, so run in one.
pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "torch",
    reason="backend-independent: runs in the torch test process",
)
SPLITS = ("train", "val", "test")
SMALL = {
    "listops": dict(num_samples=40, max_length=60, progress=False),
    "pathfinder": dict(num_samples=10, difficulty="easy", progress=False),
    "cifar10": dict(num_samples=12),
    "imdb": dict(num_samples=8, max_length=50),
    "aan": dict(num_samples=4, max_length=50),
    "shd": dict(num_samples=20, dt=0.05),
}
MODULES = {
    "listops": listops,
    "pathfinder": pathfinder,
    "cifar10": cifar10,
    "imdb": imdb,
    "aan": aan,
    "shd": shd,
}
# `<cache_dir>/smoke_data/<key>` of SMALL with seed 2, as before the move.
SMOKE_KEYS = {
    "listops": "listops-min_length15-max_length60-n40-seed2",
    "pathfinder": "pathfinder32-difficultyeasy-n10-seed2",
    "cifar10": "image-n12-seed2",
    "imdb": "text-max_length50-n8-seed2",
    "aan": "retrieval-n4-seed2",
    "shd": "shd-n20-seed2",
}
# x's shape past the batch, its dtype, and the sizes of the three splits.
EXPECTED = {
    "listops": ((60,), "int32", (32, 4, 4)),
    "pathfinder": ((32, 32), "uint8", (8, 1, 1)),
    "cifar10": ((32, 32), "uint8", None),
    "imdb": ((50,), "int32", (4, 4, 4)),
    "aan": ((50,), "int32", (4, 4, 4)),
    "shd": ((20, 700), "uint8", None),
}


def _splits(name, **kwargs):
    return MODULES[name].splits(**{**SMALL[name], **kwargs})


def _check_arrays(name, data):
    shape, dtype, sizes = EXPECTED[name]
    assert tuple(data) == SPLITS
    for split, (x, y) in data.items():
        parts = x if name == "aan" else [x]
        assert name != "aan" or (isinstance(x, list) and len(x) == 2)
        for part in parts:
            assert part.shape == (len(y), *shape) and str(part.dtype) == dtype
        assert y.ndim == 1 and str(y.dtype) == "int32" and len(y) >= 1
    if sizes is not None:
        assert tuple(len(y) for _, y in data.values()) == sizes


def _same(a, b):
    assert tuple(a) == tuple(b)
    for split in a:
        for u, v in zip(a[split], b[split]):
            for p, q in zip(
                *(x if isinstance(x, list) else [x] for x in (u, v))
            ):
                np.testing.assert_array_equal(p, q)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_smoke_fixture_is_made_once_at_its_path_and_read_back(name, tmp_path):
    data = _splits(name, seed=2, cache_dir=str(tmp_path), smoke=True)
    _check_arrays(name, data)
    folder = tmp_path / "smoke_data" / SMOKE_KEYS[name]
    assert folder.is_dir()
    times = {
        path: os.stat(path).st_mtime_ns
        for path in folder.rglob("*")
        if path.is_file()
    }
    assert times
    again = _splits(name, seed=2, cache_dir=str(tmp_path), smoke=True)
    _same(data, again)
    assert {path: os.stat(path).st_mtime_ns for path in times} == times
    assert sorted(os.listdir(tmp_path / "smoke_data")) == [
        f".{SMOKE_KEYS[name]}.path",
        SMOKE_KEYS[name],
    ]


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_cache_dir_writes_nothing_here(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    smoke = name in ("cifar10", "imdb", "aan")
    _check_arrays(name, _splits(name, seed=1, smoke=smoke))
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("name", ["cifar10", "imdb", "aan"])
def test_real_only_data_without_data_dir_says_what_to_download(name):
    task = {"cifar10": "Image", "imdb": "Text", "aan": "Retrieval"}[name]
    with pytest.raises(FileNotFoundError) as error:
        MODULES[name].splits()
    assert str(error.value).startswith(f"the {task} task needs ")
    assert str(error.value).endswith(
        "which cannot be generated. " + MODULES[name].HELP
    )


@pytest.mark.parametrize("name", sorted(MODULES))
def test_a_missing_data_dir_is_a_file_not_found_error(name, tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "none")):
        MODULES[name].splits(str(tmp_path / "none"))


@pytest.mark.parametrize("name", sorted(MODULES))
@pytest.mark.parametrize(
    "keyword, value, error",
    [
        ("seed", -1, ValueError),
        ("seed", "0", TypeError),
        ("seed", 1.0, TypeError),
        ("smoke", "yes", TypeError),
        ("smoke", 1, TypeError),
        ("cache_dir", 3, TypeError),
        ("num_samples", 0, ValueError),
        ("num_samples", 2.5, TypeError),
    ],
)
def test_bad_keywords_raise_naming_them(name, keyword, value, error, tmp_path):
    kwargs = dict(
        SMALL[name],
        smoke=name in ("cifar10", "imdb", "aan"),
        cache_dir=str(tmp_path),
    )
    kwargs[keyword] = value
    with pytest.raises(error, match=f"`{keyword}`"):
        MODULES[name].splits(**kwargs)


@pytest.mark.parametrize(
    "name, keyword, value, error",
    [
        ("listops", "max_length", 0, ValueError),
        ("listops", "min_length", "5", TypeError),
        ("imdb", "max_length", 0, ValueError),
        ("aan", "max_length", None, TypeError),
        ("pathfinder", "image_size", 33, ValueError),
        ("pathfinder", "difficulty", "hardest", ValueError),
        ("shd", "dt", 0.3, ValueError),
        ("shd", "adding", "no", TypeError),
        ("listops", "data_dir", 3, TypeError),
    ],
)
def test_bad_dataset_keywords_raise_naming_them(name, keyword, value, error):
    with pytest.raises(error, match=keyword):
        _splits(name, **{keyword: value})


@pytest.mark.parametrize("name", ["listops", "pathfinder"])
def test_smoke_files_hold_the_generated_splits(name, tmp_path):
    """Generated data and its smoke fixture split by the same rule."""
    generated = _splits(name, seed=3, cache_dir=str(tmp_path))
    _check_arrays(name, generated)
    _same(generated, _splits(name, seed=3, smoke=True))


def test_listops_generated_split_is_lra_96_2_2_in_generation_order(tmp_path):
    data = listops.splits(
        num_samples=250, max_length=60, seed=4, cache_dir=str(tmp_path)
    )
    sources, targets = listops.generate(
        250, seed=4, min_length=15, max_length=60, progress=False
    )
    tokens = listops.tokenize(sources, 60)
    bounds = {"train": (0, 240), "val": (240, 245), "test": (245, 250)}
    for split, (start, stop) in bounds.items():
        np.testing.assert_array_equal(data[split][0], tokens[start:stop])
        np.testing.assert_array_equal(data[split][1], targets[start:stop])
    assert os.listdir(tmp_path / "data_cache") == [
        "listops_n250_seed4_length15-60_depth10_args10_v1.npz"
    ]


def test_pathfinder_generated_split_is_the_seeded_80_10_10(tmp_path):
    data = _splits("pathfinder", seed=5, cache_dir=str(tmp_path))
    images, labels = pathfinder.generate(
        10, difficulty="easy", seed=5, progress=False
    )
    for split, rows in pathfinder.split_indices(10, 5).items():
        np.testing.assert_array_equal(data[split][0], images[rows])
        np.testing.assert_array_equal(data[split][1], labels[rows])
    assert os.listdir(tmp_path / "data_cache") == [
        "pathfinder32_easy_n10_seed5_v1.npz"
    ]


@pytest.mark.parametrize("adding", [False, True])
def test_shd_synthetic_folder_and_splits(adding, tmp_path):
    data = shd.splits(
        num_samples=20, dt=0.05, seed=6, cache_dir=str(tmp_path), adding=adding
    )
    folder = tmp_path / "synthetic_shd_20_10_seed6"
    assert shd.is_synthetic(str(folder)) and shd.is_synthetic(None)
    if adding:
        for split in SPLITS:
            expected = shd.adding(
                str(folder),
                split=split,
                dt=0.05,
                seed=6 if split == "train" else None,
            )
            _same({split: data[split]}, {split: expected})
        assert data["train"][0].shape[1:] == (40, 700)
    else:
        for split in SPLITS:
            expected = shd.load(str(folder), split=split, dt=0.05, seed=6)
            _same({split: data[split]}, {split: expected})


@pytest.mark.parametrize(
    "max_length, expected", [(2000, 500), (1001, 500), (1000, 250), (3, 1)]
)
def test_listops_default_min_length(max_length, expected):
    assert listops.default_min_length(max_length) == expected


@pytest.mark.parametrize(
    "total, sizes",
    [
        (3, (1, 1, 1)),
        (20, (16, 2, 2)),
        (40, (32, 4, 4)),
        (100, (92, 4, 4)),
        (200, (192, 4, 4)),
        (250, (240, 5, 5)),
        (1000, (960, 20, 20)),
    ],
)
def test_listops_has_one_split_rule(total, sizes):
    assert tuple(listops.split_sizes(total).values()) == sizes


@pytest.mark.parametrize("name", sorted(MODULES))
def test_every_dataset_says_how_to_get_its_files(name):
    assert "--data-dir" in MODULES[name].HELP
