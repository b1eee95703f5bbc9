"""NeuronIO's release files: reading, writing, naming and checking them.

The release's files (about 115 GB, on Kaggle:
`selfishgene/single-neurons-as-deep-nets-nmda-train-data` and
`...-nmda-test-data`) are Python-2 pickles named
`sim__saved_InputSpikes_DVTs__<N>_outSpikes__128_simulationRuns__6_secDuration__randomSeed_<seed>.p`,
each `{"Params": {...}, "Results": {"listOfSingleSimulationDicts": [sim, ...]}}`
with, per simulation, `exInputSpikeTimes` and `inhInputSpikeTimes` (dicts:
segment 0..638 -> spike times in whole ms), `outputSpikeTimes` (ms, float)
and `somaVoltageLowRes` (one sample per ms, mV). Pickles can run code when
they are read: only read files you trust.

`read_file` checks a file's structure and keeps its simulations compact
(`Simulation`: input spikes sparse); `simulation_arrays` makes the dense
arrays the model sees; `list_files` finds a split's files in a folder.
"""

import dataclasses
import glob
import os
import pickle
import re

import numpy as np

from keras_elm.checks import check_choice as _check_choice
from keras_elm.data.files import atomic_write

NUM_SEGMENTS = 639
NUM_INPUTS = 2 * NUM_SEGMENTS
SIM_DURATION_MS = 6000
SIMULATIONS_PER_FILE = 128
SOMA_THRESHOLD = -55.0
SOMA_OFFSET = -67.7
SOMA_SCALE = 0.1
SPLITS = ("train", "val", "test")
SPLIT_FOLDERS = {
    "train": ("train",),
    "val": ("valid", "val", "validation"),
    "test": ("test",),
}
SIMULATION_KEYS = (
    "exInputSpikeTimes",
    "inhInputSpikeTimes",
    "outputSpikeTimes",
    "somaVoltageLowRes",
)
FILE_NAME = (
    "sim__saved_InputSpikes_DVTs__{spikes}_outSpikes__{runs}_"
    "simulationRuns__{seconds}_secDuration__randomSeed_{seed}.p"
)
KAGGLE_URLS = (
    (
        "https://www.kaggle.com/datasets/selfishgene/"
        "single-neurons-as-deep-nets-nmda-train-data"
    ),
    (
        "https://www.kaggle.com/datasets/selfishgene/"
        "single-neurons-as-deep-nets-nmda-test-data"
    ),
)

_RUNS_IN_NAME = re.compile(r"__(\d+)_simulationRuns")
_SIGNS = np.concatenate(
    [np.ones(NUM_SEGMENTS, np.int8), -np.ones(NUM_SEGMENTS, np.int8)]
)


def _how_to_get():
    return (
        f"NeuronIO is not downloaded by keras_elm: get it from "
        f"{KAGGLE_URLS[0]} and {KAGGLE_URLS[1]} (about 115 GB) and put the "
        f".p files in <data_dir>/train/, <data_dir>/valid/ and "
        f"<data_dir>/test/ (or all in one folder). "
        f"`keras_elm.data.neuronio.simulate(directory)` writes a small "
        f"synthetic stand-in in the same format."
    )


@dataclasses.dataclass(frozen=True, eq=False)
class Simulation:
    """One simulation of a NeuronIO file, compact (input spikes kept sparse).

    A dense simulation is 6,000 x 1,278 values; its input spikes are a few
    tens of thousands. `simulation_arrays()` makes the dense arrays.

    Attributes:
        input_times: `int32 (K,)` ms bins of the input spikes, sorted.
        input_channels: `int16 (K,)` their channels: 0..638 excitatory
            input of that segment, 639..1277 inhibitory input of segment
            `channel - 639`.
        spike_bins: `int32 (S,)` sorted distinct bins `int(t - 0.5)` of the
            output spikes.
        soma: `float32 (T,)` soma target `(min(V, -55) + 67.7) * 0.1`.
    """

    input_times: np.ndarray
    input_channels: np.ndarray
    spike_bins: np.ndarray
    soma: np.ndarray

    @property
    def duration_ms(self):
        """The number of 1 ms steps, `T`."""
        return int(self.soma.shape[0])

    @property
    def num_spikes(self):
        """The number of output spike bins (what evaluation's filter counts)."""
        return int(self.spike_bins.size)


