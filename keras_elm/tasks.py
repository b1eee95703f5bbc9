"""The paper's tasks in one registry, and the plumbing the examples share.

A `Task` names a model builder, the data, and the paper's training recipe
(optimizer, batch size, epochs, loss). `examples/<task>.py` and the tuning
`HyperModel` read the same entries; a new task is one entry here plus its
data module. The example plumbing lives here too (flags, seeding,
callbacks, the run plan and its timing), so that every example shows data,
model and `fit` plainly; the callbacks themselves are in
`keras_elm.callbacks`, the flags' checks in `keras_elm.flags`.
"""

import argparse
import contextlib
import dataclasses
import functools
import math
import os
from typing import Callable
from typing import Optional

import keras
import numpy as np

from keras_elm import distribute
from keras_elm import models

# The callbacks and flag types lived here before `keras_elm.callbacks` and
# `keras_elm.flags`: imported from here too, they still work.
from keras_elm.callbacks import Backup
from keras_elm.callbacks import BestModel
from keras_elm.callbacks import StepTimer
from keras_elm.callbacks import StopOnInterrupt
from keras_elm.callbacks import StopOnNaN
from keras_elm.callbacks import TimeLimit
from keras_elm.callbacks import _check_finite
from keras_elm.callbacks import save_model
from keras_elm.data import files
from keras_elm.flags import _check_listops
from keras_elm.flags import _check_neuronio
from keras_elm.flags import _check_pathfinder
from keras_elm.flags import _check_shd
from keras_elm.flags import _min_length
from keras_elm.flags import non_negative_int
from keras_elm.flags import positive_float
from keras_elm.flags import positive_int


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
        return {
            name: _trim(name, x, y, devices) for name, (x, y) in splits.items()
        }

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
    return files.publish_folder(
        os.path.join(args.output_dir, "smoke_data", key), write
    )


def _pathfinder_data(args, image_size):
    from keras_elm.data import pathfinder as data

    difficulty = getattr(args, "difficulty", "hard")
    folder = args.data_dir
    if args.smoke and not folder:
        # Through the real file format and loader.
        def write(path):
            data.write_release(
                path,
                args.num_samples,
                image_size=image_size,
                difficulty=difficulty,
                seed=args.seed,
            )
            return path  # `load` reads the top folder

        folder = _made_once(
            args, write, pathfinder=image_size, difficulty=difficulty
        )
    if folder:
        return {
            split: data.load(
                folder,
                image_size=image_size,
                difficulty=difficulty,
                split=split,
                seed=args.seed,
            )
            for split in ("train", "val", "test")
        }
    images, labels = data.generate(
        args.num_samples,
        image_size=image_size,
        difficulty=difficulty,
        seed=args.seed,
        cache_dir=os.path.join(args.output_dir, "data_cache"),
    )
    # The same seeded 80/10/10 split as the release's.
    return {
        split: (images[rows], labels[rows])
        for split, rows in data.split_indices(len(images), args.seed).items()
    }


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
        data_dir = _made_once(
            args,
            lambda path: cifar10.write_batches(
                path,
                rng.integers(
                    0, 256, (args.num_samples, 32, 32, 3), dtype="uint8"
                ),
                rng.integers(0, 10, args.num_samples),
            ),
            image="",
        )
    if not data_dir:
        raise MissingDataError(
            "the Image task needs CIFAR-10, which cannot be generated. "
            + _IMAGE_HELP
        )
    return {
        split: cifar10.load(data_dir, split=split, seed=args.seed)
        for split in ("train", "val", "test")
    }


# --- data of the text tasks ---------------------------------------------------


