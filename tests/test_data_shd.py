"""`keras_elm.data.shd` on small HDF5 files in the release's layout."""

import hashlib
import os
import stat

import numpy as np
import pytest

h5py = pytest.importorskip("h5py")

from keras_elm.data import shd  # noqa: E402

NUM_TRAIN = 30
NUM_TEST = 10
# Every sample has one spike here, on its own unit: exact in float16 and
# inside a bin (not at an edge) for every dt below.
SIGNATURE_TIME = 0.125
TRAIN_SIGNATURE = 100  # unit of train sample i: 100 + i
TEST_SIGNATURE = 200
# (time, unit) of the other spikes of train sample 0: in bins 0 (twice),
# an edge, a bin, the last channel, then at and after 1 s (dropped).
KNOWN = [
    (0.0, 3),
    (0.001, 3),
    (0.004, 9),
    (0.5, 5),
    (0.75, 699),
    (1.0, 7),
    (1.25, 8),
]


def _vlen(arrays):
    values = np.empty(len(arrays), object)
    for i, array in enumerate(arrays):
        values[i] = array
    return values


def _write(path, times, units, labels, *, time_dtype, unit_dtype, skip=()):
    with h5py.File(path, "w") as f:
        if "spikes/times" not in skip:
            f.create_dataset(
                "spikes/times",
                dtype=h5py.vlen_dtype(time_dtype),
                data=_vlen([np.asarray(t, time_dtype) for t in times]),
            )
        if "spikes/units" not in skip:
            f.create_dataset(
                "spikes/units",
                dtype=h5py.vlen_dtype(unit_dtype),
                data=_vlen([np.asarray(u, unit_dtype) for u in units]),
            )
        if "labels" not in skip:
            f.create_dataset("labels", data=np.asarray(labels, np.uint8))
        f.create_dataset("extra/speaker", data=np.zeros(len(labels), np.uint8))


def _samples(count, signature, extra=()):
    times = [[SIGNATURE_TIME] for _ in range(count)]
    units = [[signature + i] for i in range(count)]
    for time, unit in extra:
        times[0].append(time)
        units[0].append(unit)
    return times, units


@pytest.fixture(
    params=[("float16", "uint16"), ("float64", "int32")],
    ids=["f16-u16", "f64-i32"],
)
def data_dir(tmp_path, request):
    """Train and test files: unique samples, known spikes in train sample 0."""
    time_dtype, unit_dtype = request.param
    kinds = {"time_dtype": time_dtype, "unit_dtype": unit_dtype}
    times, units = _samples(NUM_TRAIN, TRAIN_SIGNATURE, KNOWN)
    _write(
        str(tmp_path / "shd_train.h5"),
        times,
        units,
        np.arange(NUM_TRAIN) % 20,
        **kinds,
    )
    times, units = _samples(NUM_TEST, TEST_SIGNATURE)
    _write(
        str(tmp_path / "shd_test.h5"),
        times,
        units,
        (3 * np.arange(NUM_TEST) + 1) % 20,
        **kinds,
    )
    return str(tmp_path)


def _rows(counts, dt, signature):
    """The file rows of loaded samples, found by their signature spikes."""
    signatures = counts[:, int(SIGNATURE_TIME / dt), signature : signature + 40]
    assert np.all(signatures.sum(axis=1) == 1)
    return signatures.argmax(axis=1)


def _digest(directory):
    digest = hashlib.sha256()
    for name in sorted(os.listdir(directory)):
        with open(os.path.join(directory, name), "rb") as f:
            digest.update(f.read())
    return digest.hexdigest()


