"""Speed and memory of the ELM layer on every backend, side by side.

Runs one worker process per (backend, configuration), because
`KERAS_BACKEND` must be set before Keras is imported and because the peak
resident memory of a process is the memory figure reported. Prints a table
and writes `benchmarks/RESULTS.md` (or `--output`).

    python benchmarks/bench_elm.py                 # everything (~30 min)
    python benchmarks/bench_elm.py --quick         # fewer repetitions
    python benchmarks/bench_elm.py --configs neuronio_dm100_b8 --backends jax
    python benchmarks/bench_elm.py --configs neuronio_dm100_b8 --rounds 5 \
        --models elm_fast,elm_generic,torch_per_step_loop   # the targets

Each row: median seconds of one forward pass (`predict_on_batch`) and of one
training step (`train_on_batch`, Adam + MSE), after warm-up (compilation is
excluded). The FLOP floor is the matmul work of the hoisted design divided
by the machine's measured matmul rate on that backend.
"""

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

CONFIGS = {
    # name: (inputs, branches, synapses/branch, routing, d_m, batch, steps)
    "neuronio_dm15_b8": (1278, 45, 100, "neuronio", 15, 8, 500),
    "neuronio_dm15_b32": (1278, 45, 100, "neuronio", 15, 32, 500),
    "neuronio_dm100_b8": (1278, 45, 100, "neuronio", 100, 8, 500),
    "neuronio_dm100_b32": (1278, 45, 100, "neuronio", 100, 32, 500),
    "shd_adding": (700, 700, 1, None, 100, 8, 200),
    "pathx": (1, 1, 1, None, 100, 2, 16384),
}
OUTPUTS = 2
BACKENDS = ("jax", "tensorflow", "torch")
MODELS = ("elm_fast", "elm_generic", "lstm", "gru", "torch_per_step_loop")
# Configurations timed with one run after one warm-up: their slow baselines
# take seconds to a minute a step.
LONG_CONFIGS = ("pathx",)
# Left out because one step takes longer than a benchmark run can wait:
# Keras's torch LSTM and GRU, eager, did not finish one Path-X step in
# 10 minutes on the 2-core CPU.
SKIPPED = {
    ("pathx", "torch", "lstm"): "over 10 min a step on CPU",
    ("pathx", "torch", "gru"): "over 10 min a step on CPU",
}


def flops_forward(config):
    inputs, branches, spb, routing, units, batch, steps = config
    hidden = 2 * units
    per_row = (
        branches * hidden + units * hidden + hidden * units + units * OUTPUTS
    )
    per_row += inputs * branches if routing else inputs
    return 2.0 * batch * steps * per_row


def matched_units(kind, inputs, target):
    """Units of an LSTM/GRU (+ Dense readout) with about `target` params."""
    best = None
    for k in range(1, 1024):
        gates = 4 if kind == "lstm" else 3
        bias = k if kind == "lstm" else 2 * k
        params = gates * (k * (inputs + k) + bias) + k * OUTPUTS + OUTPUTS
        if best is None or abs(params - target) < abs(best[1] - target):
            best = (k, params)
    return best


def trainable_params(model):
    import numpy as np

    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


