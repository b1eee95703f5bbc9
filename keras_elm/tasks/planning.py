"""The plan of a run, printed before any data are made or fetched.

`print_plan_first(task, args)` says what an example will do before it does
any of it: the data it will generate (count, size on disk, and the time on
this machine, measured on a few samples), fetch (`--download`: the bytes)
or read, the model (built from the flags alone, for its parameter count),
the steps, and an estimate of the whole run from a few training steps
measured on a small batch of zeros and scaled linearly to the batch. When
the estimate is far beyond the machine (more than a day, or an hour of
data generation without an accelerator) it says so and prints commands
that fit: the `--smoke` run, a run bounded by `--max-minutes`, and the
settings of the README's CPU results. `--dry-run` stops there (exit 0).

Under `--smoke` nothing is measured (the run itself is under a minute):
the plan costs the build of the tiny model only.
"""

import dataclasses
import math
import os
import shlex
import sys
import time
from typing import Optional

import keras
import numpy as np

from keras_elm import distribute
from keras_elm.data import processes
from keras_elm.tasks import data_plans
from keras_elm.tasks import training
from keras_elm.tasks.training import OPTIMIZERS

FAR_BEYOND_HOURS = 24  # a whole run longer than this does not fit
GENERATION_LIMIT_HOURS = 1  # nor generation longer than this without a GPU
BOUNDED_MINUTES = 60  # the `--max-minutes` of the bounded command
_FIT_GENERATION_SECONDS = 600  # what the bounded run's generation may take
_VALIDATION_COST = 1 / 3  # an evaluation step, in training steps

# The settings of the README's CPU results ("Results so far"): example,
# flags. Path-X has none: the nearest is Pathfinder 32's.
CPU_RUNS = {
    "pathfinder": (
        "pathfinder.py",
        "--difficulty easy --num-samples 10000 --batch-size 32 --epochs 12 "
        "--learning-rate 1e-3 --max-minutes 45",
    ),
    "listops": (
        "listops.py",
        "--max-length 200 --num-samples 20000 --batch-size 32 --epochs 30 "
        "--learning-rate 1e-3 --max-minutes 45",
    ),
    "shd_adding": ("shd_adding.py", "--dt 0.01 --max-minutes 40"),
    "shd": ("shd.py", "--dt 0.01 --max-minutes 40"),
    "neuronio": (
        "neuronio.py",
        "--num-samples 128 --steps-per-epoch 2000 --max-minutes 30",
    ),
}
CPU_RUNS["pathfinder_x"] = CPU_RUNS["pathfinder"]


@dataclasses.dataclass
class Plan:
    """What `make_plan` found: the lines it prints, and its estimates.

    Attributes:
        lines: the plan, one line each.
        data_seconds: estimated seconds to generate the data (0 when
            cached, read or fetched; None when not known).
        step_seconds: measured seconds of one training step at the run's
            batch (scaled), or None (not measured: `--smoke`).
        total_seconds: the estimate of the whole run (data and training),
            or None.
        far_beyond: whether the run is far beyond this machine.
        suggestions: `(script, argv)` pairs of the commands that fit
            (empty unless `far_beyond`).
    """

    lines: list
    data_seconds: Optional[float] = None
    step_seconds: Optional[float] = None
    total_seconds: Optional[float] = None
    far_beyond: bool = False
    suggestions: list = dataclasses.field(default_factory=list)

    def __str__(self):
        return "\n".join(self.lines)


def print_plan_first(
    task,
    args,
    *,
    overrides=None,
    script=None,
    show=True,
    training=True,
    trials=None,
):
    """Prints the plan of the run before any work; stops on `--dry-run`.

    Args:
        task: the `Task`.
        args: the flags of `parse_args`.
        overrides: the model builder's keywords that the example adds
            (None: `model_overrides(task, args)`, a tiny ELM under
            `--smoke`).
        script: the example's path, for the commands the plan suggests
            (None: `sys.argv[0]`).
        show: print the plan (False: only stop on `--dry-run`, as the
            processes but the first of a `torchrun` do).
        training: False for a run that only evaluates (NeuronIO's
            `--pretrained`): no model or steps in the plan.
        trials: the number of trainings of a search (`--max-trials`),
            each of the plan's steps, or None: one training.

    Returns:
        The `Plan` (None when not `show`n).

    Raises:
        SystemExit: status 0 with `--dry-run`, after the plan.

    Example:

    ```python
    import tempfile

    from keras_elm import tasks

    task = tasks.get("listops")
    out = tempfile.mkdtemp()
    args = tasks.parse_args(
        tasks.parser(task), task, ["--smoke", "--output-dir", out]
    )
    plan = tasks.print_plan_first(task, args)
    assert "trainable parameters" in str(plan)
    ```
    """
    plan = None
    if show:
        plan = make_plan(
            task,
            args,
            overrides=overrides,
            script=script,
            training=training,
            trials=trials,
        )
        print(plan, flush=True)
    if getattr(args, "dry_run", False):
        if show:
            print("--dry-run: stopping after the plan", flush=True)
        raise SystemExit(0)
    return plan