def test_bin_spikes_counts_each_spike_in_its_bin():
    times = [0.0, 0.001, 0.006, 0.0019, 0.5, 0.999, 1.0, 1.5, -0.001]
    units = [0, 0, 4, 4, 699, 1, 2, 2, 3]
    counts = shd.bin_spikes(times, units, dt=0.002)
    assert counts.shape == (500, 700) and counts.dtype == np.uint8
    expected = np.zeros((500, 700), np.uint8)
    expected[0, 0] = 2  # two spikes in one bin; 0.0 is in bin 0
    expected[3, 4] = 1  # exactly at an edge: the later bin
    expected[0, 4] = 1
    expected[250, 699] = 1
    expected[499, 1] = 1  # 1.0, 1.5 and -0.001 are dropped
    np.testing.assert_array_equal(counts, expected)


def _authors_bins(times, dt, duration=1.0):
    """The ELM authors' bins: `np.digitize` against float64 edges."""
    edges = np.arange(0, duration + dt, dt)
    bins = np.digitize(np.asarray(times), edges) - 1
    return np.where((bins >= 0) & (bins < len(edges) - 1), bins, -1)


def test_bin_spikes_bins_float16_times_as_the_authors_do():
    # float16(0.5698) = 0.56982..., below the edge 0.57 of bin 57; compared
    # in float16 that edge is the same number and the spike went to bin 57.
    times = np.array([0.5698, 0.1], np.float16)
    counts = shd.bin_spikes(times, [1, 2], dt=0.01)
    assert counts[56, 1] == 1 and counts[9, 2] == 1 and counts.sum() == 2
    assert _authors_bins(times, 0.01).tolist() == [56, 9]


def _near_edges(dtype, dt, steps):
    """Times at, and a few ulps either side of, every edge, as `dtype`."""
    edges = (np.arange(steps + 1) * dt).astype(dtype)
    times = [edges]
    for direction in (np.inf, -np.inf):
        moved = edges
        for _ in range(2):
            moved = np.nextafter(moved, np.array(direction, dtype))
            times.append(moved)
    times = np.concatenate(times)
    return times[times >= 0]


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("dt", [0.002, 0.01, 0.04])
def test_bin_spikes_matches_np_digitize_near_every_edge(dtype, dt):
    steps = round(1.0 / dt)
    times = _near_edges(dtype, dt, steps)
    units = np.arange(times.size) % shd.NUM_CHANNELS
    bins = _authors_bins(times, dt)
    expected = np.zeros((steps, shd.NUM_CHANNELS), np.uint8)
    np.add.at(expected, (bins[bins >= 0], units[bins >= 0]), 1)
    counts = shd.bin_spikes(times, units, dt=dt)
    np.testing.assert_array_equal(counts, expected)


def test_bin_spikes_saturates_at_255():
    counts = shd.bin_spikes(np.full(300, 0.3), np.full(300, 10), dt=0.01)
    assert counts.shape == (100, 700)
    assert counts[30, 10] == shd.MAX_COUNT == 255 and counts.sum() == 255


@pytest.mark.parametrize(
    "dt, duration", [(0.003, 1.0), (0.0, 1.0), (-0.01, 1.0), (0.01, 0.0)]
)
def test_bin_spikes_rejects_dt_that_does_not_split_duration(dt, duration):
    with pytest.raises(ValueError, match="dt|duration"):
        shd.bin_spikes([0.1], [1], dt=dt, duration=duration)


@pytest.mark.parametrize("units", [[700], [-1], [1.5]])
def test_bin_spikes_rejects_units_that_are_no_channel(units):
    with pytest.raises(ValueError, match="units"):
        shd.bin_spikes([0.1], units)


