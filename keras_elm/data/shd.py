"""Spiking Heidelberg Digits (Cramer et al. 2020) and SHD-Adding.

SHD holds spoken digits, 0-9 in English (labels 0-9) and in German (labels
10-19), turned into spikes of 700 channels by a model of the inner ear.
The release's files `shd_train.h5` and `shd_test.h5` (8,156 and 2,264
samples) hold, per sample, a variable-length array of spike times in
seconds (`spikes/times`) and one of channel ids 0..699 (`spikes/units`),
and the labels (`labels`); `extra/` holds speakers and other metadata.

Nothing is downloaded. `load()` cuts every sample at `duration` seconds
and counts its spikes in bins of `dt` seconds per channel, as the ELM
authors do: `(N, T, 700)` counts, `T = duration / dt`. `adding()` builds
SHD-Adding: two samples one after the other in time, labelled with the sum
of their digits (19 classes).

The real recordings cannot be made here, so `write_synthetic()` writes an
offline stand-in in the same HDF5 layout, marked as synthetic
(`is_synthetic()`): 20 classes of made-up spike patterns that a model
must tell apart by the temporal order of their activity, not merely by
which channels fire (its docstring has the recipe).
"""

import io
import itertools
import os

import numpy as np

from keras_elm.checks import check_choice as _check_choice
from keras_elm.checks import check_int as _check_int
from keras_elm.data.files import atomic_write
from keras_elm.data.files import check_writable

NUM_CHANNELS = 700
NUM_CLASSES = 20
ADDING_CLASSES = 19
FILES = {"train": "shd_train.h5", "test": "shd_test.h5"}
SPLITS = ("train", "val", "test")
DURATION = 1.0
DT = 0.002
VALIDATION_FRACTION = 0.2
URL = "https://zenkelab.org/datasets/"
# The pairs of the fixed SHD-Adding sets: the same in every call.
ADDING_SEEDS = {"val": 1, "test": 2}
MAX_COUNT = 255  # counts are uint8, saturated here

_KEYS = ("spikes/times", "spikes/units", "labels")
_CHUNK_SAMPLES = 256  # samples binned at once: bounds the temporary memory
_NUM_SPEAKERS = 12
_TRAIN_SPEAKERS = 10  # speakers 10 and 11 speak in the test file only
_TEMPLATE_SEED = 20_200_910  # the synthetic classes are the same for any seed
_CLASS_NAMES = tuple(
    f"{language}-{digit}"
    for language, digits in (
        (
            "english",
            (
                "zero",
                "one",
                "two",
                "three",
                "four",
                "five",
                "six",
                "seven",
                "eight",
                "nine",
            ),
        ),
        (
            "german",
            (
                "null",
                "eins",
                "zwei",
                "drei",
                "vier",
                "fuenf",
                "sechs",
                "sieben",
                "acht",
                "neun",
            ),
        ),
    )
    for digit in digits
)


def _h5py():
    try:
        import h5py
    except ImportError as error:
        raise ImportError(
            "keras_elm.data.shd reads and writes HDF5 files with h5py, which "
            "is not installed. Install it with `pip install "
            '"keras-elm[data]"` (or `pip install h5py`).'
        ) from error
    return h5py


def _check_split(split):
    _check_choice("split", split, SPLITS)


def _check_seed(seed):
    return None if seed is None else _check_int("seed", seed, 0)


def num_steps(dt=DT, duration=DURATION):
    """The number of time bins `T = duration / dt`, checking both.

    Args:
        dt: bin width in seconds, > 0.
        duration: where samples are cut, in seconds, > 0; a whole number
            of bins.

    Returns:
        `T` as a Python `int`.

    Example:

    >>> num_steps(0.002), num_steps(0.01)
    (500, 100)
    """
    for name, value in (("dt", dt), ("duration", duration)):
        if isinstance(value, bool) or not isinstance(
            value, (int, float, np.integer, np.floating)
        ):
            raise TypeError(
                f"Argument `{name}` must be a number of seconds. Received: "
                f"{name}={value!r} of type {type(value).__name__}"
            )
        if not np.isfinite(value) or value <= 0:
            raise ValueError(
                f"Argument `{name}` must be a finite number of seconds > 0. "
                f"Received: {name}={value!r}"
            )
    ratio = float(duration) / float(dt)
    steps = round(ratio)
    if steps < 1 or abs(ratio - steps) > 1e-6 * steps:
        raise ValueError(
            f"Argument `dt` must split `duration` into a whole number of "
            f"bins; duration / dt = {ratio:g}. Received: dt={dt!r}, "
            f"duration={duration!r}"
        )
    return steps