def median_time(fn, repeats, warmup=2):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    times.sort()
    return times[len(times) // 2]


def torch_reference_step(config, repeats):
    """The per-step PyTorch loop the authors' code runs, from the equations."""
    import torch

    from keras_elm.routing import neuronio_routing

    inputs, branches, spb, routing, units, batch, steps = config
    hidden = 2 * units
    synapses = branches * spb
    # On the GPU where there is one, as the authors' code runs.
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.set_default_device(device)
    if routing:
        idx, mask = neuronio_routing(inputs, branches, spb)
        idx = torch.tensor(idx, dtype=torch.long)
        mask = torch.tensor(mask)
    g = torch.Generator(device=device).manual_seed(0)
    params = {
        "w_s": torch.full((synapses,), 0.5),
        "w1": torch.randn(branches + units, hidden, generator=g) * 0.05,
        "b1": torch.zeros(hidden),
        "w2": torch.randn(hidden, units, generator=g) * 0.05,
        "b2": torch.zeros(units),
        "wy": torch.randn(units, OUTPUTS, generator=g) * 0.05,
        "by": torch.zeros(OUTPUTS),
    }
    for p in params.values():
        p.requires_grad_(True)
    tau_m = torch.logspace(0, 3, units)
    kappa_m = torch.exp(-1.0 / tau_m)
    kappa_s = torch.exp(torch.tensor(-1.0 / 5.0))
    optimizer = torch.optim.Adam(params.values(), lr=1e-3)
    x = (torch.rand(batch, steps, inputs, generator=g) < 0.01).float()
    target = torch.randn(batch, steps, OUTPUTS, generator=g)

    def forward():
        p = params
        s = torch.zeros(batch, synapses)
        m = torch.zeros(batch, units)
        w_s = torch.relu(p["w_s"])
        ys = []
        for t in range(steps):
            x_t = x[:, t]
            if routing:
                x_t = x_t[:, idx] * mask
            s = kappa_s * s + w_s * x_t
            b = s.view(batch, branches, spb).sum(-1)
            h = torch.relu(torch.cat([b, kappa_m * m], -1) @ p["w1"] + p["b1"])
            delta = 1.7159 * torch.tanh(2.0 / 3.0 * (h @ p["w2"] + p["b2"]))
            m = kappa_m * m + 5.0 * (1 - kappa_m) * delta
            ys.append(m @ p["wy"] + p["by"])
        return torch.stack(ys, 1)

    def train():
        optimizer.zero_grad()
        loss = torch.mean((forward() - target) ** 2)
        loss.backward()
        optimizer.step()

    def infer():
        with torch.no_grad():
            forward()

    def synced(fn):
        def run():
            fn()
            if device == "cuda":
                torch.cuda.synchronize()

        return run

    return (
        median_time(synced(infer), repeats, 1),
        median_time(synced(train), repeats, 1),
    )


def _on_gpu(backend):
    if backend == "torch":
        import torch

        return torch.cuda.is_available()
    if backend == "jax":
        import jax

        return jax.default_backend() == "gpu"
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def worker(backend, name, repeats, models=MODELS):
    import keras
    import numpy as np

    import keras_elm

    config = CONFIGS[name]
    inputs, branches, spb, routing, units, batch, steps = config
    rng = np.random.default_rng(0)
    x = (rng.random((batch, steps, inputs)) < 0.01).astype("float32")
    if name == "pathx":
        x = rng.random((batch, steps, inputs)).astype("float32")
    y = rng.standard_normal((batch, steps, OUTPUTS)).astype("float32")
    # Backend tensors made once, as the per-step PyTorch loop has them: a
    # NumPy batch would add its host conversion (about 20 ms for the 20 MB
    # NeuronIO batch on JAX) to every step, which `fit` overlaps with
    # compute through its data pipeline.
    x = keras.ops.convert_to_tensor(x)
    y = keras.ops.convert_to_tensor(y)

    a = keras.ops.ones((1024, 1024))
    matmul = lambda: keras.ops.convert_to_numpy(keras.ops.matmul(a, a)[0, 0])  # noqa
    peak = 2 * 1024**3 / median_time(matmul, 5)

    def build(kind):
        keras.utils.set_random_seed(0)
        inp = keras.Input((steps, inputs), batch_size=batch)
        if kind.startswith("elm"):
            out = keras_elm.ELM(
                units,
                output_units=OUTPUTS,
                num_branches=branches,
                synapses_per_branch=spb,
                routing=routing,
                memory_tau_max=150.0,
                return_sequences=True,
                use_fast_path=(kind == "elm_fast"),
            )(inp)
        else:
            target = elm_params
            k, _ = matched_units(kind, inputs, target)
            rnn = keras.layers.LSTM if kind == "lstm" else keras.layers.GRU
            out = keras.layers.Dense(OUTPUTS)(
                rnn(k, return_sequences=True)(inp)
            )
        model = keras.Model(inp, out)
        model.compile(keras.optimizers.Adam(1e-3), "mse")
        return model

    rows = []
    elm_params = None
    on_gpu = _on_gpu(backend)
    kinds = [
        k
        for k in models
        if k != "torch_per_step_loop"
        and (on_gpu or (name, backend, k) not in SKIPPED)
    ]
    for kind in kinds:
        model = build(kind)
        if kind == "elm_fast":
            elm_params = trainable_params(model)
        reps = 1 if name in LONG_CONFIGS else repeats
        warmup = 1 if name in LONG_CONFIGS else 2
        if kind == "elm_generic":
            # Seconds a step on some backends: fewer runs keep the total sane.
            reps, warmup = min(reps, 2), 1
        forward = median_time(lambda: model.predict_on_batch(x), reps, 1)
        train = median_time(lambda: model.train_on_batch(x, y), reps, warmup)
        rows.append(
            dict(
                model=kind,
                params=trainable_params(model),
                forward=forward,
                train=train,
            )
        )
    if backend == "torch" and "torch_per_step_loop" in models:
        import torch

        torch.set_num_threads(os.cpu_count() or 1)
        forward, train = torch_reference_step(
            config, 1 if name in LONG_CONFIGS else max(1, repeats // 2)
        )
        rows.append(
            dict(
                model="torch_per_step_loop",
                params=elm_params,
                forward=forward,
                train=train,
            )
        )
    flops = flops_forward(config)
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(
        json.dumps(
            dict(
                backend=backend,
                config=name,
                rows=rows,
                flops_forward=flops,
                matmul_flops_per_s=peak,
                peak_rss_gib=peak_rss,
            )
        )
    )


def format_table(results):
    lines = [
        "| config | backend | model | params | forward ms | train ms | "
        "train vs torch loop | fast vs generic | FLOP-floor train ms | "
        "floor/train | peak RSS GiB |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    torch_loop = {}
    for r in results:
        for row in r["rows"]:
            if row["model"] == "torch_per_step_loop":
                torch_loop[r["config"]] = row["train"]
    for r in results:
        generic = {row["model"]: row for row in r["rows"]}.get("elm_generic")
        floor = 3 * r["flops_forward"] / r["matmul_flops_per_s"]
        for row in r["rows"]:
            loop = torch_loop.get(r["config"])
            vs_loop = f"{loop / row['train']:.1f}x" if loop else "n/a"
            vs_generic = (
                f"{generic['train'] / row['train']:.1f}x"
                if generic and row["model"] == "elm_fast"
                else ""
            )
            is_fast = row["model"] == "elm_fast"
            lines.append(
                f"| {r['config']} | {r['backend']} | {row['model']} | "
                f"{row['params']} | {1e3 * row['forward']:.1f} | "
                f"{1e3 * row['train']:.1f} | {vs_loop} | {vs_generic} | "
                f"{1e3 * floor:.1f} | "
                f"{(floor / row['train'] if is_fast else float('nan')):.2f} | "
                f"{r['peak_rss_gib']:.2f} |"
            )
    return "\n".join(lines)


def run_round(args, repeats, root):
    """One worker process per (config, backend); their parsed results."""
    results = []
    for name in args.configs.split(","):
        for backend in args.backends.split(","):
            env = {
                **os.environ,
                "KERAS_BACKEND": backend,
                "TF_CPP_MIN_LOG_LEVEL": "3",
            }
            proc = subprocess.run(
                [
                    sys.executable,
                    os.path.abspath(__file__),
                    "--worker",
                    backend,
                    name,
                    "--repeats",
                    str(repeats),
                    "--models",
                    args.models,
                ],
                env=env,
                cwd=root,
                capture_output=True,
                text=True,
            )
            line = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
            if proc.returncode or not line:
                print(f"{name} on {backend} failed:\n{proc.stderr[-3000:]}")
                continue
            results.append(json.loads(line[-1]))
            print(f"done: {name} on {backend}", flush=True)
    return results


def merge_rounds(rounds):
    """Per (config, backend, model): the median over rounds of its times."""
    merged = {}
    for results in rounds:
        for r in results:
            key = (r["config"], r["backend"])
            entry = merged.setdefault(key, dict(r, rows=[], _runs=[]))
            entry["_runs"].append(r)
    out = []
    for entry in merged.values():
        runs = entry.pop("_runs")
        models = {}
        for r in runs:
            for row in r["rows"]:
                models.setdefault(row["model"], []).append(row)
        entry["rows"] = [
            dict(
                rows[0],
                forward=statistics.median([row["forward"] for row in rows]),
                train=statistics.median([row["train"] for row in rows]),
                train_rounds=[row["train"] for row in rows],
            )
            for rows in models.values()
        ]
        entry["matmul_flops_per_s"] = statistics.median(
            [r["matmul_flops_per_s"] for r in runs]
        )
        entry["peak_rss_gib"] = max(r["peak_rss_gib"] for r in runs)
        entry["rounds"] = len(runs)
        out.append(entry)
    return out


def round_ratios(results):
    """Lines giving, round by round, each fast path's speed-up on the loop."""
    loops = {}
    for r in results:
        for row in r["rows"]:
            if row["model"] == "torch_per_step_loop":
                loops[r["config"]] = row["train_rounds"]
    lines = []
    for r in results:
        loop = loops.get(r["config"])
        for row in r["rows"]:
            if row["model"] != "elm_fast" or not loop:
                continue
            pairs = zip(row["train_rounds"], loop)
            lines.append(
                f"- {r['config']}, {r['backend']} fast path vs the torch "
                "loop, round by round (train ms / loop ms = speed-up): "
                + ", ".join(
                    f"{1e3 * fast:.1f} / {1e3 * slow:.0f} = {slow / fast:.1f}x"
                    for fast, slow in pairs
                )
                + "."
            )
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--models",
        default=",".join(MODELS),
        help="subset of " + ",".join(MODELS),
    )
    parser.add_argument("--quick", action="store_true", help="3 repeats")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="run every worker this many times, in alternation, and report "
        "the median over rounds: this machine's speed drifts over minutes, "
        "so rounds keep a slow spell from landing on one backend only",
    )
    parser.add_argument(
        "--output",
        default=os.path.join(
            os.path.dirname(os.path.abspath(__file__)), "RESULTS.md"
        ),
    )
    parser.add_argument(
        "--worker",
        nargs=2,
        metavar=("BACKEND", "CONFIG"),
        help=argparse.SUPPRESS,
    )
    args = parser.parse_args()
    repeats = 3 if args.quick else args.repeats
    if args.worker:
        worker(*args.worker, repeats, args.models.split(","))
        return
    rounds = []
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for round_index in range(args.rounds):
        rounds.append(run_round(args, repeats, root))
        if args.rounds > 1:
            print(f"round {round_index + 1} of {args.rounds} done", flush=True)
    results = merge_rounds(rounds)
    table = format_table(results)
    print(table)
    header = (
        f"# Benchmark results\n\nMachine: {platform.machine()}, "
        f"{os.cpu_count()} CPU cores, {platform.platform()}; "
        f"`python benchmarks/bench_elm.py {' '.join(sys.argv[1:])}` on "
        f"{time.strftime('%Y-%m-%d')}. Median of {repeats} runs after "
        "warm-up; one process per (config, backend), side by side in one "
        "run"
        + (
            f"; {args.rounds} rounds in alternation, median over rounds"
            if args.rounds > 1
            else ""
        )
        + ".\n\n"
    )
    notes = [
        *(round_ratios(results) if args.rounds > 1 else []),
        *(
            f"- {name}: one run after one warm-up."
            for name in LONG_CONFIGS
            if name in args.configs.split(",")
        ),
        *(
            f"- Not run on CPU: {model} on {backend} for {config} ({why})."
            for (config, backend, model), why in SKIPPED.items()
            if config in args.configs.split(",")
        ),
    ]
    with open(args.output, "w") as f:
        f.write(header + table + "\n\n" + "\n".join(notes) + "\n")


if __name__ == "__main__":
    main()