@pytest.mark.parametrize(
    "dt, steps, edge_bin", [(0.002, 500, 250), (0.01, 100, 50)]
)
def test_load_bins_the_known_spikes(data_dir, dt, steps, edge_bin):
    counts, labels = shd.load(data_dir, split="test", dt=dt)
    assert counts.shape == (NUM_TEST, steps, 700) and counts.dtype == np.uint8
    assert labels.dtype == np.int32
    np.testing.assert_array_equal(labels, (3 * np.arange(NUM_TEST) + 1) % 20)
    np.testing.assert_array_equal(
        _rows(counts, dt, TEST_SIGNATURE), np.arange(NUM_TEST)
    )
    train, _ = shd.load(data_dir, split="train", dt=dt, seed=0)
    val, _ = shd.load(data_dir, split="val", dt=dt, seed=0)
    both = np.concatenate([train, val])
    first = both[
        np.flatnonzero(
            np.concatenate(
                [
                    _rows(train, dt, TRAIN_SIGNATURE),
                    _rows(val, dt, TRAIN_SIGNATURE),
                ]
            )
            == 0
        )[0]
    ]
    first[int(SIGNATURE_TIME / dt), TRAIN_SIGNATURE] -= 1
    expected = np.zeros((steps, 700), np.uint8)
    expected[0, 3] = 2
    expected[round(0.004 / dt), 9] = 1
    expected[edge_bin, 5] = 1
    expected[round(0.75 / dt), 699] = 1
    np.testing.assert_array_equal(first, expected)  # 1.0 and 1.25 dropped


def test_val_is_a_seeded_fifth_of_the_train_file(data_dir):
    def rows(split, seed):
        counts, labels = shd.load(data_dir, split=split, dt=0.05, seed=seed)
        found = _rows(counts, 0.05, TRAIN_SIGNATURE)
        np.testing.assert_array_equal(labels, found % 20)
        return found

    train, val = rows("train", 3), rows("val", 3)
    assert not set(train) & set(val)
    assert sorted(np.concatenate([train, val])) == list(range(NUM_TRAIN))
    np.testing.assert_array_equal(val, shd.split_indices(NUM_TRAIN, 3)["val"])
    np.testing.assert_array_equal(rows("val", 3), val)
    assert not np.array_equal(rows("val", 4), val)
    share = len(shd.split_indices(20_000, seed=0)["val"]) / 20_000
    assert abs(share - shd.VALIDATION_FRACTION) < 0.01


def test_load_leaves_the_files_unchanged(data_dir):
    before = _digest(data_dir)
    shd.load(data_dir, split="val")
    shd.adding(data_dir, split="test", dt=0.05)
    assert _digest(data_dir) == before


def test_missing_file_says_how_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"shd_train\.h5.*zenkelab"):
        shd.load(str(tmp_path), split="val")
    with pytest.raises(FileNotFoundError, match="shd_test.h5"):
        shd.load(str(tmp_path), split="test")


def test_bad_split_lists_the_splits(data_dir):
    with pytest.raises(ValueError, match="'train', 'val', 'test'"):
        shd.load(data_dir, split="validation")


@pytest.mark.parametrize("key", ["spikes/units", "spikes/times", "labels"])
def test_missing_key_names_the_file_and_key(tmp_path, key):
    path = str(tmp_path / "shd_test.h5")
    _write(
        path,
        [[0.1]],
        [[1]],
        [0],
        time_dtype="float32",
        unit_dtype="uint16",
        skip=(key,),
    )
    with pytest.raises(ValueError, match=f"shd_test.h5.*`{key}`"):
        shd.load(str(tmp_path), split="test")


@pytest.mark.parametrize(
    "units, labels, key",
    [
        ([[1], [700]], [0, 1], "spikes/units"),
        ([[1], [2, 3]], [0, 1], "spikes/units"),
        ([[1]], [0, 1], "spikes/units"),
        ([[1], [2]], [0, 1, 2], "labels"),
        ([[1], [2]], [0, 20], "labels"),
    ],
)
def test_malformed_file_names_the_file_and_key(tmp_path, units, labels, key):
    path = str(tmp_path / "shd_test.h5")
    _write(
        path,
        [[0.1], [0.2]],
        units,
        labels,
        time_dtype="float32",
        unit_dtype="uint16",
    )
    with pytest.raises(ValueError, match=f"shd_test.h5.*`{key}`"):
        shd.load(str(tmp_path), split="test")


