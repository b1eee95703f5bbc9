"""One-hot inputs as a row lookup (`ELM(num_tokens=...)`) vs a one-hot tensor.

    python benchmarks/bench_tokens.py  # every case, 3 backends
    python benchmarks/bench_tokens.py --cases text --backends jax

`one_hot(x) @ W` is `W[x]`: with `num_tokens`, the fast path looks the first
layer's rows up and takes the trace after them, so the `(B, T, vocabulary)`
float tensor is never built. Each row trains one model for a few steps
(`train_on_batch`, Adam) in a process of its own, so that its peak resident
memory is its own:

- `num_tokens`: the task's builder, tokens into `ELM(num_tokens=...)`,
  which looks rows up where `num_tokens >= mlp_units / 2` (the `lookup`
  column) and one-hot encodes inside the layer otherwise;
- `one-hot`: the same ELM fed a one-hot float tensor (a frozen identity
  `Embedding`, `mask_zero` alike), which is what the model did before.

Cases: Text (IMDB bytes, 257 ids x 4,096 steps), ListOps (16 x 2,000),
Retrieval (two towers of 257 x 4,000) and, for the pixel tasks, Pathfinder
(16 grey levels x 1,024 steps), where the vocabulary is small.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time

BACKENDS = ("jax", "tensorflow", "torch")
# name: (builder, vocabulary, steps, classes, batch, two towers)
CASES = {
    "text": ("text", 257, 4096, 2, 4, False),
    "listops": ("listops", 16, 2000, 10, 8, False),
    "retrieval": ("retrieval", 257, 4000, 2, 2, True),
    "pathfinder": ("listops", 16, 1024, 2, 32, False),
}


def _one_hot_model(keras, keras_elm, vocabulary, steps, classes):
    tokens = keras.Input((steps,), dtype="int32")
    x = keras.layers.Embedding(
        vocabulary,
        vocabulary,
        mask_zero=True,
        embeddings_initializer="identity",
        trainable=False,
    )(tokens)
    x = keras_elm.ELM(150, memory_tau_max=2e3, name="elm")(x)
    return keras.Model(tokens, keras.layers.Dense(classes)(x))


def worker(case, variant, steps_timed):
    import keras
    import numpy as np

    import keras_elm

    builder, vocabulary, steps, classes, batch, towers = CASES[case]
    rng = np.random.default_rng(0)
    x = rng.integers(1, vocabulary, (batch, steps)).astype("int32")
    x[:, -steps // 8 :] = 0  # some end padding, as in the real data
    y = rng.integers(0, classes, batch)
    if towers:
        model = keras_elm.models.retrieval(steps)
        x = [x, x[::-1].copy()]
    elif variant == "num_tokens":
        model = getattr(keras_elm.models, builder)(steps)
        if classes != model.output_shape[-1]:
            model = keras_elm.models.token_classifier(
                vocabulary, classes, sequence_length=steps
            )
    else:
        model = _one_hot_model(keras, keras_elm, vocabulary, steps, classes)
    model.compile(
        keras.optimizers.Adam(2e-4),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    times = []
    for _ in range(steps_timed + 1):
        start = time.perf_counter()
        loss = model.train_on_batch(x, y)
        times.append(time.perf_counter() - start)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    elm = [layer for layer in model.layers if isinstance(layer, keras_elm.ELM)][
        0
    ]
    print(
        json.dumps(
            {
                "lookup": bool(elm.uses_token_lookup),
                "first": times[0],
                "median": float(np.median(times[1:])),
                "peak_gib": peak_kb / 2**20,
                "loss": float(np.asarray(loss).ravel()[0]),
            }
        )
    )


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", default=",".join(CASES))
    p.add_argument("--backends", default=",".join(BACKENDS))
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return worker(*args.worker, args.steps)
    print(
        f"{args.steps} timed training steps after the first; "
        f"{os.cpu_count()} CPU cores"
    )
    print(
        "| case | batch x steps x ids | backend | input | lookup | "
        "first step (s) | step (s, median) | peak RSS (GiB) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for case in args.cases.split(","):
        _, vocabulary, steps, _, batch, towers = CASES[case]
        variants = ("num_tokens",) if towers else ("num_tokens", "one-hot")
        shape = f"{batch}{' x 2' if towers else ''} x {steps} x {vocabulary}"
        for backend in args.backends.split(","):
            for variant in variants:
                env = {
                    **os.environ,
                    "KERAS_BACKEND": backend,
                    "TF_CPP_MIN_LOG_LEVEL": "3",
                }
                result = subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        "--worker",
                        case,
                        variant,
                        "--steps",
                        str(args.steps),
                    ],
                    env=env,
                    capture_output=True,
                    text=True,
                )
                lines = [
                    ln
                    for ln in result.stdout.splitlines()
                    if ln.startswith("{")
                ]
                row = f"| {case} | {shape} | {backend} | {variant} |"
                if result.returncode or not lines:
                    print(
                        f"{row} failed: {result.stderr.strip()[-300:]} | | | |"
                    )
                    continue
                r = json.loads(lines[-1])
                print(
                    f"{row} {'yes' if r['lookup'] else 'no'} | "
                    f"{r['first']:.2f} | {r['median']:.3f} | "
                    f"{r['peak_gib']:.2f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