def _units_error(units):
    """The position of the first unit that is no channel id, or None."""
    if units.dtype.kind not in "iuf":
        return 0 if units.size else None
    bad = (units < 0) | (units >= NUM_CHANNELS)
    if units.dtype.kind == "f":
        bad |= units != np.floor(units)
    return int(np.argmax(bad)) if bad.any() else None


def _edges(steps, dt):
    """The float64 bin edges `k * dt`, `k = 0..steps`: the authors' edges.

    They are, value for value, the edges `np.arange(0, duration + dt, dt)`
    of the ELM authors' SHD loader.
    """
    return np.arange(steps + 1, dtype=np.float64) * float(dt)


def _cells(times, units, steps, dt):
    """`bin * NUM_CHANNELS + unit` of each spike, -1 where it is dropped.

    Binned as the authors do: `np.digitize` of the times, cast to float64,
    against float64 edges (a float16 time just below an edge stays in the
    bin before it).
    """
    bins = np.digitize(times.astype(np.float64), _edges(steps, dt)) - 1
    # NaN sorts after every edge, so it is dropped like a late spike.
    cells = bins * NUM_CHANNELS + units.astype(np.int64)
    cells[(bins < 0) | (bins >= steps)] = -1
    return cells


def _count_into(counts, flat):
    """Adds up the spikes of the flat cell indices into `counts` (1-D)."""
    flat = np.sort(flat, kind="stable")  # nearly sorted already: fast
    if flat.size == 0:
        return
    starts = np.flatnonzero(np.diff(flat, prepend=-1))
    runs = np.diff(starts, append=flat.size)
    counts[flat[starts]] = np.minimum(runs, MAX_COUNT)


def _bin_samples(times, units, lengths, steps, dt):
    """Counts `(len(lengths), steps, NUM_CHANNELS)` of concatenated samples."""
    counts = np.zeros((len(lengths), steps, NUM_CHANNELS), np.uint8)
    sample_cells = steps * NUM_CHANNELS
    ends = np.cumsum(lengths)
    for start in range(0, len(lengths), _CHUNK_SAMPLES):
        stop = min(start + _CHUNK_SAMPLES, len(lengths))
        first, last = ends[start] - lengths[start], ends[stop - 1]
        cells = _cells(times[first:last], units[first:last], steps, dt)
        samples = np.repeat(np.arange(stop - start), lengths[start:stop])
        kept = cells >= 0
        _count_into(
            counts[start:stop].reshape(-1),
            samples[kept] * sample_cells + cells[kept],
        )
    return counts


def bin_spikes(times, units, *, dt=DT, duration=DURATION):
    """Spike counts of one sample per time bin and channel.

    Bin `k` holds the spikes with `k * dt <= t < (k + 1) * dt`; a spike
    at an edge falls in the later bin. This is the ELM authors' binning,
    so the same files give the same counts: `np.digitize(t, edges) - 1`
    with float64 edges `np.arange(0, duration + dt, dt)` (computed as
    `k * dt`, `k = 0..T`) and the times cast to float64, whatever their
    stored precision. A float16 time is compared as the value it stores:
    `float16(0.5698)` is 0.56982..., below the edge 0.57, so at `dt=0.01`
    it falls in bin 56, not 57. Spikes at `t >= T * dt` (`duration`; the
    authors' loader drops them too), at `t < 0` and at NaN times are
    dropped.

    Args:
        times: 1-D spike times in seconds, any float or integer type.
        units: 1-D channel ids 0..699 of the spikes, as long as `times`.
        dt: bin width in seconds.
        duration: where the sample is cut, in seconds; a whole number of
            bins of `dt`.

    Returns:
        `uint8` counts of shape `(T, 700)`, `T = round(duration / dt)`,
        saturated at `MAX_COUNT = 255` (an SHD channel holds a few spikes
        per 2 ms bin). Cast them to float for a model.

    Example:

    >>> counts = bin_spikes([0.0, 0.001, 0.0025, 1.0], [3, 3, 699, 5])
    >>> counts.shape, counts.dtype, int(counts[0, 3]), int(counts[1, 699])
    ((500, 700), dtype('uint8'), 2, 1)
    >>> int(counts.sum())  # the spike at 1.0 s is dropped
    3
    """
    steps = num_steps(dt, duration)
    times, units = np.asarray(times), np.asarray(units)
    if times.ndim != 1 or units.shape != times.shape:
        raise ValueError(
            f"Arguments `times` and `units` must be 1-D arrays of the same "
            f"length. Received shapes {times.shape} and {units.shape}."
        )
    if times.dtype.kind not in "iuf":
        raise ValueError(
            f"Argument `times` must hold numbers (seconds). Received dtype "
            f"{times.dtype}."
        )
    bad = _units_error(units)
    if bad is not None:
        raise ValueError(
            f"Argument `units` must hold channel ids 0..{NUM_CHANNELS - 1}. "
            f"Received units[{bad}]={units[bad]!r}"
        )
    return _bin_samples(times, units, np.array([times.size]), steps, dt)[0]


