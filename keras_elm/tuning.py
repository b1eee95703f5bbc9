"""keras-tuner search over the ELM's hyperparameters, on any registered task.

`ELMHyperModel` builds and compiles the model of a task of
`keras_elm.tasks.TASKS` from a `keras_tuner.HyperParameters`. Its knobs
are those the paper tunes, with stable names:

Each knob: what it is; its range; its default.

- `units`: d_m, memory units (the paper's first knob); int 10-300, step
  10; 150 (SHD 100, NeuronIO 20).
- `mlp_width_factor`: MLP hidden width, in multiples of d_m; 1, 2, 3, 4;
  2.
- `mlp_layers`: MLP hidden layers; int 1-3; 1.
- `memory_tau_min`: lower end of the τ_m range it starts in; float
  0.1-10, log; 1.
- `memory_tau_max`: upper end of that range; float 10-1e5, log; the
  task's: 1e3, ListOps 2e3, Text and Retrieval 4e3, Path-X 2e4, SHD 150,
  NeuronIO 100.
- `lambda_value`: λ, the memory update's scale; float 1-50, log; 5
  (NeuronIO 10).
- `trace_tau`: τ_s, the synaptic trace; float 1-500, log; 5 (Path-X 150).
- `num_branches`: Branch-ELM branches (NeuronIO; SHD with
  `branch=True`); int 5-200, step 5; NeuronIO 45, SHD 100.
- `synapses_per_branch`: synapses on each branch (same tasks); int
  5-200, step 5; NeuronIO 100, SHD 15.
- `learning_rate`: the optimizer's peak learning rate; float 1e-5-1e-1,
  log; the task's: 2e-4 LRA, 5e-3 SHD, 5e-4 NeuronIO.

The defaults build the paper's model of each task exactly. Where τ_m is
bounded by a wider range than it starts in (SHD 0-1,000 ms, NeuronIO
0-500 ms), the two τ_m knobs set the range it starts in and the bound
stays the task's (widened if `memory_tau_max` goes past it).

keras-tuner is optional (`pip install "keras-elm[tuning]"`); `import
keras_elm` does not import this module. Of `keras_elm.tasks`, it imports
the registry and the training recipe only: the flags of `parser` and
`parse_args` are imported when they are called.
"""

import contextlib
import dataclasses
import os

import keras

try:
    import keras_tuner
except ImportError as error:  # pragma: no cover - the extra is in [dev]
    raise ImportError(
        "keras_elm.tuning needs keras-tuner: pip install 'keras-elm[tuning]' "
        "(or pip install keras-tuner)."
    ) from error

from keras_elm.tasks import registry
from keras_elm.tasks import training

# The knobs every task shares, at the paper's LRA values. A task's own
# values are in `Task.hyperparameters` and `Task.learning_rate`.
DEFAULTS = dict(
    units=150,
    mlp_width_factor=2,
    mlp_layers=1,
    memory_tau_min=1.0,
    memory_tau_max=1e3,
    lambda_value=5.0,
    trace_tau=5.0,
)

BRANCH_KNOBS = ("num_branches", "synapses_per_branch")
KNOBS = (*DEFAULTS, *BRANCH_KNOBS, "learning_rate")
# The builder arguments that the knobs set (`model_kwargs`).
BUILDER_ARGUMENTS = (
    "units",
    "mlp_units",
    "mlp_layers",
    "lambda_value",
    "trace_tau",
    "memory_tau_min",
    "memory_tau_max",
    "memory_tau_init_range",
    *BRANCH_KNOBS,
)


# The search's own flags: their defaults, and those of `--smoke` (two
# trials of two epochs; Hyperband: two rounds).
SEARCH_FLAGS = dict(epochs=10, max_trials=20, hyperband_factor=3)
SMOKE_SEARCH_FLAGS = dict(epochs=2, max_trials=2, hyperband_factor=2)
SEARCH_SAMPLES = 10_000  # generated samples of a search (no --data-dir)


def _search_task(task):
    """`task` with the search's flags, filled in by `tasks.parse_args`."""
    return dataclasses.replace(
        task,
        num_samples=SEARCH_SAMPLES,
        flags={**task.flags, **SEARCH_FLAGS},
        smoke_flags={**task.smoke_flags, **SMOKE_SEARCH_FLAGS},
    )


