"""How a task trains: its optimizer and loss, the callbacks, the devices.

The recipe of a `keras_elm.tasks.Task` (optimizer, learning rate and its
schedule, loss and metrics) becomes `model.compile` keywords here
(`compile_arguments`); `callbacks` puts together the backups for resuming,
the best checkpoint, the step timer, the time limit and Ctrl-C
(`keras_elm.callbacks`); `distribution` and `trim_to_devices` spread a run
over all devices with `--distribute`. Nothing here parses flags: the
functions that take `args` read the values `keras_elm.tasks.parse_args`
gave.
"""

import contextlib
import functools
import inspect
import os

import keras

from keras_elm import distribute
from keras_elm.callbacks import Backup
from keras_elm.callbacks import BestModel
from keras_elm.callbacks import StepTimer
from keras_elm.callbacks import StopOnInterrupt
from keras_elm.callbacks import StopOnNaN
from keras_elm.callbacks import TimeLimit


class MissingDataError(SystemExit):
    """Exits an example non-zero, saying which files to put where."""

    def __init__(self, message):
        super().__init__(f"error: {message}")


# The datasets of the LRA release (one archive, `keras_elm.data.lra`).
LRA_DATASETS = ("pathfinder", "listops", "aan")


def dataset_name(task):
    """The name of the data module of `task`: `keras_elm.data.<name>`.

    Example:

    >>> from keras_elm import tasks
    >>> tasks.dataset_name(tasks.get("image"))
    'cifar10'
    """
    data = getattr(task.data, "func", task.data)
    return data.__module__.split(".")[2]


def default_download_dir(name):
    """Where `--download` puts the data of `keras_elm.data.<name>` when no
    `--data-dir` is given: `keras_elm.data.download.default_data_dir`,
    `lra_release` for the three datasets of the LRA release."""
    from keras_elm.data import download

    return download.default_data_dir(
        "lra_release" if name in LRA_DATASETS else name
    )


def fetch_data(task, args):
    """The folder to read the task's data from: downloaded with
    `--download`, else `--data-dir` (None: the data are generated, or a
    smoke fixture).

    With `--download`, the dataset's `download(data_dir, mirror=...)`
    (`keras_elm.data.<dataset>.download`) fetches what is missing into
    `--data-dir` (None: its default folder under `$KERAS_HOME` or
    `~/.keras`), verifies and unpacks it, and returns the folder its
    `splits` reads; a verified copy there is reused without the network.
    Without `--download` nothing touches the network.

    Args:
        task: the `Task`.
        args: the flags of `parse_args` (`download`, `mirror`,
            `data_dir`).

    Returns:
        The folder for `data_arguments(task, args, data_dir=...)`, or
        `args.data_dir`.

    Raises:
        MissingDataError: the dataset has no `download`.
        FileNotFoundError, keras_elm.data.download.DownloadError,
            keras_elm.data.download.ChecksumError: the download failed
            (`exit_on_missing_data` turns them into a clean exit).
    """
    if not getattr(args, "download", False):
        return args.data_dir
    import importlib

    name = dataset_name(task)
    module = importlib.import_module(f"keras_elm.data.{name}")
    download = getattr(module, "download", None)
    if download is None:
        raise MissingDataError(
            f"keras_elm.data.{name} cannot download its files yet. "
            + (getattr(module, "HELP", "") or "")
        )
    kwargs = {}
    if name == "pathfinder":  # which folder of the LRA release
        bound = getattr(task.data, "keywords", None) or {}
        kwargs["image_size"] = bound.get(
            "image_size", getattr(args, "image_size", 32)
        )
    return download(
        args.data_dir, mirror=getattr(args, "mirror", None), **kwargs
    )