def _how_to_get(data_dir):
    return (
        f"Download {', '.join(name + '.gz' for name in FILES.values())} "
        f"from {URL} (the Spiking Heidelberg Digits) and unpack them into "
        f"{data_dir!r} with `gunzip`, or write a synthetic stand-in there "
        f"with `keras_elm.data.shd.write_synthetic({data_dir!r})`."
    )


def _path(data_dir, name):
    data_dir = os.path.expanduser(os.fspath(data_dir))
    path = os.path.join(data_dir, name)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"SHD file {path} does not exist. {_how_to_get(data_dir)}"
        )
    return path


def _open(path):
    h5py = _h5py()
    try:
        return h5py.File(path, "r")
    except OSError as error:
        raise ValueError(
            f"Cannot read the SHD file {path} as HDF5: {error}"
        ) from error


def _dataset(file, key, path):
    h5py = _h5py()
    dataset = file.get(key) if _parents_are_groups(file, key) else None
    if not isinstance(dataset, h5py.Dataset):
        raise ValueError(  # noqa: TRY004 (a malformed file, not an argument)
            f"{path} has no dataset `{key}`; an SHD file holds "
            f"{', '.join(_KEYS)}. {_how_to_get(os.path.dirname(path))}"
        )
    return dataset


def _parents_are_groups(file, key):
    h5py = _h5py()
    parent = key.rpartition("/")[0]
    return not parent or isinstance(file.get(parent), h5py.Group)


def _read_vlen(file, key, path):
    """The per-sample arrays of `key`, concatenated, and their lengths."""
    h5py = _h5py()
    dataset = _dataset(file, key, path)
    base = h5py.check_vlen_dtype(dataset.dtype)  # `str` for strings
    if (
        not isinstance(base, np.dtype)
        or dataset.ndim != 1
        or base.kind not in "iuf"
    ):
        raise ValueError(
            f"{path}: dataset `{key}` must hold one variable-length array "
            f"of numbers per sample. Found shape {dataset.shape} of dtype "
            f"{dataset.dtype} (base {base})."
        )
    arrays = dataset[()]
    lengths = np.fromiter((len(a) for a in arrays), np.int64, len(arrays))
    values = (
        np.concatenate(arrays) if len(arrays) else np.zeros(0, base)
    ).astype(base, copy=False)
    return values, lengths


def _read_labels(file, path, count):
    dataset = _dataset(file, "labels", path)
    labels = np.asarray(dataset[()])
    if labels.ndim != 1 or len(labels) != count:
        raise ValueError(
            f"{path}: dataset `labels` must hold one label per sample, "
            f"{count} as `spikes/times` does. Found shape {labels.shape}."
        )
    expected = (
        f"{path}: dataset `labels` must hold integers 0..{NUM_CLASSES - 1}."
    )
    if labels.dtype.kind not in "iuf":
        raise ValueError(f"{expected} Found dtype {dataset.dtype}.")
    bad = ~(
        (labels >= 0) & (labels < NUM_CLASSES) & (labels == np.floor(labels))
    )
    if bad.any():
        raise ValueError(
            f"{expected} Found {labels[bad][:10]!r}, the first in sample "
            f"{int(np.argmax(bad))}."
        )
    return labels.astype(np.int32)


