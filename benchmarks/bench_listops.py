"""Speed of the ListOps generator and loader, in trees per second.

    python benchmarks/bench_listops.py           # about a minute on 2 cores
    python benchmarks/bench_listops.py --quick   # a few seconds

Times `keras_elm.data.listops.generate` for LRA's bounds (500-2000 tokens)
and the short ones (50-200), in this process (`workers=1`) and on every
core (process pool start-up included), measures the share of candidate
trees the bounds accept, times `write_tsv` and `load` on the LRA-bound
trees, and prints what the rates imply for LRA's 96,000 training trees.
"""

import argparse
import os
import tempfile
import time

import numpy as np

from keras_elm.data import listops

BOUNDS = {"LRA": (500, 2000), "short": (50, 200)}
LRA_TREES = 96_000
CANDIDATES = 20_000


def acceptance(min_length, max_length):
    """Share of LRA-recipe candidate trees strictly within the bounds."""
    rng = np.random.default_rng(0)
    _, lengths, complete = listops._draw_levels(
        rng, CANDIDATES, max_length, 10, 10
    )
    return float(np.mean(complete & (lengths > min_length)))


def timed(function, *args, **kwargs):
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="200 trees per setting instead of 2,000",
    )
    args = parser.parse_args()
    count = 200 if args.quick else 2000
    cores = listops._default_workers()
    print(f"{count} trees per row, {cores} cores")
    print(
        f"{'bounds':>9} {'accepted':>8} {'workers':>7} {'seconds':>8} "
        f"{'trees/s':>9} {'trees/s/core':>12} {'tokens/tree':>11}"
    )
    total_rate = {}
    sources = None
    for name, (low, high) in BOUNDS.items():
        share = acceptance(low, high)
        for workers in sorted({1, cores}):
            (trees, _), seconds = timed(
                listops.generate,
                count,
                seed=0,
                min_length=low,
                max_length=high,
                workers=workers,
                progress=False,
            )
            rate = count / seconds
            total_rate[name, workers] = rate
            mean_length = np.mean([len(tree.split()) for tree in trees])
            print(
                f"{low:>4}-{high:<4} {share:>8.1%} {workers:>7} "
                f"{seconds:>8.2f} {rate:>9.0f} {rate / workers:>12.0f} "
                f"{mean_length:>11.0f}"
            )
            if name == "LRA":
                sources = trees
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, listops.FILES["train"])
        targets = np.zeros(len(sources), np.int32)
        _, write_seconds = timed(listops.write_tsv, path, sources, targets)
        _, load_seconds = timed(listops.load, directory, split="train")
    print(
        f"LRA-bound trees: write_tsv {count / write_seconds:.0f} trees/s, "
        f"load {count / load_seconds:.0f} trees/s (one process)"
    )
    for workers in sorted({1, cores}):
        minutes = LRA_TREES / total_rate["LRA", workers] / 60
        print(
            f"{LRA_TREES:,} LRA trees with workers={workers}: "
            f"{minutes:.1f} minutes to generate"
        )
    print(
        f"and {LRA_TREES / (count / write_seconds) / 60:.1f} minutes to "
        f"write, {LRA_TREES / (count / load_seconds) / 60:.1f} to load"
    )


if __name__ == "__main__":
    main()
