"""Training-step time and peak memory of the task models, on each backend.

    python benchmarks/bench_tasks.py                      # Path-X, batch 8
    python benchmarks/bench_tasks.py --task pathfinder --batch-size 64

Each backend runs in its own process (KERAS_BACKEND is fixed at import):
the paper's model of the task, Adam with cosine decay as in the examples,
`train_on_batch` on generated images. Prints one table: the first step
(which compiles), the median of the next steps, and the process's peak
resident memory.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time

BACKENDS = ("jax", "tensorflow", "torch")


def worker(task_name, batch_size, steps, remat):
    import numpy as np

    import keras_elm
    from keras_elm import tasks
    from keras_elm.data import pathfinder

    task = tasks.get(task_name)
    size = 128 if task_name == "pathfinder_x" else 32
    images, labels = pathfinder.generate(
        batch_size, image_size=size, seed=0, workers=1, progress=False
    )
    kwargs = {"remat_chunk_size": remat} if remat else {}
    model = task.build_model(**kwargs)
    model.compile(**tasks.compile_arguments(task, decay_steps=steps + 1))
    times = []
    for _ in range(steps + 1):
        start = time.perf_counter()
        loss = model.train_on_batch(images, labels)
        times.append(time.perf_counter() - start)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "first": times[0],
                "median": float(np.median(times[1:])),
                "peak_gib": peak_kb / 2**20,
                "loss": float(np.asarray(loss).ravel()[0]),
                "params": model.count_params(),
                "keras_elm": keras_elm.__version__,
            }
        )
    )


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--task", default="pathfinder_x", choices=("pathfinder", "pathfinder_x")
    )
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--backends", default=",".join(BACKENDS))
    p.add_argument("--remat-chunk-size", type=int, default=None)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return worker(
            args.task, args.batch_size, args.steps, args.remat_chunk_size
        )
    print(
        f"{args.task}, batch {args.batch_size}, {args.steps} timed steps "
        f"after the first; {os.cpu_count()} CPU cores"
    )
    print("| backend | first step (s) | step (s, median) | peak RSS (GiB) |")
    print("|---|---|---|---|")
    for backend in args.backends.split(","):
        command = [
            sys.executable,
            __file__,
            "--worker",
            "--task",
            args.task,
            "--batch-size",
            str(args.batch_size),
            "--steps",
            str(args.steps),
        ]
        if args.remat_chunk_size and backend == "jax":
            command += ["--remat-chunk-size", str(args.remat_chunk_size)]
        env = {
            **os.environ,
            "KERAS_BACKEND": backend,
            "TF_CPP_MIN_LOG_LEVEL": "3",
        }
        result = subprocess.run(
            command, env=env, capture_output=True, text=True
        )
        lines = [ln for ln in result.stdout.splitlines() if ln.startswith("{")]
        if result.returncode or not lines:
            print(f"| {backend} | failed: {result.stderr.strip()[-200:]} | | |")
            continue
        r = json.loads(lines[-1])
        print(
            f"| {backend} | {r['first']:.2f} | {r['median']:.3f} | "
            f"{r['peak_gib']:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