def _strings(values):
    """One variable-length string per sample, as h5py stores `str`."""
    return np.array(values, object), h5py.string_dtype()


# Each case: the dataset replaced, (data, dtype) or plain data, and the
# dataset the message must name. The other datasets are well formed.
MALFORMED = {
    "times-strings": ("spikes/times", _strings(["0.1", "0.2"]), "spikes/times"),
    "times-fixed-strings": (
        "spikes/times",
        np.array([b"0.1", b"0.2"]),
        "spikes/times",
    ),
    "times-2d-floats": ("spikes/times", np.full((2, 1), 0.1), "spikes/times"),
    "times-negative": (
        "spikes/times",
        (
            _vlen([np.array([0.1]), np.array([-0.2])]),
            h5py.vlen_dtype(np.float32),
        ),
        "spikes/times",
    ),
    "times-nan": (
        "spikes/times",
        (
            _vlen([np.array([np.nan]), np.array([0.2])]),
            h5py.vlen_dtype(np.float32),
        ),
        "spikes/times",
    ),
    "times-inf": (
        "spikes/times",
        (
            _vlen([np.array([0.1]), np.array([np.inf])]),
            h5py.vlen_dtype(np.float64),
        ),
        "spikes/times",
    ),
    "times-fewer-samples": (
        "spikes/times",
        (_vlen([np.array([0.1])]), h5py.vlen_dtype(np.float32)),
        "spikes/units",
    ),
    "units-strings": ("spikes/units", _strings(["1", "2"]), "spikes/units"),
    "units-nan": (
        "spikes/units",
        (
            _vlen([np.array([1.0]), np.array([np.nan])]),
            h5py.vlen_dtype(np.float32),
        ),
        "spikes/units",
    ),
    "units-ragged-against-times": (
        "spikes/units",
        (_vlen([np.array([1]), np.array([2, 3])]), h5py.vlen_dtype(np.int16)),
        "spikes/units",
    ),
    "labels-strings": ("labels", np.array([b"0", b"1"]), "labels"),
    "labels-negative": ("labels", np.array([0, -1], np.int8), "labels"),
    "labels-fraction": ("labels", np.array([0.0, 1.5]), "labels"),
    "labels-nan": ("labels", np.array([0.0, np.nan]), "labels"),
    "labels-2d": ("labels", np.zeros((2, 1), np.uint8), "labels"),
    "labels-vlen": (
        "labels",
        (_vlen([np.array([0]), np.array([1])]), h5py.vlen_dtype(np.uint8)),
        "labels",
    ),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_every_malformed_dataset_names_the_file_and_dataset(tmp_path, case):
    key, value, named = MALFORMED[case]
    path = str(tmp_path / "shd_test.h5")
    _write(
        path,
        [[0.1], [0.2]],
        [[1], [2]],
        [0, 1],
        time_dtype="float32",
        unit_dtype="uint16",
        skip=(key,),
    )
    data, dtype = value if isinstance(value, tuple) else (value, None)
    with h5py.File(path, "a") as f:
        f.create_dataset(key, data=data, dtype=dtype)
    with pytest.raises(ValueError, match=f"shd_test.h5.*`{named}`"):
        shd.load(str(tmp_path), split="test")


def test_a_file_that_is_no_hdf5_is_a_value_error(tmp_path):
    (tmp_path / "shd_test.h5").write_bytes(b"not an HDF5 file")
    with pytest.raises(ValueError, match="shd_test.h5"):
        shd.load(str(tmp_path), split="test")


def _drawn(data_dir, split, counts, dt=0.05):
    """The (first, second) file rows each SHD-Adding sample was made of."""
    steps = counts.shape[1] // 2
    pool, _ = shd.load(data_dir, split=split, dt=dt)
    signature = TEST_SIGNATURE if split == "test" else TRAIN_SIGNATURE
    rows = _rows(pool, dt, signature)
    halves = [counts[:, :steps], counts[:, steps:]]
    found = []
    for half in halves:
        matches = (half[:, None] == pool[None]).all(axis=(2, 3))
        assert np.all(matches.sum(axis=1) == 1)
        found.append(rows[matches.argmax(axis=1)])
    return np.stack(found, axis=1)


def test_adding_concatenates_two_samples_and_adds_their_digits(data_dir):
    counts, labels = shd.adding(
        data_dir, split="train", dt=0.05, seed=0, num_samples=64
    )
    assert counts.shape == (64, 40, 700) and counts.dtype == np.uint8
    assert labels.dtype == np.int32
    pairs = _drawn(data_dir, "train", counts)
    file_labels = np.arange(NUM_TRAIN) % 20
    np.testing.assert_array_equal(
        labels, file_labels[pairs[:, 0]] % 10 + file_labels[pairs[:, 1]] % 10
    )
    assert labels.max() <= 18 and len(np.unique(labels)) > 5


def test_adding_val_and_test_are_fixed_and_train_follows_seed(data_dir):
    for split in ("val", "test"):
        first = shd.adding(data_dir, split=split, dt=0.05, seed=0)
        for seed in (1, None):
            again = shd.adding(data_dir, split=split, dt=0.05, seed=seed)
            np.testing.assert_array_equal(again[0], first[0])
            np.testing.assert_array_equal(again[1], first[1])
    a = shd.adding(data_dir, split="train", dt=0.05, seed=0)[0]
    np.testing.assert_array_equal(
        shd.adding(data_dir, split="train", dt=0.05, seed=0)[0], a
    )
    assert not np.array_equal(
        shd.adding(data_dir, split="train", dt=0.05, seed=1)[0], a
    )


def test_adding_draws_num_samples_default_the_split_size(data_dir):
    counts, labels = shd.adding(data_dir, split="test", dt=0.01)
    assert counts.shape == (NUM_TEST, 200, 700) and labels.shape == (NUM_TEST,)
    counts, labels = shd.adding(data_dir, split="test", dt=0.01, num_samples=3)
    assert counts.shape == (3, 200, 700) and labels.shape == (3,)
    with pytest.raises(ValueError, match="num_samples"):
        shd.adding(data_dir, split="test", num_samples=0)


# Each: a call with one bad number, the error and the argument it names.
BAD_NUMBERS = [
    (shd.num_steps, {"dt": "0.01"}, TypeError, "dt"),
    (shd.num_steps, {"dt": True}, TypeError, "dt"),
    (shd.num_steps, {"dt": float("nan")}, ValueError, "dt"),
    (shd.num_steps, {"dt": float("inf")}, ValueError, "dt"),
    (shd.num_steps, {"duration": -1.0}, ValueError, "duration"),
    (shd.num_steps, {"duration": None}, TypeError, "duration"),
    (
        shd.bin_spikes,
        {"times": [0.1], "units": [1], "dt": 0.0},
        ValueError,
        "dt",
    ),
    (shd.split_indices, {"num_samples": -1}, ValueError, "num_samples"),
    (shd.split_indices, {"num_samples": 2.0}, TypeError, "num_samples"),
    (shd.split_indices, {"num_samples": 4, "seed": 1.5}, TypeError, "seed"),
    (shd.split_indices, {"num_samples": 4, "seed": -1}, ValueError, "seed"),
    (shd.load, {"seed": -1}, ValueError, "seed"),
    (shd.load, {"seed": 1.5}, TypeError, "seed"),
    (shd.load, {"dt": 0.003}, ValueError, "dt"),
    (shd.load, {"duration": float("inf")}, ValueError, "duration"),
    (shd.adding, {"seed": -1}, ValueError, "seed"),
    (shd.adding, {"seed": "1"}, TypeError, "seed"),
    (shd.adding, {"split_seed": -1}, ValueError, "split_seed"),
    (shd.adding, {"split_seed": 0.5}, TypeError, "split_seed"),
    (shd.adding, {"num_samples": 0}, ValueError, "num_samples"),
    (shd.adding, {"num_samples": 2.5}, TypeError, "num_samples"),
    (shd.adding, {"dt": -0.01}, ValueError, "dt"),
    (shd.write_synthetic, {"num_train": 0}, ValueError, "num_train"),
    (shd.write_synthetic, {"num_test": 1.5}, TypeError, "num_test"),
    (shd.write_synthetic, {"seed": -1}, ValueError, "seed"),
    (shd.write_synthetic, {"seed": True}, TypeError, "seed"),
]


@pytest.mark.parametrize(
    "function, kwargs, error, name",
    BAD_NUMBERS,
    ids=[f"{f.__name__}-{k}" for f, k, _, _ in BAD_NUMBERS],
)
def test_every_numeric_argument_is_checked_by_name(
    tmp_path, function, kwargs, error, name
):
    folder = {
        shd.load: "data_dir",
        shd.adding: "data_dir",
        shd.write_synthetic: "directory",
    }.get(function)
    if folder:
        kwargs = {folder: str(tmp_path / "data"), **kwargs}
    with pytest.raises(error, match=f"`{name}`"):
        function(**kwargs)
    assert not os.path.exists(tmp_path / "data")  # checked before any work


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("synthetic"))
    return shd.write_synthetic(directory, num_train=400, num_test=200, seed=0)