def make_plan(
    task, args, *, overrides=None, script=None, training=True, trials=None
):
    """The plan of a run, made before any data (see `print_plan_first`).

    Args:
        task: the `Task`.
        args: the flags of `parse_args`.
        overrides: extra builder keywords (None: `model_overrides`).
        script: the example's path (None: `sys.argv[0]`).
        training: False: the run only evaluates (no model, no steps).
        trials: trainings of a search (None: one).

    Returns:
        A `Plan`.
    """
    from keras_elm.tasks import cli
    from keras_elm.tasks import reporting

    script = script or (sys.argv[0] if sys.argv and sys.argv[0] else None)
    if overrides is None:
        overrides = cli.model_overrides(task, args)
    data_line, data_seconds = data_plans.data_plan(task, args)
    lines = _head(task, args, data_line)
    if not training:
        lines.append("  model: evaluated only, not trained")
        lines.append(f"  output: {os.path.abspath(args.output_dir)}")
        return Plan(lines, data_seconds=data_seconds)
    train, val = data_plans.counts(task, args)
    steps = max(1, math.ceil(train / args.batch_size)) if train else None
    if not task.classification:
        steps = data_plans.neuronio_steps(args)
    model = task.build_model(
        **cli.builder_arguments(task, args, None), **overrides
    )
    schedule = "with cosine decay" if task.cosine else "constant"
    accelerator = _accelerator(_devices())
    lines.append(f"  model: {reporting.parameter_counts(model)}")
    about = "" if data_plans.exact_counts(task, args) else "about "
    lines.append(
        f"  training: {args.epochs} epoch{'s' if args.epochs > 1 else ''} x "
        + (f"{about}{steps:,}" if steps else "?")
        + f" steps of batch {args.batch_size}"
        + (f" = {about}{args.epochs * steps:,} steps" if steps else "")
        + f", {OPTIMIZERS[task.optimizer].__name__} "
        f"{_learning_rate(task, args):g} {schedule}"
    )
    plan = Plan(lines, data_seconds=data_seconds)
    if args.smoke:
        lines.append("  time: a smoke run, under a minute (not measured)")
    elif data_plans.needs_files(task, args):
        lines.append("  time: not measured, the run needs the files first")
    else:
        small = min(args.batch_size, 8)
        measured = measure_steps(model, task, small)
        plan.step_seconds = measured * args.batch_size / small
        _estimate(plan, args, steps, val, small, measured, trials)
    _release(model, args)
    if not args.smoke and _far_beyond(plan, accelerator):
        plan.far_beyond = True
        plan.suggestions = suggestions(task, args, plan, script)
        lines.append(
            "  FAR BEYOND THIS MACHINE: "
            + _far_beyond_reason(plan, accelerator)
            + ". Commands that fit:"
        )
        why = list(_WHY)
        if task.name == "pathfinder_x":
            why[2] = "the nearest of the README's CPU results (Path-X has none)"
        for (name, argv), why in zip(plan.suggestions, why):
            lines.append(f"    {_command(name, argv)}   # {why}")
        if not getattr(args, "dry_run", False):
            lines.append("  going on as asked (Ctrl-C stops it)")
    lines.append(f"  output: {os.path.abspath(args.output_dir)}")
    return plan


def _head(task, args, data_line):
    devices = _devices()
    lines = [
        f"PLAN: {task.description}",
        f"  backend {keras.backend.backend()}, seed {args.seed}, "
        f"{processes.default_workers()} CPU cores, "
        + (
            f"devices {', '.join(devices)}"
            if _accelerator(devices)
            else "no GPU"
        )
        + (", SMOKE RUN (tiny model and data)" if args.smoke else ""),
        f"  data: {data_line}",
    ]
    if getattr(args, "synthetic_data", None):
        lines.append(f"  SYNTHETIC DATA: {args.synthetic_data}")
    return lines


_WHY = (
    "the whole pipeline on a tiny model and data, under a minute",
    f"stops after {BOUNDED_MINUTES} min, evaluates; rerun to continue",
    "the settings of the README's CPU results",
)


def _learning_rate(task, args):
    rate = getattr(args, "learning_rate", None)
    return task.learning_rate if rate is None else rate


def _devices():
    """The devices a run could use (torch: its CUDA devices or the CPU)."""
    try:
        return list(distribute.list_devices())
    except ValueError:  # torch: no keras.distribution
        import torch

        count = torch.cuda.device_count()
        return [f"cuda:{i}" for i in range(count)] or ["cpu:0"]


def _accelerator(devices):
    return any(
        kind in device.lower()
        for device in devices
        for kind in ("gpu", "cuda", "tpu")
    )


def _release(model, args):
    """Frees the plan's model; names and seeds as if it was never built."""
    del model
    keras.backend.clear_session(free_memory=False)  # no gc.collect: quick
    keras.utils.set_random_seed(args.seed)


# --- the training steps -----------------------------------------------------


