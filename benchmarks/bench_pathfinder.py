"""Speed of the Pathfinder generator, in images per second per core.

    python benchmarks/bench_pathfinder.py           # a minute on 2 cores
    python benchmarks/bench_pathfinder.py --quick   # a few seconds
    python benchmarks/bench_pathfinder.py --difficulty easy

Times `keras_elm.data.pathfinder.generate` at 32, 64 and 128 px, in this
process (`workers=1`) and on every core (`workers=os.cpu_count()`, start-up
of the process pool included), and prints what the single-process rate
implies for 200,000 Path-X (128 px) images on 16 cores.
"""

import argparse
import os
import time

from keras_elm.data import pathfinder

COUNTS = {32: 200, 64: 100, 128: 100}
QUICK_COUNTS = {32: 16, 64: 8, 128: 4}
PATH_X_IMAGES = 200_000
PATH_X_CORES = 16


def measure(count, image_size, difficulty, workers):
    start = time.perf_counter()
    pathfinder.generate(
        count,
        image_size=image_size,
        difficulty=difficulty,
        seed=0,
        workers=workers,
        progress=False,
    )
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="a few images per size"
    )
    parser.add_argument(
        "--difficulty", default="hard", choices=tuple(pathfinder.DIFFICULTIES)
    )
    args = parser.parse_args()
    counts = QUICK_COUNTS if args.quick else COUNTS
    cores = os.cpu_count() or 1
    print(f"difficulty={args.difficulty}, {cores} cores")
    print(
        f"{'size':>5} {'workers':>7} {'images':>6} {'seconds':>8} "
        f"{'images/s':>9} {'images/s/core':>14}"
    )
    per_core = {}
    for image_size, count in counts.items():
        for workers in sorted({1, cores}):
            seconds = measure(count, image_size, args.difficulty, workers)
            rate = count / seconds
            if workers == 1:
                per_core[image_size] = rate
            print(
                f"{image_size:>5} {workers:>7} {count:>6} {seconds:>8.2f} "
                f"{rate:>9.1f} {rate / workers:>14.1f}"
            )
    minutes = PATH_X_IMAGES / (per_core[128] * PATH_X_CORES) / 60
    print(
        f"{PATH_X_IMAGES:,} Path-X images ({args.difficulty}) on "
        f"{PATH_X_CORES} cores at {per_core[128]:.1f} images/s/core: "
        f"{minutes:.1f} minutes"
    )


if __name__ == "__main__":
    main()