def parser(task):
    """The flags of a search on `task`: the example's (`tasks.parser`), and
    `--tuner`, `--max-trials`, `--hyperband-factor`.

    `--epochs` is each trial's (default 10), `--num-samples` 10,000, and
    `--learning-rate`, when given, fixes the learning rate of every trial
    (the knob is tuned otherwise). Parse with `parse_args`.

    Args:
        task: a `keras_elm.tasks.Task`.

    Returns:
        An `argparse.ArgumentParser`.
    """
    from keras_elm import flags
    from keras_elm.tasks import cli

    p = cli.parser(_search_task(task))
    p.description = (
        "Every trial trains --epochs epochs (default 10; "
        "--max-minutes bounds each trial) with the paper's "
        "optimizer. The learning rate is tuned, unless "
        "--learning-rate fixes it."
    )
    # runs/tuning_<task>, with /smoke under --smoke (`tasks.parse_args`).
    p.output_dir_default = os.path.join("runs", f"tuning_{task.name}")
    p.set_defaults(learning_rate=None)
    p.add_argument("--tuner", choices=("random", "hyperband"), default="random")
    p.add_argument(
        "--max-trials",
        type=flags.positive_int,
        default=None,
        help="RandomSearch's number of configurations (default "
        f"{SEARCH_FLAGS['max_trials']}, --smoke "
        f"{SMOKE_SEARCH_FLAGS['max_trials']})",
    )
    p.add_argument(
        "--hyperband-factor",
        type=flags.positive_int,
        default=None,
        help="Hyperband's reduction factor, >= 2 (default "
        f"{SEARCH_FLAGS['hyperband_factor']}, --smoke "
        f"{SMOKE_SEARCH_FLAGS['hyperband_factor']})",
    )
    return p


def parse_args(p, task, argv=None):
    """`tasks.parse_args` for a search: `--smoke` changes only the flags
    not given, and `--learning-rate` stays None unless given.

    Args:
        p: the parser of `parser(task)`.
        task: the `Task` searched.
        argv: the arguments (None: `sys.argv[1:]`).

    Returns:
        The `argparse.Namespace`.

    Example:

    >>> task = keras_elm.tasks.get("listops")
    >>> args = parse_args(parser(task), task, ["--smoke", "--max-trials", "5"])
    >>> args.max_trials, args.epochs, args.learning_rate
    (5, 2, None)
    """
    from keras_elm.tasks import cli

    args = cli.parse_args(p, _search_task(task), argv)
    if args.hyperband_factor < 2:
        p.error(
            "argument --hyperband-factor: must be an integer >= 2, got "
            f"{args.hyperband_factor}"
        )
    return args


def search_hyperparameters(args):
    """The knobs the flags fix, for the tuner's `hyperparameters=`.

    `--learning-rate`, when given, fixes `learning_rate` (any value, inside
    the knob's range or not); `--smoke` narrows the size knobs to a tiny
    ELM. The other knobs are declared by `ELMHyperModel`.

    Args:
        args: the flags of `parse_args`.

    Returns:
        A `keras_tuner.HyperParameters`.
    """
    hp = keras_tuner.HyperParameters()
    if args.learning_rate is not None:
        hp.Fixed("learning_rate", float(args.learning_rate))
    if args.smoke:  # A tiny ELM: narrow the size knobs, tune the rest.
        hp.Int("units", 4, 8, step=4)
        hp.Fixed("mlp_width_factor", 2)
        hp.Fixed("mlp_layers", 1)
    return hp


def search_space(task, hp=None, *, branch=False):
    """Declares the knobs of `task` in `hp` and returns their values.

    A knob already declared in `hp` (by `hp.Fixed`, or a narrower `hp.Int`
    passed to the tuner as `hyperparameters=`) keeps its declaration, as
    keras-tuner does for any name declared twice.

    Args:
        task: a `keras_elm.tasks.Task` or its registered name.
        hp: a `keras_tuner.HyperParameters` (a new one if None: every
            knob at its default).
        branch: whether an `"optional"`-branch task (SHD) is built as the
            Branch-ELM.

    Returns:
        `{name: value}` for every knob of the task (see the module's table).

    Example:

    >>> keras_elm.tuning.search_space("listops")["memory_tau_max"]
    2000.0
    """
    task = registry.get(task) if isinstance(task, str) else task
    hp = keras_tuner.HyperParameters() if hp is None else hp
    default = {**DEFAULTS, **task.hyperparameters}
    values = dict(
        units=hp.Int("units", 10, 300, step=10, default=default["units"]),
        mlp_width_factor=hp.Choice(
            "mlp_width_factor",
            [1, 2, 3, 4],
            default=default["mlp_width_factor"],
        ),
        mlp_layers=hp.Int("mlp_layers", 1, 3, default=default["mlp_layers"]),
        memory_tau_min=hp.Float(
            "memory_tau_min",
            0.1,
            10.0,
            sampling="log",
            default=default["memory_tau_min"],
        ),
        memory_tau_max=hp.Float(
            "memory_tau_max",
            10.0,
            1e5,
            sampling="log",
            default=default["memory_tau_max"],
        ),
        lambda_value=hp.Float(
            "lambda_value",
            1.0,
            50.0,
            sampling="log",
            default=default["lambda_value"],
        ),
        trace_tau=hp.Float(
            "trace_tau",
            1.0,
            500.0,
            sampling="log",
            default=default["trace_tau"],
        ),
    )
    if has_branches(task, branch):
        for name in BRANCH_KNOBS:
            values[name] = hp.Int(name, 5, 200, step=5, default=default[name])
    values["learning_rate"] = hp.Float(
        "learning_rate", 1e-5, 1e-1, sampling="log", default=task.learning_rate
    )
    return values


def has_branches(task, branch=False):
    """Whether `num_branches` and `synapses_per_branch` are knobs of `task`."""
    return task.branches == "always" or (task.branches == "optional" and branch)