def _check_times(times, lengths, path):
    """Raises naming the file unless every spike time is finite and >= 0."""
    bad = times < 0
    if times.dtype.kind == "f":
        bad |= ~np.isfinite(times)
    if bad.any():
        first = int(np.argmax(bad))
        sample = int(np.searchsorted(np.cumsum(lengths), first, side="right"))
        raise ValueError(
            f"{path}: dataset `spikes/times` must hold finite spike times "
            f">= 0 (seconds). Found {times[first]!r} in sample {sample}."
        )


def _read(path):
    """Spike times, units, per-sample lengths and labels of a file."""
    with _open(path) as file:
        times, lengths = _read_vlen(file, "spikes/times", path)
        units, unit_lengths = _read_vlen(file, "spikes/units", path)
        if len(unit_lengths) != len(lengths):
            raise ValueError(
                f"{path}: datasets `spikes/times` and `spikes/units` must "
                f"hold the same number of samples. Found {len(lengths)} and "
                f"{len(unit_lengths)}."
            )
        if np.any(unit_lengths != lengths):
            sample = int(np.argmax(unit_lengths != lengths))
            raise ValueError(
                f"{path}: sample {sample} has {lengths[sample]} spike times "
                f"in `spikes/times` but {unit_lengths[sample]} units in "
                f"`spikes/units`; they must match."
            )
        labels = _read_labels(file, path, len(lengths))
    _check_times(times, lengths, path)
    bad = _units_error(units)
    if bad is not None:
        sample = int(np.searchsorted(np.cumsum(lengths), bad, side="right"))
        raise ValueError(
            f"{path}: dataset `spikes/units` must hold channel ids "
            f"0..{NUM_CHANNELS - 1}. Found {units[bad]!r} in sample {sample}."
        )
    return times, units, lengths, labels


def split_indices(num_samples, seed=0):
    """The seeded train/validation split of the train file: `{split: rows}`.

    Every sample goes to `"val"` with probability `VALIDATION_FRACTION`
    (0.2), independently (a Bernoulli draw), and to `"train"` otherwise.

    Args:
        num_samples: number of samples in the train file.
        seed: seed of the draw; the same seed gives the same split.

    Returns:
        A dict from `"train"` and `"val"` to sorted `int64` row arrays,
        disjoint, together `0..num_samples - 1`.

    Example:

    >>> rows = split_indices(10, seed=0)
    >>> sorted(rows["train"].tolist() + rows["val"].tolist()) == list(range(10))
    True
    """
    num_samples = _check_int("num_samples", num_samples, 0)
    seed = _check_int("seed", seed, 0)
    is_val = (
        np.random.default_rng(seed).random(num_samples) < VALIDATION_FRACTION
    )
    return {"train": np.flatnonzero(~is_val), "val": np.flatnonzero(is_val)}


def load(data_dir, *, split="train", dt=DT, duration=DURATION, seed=0):
    """Binned spike counts and labels of one SHD split.

    Reads `<data_dir>/shd_train.h5` (for `"train"` and `"val"`) or
    `shd_test.h5` (for `"test"`) read-only; any release's element types
    are accepted. `"val"` is a seeded Bernoulli(`VALIDATION_FRACTION`)
    share of the train file (`split_indices`) and `"train"` the rest, so
    the two are disjoint for one `seed`. The samples keep the file's order.
    Each sample is binned as `bin_spikes` does.

    Args:
        data_dir: the folder holding `shd_train.h5` and `shd_test.h5` (the
            release's files unpacked, or `write_synthetic()`'s).
        split: `"train"`, `"val"` or `"test"`.
        dt: bin width in seconds (the paper: 0.002; the authors' notebook:
            0.01).
        duration: where the samples are cut, in seconds; a whole number of
            bins of `dt`.
        seed: seed of the train/validation split.

    Returns:
        `(counts, labels)`: `uint8` counts `(N, T, 700)`, `T = duration /
        dt`, saturated at 255, and `int32` labels `(N,)` in 0..19 (0-9
        English digits, 10-19 German). At 2 ms the real train split is
        about 2.3 GB of counts; cast batches to float in the model.

    Example:

    >>> import tempfile
    >>> directory = write_synthetic(tempfile.mkdtemp(), num_train=40,
    ...                             num_test=20)
    >>> counts, labels = load(directory, split="test", dt=0.01)
    >>> counts.shape, counts.dtype, labels.shape
    ((20, 100, 700), dtype('uint8'), (20,))
    """
    _check_split(split)
    steps = num_steps(dt, duration)
    seed = _check_int("seed", seed, 0)
    name = FILES["test" if split == "test" else "train"]
    times, units, lengths, labels = _read(_path(data_dir, name))
    if split != "test":
        rows = np.zeros(len(lengths), bool)
        rows[split_indices(len(lengths), seed)[split]] = True
        spikes = np.repeat(rows, lengths)
        times, units, lengths = times[spikes], units[spikes], lengths[rows]
        labels = labels[rows]
    return _bin_samples(times, units, lengths, steps, dt), labels


