"""The paper's tasks in one registry, and the plumbing the examples share.

A `Task` names a model builder, the data, and the paper's training recipe
(optimizer, batch size, epochs, loss). `examples/<task>.py` and the tuning
`HyperModel` read the same entries; a new task is one entry here plus its
data module. The example plumbing lives here too (flags, seeding,
callbacks, the run plan and its timing), so that every example shows data,
model and `fit` plainly.
"""

import argparse
import contextlib
import dataclasses
import functools
import json
import math
import os
import re
import secrets
import shutil
import sys
import tempfile
import time
from typing import Callable
from typing import Optional

import keras
import numpy as np

from keras_elm import distribute
from keras_elm import models
from keras_elm.data import files


@dataclasses.dataclass(frozen=True)
class Task:
    """One task of the paper.

    Attributes:
        name: registry key, e.g. `"pathfinder"`.
        description: one line for `--help` and the run plan.
        build_model: `(**overrides) -> keras.Model`, uncompiled, with the
            paper's defaults.
        load_data: `(args) -> {"train": (x, y), "val": ..., "test": ...}`,
            from the example's parsed flags.
        num_classes: classes of the labels (chance is `1 / num_classes`).
        batch_size: the paper's batch size.
        epochs: the paper's number of epochs.
        learning_rate: the paper's peak learning rate (Adam, cosine decay
            over the whole run).
        paper_accuracy: the paper's test accuracy (%), or None.
        smoke_model: model overrides for `--smoke` (a tiny ELM).
        smoke_samples: samples of a `--smoke` run.
        flags: defaults of the task's own flags (e.g. `max_length`), filled
            in by `parse_args` where the flag was not given.
        smoke_flags: the same for a `--smoke` run.
        arguments: the task's own command-line flags, `(flag,
            add_argument keywords)` pairs that `parser` adds (a default of
            None is filled in from `flags`).
        num_samples: default `--num-samples` of generated data (None: the
            task reads files only, and has no such flag).
        optimizer: `"adam"` or `"adamax"`.
        cosine: whether the learning rate decays by a cosine over the run
            (constant otherwise).
        classification: whether the loss is cross-entropy on logits with
            accuracy (else the example compiles its own loss, as NeuronIO).
        synthetic_note: how the default data differs from the paper's, when
            it is a synthetic stand-in (printed by `print_plan`/`report`).
        hyperparameters: the paper's values of the tuning knobs where they
            differ from `keras_elm.tuning.DEFAULTS` (d_m 150, τ_m 1-1e3,
            τ_s 5, λ 5, one hidden layer of 2·d_m); `learning_rate` is the
            task's own.
        memory_tau_bounds: `(min, max)` τ_m is bounded to when it starts in
            a narrower range (SHD, NeuronIO), or None when the range it
            starts in is also its bound (LRA).
        branches: `"always"` (Branch-ELM), `"optional"` (with the
            builder's `branch=True`) or None: whether `num_branches` and
            `synapses_per_branch` are tuning knobs.
        compile_kwargs: `model.compile` arguments other than the optimizer
            (None: cross-entropy on logits with accuracy).
        objective: `(metric, "max"|"min")` that tuning optimises.
        data_help: where the real files come from and what `--data-dir`
            holds (said when `--data-dir` is not a folder).
        check_flags: `(args) -> None`, raising a `ValueError` that names
            the flag where the task's flags cannot work together (run by
            `parse_args` before any work).
    """

    name: str
    description: str
    build_model: Callable[..., keras.Model]
    load_data: Callable[[argparse.Namespace], dict]
    num_classes: int
    batch_size: int
    epochs: int
    learning_rate: float = 2e-4
    paper_accuracy: Optional[float] = None
    smoke_model: dict = dataclasses.field(default_factory=dict)
    smoke_samples: int = 40
    flags: dict = dataclasses.field(default_factory=dict)
    smoke_flags: dict = dataclasses.field(default_factory=dict)
    arguments: tuple = ()
    num_samples: Optional[int] = None
    optimizer: str = "adam"
    cosine: bool = True
    classification: bool = True
    synthetic_note: Optional[str] = None
    hyperparameters: dict = dataclasses.field(default_factory=dict)
    memory_tau_bounds: Optional[tuple] = None
    branches: Optional[str] = None
    compile_kwargs: Optional[Callable[[], dict]] = None
    objective: tuple = ("val_accuracy", "max")
    data_help: Optional[str] = None
    check_flags: Optional[Callable[[argparse.Namespace], None]] = None

    @property
    def chance(self):
        return 1.0 / self.num_classes


class MissingDataError(SystemExit):
    """Exits an example non-zero, saying which files to put where."""

    def __init__(self, message):
        super().__init__(f"error: {message}")


def even_over_devices(load):
    """`load`, with each split cut to a multiple of the device count under
    `--distribute`, and a missing file an exit that names it.

    Keras splits every batch evenly over the devices, the last, partial
    one of a split too (JAX raises otherwise, and TensorFlow's `evaluate`
    fails), so a split whose size does not divide loses its last few
    samples (fewer than the device count), and the run says so.

    Args:
        load: `(args) -> {"train": (x, y), ...}`; `x` an array or a list
            of arrays.

    Returns:
        The same loader, trimming with `--distribute`.
    """

    @functools.wraps(load)
    def load_even(args):
        try:
            splits = load(args)
        except FileNotFoundError as error:  # the loaders say what is missing
            raise MissingDataError(str(error)) from error
        if not getattr(args, "distribute", False):
            return splits
        devices = len(distribute.list_devices())
        return {name: _trim(name, x, y, devices)
                for name, (x, y) in splits.items()}

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
    print(f"--distribute: the {name} split keeps {keep} of its {len(y)} "
          f"samples, a multiple of the {devices} devices", flush=True)
    if isinstance(x, (list, tuple)):
        return type(x)(part[:keep] for part in x), y[:keep]
    return x[:keep], y[:keep]


# --- data of the image tasks -------------------------------------------------


def _made_once(args, write, **settings):
    """The folder of smoke data (`--smoke` without `--data-dir`), made once.

    The folder is named by what the data depends on (the task, the seed,
    `--num-samples` and the task's flags in `settings`), so a run with other
    settings gets its own, and a rerun with the same ones reuses it. It is
    written under a temporary name and renamed when complete: a killed
    writer leaves no half-made folder that a rerun would trust.

    Args:
        args: the parsed flags (`output_dir`, `seed`, `num_samples`).
        write: `(folder) -> path`, writing the data into the empty `folder`
            and returning the path the loader reads (the folder or one
            inside it).
        **settings: the other values the data depends on.

    Returns:
        The path to read, inside `<output-dir>/smoke_data/<key>`.
    """
    settings = dict(settings, n=args.num_samples, seed=args.seed)
    key = "-".join(f"{name}{value}" for name, value in settings.items())
    return _publish(os.path.join(args.output_dir, "smoke_data", key), write)