def _key(mapping, key, where):
    if not isinstance(mapping, dict):
        raise ValueError(
            f"{where}: expected a dict with key {key!r}. Found: "
            f"{type(mapping).__name__}"
        )
    if key not in mapping:
        keys = ", ".join(repr(k) for k in list(mapping)[:8])
        raise ValueError(f"{where}: missing key {key!r}. Found keys: {keys}")
    return mapping[key]


def _numbers(value, where, ndims=(0, 1)):
    """`value` as a flat float64 array if it has `ndims` dims, or raises.

    Strings, dicts and other objects that NumPy would turn into numbers or
    object arrays are refused, as are ragged lists and non-finite values.
    """
    if isinstance(value, bool) or not isinstance(
        value, (list, tuple, np.ndarray, int, float, np.number)
    ):
        raise ValueError(
            f"{where}: expected an array of numbers. Found: "
            f"{type(value).__name__} {_preview(value)}"
        )
    try:
        array = np.asarray(value)
        if array.dtype.kind == "O":  # e.g. a list of Python numbers and None
            array = array.astype(np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"{where}: expected a flat array of numbers, not a ragged list "
            f"or other objects. Found: {_preview(value)} ({error})"
        ) from None
    if array.dtype.kind not in "iuf" or array.ndim not in ndims:
        raise ValueError(
            f"{where}: expected a {ndims[-1]}-D array of numbers. Found "
            f"shape {array.shape} of dtype {array.dtype}."
        )
    array = array.astype(np.float64).ravel()
    if not np.isfinite(array).all():
        raise ValueError(
            f"{where}: expected finite numbers; found "
            f"{array[~np.isfinite(array)][0]}."
        )
    return array


def _preview(value, size=60):
    text = repr(value)
    return text if len(text) <= size else text[:size] + "..."


def _spike_times(spikes_by_segment, where, duration):
    """`(times, segments)` of one `{segment: spike times}` dict."""
    if not isinstance(spikes_by_segment, dict):
        raise ValueError(
            f"{where}: expected a dict from segment index (0..."
            f"{NUM_SEGMENTS - 1}) to spike times. Found: "
            f"{type(spikes_by_segment).__name__}"
        )
    times, segments = [], []
    for segment, values in spikes_by_segment.items():
        if (
            isinstance(segment, bool)
            or not isinstance(segment, (int, np.integer))
            or not 0 <= segment < NUM_SEGMENTS
        ):
            raise ValueError(
                f"{where}: expected segment indices 0..{NUM_SEGMENTS - 1}. "
                f"Found: {segment!r}"
            )
        values = _numbers(
            values, f"{where}, segment {segment}: spike times in ms"
        )
        # Whole ms; a spike outside the recorded time has no bin.
        values = np.floor(values).astype(np.int64)
        values = values[(values >= 0) & (values < duration)]
        times.append(values)
        segments.append(np.full(values.size, segment, np.int16))
    if not times:
        return np.zeros(0, np.int64), np.zeros(0, np.int16)
    return np.concatenate(times), np.concatenate(segments)


def _parse_simulation(sim, where):
    for key in SIMULATION_KEYS:
        _key(sim, key, where)
    what = f"{where}, 'somaVoltageLowRes' (mV, one sample per ms)"
    voltage = _numbers(sim["somaVoltageLowRes"], what, ndims=(1,))
    if voltage.size == 0:
        raise ValueError(
            f"{what}: expected a trace of voltages. Found an empty one."
        )
    duration = voltage.size
    ex_times, ex_segments = _spike_times(
        sim["exInputSpikeTimes"], f"{where}, 'exInputSpikeTimes'", duration
    )
    inh_times, inh_segments = _spike_times(
        sim["inhInputSpikeTimes"], f"{where}, 'inhInputSpikeTimes'", duration
    )
    times = np.concatenate([ex_times, inh_times])
    channels = np.concatenate([ex_segments, inh_segments + NUM_SEGMENTS])
    order = np.argsort(times, kind="stable")
    output = _numbers(
        sim["outputSpikeTimes"], f"{where}, 'outputSpikeTimes' (ms)"
    )
    # int(t - 0.5), truncating towards zero as the authors' cast does.
    bins = np.trunc(output - 0.5).astype(np.int64)
    bins = np.unique(bins[(bins >= 0) & (bins < duration)])
    soma = (np.minimum(voltage, SOMA_THRESHOLD) - SOMA_OFFSET) * SOMA_SCALE
    return Simulation(
        input_times=times[order].astype(np.int32),
        input_channels=channels[order].astype(np.int16),
        spike_bins=bins.astype(np.int32),
        soma=soma.astype(np.float32),
    )


