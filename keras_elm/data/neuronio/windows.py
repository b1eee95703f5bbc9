"""NeuronIO training windows, streamed from the release's files.

`load` (a `NeuronIOWindows`, a `keras.utils.PyDataset`) draws random 500 ms
windows of the simulations of a split's files, as the authors train: no
window starts in the first `IGNORE_MS` ms of a simulation, and with
`burn_in=BURN_IN` the loss ignores the first 150 steps of each window.
Only a few parsed files are held in memory at once.
"""

import collections
import math
import os
import threading

import keras
import numpy as np

from keras_elm.checks import check_choice as _check_choice
from keras_elm.checks import check_int as _check_int
from keras_elm.data.neuronio.files import _SIGNS
from keras_elm.data.neuronio.files import NUM_INPUTS
from keras_elm.data.neuronio.files import SPLITS
from keras_elm.data.neuronio.files import _how_to_get
from keras_elm.data.neuronio.files import _simulations_in
from keras_elm.data.neuronio.files import list_files
from keras_elm.data.neuronio.files import read_file

WINDOW = 500
BURN_IN = 150
# No training window starts in, and evaluation leaves out, the first 500 ms
# of a simulation: the cell model settles there.
IGNORE_MS = 500
# Default epoch length: this many windows per simulation of the files.
WINDOWS_PER_SIMULATION = 10


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
    >>> from keras_elm.data.neuronio import simulate
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
        _check_choice("targets", targets, ("dict", "tuple"))
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
    >>> from keras_elm.data.neuronio import simulate
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