def _publish(folder, write):
    """`write(temporary)`, then the temporary folder renamed to `folder`.

    Returns the path inside `folder` that `write` returned; an existing
    `folder` is reused as it is.
    """
    folder = os.path.abspath(folder)
    parent, name = os.path.split(folder)
    marker = os.path.join(parent, f".{name}.path")
    if os.path.isdir(folder):
        return _inside(folder, marker)
    os.makedirs(parent, exist_ok=True)
    _remove_stale(parent)
    temporary = tempfile.mkdtemp(dir=parent, suffix=".tmp",
                                 prefix=f".{name}.{os.getpid()}.")
    try:
        inner = os.path.relpath(os.path.abspath(write(temporary) or temporary),
                                temporary)
        with files.atomic_write(marker, "w", encoding="utf-8") as f:
            f.write(inner)
        os.rename(temporary, folder)
    except OSError:
        if not os.path.isdir(folder):  # not another run's, made meanwhile
            raise
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    return _inside(folder, marker)


def _inside(folder, marker):
    try:
        with open(marker, encoding="utf-8") as f:
            return os.path.normpath(os.path.join(folder, f.read().strip()))
    except OSError:
        return folder


def _pathfinder_data(args, image_size):
    from keras_elm.data import pathfinder as data

    difficulty = getattr(args, "difficulty", "hard")
    folder = args.data_dir
    if args.smoke and not folder:
        # Through the real file format and loader.
        def write(path):
            data.write_release(path, args.num_samples, image_size=image_size,
                               difficulty=difficulty, seed=args.seed)
            return path  # `load` reads the top folder

        folder = _made_once(args, write, pathfinder=image_size,
                            difficulty=difficulty)
    if folder:
        return {split: data.load(folder, image_size=image_size,
                                 difficulty=difficulty, split=split,
                                 seed=args.seed)
                for split in ("train", "val", "test")}
    images, labels = data.generate(
        args.num_samples, image_size=image_size, difficulty=difficulty,
        seed=args.seed, cache_dir=os.path.join(args.output_dir, "data_cache"),
    )
    # The same seeded 80/10/10 split as the release's.
    return {split: (images[rows], labels[rows])
            for split, rows in data.split_indices(len(images), args.seed).items()}


_IMAGE_HELP = (
    "Download https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
    " and unpack it, then pass --data-dir ~/data/cifar-10-batches-py "
    "(the folder holding data_batch_1 ... data_batch_5 and "
    "test_batch), or the data_dir of a prepared tensorflow-datasets "
    "'cifar10'. `--smoke` runs on a tiny random stand-in."
)


def _image_data(args):
    from keras_elm.data import cifar10

    data_dir = args.data_dir
    if args.smoke and not data_dir:
        # Tiny random pickles in the real format, read by the real loader.
        rng = np.random.default_rng(args.seed)
        data_dir = _made_once(args, lambda path: cifar10.write_batches(
            path,
            rng.integers(0, 256, (args.num_samples, 32, 32, 3), dtype="uint8"),
            rng.integers(0, 10, args.num_samples),
        ), image="")
    if not data_dir:
        raise MissingDataError(
            "the Image task needs CIFAR-10, which cannot be generated. "
            + _IMAGE_HELP
        )
    return {split: cifar10.load(data_dir, split=split, seed=args.seed)
            for split in ("train", "val", "test")}


# --- data of the text tasks ---------------------------------------------------