def read_file(path):
    """The simulations of one NeuronIO file, compact.

    Args:
        path: a `.p` file of the release (or of `simulate()`).

    Returns:
        A list of `Simulation`: per simulation the input spikes as sorted
        `(input_times, input_channels)` pairs, the output `spike_bins` and
        the `float32` `soma` target. Input spike times outside the trace
        (`0 <= t < len(somaVoltageLowRes)`) are dropped.

    Raises:
        FileNotFoundError: `path` does not exist.
        ValueError: the file is not a pickle, lacks a key of the release's
            structure, or holds no array of finite numbers there (a
            string, a dict, a ragged list), or a voltage trace whose length
            is not `Params["totalSimDurationInSec"] * 1000` (or, without
            it, that of the file's first simulation); the message names
            the file, the simulation and the key.

    Example:

    >>> import tempfile
    >>> from keras_elm.data.neuronio import simulate
    >>> paths = simulate(tempfile.mkdtemp(), simulations_per_file=2,
    ...                  duration_ms=1000)
    >>> sims = read_file(paths[0])
    >>> len(sims), sims[0].soma.shape
    (2, (1000,))
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"NeuronIO file {path} does not exist. {_how_to_get()}"
        )
    try:
        with open(path, "rb") as f:
            # Python-2 pickles hold numpy buffers as byte strings.
            content = pickle.load(f, encoding="latin1")
    except Exception as error:
        raise ValueError(
            f"{path} is not a readable NeuronIO pickle "
            f"({type(error).__name__}: {error})."
        ) from error
    results = _key(content, "Results", path)
    simulations = _key(
        results, "listOfSingleSimulationDicts", f"{path}, 'Results'"
    )
    if not isinstance(simulations, (list, tuple)) or not simulations:
        raise ValueError(
            f"{path}: 'listOfSingleSimulationDicts' must be a non-empty "
            f"list of simulation dicts."
        )
    # Every trace as long as the simulated time (the authors' loader copies
    # each into rows of `totalSimDurationInSec * 1000` steps), else as the
    # first.
    duration = _params_duration(content)
    reason = "Params['totalSimDurationInSec']"
    parsed = []
    for index, sim in enumerate(simulations):
        where = f"{path}, simulation {index}"
        parsed.append(_parse_simulation(sim, where))
        if duration is None:
            duration, reason = parsed[0].duration_ms, "simulation 0"
        if parsed[-1].duration_ms != duration:
            raise ValueError(
                f"{where}, 'somaVoltageLowRes': expected {duration} samples "
                f"(one per ms), as {reason} says. Found "
                f"{parsed[-1].duration_ms}."
            )
    return parsed


def _params_duration(content):
    """`Params["totalSimDurationInSec"]` in ms, or None if it is not given."""
    params = content.get("Params") if isinstance(content, dict) else None
    seconds = (
        params.get("totalSimDurationInSec")
        if isinstance(params, dict)
        else None
    )
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, (int, float, np.integer, np.floating))
        or not np.isfinite(seconds)
        or seconds <= 0
    ):
        return None
    return round(float(seconds) * 1000)


def simulation_arrays(sim, dtype="float32"):
    """The dense input and targets of one simulation.

    Args:
        sim: a `Simulation` of `read_file()`.
        dtype: dtype of the inputs (`"int8"` takes a quarter of the memory).

    Returns:
        `(inputs, spikes, soma)`: inputs `(T, 1278)` with +1 at excitatory
        and -1 at inhibitory spikes (0 elsewhere), `float32 (T,)` spike
        target (0/1) and `float32 (T,)` soma target.

    Example:

    >>> import tempfile
    >>> from keras_elm.data.neuronio import simulate
    >>> paths = simulate(tempfile.mkdtemp(), simulations_per_file=1,
    ...                  duration_ms=1000)
    >>> inputs, spikes, soma = simulation_arrays(read_file(paths[0])[0])
    >>> inputs.shape, sorted(set(inputs.ravel().tolist()))
    ((1000, 1278), [-1.0, 0.0, 1.0])
    """
    inputs = np.zeros((sim.duration_ms, NUM_INPUTS), dtype)
    inputs[sim.input_times, sim.input_channels] = _SIGNS[sim.input_channels]
    spikes = np.zeros(sim.duration_ms, np.float32)
    spikes[sim.spike_bins] = 1.0
    return inputs, spikes, sim.soma.copy()


def list_files(data_dir, split="train"):
    """The NeuronIO files of a split, sorted.

    `data_dir` either holds one folder per split, `train/`, `valid/` (or
    `val/`, `validation/`) and `test/`, each searched recursively for `.p`
    files, or is one flat folder of `.p` files (not searched below): then
    every split gets all of them (a folder of `simulate()` files for a
    smoke run; put real files in split folders, or pass `files=` to
    `load`).

    Args:
        data_dir: the folder, as above.
        split: `"train"`, `"val"` or `"test"`.

    Returns:
        A sorted list of paths.

    Raises:
        FileNotFoundError: no such folder, no folder for the split where
            others exist, or no `.p` file in it.

    Example:

    >>> import os, tempfile
    >>> from keras_elm.data.neuronio import simulate
    >>> directory = tempfile.mkdtemp()
    >>> _ = simulate(os.path.join(directory, "test"), duration_ms=1000,
    ...              simulations_per_file=1)
    >>> len(list_files(directory, split="test"))
    1
    """
    _check_choice("split", split, SPLITS)
    data_dir = os.path.expanduser(os.fspath(data_dir))
    if not os.path.isdir(data_dir):
        raise FileNotFoundError(
            f"NeuronIO folder {data_dir} does not exist. {_how_to_get()}"
        )
    split_folders = [
        name
        for names in SPLIT_FOLDERS.values()
        for name in names
        if os.path.isdir(os.path.join(data_dir, name))
    ]
    folder = data_dir
    if split_folders:
        found = [name for name in SPLIT_FOLDERS[split] if name in split_folders]
        if not found:
            expected = " or ".join(
                os.path.join(data_dir, name) for name in SPLIT_FOLDERS[split]
            )
            raise FileNotFoundError(
                f"{data_dir} has split folders ({', '.join(split_folders)}) "
                f"but none for split {split!r}: expected {expected}."
            )
        folder = os.path.join(data_dir, found[0])
    # Split folders are searched recursively (they may hold the release's
    # own folders); a flat folder is not, lest it mix in other sets below.
    pattern = ("**", "*.p") if split_folders else ("*.p",)
    files = sorted(
        glob.glob(os.path.join(glob.escape(folder), *pattern), recursive=True)
    )
    if not files:
        raise FileNotFoundError(
            f"No NeuronIO files (*.p) in {folder}. {_how_to_get()}"
        )
    return files


def _simulations_in(path):
    """Simulations in a file: from the release's file name, else read it."""
    match = _RUNS_IN_NAME.search(os.path.basename(path))
    if match:
        return int(match.group(1))
    return len(read_file(path))


def _write_file(directory, simulations, params):
    """Writes simulation dicts as one file of the release, atomically.

    The file is named in the release's pattern from its spike count, its
    simulations, `params["totalSimDurationInSec"]` and
    `params["randomSeed"]`, and pickled with protocol 2 (Python-2
    readable, as released).

    Returns:
        The path written.
    """
    name = FILE_NAME.format(
        spikes=sum(s["outputSpikeTimes"].size for s in simulations),
        runs=len(simulations),
        seconds=f"{params['totalSimDurationInSec']:g}",
        seed=params["randomSeed"],
    )
    content = {
        "Params": params,
        "Results": {"listOfSingleSimulationDicts": simulations},
    }
    path = os.path.join(directory, name)
    with atomic_write(path) as f:
        pickle.dump(content, f, protocol=2)
    return path