def adding(
    data_dir,
    *,
    split="train",
    dt=DT,
    duration=DURATION,
    num_samples=None,
    seed=None,
    split_seed=0,
):
    """SHD-Adding: two samples in a row, labelled with the sum of their digits.

    Each sample of the result is a pair `(a, b)` of samples of `split`,
    drawn uniformly with replacement: `a`'s counts for the first `T` bins,
    then `b`'s for the next `T`. Its label is `labels[a] % 10 + labels[b]
    % 10` (the digit, whatever the language), 0..18. For `"val"` and
    `"test"` the pairs come from the fixed seeds `ADDING_SEEDS`, so they
    are the same in every call, whatever `seed` is; for `"train"`, `seed`
    draws them (None: new pairs each call, e.g. each epoch).

    Args:
        data_dir: the folder holding `shd_train.h5` and `shd_test.h5`.
        split: `"train"`, `"val"` or `"test"`: where the pairs' samples
            come from (`load`).
        dt: bin width in seconds.
        duration: where each of the two samples is cut, in seconds.
        num_samples: pairs to draw; None means as many as `split` has
            samples.
        seed: seed of the `"train"` pairs, or None; ignored for `"val"` and
            `"test"`.
        split_seed: seed of the train/validation split (`load`'s `seed`).

    Returns:
        `(counts, labels)`: `uint8` counts `(num_samples, 2 * T, 700)` and
        `int32` labels `(num_samples,)` in 0..18 (`ADDING_CLASSES = 19`).

    Example:

    >>> import tempfile
    >>> directory = write_synthetic(tempfile.mkdtemp(), num_train=40,
    ...                             num_test=20)
    >>> counts, labels = adding(directory, split="test", dt=0.01,
    ...                         num_samples=8)
    >>> counts.shape, bool(labels.max() <= 18)
    ((8, 200, 700), True)
    """
    seed = _check_seed(seed)
    split_seed = _check_int("split_seed", split_seed, 0)
    if num_samples is not None:
        num_samples = _check_int("num_samples", num_samples, 1)
    counts, labels = load(
        data_dir, split=split, dt=dt, duration=duration, seed=split_seed
    )
    if len(labels) == 0:
        raise ValueError(
            f"The {split!r} split of the SHD files in {data_dir!r} holds no "
            f"samples to pair."
        )
    num_samples = len(labels) if num_samples is None else num_samples
    rng = np.random.default_rng(
        seed if split == "train" else ADDING_SEEDS[split]
    )
    pairs = rng.integers(0, len(labels), size=(num_samples, 2))
    steps = counts.shape[1]
    paired = np.empty((num_samples, 2 * steps, NUM_CHANNELS), np.uint8)
    for start in range(0, num_samples, _CHUNK_SAMPLES):
        chunk = pairs[start : start + _CHUNK_SAMPLES]
        paired[start : start + len(chunk), :steps] = counts[chunk[:, 0]]
        paired[start : start + len(chunk), steps:] = counts[chunk[:, 1]]
    digits = labels % 10
    return paired, (digits[pairs[:, 0]] + digits[pairs[:, 1]]).astype(np.int32)


def is_synthetic(data_dir):
    """Whether the SHD files of `data_dir` come from `write_synthetic()`.

    Reads the marker `extra/synthetic` of `shd_train.h5` (or of
    `shd_test.h5` when there is no train file); the real files have none.

    Args:
        data_dir: the folder holding `shd_train.h5` and/or `shd_test.h5`.

    Returns:
        `True` for a synthetic stand-in, `False` otherwise.

    Example:

    >>> import tempfile
    >>> is_synthetic(write_synthetic(tempfile.mkdtemp(), num_train=20,
    ...                              num_test=20))
    True
    """
    data_dir = os.path.expanduser(os.fspath(data_dir))
    names = [
        name
        for name in (FILES["train"], FILES["test"])
        if os.path.isfile(os.path.join(data_dir, name))
    ]
    path = _path(data_dir, names[0] if names else FILES["train"])
    with _open(path) as file:
        marker = (
            file.get("extra/synthetic")
            if _parents_are_groups(file, "extra/synthetic")
            else None
        )
        return bool(
            isinstance(marker, _h5py().Dataset) and np.asarray(marker[()]).any()
        )


