"""SHD's constants, its h5py import, and the binning of spikes into counts."""

import numpy as np

from keras_elm.checks import check_choice as _check_choice
from keras_elm.checks import check_int as _check_int

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