def measure_steps(model, task, batch_size):
    """Seconds of one training step at `batch_size`, on zero inputs.

    The model is compiled with the task's recipe, then trained on one
    batch to warm up (tracing, compiling) and two timed ones; its weights
    change, so measure a copy, not the model to train.

    Args:
        model: a model built like the run's.
        task: its `Task` (the loss).
        batch_size: rows of the batch.

    Returns:
        The mean seconds of the two timed steps.
    """
    model.compile(**training.compile_arguments(task, decay_steps=10))
    x = [
        np.zeros(
            (batch_size, *[d or 1 for d in tensor.shape[1:]]),
            tensor.dtype,
        )
        for tensor in model.inputs
    ]
    x = x[0] if len(x) == 1 else x
    if task.classification:
        y = np.zeros((batch_size,), "int32")
    else:
        y = {
            name: np.zeros(
                (batch_size, *[d or 1 for d in tensor.shape[1:]]),
                "float32",
            )
            for name, tensor in zip(model.output_names, model.outputs)
        }
    model.train_on_batch(x, y)
    start = time.perf_counter()
    for _ in range(2):
        model.train_on_batch(x, y)
    return (time.perf_counter() - start) / 2


def _estimate(plan, args, steps, val, small, measured, trials):
    step = plan.step_seconds
    scaled = (
        "on zeros"
        if small == args.batch_size
        else f"{_seconds(measured)} at batch {small} on zeros, scaled linearly"
    )
    line = (
        f"  estimate: {_seconds(step)} a step at batch {args.batch_size} "
        f"(measured {scaled}: an estimate)"
    )
    if steps:
        val_steps = math.ceil(val / args.batch_size) if val else 0
        epoch = step * (steps + _VALIDATION_COST * val_steps)
        train = args.epochs * epoch * (trials or 1)
        data = plan.data_seconds or 0.0
        plan.total_seconds = data + train
        line += (
            f"; {data_plans.duration(epoch)} an epoch, training "
            + (f"{trials} trials: " if trials else "")
            + f"{data_plans.duration(train)}"
            + (
                f", with the data {data_plans.duration(data + train)}"
                if data
                else ""
            )
        )
        if getattr(args, "max_minutes", None):
            line += (
                f"; --max-minutes stops training after {args.max_minutes:g} min"
            )
    plan.lines.append(line)


def _far_beyond(plan, accelerator):
    data = plan.data_seconds or 0.0
    total = plan.total_seconds
    return (total is not None and total > FAR_BEYOND_HOURS * 3600) or (
        not accelerator and data > GENERATION_LIMIT_HOURS * 3600
    )


def _far_beyond_reason(plan, accelerator):
    reasons = []
    if plan.total_seconds and plan.total_seconds > FAR_BEYOND_HOURS * 3600:
        whole = data_plans.duration(plan.total_seconds)
        reasons.append(f"the whole run would take {whole}")
    data = plan.data_seconds or 0.0
    if not accelerator and data > GENERATION_LIMIT_HOURS * 3600:
        reasons.append(f"generating the data {data_plans.duration(data)}")
    return ", and ".join(reasons) + " here"


def suggestions(task, args, plan, script=None):
    """The commands that fit this machine: `[(script, argv), ...]`.

    The `--smoke` run, a run bounded by `--max-minutes` (on the same
    files, with fewer samples when generating them takes long, and a
    batch of 32 when a step at the run's takes more than 10 s), and the
    settings of the README's CPU results for the task (`CPU_RUNS`).

    Args:
        task: the `Task`.
        args: the flags of `parse_args`.
        plan: the `Plan` (its measured times).
        script: the example's path (None: `examples/<task>.py`).

    Returns:
        A list of `(script path, argv list)`.
    """
    script = script or os.path.join("examples", f"{task.name}.py")
    folder = os.path.dirname(script)
    result = [(script, ["--smoke"])]
    bounded = ["--max-minutes", str(BOUNDED_MINUTES)]
    if args.data_dir:  # the same files
        bounded += ["--data-dir", args.data_dir]
    if getattr(args, "download", False):
        bounded += ["--download"]
    count = getattr(args, "num_samples", None)
    if count and plan.data_seconds and not args.data_dir:
        each = plan.data_seconds / count
        fit = _round_down(_FIT_GENERATION_SECONDS / max(each, 1e-9))
        fit = max(task.smoke_samples, min(count, fit))
        if fit < count:
            bounded += ["--num-samples", str(fit)]
    if plan.step_seconds and plan.step_seconds > 10 and args.batch_size > 32:
        bounded += ["--batch-size", "32"]
    result.append((script, bounded))
    if task.name in CPU_RUNS and os.path.basename(script) in (
        f"{task.name}.py",
        "pathfinder_x.py",
    ):
        name, flags = CPU_RUNS[task.name]
        result.append((os.path.join(folder, name), shlex.split(flags)))
    return result


def _command(script, argv):
    return f"KERAS_BACKEND={keras.backend.backend()} python " + shlex.join(
        [script, *argv]
    )


def _round_down(n):
    """`n` rounded down to 1, 2 or 5 times a power of ten."""
    if n < 1:
        return 1
    power = 10 ** int(math.floor(math.log10(n)))
    for step in (5, 2, 1):
        if step * power <= n:
            return step * power
    return power


def _seconds(s):
    return f"{s:.3g} s" if s < 60 else data_plans.duration(s)
