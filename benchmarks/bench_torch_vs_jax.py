"""The PyTorch fast path against JAX's at the NeuronIO config, side by side.

One worker process per backend (`KERAS_BACKEND` must be set before Keras is
imported), run in alternation over several rounds, the order swapped every
round, so that a slow spell of this shared machine lands on both backends.
Each worker times `model.train_on_batch` (forward, backward and Adam) of the
NeuronIO Branch-ELM fast path (d_m = 100, batch 8, T = 500, as in
`bench_elm.py`) after warm-up, on backend tensors made once, and reports
the median of its repeats; the table gives the median over rounds and the
torch/JAX ratio round by round.

    python benchmarks/bench_torch_vs_jax.py                  # 5 rounds
    python benchmarks/bench_torch_vs_jax.py --rounds 3 --repeats 10
    python benchmarks/bench_torch_vs_jax.py --profile        # torch ops

`--profile` runs the torch step under `torch.profiler` in this process and
prints its top ops by self CPU time. `--passive` adds a third worker, torch
with `OMP_WAIT_POLICY=PASSIVE` (OpenMP threads sleep instead of spinning
while they wait): on this shared 2-core machine, torch's default spinning
threads can stall for a scheduler slice whenever another process holds a
core.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_elm import CONFIGS  # noqa: E402
from bench_elm import OUTPUTS  # noqa: E402

CONFIG = "neuronio_dm100_b8"
BACKENDS = ("torch", "jax")


def build(config=CONFIG):
    """The bench's fast-path ELM model, compiled, and one batch `(x, y)`.

    Args:
        config: a name of `bench_elm.CONFIGS`.

    Returns:
        `(model, x, y)`, with `x` and `y` backend tensors.
    """
    import keras
    import numpy as np

    import keras_elm

    inputs, branches, spb, routing, units, batch, steps = CONFIGS[config]
    rng = np.random.default_rng(0)
    x = (rng.random((batch, steps, inputs)) < 0.01).astype("float32")
    y = rng.standard_normal((batch, steps, OUTPUTS)).astype("float32")
    x = keras.ops.convert_to_tensor(x)
    y = keras.ops.convert_to_tensor(y)
    keras.utils.set_random_seed(0)
    inp = keras.Input((steps, inputs), batch_size=batch)
    out = keras_elm.ELM(
        units,
        output_units=OUTPUTS,
        num_branches=branches,
        synapses_per_branch=spb,
        routing=routing,
        memory_tau_max=150.0,
        return_sequences=True,
        use_fast_path=True,
    )(inp)
    model = keras.Model(inp, out)
    model.compile(keras.optimizers.Adam(1e-3), "mse")
    return model, x, y


def worker(repeats, warmup):
    """Prints one JSON line: the backend and its train step times (s)."""
    import keras

    model, x, y = build()
    for _ in range(warmup):
        model.train_on_batch(x, y)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.train_on_batch(x, y)
        times.append(time.perf_counter() - start)
    print(json.dumps(dict(backend=keras.backend.backend(), times=times)))


def profile(steps, rows):
    """Prints the top ops of the torch train step by self CPU time."""
    os.environ["KERAS_BACKEND"] = "torch"
    import torch.profiler

    model, x, y = build()
    for _ in range(3):
        model.train_on_batch(x, y)
    with torch.profiler.profile(
        activities=[torch.profiler.ProfilerActivity.CPU]
    ) as prof:
        for _ in range(steps):
            model.train_on_batch(x, y)
    print(
        f"torch.profiler, {steps} train steps of {CONFIG}; times are totals "
        f"over the {steps} steps"
    )
    print(
        prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows)
    )


# Row name: (backend, extra environment).
WORKERS = {
    "torch": ("torch", {}),
    "jax": ("jax", {}),
    "torch, OMP_WAIT_POLICY=PASSIVE": ("torch", {"OMP_WAIT_POLICY": "PASSIVE"}),
}


def run_worker(name, repeats, warmup):
    backend, extra = WORKERS[name]
    env = {
        **os.environ,
        **extra,
        "KERAS_BACKEND": backend,
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    proc = subprocess.run(
        [
            sys.executable,
            os.path.abspath(__file__),
            "--worker",
            "--repeats",
            str(repeats),
            "--warmup",
            str(warmup),
        ],
        env=env,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        capture_output=True,
        text=True,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode or not lines:
        raise RuntimeError(f"{name} worker failed:\n{proc.stderr[-3000:]}")
    return statistics.median(json.loads(lines[-1])["times"])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--passive", action="store_true")
    parser.add_argument("--profile-steps", type=int, default=5)
    parser.add_argument("--profile-rows", type=int, default=25)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.repeats, args.warmup)
        return
    if args.profile:
        profile(args.profile_steps, args.profile_rows)
        return
    names = list(BACKENDS)
    if args.passive:
        names.append("torch, OMP_WAIT_POLICY=PASSIVE")
    results = {name: [] for name in names}
    for index in range(args.rounds):
        order = names if index % 2 == 0 else names[::-1]
        for name in order:
            results[name].append(run_worker(name, args.repeats, args.warmup))
        print(
            f"round {index + 1}: "
            + ", ".join(f"{n} {1e3 * results[n][-1]:.1f} ms" for n in names),
            flush=True,
        )
    ms = {name: [1e3 * t for t in times] for name, times in results.items()}
    print(
        f"\n{CONFIG}, train_on_batch, median of {args.repeats} steps after "
        f"{args.warmup} warm-up per worker, {args.rounds} rounds\n"
    )
    rounds = " | ".join(f"round {i + 1}" for i in range(args.rounds))
    print(f"| worker | median ms | {rounds} |")
    print("|---" * (args.rounds + 2) + "|")
    for name in names:
        row = " | ".join(f"{v:.1f}" for v in ms[name])
        print(f"| {name} | {statistics.median(ms[name]):.1f} | {row} |")
    for name in names:
        if name == "jax":
            continue
        ratios = [t / j for t, j in zip(ms[name], ms["jax"])]
        row = " | ".join(f"{v:.2f}x" for v in ratios)
        print(f"| {name} / JAX | {statistics.median(ratios):.2f}x | {row} |")


if __name__ == "__main__":
    main()
