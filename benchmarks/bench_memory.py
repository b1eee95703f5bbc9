"""Peak resident memory of one ListOps training step, per backend and size.

    python benchmarks/bench_memory.py                      # about 1-2 min
    python benchmarks/bench_memory.py --configs tensorflow:8:500,jax:8:500

Each setting runs in its own process (the backend is chosen before Keras
is imported): it builds `keras_elm.models.listops(sequence_length=L)`,
compiles it as `examples/listops.py` does (Adam, cross-entropy on logits,
the backend's default `jit_compile`), then runs one `train_on_batch` on
`B` random full-length sequences (tokens 1-15, no padding: the worst
case). It reports the process's resident memory after the model is built
(`base`), its peak over the step (`peak`, `ru_maxrss`) and their difference
(`step`), which includes the one-time XLA or graph compilation. The step
grows with `B * L`; the last column extrapolates the slope between the two
largest `B * L` of each backend and fast-path setting to the default
ListOps run, batch 384 x 2,000 tokens. `--jobs` settings run at once
(default 2): each peak is its own process's, so they do not add up, but
the step times do slow down.

Before and after a change to the TensorFlow core, in one table:

    git show HEAD:keras_elm/scan/tensorflow_core.py > /tmp/core_head.py
    python benchmarks/bench_memory.py --jobs 1 --steps 3 \
        --configs tensorflow:32:2000,tensorflow:64:2000 \
        --baseline-core /tmp/core_head.py

`--baseline-core FILE` measures each TensorFlow fast-path setting twice,
back to back: with FILE in place of `keras_elm/scan/tensorflow_core.py`
(path "fast (baseline)") and with the working tree's core. `--steps N`
times N more steps after the first and reports their median (the first
step's time includes compilation); the peak is still the first step's.
"""

import argparse
import concurrent.futures
import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import time

DEFAULT_CONFIGS = (
    "tensorflow:8:2000,tensorflow:32:2000,"
    "tensorflow:8:2000:slow,tensorflow:32:2000:slow,"
    "jax:8:2000,jax:32:2000,torch:8:2000,torch:32:2000"
)


def rss_mib():
    """The current resident set size, in MiB (Linux)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def use_core(path):
    """Puts the file `path` in place of `keras_elm.scan.tensorflow_core`."""
    import keras_elm.scan

    name = "keras_elm.scan.tensorflow_core"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules[name] = module
    keras_elm.scan.tensorflow_core = module


def child(backend, batch, length, fast, steps=0, core=None):
    os.environ["KERAS_BACKEND"] = backend
    import keras
    import numpy as np

    import keras_elm

    if core:
        use_core(core)

    kwargs = {} if fast else {"use_fast_path": False}
    model = keras_elm.models.listops(sequence_length=length, **kwargs)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    rng = np.random.default_rng(0)
    tokens = rng.integers(1, 16, (batch, length)).astype("int32")
    labels = rng.integers(0, 10, (batch,)).astype("int32")
    base = rss_mib()
    start = time.perf_counter()
    model.train_on_batch(tokens, labels)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        model.train_on_batch(tokens, labels)
        times.append(time.perf_counter() - start)
    median = statistics.median(times) if times else None
    print(
        json.dumps(dict(base=base, peak=peak, seconds=seconds, median=median))
    )


def run(backend, batch, length, fast, steps=0, core=None):
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2"}
    cmd = [
        sys.executable,
        __file__,
        "--child",
        backend,
        str(batch),
        str(length),
        "fast" if fast else "slow",
        str(steps),
        core or "",
    ]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode or not lines:
        tail = out.stderr.strip().splitlines()[-1:] or ["?"]
        return dict(error=f"exit {out.returncode}: {tail[0][:80]}")
    return json.loads(lines[-1])


def parse(configs):
    parsed = []
    for item in configs.split(","):
        parts = item.split(":")
        if (
            len(parts) not in (3, 4)
            or parts[0] not in ("tensorflow", "jax", "torch")
            or (len(parts) == 4 and parts[3] not in ("fast", "slow"))
        ):
            raise ValueError(
                f"Argument `--configs` has a bad item {item!r}: expected "
                "backend:batch:length[:fast|slow], e.g. tensorflow:8:500."
            )
        parsed.append(
            (
                parts[0],
                int(parts[1]),
                int(parts[2]),
                len(parts) == 3 or parts[3] == "fast",
            )
        )
    return parsed


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _, _, backend, batch, length, path, steps, core = sys.argv
        child(
            backend, int(batch), int(length), path == "fast", int(steps), core
        )
        return
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--configs",
        default=DEFAULT_CONFIGS,
        help="comma-separated backend:batch:length[:fast|slow]",
    )
    p.add_argument(
        "--jobs",
        type=int,
        default=2,
        help="settings measured at once (each in its own "
        "process; the peaks do not add up)",
    )
    p.add_argument(
        "--target", default="384:2000", help="batch:length to extrapolate to"
    )
    p.add_argument(
        "--steps",
        type=int,
        default=0,
        help="steps timed after the first (median reported)",
    )
    p.add_argument(
        "--baseline-core",
        default=None,
        metavar="FILE",
        help="also run each TensorFlow fast-path setting with "
        "FILE in place of keras_elm/scan/tensorflow_core.py",
    )
    args = p.parse_args()
    if args.baseline_core and not os.path.isfile(args.baseline_core):
        raise ValueError(
            f"Argument `--baseline-core` is {args.baseline_core!r}: "
            "expected an existing file."
        )
    if args.steps < 0:
        raise ValueError(
            f"Argument `--steps` is {args.steps}: expected an integer >= 0."
        )
    target_b, target_l = (int(v) for v in args.target.split(":"))
    print(
        "| backend | path | batch | length | base (MiB) | peak (MiB) | "
        f"step (MiB) | KiB per B*L | first step (s) | median step (s) | "
        f"est. peak at {target_b}x{target_l} (GiB) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    points = {}
    configs = []
    for backend, batch, length, fast in parse(args.configs):
        if args.baseline_core and backend == "tensorflow" and fast:
            configs.append((backend, batch, length, fast, args.baseline_core))
        configs.append((backend, batch, length, fast, None))
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        results = [
            pool.submit(run, *config[:4], args.steps, config[4])
            for config in configs
        ]
    for (backend, batch, length, fast, core), future in zip(configs, results):
        r = future.result()
        path = ("fast" if fast else "slow") + (" (baseline)" if core else "")
        if "error" in r:
            print(
                f"| {backend} | {path} | {batch} | {length} | "
                f"{r['error']} ||||||",
                flush=True,
            )
            continue
        step = r["peak"] - r["base"]
        key = (backend, fast, core)
        points.setdefault(key, []).append((batch * length, step, r["base"]))
        pts = sorted(points[key])
        estimate = ""
        median = "" if r.get("median") is None else f"{r['median']:.2f}"
        if len(pts) >= 2 and pts[-1][0] > pts[-2][0]:
            (n0, s0, _), (n1, s1, _) = pts[-2], pts[-1]
            slope = (s1 - s0) / (n1 - n0)
            est = r["base"] + s1 + slope * (target_b * target_l - n1)
            estimate = f"{est / 1024:.1f}"
        print(
            f"| {backend} | {path} | {batch} | {length} | {r['base']:.0f} "
            f"| {r['peak']:.0f} | {step:.0f} | "
            f"{step * 1024 / (batch * length):.1f} | {r['seconds']:.1f} | "
            f"{median} | {estimate} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