@contextlib.contextmanager
def exit_on_missing_data(task=None, args=None):
    """A missing file or failed download becomes a clean exit: `error: ...`.

    The datasets' `splits` raise a `FileNotFoundError` that says which
    files to put where, and their `download` a `DownloadError` (naming
    the URL and the manual way) or a `ChecksumError`; inside this context
    each becomes a `MissingDataError` (exit status 1, the message on
    stderr, no traceback). Given the task and flags of a run without
    `--download`, the message of a missing file also names `--download`
    where the dataset can be downloaded.

    Args:
        task: the `Task`, or None.
        args: the flags of `parse_args`, or None.

    Example:

    ```python
    from keras_elm import tasks

    try:
        with tasks.exit_on_missing_data():
            raise FileNotFoundError("no basic_train.tsv in ~/data")
    except tasks.MissingDataError as error:
        assert error.code == "error: no basic_train.tsv in ~/data"
    ```
    """
    from keras_elm.data import download

    try:
        yield
    except FileNotFoundError as error:
        message = str(error)
        if (
            task is not None
            and args is not None
            and not getattr(args, "download", False)
            and "--download" not in message
            and dataset_name(task) != "neuronio"
        ):
            message += (
                " Or pass --download to fetch them into "
                f"{args.data_dir or default_download_dir(dataset_name(task))}."
            )
        raise MissingDataError(message) from error
    except (download.DownloadError, download.ChecksumError) as error:
        raise MissingDataError(str(error)) from error


def trim_to_devices(splits, distribute_run=True):
    """Each split cut to a multiple of the device count under `--distribute`.

    Keras splits every batch evenly over the devices, the last, partial
    one of a split too (JAX raises otherwise, and TensorFlow's `evaluate`
    fails), so a split whose size does not divide loses its last few
    samples (fewer than the device count), and the run says so.

    Args:
        splits: `{"train": (x, y), ...}`; `x` an array or a list of arrays.
        distribute_run: whether the run is data-parallel (`args.distribute`);
            False returns `splits` as they are.

    Returns:
        The splits, trimmed.

    Raises:
        ValueError: a split has fewer samples than there are devices.
    """
    if not distribute_run:
        return splits
    devices = len(distribute.list_devices())
    return {name: _trim(name, x, y, devices) for name, (x, y) in splits.items()}


def even_over_devices(load):
    """`load`, with each split cut to a multiple of the device count under
    `--distribute` (`trim_to_devices`), and a missing file an exit that
    names it (`exit_on_missing_data`).

    Args:
        load: `(args) -> {"train": (x, y), ...}`.

    Returns:
        The same loader, trimming with `--distribute`.
    """

    @functools.wraps(load)
    def load_even(args):
        with exit_on_missing_data():
            splits = load(args)
        return trim_to_devices(splits, getattr(args, "distribute", False))

    return load_even


def _trim(name, x, y, devices):
    keep = len(y) // devices * devices
    if keep == len(y):
        return x, y
    if not keep:
        raise ValueError(
            f"The {name} split has {len(y)} samples, fewer than the "
            f"{devices} devices of --distribute: give it at least {devices}."
        )
    print(
        f"--distribute: the {name} split keeps {keep} of its {len(y)} "
        f"samples, a multiple of the {devices} devices",
        flush=True,
    )
    if isinstance(x, (list, tuple)):
        return type(x)(part[:keep] for part in x), y[:keep]
    return x[:keep], y[:keep]


def distribution(args):
    """The context to build and compile the model in: all devices or one.

    Args:
        args: the parsed flags (`distribute`, `batch_size`).

    Returns:
        `keras_elm.distribute.data_parallel(args.batch_size)` with
        `--distribute` (it prints the devices), else a context that does
        nothing.

    Example:

    ```python
    import argparse

    import keras_elm
    from keras_elm import tasks

    args = argparse.Namespace(distribute=False, batch_size=4)
    with tasks.distribution(args):
        model = keras_elm.models.listops(20, units=4, mlp_units=8)
    ```
    """
    if not getattr(args, "distribute", False):
        return contextlib.nullcontext()
    parallel = distribute.data_parallel(args.batch_size)
    print(
        f"data-parallel over {parallel.num_replicas} devices: each takes "
        f"{args.batch_size // parallel.num_replicas} samples of every "
        f"batch of {args.batch_size}",
        flush=True,
    )
    return parallel