def test_write_synthetic_writes_the_release_layout(synthetic):
    assert sorted(os.listdir(synthetic)) == ["shd_test.h5", "shd_train.h5"]
    with h5py.File(os.path.join(synthetic, "shd_test.h5"), "r") as f:
        assert h5py.check_vlen_dtype(f["spikes/times"].dtype) == np.float32
        assert h5py.check_vlen_dtype(f["spikes/units"].dtype) == np.uint16
        assert f["labels"].shape == f["extra/speaker"].shape == (200,)
        times = f["spikes/times"][0]
        assert np.all(np.diff(times) >= 0) and 300 < len(times) < 3000
        test_speakers = set(f["extra/speaker"][()])
    with h5py.File(os.path.join(synthetic, "shd_train.h5"), "r") as f:
        train_speakers = set(f["extra/speaker"][()])
    assert {10, 11} <= test_speakers and not {10, 11} & train_speakers
    assert shd.is_synthetic(synthetic)


def test_the_real_layout_is_not_synthetic(data_dir):
    assert not shd.is_synthetic(data_dir)


def test_synthetic_round_trip_has_every_class(synthetic):
    counts, labels = shd.load(synthetic, split="test", dt=0.02)
    assert counts.shape == (200, 50, 700)
    np.testing.assert_array_equal(
        np.bincount(labels, minlength=20), np.full(20, 10)
    )
    train, _ = shd.load(synthetic, split="train", dt=0.02)
    val, _ = shd.load(synthetic, split="val", dt=0.02)
    assert len(train) + len(val) == 400 and 40 < len(val) < 120
    assert 800 < counts.sum(axis=(1, 2)).mean() < 2000