def _listops_data(args):
    from keras_elm.data import listops as data

    folder = args.data_dir
    lengths = dict(min_length=_min_length(args), max_length=args.max_length)
    if args.smoke and not folder:
        # Through the release's bracket-wrapped TSV and the real loader.
        tenth = max(1, args.num_samples // 10)
        sizes = {
            "train": args.num_samples - 2 * tenth,
            "val": tenth,
            "test": tenth,
        }
        folder = _made_once(
            args,
            lambda path: data.write_release(
                path, sizes, seed=args.seed, **lengths
            ),
            listops="",
            **lengths,
        )
    if folder:
        return {
            split: data.load(folder, split=split, max_length=args.max_length)
            for split in ("train", "val", "test")
        }
    sources, targets = data.generate(
        args.num_samples,
        seed=args.seed,
        cache_dir=os.path.join(args.output_dir, "data_cache"),
        **lengths,
    )
    tokens = data.tokenize(sources, args.max_length)
    # LRA's proportions, 96,000 / 2,000 / 2,000, in generation order (the
    # trees are independent draws).
    num_val = max(1, round(len(tokens) * 0.02))
    num_train = len(tokens) - 2 * num_val
    bounds = {
        "train": (0, num_train),
        "val": (num_train, num_train + num_val),
        "test": (num_train + num_val, len(tokens)),
    }
    return {
        split: (tokens[a:b], targets[a:b]) for split, (a, b) in bounds.items()
    }


def _real_files(load, args, smoke_fixture, missing, **settings):
    """Each split through `load`; a missing file exits saying what to do."""
    data_dir = args.data_dir
    if args.smoke and not data_dir:
        data_dir = _made_once(args, smoke_fixture, **settings)
    if not data_dir:
        raise MissingDataError(missing)
    try:
        return {
            split: load(data_dir, split=split, max_length=args.max_length)
            for split in ("train", "val", "test")
        }
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
        imdb.load,
        args,
        lambda folder: imdb.write_fixture(
            folder,
            max(2, args.num_samples // 4),
            seed=args.seed,
            max_length=args.max_length,
        ),
        "the Text task needs IMDB, which cannot be generated. " + _TEXT_HELP,
        text="",
        max_length=args.max_length,
    )


_RETRIEVAL_HELP = (
    "Download the LRA release (https://storage.googleapis.com/"
    "long-range-arena/lra_release.gz), unpack it, and pass "
    "--data-dir "
    "~/data/lra_release/tsv_data (the folder holding "
    "new_aan_pairs.train.tsv, new_aan_pairs.eval.tsv and "
    "new_aan_pairs.test.tsv). `--smoke` runs on a tiny synthetic fixture "
    "in that format."
)


def _retrieval_data(args):
    from keras_elm.data import aan

    splits = _real_files(
        aan.load,
        args,
        lambda folder: aan.write_fixture(
            folder, args.num_samples, seed=args.seed
        ),
        "the Retrieval task needs the AAN pairs of the LRA release, which "
        "cannot be generated. " + _RETRIEVAL_HELP,
        retrieval="",
    )
    # The two-tower model takes a list of its two inputs.
    return {
        split: (list(texts), labels)
        for split, (texts, labels) in splits.items()
    }


# --- data of the neuroscience tasks -------------------------------------------

_SHD_NOTE = (
    "keras_elm's synthetic spiking digits (keras_elm.data.shd."
    "write_synthetic), not the real SHD; pass --data-dir for SHD"
)
_NEURONIO_NOTE = (
    "simulated by keras_elm's NumPy neuron (keras_elm.data."
    "neuronio.simulate), not the L5PC of NeuronIO; pass "
    "--data-dir for the real simulations"
)


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
        shd.write_synthetic(
            path, num_train=num_train, num_test=num_test, seed=args.seed
        )
        return path

    args.synthetic_data = _SHD_NOTE
    if args.smoke:
        return _made_once(args, write, shd="")
    return files.publish_folder(
        os.path.join(
            args.output_dir,
            f"synthetic_shd_{num_train}_{num_test}_seed{args.seed}",
        ),
        write,
    )


def _shd_test_samples(num_train):
    return max(10, num_train // 4)


def _shd_data(args, adding=False):
    from keras_elm.data import shd

    folder = _shd_folder(args)
    try:
        if adding:
            return {
                split: shd.adding(
                    folder,
                    split=split,
                    dt=args.dt,
                    seed=args.seed if split == "train" else None,
                )
                for split in ("train", "val", "test")
            }
        return {
            split: shd.load(folder, split=split, dt=args.dt, seed=args.seed)
            for split in ("train", "val", "test")
        }
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
                (
                    ("train", sims),
                    ("valid", max(2, sims // 4)),
                    ("test", max(2, sims // 4)),
                )
            ):
                neuronio.simulate(
                    os.path.join(path, split),
                    simulations_per_file=count,
                    duration_ms=duration,
                    seed=args.seed + offset,
                )
            return path

        if args.smoke:
            folder = _made_once(args, write, neuronio=duration)
        else:
            folder = files.publish_folder(
                os.path.join(
                    args.output_dir,
                    f"simulated_neuronio_{sims}_seed{args.seed}",
                ),
                write,
            )
        args.synthetic_data = _NEURONIO_NOTE
    try:
        train, val = (
            neuronio.load(
                folder,
                split=split,
                batch_size=args.batch_size,
                steps_per_epoch=args.steps_per_epoch,
                seed=args.seed,
                burn_in=neuronio.BURN_IN,
            )
            for split in ("train", "val")
        )
    except FileNotFoundError as error:
        raise MissingDataError(str(error)) from error
    return {"train": train, "val": val, "test": folder}


SMOKE_ELM = dict(units=8, mlp_units=16)


_PATHFINDER_HELP = (
    "Download the LRA release (https://storage.googleapis.com/"
    "long-range-arena/lra_release.gz), unpack it, and pass "
    "--data-dir "
    "~/data/lra_release (the folder holding pathfinder{size}/"
    "curv_contour_length_14/...); without --data-dir the images are "
    "generated."
)
_DIFFICULTY = (
    "--difficulty",
    dict(default="hard", choices=("easy", "intermediate", "hard")),
)
_DT = (
    "--dt",
    dict(
        type=positive_float,
        default=None,
        help="bin size in seconds (default: the paper's 0.002)",
    ),
)
_BRANCH = (
    "--branch",
    dict(
        action="store_true",
        help="the Branch-ELM: 100 branches x 15 synapses, random routing",
    ),
)


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
        arguments=(
            (
                "--image-size",
                dict(type=positive_int, default=32, choices=(32, 64)),
            ),
            _DIFFICULTY,
        ),
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
TASKS.update(
    {
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
                _max_length(
                    "tokens per sequence (default: LRA's 2000); "
                    "generated trees are shorter than this"
                ),
                (
                    "--min-length",
                    dict(
                        type=positive_int,
                        default=None,
                        help="generated trees are longer than this "
                        "(default: 500, or max-length / 4 "
                        "below 1000)",
                    ),
                ),
            ),
            num_samples=100_000,
            data_help=(
                "Download the LRA release (https://storage.googleapis.com/"
                "long-range-arena/lra_release.gz), unpack it, and pass "
                "--data-dir "
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
            **{
                **_LRA_TEXT,
                "smoke_model": dict(
                    SMOKE_ELM, latent_units=4, classifier_units=4
                ),
            },
        ),
    }
)

_SHD_TASK = dict(
    num_classes=20,
    batch_size=8,
    epochs=70,
    learning_rate=5e-3,
    optimizer="adamax",
    cosine=False,
    synthetic_note=_SHD_NOTE,
    smoke_model=SMOKE_ELM,
    flags=dict(dt=0.002),
    smoke_flags=dict(dt=0.02),
    arguments=(_DT, _BRANCH),
    num_samples=2000,
    hyperparameters=dict(
        units=100,
        memory_tau_max=150.0,
        num_branches=100,
        synapses_per_branch=15,
    ),
    memory_tau_bounds=(0.0, 1000.0),
    branches="optional",
    data_help=(
        "Download shd_train.h5.gz and shd_test.h5.gz from "
        "https://zenkelab.org/datasets/, gunzip them, and pass "
        "--data-dir ~/data/shd (the folder holding shd_train.h5 and "
        "shd_test.h5); without --data-dir the run uses synthetic "
        "spiking digits."
    ),
    check_flags=_check_shd,
)
TASKS.update(
    {
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
            load_data=even_over_devices(
                lambda args: _shd_data(args, adding=True)
            ),
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
            hyperparameters=dict(
                units=20,
                lambda_value=10.0,
                memory_tau_max=100.0,
                num_branches=45,
                synapses_per_branch=100,
            ),
            memory_tau_bounds=(0.0, 500.0),
            branches="always",
            compile_kwargs=lambda: dict(
                loss={
                    "spike": keras.losses.BinaryCrossentropy(from_logits=True),
                    "soma": keras.losses.MeanSquaredError(),
                },
                loss_weights={"spike": 0.5, "soma": 0.5},
            ),
            objective=("val_loss", "min"),
            smoke_model=dict(units=4, num_branches=5, synapses_per_branch=10),
            smoke_samples=2,
            flags=dict(steps_per_epoch=None),
            smoke_flags=dict(steps_per_epoch=2),
            arguments=(
                (
                    "--steps-per-epoch",
                    dict(
                        type=positive_int,
                        default=None,
                        help="batches of random windows in an epoch "
                        "(default: 10 windows a simulation)",
                    ),
                ),
            ),
            num_samples=32,
            data_help=(
                "Pass --data-dir ~/data/neuronio, the NeuronIO release "
                "(Beniaguev et al., 2021) with train/, valid/ and test/ "
                "folders of .p files (or one flat folder); without "
                "--data-dir a stand-in is simulated."
            ),
            check_flags=_check_neuronio,
        ),
    }
)

# What `--smoke` changes besides `Task.smoke_samples`: one epoch, tiny batches.
SMOKE = dict(epochs=1, batch_size=4)


def get(name):
    """The registered `Task` called `name`."""
    if name not in TASKS:
        raise ValueError(
            f"Unknown task {name!r}. Registered tasks: {sorted(TASKS)}."
        )
    return TASKS[name]


# --- the examples' flags ------------------------------------------------------


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
    p.add_argument(
        "--smoke",
        action="store_true",
        help="the whole pipeline on a tiny model and data, in "
        "under a minute on a CPU",
    )
    p.add_argument("--data-dir", default=None, help="real files to read")
    # None: `parse_args` fills in `p.output_dir_default`, or its `smoke`
    # folder under --smoke, so that runs of other kinds never share files.
    p.add_argument(
        "--output-dir",
        default=None,
        help="checkpoints, backups for resuming, the final model "
        f"(default: runs/{task.name}, and "
        f"runs/{task.name}/smoke with --smoke)",
    )
    p.output_dir_default = os.path.join("runs", task.name)
    p.add_argument(
        "--epochs",
        type=positive_int,
        default=None,
        help=f"default: the paper's {task.epochs}",
    )
    p.add_argument(
        "--batch-size",
        type=positive_int,
        default=None,
        help=f"default: the paper's {task.batch_size}",
    )
    p.add_argument(
        "--learning-rate", type=positive_float, default=task.learning_rate
    )
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.add_argument(
        "--max-minutes",
        type=positive_float,
        default=None,
        help="stop training after this much wall time (checked "
        "after every step), then evaluate as usual; run the "
        "same command again to continue",
    )
    p.add_argument(
        "--distribute",
        action="store_true",
        help="data-parallel over all devices (JAX: "
        "keras.distribution.DataParallel, TensorFlow: "
        "tf.distribute.MirroredStrategy); --batch-size is "
        "the global batch and must divide by the device "
        "count",
    )
    num_samples = task.num_samples if num_samples is None else num_samples
    if num_samples is not None:
        # None: filled in by `parse_args`, so that --smoke changes only the
        # default, never a value given.
        p.add_argument(
            "--num-samples",
            type=positive_int,
            default=None,
            help=f"samples to generate when there is no "
            f"--data-dir (default {num_samples}, --smoke "
            f"{task.smoke_samples})",
        )
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
    (a folder that can be written, whose backup, if any, is of a run with
    the same `run_config`) and the task's own flags together
    (`Task.check_flags`). `--smoke` changes the defaults only: a flag
    given keeps its value. The default `--output-dir` is the parser's
    `output_dir_default` (`runs/<task>`), with `/smoke` under `--smoke`:
    a smoke run never meets the backup of a full one.

    Args:
        p: the parser of `parser(task)`, with the example's own flags.
        task: the `Task`.
        argv: the arguments (None: `sys.argv[1:]`).

    Returns:
        The `argparse.Namespace`; the global seed is set to `--seed`.
    """
    args = p.parse_args(argv)
    if args.output_dir is None:
        folder = getattr(p, "output_dir_default", None) or os.path.join(
            "runs", task.name
        )
        args.output_dir = (
            os.path.join(folder, "smoke") if args.smoke else folder
        )
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
        if isinstance(value, float) and not (
            math.isfinite(value) and value > 0
        ):
            p.error(
                f"argument {flag}: must be a finite number > 0, got {value}"
            )
        if isinstance(value, int) and value < 1:
            p.error(f"argument {flag}: must be an integer >= 1, got {value}")
    if args.data_dir is not None and not os.path.isdir(args.data_dir):
        what = (
            "is a file" if os.path.exists(args.data_dir) else "does not exist"
        )
        p.error(
            f"argument --data-dir: the folder {args.data_dir!r} {what}."
            + (f" {task.data_help}" if task.data_help else "")
        )
    try:
        check_output_dir(args.output_dir)
        if task.check_flags is not None:
            task.check_flags(args)
    except ValueError as error:
        p.error(str(error))
    mismatch = Backup(
        os.path.join(args.output_dir, "backup"), config=run_config(args)
    ).config_mismatch()
    if mismatch is not None:
        p.error(f"argument --output-dir: {mismatch}")
    if args.distribute:
        try:
            distribute.check_batch_size(
                args.batch_size, len(distribute.list_devices())
            )
        except ValueError as error:  # torch, or a batch that does not split
            p.error(str(error))
    keras.utils.set_random_seed(args.seed)
    return args


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
    args = tasks.parse_args(tasks.parser(task), task)
    callbacks.Backup("runs/x/backup", config=tasks.run_config(args))
    ```
    """
    config = {
        name: value
        for name, value in sorted(vars(args).items())
        if name not in RESUMABLE_FLAGS
    }
    if config.get("data_dir") is not None:
        config["data_dir"] = os.path.abspath(config["data_dir"])
    return config


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
        raise ValueError(
            f"argument {flag}: {path!r} lies under "
            f"{existing!r}, which is a file, not a folder."
        )
    else:
        files.check_writable(
            existing, what=f"argument {flag} {path!r}: its parent"
        )


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
    print(
        f"data-parallel over {parallel.num_replicas} devices: each takes "
        f"{args.batch_size // parallel.num_replicas} samples of every "
        f"batch of {args.batch_size}",
        flush=True,
    )
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
        return dict(
            steps=splits["train"][0].shape[1],
            dt=1000 * args.dt,
            branch=args.branch,
        )
    return {}


def model_overrides(task, args):
    """The builder's keyword arguments that the flags change."""
    return dict(task.smoke_model) if args.smoke else {}


# --- training -----------------------------------------------------------------


OPTIMIZERS = {"adam": keras.optimizers.Adam, "adamax": keras.optimizers.Adamax}


def optimizer(task, args, steps_per_epoch):
    """The task's optimizer, with cosine decay over the run if it has one."""
    return task_optimizer(
        task, args.learning_rate, decay_steps=args.epochs * steps_per_epoch
    )


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
