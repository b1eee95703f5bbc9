"""A synthetic stand-in for SHD, written in the release's HDF5 layout."""

import io
import itertools
import os

import numpy as np

from keras_elm.checks import check_int as _check_int
from keras_elm.data.files import atomic_write
from keras_elm.data.files import check_writable
from keras_elm.data.shd.spikes import DURATION
from keras_elm.data.shd.spikes import FILES
from keras_elm.data.shd.spikes import NUM_CHANNELS
from keras_elm.data.shd.spikes import NUM_CLASSES
from keras_elm.data.shd.spikes import _h5py

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
    >>> from keras_elm.data import shd
    >>> shd.is_synthetic(directory), shd.load(directory, split="test")[0].shape
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