def test_write_synthetic_is_seeded(tmp_path):
    a = shd.write_synthetic(str(tmp_path / "a"), num_train=20, num_test=20)
    b = shd.write_synthetic(str(tmp_path / "b"), num_train=20, num_test=20)
    c = shd.write_synthetic(
        str(tmp_path / "c"), num_train=20, num_test=20, seed=1
    )
    counts_a = shd.load(a, split="test", dt=0.05)[0]
    np.testing.assert_array_equal(
        shd.load(b, split="test", dt=0.05)[0], counts_a
    )
    assert not np.array_equal(shd.load(c, split="test", dt=0.05)[0], counts_a)


def _features(counts, windows, pool=10):
    """log(1 + counts) summed over `windows` time windows and channel groups."""
    n, steps, channels = counts.shape
    summed = counts.reshape(
        n, windows, steps // windows, channels // pool, pool
    ).sum(axis=(2, 4))
    return np.log1p(summed.reshape(n, -1).astype(np.float64))


def _softmax_regression_accuracy(train, train_labels, test, test_labels):
    mean, scale = train.mean(axis=0), train.std(axis=0) + 1e-6
    train, test = (train - mean) / scale, (test - mean) / scale
    weights = np.zeros((train.shape[1], shd.NUM_CLASSES))
    bias = np.zeros(shd.NUM_CLASSES)
    targets = np.eye(shd.NUM_CLASSES)[train_labels]
    for _ in range(300):
        logits = train @ weights + bias
        probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
        probabilities /= probabilities.sum(axis=1, keepdims=True)
        gradient = (probabilities - targets) / len(train)
        weights -= 0.5 * (train.T @ gradient + 1e-3 * weights)
        bias -= 0.5 * gradient.sum(axis=0)
    return np.mean((test @ weights + bias).argmax(axis=1) == test_labels)


