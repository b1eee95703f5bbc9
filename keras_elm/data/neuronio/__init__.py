"""NeuronIO (Beniaguev, Segev & London 2021): a cortical neuron's in and out.

Each simulation is 6 s of a detailed layer-5 pyramidal cell model driven by
1,278 presynaptic spike trains: one excitatory and one inhibitory input on
each of 639 dendritic segments. The task is to predict, at every 1 ms step,
the somatic spike (0/1, trained on logits with binary cross-entropy) and the
somatic voltage.

Nothing is downloaded (the release is about 115 GB, on Kaggle, behind a
login; `download()` raises, saying how to get it; the file format is
described in `keras_elm.data.neuronio.files`). Pickles can run
code when they are read: only read files you trust.

What the model sees (the authors' encoding):

- inputs `(T, 1278)`: channel `s` is the excitatory input of segment `s`
  (+1 in the ms bins with a spike), channel `639 + s` its inhibitory input
  (-1: the authors multiply the inhibitory half by -1);
- spike target: 1 at bin `int(t - 0.5)` of every output spike time `t`;
- soma target: `(min(V, -55) + 67.7) * 0.1`, the voltage cut at the spike
  threshold, so that action potentials do not dominate the squared error.

One job a module, every name importable from here:

- `files`: the release's pickles (`read_file`, `simulation_arrays`,
  `list_files`, the format's constants);
- `windows`: training (`load`, `NeuronIOWindows`) streams random 500 ms
  windows; the paper's loss ignores the first `BURN_IN = 150` steps of
  each window;
- `evaluation`: the authors' evaluation (`evaluation_set`, `evaluate`),
  sliding 500 ms windows with stride 350 stitched back into whole
  simulations; the first 500 ms of every simulation and the simulations
  with more than 24 output spikes are left out; the metrics are in
  `keras_elm.metrics`;
- `download`: `download()`, which only says how to get the release;
- `simulator`: `simulate()` writes a small NeuronIO-like set offline, in
  the release's file format, from a simple NumPy neuron with dendritic
  branches: a stand-in for smoke runs and tests, not the Beniaguev L5PC.

`splits()` gives what the NeuronIO example trains on: training and
validation windows and the test files' folder, from the release or, without
it, from simulated files.
"""

import os
import tempfile

from keras_elm.checks import check_bool
from keras_elm.checks import check_folder
from keras_elm.checks import check_int as _check_int
from keras_elm.data.files import check_writable as _check_writable
from keras_elm.data.files import made_once as _made_once
from keras_elm.data.files import publish_folder as _publish_folder
from keras_elm.data.neuronio.evaluation import EVALUATION_STRIDE
from keras_elm.data.neuronio.evaluation import MAX_EVALUATION_SPIKES
from keras_elm.data.neuronio.evaluation import EvaluationSet
from keras_elm.data.neuronio.evaluation import evaluate
from keras_elm.data.neuronio.evaluation import evaluation_set
from keras_elm.data.neuronio.evaluation import sliding_windows
from keras_elm.data.neuronio.evaluation import stitch
from keras_elm.data.neuronio.evaluation import window_starts
from keras_elm.data.neuronio.files import FILE_NAME
from keras_elm.data.neuronio.files import KAGGLE_URLS
from keras_elm.data.neuronio.files import NUM_INPUTS
from keras_elm.data.neuronio.files import NUM_SEGMENTS
from keras_elm.data.neuronio.files import SIM_DURATION_MS
from keras_elm.data.neuronio.files import SIMULATION_KEYS
from keras_elm.data.neuronio.files import SIMULATIONS_PER_FILE
from keras_elm.data.neuronio.files import SOMA_OFFSET
from keras_elm.data.neuronio.files import SOMA_SCALE
from keras_elm.data.neuronio.files import SOMA_THRESHOLD
from keras_elm.data.neuronio.files import SPLIT_FOLDERS
from keras_elm.data.neuronio.files import SPLITS
from keras_elm.data.neuronio.files import Simulation
from keras_elm.data.neuronio.files import list_files
from keras_elm.data.neuronio.files import read_file
from keras_elm.data.neuronio.files import simulation_arrays
from keras_elm.data.neuronio.kaggle import DOWNLOAD_SIZE
from keras_elm.data.neuronio.kaggle import KAGGLE_DATASETS
from keras_elm.data.neuronio.kaggle import download
from keras_elm.data.neuronio.simulator import SIMULATOR_VERSION
from keras_elm.data.neuronio.simulator import simulate
from keras_elm.data.neuronio.windows import BURN_IN
from keras_elm.data.neuronio.windows import IGNORE_MS
from keras_elm.data.neuronio.windows import WINDOW
from keras_elm.data.neuronio.windows import WINDOWS_PER_SIMULATION
from keras_elm.data.neuronio.windows import NeuronIOWindows
from keras_elm.data.neuronio.windows import load

__all__ = [
    "BURN_IN",
    "DOWNLOAD_SIZE",
    "EVALUATION_STRIDE",
    "EvaluationSet",
    "FILE_NAME",
    "HELP",
    "IGNORE_MS",
    "KAGGLE_DATASETS",
    "KAGGLE_URLS",
    "MAX_EVALUATION_SPIKES",
    "NUM_INPUTS",
    "NUM_SEGMENTS",
    "NeuronIOWindows",
    "SIMULATIONS_PER_FILE",
    "SIMULATION_KEYS",
    "SIMULATOR_VERSION",
    "SIM_DURATION_MS",
    "SOMA_OFFSET",
    "SOMA_SCALE",
    "SOMA_THRESHOLD",
    "SPLITS",
    "SPLIT_FOLDERS",
    "SYNTHETIC_NOTE",
    "Simulation",
    "WINDOW",
    "WINDOWS_PER_SIMULATION",
    "download",
    "evaluate",
    "evaluation_set",
    "is_synthetic",
    "list_files",
    "load",
    "read_file",
    "simulate",
    "simulation_arrays",
    "sliding_windows",
    "splits",
    "stitch",
    "window_starts",
]

