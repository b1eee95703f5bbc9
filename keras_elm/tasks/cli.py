"""The examples' command line: argparse lives here, and only here.

`parser(task)` makes the flags every example takes and the task's own
(`Task.arguments`); `parse_args` fills in the paper's (or `--smoke`'s)
values and checks every flag before any work. `data_arguments` turns the
parsed flags into the keywords of the task's data (`task.data`, the
dataset's `splits`), `builder_arguments` and `model_overrides` into the
model builder's.
"""

import argparse
import math
import os

import keras

from keras_elm import distribute
from keras_elm.callbacks import Backup
from keras_elm.data import files
from keras_elm.flags import non_negative_int
from keras_elm.flags import positive_float
from keras_elm.flags import positive_int
from keras_elm.tasks.registry import SMOKE
from keras_elm.tasks.training import RESUMABLE_FLAGS  # noqa: F401 (re-export)
from keras_elm.tasks.training import data_arguments  # noqa: F401 (re-export)
from keras_elm.tasks.training import exit_on_missing_data  # noqa: F401
from keras_elm.tasks.training import load_data  # noqa: F401 (re-export)
from keras_elm.tasks.training import run_config
from keras_elm.tasks.training import trim_to_devices  # noqa: F401


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
    p.add_argument(
        "--download",
        action="store_true",
        help="fetch missing files into --data-dir (default "
        "<keras_home>/datasets/keras_elm/<dataset>, see "
        "keras_elm.data.download.default_data_dir), verified; without "
        "it nothing touches the network",
    )
    p.add_argument(
        "--mirror",
        default=None,
        metavar="URL",
        help="with --download: the base URL to fetch the files from, "
        "in place of their source's",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="print the plan (data, model, steps, estimated time) and stop",
    )
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
    if args.download and args.smoke:
        p.error(
            "argument --download: not with --smoke, which runs on tiny "
            "fixtures it writes itself"
        )
    if args.mirror is not None:
        if not args.download:
            p.error("argument --mirror: only with --download")
        if not args.mirror.startswith(("http://", "https://")):
            p.error(
                "argument --mirror: a base URL starting with http:// or "
                f"https://, got {args.mirror!r}"
            )
    if args.download and args.data_dir is not None:
        # The folder the download makes: it may not exist yet.
        try:
            check_output_dir(args.data_dir, flag="--data-dir")
        except ValueError as error:
            p.error(str(error))
    elif args.data_dir is not None and not os.path.isdir(args.data_dir):
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
    # The stand-in's note, in the plan, the report and the figure's title.
    args.synthetic_data = (
        None if args.download else task.synthetic(args.data_dir)
    )
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
        raise ValueError(
            f"argument {flag}: {path!r} lies under "
            f"{existing!r}, which is a file, not a folder."
        )
    else:
        files.check_writable(
            existing, what=f"argument {flag} {path!r}: its parent"
        )


def builder_arguments(task, args, splits=None):
    """The model builder's arguments that the task's flags and data set.

    `task.model_arguments(splits, **flags)`: the sequence length of the
    token tasks (`--max-length`), Pathfinder's `--image-size`, SHD's
    number of steps (from the data, or from `--dt` before there are
    any), bin size and `--branch`. Every one can be found from the flags
    alone (`splits` None), so that the plan builds the model before the
    data.

    Args:
        task: a `Task`.
        args: the parsed flags.
        splits: the task's data, or None.

    Returns:
        Keyword arguments for `task.build_model`.

    Example:

    ```python
    import argparse

    from keras_elm import tasks

    task = tasks.get("listops")
    args = argparse.Namespace(max_length=60, smoke=True, seed=0)
    kwargs = tasks.builder_arguments(task, args, None)
    assert kwargs == {"sequence_length": 60}
    ```
    """
    return task.model_arguments(splits, **vars(args))


def model_overrides(task, args):
    """The builder's keyword arguments that the flags change: a tiny ELM
    (`task.smoke_model`) under `--smoke`, none otherwise."""
    return dict(task.smoke_model) if args.smoke else {}