def test_synthetic_classes_need_the_order_of_activity(synthetic):
    """Total counts per channel tell a class pair, not which of its two."""
    train, train_labels = shd.load(synthetic, split="train", dt=0.02)
    test, test_labels = shd.load(synthetic, split="test", dt=0.02)
    accuracy = {
        windows: _softmax_regression_accuracy(
            _features(train, windows),
            train_labels,
            _features(test, windows),
            test_labels,
        )
        for windows in (1, 5)
    }
    assert accuracy[1] < 0.6  # measured about 0.49; chance 0.05
    assert accuracy[5] > 0.85  # measured about 0.94


@pytest.mark.parametrize(
    "umask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)]
)
def test_write_synthetic_files_have_the_umask_mode(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        shd.write_synthetic(str(tmp_path), num_train=2, num_test=2)
    finally:
        os.umask(old)
    assert sorted(os.listdir(tmp_path)) == ["shd_test.h5", "shd_train.h5"]
    for name in os.listdir(tmp_path):
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == mode


def _fail_building(file, *args):
    file.create_dataset("spikes/times", data=np.zeros(3))
    raise RuntimeError("killed while building the file")


def _fail_syncing(descriptor):
    raise RuntimeError("killed before the rename")


@pytest.mark.parametrize(
    "where, replacement",
    [
        ("building", ("_fill_h5", _fail_building)),
        ("after-writing-bytes", ("fsync", _fail_syncing)),
    ],
)
def test_a_write_killed_midway_keeps_the_old_files(
    tmp_path, monkeypatch, where, replacement
):
    directory = shd.write_synthetic(str(tmp_path), num_train=3, num_test=2)
    before = _digest(directory)
    name, function = replacement
    monkeypatch.setattr(
        shd.synthetic if name == "_fill_h5" else os, name, function
    )
    with pytest.raises(RuntimeError, match="killed"):
        shd.write_synthetic(directory, num_train=3, num_test=2, seed=1)
    monkeypatch.undo()
    assert sorted(os.listdir(directory)) == ["shd_test.h5", "shd_train.h5"]
    assert _digest(directory) == before
    assert shd.load(directory, split="test", dt=0.05)[0].shape == (2, 20, 700)


def test_write_synthetic_into_a_file_is_a_value_error(tmp_path):
    (tmp_path / "afile").write_bytes(b"")
    with pytest.raises(ValueError, match="afile"):
        shd.write_synthetic(str(tmp_path / "afile"), num_train=1, num_test=1)
    with pytest.raises(ValueError, match="sub"):
        shd.write_synthetic(
            str(tmp_path / "afile" / "sub"), num_train=1, num_test=1
        )