# How to get the real files, and what the stand-in is, as the examples say.
HELP = (
    "Pass --data-dir ~/data/neuronio, the NeuronIO release "
    "(Beniaguev et al., 2021) with train/, valid/ and test/ "
    "folders of .p files (or one flat folder); without "
    "--data-dir a stand-in is simulated."
)
SYNTHETIC_NOTE = (
    "simulated by keras_elm's NumPy neuron (keras_elm.data."
    "neuronio.simulate), not the L5PC of NeuronIO; pass "
    "--data-dir for the real simulations"
)
# Simulations of the smoke fixture: half the release's, to stay quick.
_SMOKE_DURATION_MS = 3000


def is_synthetic(data_dir):
    """Whether `splits(data_dir)` trains on simulated stand-in data.

    Args:
        data_dir: the `data_dir` given to `splits`.

    Returns:
        True when no folder is given (`None` or `""`): `splits` then
        simulates its data. A folder is taken to hold the release (its
        files are not read: one is about 1 GB).

    Example:

    >>> is_synthetic(None), is_synthetic("~/data/neuronio")
    (True, False)
    """
    check_folder("data_dir", data_dir)
    return not data_dir


def _simulated_folder(num_samples, seed, cache_dir, smoke):
    """The folder of simulated files (train/, valid/, test/), made once."""
    duration = _SMOKE_DURATION_MS if smoke else SIM_DURATION_MS

    def write(path):
        # One neuron (cell_seed), three sets of simulations.
        for offset, (split, count) in enumerate(
            (
                ("train", num_samples),
                ("valid", max(2, num_samples // 4)),
                ("test", max(2, num_samples // 4)),
            )
        ):
            simulate(
                os.path.join(path, split),
                simulations_per_file=count,
                duration_ms=duration,
                seed=seed + offset,
            )
        return path

    if smoke:
        return _made_once(
            cache_dir,
            write,
            num_samples=num_samples,
            seed=seed,
            neuronio=duration,
        )
    if cache_dir is None:
        cache_dir = tempfile.mkdtemp(prefix="keras_elm_")
    return _publish_folder(
        os.path.join(cache_dir, f"simulated_neuronio_{num_samples}_seed{seed}"),
        write,
    )


def splits(
    data_dir=None,
    *,
    num_samples=32,
    batch_size=8,
    steps_per_epoch=None,
    seed=0,
    cache_dir=None,
    smoke=False,
):
    """What the NeuronIO example trains on: windows, and the test folder.

    Without `data_dir` a stand-in is simulated by `simulate()` (one neuron;
    `num_samples` training simulations, and `max(2, num_samples // 4)`
    each for validation and test) into split folders: 6 s simulations in
    `<cache_dir>/simulated_neuronio_<num_samples>_seed<seed>`, or, with
    `smoke`, 3 s ones in
    `<cache_dir>/smoke_data/neuronio3000-n<num_samples>-seed<seed>`.
    Either folder is made once and reused by later calls with the same
    settings.

    Args:
        data_dir: the release's folder (as `list_files`), or None to
            simulate a stand-in.
        num_samples: training simulations of the stand-in.
        batch_size: windows per batch.
        steps_per_epoch: batches per epoch (None: 10 windows a simulation).
        seed: seed of the stand-in and of the windows, an integer >= 0.
        cache_dir: the folder to keep the stand-in in (None: a new
            temporary folder).
        smoke: simulate a small quick stand-in (3 s simulations).

    Returns:
        `{"train": PyDataset, "val": PyDataset, "test": folder}`: random
        500 ms training windows (new each epoch) and validation windows
        (the same each epoch), both with sample weights 0 on the first
        `BURN_IN` steps, and the folder whose `test/` split `evaluate`
        reads.

    Raises:
        FileNotFoundError: `data_dir` lacks a split's files (the message
            says which).
        ValueError, TypeError: a bad argument, named.

    Example:

    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> _ = simulate(folder, simulations_per_file=1, duration_ms=1500)
    >>> data = splits(folder, batch_size=2, steps_per_epoch=1)
    >>> inputs, targets, weights = data["train"][0]
    >>> inputs.shape, weights.shape, data["test"] == folder
    ((2, 500, 1278), (2, 500), True)
    """
    check_folder("data_dir", data_dir)
    check_folder("cache_dir", cache_dir)
    num_samples = _check_int("num_samples", num_samples, 1)
    batch_size = _check_int("batch_size", batch_size, 1)
    if steps_per_epoch is not None:
        steps_per_epoch = _check_int("steps_per_epoch", steps_per_epoch, 1)
    seed = _check_int("seed", seed, 0)
    smoke = check_bool("smoke", smoke)
    folder = data_dir
    if not folder:
        if cache_dir is not None:
            _check_writable(os.fspath(cache_dir), what="`cache_dir`")
        folder = _simulated_folder(num_samples, seed, cache_dir, smoke)
    train, val = (
        load(
            folder,
            split=split,
            batch_size=batch_size,
            steps_per_epoch=steps_per_epoch,
            seed=seed,
            burn_in=BURN_IN,
        )
        for split in ("train", "val")
    )
    return {"train": train, "val": val, "test": folder}
