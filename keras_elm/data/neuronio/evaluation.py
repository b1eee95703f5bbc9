"""NeuronIO's evaluation: sliding windows over whole simulations.

The authors' protocol: each simulation is cut into 500 ms windows with
stride 350 (`sliding_windows`), the model predicts every window, and the
predictions are stitched back into whole simulations (`stitch`), each
window's first 150 steps (its burn-in) dropped but the first's. The first
500 ms of every simulation and the simulations with more than 24 output
spikes are left out (`evaluation_set`); the metrics are in
`keras_elm.metrics` (`evaluate`).
"""

import collections
import math
import os

import keras
import numpy as np

from keras_elm.checks import check_int as _check_int
from keras_elm.data.neuronio.files import SOMA_OFFSET
from keras_elm.data.neuronio.files import SOMA_SCALE
from keras_elm.data.neuronio.files import list_files
from keras_elm.data.neuronio.files import read_file
from keras_elm.data.neuronio.files import simulation_arrays
from keras_elm.data.neuronio.windows import BURN_IN
from keras_elm.data.neuronio.windows import IGNORE_MS
from keras_elm.data.neuronio.windows import WINDOW

EVALUATION_STRIDE = WINDOW - BURN_IN
MAX_EVALUATION_SPIKES = 24


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
    >>> from keras_elm.data.neuronio import simulate
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
    >>> from keras_elm.data.neuronio import simulate
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
