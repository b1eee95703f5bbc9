"""Spiking Heidelberg Digits (Cramer et al. 2020) and SHD-Adding.

SHD holds spoken digits, 0-9 in English (labels 0-9) and in German (labels
10-19), turned into spikes of 700 channels by a model of the inner ear.
The release's files `shd_train.h5` and `shd_test.h5` (8,156 and 2,264
samples) hold, per sample, a variable-length array of spike times in
seconds (`spikes/times`) and one of channel ids 0..699 (`spikes/units`),
and the labels (`labels`); `extra/` holds speakers and other metadata.

Nothing is downloaded unless asked: `download()` fetches the release's
zips (md5-checked), unzips them and returns the folder. `load()` cuts
every sample at `duration` seconds and counts its spikes in bins of `dt`
seconds per channel, as the ELM authors do: `(N, T, 700)` counts,
`T = duration / dt`. `adding()` builds SHD-Adding: two samples one after
the other in time, labelled with the sum of their digits (19 classes).

The real recordings cannot be made here, so `write_synthetic()` writes an
offline stand-in in the same HDF5 layout, marked as synthetic
(`is_synthetic()`): 20 classes of made-up spike patterns that a model
must tell apart by the temporal order of their activity, not merely by
which channels fire (its docstring has the recipe).

`splits()` gives the train/val/test counts of the examples, from the files
in a folder or from the synthetic stand-in written once. The code is in
`spikes` (constants, binning), `release` (the files, `load`, `adding`),
`synthetic` (`write_synthetic`) and `download` (`download`); every name
is reachable here.
"""

import os
import tempfile

from keras_elm.checks import check_int as _check_int
from keras_elm.data import files
from keras_elm.data import splitting
from keras_elm.data.shd import release
from keras_elm.data.shd import spikes
from keras_elm.data.shd import synthetic
from keras_elm.data.shd.fetching import ARCHIVES
from keras_elm.data.shd.fetching import CHECKSUMS
from keras_elm.data.shd.fetching import DOWNLOAD_SIZE
from keras_elm.data.shd.fetching import RELEASE_COUNTS
from keras_elm.data.shd.fetching import URLS
from keras_elm.data.shd.fetching import download
from keras_elm.data.shd.release import _path  # noqa: F401
from keras_elm.data.shd.release import _read  # noqa: F401
from keras_elm.data.shd.release import adding
from keras_elm.data.shd.release import load
from keras_elm.data.shd.release import split_indices
from keras_elm.data.shd.spikes import ADDING_CLASSES
from keras_elm.data.shd.spikes import ADDING_SEEDS
from keras_elm.data.shd.spikes import DT
from keras_elm.data.shd.spikes import DURATION
from keras_elm.data.shd.spikes import FILES
from keras_elm.data.shd.spikes import MAX_COUNT
from keras_elm.data.shd.spikes import NUM_CHANNELS
from keras_elm.data.shd.spikes import NUM_CLASSES
from keras_elm.data.shd.spikes import SPLITS
from keras_elm.data.shd.spikes import URL
from keras_elm.data.shd.spikes import VALIDATION_FRACTION
from keras_elm.data.shd.spikes import _h5py  # noqa: F401
from keras_elm.data.shd.spikes import bin_spikes
from keras_elm.data.shd.spikes import num_steps
from keras_elm.data.shd.synthetic import _fill_h5  # noqa: F401
from keras_elm.data.shd.synthetic import _templates  # noqa: F401
from keras_elm.data.shd.synthetic import write_synthetic

HELP = (
    "Pass --download to fetch shd_train.h5.zip and shd_test.h5.zip "
    "(about 170 MB, md5-checked) from https://zenkelab.org/datasets/ "
    "into --data-dir (default ~/.keras/datasets/keras_elm/shd), or "
    "download and unzip them yourself and pass --data-dir ~/data/shd "
    "(the folder holding shd_train.h5 and shd_test.h5); without "
    "--data-dir the run uses synthetic spiking digits."
)
SYNTHETIC_NOTE = (
    "keras_elm's synthetic spiking digits (keras_elm.data.shd."
    "write_synthetic), not the real SHD; pass --data-dir for SHD"
)