def steps_per_epoch(splits, args):
    """Batches of `args.batch_size` in the train split (the last partial)."""
    return max(1, -(-len(splits["train"][1]) // args.batch_size))


# --- the recipe ---------------------------------------------------------------


OPTIMIZERS = {"adam": keras.optimizers.Adam, "adamax": keras.optimizers.Adamax}


def task_optimizer(task, learning_rate, decay_steps=None):
    """The task's optimizer (`task.optimizer`) at `learning_rate`.

    Args:
        task: a `Task`.
        learning_rate: the peak learning rate.
        decay_steps: steps of the cosine decay when `task.cosine` (None:
            a constant learning rate).

    Returns:
        A Keras optimizer.
    """
    if task.cosine and decay_steps:
        learning_rate = keras.optimizers.schedules.CosineDecay(
            learning_rate, decay_steps=max(1, int(decay_steps))
        )
    return OPTIMIZERS[task.optimizer](learning_rate)


def optimizer(task, args, steps_per_epoch):
    """The task's optimizer at `--learning-rate`, with its cosine decay (if
    it has one) over the run's `--epochs` x `steps_per_epoch` steps."""
    return task_optimizer(
        task, args.learning_rate, decay_steps=args.epochs * steps_per_epoch
    )


def default_compile_kwargs(task):
    """The task's loss and metrics: `task.compile_kwargs`, or cross-entropy
    on logits with accuracy."""
    if task.compile_kwargs is not None:
        return task.compile_kwargs()
    return dict(
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )


def compile_arguments(task, decay_steps=None, learning_rate=None):
    """The `model.compile` keywords of the task's recipe.

    Args:
        task: a `Task`.
        decay_steps: steps of the cosine decay of a task that decays
            (`epochs * steps_per_epoch`); None: a constant learning rate.
        learning_rate: the peak learning rate (None: the paper's,
            `task.learning_rate`).

    Returns:
        `{"optimizer": ..., "loss": ..., ...}` (`task_optimizer` and
        `default_compile_kwargs`).

    Example:

    ```python
    import keras_elm
    from keras_elm import tasks

    task = tasks.get("listops")
    model = keras_elm.models.listops(20, units=4, mlp_units=8)
    model.compile(**tasks.compile_arguments(task, decay_steps=100))
    assert type(model.optimizer).__name__ == "Adam"
    ```
    """
    if learning_rate is None:
        learning_rate = task.learning_rate
    return dict(
        optimizer=task_optimizer(task, learning_rate, decay_steps),
        **default_compile_kwargs(task),
    )


def compile_model(model, task, args, steps_per_epoch, **compile_kwargs):
    """The task's optimizer, loss and metrics (`default_compile_kwargs`).

    Args:
        model: the model to compile.
        task: its `Task`.
        args: the parsed flags (`learning_rate`, `epochs`).
        steps_per_epoch: training steps in an epoch (for the decay).
        **compile_kwargs: `model.compile` arguments that replace the
            defaults (`loss`, `metrics`, `loss_weights`...).

    Returns:
        The model, compiled.
    """
    kwargs = default_compile_kwargs(task)
    kwargs.update(compile_kwargs)
    model.compile(optimizer=optimizer(task, args, steps_per_epoch), **kwargs)
    return model


# --- resuming -----------------------------------------------------------------

# Flags that leave the model and the data as they are: a run may continue
# a backup with other values of these (`run_config` leaves them out).
RESUMABLE_FLAGS = frozenset(
    (
        "output_dir",
        "epochs",
        "max_minutes",
        "batch_size",
        "learning_rate",
        "distribute",
        "steps_per_epoch",
        "remat_chunk_size",
        "pretrained",
        "synthetic_data",
        "dry_run",
        "mirror",
    )
)


def run_config(args):
    """The flags a run's model and data follow, which its backup stores.

    Every parsed flag but those of `RESUMABLE_FLAGS` (how long, how fast,
    where: `--epochs`, `--max-minutes`, `--batch-size`, `--learning-rate`,
    `--output-dir`...), `--data-dir` as an absolute path. `Backup` refuses
    to restore a backup of another configuration.

    Args:
        args: the parsed flags.

    Returns:
        A dict of the flags' names and values.

    Example:

    ```python
    import argparse

    from keras_elm import tasks

    args = argparse.Namespace(seed=0, epochs=3, data_dir=None)
    assert tasks.run_config(args) == {"data_dir": None, "seed": 0}
    ```
    """
    config = {
        name: value
        for name, value in sorted(vars(args).items())
        if name not in RESUMABLE_FLAGS
    }
    if config.get("data_dir") is not None:
        config["data_dir"] = os.path.abspath(config["data_dir"])
    if not config.get("download", True):
        del config["download"]  # as the backups of runs before the flag
    return config


def callbacks(args, steps_per_epoch, monitor="val_accuracy"):
    """Backups for resuming, the best checkpoint, the step timer, Ctrl-C.

    `Backup` keeps `<output-dir>/backup`: rerun the same command after an
    interruption, or after a `--max-minutes` stop, and training resumes
    after the last finished epoch, with `best.keras` still the best model
    of all the runs (`BestModel`); a backup of a run with other flags
    (`run_config`) is refused. A NaN loss stops the run with an error
    (`StopOnNaN`). With `--max-minutes`, a `TimeLimit` ends training on
    time; the epoch it stops counts as finished. Ctrl-C stops training at
    the end of the step (`StopOnInterrupt`): the epoch in progress is not
    counted, the script exits with status 130 without evaluating or
    saving `model.keras`, and the same command continues from the backup.

    Args:
        args: the parsed flags (`output_dir`, `max_minutes`).
        steps_per_epoch: training steps in an epoch (for the timing).
        monitor: the metric `best.keras` is chosen by.

    Returns:
        The callbacks for `model.fit`.
    """
    os.makedirs(args.output_dir, exist_ok=True)
    best = BestModel(
        os.path.join(args.output_dir, "best.keras"), monitor=monitor
    )
    backup = Backup(
        os.path.join(args.output_dir, "backup"),
        best_model=best,
        config=run_config(args),
    )
    return (
        [
            StopOnNaN(),
            best,  # Before the backup, which stores its best value.
            backup,
            StepTimer(steps_per_epoch),
        ]
        + (
            [TimeLimit(args.max_minutes)]
            if getattr(args, "max_minutes", None)
            else []
        )
        + [
            StopOnInterrupt(backup),  # Last: after the epoch's saves.
        ]
    )


_FLAG = object()


def data_arguments(task, args, data_dir=_FLAG):
    """The keywords of `task.data` (the dataset's `splits`) from the flags.

    Each parameter of `task.data` takes the parsed flag of its name
    (`data_dir`, `num_samples`, `seed`, `smoke`, `max_length`, `dt`,
    `batch_size`...), and `cache_dir` takes `--output-dir`, where the
    generated data and smoke fixtures are kept. A flag left None (no
    `--data-dir`, `--min-length` not given) and a keyword the task binds
    (Path-X's `image_size`) are left to the function.

    Args:
        task: a `Task`.
        args: the flags of `parse_args`.
        data_dir: the folder to read, in place of `--data-dir` (what
            `fetch_data` returns; not given: `args.data_dir`).

    Returns:
        A dict of keyword arguments for `task.data`.

    Example:

    ```python
    import argparse

    from keras_elm import tasks

    task = tasks.get("listops")
    args = argparse.Namespace(  # as `parse_args` gives them for --smoke
        smoke=True,
        data_dir=None,
        output_dir="runs/listops/smoke",
        seed=0,
        num_samples=40,
        max_length=60,
        min_length=None,
        epochs=1,
    )
    assert tasks.data_arguments(task, args) == dict(
        num_samples=40,
        max_length=60,
        seed=0,
        cache_dir="runs/listops/smoke",
        smoke=True,
    )
    ```
    """
    bound = getattr(task.data, "keywords", None) or {}
    kwargs = {}
    for name in inspect.signature(task.data).parameters:
        if name in bound:
            continue
        if name == "cache_dir":
            value = args.output_dir
        elif name == "data_dir" and data_dir is not _FLAG:
            value = data_dir
        else:
            value = getattr(args, name, None)
        if value is not None:
            kwargs[name] = value
    return kwargs


def load_data(task, args):
    """The task's splits from the parsed flags, as the examples make them.

    `task.data(**data_arguments(task, args, data_dir=fetch_data(task,
    args)))` (downloaded with `--download`), a missing file or a failed
    download an exit that names it (`exit_on_missing_data`), each split
    of arrays cut to a multiple of the device count under `--distribute`
    (`trim_to_devices`).

    Args:
        task: a `Task`.
        args: the flags of `parse_args`.

    Returns:
        `{"train": (x, y), "val": ..., "test": ...}` (NeuronIO: windows to
        train and validate on, and the test files' folder).
    """
    with exit_on_missing_data(task, args):
        data_dir = fetch_data(task, args)
        splits = task.data(**data_arguments(task, args, data_dir=data_dir))
    if not task.classification:  # NeuronIO streams whole batches.
        return splits
    return trim_to_devices(splits, getattr(args, "distribute", False))
