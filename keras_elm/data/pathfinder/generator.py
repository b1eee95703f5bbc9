"""Pathfinder data sets drawn on every core, cached as one `.npz`."""

import os

import numpy as np

from keras_elm.checks import check_choice as _check_choice
from keras_elm.checks import check_int as _check_int
from keras_elm.data import caches
from keras_elm.data import processes
from keras_elm.data.pathfinder.drawing import DIFFICULTIES
from keras_elm.data.pathfinder.drawing import GENERATOR_VERSION
from keras_elm.data.pathfinder.drawing import IMAGE_SIZES
from keras_elm.data.pathfinder.drawing import _render_chunk

_MAX_CHUNK = 64  # images per task of a worker process


def _cache_path(cache_dir, num_samples, image_size, difficulty, seed):
    return os.path.join(
        cache_dir, _cache_name(num_samples, image_size, difficulty, seed)
    )


def _cache_name(num_samples, image_size, difficulty, seed):
    return (
        f"pathfinder{image_size}_{difficulty}_n{num_samples}_seed{seed}"
        f"_v{GENERATOR_VERSION}.npz"
    )


def _cache_settings(num_samples, image_size, difficulty, seed):
    return {
        "generator": "pathfinder",
        "generator_version": GENERATOR_VERSION,
        "num_samples": num_samples,
        "image_size": image_size,
        "difficulty": difficulty,
        "seed": seed,
    }


def _read_cache(path, settings):
    """`{"images", "labels"}` of a sound cache, or None (`load_cache`)."""
    count, size = settings["num_samples"], settings["image_size"]

    def check(data):
        if data["images"].shape != (count, size, size):
            return (
                f"`images` has the shape {data['images'].shape}, "
                f"expected {(count, size, size)}"
            )
        if data["labels"].shape != (count,):
            return (
                f"`labels` has the shape {data['labels'].shape}, "
                f"expected {(count,)}"
            )
        if not np.isin(data["labels"], (0, 1)).all():
            return "`labels` holds values other than 0 and 1"
        return None

    data = caches.load_cache(
        path,
        settings,
        {"images": (np.uint8, 3), "labels": (np.int32, 1)},
        check,
    )
    return data


def generate(
    num_samples,
    *,
    image_size=32,
    difficulty="hard",
    seed=None,
    workers=None,
    cache_dir=None,
    progress=True,
):
    """Generates Pathfinder images and their labels.

    Image `i` is drawn from its own random stream, seeded by `(seed, i)`,
    so a seed gives the same bytes whatever `workers` is, and the first `n`
    images of a larger set equal a set of `n`. The work is split into
    chunks of images run by a process pool, forked where the platform can
    fork (elsewhere the calling script needs the usual
    `if __name__ == "__main__":` guard). The workers end with this
    process, even when it is killed.

    Args:
        num_samples: number of images.
        image_size: 32, 64 or 128 (Path-X); see `SETTINGS`.
        difficulty: `"easy"`, `"intermediate"` or `"hard"`: target
            snakes of 6, 9 or 14 dashes (`DIFFICULTIES`).
        seed: a non-negative integer, or None for a fresh random seed.
        workers: processes to draw with; None means every core this
            process may use, 1 draws in this process.
        cache_dir: a folder where the result is kept as one `.npz`, named
            after every setting, and read back by the next identical call.
            The cache also holds its settings and is checked when read; one
            that is unreadable, made with other settings, or of the wrong
            arrays, shapes, dtypes or values is generated again (a line
            says which and why). The folder is checked to be writable
            before any image is drawn. Calls with `seed=None` are not
            cached. Generation is resumable: each finished chunk of
            images is saved at once in a hidden folder beside the cache
            (`caches.parts_folder`), so a call stopped half way (Ctrl-C,
            a kill) and made again with the same settings draws only the
            images that are missing, with the same result as a call that
            was never stopped; the folder is removed once the cache is
            written.
        progress: show a `keras.utils.Progbar`.

    Returns:
        `(images, labels)`: `uint8` images of shape
        `(num_samples, image_size, image_size)`, 0 background to 255, and
        `int32` labels of shape `(num_samples,)`, 1 when the two discs
        are the ends of one curve. The labels are balanced in expectation.

    Example:

    >>> images, labels = generate(8, image_size=32, seed=0, workers=1,
    ...                           progress=False)
    >>> images.shape, labels.shape
    ((8, 32, 32), (8,))
    """
    num_samples = _check_int("num_samples", num_samples, 1)
    _check_choice("image_size", image_size, IMAGE_SIZES)
    _check_choice("difficulty", difficulty, DIFFICULTIES)
    seed, workers, cache_dir = processes.generator_settings(
        seed, workers, progress, cache_dir
    )
    data = caches.cached_arrays(
        cache_dir,
        _cache_name(num_samples, image_size, difficulty, seed),
        _cache_settings(num_samples, image_size, difficulty, seed),
        _read_cache,
        lambda parts: _generate(
            num_samples,
            image_size,
            DIFFICULTIES[difficulty][1],
            seed,
            workers,
            progress,
            parts,
        ),
        resume=True,
    )
    return data["images"], data["labels"]


def _check_chunk(chunk, result):
    """What is wrong with a saved chunk `(start, images, labels)`, or None."""
    _, _, start, stop, image_size, _ = chunk
    got_start, images, labels = result
    if got_start != start:
        return f"starts at image {got_start}, expected {start}"
    shape = (stop - start, image_size, image_size)
    if images.dtype != np.uint8 or images.shape != shape:
        return (
            f"`images` is {images.dtype} of the shape {images.shape}, "
            f"expected uint8 of the shape {shape}"
        )
    if labels.dtype != np.int32 or labels.shape != shape[:1]:
        return (
            f"`labels` is {labels.dtype} of the shape {labels.shape}, "
            f"expected int32 of the shape {shape[:1]}"
        )
    if not np.isin(labels, (0, 1)).all():
        return "`labels` holds values other than 0 and 1"
    return None


def _generate(
    num_samples, image_size, contour_length, seed, workers, progress, parts
):
    # Several chunks per worker keep every core busy until the end and the
    # progress bar moving.
    chunk = max(1, min(_MAX_CHUNK, -(-num_samples // (4 * workers))))
    chunks = [
        (
            min(start + chunk, num_samples) - start,
            seed,
            start,
            min(start + chunk, num_samples),
            image_size,
            contour_length,
        )
        for start in range(0, num_samples, chunk)
    ]
    images = np.empty((num_samples, image_size, image_size), np.uint8)
    labels = np.empty(num_samples, np.int32)
    for _, (start, chunk_images, chunk_labels) in processes.generate_in_chunks(
        _render_chunk,
        chunks,
        workers=workers,
        progress=progress,
        unit_name="image",
        resume_dir=parts,
        check=_check_chunk,
    ):
        images[start : start + len(chunk_images)] = chunk_images
        labels[start : start + len(chunk_labels)] = chunk_labels
    return {"images": images, "labels": labels}
