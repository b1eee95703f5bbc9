"""NeuronIO (Beniaguev, Segev & London 2021): a cortical neuron's in and out.

Each simulation is 6 s of a detailed layer-5 pyramidal cell model driven by
1,278 presynaptic spike trains: one excitatory and one inhibitory input on
each of 639 dendritic segments. The task is to predict, at every 1 ms step,
the somatic spike (0/1, trained on logits with binary cross-entropy) and the
somatic voltage.

Nothing is downloaded (the release is about 115 GB, on Kaggle:
`selfishgene/single-neurons-as-deep-nets-nmda-train-data` and
`...-nmda-test-data`). The release's files are Python-2 pickles named
`sim__saved_InputSpikes_DVTs__<N>_outSpikes__128_simulationRuns__6_secDuration__randomSeed_<seed>.p`,
each `{"Params": {...}, "Results": {"listOfSingleSimulationDicts": [sim, ...]}}`
with, per simulation, `exInputSpikeTimes` and `inhInputSpikeTimes` (dicts:
segment 0..638 -> spike times in whole ms), `outputSpikeTimes` (ms, float)
and `somaVoltageLowRes` (one sample per ms, mV). Pickles can run code when
they are read: only read files you trust.

What the model sees (the authors' encoding):

- inputs `(T, 1278)`: channel `s` is the excitatory input of segment `s`
  (+1 in the ms bins with a spike), channel `639 + s` its inhibitory input
  (-1: the authors multiply the inhibitory half by -1);
- spike target: 1 at bin `int(t - 0.5)` of every output spike time `t`;
- soma target: `(min(V, -55) + 67.7) * 0.1`, the voltage cut at the spike
  threshold, so that action potentials do not dominate the squared error.

Training (`load`) streams random 500 ms windows; the paper's loss ignores
the first `BURN_IN = 150` steps of each window. Evaluation
(`evaluation_set`, `evaluate`) follows the authors: sliding 500 ms windows
with stride 350, stitched back into whole simulations; the first 500 ms of
every simulation and the simulations with more than 24 output spikes are
left out; the metrics are in `keras_elm.metrics`.

`simulate()` writes a small NeuronIO-like set offline, in the release's
file format, from a simple NumPy neuron with dendritic branches: a
stand-in for smoke runs and tests, not the Beniaguev L5PC.
"""

import collections
import dataclasses
import glob
import math
import os
import pickle
import re
import threading

import keras
import numpy as np

from keras_elm.checks import check_choice as _check_choice
from keras_elm.checks import check_int as _check_int
from keras_elm.data.files import atomic_write
from keras_elm.data.files import check_writable

NUM_SEGMENTS = 639
NUM_INPUTS = 2 * NUM_SEGMENTS
SIM_DURATION_MS = 6000
SIMULATIONS_PER_FILE = 128
WINDOW = 500
BURN_IN = 150
# No training window starts in, and evaluation leaves out, the first 500 ms
# of a simulation: the cell model settles there.
IGNORE_MS = 500
EVALUATION_STRIDE = WINDOW - BURN_IN
MAX_EVALUATION_SPIKES = 24
SOMA_THRESHOLD = -55.0
SOMA_OFFSET = -67.7
SOMA_SCALE = 0.1
# Default epoch length: this many windows per simulation of the files.
WINDOWS_PER_SIMULATION = 10
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
# Part of `Params` of simulated files: bump it whenever a seed would
# simulate different data.
SIMULATOR_VERSION = 1

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


def _fill_window(sim, start, window, inputs, spikes, soma):
    """Writes `sim[start:start + window]` into row views of a batch."""
    low, high = np.searchsorted(sim.input_times, [start, start + window])
    channels = sim.input_channels[low:high]
    inputs[sim.input_times[low:high] - start, channels] = _SIGNS[channels]
    bins = sim.spike_bins
    bins = bins[(bins >= start) & (bins < start + window)]
    spikes[bins - start, 0] = 1.0
    soma[:, 0] = sim.soma[start : start + window]


