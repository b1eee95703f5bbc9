"""The data part of a run's plan: what will be made, fetched or read.

`data_plan(task, args)` says, before any data work, what a run's data
will cost: the samples a generator will make (counted, sized on disk, and
timed on a few samples by `measure_generation`), the bytes `--download`
will fetch, or the folder it reads; `counts` gives the train and
validation samples the steps follow. `keras_elm.tasks.planning` prints
it.
"""

import importlib
import math
import os
import tempfile
import time

from keras_elm.data import processes
from keras_elm.tasks import training

# The datasets that are never generated (the files, or a smoke fixture).
FILES_ONLY = ("cifar10", "imdb", "aan")
# The sizes of the real data, for the steps of a run that reads them:
# dataset -> (train, val) samples (the release's, split as `splits` does).
RELEASE_COUNTS = {
    "cifar10": (45_000, 5_000),
    "imdb": (25_000, 25_000),
    "aan": (147_086, 18_090),
    "listops": (96_000, 2_000),
    "pathfinder": (160_000, 20_000),
    "shd": (6_525, 1_631),
}


def _dataset(task):
    return training.dataset_name(task)


def _bound(task):
    return getattr(task.data, "keywords", None) or {}


def data_plan(task, args):
    """The data line of the plan, and the seconds it takes to make them.

    Args:
        task: the `Task`.
        args: the flags of `parse_args`.

    Returns:
        `(line, seconds)`: seconds of generation (0 when nothing is made,
        None when not measured).
    """
    name = _dataset(task)
    if getattr(args, "download", False):
        return _download_line(name, args), 0.0
    if args.data_dir:
        return f"read from {os.path.abspath(args.data_dir)}", 0.0
    cache = os.path.abspath(args.output_dir)
    if name in FILES_ONLY:
        if args.smoke:
            return (
                f"a tiny fixture in the real format ({args.num_samples} "
                f"samples) under {os.path.join(cache, 'smoke_data')}",
                0.0,
            )
        return (
            "NONE: the real files are needed (pass --data-dir, or "
            f"--download to fetch {_size_of_download(name)}); the run "
            "stops with where to put them",
            0.0,
        )
    if args.smoke:
        return (
            f"a tiny fixture ({args.num_samples} samples) made under "
            f"{os.path.join(cache, 'smoke_data')}, seconds",
            0.0,
        )
    made = _GENERATED[name](task, args, cache)
    count, what, path, per_sample, workers = made
    if os.path.exists(path):
        return f"cached: {count:,} {what} in {path}", 0.0
    seconds_each, bytes_each = measure_generation(task, args)
    seconds = seconds_each * count / workers
    return (
        f"generate {count:,} {what} "
        f"({size_in_words(bytes_each * count)} on disk, in {path}): "
        f"{duration(seconds)} on {workers} "
        f"{'core' if workers == 1 else 'cores'}"
        f" (measured on {per_sample} on one core)",
        seconds,
    )


def _pathfinder_made(task, args, cache):
    from keras_elm.data.pathfinder import generator

    size = _bound(task).get("image_size", getattr(args, "image_size", 32))
    path = generator._cache_path(
        os.path.join(cache, "data_cache"),
        args.num_samples,
        size,
        args.difficulty,
        args.seed,
    )
    return (
        args.num_samples,
        f"{size} x {size} images",
        path,
        f"{_SAMPLES['pathfinder'](size)} images",
        processes.default_workers(),
    )


def _listops_made(task, args, cache):
    from keras_elm.data import listops
    from keras_elm.data.listops import trees

    low = args.min_length or listops.default_min_length(args.max_length)
    path = os.path.join(
        cache,
        "data_cache",
        trees._cache_name(
            args.num_samples, args.seed, low, args.max_length, 10, 10
        ),
    )
    return (
        args.num_samples,
        f"trees of {low}-{args.max_length} tokens",
        path,
        f"{_SAMPLES['listops']} trees",
        processes.default_workers(),
    )


def _shd_made(task, args, cache):
    from keras_elm.data import shd

    test = shd._test_samples(args.num_samples)
    path = os.path.join(
        cache, f"synthetic_shd_{args.num_samples}_{test}_seed{args.seed}"
    )
    return (
        args.num_samples + test,
        "synthetic spiking digits",
        path,
        f"{_SAMPLES['shd']} digits",
        1,
    )


