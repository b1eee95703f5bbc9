"""SHD's files: reading the release's HDF5, the splits, SHD-Adding."""

import os

import numpy as np

from keras_elm.checks import check_int as _check_int
from keras_elm.data.shd.spikes import _CHUNK_SAMPLES
from keras_elm.data.shd.spikes import _KEYS
from keras_elm.data.shd.spikes import ADDING_SEEDS
from keras_elm.data.shd.spikes import DT
from keras_elm.data.shd.spikes import DURATION
from keras_elm.data.shd.spikes import FILES
from keras_elm.data.shd.spikes import NUM_CHANNELS
from keras_elm.data.shd.spikes import NUM_CLASSES
from keras_elm.data.shd.spikes import URL
from keras_elm.data.shd.spikes import VALIDATION_FRACTION
from keras_elm.data.shd.spikes import _bin_samples
from keras_elm.data.shd.spikes import _check_seed
from keras_elm.data.shd.spikes import _check_split
from keras_elm.data.shd.spikes import _h5py
from keras_elm.data.shd.spikes import _units_error
from keras_elm.data.shd.spikes import num_steps


def _how_to_get(data_dir):
    return (
        f"Download {' and '.join(name + '.zip' for name in FILES.values())} "
        f"from {URL} (the Spiking Heidelberg Digits) and unzip them into "
        f"{data_dir!r}, or let keras_elm do it, md5-checked: "
        f"`keras_elm.data.shd.download({data_dir!r})` (the examples' "
        f"--download flag); or write a synthetic stand-in there with "
        f"`keras_elm.data.shd.write_synthetic({data_dir!r})`."
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
    >>> from keras_elm.data import shd
    >>> directory = shd.write_synthetic(tempfile.mkdtemp(), num_train=40,
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
    >>> from keras_elm.data import shd
    >>> directory = shd.write_synthetic(tempfile.mkdtemp(), num_train=40,
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
    >>> from keras_elm.data import shd
    >>> is_synthetic(shd.write_synthetic(tempfile.mkdtemp(), num_train=20,
    ...                                  num_test=20))
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