class NeuronIOWindows(keras.utils.PyDataset):
    """Random NeuronIO training windows streamed from files, as a PyDataset.

    Batch `i` of an epoch is `(inputs, targets)` or, with `burn_in > 0`,
    `(inputs, targets, sample_weight)`:

    - inputs `float32 (batch_size, window, 1278)`, +1 excitatory, -1
      inhibitory spikes;
    - targets `{"spike": (B, window, 1), "soma": (B, window, 1)}` float32,
      for a model whose outputs are named `"spike"` (logits) and `"soma"`:
      Keras matches a dict of targets to the outputs by name (give
      `compile` a dict of losses with the same keys). `targets="tuple"`
      gives `(spike, soma)` instead, for a model returning a list in that
      order;
    - sample_weight `float32 (B, window)`: 0 on the first `burn_in` steps,
      1 after, applied to both outputs (the paper's burn-in without loss).

    Each window is drawn from a random simulation of a random file, and
    starts at `500 + randint(T - window - 500)` ms (the authors' rule:
    500..5499 for 6 s and 500 ms), so no window starts in the first 500 ms
    or runs past the end; shorter simulations narrow the range, and a
    simulation shorter than `window + 501` ms raises a ValueError.

    Streaming: the set is never held in memory, only an LRU cache of at
    most `cache_files` parsed files (input spikes stay sparse until a
    batch is made: about 20 MB for 128 simulations at the input rates of
    `simulate()`, 6 bytes per input spike). Each epoch
    visits the files in a new seeded order, `cache_files` at a time: the
    epoch's batches are spread evenly over these groups, and all windows
    of a batch come from its group, so consecutive batches reuse the
    cached files and a file is read about once per epoch. The trade-off:
    the windows of nearby batches come from the same few files (a batch
    from 2 files of 128 simulations is still more mixed than the authors'
    loader, which draws each batch from one file); a larger `cache_files`
    mixes more at the cost of memory. A batch depends only on `(seed,
    epoch, index)`, not on the order in which Keras asks for batches, so
    the same seed gives the same data with any number of `workers`
    (threads share one cache; `use_multiprocessing=True` gives each
    process its own).

    Args:
        files: the `.p` files to draw from.
        window: steps per window (1 ms each).
        batch_size: windows per batch.
        steps_per_epoch: batches per epoch, `len()`. Default:
            `ceil(10 * simulations / batch_size)`, the number of
            simulations taken from the file names (the release's and
            `simulate()`'s say it) or by reading the files. The paper:
            11,400 batches of 8.
        seed: seed of the windows, an integer >= 0 (None: a random one).
        cache_files: files held in memory at once (>= 1).
        burn_in: leading steps of each window with sample weight 0
            (0: no sample weights).
        targets: `"dict"` or `"tuple"`, as above.
        shuffle: draw new windows and a new file order each epoch; False
            yields the same batches every epoch (for validation).
        **kwargs: `workers`, `use_multiprocessing`, `max_queue_size` of
            `keras.utils.PyDataset`.

    Example:

    >>> import tempfile
    >>> paths = simulate(tempfile.mkdtemp(), simulations_per_file=2,
    ...                  duration_ms=1500)
    >>> data = NeuronIOWindows(paths, batch_size=4, seed=0)
    >>> inputs, targets = data[0]
    >>> inputs.shape, targets["spike"].shape, len(data)
    ((4, 500, 1278), (4, 500, 1), 5)
    """

    def __init__(
        self,
        files,
        *,
        window=WINDOW,
        batch_size=8,
        steps_per_epoch=None,
        seed=None,
        cache_files=2,
        burn_in=0,
        targets="dict",
        shuffle=True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if isinstance(files, (str, os.PathLike)):
            files = [files]
        self.files = tuple(os.fspath(f) for f in files)
        if not self.files:
            raise ValueError("Argument `files` must name at least one file.")
        for path in self.files:
            if not os.path.isfile(path):
                raise FileNotFoundError(
                    f"NeuronIO file {path} does not exist. {_how_to_get()}"
                )
        self.window = _check_int("window", window, 1)
        self.batch_size = _check_int("batch_size", batch_size, 1)
        self.cache_files = _check_int("cache_files", cache_files, 1)
        self.burn_in = _check_int("burn_in", burn_in, 0)
        if self.burn_in >= self.window:
            raise ValueError(
                f"Argument `burn_in` must be less than window "
                f"({self.window}). Received: burn_in={burn_in!r}"
            )
        if targets not in ("dict", "tuple"):
            raise ValueError(
                f"Argument `targets` must be 'dict' or 'tuple'. Received: "
                f"{targets!r}"
            )
        self.targets = targets
        self.shuffle = bool(shuffle)
        if seed is not None:
            seed = _check_int("seed", seed, 0)
        if steps_per_epoch is None:
            simulations = sum(_simulations_in(path) for path in self.files)
            steps_per_epoch = math.ceil(
                WINDOWS_PER_SIMULATION * simulations / self.batch_size
            )
        self.steps_per_epoch = _check_int("steps_per_epoch", steps_per_epoch, 1)
        if seed is None:
            seed = int(np.random.SeedSequence().entropy % (2**63))
        self.seed = seed
        self.epoch = 0
        self.files_read = 0
        self._cache = collections.OrderedDict()
        self._lock = threading.Lock()

    def __len__(self):
        return self.steps_per_epoch

    @property
    def cached_files(self):
        """The files in memory now, least recently used first."""
        with self._lock:
            return list(self._cache)

    def _simulations(self, path):
        # Reading under the lock keeps the cache bound strict with threads.
        with self._lock:
            if path in self._cache:
                self._cache.move_to_end(path)
                return self._cache[path]
            while len(self._cache) >= self.cache_files:
                self._cache.popitem(last=False)
            simulations = read_file(path)
            self.files_read += 1
            self._cache[path] = simulations
            return simulations

    def _group(self, index, epoch):
        """The files that batch `index` of `epoch` draws from."""
        order = np.random.default_rng([self.seed, epoch, 0]).permutation(
            len(self.files)
        )
        groups = math.ceil(len(self.files) / self.cache_files)
        group = index * groups // self.steps_per_epoch
        chosen = order[
            group * self.cache_files : (group + 1) * self.cache_files
        ]
        return [self.files[i] for i in chosen]

    def _start(self, rng, sim, where):
        room = sim.duration_ms - self.window - IGNORE_MS
        if room < 1:
            raise ValueError(
                f"{where}: {sim.duration_ms} ms is too short for "
                f"{self.window} ms windows starting after the first "
                f"{IGNORE_MS} ms; it needs at least "
                f"{self.window + IGNORE_MS + 1} ms."
            )
        return IGNORE_MS + int(rng.integers(room))

    def __getitem__(self, index):
        if not 0 <= index < self.steps_per_epoch:
            raise IndexError(
                f"Batch index {index} out of range for {self.steps_per_epoch} "
                f"batches."
            )
        epoch = self.epoch if self.shuffle else 0
        # The last key 1 keeps these streams apart from the file order's (0).
        rng = np.random.default_rng([self.seed, epoch, int(index), 1])
        group = self._group(int(index), epoch)
        shape = (self.batch_size, self.window)
        inputs = np.zeros(shape + (NUM_INPUTS,), np.float32)
        spikes = np.zeros(shape + (1,), np.float32)
        soma = np.zeros(shape + (1,), np.float32)
        for row in range(self.batch_size):
            path = group[int(rng.integers(len(group)))]
            simulations = self._simulations(path)
            number = int(rng.integers(len(simulations)))
            sim = simulations[number]
            start = self._start(rng, sim, f"{path}, simulation {number}")
            _fill_window(
                sim, start, self.window, inputs[row], spikes[row], soma[row]
            )
        targets = (
            {"spike": spikes, "soma": soma}
            if self.targets == "dict"
            else (spikes, soma)
        )
        if not self.burn_in:
            return inputs, targets
        weights = np.ones(shape, np.float32)
        weights[:, : self.burn_in] = 0.0
        return inputs, targets, weights

    def on_epoch_end(self):
        self.epoch += 1


def load(
    data_dir=None,
    *,
    split="train",
    window=WINDOW,
    batch_size=8,
    steps_per_epoch=None,
    seed=None,
    files=None,
    cache_files=2,
    burn_in=0,
    targets="dict",
    shuffle=None,
    **kwargs,
):
    """A `keras.utils.PyDataset` of random NeuronIO windows, streamed.

    Args:
        data_dir: the folder of `list_files()`: `train/`, `valid/` (or
            `val/`) and `test/` subfolders of `.p` files, or one flat
            folder whose files serve every split. Ignored when `files` is
            given.
        split: `"train"`, `"val"` or `"test"`.
        window: steps per window (1 ms each); the paper: 500.
        batch_size: windows per batch; the paper: 8.
        steps_per_epoch: batches per epoch (default: 10 windows per
            simulation, see `NeuronIOWindows`); the paper: 11,400.
        seed: seed of the windows, an integer >= 0 (None: a random one);
            the same seed gives the same batches.
        files: explicit list of `.p` files instead of `data_dir`.
        cache_files: parsed files held in memory at once.
        burn_in: when > 0, batches carry a sample weight that is 0 on the
            first `burn_in` steps (the paper: 150).
        targets: `"dict"` (`{"spike", "soma"}`) or `"tuple"`.
        shuffle: new windows each epoch; default True for `"train"`, False
            (the same batches every epoch) for `"val"` and `"test"`.
        **kwargs: `workers`, `use_multiprocessing`, `max_queue_size`.

    Returns:
        A `NeuronIOWindows`: batches `(inputs (B, window, 1278) float32,
        {"spike": (B, window, 1), "soma": (B, window, 1)})`.

    Example:

    >>> import tempfile
    >>> directory = tempfile.mkdtemp()
    >>> _ = simulate(directory, simulations_per_file=2, duration_ms=1500)
    >>> data = load(directory, batch_size=2, steps_per_epoch=3, seed=1)
    >>> inputs, targets = data[2]
    >>> inputs.shape, sorted(targets)
    ((2, 500, 1278), ['soma', 'spike'])
    """
    if files is None:
        if data_dir is None:
            raise ValueError("Pass `data_dir` or `files`.")
        files = list_files(data_dir, split)
    else:
        _check_choice("split", split, SPLITS)
    if shuffle is None:
        shuffle = split == "train"
    return NeuronIOWindows(
        files,
        window=window,
        batch_size=batch_size,
        steps_per_epoch=steps_per_epoch,
        seed=seed,
        cache_files=cache_files,
        burn_in=burn_in,
        targets=targets,
        shuffle=shuffle,
        **kwargs,
    )


def _check_window_stride(window, stride):
    window = _check_int("window", window, 1)
    stride = _check_int("stride", stride, 1)
    if stride > window:
        raise ValueError(
            f"Argument `stride` must be <= window ({window}), or steps would "
            f"be skipped. Received: stride={stride}"
        )
    return window, stride


def window_starts(length, window=WINDOW, stride=EVALUATION_STRIDE):
    """First steps of the sliding windows that cover `length` steps.

    Args:
        length: steps to cover.
        window: steps per window.
        stride: steps between window starts.

    Returns:
        `int (K,)` starts `0, stride, 2 * stride, ...`, the last window the
        first to reach the end (it may run past it).

    Example:

    >>> window_starts(1200, window=500, stride=350).tolist()
    [0, 350, 700]
    """
    window, stride = _check_window_stride(window, stride)
    length = _check_int("length", length, 1)
    count = 1 + math.ceil(max(length - window, 0) / stride)
    return np.arange(count) * stride


def sliding_windows(inputs, window=WINDOW, stride=EVALUATION_STRIDE):
    """Cuts a sequence into overlapping windows, as the authors evaluate.

    Args:
        inputs: array `(T, ...)`, time first.
        window: steps per window.
        stride: steps between window starts; `window - stride` is the
            burn-in that `stitch` drops from every window but the first.

    Returns:
        `(K, window, ...)` windows at `window_starts(T, window, stride)`;
        the last is zero-padded where it runs past `T`.

    Example:

    >>> sliding_windows(np.arange(8), window=4, stride=3).tolist()
    [[0, 1, 2, 3], [3, 4, 5, 6], [6, 7, 0, 0]]
    """
    inputs = np.asarray(inputs)
    if inputs.ndim < 1:
        raise ValueError("Argument `inputs` must have a time axis first.")
    starts = window_starts(inputs.shape[0], window, stride)
    windows = np.zeros((starts.size, window) + inputs.shape[1:], inputs.dtype)
    for row, start in zip(windows, starts):
        piece = inputs[start : start + window]
        row[: piece.shape[0]] = piece
    return windows


def stitch(predictions, length, window=WINDOW, stride=EVALUATION_STRIDE):
    """Joins predictions on `sliding_windows` back into one sequence.

    The first window counts whole; every later one drops its first
    `window - stride` steps (its burn-in), so each step is predicted by
    the window that has seen the most context before it.

    Args:
        predictions: `(K, window, ...)`, one row per window of
            `sliding_windows(x, window, stride)` with `len(x) == length`.
        length: steps of the sequence.
        window: steps per window.
        stride: steps between window starts.

    Returns:
        `(length, ...)` array; `stitch(sliding_windows(x), len(x))` is `x`.

    Example:

    >>> x = np.arange(8)
    >>> stitch(sliding_windows(x, 4, 3), 8, 4, 3).tolist()
    [0, 1, 2, 3, 4, 5, 6, 7]
    """
    predictions = np.asarray(predictions)
    starts = window_starts(length, window, stride)
    if predictions.shape[:2] != (starts.size, window):
        raise ValueError(
            f"Argument `predictions` must have shape ({starts.size}, "
            f"{window}, ...) for {length} steps, window {window} and stride "
            f"{stride}. Received shape {predictions.shape}."
        )
    out = np.zeros((length,) + predictions.shape[2:], predictions.dtype)
    burn_in = window - stride
    for k, start in enumerate(starts):
        skip = 0 if k == 0 else burn_in
        end = min(start + window, length)
        out[start + skip : end] = predictions[k, skip : end - start]
    return out


class EvaluationSet(
    collections.namedtuple(
        "EvaluationSet",
        [
            "spike_true",
            "spike_pred",
            "soma_true",
            "soma_pred",
            "num_simulations",
            "num_kept",
        ],
    )
):
    """Stitched predictions and targets of `evaluation_set()`.

    Attributes:
        spike_true: `float32 (S, L)` spike targets (0/1) of the kept
            simulations, the first `ignore_ms` steps left out.
        spike_pred: `float32 (S, L)` the model's spike scores (logits or
            probabilities: the ROC is the same).
        soma_true: `float64 (S, L)` the voltage in mV, cut at -55 mV.
        soma_pred: `float64 (S, L)` the predicted voltage in mV.
        num_simulations: simulations read.
        num_kept: simulations kept (`S`), those with at most `max_spikes`
            output spikes.
    """

    __slots__ = ()


def _split_outputs(model, outputs):
    names = getattr(model, "output_names", None)
    if isinstance(outputs, dict):
        missing = [key for key in ("spike", "soma") if key not in outputs]
        if missing:
            raise ValueError(
                f"The model's outputs must include 'spike' and 'soma'. "
                f"Found: {sorted(outputs)}"
            )
        return outputs["spike"], outputs["soma"]
    if isinstance(outputs, (list, tuple)) and len(outputs) == 2:
        if names and {"spike", "soma"} <= set(names):
            return outputs[list(names).index("spike")], outputs[
                list(names).index("soma")
            ]
        return outputs[0], outputs[1]
    raise ValueError(
        "`predict_fn` must return a dict with keys 'spike' and 'soma' or a "
        "pair (spike, soma)."
    )


def _predict(predict_fn, inputs):
    """`(spike, soma)` NumPy `(N, window)` predictions on windows."""
    if isinstance(predict_fn, keras.Model):
        outputs = predict_fn.predict_on_batch(inputs)
    else:
        outputs = predict_fn(inputs)
    results = []
    for name, value in zip(
        ("spike", "soma"), _split_outputs(predict_fn, outputs)
    ):
        if not isinstance(value, np.ndarray):
            value = keras.ops.convert_to_numpy(value)
        value = np.asarray(value, np.float64)
        if value.ndim == 3 and value.shape[-1] == 1:
            value = value[..., 0]
        if value.shape != inputs.shape[:2]:
            raise ValueError(
                f"The {name!r} prediction must have shape {inputs.shape[:2]} "
                f"or {inputs.shape[:2] + (1,)} for inputs of shape "
                f"{inputs.shape}. Received shape {value.shape}."
            )
        results.append(value)
    return results


def _evaluation_files(source, split):
    if isinstance(source, (list, tuple)):
        return [os.fspath(path) for path in source]
    source = os.fspath(source)
    if os.path.isfile(source):
        return [source]
    return list_files(source, split)


def _match_statistics(prediction, target):
    """`prediction` shifted and scaled to the mean and std of `target`."""
    spread = prediction.std()
    if spread == 0:
        return np.full_like(prediction, target.mean())
    return (
        prediction - prediction.mean()
    ) / spread * target.std() + target.mean()


def _predict_file(predict_fn, simulations, window, stride, batch_simulations):
    """Stitched `(spike, soma)` predictions of every simulation of a file."""
    spike_pred, soma_pred = [], []
    batch_size = None
    for first in range(0, len(simulations), batch_simulations):
        chunk = simulations[first : first + batch_simulations]
        windows = [
            sliding_windows(simulation_arrays(sim)[0], window, stride)
            for sim in chunk
        ]
        counts = [w.shape[0] for w in windows]
        batch = np.concatenate(windows)
        batch_size = batch_size or batch.shape[0]
        if batch.shape[0] < batch_size:
            # Zero windows keep the batch shape: a compiled model need not
            # trace the last, smaller batch again.
            batch = np.concatenate(
                [
                    batch,
                    np.zeros(
                        (batch_size - batch.shape[0],) + batch.shape[1:],
                        batch.dtype,
                    ),
                ]
            )
        spike, soma = _predict(predict_fn, batch)
        offset = 0
        for sim, count in zip(chunk, counts):
            rows = slice(offset, offset + count)
            spike_pred.append(
                stitch(spike[rows], sim.duration_ms, window, stride)
            )
            soma_pred.append(
                stitch(soma[rows], sim.duration_ms, window, stride)
            )
            offset += count
    return spike_pred, soma_pred


def _check_ignore_ms(ignore_ms, simulations, path):
    """Raises before any prediction unless every simulation outlasts it."""
    shortest = min(sim.duration_ms for sim in simulations)
    if ignore_ms >= shortest:
        raise ValueError(
            f"Argument `ignore_ms` must be less than the simulations' "
            f"length, or nothing is left to evaluate: {path} holds a "
            f"simulation of {shortest} ms. Received: ignore_ms={ignore_ms}"
        )


def evaluation_set(
    source,
    predict_fn,
    *,
    split="test",
    window=WINDOW,
    stride=EVALUATION_STRIDE,
    ignore_ms=IGNORE_MS,
    max_spikes=MAX_EVALUATION_SPIKES,
    batch_simulations=4,
    match_soma_statistics=True,
):
    """Predictions on whole simulations, stitched, next to their targets.

    The authors' evaluation: each simulation is cut into `sliding_windows`
    (500 ms, stride 350), the model predicts every window, `stitch` joins
    the predictions; then the first `ignore_ms` ms of every simulation and
    the simulations with more than `max_spikes` output spikes are left
    out. Soma values come back in mV (the model's soma output `y` is read
    as `y / 0.1 - 67.7`, the inverse of the target transform). With
    `match_soma_statistics`, as the authors do "for comparability to
    previous methods", the soma predictions of each file are shifted and
    scaled to the mean and standard deviation of its targets (over all its
    simulations and steps) before anything is left out. Files are read one
    at a time; one simulation's dense input (30 MB) at a time per window
    batch.

    Args:
        source: a folder (as `list_files`), one `.p` file, or a list of them.
        predict_fn: a `keras.Model` (called with `predict_on_batch`) or a
            callable mapping `float32 (N, window, 1278)` inputs to a dict
            `{"spike": ..., "soma": ...}` or a pair `(spike, soma)`, each
            `(N, window)` or `(N, window, 1)`, NumPy or backend tensors.
            A model returning a list is matched by its `output_names`.
        split: the split to read when `source` is a folder.
        window: steps per window; the model's input length.
        stride: steps between windows.
        ignore_ms: leading steps of each simulation left out, an integer
            >= 0 below the simulations' length.
        max_spikes: simulations with more output spikes are left out.
        batch_simulations: simulations whose windows go into one call
            (4 x 17 windows of 500 ms for 6 s simulations).
        match_soma_statistics: align the soma predictions' mean and std to
            the targets', per file, as the authors do.

    Returns:
        An `EvaluationSet` of `(S, T - ignore_ms)` arrays and counts; its
        first four fields are the arguments of
        `keras_elm.metrics.neuronio_metrics`.

    Example:

    >>> import tempfile
    >>> paths = simulate(tempfile.mkdtemp(), simulations_per_file=2,
    ...                  duration_ms=1500)
    >>> def zeros(x):
    ...     return np.zeros(x.shape[:2]), np.zeros(x.shape[:2])
    >>> result = evaluation_set(paths, zeros, max_spikes=1000)
    >>> result.spike_true.shape, result.num_kept
    ((2, 1000), 2)
    """
    window, stride = _check_window_stride(window, stride)
    batch_simulations = _check_int("batch_simulations", batch_simulations, 1)
    ignore_ms = _check_int("ignore_ms", ignore_ms, 0)
    max_spikes = _check_int("max_spikes", max_spikes, 0)
    kept = {
        "spike_true": [],
        "spike_pred": [],
        "soma_true": [],
        "soma_pred": [],
    }
    total = 0
    for path in _evaluation_files(source, split):
        simulations = read_file(path)
        _check_ignore_ms(ignore_ms, simulations, path)
        total += len(simulations)
        spike_pred, soma_pred = _predict_file(
            predict_fn, simulations, window, stride, batch_simulations
        )
        soma_true = [sim.soma / SOMA_SCALE + SOMA_OFFSET for sim in simulations]
        soma_pred = [y / SOMA_SCALE + SOMA_OFFSET for y in soma_pred]
        if match_soma_statistics:
            lengths = np.cumsum([y.size for y in soma_pred])[:-1]
            soma_pred = np.split(
                _match_statistics(
                    np.concatenate(soma_pred), np.concatenate(soma_true)
                ),
                lengths,
            )
        for k, sim in enumerate(simulations):
            if sim.num_spikes > max_spikes:
                continue
            spikes = simulation_arrays(sim, "int8")[1]
            kept["spike_true"].append(spikes[ignore_ms:])
            kept["spike_pred"].append(spike_pred[k][ignore_ms:])
            kept["soma_true"].append(soma_true[k][ignore_ms:])
            kept["soma_pred"].append(soma_pred[k][ignore_ms:])
    if not kept["spike_true"]:
        raise ValueError(
            f"No simulation has at most {max_spikes} output spikes: nothing "
            f"to evaluate."
        )
    lengths = {y.size for y in kept["spike_true"]}
    if len(lengths) > 1 or 0 in lengths:
        raise ValueError(
            f"The simulations must all be longer than ignore_ms={ignore_ms} "
            f"and of one length; found lengths {sorted(lengths)} after it."
        )
    dtypes = {
        "spike_true": np.float32,
        "spike_pred": np.float32,
        "soma_true": np.float64,
        "soma_pred": np.float64,
    }
    arrays = {
        key: np.stack(values).astype(dtypes[key])
        for key, values in kept.items()
    }
    return EvaluationSet(
        **arrays, num_simulations=total, num_kept=arrays["spike_true"].shape[0]
    )


def evaluate(predict_fn, source, *, split="test", **kwargs):
    """The NeuronIO metrics of a model over a set of files.

    Args:
        predict_fn: as in `evaluation_set`.
        source: a folder, a `.p` file or a list of them.
        split: the split to read when `source` is a folder.
        **kwargs: more arguments of `evaluation_set`.

    Returns:
        The dict of `keras_elm.metrics.neuronio_metrics` (spike AUC, TP
        rates at 0.25 % and 1 % false positives, soma RMSE / MAE in mV and
        explained variance); `keras_elm.metrics.format_table` prints it.

    Example:

    >>> import tempfile
    >>> paths = simulate(tempfile.mkdtemp(), simulations_per_file=2,
    ...                  duration_ms=1500, seed=3)
    >>> def cheat(x):  # input drive as a stand-in for a model
    ...     drive = np.cumsum(x.sum(-1), axis=1)
    ...     return drive, drive
    >>> sorted(evaluate(cheat, paths, max_spikes=1000))[:2]
    ['auc', 'soma_explained_variance']
    """
    from keras_elm import metrics

    result = evaluation_set(source, predict_fn, split=split, **kwargs)
    return metrics.neuronio_metrics(
        result.spike_true, result.spike_pred, result.soma_true, result.soma_pred
    )


# The synthetic cell of `simulate`. Rates in Hz, times in ms, voltages in
# mV; a branch's voltage is its depolarisation above rest.
_CELL = {
    "branches": 32,
    "basal_segments": 262,  # the release's basal/apical boundary
    "excitatory_rate": 2.0,
    "inhibitory_rate": 2.0,
    "input_gain": (0.85, 1.0),  # per simulation
    "branch_modulation": 0.8,  # log-rate std, knots every 150 ms
    "global_modulation": 0.6,  # log-rate std, knots every 400 ms
    "tau_ampa": 2.0,
    "tau_nmda": 60.0,
    "tau_gaba": 8.0,
    "tau_branch": 8.0,
    "weight_ampa": 25.0,
    "weight_nmda": 2.0,
    "weight_gaba": 5.0,
    "nmda_half_voltage": 10.0,  # Mg block sigmoid
    "nmda_slope": 3.0,
    "rest": -76.0,
    "tau_soma": 15.0,
    "soma_gain": 2.9,
    "threshold": -54.0,
    "spike_peak": 20.0,
    "reset": -62.0,
    "refractory": 3,
    "tau_ahp": 200.0,
    "ahp_step": 12.0,
    "backpropagation": 5.0,  # branch depolarisation of a somatic spike
}


def _cell_morphology(cell_seed):
    """Branch of each segment, synaptic weights, branch-to-soma coupling."""
    rng = np.random.default_rng([cell_seed, SIMULATOR_VERSION])
    branches = _CELL["branches"]
    edges = np.linspace(0, NUM_SEGMENTS, branches + 1).astype(int)
    branch = np.repeat(np.arange(branches), np.diff(edges))
    position = np.arange(NUM_SEGMENTS) - edges[branch]
    return {
        "branch": branch,
        "distance": 20.0
        + 15.0 * position
        + 300.0 * (np.arange(NUM_SEGMENTS) >= _CELL["basal_segments"]),
        "ex_weight": rng.lognormal(0.0, 0.4, NUM_SEGMENTS),
        "inh_weight": rng.lognormal(0.0, 0.4, NUM_SEGMENTS),
        "coupling": rng.uniform(0.5, 1.0, branches),
    }


def _smooth_noise(rng, duration, count, knot_ms):
    """`(duration, count)` standard noise, linear between knots."""
    knots = rng.standard_normal((math.ceil(duration / knot_ms) + 2, count))
    times = np.arange(knots.shape[0]) * knot_ms
    steps = np.arange(duration)
    return np.stack(
        [np.interp(steps, times, knots[:, j]) for j in range(count)], axis=1
    )


def _input_spikes(rng, morphology, duration):
    """Boolean `(duration, 639)` excitatory and inhibitory spikes."""
    branches = _CELL["branches"]
    gain = rng.uniform(*_CELL["input_gain"])
    shared = _CELL["global_modulation"] * _smooth_noise(rng, duration, 1, 400.0)
    local = _smooth_noise(rng, duration, branches, 150.0)
    # Inhibition partly tracks excitation on each branch, as in a balanced net.
    local_inh = 0.6 * local + 0.8 * _smooth_noise(
        rng, duration, branches, 150.0
    )
    spikes = []
    for modulation, rate in (
        (local, _CELL["excitatory_rate"]),
        (local_inh, _CELL["inhibitory_rate"]),
    ):
        per_segment = rate * gain * rng.lognormal(0.0, 0.5, NUM_SEGMENTS)
        log_rate = _CELL["branch_modulation"] * modulation + shared
        probability = (
            np.exp(log_rate)[:, morphology["branch"]] * per_segment * 1e-3
        ).astype(np.float32)
        spikes.append(rng.random(probability.shape, np.float32) < probability)
    return spikes


def _run_cell(morphology, excitatory, inhibitory):
    """Output spike times (ms) and the soma voltage (mV, one sample per ms)."""
    c = _CELL
    branches = c["branches"]
    segments = np.arange(NUM_SEGMENTS)

    def per_branch(spikes, weights):
        matrix = np.zeros((NUM_SEGMENTS, branches), np.float32)
        matrix[segments, morphology["branch"]] = weights
        return spikes.astype(np.float32) @ matrix

    ex_drive = per_branch(excitatory, morphology["ex_weight"]).astype(
        np.float64
    )
    inh_drive = per_branch(inhibitory, morphology["inh_weight"]).astype(
        np.float64
    )
    decay = {
        name: math.exp(-1.0 / c[name])
        for name in (
            "tau_ampa",
            "tau_nmda",
            "tau_gaba",
            "tau_branch",
            "tau_soma",
            "tau_ahp",
        )
    }
    coupling = morphology["coupling"] * c["soma_gain"] / branches
    ampa = np.zeros(branches)
    nmda = np.zeros(branches)
    gaba = np.zeros(branches)
    branch_v = np.zeros(branches)
    voltage, ahp, refractory = c["rest"], 0.0, 0
    trace = np.empty(ex_drive.shape[0])
    spike_times = []
    for t in range(ex_drive.shape[0]):
        ampa = ampa * decay["tau_ampa"] + ex_drive[t]
        nmda = nmda * decay["tau_nmda"] + ex_drive[t]
        gaba = gaba * decay["tau_gaba"] + inh_drive[t]
        # NMDA current needs a depolarised branch (magnesium block): strong
        # clustered input starts a self-sustaining plateau.
        unblocked = 1.0 / (
            1.0 + np.exp((c["nmda_half_voltage"] - branch_v) / c["nmda_slope"])
        )
        drive = (
            c["weight_ampa"] * ampa
            + c["weight_nmda"] * nmda * unblocked
            - c["weight_gaba"] * gaba
        )
        branch_v = branch_v * decay["tau_branch"] + (
            1 - decay["tau_branch"]
        ) * np.maximum(drive, -20.0)
        ahp *= decay["tau_ahp"]
        if refractory:
            refractory -= 1
            trace[t] = voltage
            continue
        target = c["rest"] + coupling @ branch_v - ahp
        new = target + (voltage - target) * decay["tau_soma"]
        if new < c["threshold"]:
            voltage = new
            trace[t] = voltage
            continue
        # Threshold crossed between samples t - 1 and t: interpolate.
        spike_times.append(t - 1 + (c["threshold"] - voltage) / (new - voltage))
        trace[t] = c["spike_peak"]
        voltage = c["reset"]
        refractory = c["refractory"]
        ahp += c["ahp_step"]
        branch_v = branch_v + c["backpropagation"]
    return np.asarray(spike_times), trace


def _simulation_dict(rng, morphology, duration):
    excitatory, inhibitory = _input_spikes(rng, morphology, duration)
    output, trace = _run_cell(morphology, excitatory, inhibitory)

    def by_segment(spikes):
        segments, times = np.nonzero(spikes.T)
        bounds = np.searchsorted(segments, np.arange(NUM_SEGMENTS + 1))
        # Whole ms as floats, like the release.
        return {
            s: times[bounds[s] : bounds[s + 1]].astype(np.float64)
            for s in range(NUM_SEGMENTS)
        }

    return {
        "exInputSpikeTimes": by_segment(excitatory),
        "inhInputSpikeTimes": by_segment(inhibitory),
        "outputSpikeTimes": output.astype(np.float64),
        "somaVoltageLowRes": trace.astype(np.float64),
    }


def simulate(
    directory,
    *,
    num_files=1,
    simulations_per_file=8,
    duration_ms=SIM_DURATION_MS,
    seed=0,
    cell_seed=0,
):
    """Writes a small NeuronIO-like data set offline, in the release's format.

    NOT the Beniaguev L5PC: a NumPy neuron with dendritic nonlinearity,
    so that the pipeline (files, loader, model, evaluation) can run
    without the 115 GB release. The 639 segments form 32 branches of
    about 20 neighbouring segments (segments 0..261 "basal", the rest
    "apical", as in the release). Each segment gets Poisson excitatory and
    inhibitory input whose rates vary slowly in time (per branch every
    ~150 ms, over the whole cell every ~400 ms) and per simulation (a
    random overall gain), so the output has structure. Per branch the
    spikes drive AMPA- (2 ms), NMDA- (60 ms) and GABA-like (8 ms)
    exponential currents; the NMDA current passes a sigmoidal,
    voltage-dependent "magnesium block" of the branch's own leaky voltage
    (8 ms), so clustered input starts dendritic plateaus. The branches
    feed a leaky integrate-and-fire soma (rest -76 mV, 15 ms, threshold
    -54 mV) with a 3 ms refractory period, an afterhyperpolarisation
    (200 ms) and a back-propagating depolarisation of the branches; the
    1 ms voltage trace shows a spike as one sample at +20 mV, so the
    target's cut at -55 mV matters as with the real cell. Output spike
    times are interpolated threshold crossings (float ms), input spike
    times whole ms as floats. The output averages about 1 spike per
    second (0.7-1.3 over sets of simulations, 0-3 per second per
    simulation, a few silent ones, rarely more than evaluation's 24
    spikes in 6 s); between spikes the voltage stays within about -90 to
    -54 mV. About 0.5 s per 6 s simulation on one CPU core.

    The cell (branches, weights) depends only on `cell_seed`, so files
    written with different `seed`s (train, valid, test) come from the same
    neuron. Each file is written atomically (a temporary file renamed
    when complete, with the mode the umask gives a new file: readable by
    others under the usual 022) with pickle protocol 2, named
    in the release's pattern with a per-file seed derived from `seed`;
    `Params` say what made it (`Params["model"]`).

    Args:
        directory: the folder to write into (created if needed); pass
            `<data_dir>/train` etc. to make split folders.
        num_files: files to write.
        simulations_per_file: simulations per file (the release: 128).
        duration_ms: steps per simulation (the release: 6,000); training
            windows need more than `window + 500` ms.
        seed: seed of the inputs, an integer >= 0.
        cell_seed: seed of the neuron's morphology and weights, an
            integer >= 0.

    Returns:
        The sorted list of the written paths.

    Example:

    >>> import tempfile
    >>> paths = simulate(tempfile.mkdtemp(), simulations_per_file=1,
    ...                  duration_ms=1000)
    >>> os.path.basename(paths[0]).startswith("sim__saved_InputSpikes_DVTs__")
    True
    """
    num_files = _check_int("num_files", num_files, 1)
    simulations_per_file = _check_int(
        "simulations_per_file", simulations_per_file, 1
    )
    duration_ms = _check_int("duration_ms", duration_ms, 1)
    seed = _check_int("seed", seed, 0)
    cell_seed = _check_int("cell_seed", cell_seed, 0)
    directory = os.fspath(directory)
    check_writable(directory, what="`directory`")
    morphology = _cell_morphology(cell_seed)
    segment_types = [
        "basal" if s < _CELL["basal_segments"] else "apical"
        for s in range(NUM_SEGMENTS)
    ]
    paths = []
    for index in range(num_files):
        file_seed = int(
            np.random.SeedSequence([seed, index]).generate_state(1)[0]
        )
        rng = np.random.default_rng(file_seed)
        simulations = [
            _simulation_dict(rng, morphology, duration_ms)
            for _ in range(simulations_per_file)
        ]
        params = {
            "model": "keras_elm synthetic NeuronIO-like cell (NumPy, "
            "32 dendritic branches with NMDA-like nonlinearity, "
            "integrate-and-fire soma); not the Beniaguev L5PC",
            "simulatorVersion": SIMULATOR_VERSION,
            "cellSeed": cell_seed,
            "randomSeed": file_seed,
            "numSimulations": simulations_per_file,
            "totalSimDurationInSec": duration_ms / 1000,
            "allSegmentsType": segment_types,
            "allSegments_DistFromSoma": morphology["distance"].tolist(),
            "branchOfSegment": morphology["branch"].tolist(),
            "cell": dict(_CELL),
        }
        content = {
            "Params": params,
            "Results": {"listOfSingleSimulationDicts": simulations},
        }
        name = FILE_NAME.format(
            spikes=sum(s["outputSpikeTimes"].size for s in simulations),
            runs=simulations_per_file,
            seconds=f"{duration_ms / 1000:g}",
            seed=file_seed,
        )
        path = os.path.join(directory, name)
        with atomic_write(path) as f:
            pickle.dump(content, f, protocol=2)
        paths.append(path)
    return sorted(paths)