def _neuronio_made(task, args, cache):
    n = args.num_samples
    path = os.path.join(cache, f"simulated_neuronio_{n}_seed{args.seed}")
    return (
        n + 2 * max(2, n // 4),
        "simulations of 6 s",
        path,
        "one simulation",
        1,
    )


_GENERATED = {
    "pathfinder": _pathfinder_made,
    "listops": _listops_made,
    "shd": _shd_made,
    "neuronio": _neuronio_made,
}
# Samples generated to time the generator (Path-X images are slow).
_SAMPLES = {
    "pathfinder": lambda size: 16 if size == 128 else 32,
    "listops": 256,
    "shd": 30,
    "neuronio": 1,
}


def measure_generation(task, args):
    """Seconds and bytes on disk a sample, measured on a few, one core.

    Args:
        task: a task whose data are generated (Pathfinder, Path-X,
            ListOps, the synthetic SHD, the simulated NeuronIO).
        args: the flags of `parse_args`.

    Returns:
        `(seconds, bytes)` for one sample.
    """
    name = _dataset(task)
    start = time.perf_counter()
    if name == "pathfinder":
        from keras_elm.data import pathfinder

        size = _bound(task).get("image_size", getattr(args, "image_size", 32))
        n = _SAMPLES["pathfinder"](size)
        pathfinder.generate(
            n,
            image_size=size,
            difficulty=args.difficulty,
            seed=args.seed,
            workers=1,
            progress=False,
        )
        return (time.perf_counter() - start) / n, size * size + 4
    if name == "listops":
        from keras_elm.data import listops

        n = _SAMPLES["listops"]
        sources, _ = listops.generate(
            n,
            seed=args.seed,
            min_length=args.min_length
            or listops.default_min_length(args.max_length),
            max_length=args.max_length,
            workers=1,
            progress=False,
        )
        tokens = sum(len(source.split()) for source in sources)
        return (time.perf_counter() - start) / n, tokens / n + 5
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        if name == "shd":
            from keras_elm.data import shd

            n = _SAMPLES["shd"]
            shd.write_synthetic(folder, num_train=20, num_test=10, seed=0)
        else:
            from keras_elm.data import neuronio

            n = _SAMPLES["neuronio"]
            neuronio.simulate(folder, simulations_per_file=n, seed=args.seed)
        seconds = time.perf_counter() - start
        size = sum(
            os.path.getsize(os.path.join(root, f))
            for root, _, names in os.walk(folder)
            for f in names
        )
    return seconds / n, size / n


def _download_module(name):
    return importlib.import_module(f"keras_elm.data.{name}")


def _size_of_download(name):
    size = _download_size(name)
    return f"about {size_in_words(size)}" if size else "its files"


def _download_size(name):
    size = getattr(_download_module(name), "DOWNLOAD_SIZE", None)
    if size is None and name in training.LRA_DATASETS:
        try:
            size = getattr(_download_module("lra"), "DOWNLOAD_SIZE", None)
        except ImportError:
            size = None
    return size


def _download_line(name, args):
    if name == "neuronio":
        return (
            "--download: NeuronIO is on Kaggle behind a login (about "
            "115 GB) and is not downloaded; the run stops with how to "
            "get it"
        )
    folder = args.data_dir or training.default_download_dir(name)
    return (
        f"fetch {_size_of_download(name)} into "
        f"{os.path.abspath(folder)} (time: depends on your connection, "
        "not in the estimate; a verified copy there is reused offline), "
        "then read it"
    )


def needs_files(task, args):
    """Whether the run cannot start: real files only, and none given."""
    return (
        _dataset(task) in FILES_ONLY
        and not args.smoke
        and not args.data_dir
        and not getattr(args, "download", False)
    )


def counts(task, args):
    """`(train, val)` samples of the run (of the release for real files,
    which may differ a little), or `(None, None)` (NeuronIO: windows)."""
    name = _dataset(task)
    n = getattr(args, "num_samples", None)
    real = args.data_dir or getattr(args, "download", False)
    if not task.classification:
        return None, None
    if real or (name in FILES_ONLY and not args.smoke):
        return RELEASE_COUNTS.get(name, (None, None))
    if n is None:
        return None, None
    if name == "pathfinder":
        from keras_elm.data import pathfinder

        rows = pathfinder.split_indices(n, args.seed)
        return len(rows["train"]), len(rows["val"])
    if name == "listops":
        from keras_elm.data import listops

        sizes = listops.split_sizes(n)
        return sizes["train"], sizes["val"]
    if name == "shd":
        from keras_elm.data import shd

        rows = shd.split_indices(n, args.seed)
        return len(rows["train"]), len(rows["val"])
    if name == "cifar10":
        val = int(round(0.1 * n))
        return n - val, val
    return n, n  # imdb, aan fixtures: about the count


def exact_counts(task, args):
    """Whether `counts` are those of the run exactly (generated data)."""
    name = _dataset(task)
    real = args.data_dir or getattr(args, "download", False)
    return not real and name in ("pathfinder", "listops", "shd")


def neuronio_steps(args):
    if getattr(args, "steps_per_epoch", None):
        return args.steps_per_epoch
    if args.data_dir or getattr(args, "download", False):
        return None
    from keras_elm.data.neuronio import windows

    return math.ceil(
        windows.WINDOWS_PER_SIMULATION * args.num_samples / args.batch_size
    )


# --- words ------------------------------------------------------------------


def size_in_words(n):
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} bytes"


def duration(s):
    """`"about 3 h 20 min"`, `"about 40 s"`, `"about 12 days"`."""
    if s < 60:
        return f"about {max(1, round(s))} s"
    if s < 3600:
        return f"about {round(s / 60)} min"
    if s < 48 * 3600:
        hours, minutes = divmod(round(s / 60), 60)
        return f"about {hours} h" + (f" {minutes} min" if minutes else "")
    days = s / 86400
    if days < 365:
        return f"about {days:,.0f} days"
    return f"about {days / 365:,.1f} years"
