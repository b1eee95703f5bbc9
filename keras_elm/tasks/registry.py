"""The paper's tasks: which data, which builder, which training recipe.

A `Task` names its model builder, its data (the dataset's `splits`
function, with the keywords the task fixes bound by `functools.partial`),
the builder arguments that the flags and data set (`model_arguments`), and
the paper's training recipe (optimizer, batch size, epochs, loss).
`examples/<task>.py` and `keras_elm.tuning.ELMHyperModel` read the same
entries; a new task is one entry here plus its dataset module. Nothing here
parses flags or reads an argparse namespace, except `Task.load_data`, kept
for code written before `keras_elm.tasks.load_data`.
"""

import dataclasses
import functools
from typing import Callable
from typing import Optional

import keras

from keras_elm import models
from keras_elm.data import aan
from keras_elm.data import cifar10
from keras_elm.data import imdb
from keras_elm.data import listops
from keras_elm.data import neuronio
from keras_elm.data import pathfinder
from keras_elm.data import shd
from keras_elm.flags import _check_listops
from keras_elm.flags import _check_neuronio
from keras_elm.flags import _check_pathfinder
from keras_elm.flags import _check_shd
from keras_elm.flags import positive_float
from keras_elm.flags import positive_int


def _no_arguments(splits, **flags):
    """The builder's defaults fit the data (the image tasks, NeuronIO)."""
    return {}


def _sequence_length(splits, *, max_length, **flags):
    """The token tasks read `--max-length` steps."""
    return dict(sequence_length=max_length)


def _image_size(splits, *, image_size, **flags):
    """Pathfinder reads `--image-size` x `--image-size` pixels."""
    return dict(image_size=image_size)


def _spike_steps(splits, *, dt, branch, **flags):
    """SHD: the bins of the data (without data: of one sample cut at
    `shd.DURATION`), their size in ms (Δt), `--branch`."""
    steps = shd.num_steps(dt) if splits is None else splits["train"][0].shape[1]
    return dict(steps=steps, dt=1000 * dt, branch=branch)


def _adding_steps(splits, *, dt, branch, **flags):
    """SHD-Adding: as `_spike_steps`, two samples one after the other."""
    if splits is not None:
        return _spike_steps(splits, dt=dt, branch=branch)
    return dict(steps=2 * shd.num_steps(dt), dt=1000 * dt, branch=branch)


