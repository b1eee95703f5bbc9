"""The input pipeline of the NeuronIO and SHD examples against their steps.

Samples per second of `model.fit` as `examples/neuronio.py` and
`examples/shd.py` run it (the task registry's recipe: batch 8, the models'
default sizes, 500 ms NeuronIO windows, SHD in 2 ms bins: T 500), on the
simulated NeuronIO stand-in (`keras_elm.data.neuronio.splits()`) and the
synthetic SHD files (`keras_elm.data.shd.splits()`), with the time split
between producing the batches and the training steps. One worker process
per backend (`KERAS_BACKEND` is read when Keras is imported); the data are
made once under `--cache-dir` and reused.

    python benchmarks/bench_pipeline.py                  # 3 backends, ~3 min
    python benchmarks/bench_pipeline.py --backends jax --steps 20

Columns, per example and backend (milliseconds per batch of 8; medians
over `--steps` batches after warm-up unless said otherwise):

- `first batch`: the first batch of `batch (numpy)`, alone: NeuronIO's
  reads and parses a file (once per file and epoch; the stand-in's one
  training file stays cached, so once per run);
- `batch (numpy)`: making a batch in NumPy alone, what fit asks of the
  data: `PyDataset.__getitem__` for NeuronIO, the shuffled slice
  `x[indices], y[indices]` of the arrays for SHD;
- `batch (fit's adapter)`: the next batch of the iterator that `fit` makes
  on this backend (Keras's data adapter: `get_jax_iterator`,
  `get_tf_dataset`, `get_torch_dataloader`), the NumPy work included;
- `to tensor`: `keras.ops.convert_to_tensor` of each array of a batch
  (NumPy to the backend's tensor: a copy of the dense 20 MB NeuronIO
  inputs on JAX and TensorFlow). On JAX the step does this itself (its
  jitted function takes the NumPy batch), so it is inside the step times;
  on TensorFlow `fit`'s adapter does it; on torch it is a view;
- `train_on_batch`: `model.train_on_batch` on batches made beforehand
  (on JAX and TensorFlow it costs more per call than a step of `fit`);
- `fit step (pre-made)`: `fit` on a PyDataset that hands out the batches
  made beforehand, a pipeline of about 0 ms: the step as `fit` runs it;
- `pipeline share`: `batch (fit's adapter) / fit step (pre-made)`; the
  target of issue 20 is under 10 %;
- `fit ms/batch` and `fit samples/s`: `model.fit` on the example's data,
  `steps_per_epoch=--steps`; `fit - pre-made`: `fit ms/batch / fit step
  (pre-made) - 1`, what the real pipeline adds (noisy on a shared CPU: it
  can come out below zero). Each fit runs 2 epochs and times the second
  (the first may compile), epoch start to end, no validation; the two
  kinds of fit take turns, twice, and the faster of each is shown.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

BACKENDS = ("jax", "tensorflow", "torch")
EXAMPLES = ("neuronio", "shd")
ROUNDS = 2  # fits of each kind, taken in turns
COLUMNS = (
    "example",
    "backend",
    "first batch ms",
    "batch (numpy) ms",
    "batch (fit's adapter) ms",
    "to tensor ms",
    "train_on_batch ms",
    "fit step ms (pre-made)",
    "pipeline share",
    "fit ms/batch",
    "fit - pre-made",
    "fit samples/s",
)


def _timed(function, count):
    """Milliseconds of each of `count` calls of `function()`."""
    times = []
    for _ in range(count):
        start = time.perf_counter()
        function()
        times.append(1e3 * (time.perf_counter() - start))
    return times


def _task_setup(name, cache_dir, smoke):
    """The example's flags (its defaults) and the task."""
    from keras_elm import tasks

    task = tasks.get(name)
    argv = ["--output-dir", os.path.join(cache_dir, name)]
    if smoke:
        argv.append("--smoke")
    args = tasks.parse_args(tasks.parser(task), task, argv)
    return tasks, task, args


def _neuronio(cache_dir, smoke):
    """The NeuronIO example's training PyDataset and compiled model."""
    import keras

    import keras_elm

    tasks, task, args = _task_setup("neuronio", cache_dir, smoke)
    data = keras_elm.data.neuronio.splits(
        **tasks.data_arguments(task, args, data_dir=None)
    )
    steps = len(data["train"])
    model = keras_elm.models.neuronio(
        **tasks.builder_arguments(task, args, data),
        **tasks.model_overrides(task, args),
    )
    model.compile(
        optimizer=tasks.optimizer(task, args, steps),
        loss={
            "spike": keras.losses.BinaryCrossentropy(from_logits=True),
            "soma": keras.losses.MeanSquaredError(),
        },
        loss_weights={"spike": 0.5, "soma": 0.5},
    )
    return args.batch_size, data["train"], model