def _listops_data(args):
    from keras_elm.data import listops as data

    folder = args.data_dir
    lengths = dict(min_length=_min_length(args), max_length=args.max_length)
    if args.smoke and not folder:
        # Through the release's bracket-wrapped TSV and the real loader.
        tenth = max(1, args.num_samples // 10)
        sizes = {"train": args.num_samples - 2 * tenth, "val": tenth,
                 "test": tenth}
        folder = _made_once(
            args, lambda path: data.write_release(path, sizes, seed=args.seed,
                                                  **lengths),
            listops="", **lengths,
        )
    if folder:
        return {split: data.load(folder, split=split,
                                 max_length=args.max_length)
                for split in ("train", "val", "test")}
    sources, targets = data.generate(
        args.num_samples, seed=args.seed,
        cache_dir=os.path.join(args.output_dir, "data_cache"), **lengths,
    )
    tokens = data.tokenize(sources, args.max_length)
    # LRA's proportions, 96,000 / 2,000 / 2,000, in generation order (the
    # trees are independent draws).
    num_val = max(1, round(len(tokens) * 0.02))
    num_train = len(tokens) - 2 * num_val
    bounds = {"train": (0, num_train), "val": (num_train, num_train + num_val),
              "test": (num_train + num_val, len(tokens))}
    return {split: (tokens[a:b], targets[a:b])
            for split, (a, b) in bounds.items()}


def _min_length(args):
    """ListOps' lower length bound: LRA's 500, or a quarter of a short max."""
    if getattr(args, "min_length", None) is not None:
        return args.min_length
    return 500 if args.max_length > 1000 else max(1, args.max_length // 4)


def _real_files(load, args, smoke_fixture, missing, **settings):
    """Each split through `load`; a missing file exits saying what to do."""
    data_dir = args.data_dir
    if args.smoke and not data_dir:
        data_dir = _made_once(args, smoke_fixture, **settings)
    if not data_dir:
        raise MissingDataError(missing)
    try:
        return {split: load(data_dir, split=split, max_length=args.max_length)
                for split in ("train", "val", "test")}
    except FileNotFoundError as error:
        raise MissingDataError(str(error)) from error


_TEXT_HELP = (
    "Download https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
    ", unpack it, and pass --data-dir ~/data/aclImdb (the folder holding "
    "train/pos, train/neg, test/pos and test/neg with the reviews as "
    "*.txt), or the data_dir of a prepared tensorflow-datasets "
    "'imdb_reviews'. `--smoke` runs on a tiny synthetic fixture in the "
    "aclImdb layout."
)


def _text_data(args):
    from keras_elm.data import imdb

    return _real_files(
        imdb.load, args,
        lambda folder: imdb.write_fixture(
            folder, max(2, args.num_samples // 4), seed=args.seed,
            max_length=args.max_length,
        ),
        "the Text task needs IMDB, which cannot be generated. " + _TEXT_HELP,
        text="", max_length=args.max_length,
    )


_RETRIEVAL_HELP = (
    "Download the LRA release (https://storage.googleapis.com/"
    "long-range-arena/lra_release.gz), unpack it, and pass --data-dir "
    "~/data/lra_release/tsv_data (the folder holding "
    "new_aan_pairs.train.tsv, new_aan_pairs.eval.tsv and "
    "new_aan_pairs.test.tsv). `--smoke` runs on a tiny synthetic fixture "
    "in that format."
)


def _retrieval_data(args):
    from keras_elm.data import aan

    splits = _real_files(
        aan.load, args,
        lambda folder: aan.write_fixture(folder, args.num_samples,
                                         seed=args.seed),
        "the Retrieval task needs the AAN pairs of the LRA release, which "
        "cannot be generated. " + _RETRIEVAL_HELP,
        retrieval="",
    )
    # The two-tower model takes a list of its two inputs.
    return {split: (list(texts), labels)
            for split, (texts, labels) in splits.items()}


# --- data of the neuroscience tasks --------------------------------------------

_SHD_NOTE = ("keras_elm's synthetic spiking digits (keras_elm.data.shd."
             "write_synthetic), not the real SHD; pass --data-dir for SHD")
_NEURONIO_NOTE = ("simulated by keras_elm's NumPy neuron (keras_elm.data."
                  "neuronio.simulate), not the L5PC of NeuronIO; pass "
                  "--data-dir for the real simulations")


def _shd_folder(args):
    """The SHD files: --data-dir, or the synthetic stand-in (made once)."""
    from keras_elm.data import shd

    if args.data_dir:
        if shd.is_synthetic(args.data_dir):
            args.synthetic_data = _SHD_NOTE
        return args.data_dir
    num_train = args.num_samples
    num_test = _shd_test_samples(num_train)

    def write(path):
        shd.write_synthetic(path, num_train=num_train, num_test=num_test,
                            seed=args.seed)
        return path

    args.synthetic_data = _SHD_NOTE
    if args.smoke:
        return _made_once(args, write, shd="")
    return _publish(os.path.join(
        args.output_dir,
        f"synthetic_shd_{num_train}_{num_test}_seed{args.seed}"), write)


def _shd_test_samples(num_train):
    return max(10, num_train // 4)


def _shd_data(args, adding=False):
    from keras_elm.data import shd

    folder = _shd_folder(args)
    try:
        if adding:
            return {split: shd.adding(
                folder, split=split, dt=args.dt,
                seed=args.seed if split == "train" else None,
            ) for split in ("train", "val", "test")}
        return {split: shd.load(folder, split=split, dt=args.dt,
                                seed=args.seed)
                for split in ("train", "val", "test")}
    except FileNotFoundError as error:
        raise MissingDataError(str(error)) from error


def _neuronio_data(args):
    """Windows to train and validate on, and the test files' folder.

    Returns:
        `{"train": PyDataset, "val": PyDataset, "test": folder}`.
    """
    from keras_elm.data import neuronio

    folder = args.data_dir
    if not folder:
        sims = args.num_samples
        duration = 3000 if args.smoke else neuronio.SIM_DURATION_MS

        def write(path):
            # One neuron (cell_seed), three sets of simulations.
            for offset, (split, count) in enumerate(
                (("train", sims), ("valid", max(2, sims // 4)),
                 ("test", max(2, sims // 4)))
            ):
                neuronio.simulate(os.path.join(path, split),
                                  simulations_per_file=count,
                                  duration_ms=duration,
                                  seed=args.seed + offset)
            return path

        if args.smoke:
            folder = _made_once(args, write, neuronio=duration)
        else:
            folder = _publish(os.path.join(
                args.output_dir, f"simulated_neuronio_{sims}_seed{args.seed}"
            ), write)
        args.synthetic_data = _NEURONIO_NOTE
    try:
        train, val = (
            neuronio.load(folder, split=split, batch_size=args.batch_size,
                          steps_per_epoch=args.steps_per_epoch, seed=args.seed,
                          burn_in=neuronio.BURN_IN)
            for split in ("train", "val")
        )
    except FileNotFoundError as error:
        raise MissingDataError(str(error)) from error
    return {"train": train, "val": val, "test": folder}


SMOKE_ELM = dict(units=8, mlp_units=16)


# --- flag values, checked by the parser ---------------------------------------


def _integer(text, minimum):
    try:
        value = int(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(
            f"must be an integer >= {minimum}, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(
            f"must be an integer >= {minimum}, got {value}")
    return value


def positive_int(text):
    """An argparse `type=`: an integer >= 1, else a message for the flag.

    Example:

    ```python
    parser.add_argument("--epochs", type=tasks.positive_int)
    ```
    """
    return _integer(text, 1)


def non_negative_int(text):
    """An argparse `type=`: an integer >= 0 (a seed)."""
    return _integer(text, 0)


def positive_float(text):
    """An argparse `type=`: a finite number > 0 (not NaN, not inf).

    Example:

    ```python
    parser.add_argument("--learning-rate", type=tasks.positive_float)
    ```
    """
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(
            f"must be a number > 0, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(
            f"must be a finite number > 0, got {text!r}")
    return value


def pretrained_neuron(text):
    """An argparse `type=`: a published NeuronIO neuron, `"best"` or its
    d_m (one of `keras_elm.pretrained.NEURONIO_MEMORY_SIZES`)."""
    from keras_elm import pretrained

    if text == "best":
        return text
    try:
        size = int(text)
    except ValueError:
        size = None
    if size not in pretrained.NEURONIO_MEMORY_SIZES:
        raise argparse.ArgumentTypeError(
            f"must be 'best' or one of "
            f"{', '.join(map(str, pretrained.NEURONIO_MEMORY_SIZES))}, got "
            f"{text!r}")
    return size


def _check_num_samples(args, minimum, why):
    """Generated data (no `--data-dir`) of too few samples for the splits."""
    if not args.data_dir and args.num_samples < minimum:
        raise ValueError(
            f"--num-samples {args.num_samples} is too few: {why}, which needs "
            f"at least {minimum}."
        )


def _check_pathfinder(args):
    _check_num_samples(args, 10, "the 80/10/10 split must leave a sample in "
                                 "each of train, val and test")


def _check_listops(args):
    if args.min_length is not None and args.min_length > args.max_length:
        raise ValueError(f"--min-length {args.min_length} must be <= "
                         f"--max-length {args.max_length}.")
    if args.data_dir:
        return
    _check_num_samples(args, 3, "the split must leave a sample in each of "
                                "train, val and test")
    from keras_elm.data import listops

    try:  # the generator's own check: which lengths a tree can have
        listops._check_settings(_min_length(args), args.max_length, 10, 10)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"--min-length {_min_length(args)} and --max-length "
            f"{args.max_length} cannot be generated: {error}"
        ) from None


def _check_shd(args):
    from keras_elm.data import shd

    try:  # The bins must split the samples' 1 s evenly.
        shd.num_steps(args.dt)
    except (TypeError, ValueError) as error:
        raise ValueError(f"--dt {args.dt:g}: {error}") from None
    if args.data_dir:
        return
    # The synthetic train file splits into train and val by a seeded draw.
    rows = shd.split_indices(args.num_samples, seed=args.seed)
    empty = [split for split in ("train", "val") if not len(rows[split])]
    if empty:
        raise ValueError(
            f"--num-samples {args.num_samples} with --seed {args.seed} leaves "
            f"the {' and '.join(empty)} split empty (each sample goes to val "
            f"with probability {shd.VALIDATION_FRACTION}): give more samples."
        )


def _check_neuronio(args):
    _check_num_samples(args, 1, "the train set is that many simulations")


_PATHFINDER_HELP = (
    "Download the LRA release (https://storage.googleapis.com/"
    "long-range-arena/lra_release.gz), unpack it, and pass --data-dir "
    "~/data/lra_release (the folder holding pathfinder{size}/"
    "curv_contour_length_14/...); without --data-dir the images are "
    "generated."
)
_DIFFICULTY = ("--difficulty", dict(default="hard",
                                    choices=("easy", "intermediate", "hard")))
_DT = ("--dt", dict(type=positive_float, default=None,
                    help="bin size in seconds (default: the paper's 0.002)"))
_BRANCH = ("--branch", dict(action="store_true",
                            help="the Branch-ELM: 100 branches x 15 "
                                 "synapses, random routing"))


def _max_length(help):
    return ("--max-length", dict(type=positive_int, default=None, help=help))


TASKS = {
    "pathfinder": Task(
        name="pathfinder",
        description="Pathfinder (LRA): do two discs lie on one dashed curve?",
        build_model=models.pathfinder,
        load_data=even_over_devices(
            lambda args: _pathfinder_data(args, args.image_size)
        ),
        num_classes=2,
        batch_size=384,
        epochs=300,
        paper_accuracy=71.15,
        smoke_model=SMOKE_ELM,
        arguments=(("--image-size", dict(type=positive_int, default=32,
                                         choices=(32, 64))),
                   _DIFFICULTY),
        num_samples=200_000,
        data_help=_PATHFINDER_HELP.format(size=32),
        check_flags=_check_pathfinder,
    ),
    "pathfinder_x": Task(
        name="pathfinder_x",
        description="Path-X (LRA): Pathfinder at 128 x 128, 16,384 steps",
        build_model=models.pathfinder_x,
        load_data=even_over_devices(lambda args: _pathfinder_data(args, 128)),
        num_classes=2,
        batch_size=768,
        epochs=300,
        paper_accuracy=77.29,
        smoke_model=SMOKE_ELM,
        hyperparameters=dict(memory_tau_max=2e4, trace_tau=150.0),
        # 16,384 steps a sample: half as many for a quick run.
        smoke_samples=20,
        arguments=(_DIFFICULTY,),
        num_samples=200_000,
        data_help=_PATHFINDER_HELP.format(size=128),
        check_flags=_check_pathfinder,
    ),
    "image": Task(
        name="image",
        description="Image (LRA): grey CIFAR-10, one pixel per step",
        build_model=models.image,
        load_data=even_over_devices(_image_data),
        num_classes=10,
        batch_size=384,
        epochs=300,
        paper_accuracy=49.62,
        smoke_model=SMOKE_ELM,
        data_help=_IMAGE_HELP,
    ),
}

# LRA's text tasks: batch 384, 150 epochs (Adam 2e-4 with cosine decay).
_LRA_TEXT = dict(batch_size=384, epochs=150, smoke_model=SMOKE_ELM)
TASKS.update({
    "listops": Task(
        name="listops",
        description="ListOps (LRA): the value of a nested list expression",
        build_model=models.listops,
        load_data=even_over_devices(_listops_data),
        num_classes=10,
        paper_accuracy=46.77,
        hyperparameters=dict(memory_tau_max=2e3),
        flags=dict(max_length=2000),
        smoke_flags=dict(max_length=60),
        arguments=(
            _max_length("tokens per sequence (default: LRA's 2000); "
                        "generated trees are shorter than this"),
            ("--min-length", dict(type=positive_int, default=None,
                                  help="generated trees are longer than this "
                                       "(default: 500, or max-length / 4 "
                                       "below 1000)")),
        ),
        num_samples=100_000,
        data_help=(
            "Download the LRA release (https://storage.googleapis.com/"
            "long-range-arena/lra_release.gz), unpack it, and pass --data-dir "
            "~/data/lra_release/listops-1000 (the folder holding "
            "basic_train.tsv, basic_val.tsv and basic_test.tsv); without "
            "--data-dir the trees are generated."
        ),
        check_flags=_check_listops,
        **_LRA_TEXT,
    ),
    "text": Task(
        name="text",
        description="Text (LRA): IMDB sentiment, one byte per step",
        build_model=models.text,
        load_data=even_over_devices(_text_data),
        num_classes=2,
        paper_accuracy=80.3,
        hyperparameters=dict(memory_tau_max=4e3),
        smoke_samples=16,
        flags=dict(max_length=4096),
        smoke_flags=dict(max_length=200),
        arguments=(_max_length("bytes per review (default: LRA's 4096)"),),
        data_help=_TEXT_HELP,
        **_LRA_TEXT,
    ),
    "retrieval": Task(
        name="retrieval",
        description="Retrieval (LRA): does one AAN paper cite the other?",
        build_model=models.retrieval,
        load_data=even_over_devices(_retrieval_data),
        num_classes=2,
        paper_accuracy=84.93,
        hyperparameters=dict(memory_tau_max=4e3),
        smoke_samples=16,
        flags=dict(max_length=4000),
        smoke_flags=dict(max_length=200),
        arguments=(_max_length("bytes per text (default: LRA's 4000)"),),
        data_help=_RETRIEVAL_HELP,
        **{**_LRA_TEXT, "smoke_model": dict(SMOKE_ELM, latent_units=4,
                                             classifier_units=4)},
    ),
})

_SHD_TASK = dict(
    num_classes=20, batch_size=8, epochs=70, learning_rate=5e-3,
    optimizer="adamax", cosine=False, synthetic_note=_SHD_NOTE,
    smoke_model=SMOKE_ELM, flags=dict(dt=0.002), smoke_flags=dict(dt=0.02),
    arguments=(_DT, _BRANCH), num_samples=2000,
    hyperparameters=dict(units=100, memory_tau_max=150.0, num_branches=100,
                         synapses_per_branch=15),
    memory_tau_bounds=(0.0, 1000.0), branches="optional",
    data_help=("Download shd_train.h5.gz and shd_test.h5.gz from "
               "https://zenkelab.org/datasets/, gunzip them, and pass "
               "--data-dir ~/data/shd (the folder holding shd_train.h5 and "
               "shd_test.h5); without --data-dir the run uses synthetic "
               "spiking digits."),
    check_flags=_check_shd,
)
TASKS.update({
    "shd": Task(
        name="shd",
        description="SHD: which of 20 spoken digits, from cochlear spikes",
        build_model=models.shd,
        load_data=even_over_devices(_shd_data),
        paper_accuracy=91.0,
        **_SHD_TASK,
    ),
    "shd_adding": Task(
        name="shd_adding",
        description="SHD-Adding: the sum (0-18) of two spoken digits",
        build_model=models.shd_adding,
        load_data=even_over_devices(lambda args: _shd_data(args, adding=True)),
        paper_accuracy=82.0,
        **{**_SHD_TASK, "num_classes": 19},
    ),
    "neuronio": Task(
        name="neuronio",
        description="NeuronIO: the spikes and soma voltage of a cortical "
                    "neuron, from its synaptic input",
        build_model=models.neuronio,
        load_data=_neuronio_data,
        num_classes=2,
        batch_size=8,
        epochs=30,
        learning_rate=5e-4,
        classification=False,
        synthetic_note=_NEURONIO_NOTE,
        hyperparameters=dict(units=20, lambda_value=10.0, memory_tau_max=100.0,
                             num_branches=45, synapses_per_branch=100),
        memory_tau_bounds=(0.0, 500.0),
        branches="always",
        compile_kwargs=lambda: dict(
            loss={"spike": keras.losses.BinaryCrossentropy(from_logits=True),
                  "soma": keras.losses.MeanSquaredError()},
            loss_weights={"spike": 0.5, "soma": 0.5},
        ),
        objective=("val_loss", "min"),
        smoke_model=dict(units=4, num_branches=5, synapses_per_branch=10),
        smoke_samples=2,
        flags=dict(steps_per_epoch=None),
        smoke_flags=dict(steps_per_epoch=2),
        arguments=(("--steps-per-epoch", dict(
            type=positive_int, default=None,
            help="batches of random windows in an epoch (default: 10 "
                 "windows a simulation)")),),
        num_samples=32,
        data_help=("Pass --data-dir ~/data/neuronio, the NeuronIO release "
                   "(Beniaguev et al., 2021) with train/, valid/ and test/ "
                   "folders of .p files (or one flat folder); without "
                   "--data-dir a stand-in is simulated."),
        check_flags=_check_neuronio,
    ),
})

# What `--smoke` changes besides `Task.smoke_samples`: one epoch, tiny batches.
SMOKE = dict(epochs=1, batch_size=4)


def get(name):
    """The registered `Task` called `name`."""
    if name not in TASKS:
        raise ValueError(
            f"Unknown task {name!r}. Registered tasks: {sorted(TASKS)}."
        )
    return TASKS[name]


# --- the examples' flags -------------------------------------------------------


def parser(task, num_samples=None):
    """The flags every example takes, and the task's own (`Task.arguments`).

    Args:
        task: a `Task`.
        num_samples: default number of generated samples (None: the
            task's `num_samples`; the flag is absent if both are None).

    Returns:
        An `argparse.ArgumentParser`; add the example's own flags, then
        call `parse_args(parser, task, argv)`.
    """
    p = argparse.ArgumentParser(
        description=f"{task.description}. With no arguments: the paper's "
        f"recipe (Adam {task.learning_rate:g} with cosine decay, batch "
        f"{task.batch_size}, {task.epochs} epochs).",
    )
    p.add_argument("--smoke", action="store_true",
                   help="the whole pipeline on a tiny model and data, in "
                        "under a minute on a CPU")
    p.add_argument("--data-dir", default=None, help="real files to read")
    p.add_argument("--output-dir", default=os.path.join("runs", task.name),
                   help="checkpoints, backups for resuming, the final model")
    p.add_argument("--epochs", type=positive_int, default=None,
                   help=f"default: the paper's {task.epochs}")
    p.add_argument("--batch-size", type=positive_int, default=None,
                   help=f"default: the paper's {task.batch_size}")
    p.add_argument("--learning-rate", type=positive_float,
                   default=task.learning_rate)
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.add_argument("--max-minutes", type=positive_float, default=None,
                   help="stop training after this much wall time (checked "
                        "after every step), then evaluate as usual; run the "
                        "same command again to continue")
    p.add_argument("--distribute", action="store_true",
                   help="data-parallel over all devices (JAX: "
                        "keras.distribution.DataParallel, TensorFlow: "
                        "tf.distribute.MirroredStrategy); --batch-size is "
                        "the global batch and must divide by the device "
                        "count")
    num_samples = task.num_samples if num_samples is None else num_samples
    if num_samples is not None:
        # None: filled in by `parse_args`, so that --smoke changes only the
        # default, never a value given.
        p.add_argument("--num-samples", type=positive_int, default=None,
                       help=f"samples to generate when there is no "
                            f"--data-dir (default {num_samples}, --smoke "
                            f"{task.smoke_samples})")
        p.num_samples_default = num_samples
    for flag, options in task.arguments:
        p.add_argument(flag, **options)
    return p


def parse_args(p, task, argv=None):
    """Parses the flags, fills in the paper's (or `--smoke`'s) values, and
    checks them all before any work.

    Every value is checked here, so that a run that cannot work stops at
    once (argparse's usage message and exit status 2), not after its data
    are made: numbers by their `type=` (`positive_int`, `positive_float`,
    `non_negative_int`), `--data-dir` (an existing folder), `--output-dir`
    (a folder that can be written) and the task's own flags together
    (`Task.check_flags`). `--smoke` changes the defaults only: a flag
    given keeps its value.

    Args:
        p: the parser of `parser(task)`, with the example's own flags.
        task: the `Task`.
        argv: the arguments (None: `sys.argv[1:]`).

    Returns:
        The `argparse.Namespace`; the global seed is set to `--seed`.
    """
    args = p.parse_args(argv)
    if getattr(args, "num_samples", None) is None:
        default = getattr(p, "num_samples_default", None)
        args.num_samples = task.smoke_samples if args.smoke else default
    smoke = SMOKE if args.smoke else {}
    own = task.smoke_flags if args.smoke else {}
    for name, default in task.flags.items():
        if getattr(args, name, None) is None:
            setattr(args, name, own.get(name, default))
    if args.epochs is None:
        args.epochs = smoke.get("epochs", task.epochs)
    if args.batch_size is None:
        args.batch_size = smoke.get("batch_size", task.batch_size)
    # The defaults filled in above, as the parser checks the values given.
    for name in ("epochs", "batch_size", "num_samples", *task.flags):
        value = getattr(args, name)
        flag = f"--{name.replace('_', '-')}"
        if isinstance(value, float) and not (math.isfinite(value)
                                             and value > 0):
            p.error(f"argument {flag}: must be a finite number > 0, got "
                    f"{value}")
        if isinstance(value, int) and value < 1:
            p.error(f"argument {flag}: must be an integer >= 1, got {value}")
    if args.data_dir is not None and not os.path.isdir(args.data_dir):
        what = ("is a file" if os.path.exists(args.data_dir)
                else "does not exist")
        p.error(f"argument --data-dir: the folder {args.data_dir!r} {what}."
                + (f" {task.data_help}" if task.data_help else ""))
    try:
        check_output_dir(args.output_dir)
        if task.check_flags is not None:
            task.check_flags(args)
    except ValueError as error:
        p.error(str(error))
    if args.distribute:
        try:
            distribute.check_batch_size(args.batch_size,
                                        len(distribute.list_devices()))
        except ValueError as error:  # torch, or a batch that does not split
            p.error(str(error))
    keras.utils.set_random_seed(args.seed)
    return args


def check_output_dir(path, flag="--output-dir"):
    """Raises a `ValueError` naming `flag` unless `path` can be written.

    Nothing is created: the folder, or its nearest existing parent, must be
    a folder in which files can be made.

    Args:
        path: the output folder.
        flag: how the message names it.

    Raises:
        ValueError: `path` (or a folder above it) is a file, or cannot be
            written.
    """
    existing = os.path.abspath(path)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if existing == os.path.abspath(path):
        files.check_writable(existing, what=f"argument {flag}: the folder")
    elif not os.path.isdir(existing):
        raise ValueError(f"argument {flag}: {path!r} lies under "
                         f"{existing!r}, which is a file, not a folder.")
    else:
        files.check_writable(existing,
                             what=f"argument {flag} {path!r}: its parent")


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
    with tasks.distribution(args):
        model = keras_elm.models.listops()
        tasks.compile_model(model, task, args, steps)
    ```
    """
    if not getattr(args, "distribute", False):
        return contextlib.nullcontext()
    parallel = distribute.data_parallel(args.batch_size)
    print(f"data-parallel over {parallel.num_replicas} devices: each takes "
          f"{args.batch_size // parallel.num_replicas} samples of every "
          f"batch of {args.batch_size}", flush=True)
    return parallel


def builder_arguments(task, args, splits):
    """The model builder's arguments that the task's flags and data set.

    Args:
        task: a classification `Task` on arrays.
        args: the parsed flags.
        splits: the task's data (SHD's number of steps comes from it).

    Returns:
        Keyword arguments for `task.build_model`.
    """
    if task.name in ("listops", "text", "retrieval"):
        return dict(sequence_length=args.max_length)
    if task.name == "pathfinder":
        return dict(image_size=args.image_size)
    if task.name in ("shd", "shd_adding"):
        return dict(steps=splits["train"][0].shape[1], dt=1000 * args.dt,
                    branch=args.branch)
    return {}


def model_overrides(task, args):
    """The builder's keyword arguments that the flags change."""
    return dict(task.smoke_model) if args.smoke else {}


# --- training -----------------------------------------------------------------


OPTIMIZERS = {"adam": keras.optimizers.Adam, "adamax": keras.optimizers.Adamax}


def optimizer(task, args, steps_per_epoch):
    """The task's optimizer, with cosine decay over the run if it has one."""
    return task_optimizer(task, args.learning_rate,
                          decay_steps=args.epochs * steps_per_epoch)


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


def default_compile_kwargs(task):
    """The task's loss and metrics: `task.compile_kwargs`, or cross-entropy
    on logits with accuracy."""
    if task.compile_kwargs is not None:
        return task.compile_kwargs()
    return dict(
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
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


class StepTimer(keras.callbacks.Callback):
    """Prints the measured time of the first steps and the epoch it implies.

    The first step compiles, so it is timed apart; the estimate uses the
    steps after it.

    Args:
        steps_per_epoch: training steps in one epoch.
        timed_steps: steps timed after the first.
    """

    def __init__(self, steps_per_epoch, timed_steps=3):
        super().__init__()
        self.steps_per_epoch = steps_per_epoch
        self.timed_steps = timed_steps
        self.times = []
        self.reported = False

    def on_train_batch_begin(self, batch, logs=None):
        if not self.reported:
            self.times.append(time.perf_counter())

    def on_train_batch_end(self, batch, logs=None):
        if self.reported:
            return
        self.times.append(time.perf_counter())
        steps = len(self.times) // 2
        if steps < min(self.steps_per_epoch, 1 + self.timed_steps):
            return
        first = self.times[1] - self.times[0]
        later = [self.times[2 * i + 1] - self.times[2 * i]
                 for i in range(1, steps)]
        per_step = float(np.mean(later)) if later else first
        epoch = first + per_step * (self.steps_per_epoch - 1)
        print(f"\n[timing] first step {first:.2f} s (compiles), then "
              f"{per_step:.3f} s a step: about {epoch / 60:.1f} min an epoch",
              flush=True)
        self.reported = True


class TimeLimit(keras.callbacks.Callback):
    """Stops training once `minutes` of wall time have passed since it began.

    Checked after every training step; the epoch in progress ends there, so
    checkpoints and backups see it as finished.

    Args:
        minutes: the training budget, in minutes (> 0).

    Example:

    ```python
    model.fit(x, y, epochs=100, callbacks=[TimeLimit(45)])
    ```
    """

    def __init__(self, minutes):
        super().__init__()
        if isinstance(minutes, bool) or not isinstance(
                minutes, (int, float, np.integer, np.floating)):
            raise TypeError(
                f"`minutes` must be a number. Received: minutes={minutes!r} "
                f"of type {type(minutes).__name__}"
            )
        if not (math.isfinite(minutes) and minutes > 0):
            raise ValueError(
                f"`minutes` must be a finite number > 0. Received: "
                f"minutes={minutes!r}"
            )
        self.minutes = float(minutes)
        self.start = None
        self.stopped_at = None

    def on_train_begin(self, logs=None):
        self.start = time.perf_counter()
        self.stopped_at = None

    def on_train_batch_end(self, batch, logs=None):
        elapsed = time.perf_counter() - self.start
        if elapsed >= 60 * self.minutes and self.stopped_at is None:
            self.stopped_at = elapsed
            self.model.stop_training = True
            print(f"\n[time limit] {self.minutes:g} min reached after "
                  f"{elapsed / 60:.1f} min: stopping", flush=True)


# --- files written whole or not at all ---------------------------------------

# `<.name>.<pid>.<random>.tmp<suffix>`: Keras chooses the format by the
# suffix, so a temporary model file keeps it (`files.atomic_write`'s do not).
_TEMPORARY = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[A-Za-z0-9_]+\.tmp"
                        r"(\.keras|\.weights\.h5)?$")


def _alive(pid):
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # alive, someone else's (or unknown: kept)
        return True
    return True


def _remove_stale(directory):
    """Removes the temporaries (files, folders) of killed writers."""
    files.remove_stale_temporaries(directory)
    with contextlib.suppress(OSError):
        for name in os.listdir(directory):
            match = _TEMPORARY.match(name)
            if match is None or _alive(int(match.group("pid"))):
                continue
            path = os.path.join(directory, name)
            if os.path.isdir(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    os.remove(path)


@contextlib.contextmanager
def _replacing(path):
    """A temporary path (same folder and suffix) renamed to `path` at the end.

    A kill at any moment leaves the old `path` or the new one, never half
    of one; the temporary file of a killed writer is removed by the next.
    """
    directory, name = os.path.split(os.path.abspath(path))
    suffix = next((end for end in (".weights.h5", ".keras")
                   if name.endswith(end)), "")
    temporary = os.path.join(
        directory, f".{name}.{os.getpid()}.{secrets.token_hex(4)}.tmp{suffix}")
    _remove_stale(directory)
    try:
        yield temporary
        with open(temporary, "rb") as f:
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(temporary)
        raise


def save_model(model, path):
    """`model.save(path)`, whole or not at all.

    The model goes to a temporary `.keras` file in the same folder, which
    is renamed over `path` once complete: a run killed while saving leaves
    the previous file as it was.

    Args:
        model: the model to save.
        path: the `.keras` file.

    Returns:
        `path`.

    Example:

    ```python
    tasks.save_model(model, "runs/listops/model.keras")
    ```
    """
    with _replacing(path) as temporary:
        model.save(temporary)
    return path


# --- training that never loses work ------------------------------------------


class TrainingDiverged(SystemExit):
    """Exits non-zero: the loss or the weights became NaN or infinite."""

    def __init__(self, message):
        super().__init__(
            f"error: {message} Nothing of it was saved: best.keras and the "
            "backup are those of the last epoch with finite weights. Lower "
            "--learning-rate, or check the data."
        )


def _check_finite(model, where, logs=None):
    """Raises `TrainingDiverged` if the epoch's losses or the weights are
    not finite."""
    for name, value in (logs or {}).items():
        if name.endswith("loss") and value is not None and not math.isfinite(
                float(value)):
            raise TrainingDiverged(f"the {name} is {float(value)} {where}.")
    for weight in model.trainable_weights:
        if not np.isfinite(keras.ops.convert_to_numpy(weight)).all():
            raise TrainingDiverged(
                f"the weight {weight.path} holds NaN or inf {where}.")


class StopOnNaN(keras.callbacks.Callback):
    """Stops training at the first step whose loss is NaN or infinite.

    Unlike `keras.callbacks.TerminateOnNaN`, it stops at once with an error
    (a `TrainingDiverged`, a `SystemExit` whose status is 1): the epoch in
    progress does not end, so no checkpoint or backup is written from
    diverged weights, and the script ends non-zero saying why.

    Example:

    ```python
    model.fit(x, y, epochs=10, callbacks=[tasks.StopOnNaN()])
    ```
    """

    def __init__(self):
        super().__init__()
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            raise TrainingDiverged(
                f"the loss became {float(loss)} at step {batch + 1} of epoch "
                f"{self.epoch + 1}: training stopped."
            )


class BestModel(keras.callbacks.Callback):
    """Saves the model whenever the monitored value is the best so far.

    As `keras.callbacks.ModelCheckpoint(save_best_only=True)`, with two
    differences: each save is whole or nothing (`save_model`), and the best
    value can be given (`best`), so that a resumed run keeps the best model
    of the runs before it (`Backup` restores it).

    Args:
        filepath: the `.keras` file.
        monitor: the metric of the epoch's logs, e.g. `"val_accuracy"`.
        mode: `"max"`, `"min"`, or `"auto"` (min for a loss, else max).
        best: the best value so far (None: none yet).

    Example:

    ```python
    model.fit(x, y, validation_data=(x_val, y_val), epochs=10,
              callbacks=[tasks.BestModel("best.keras", "val_accuracy")])
    ```
    """

    def __init__(self, filepath, monitor="val_accuracy", mode="auto",
                 best=None):
        super().__init__()
        if mode == "auto":
            mode = "min" if "loss" in monitor else "max"
        if mode not in ("min", "max"):
            raise ValueError(f"`mode` must be 'min', 'max' or 'auto'. "
                             f"Received: mode={mode!r}")
        self.filepath = filepath
        self.monitor = monitor
        self.mode = mode
        self.best = best
        self.warned = False

    def improves(self, value):
        """Whether `value` beats the best so far (NaN never does)."""
        if not math.isfinite(value):
            return False
        if self.best is None:
            return True
        return value < self.best if self.mode == "min" else value > self.best

    def on_train_begin(self, logs=None):
        _remove_stale(os.path.dirname(os.path.abspath(self.filepath)))

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None:
            if not self.warned:
                print(f"warning: no {self.monitor} in the epoch's logs "
                      f"({', '.join(logs or {})}): {self.filepath} is not "
                      "saved", file=sys.stderr, flush=True)
                self.warned = True
            return
        if self.improves(float(value)):
            _check_finite(self.model, f"after epoch {epoch + 1}", logs)
            save_model(self.model, self.filepath)
            self.best = float(value)


class Backup(keras.callbacks.Callback):
    """Backs up the training state after every epoch, and resumes from it.

    Keras's `BackupAndRestore`, made safe to kill. After each epoch the
    weights and optimizer state go to `epoch-<N>.weights.h5`, written under
    a temporary name and renamed, then `state.json` (written the same way)
    names it, with the epoch and the best value of `best_model`; the
    previous backup is kept too. A kill at any moment leaves a complete
    backup. When training starts again, the newest backup that loads is
    restored (the epoch to go on from, the weights, the optimizer, the
    best value); one that does not load is named in a warning and the one
    before it is tried, or training starts over.

    The backup is deleted when training has run all its epochs; a run
    stopped early (`TimeLimit`, an interruption) keeps it, so the same
    command run again continues.

    Args:
        backup_dir: the folder, for this callback only.
        best_model: a `BestModel` whose best value is backed up and
            restored with the rest (None: none).
        keep: backups kept (2: the newest and the one before it).

    Example:

    ```python
    best = tasks.BestModel("runs/x/best.keras")
    model.fit(x, y, validation_data=(x_val, y_val), epochs=10,
              callbacks=[best, tasks.Backup("runs/x/backup", best)])
    ```
    """

    STATE = "state.json"

    def __init__(self, backup_dir, best_model=None, keep=2):
        super().__init__()
        self.backup_dir = backup_dir
        self.best_model = best_model
        self.keep = keep
        self.backups = []
        self.epoch = 0

    @property
    def state_path(self):
        return os.path.join(self.backup_dir, self.STATE)

    def read_backups(self):
        """The backups listed in `state.json`, newest first ([] if none).

        A `state.json` that cannot be read is named in a warning, and Keras's
        own `latest.weights.h5` (of a run before this callback) is listed
        where there is one.
        """
        try:
            with open(self.state_path, encoding="utf-8") as f:
                backups = json.load(f)["backups"]
            if not all(isinstance(b["epoch"], int) and b["epoch"] >= 0
                       and isinstance(b["weights"], str) for b in backups):
                raise ValueError("an entry without a valid epoch and file")
            return backups
        except FileNotFoundError:
            return self._keras_backup()
        except (OSError, ValueError, KeyError, TypeError) as error:
            _warn(f"the backup state {self.state_path} cannot be read "
                  f"({error}): it is ignored")
            return []

    def _keras_backup(self):
        try:
            with open(os.path.join(self.backup_dir,
                                   "training_metadata.json")) as f:
                epoch = json.load(f)["epoch"]
        except (OSError, ValueError, KeyError, TypeError):
            return []
        return [dict(epoch=int(epoch), weights="latest.weights.h5")]

    def _variables(self):
        optimizer = self.model.optimizer
        return list(self.model.weights) + (
            list(optimizer.variables) if optimizer is not None else [])

    def on_train_begin(self, logs=None):
        self.epoch = 0
        self.backups = []
        _remove_stale(self.backup_dir)
        backups = self.read_backups()
        if not backups:
            return
        optimizer = self.model.optimizer
        if optimizer is not None and not optimizer.built:
            optimizer.build(self.model.trainable_variables)
        variables = self._variables()
        start = [keras.ops.convert_to_numpy(v) for v in variables]
        for index, backup in enumerate(backups):
            path = os.path.join(self.backup_dir, backup["weights"])
            try:
                self.model.load_weights(path)
            except Exception as error:  # h5py's, Keras's: any unreadable file
                for variable, value in zip(variables, start):
                    variable.assign(value)  # undo a partial load
                then = ("trying the backup before it"
                        if index + 1 < len(backups) else
                        "starting over from epoch 1")
                _warn(f"the backup {path} cannot be restored "
                      f"({type(error).__name__}: {_first_line(error)}); "
                      f"{then}")
                continue
            self.backups = backups[index:]
            self.epoch = backup["epoch"]
            best = backup.get("best")
            if self.best_model is not None and best is not None:
                self.best_model.best = float(best)
            # Where Keras's own BackupAndRestore sets the epoch to go on
            # from: `fit` reads it after `on_train_begin`.
            self.model._initial_epoch = self.epoch
            print(f"resuming after epoch {self.epoch} from the backup {path}"
                  + (f" (best {self.best_model.monitor} so far {best:.4g})"
                     if self.best_model is not None and best is not None
                     else ""), flush=True)
            return

    def on_epoch_end(self, epoch, logs=None):
        _check_finite(self.model, f"after epoch {epoch + 1}", logs)
        self.epoch = epoch + 1
        os.makedirs(self.backup_dir, exist_ok=True)
        name = f"epoch-{self.epoch}.weights.h5"
        with _replacing(os.path.join(self.backup_dir, name)) as temporary:
            self.model.save_weights(temporary)
        best = getattr(self.best_model, "best", None)
        entry = dict(epoch=self.epoch, weights=name,
                     best=best if best is not None and math.isfinite(best)
                     else None)
        self.backups = [entry] + [b for b in self.backups
                                  if b["weights"] != name][: self.keep - 1]
        with files.atomic_write(self.state_path, "w", encoding="utf-8") as f:
            json.dump({"backups": self.backups}, f, indent=1)
        kept = {self.STATE, *(b["weights"] for b in self.backups)}
        for old in os.listdir(self.backup_dir):
            if old not in kept and not _TEMPORARY.match(old):
                with contextlib.suppress(OSError):
                    os.remove(os.path.join(self.backup_dir, old))

    def on_train_end(self, logs=None):
        epochs = self.params.get("epochs")
        if epochs is not None and self.epoch >= epochs:
            shutil.rmtree(self.backup_dir, ignore_errors=True)
        elif self.backups:
            print(f"training stopped after epoch {self.epoch} of {epochs}: "
                  f"the backup in {self.backup_dir} is kept, and the same "
                  "command run again continues from it", flush=True)


def _first_line(error, limit=200):
    """An error's message, cut to its first line (Keras's can be pages)."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return text if len(text) <= limit else text[:limit] + "..."


def _warn(message):
    print(f"warning: {message}", file=sys.stderr, flush=True)


def callbacks(args, steps_per_epoch, monitor="val_accuracy"):
    """Backups for resuming, the best checkpoint, and the step timer.

    `Backup` keeps `<output-dir>/backup`: rerun the same command after an
    interruption, or after a `--max-minutes` stop, and training resumes
    after the last finished epoch, with `best.keras` still the best model
    of all the runs (`BestModel`). A NaN loss stops the run with an error
    (`StopOnNaN`). With `--max-minutes`, a `TimeLimit` ends training on
    time; the epoch it stops counts as finished.

    Args:
        args: the parsed flags (`output_dir`, `max_minutes`).
        steps_per_epoch: training steps in an epoch (for the timing).
        monitor: the metric `best.keras` is chosen by.

    Returns:
        The callbacks for `model.fit`.
    """
    os.makedirs(args.output_dir, exist_ok=True)
    best = BestModel(os.path.join(args.output_dir, "best.keras"),
                     monitor=monitor)
    return [
        StopOnNaN(),
        best,  # Before the backup, which stores its best value.
        Backup(os.path.join(args.output_dir, "backup"), best_model=best),
        StepTimer(steps_per_epoch),
    ] + ([TimeLimit(args.max_minutes)]
         if getattr(args, "max_minutes", None) else [])


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
        data = (f"{sizes['train']} train / {sizes['val']} val / "
                f"{sizes['test']} test, inputs {shapes}")
    if steps is None:
        steps = steps_per_epoch(splits, args)
    schedule = "with cosine decay" if task.cosine else "constant"
    print(
        f"{task.description}\n"
        f"  backend {keras.backend.backend()}, seed {args.seed}"
        f"{', SMOKE RUN (tiny model and data)' if args.smoke else ''}\n"
        f"  data: {data}\n"
        f"{synthetic_line(args)}"
        f"  model: {model.count_params():,} parameters\n"
        f"  training: {args.epochs} epochs x {steps} steps of batch "
        f"{args.batch_size}, {OPTIMIZERS[task.optimizer].__name__} "
        f"{args.learning_rate:g} {schedule}\n"
        f"  output: {os.path.abspath(args.output_dir)}",
        flush=True,
    )


def synthetic_line(args):
    """A warning line when the run uses a synthetic stand-in ('' if not)."""
    note = getattr(args, "synthetic_data", None)
    return f"  SYNTHETIC DATA: {note}\n" if note else ""


def steps_per_epoch(splits, args):
    return max(1, -(-len(splits["train"][1]) // args.batch_size))


def majority_accuracy(splits):
    """Test accuracy of always answering the train split's commonest class."""
    train = np.asarray(splits["train"][1]).ravel()
    test = np.asarray(splits["test"][1]).ravel()
    values, counts = np.unique(train, return_counts=True)
    return float(np.mean(test == values[np.argmax(counts)]))


def report(task, model, splits, args):
    """Evaluates on the test split, prints it beside chance, saves the model."""
    _, accuracy = model.evaluate(*splits["test"], batch_size=args.batch_size,
                                 verbose=0)
    path = os.path.join(args.output_dir, "model.keras")
    _check_finite(model, "after training")
    save_model(model, path)
    paper = (f", paper {task.paper_accuracy:.2f} %"
             if task.paper_accuracy is not None else "")
    majority = majority_accuracy(splits)
    print(f"{synthetic_line(args)}test accuracy {100 * accuracy:.2f} % (chance "
          f"{100 * task.chance:.2f} %, majority class {100 * majority:.2f} %"
          f"{paper}); model saved to {path}",
          flush=True)
    return accuracy


def plot_neuronio(result, path, index=0):
    """Saves a PNG of predicted against true soma voltage and spikes.

    Args:
        result: a `keras_elm.data.neuronio.EvaluationSet`.
        path: the PNG file to write.
        index: which kept simulation to draw.

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
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)
    print(f"picture of test simulation {index} saved to {path}", flush=True)
    return path