def _templates():
    """The bands of each pair of synthetic classes, fixed for every seed.

    A band is a bump of spike rate whose centre channel moves linearly
    from `start_channel` to `end_channel` while the utterance goes from
    `start` to `end` (fractions of its length). Columns: start, end,
    start_channel, end_channel, width (channels), mean spikes.
    """
    rng = np.random.default_rng(_TEMPLATE_SEED)
    pairs = []
    for _ in range(NUM_CLASSES // 2):
        cuts = np.concatenate([[0.0], np.cumsum(rng.dirichlet([4, 4, 4]))])
        bands = []
        for start, end in itertools.pairwise(cuts):
            start, end = max(start - 0.04, 0.0), min(end + 0.04, 1.0)
            channel = rng.uniform(60, 560)
            for formant in range(int(rng.integers(1, 3))):
                low = channel + formant * rng.uniform(80, 140)
                high = np.clip(low + rng.uniform(-120, 120), 20, 680)
                bands.append(
                    (
                        start,
                        end,
                        low,
                        high,
                        rng.uniform(5, 14),
                        rng.uniform(500, 900) * (end - start),
                    )
                )
        pairs.append(np.array(bands))
    speakers = np.stack(
        [
            rng.normal(0, 20, _NUM_SPEAKERS),
            rng.uniform(0.85, 1.15, _NUM_SPEAKERS),
        ],
        axis=1,
    )
    return pairs, speakers


def _synthetic_sample(rng, bands, reverse, speaker):
    """Spike times (float32, sorted) and units (uint16) of one utterance."""
    shift = speaker[0] + rng.normal(0, 6)
    length = 0.6 * speaker[1] * rng.uniform(0.9, 1.1)
    onset = rng.uniform(0.02, 0.12)
    warp = rng.uniform(-0.4, 0.4)
    kept = 1.0 - rng.uniform(0.0, 0.3)  # dropout of spikes, thinning
    band = np.repeat(np.arange(len(bands)), rng.poisson(bands[:, 5] * kept))
    start, end, low, high, width = bands[band, :5].T
    where = rng.random(band.size)
    channels = (
        low + (high - low) * where + shift + rng.normal(0, 1, band.size) * width
    )
    fraction = start + (end - start) * where
    if reverse:
        fraction = 1.0 - fraction
    fraction = fraction + warp * fraction * (1.0 - fraction)
    times = onset + length * fraction + rng.normal(0, 0.003, band.size)
    background = rng.poisson(0.3 * NUM_CHANNELS * DURATION)
    times = np.concatenate([times, rng.uniform(0, DURATION, background)])
    channels = np.concatenate(
        [np.rint(channels), rng.integers(0, NUM_CHANNELS, background)]
    )
    inside = (channels >= 0) & (channels < NUM_CHANNELS) & (times >= 0)
    order = np.argsort(times[inside], kind="stable")
    return (
        times[inside][order].astype(np.float32),
        channels[inside][order].astype(np.uint16),
    )


def _synthetic_split(rng, num_samples, speakers_in_split):
    pairs, speakers = _templates()
    labels = rng.permutation(np.arange(num_samples) % NUM_CLASSES)
    speaker_ids = rng.integers(0, speakers_in_split, num_samples)
    times, units = [], []
    for label, speaker in zip(labels, speaker_ids):
        t, u = _synthetic_sample(
            rng, pairs[label // 2], label % 2 == 1, speakers[speaker]
        )
        times.append(t)
        units.append(u)
    return times, units, labels, speaker_ids


def _object_array(arrays):
    values = np.empty(len(arrays), object)
    for i, array in enumerate(arrays):
        values[i] = array
    return values


def _fill_h5(file, times, units, labels, speakers):
    """Writes one synthetic split into the open `h5py.File` `file`."""
    h5py = _h5py()
    file.create_dataset(
        "spikes/times",
        data=_object_array(times),
        dtype=h5py.vlen_dtype(np.float32),
    )
    file.create_dataset(
        "spikes/units",
        data=_object_array(units),
        dtype=h5py.vlen_dtype(np.uint16),
    )
    file.create_dataset("labels", data=labels.astype(np.uint8))
    file.create_dataset("extra/speaker", data=speakers.astype(np.uint8))
    file.create_dataset(
        "extra/keys",
        data=np.array([name.encode("ascii") for name in _CLASS_NAMES]),
    )
    file.create_dataset("extra/synthetic", data=np.uint8(1))
    file.attrs["description"] = (
        "SYNTHETIC stand-in for the Spiking Heidelberg Digits, written by "
        "keras_elm.data.shd.write_synthetic; not recordings of speech."
    )


def _write_h5(path, times, units, labels, speakers):
    # HDF5 is built in memory, where the library may read back what it
    # wrote, then written whole through `atomic_write` (umask's mode,
    # old file kept until the new one is complete).
    buffer = io.BytesIO()
    with _h5py().File(buffer, "w") as file:
        _fill_h5(file, times, units, labels, speakers)
    with atomic_write(path) as f:
        f.write(buffer.getbuffer())


def write_synthetic(directory, *, num_train=2000, num_test=500, seed=0):
    """Writes a synthetic stand-in for SHD: `shd_train.h5`, `shd_test.h5`.

    The files have the release's layout (`spikes/times` variable-length
    float32 seconds, sorted; `spikes/units` variable-length uint16 channels
    0..699; `labels` uint8 0..19; `extra/speaker`, `extra/keys`) plus the
    marker `extra/synthetic = 1` and a `description` attribute, so that
    `load`, `adding` and `is_synthetic` read them. They are spike patterns,
    not speech:

    - The 20 classes come in 10 pairs, `(0, 1), (2, 3), ..., (18, 19)`
      (the digits of a pair differ, so SHD-Adding needs both too). A pair
      has a template of three consecutive segments, each with one or two
      "formant" bands: bumps of spike rate, a few channels wide, whose
      centre sweeps linearly across channels. The second class of a pair
      plays the template backwards in time, so both classes use the same
      channels with the same expected number of spikes each: only the
      temporal order of the activity tells them apart, and a readout of
      total counts per channel is right about half the time at best.
    - Every sample: one of 12 speakers (10 in the train file; 10 and 11 only
      in the test file, as SHD holds two speakers out) shifts all channels
      and sets the tempo; on top of that a random channel shift (6
      channels), utterance length (0.46-0.76 s), onset (20-120 ms), a
      smooth time warp, 3 ms spike jitter, random dropout of 0-30 % of the
      spikes, and Poisson background noise of 0.3 spikes/s per channel.
      About 1,200 spikes per sample, nearly all before 1 s.

    The templates are fixed; `seed` draws the samples, the same for the
    same call. Each file is written atomically (a temporary file, then a
    rename, with the mode the umask gives a new file): an interrupted call
    leaves each file whole, old or new, and no temporary file once the
    next write runs. 2,000 + 500 samples take a few seconds and about
    17 MB.

    Args:
        directory: the folder to write into (created if needed); a ValueError
            says so at once if it cannot be written.
        num_train: samples in `shd_train.h5` (`"train"` and `"val"`).
        num_test: samples in `shd_test.h5`.
        seed: seed of the samples.

    Returns:
        `directory`, to pass to `load` as `data_dir`.

    Example:

    >>> import tempfile
    >>> directory = write_synthetic(tempfile.mkdtemp(), num_train=40,
    ...                             num_test=20)
    >>> is_synthetic(directory), load(directory, split="test")[0].shape
    (True, (20, 500, 700))
    """
    num_train = _check_int("num_train", num_train, 1)
    num_test = _check_int("num_test", num_test, 1)
    seed = _check_int("seed", seed, 0)
    _h5py()
    directory = os.path.expanduser(os.fspath(directory))
    check_writable(directory, what="`directory`")
    train_rng, test_rng = (
        np.random.default_rng(child)
        for child in np.random.SeedSequence(seed).spawn(2)
    )
    for name, rng, count, speakers in (
        (FILES["train"], train_rng, num_train, _TRAIN_SPEAKERS),
        (FILES["test"], test_rng, num_test, _NUM_SPEAKERS),
    ):
        _write_h5(
            os.path.join(directory, name),
            *_synthetic_split(rng, count, speakers),
        )
    return directory