def _shd(cache_dir, smoke):
    """The SHD example's training arrays and compiled model."""
    import keras

    import keras_elm

    tasks, task, args = _task_setup("shd", cache_dir, smoke)
    splits = keras_elm.data.shd.splits(
        **tasks.data_arguments(task, args, data_dir=None)
    )
    steps = tasks.steps_per_epoch(splits, args)
    model = keras_elm.models.shd(
        **tasks.builder_arguments(task, args, splits),
        **tasks.model_overrides(task, args),
    )
    model.compile(
        optimizer=tasks.optimizer(task, args, steps),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return args.batch_size, splits["train"], model


def _adapter_iterator(backend, data, batch_size):
    """The batches `fit` iterates on `backend`, from Keras's data adapter.

    Epoch after epoch: it starts again after the last batch.

    Keras has no public API for this; `keras.src` is used here, in a
    benchmark only.
    """
    from keras.src.trainers import data_adapters

    if isinstance(data, tuple):
        adapter = data_adapters.get_data_adapter(
            data[0], data[1], batch_size=batch_size, shuffle=True
        )
    else:
        adapter = data_adapters.get_data_adapter(data, shuffle=True)
    if backend == "tensorflow":
        batches = adapter.get_tf_dataset
    elif backend == "torch":
        batches = adapter.get_torch_dataloader
    else:
        batches = adapter.get_jax_iterator
    while True:  # epoch after epoch, as `fit` does
        yield from batches()
        adapter.on_epoch_end()


class _EpochTimer:
    """Wall seconds of each epoch of `fit`, as a Keras callback."""

    def __init__(self):
        import keras

        timer = self

        class Callback(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                timer.start = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                timer.seconds.append(time.perf_counter() - timer.start)

        self.seconds = []
        self.callback = Callback()


def measure(example, backend, steps, cache_dir, smoke=False):
    """One row of the table: `example` on `backend` (in this process)."""
    import keras
    import numpy as np

    build = _neuronio if example == "neuronio" else _shd
    batch_size, data, model = build(cache_dir, smoke)
    # Each batch is dropped once made, as `fit` drops it after its step:
    # holding them all would add the page faults of fresh memory.
    if example == "neuronio":

        def make(index):
            return data[index % len(data)]

        fit_data = dict(x=data)
    else:
        x, y = data
        order = np.random.default_rng(0).permutation(len(y))

        def make(index):
            chosen = order[(index * batch_size) % len(y) :][:batch_size]
            return x[chosen], y[chosen]

        fit_data = dict(x=x, y=y, batch_size=batch_size)
    made = iter(range(steps + 1))
    numpy_ms = _timed(lambda: make(next(made)), steps + 1)
    batches = [make(index) for index in range(1, steps + 1)]
    iterator = _adapter_iterator(backend, data, batch_size)
    adapter_ms = _timed(lambda: next(iterator), steps + 1)

    def to_tensor(batch):
        return keras.tree.map_structure(keras.ops.convert_to_tensor, batch)

    to_tensor(batches[0])
    tensor_ms = _timed(lambda: to_tensor(batches[-1]), steps)
    turn = iter(range(10**9))

    def step():
        model.train_on_batch(*batches[next(turn) % len(batches)])

    _timed(step, 2)  # compiles
    step_ms = _timed(step, steps)

    class Premade(keras.utils.PyDataset):
        """The batches made above, again and again: a pipeline of ~0 ms."""

        def __len__(self):
            return len(batches)

        def __getitem__(self, index):
            return batches[index]

    def fit_ms(**fit_data):
        """ms per batch of `fit`'s second epoch (the first may compile)."""
        timer = _EpochTimer()
        model.fit(
            **fit_data,
            epochs=2,
            steps_per_epoch=steps,
            callbacks=[timer.callback],
            verbose=0,
        )
        return 1e3 * timer.seconds[-1] / steps

    # Taken in turns, the fastest of each: other work on the CPU slows both.
    premades, fits = [], []
    for _ in range(ROUNDS):
        premades.append(fit_ms(x=Premade()))
        fits.append(fit_ms(**fit_data))
    premade, fit = min(premades), min(fits)
    adapter = statistics.median(adapter_ms[1:])
    return {
        "example": example,
        "backend": backend,
        "batch_size": batch_size,
        "first batch ms": numpy_ms[0],
        "batch (numpy) ms": statistics.median(numpy_ms[1:]),
        "batch (fit's adapter) ms": adapter,
        "to tensor ms": statistics.median(tensor_ms),
        "train_on_batch ms": statistics.median(step_ms),
        "fit step ms (pre-made)": premade,
        "pipeline share": adapter / premade,
        "fit ms/batch": fit,
        "fit - pre-made": fit / premade - 1.0,
        "fit samples/s": 1e3 * batch_size / fit,
    }


def worker(backend, examples, steps, cache_dir, smoke):
    for example in examples:
        row = measure(example, backend, steps, cache_dir, smoke)
        print("RESULT " + json.dumps(row), flush=True)
    # TensorFlow's generator-fed tf.data can hang the interpreter's exit.
    sys.stderr.flush()
    os._exit(0)


def _cpu_name():
    try:
        out = subprocess.run(
            ["lscpu"], capture_output=True, text=True, check=False
        ).stdout
    except OSError:
        return platform.processor() or "unknown"
    for line in out.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _cell(column, value):
    if column in ("pipeline share", "fit - pre-made"):
        return f"{100 * value:.1f} %"
    if column == "fit samples/s":
        return f"{value:.1f}"
    if isinstance(value, float):
        return f"{value:.2f}" if value < 10 else f"{value:.1f}"
    return str(value)


def table(rows):
    """The rows as a markdown table."""
    lines = [
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    for row in rows:
        lines.append(
            "| " + " | ".join(_cell(c, row[c]) for c in COLUMNS) + " |"
        )
    return "\n".join(lines)


def _versions(backend):
    """Versions of Keras, the backend and NumPy, in a worker's process."""
    code = (
        "import importlib, keras, numpy; "
        f"m = importlib.import_module({backend!r}); "
        "print(keras.__version__, m.__version__, numpy.__version__)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=False,
        env=dict(os.environ, KERAS_BACKEND=backend),
    ).stdout.split()
    return out if len(out) == 3 else ["?", "?", "?"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--backends", default=",".join(BACKENDS), help="comma-separated"
    )
    parser.add_argument(
        "--examples", default=",".join(EXAMPLES), help="comma-separated"
    )
    parser.add_argument(
        "--steps", type=int, default=12, help="timed batches per column"
    )
    parser.add_argument(
        "--cache-dir",
        default=os.path.join(tempfile.gettempdir(), "keras_elm_bench_pipeline"),
        help="where the simulated and synthetic data are kept",
    )
    parser.add_argument(
        "--smoke", action="store_true", help="the examples' --smoke sizes"
    )
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    examples = [e for e in args.examples.split(",") if e]
    for example in examples:
        if example not in EXAMPLES:
            parser.error(f"--examples: {example!r} is not one of {EXAMPLES}")
    if args.steps < 2:
        parser.error("--steps must be at least 2")
    if args.worker:
        worker(args.worker, examples, args.steps, args.cache_dir, args.smoke)
        return
    os.makedirs(args.cache_dir, exist_ok=True)
    rows = []
    print(
        f"# {_cpu_name()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}"
    )
    for backend in args.backends.split(","):
        keras_version, backend_version, numpy_version = _versions(backend)
        print(
            f"# {backend}: keras {keras_version}, {backend} "
            f"{backend_version}, numpy {numpy_version}",
            flush=True,
        )
        command = [
            sys.executable,
            os.path.abspath(__file__),
            "--worker",
            backend,
            "--examples",
            ",".join(examples),
            "--steps",
            str(args.steps),
            "--cache-dir",
            args.cache_dir,
        ] + (["--smoke"] if args.smoke else [])
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            check=False,
            env=dict(os.environ, KERAS_BACKEND=backend),
        )
        found = [
            json.loads(line[len("RESULT ") :])
            for line in done.stdout.splitlines()
            if line.startswith("RESULT ")
        ]
        if done.returncode or len(found) != len(examples):
            print(done.stderr[-3000:], file=sys.stderr)
            print(f"# {backend}: worker failed ({done.returncode})")
        rows.extend(found)
    rows.sort(key=lambda row: (row["example"], row["backend"]))
    print(table(rows))


if __name__ == "__main__":
    main()
