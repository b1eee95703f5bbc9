"""Values of the examples' command-line flags, checked by the parser.

The argparse `type=` functions here turn a bad value into a message that
names the flag (`--epochs: must be an integer >= 1, got '0'`) before any
work starts; the `_check_*` functions check flags of one task that cannot
work together (`Task.check_flags`, run by `keras_elm.tasks.parse_args`).

Example:

```python
import argparse

from keras_elm import flags

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=flags.positive_int, default=10)
parser.add_argument("--learning-rate", type=flags.positive_float)
args = parser.parse_args(["--epochs", "3", "--learning-rate", "1e-3"])
assert (args.epochs, args.learning_rate) == (3, 0.001)
```
"""

import argparse
import math


def _integer(text, minimum):
    try:
        value = int(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(
            f"must be an integer >= {minimum}, got {text!r}"
        ) from None
    if value < minimum:
        raise argparse.ArgumentTypeError(
            f"must be an integer >= {minimum}, got {value}"
        )
    return value


def positive_int(text):
    """An argparse `type=`: an integer >= 1, else a message for the flag.

    Example:

    >>> positive_int("3")
    3
    >>> positive_int("0")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: must be an integer >= 1, got 0
    """
    return _integer(text, 1)


def non_negative_int(text):
    """An argparse `type=`: an integer >= 0 (a seed)."""
    return _integer(text, 0)


def positive_float(text):
    """An argparse `type=`: a finite number > 0 (not NaN, not inf).

    Example:

    >>> positive_float("1e-3")
    0.001
    >>> positive_float("nan")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: must be a finite number > 0, got 'nan'
    """
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(
            f"must be a number > 0, got {text!r}"
        ) from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(
            f"must be a finite number > 0, got {text!r}"
        )
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
            f"{text!r}"
        )
    return size


def _check_num_samples(args, minimum, why):
    """Generated data (no `--data-dir`) of too few samples for the splits."""
    if not args.data_dir and args.num_samples < minimum:
        raise ValueError(
            f"--num-samples {args.num_samples} is too few: {why}, which needs "
            f"at least {minimum}."
        )


def _check_pathfinder(args):
    _check_num_samples(
        args,
        10,
        "the 80/10/10 split must leave a sample in each of train, val and test",
    )


def _check_listops(args):
    if args.min_length is not None and args.min_length > args.max_length:
        raise ValueError(
            f"--min-length {args.min_length} must be <= "
            f"--max-length {args.max_length}."
        )
    if args.data_dir:
        return
    _check_num_samples(
        args, 3, "the split must leave a sample in each of train, val and test"
    )
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


def _min_length(args):
    """ListOps' lower length bound: `--min-length`, or the dataset's rule
    (`keras_elm.data.listops.default_min_length`)."""
    if getattr(args, "min_length", None) is not None:
        return args.min_length
    from keras_elm.data import listops

    return listops.default_min_length(args.max_length)