__all__ = [
    "ADDING_CLASSES",
    "ADDING_SEEDS",
    "ARCHIVES",
    "CHECKSUMS",
    "DOWNLOAD_SIZE",
    "DT",
    "DURATION",
    "FILES",
    "HELP",
    "MAX_COUNT",
    "NUM_CHANNELS",
    "NUM_CLASSES",
    "RELEASE_COUNTS",
    "SPLITS",
    "SYNTHETIC_NOTE",
    "URL",
    "URLS",
    "VALIDATION_FRACTION",
    "adding",
    "bin_spikes",
    "download",
    "is_synthetic",
    "load",
    "num_steps",
    "release",
    "spikes",
    "split_indices",
    "splits",
    "synthetic",
    "write_synthetic",
]


def is_synthetic(data_dir):
    """Whether the SHD files of `data_dir` come from `write_synthetic()`.

    Reads the marker `extra/synthetic` of `shd_train.h5` (or of
    `shd_test.h5` when there is no train file); the real files have none.

    Args:
        data_dir: the folder holding `shd_train.h5` and/or `shd_test.h5`;
            None, the data `splits()` uses without a folder: the synthetic
            stand-in.

    Returns:
        `True` for a synthetic stand-in, `False` otherwise.

    Example:

    >>> is_synthetic(None)
    True
    """
    if data_dir is None:
        return True
    return release.is_synthetic(data_dir)


def _test_samples(num_train):
    """The samples of the synthetic test file for `num_train` train ones."""
    return max(10, num_train // 4)


def _folder(data_dir, num_samples, seed, cache_dir, smoke):
    """The SHD files: `data_dir`, or the synthetic stand-in (made once)."""
    if data_dir:
        return data_dir
    num_train = _check_int("num_samples", num_samples, 1)
    num_test = _test_samples(num_train)

    def write(path):
        write_synthetic(path, num_train=num_train, num_test=num_test, seed=seed)
        return path

    if smoke:
        return files.made_once(
            cache_dir, write, num_samples=num_train, seed=seed, shd=""
        )
    if cache_dir is None:
        cache_dir = tempfile.mkdtemp(prefix="keras_elm_")
    return files.publish_folder(
        os.path.join(
            cache_dir, f"synthetic_shd_{num_train}_{num_test}_seed{seed}"
        ),
        write,
    )


def splits(
    data_dir=None,
    *,
    num_samples=2000,
    dt=DT,
    seed=0,
    cache_dir=None,
    smoke=False,
    adding=False,
):
    """The train, val and test counts of the SHD and SHD-Adding examples.

    From the files in `data_dir`; without it, from the synthetic stand-in
    (`write_synthetic()`, `num_samples` train samples and a quarter as many
    test ones, at least 10), written once under
    `<cache_dir>/synthetic_shd_<n>_<m>_seed<seed>` (with `smoke`:
    `<cache_dir>/smoke_data/`). `is_synthetic(data_dir)` says which.

    Args:
        data_dir: the folder of `shd_train.h5` and `shd_test.h5`, or None.
        num_samples: train samples of the stand-in (without `data_dir`).
        dt: bin width in seconds (the paper: 0.002).
        seed: seed of the stand-in, of the train/val split and (with
            `adding`) of the train pairs.
        cache_dir: the folder of the stand-in; None: a new temporary one.
        smoke: without `data_dir`, keep the stand-in with the smoke
            fixtures.
        adding: SHD-Adding (`adding()`): pairs of samples, their digits
            summed.

    Returns:
        `{"train": (counts, labels), "val": ..., "test": ...}`: `uint8`
        counts `(N, T, 700)` (`(N, 2 * T, 700)` with `adding`), `int32`
        labels `(N,)`.

    Raises:
        FileNotFoundError: a file of `data_dir` is missing.

    Example:

    >>> data = splits(num_samples=20, dt=0.05)
    >>> tuple(data["test"][0].shape)
    (10, 20, 700)
    """
    data_dir = splitting.check_folder("data_dir", data_dir)
    cache_dir = splitting.check_folder("cache_dir", cache_dir)
    smoke = splitting.check_bool("smoke", smoke)
    pairs = splitting.check_bool("adding", adding)
    seed = _check_int("seed", seed, 0)
    num_steps(dt)
    folder = _folder(data_dir, num_samples, seed, cache_dir, smoke)
    if pairs:
        return {
            split: release.adding(
                folder,
                split=split,
                dt=dt,
                seed=seed if split == "train" else None,
            )
            for split in SPLITS
        }
    return {
        split: load(folder, split=split, dt=dt, seed=seed) for split in SPLITS
    }
