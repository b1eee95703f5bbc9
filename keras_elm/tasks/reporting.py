"""What a run prints and draws: the plan, the report, the NeuronIO figure.

`print_plan` says what the run will do before it does it, `report`
evaluates on the test split beside chance and the majority class and saves
the model, and `plot_neuronio` draws a NeuronIO prediction (matplotlib is
imported there only). A run on a synthetic stand-in or a `--smoke` run
says so in every printout (`run_labels`, `synthetic_line`).
"""

import math
import os

import keras
import numpy as np

from keras_elm.callbacks import _check_finite
from keras_elm.callbacks import save_model
from keras_elm.tasks.training import OPTIMIZERS
from keras_elm.tasks.training import steps_per_epoch


def print_plan(task, args, splits, model, *, steps=None, data=None):
    """What the run will do, before it does it.

    Args:
        task: the `Task`.
        args: the parsed flags.
        splits: `{"train": (x, y), ...}` arrays (None with `data` given).
        model: the model to train.
        steps: steps per epoch (from `splits` if None).
        data: the data line, for data that is not arrays (a `PyDataset`).
    """
    if data is None:
        sizes = {split: len(labels) for split, (_, labels) in splits.items()}
        x = splits["train"][0]
        shapes = " and ".join(
            f"{tuple(part.shape[1:])} {part.dtype}"
            for part in (x if isinstance(x, (list, tuple)) else [x])
        )
        data = (
            f"{sizes['train']} train / {sizes['val']} val / "
            f"{sizes['test']} test, inputs {shapes}"
        )
    if steps is None:
        steps = steps_per_epoch(splits, args)
    schedule = "with cosine decay" if task.cosine else "constant"
    print(
        f"{task.description}\n"
        f"  backend {keras.backend.backend()}, seed {args.seed}"
        f"{', SMOKE RUN (tiny model and data)' if args.smoke else ''}\n"
        f"  data: {data}\n"
        f"{synthetic_line(args)}"
        f"  model: {parameter_counts(model)}\n"
        f"  training: {args.epochs} epochs x {steps} steps of batch "
        f"{args.batch_size}, {OPTIMIZERS[task.optimizer].__name__} "
        f"{args.learning_rate:g} {schedule}\n"
        f"  output: {os.path.abspath(args.output_dir)}",
        flush=True,
    )


def parameter_counts(model):
    """The model's trainable and non-trainable parameter counts, in words.

    `model.count_params()` adds the non-trainable ones (a Branch-ELM's
    fixed routing), which the paper does not count.

    Args:
        model: a built `keras.Model`.

    Returns:
        E.g. `"8,002 trainable parameters (+ 9,065 non-trainable)"`.
    """
    trainable, fixed = (
        sum(math.prod(weight.shape) for weight in weights)
        for weights in (model.trainable_weights, model.non_trainable_weights)
    )
    return f"{trainable:,} trainable parameters" + (
        f" (+ {fixed:,} non-trainable)" if fixed else ""
    )


def run_labels(args):
    """`"SMOKE RUN"` and/or `"SYNTHETIC DATA"`, as they apply to the run."""
    return [
        label
        for label, applies in (
            ("SMOKE RUN", getattr(args, "smoke", False)),
            ("SYNTHETIC DATA", getattr(args, "synthetic_data", None)),
        )
        if applies
    ]


def synthetic_line(args):
    """A warning line when the run uses a synthetic stand-in ('' if not)."""
    note = getattr(args, "synthetic_data", None)
    return f"  SYNTHETIC DATA: {note}\n" if note else ""


def majority_accuracy(splits):
    """Test accuracy of always answering the train split's commonest class."""
    train = np.asarray(splits["train"][1]).ravel()
    test = np.asarray(splits["test"][1]).ravel()
    values, counts = np.unique(train, return_counts=True)
    return float(np.mean(test == values[np.argmax(counts)]))


def report(task, model, splits, args):
    """Evaluates on the test split, prints it beside chance, saves the model."""
    _, accuracy = model.evaluate(
        *splits["test"], batch_size=args.batch_size, verbose=0
    )
    path = os.path.join(args.output_dir, "model.keras")
    _check_finite(model, "after training")
    save_model(model, path)
    paper = (
        f", paper {task.paper_accuracy:.2f} %"
        if task.paper_accuracy is not None
        else ""
    )
    majority = majority_accuracy(splits)
    print(
        f"{synthetic_line(args)}test accuracy {100 * accuracy:.2f} % (chance "
        f"{100 * task.chance:.2f} %, majority class {100 * majority:.2f} %"
        f"{paper}); model saved to {path}",
        flush=True,
    )
    return accuracy


def plot_neuronio(result, path, index=0, args=None):
    """Saves a PNG of predicted against true soma voltage and spikes.

    Its title says SMOKE RUN and/or SYNTHETIC DATA when the run was one
    (`run_labels`), so that the picture is never taken for the paper's.

    Args:
        result: a `keras_elm.data.neuronio.EvaluationSet`.
        path: the PNG file to write.
        index: which kept simulation to draw.
        args: the parsed flags (`smoke`, `synthetic_data`), or None.

    Returns:
        `path`.
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    if not len(result.soma_true):
        print("no test simulation kept: no picture", flush=True)
        return None
    soma_true, soma_pred = result.soma_true[index], result.soma_pred[index]
    spikes = np.flatnonzero(result.spike_true[index])
    scores = 1.0 / (1.0 + np.exp(-np.asarray(result.spike_pred[index])))
    time = np.arange(len(soma_true))
    figure, (top, bottom) = pyplot.subplots(
        2, 1, sharex=True, figsize=(10, 5), height_ratios=(3, 1)
    )
    top.plot(time, soma_true, color="black", lw=0.8, label="true (cut at -55)")
    top.plot(time, soma_pred, color="tab:red", lw=0.8, label="predicted")
    top.set_ylabel("soma (mV)")
    top.legend(loc="upper right")
    bottom.plot(time, scores, color="tab:red", lw=0.8)
    bottom.vlines(spikes, 0, 1, color="black", lw=0.8)
    bottom.set_ylabel("spike")
    bottom.set_xlabel("time after the first 500 ms (ms)")
    labels = run_labels(args) if args is not None else []
    figure.suptitle(
        " / ".join(labels) + f": test simulation {index}"
        if labels
        else f"NeuronIO test simulation {index}",
        color="tab:red" if labels else "black",
        fontweight="bold" if labels else "normal",
    )
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)
    print(f"picture of test simulation {index} saved to {path}", flush=True)
    return path