def model_kwargs(task, values):
    """The builder's keyword arguments for knob `values` (`search_space`)."""
    kwargs = dict(
        units=values["units"],
        mlp_units=values["mlp_width_factor"] * values["units"],
        mlp_layers=values["mlp_layers"],
        lambda_value=values["lambda_value"],
        trace_tau=values["trace_tau"],
    )
    low, high = values["memory_tau_min"], values["memory_tau_max"]
    if task.memory_tau_bounds is None:
        kwargs.update(memory_tau_min=low, memory_tau_max=high)
    else:
        bound_low, bound_high = task.memory_tau_bounds
        kwargs.update(
            memory_tau_init_range=(low, high),
            memory_tau_min=min(bound_low, low),
            memory_tau_max=max(bound_high, high),
        )
    for name in BRANCH_KNOBS:
        if name in values:
            kwargs[name] = values[name]
    return kwargs


class ELMHyperModel(keras_tuner.HyperModel):
    """The ELM model of a registered task, built from keras-tuner's values.

    Each knob (the module's table lists names, ranges and defaults) is
    declared under a stable name; with every knob at its default the model
    is the task's paper model. `build` seeds with
    `keras.utils.set_random_seed(seed)` first, so a configuration gets the
    same initial weights in every trial and in a fresh build, and compiles
    with the task's optimizer, loss and metrics.

    Args:
        task: a registered task name (`keras_elm.tasks.TASKS`) or a `Task`.
        model_kwargs: the builder's other arguments, fixed for the search
            (`sequence_length`, `image_size`, `branch`, `dt`...). A knob
            here is an error: fix knobs with `hp.Fixed`.
        decay_steps: steps of the cosine decay for tasks that decay
            (`epochs * steps_per_epoch` of the longest trial); None keeps
            the learning rate constant.
        seed: the seed of every build.
        distribution: a `keras_elm.distribute.data_parallel(...)` context:
            entered in every `build`, which sets JAX's distribution again
            after keras-tuner's `clear_session()`, and builds and compiles
            TensorFlow's model under the `MirroredStrategy`.
        name: the hypermodel's name.
        tunable: whether the hyperparameters it declares are tuned.

    Example:

    Search ListOps' space, with two knobs fixed by `hp.Fixed`:

    ```python
    import tempfile

    import keras_tuner

    from keras_elm.tuning import ELMHyperModel

    hypermodel = ELMHyperModel("listops", {"sequence_length": 200})
    hp = keras_tuner.HyperParameters()
    hp.Fixed("mlp_layers", 1)
    hp.Fixed("trace_tau", 5.0)
    tuner = keras_tuner.RandomSearch(
        hypermodel, objective=hypermodel.objective, max_trials=20,
        hyperparameters=hp, directory=tempfile.mkdtemp(),
        project_name="listops")
    # tuner.search(x, y, validation_data=(x_val, y_val), epochs=10)
    ```

    Or tune only what you declare, the rest at its default:

    ```python
    import tempfile

    import keras_tuner

    from keras_elm.tuning import ELMHyperModel

    hypermodel = ELMHyperModel("listops", {"sequence_length": 200})
    hp = keras_tuner.HyperParameters()
    hp.Int("units", 50, 200, step=50)
    hp.Float("learning_rate", 1e-4, 1e-3, sampling="log")
    tuner = keras_tuner.Hyperband(
        hypermodel, objective=hypermodel.objective, max_epochs=9,
        hyperparameters=hp, tune_new_entries=False,
        directory=tempfile.mkdtemp(), project_name="listops_hyperband")
    ```
    """

    def __init__(
        self,
        task,
        model_kwargs=None,
        *,
        decay_steps=None,
        seed=0,
        distribution=None,
        name=None,
        tunable=True,
    ):
        self.task = registry.get(task) if isinstance(task, str) else task
        super().__init__(name=name or f"elm_{self.task.name}", tunable=tunable)
        self.model_kwargs = dict(model_kwargs or {})
        knobs = sorted(set(self.model_kwargs) & set(BUILDER_ARGUMENTS))
        if knobs:
            raise ValueError(
                f"Argument `model_kwargs` sets {knobs}, which are tuning "
                "knobs of keras_elm.tuning. Fix a knob with "
                "`hp.Fixed(name, value)` in the `hyperparameters=` you pass "
                f"to the tuner instead. Received: model_kwargs={model_kwargs}"
            )
        self.decay_steps = decay_steps
        self.seed = seed
        self.distribution = distribution

    @property
    def objective(self):
        """The task's `keras_tuner.Objective` (`Task.objective`)."""
        return keras_tuner.Objective(*self.task.objective)

    def build(self, hp):
        values = search_space(
            self.task, hp, branch=self.model_kwargs.get("branch", False)
        )
        keras.utils.set_random_seed(self.seed)
        with self.distribution or contextlib.nullcontext():
            model = self.task.build_model(
                **self.model_kwargs, **model_kwargs(self.task, values)
            )
            model.compile(
                **training.compile_arguments(
                    self.task, self.decay_steps, values["learning_rate"]
                )
            )
        return model