@dataclasses.dataclass(frozen=True)
class Task:
    """One task of the paper.

    Attributes:
        name: registry key, e.g. `"pathfinder"`.
        description: one line for `--help` and the run plan.
        build_model: `(**overrides) -> keras.Model`, uncompiled, with the
            paper's defaults.
        data: the dataset's `splits` function, `(data_dir=None, *,
            num_samples, seed, cache_dir, smoke, ...) -> {"train": (x, y),
            "val": ..., "test": ...}` (`keras_elm.data.<dataset>.splits`,
            with what the task fixes bound by `functools.partial`); its
            keywords are filled in from the flags by
            `keras_elm.tasks.data_arguments`.
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
        is_synthetic: `(data_dir) -> bool`, whether the data of `data_dir`
            (None: the default data) is that stand-in (the dataset's
            `is_synthetic`); None: the data are always the real ones.
        model_arguments: `(splits, **flags) -> dict`, the builder's
            arguments that the flags (by name: `max_length`, `dt`...) and
            the data set (`keras_elm.tasks.builder_arguments`).
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
    data: Callable[..., dict]
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
    is_synthetic: Optional[Callable[[Optional[str]], bool]] = None
    model_arguments: Callable[..., dict] = _no_arguments
    hyperparameters: dict = dataclasses.field(default_factory=dict)
    memory_tau_bounds: Optional[tuple] = None
    branches: Optional[str] = None
    compile_kwargs: Optional[Callable[[], dict]] = None
    objective: tuple = ("val_accuracy", "max")
    data_help: Optional[str] = None
    check_flags: Optional[Callable] = None

    @property
    def chance(self):
        return 1.0 / self.num_classes

    def synthetic(self, data_dir):
        """`synthetic_note` if the data of `data_dir` are the stand-in.

        Args:
            data_dir: the folder of the files, or None (the default data).

        Returns:
            The note, or None for the real data (and for a folder that
            cannot be read: its loader says what is missing).
        """
        if self.synthetic_note is None or self.is_synthetic is None:
            return None
        try:
            synthetic = self.is_synthetic(data_dir)
        except (OSError, ValueError):
            return None
        return self.synthetic_note if synthetic else None

    def load_data(self, args):
        """The splits from the parsed flags: `keras_elm.tasks.load_data`.

        Kept for code written before the tasks package; the examples call
        `task.data` (the dataset's `splits`) with `data_arguments(task,
        args)` instead.
        """
        from keras_elm.tasks import training

        return training.load_data(self, args)


def _pathfinder_help(size):
    return pathfinder.HELP.format(size=size)


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


SMOKE_ELM = dict(units=8, mlp_units=16)

TASKS = {
    "pathfinder": Task(
        name="pathfinder",
        description="Pathfinder (LRA): do two discs lie on one dashed curve?",
        build_model=models.pathfinder,
        data=pathfinder.splits,
        model_arguments=_image_size,
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
        data_help=_pathfinder_help(32),
        check_flags=_check_pathfinder,
    ),
    "pathfinder_x": Task(
        name="pathfinder_x",
        description="Path-X (LRA): Pathfinder at 128 x 128, 16,384 steps",
        build_model=models.pathfinder_x,
        data=functools.partial(pathfinder.splits, image_size=128),
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
        data_help=_pathfinder_help(128),
        check_flags=_check_pathfinder,
    ),
    "image": Task(
        name="image",
        description="Image (LRA): grey CIFAR-10, one pixel per step",
        build_model=models.image,
        data=cifar10.splits,
        num_classes=10,
        batch_size=384,
        epochs=300,
        paper_accuracy=49.62,
        smoke_model=SMOKE_ELM,
        data_help=cifar10.HELP,
    ),
}

# LRA's text tasks: batch 384, 150 epochs (Adam 2e-4 with cosine decay).
_LRA_TEXT = dict(
    batch_size=384,
    epochs=150,
    smoke_model=SMOKE_ELM,
    model_arguments=_sequence_length,
)
TASKS.update(
    {
        "listops": Task(
            name="listops",
            description="ListOps (LRA): the value of a nested list expression",
            build_model=models.listops,
            data=listops.splits,
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
            data_help=listops.HELP,
            check_flags=_check_listops,
            **_LRA_TEXT,
        ),
        "text": Task(
            name="text",
            description="Text (LRA): IMDB sentiment, one byte per step",
            build_model=models.text,
            data=imdb.splits,
            num_classes=2,
            paper_accuracy=80.3,
            hyperparameters=dict(memory_tau_max=4e3),
            smoke_samples=16,
            flags=dict(max_length=4096),
            smoke_flags=dict(max_length=200),
            arguments=(_max_length("bytes per review (default: LRA's 4096)"),),
            data_help=imdb.HELP,
            **_LRA_TEXT,
        ),
        "retrieval": Task(
            name="retrieval",
            description="Retrieval (LRA): does one AAN paper cite the other?",
            build_model=models.retrieval,
            data=aan.splits,
            num_classes=2,
            paper_accuracy=84.93,
            hyperparameters=dict(memory_tau_max=4e3),
            smoke_samples=16,
            flags=dict(max_length=4000),
            smoke_flags=dict(max_length=200),
            arguments=(_max_length("bytes per text (default: LRA's 4000)"),),
            data_help=aan.HELP,
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
    synthetic_note=shd.SYNTHETIC_NOTE,
    is_synthetic=shd.is_synthetic,
    model_arguments=_spike_steps,
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
    data_help=shd.HELP,
    check_flags=_check_shd,
)
TASKS.update(
    {
        "shd": Task(
            name="shd",
            description="SHD: which of 20 spoken digits, from cochlear spikes",
            build_model=models.shd,
            data=shd.splits,
            paper_accuracy=91.0,
            **_SHD_TASK,
        ),
        "shd_adding": Task(
            name="shd_adding",
            description="SHD-Adding: the sum (0-18) of two spoken digits",
            build_model=models.shd_adding,
            data=functools.partial(shd.splits, adding=True),
            paper_accuracy=82.0,
            **{
                **_SHD_TASK,
                "num_classes": 19,
                "model_arguments": _adding_steps,
            },
        ),
        "neuronio": Task(
            name="neuronio",
            description="NeuronIO: the spikes and soma voltage of a cortical "
            "neuron, from its synaptic input",
            build_model=models.neuronio,
            data=neuronio.splits,
            num_classes=2,
            batch_size=8,
            epochs=30,
            learning_rate=5e-4,
            classification=False,
            synthetic_note=neuronio.SYNTHETIC_NOTE,
            is_synthetic=neuronio.is_synthetic,
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
            data_help=neuronio.HELP,
            check_flags=_check_neuronio,
        ),
    }
)

# What `--smoke` changes besides `Task.smoke_samples`: one epoch, tiny batches.
SMOKE = dict(epochs=1, batch_size=4)


def get(name):
    """The registered `Task` called `name`.

    Args:
        name: a key of `TASKS`.

    Returns:
        The `Task`.

    Raises:
        ValueError: no task has that name.

    Example:

    >>> from keras_elm.tasks import registry
    >>> registry.get("listops").batch_size
    384
    """
    if name not in TASKS:
        raise ValueError(
            f"Unknown task {name!r}. Registered tasks: {sorted(TASKS)}."
        )
    return TASKS[name]
