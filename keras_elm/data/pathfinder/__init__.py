"""Pathfinder (Linsley et al. 2018), the Long Range Arena's "Pathfinder" tasks.

Grey images of dashed curves ("snakes"); two discs mark two curve ends. The
label is 1 when both discs sit on the two ends of one curve, 0 when they sit
on the ends of two different curves. Pathfinder-32 and -64 are LRA's
"Pathfinder", Pathfinder-128 is "Path-X".

Two sources:

- `generate()` draws the images here, seeded, on every core, optionally
  cached as one `.npz`;
- `load()` reads the LRA release, `lra_release/pathfinder{32,64,128}/
  <folder>/{metadata,imgs}/` (PNG files listed by text "metadata" files),
  or a folder in that layout written by `write_release()`.

`splits()` gives the train/val/test arrays of the examples from either,
split by the release's seeded 80/10/10 (`split_indices()`). The code is
in `drawing` (one image), `generator` (a data set, on every core) and
`release` (the files); every name is reachable here.

`download()` fetches the LRA release (`keras_elm.data.lra`, about 7.7 GB)
on request and unpacks the size asked for; nothing else touches the
network. The generator follows the recipe of the release's (dashes with
margins, continuity-weighted turns, two target snakes seeded close
together, short distractors, `SETTINGS`) but is written afresh, so its
images are alike, not identical, to the release's. To fit long snakes
on small images it adds two things: each new dash prefers directions with
free room ahead, and a target pair at a dead end undoes its last steps
instead of starting over.
"""

import os

from keras_elm.checks import check_choice as _check_choice
from keras_elm.checks import check_int as _check_int
from keras_elm.data import files
from keras_elm.data import lra
from keras_elm.data import splitting
from keras_elm.data.pathfinder import drawing
from keras_elm.data.pathfinder import generator
from keras_elm.data.pathfinder import release
from keras_elm.data.pathfinder.drawing import DIFFICULTIES
from keras_elm.data.pathfinder.drawing import GENERATOR_VERSION
from keras_elm.data.pathfinder.drawing import IMAGE_SIZES
from keras_elm.data.pathfinder.drawing import SETTINGS
from keras_elm.data.pathfinder.drawing import SPLITS
from keras_elm.data.pathfinder.drawing import PathfinderSettings
from keras_elm.data.pathfinder.drawing import _draw  # noqa: F401
from keras_elm.data.pathfinder.drawing import render
from keras_elm.data.pathfinder.generator import _cache_path  # noqa: F401
from keras_elm.data.pathfinder.generator import generate
from keras_elm.data.pathfinder.release import _read_image  # noqa: F401
from keras_elm.data.pathfinder.release import load
from keras_elm.data.pathfinder.release import split_indices
from keras_elm.data.pathfinder.release import write_release

# `{size}`: the image size, 32, 64 or 128.
HELP = (
    "Pass --download to fetch the LRA release (https://storage.googleapis."
    "com/long-range-arena/lra_release.gz, about 7.7 GB) into --data-dir "
    "and unpack pathfinder{size}/ there; or download it by hand, unpack "
    "it, and pass --data-dir ~/data/lra_release (the folder holding "
    "pathfinder{size}/curv_contour_length_14/...); without --data-dir the "
    "images are generated."
)
# Bytes `download()` fetches: the whole LRA release.
DOWNLOAD_SIZE = lra.DOWNLOAD_SIZE

__all__ = [
    "DIFFICULTIES",
    "DOWNLOAD_SIZE",
    "GENERATOR_VERSION",
    "HELP",
    "IMAGE_SIZES",
    "SETTINGS",
    "SPLITS",
    "PathfinderSettings",
    "download",
    "drawing",
    "generate",
    "generator",
    "load",
    "release",
    "render",
    "split_indices",
    "splits",
    "write_release",
]


def splits(
    data_dir=None,
    *,
    num_samples=200_000,
    image_size=32,
    difficulty="hard",
    seed=0,
    cache_dir=None,
    smoke=False,
    progress=True,
):
    """The train, val and test images of the Pathfinder examples.

    From the release in `data_dir`; without it, `num_samples` images are
    generated (`generate()`, cached under `<cache_dir>/data_cache/`), or,
    with `smoke`, written in the release's layout under
    `<cache_dir>/smoke_data/` (once: a rerun reads them again) and read
    back with `load()`. Either way the split is the release's seeded
    80/10/10 (`split_indices(n, seed)`).

    Args:
        data_dir: the folder holding `pathfinder{S}/` (`lra_release/`), or
            None.
        num_samples: images to generate (without `data_dir`), at least 10.
        image_size: 32, 64 or 128 (Path-X).
        difficulty: `"easy"`, `"intermediate"` or `"hard"`.
        seed: seed of the images and of the split.
        cache_dir: the folder of generated files; None: the images are
            kept in memory only (a smoke fixture in a new temporary
            folder).
        smoke: without `data_dir`, go through the release's file format.
        progress: show a progress bar while generating.

    Returns:
        `{"train": (images, labels), "val": ..., "test": ...}`: `uint8`
        images `(N, image_size, image_size)`, `int32` labels `(N,)`.

    Raises:
        FileNotFoundError: the release's folder is missing from `data_dir`.

    Example:

    >>> data = splits(num_samples=10, seed=0, progress=False)
    >>> {name: x.shape for name, (x, y) in data.items()}
    {'train': (8, 32, 32), 'val': (1, 32, 32), 'test': (1, 32, 32)}
    """
    data_dir = splitting.check_folder("data_dir", data_dir)
    cache_dir = splitting.check_folder("cache_dir", cache_dir)
    smoke = splitting.check_bool("smoke", smoke)
    progress = splitting.check_bool("progress", progress)
    _check_choice("image_size", image_size, IMAGE_SIZES)
    _check_choice("difficulty", difficulty, DIFFICULTIES)
    seed = _check_int("seed", seed, 0)
    if not data_dir:
        num_samples = _check_int("num_samples", num_samples, 1)
    if smoke and not data_dir:
        # Through the real file format and loader.
        def write(path):
            write_release(
                path,
                num_samples,
                image_size=image_size,
                difficulty=difficulty,
                seed=seed,
            )
            return path  # `load` reads the top folder

        data_dir = files.made_once(
            cache_dir,
            write,
            num_samples=num_samples,
            seed=seed,
            pathfinder=image_size,
            difficulty=difficulty,
        )
    if data_dir:
        return {
            split: load(
                data_dir,
                image_size=image_size,
                difficulty=difficulty,
                split=split,
                seed=seed,
            )
            for split in SPLITS
        }
    images, labels = generate(
        num_samples,
        image_size=image_size,
        difficulty=difficulty,
        seed=seed,
        cache_dir=None
        if cache_dir is None
        else os.path.join(cache_dir, "data_cache"),
        progress=progress,
    )
    # The same seeded 80/10/10 split as the release's.
    return {
        split: (images[rows], labels[rows])
        for split, rows in split_indices(len(images), seed).items()
    }


def download(data_dir=None, *, image_size=32, mirror=None, progress=True):
    """Downloads the LRA release and unpacks Pathfinder of one image size.

    `keras_elm.data.lra.download_member(data_dir,
    f"pathfinder{image_size}")`: `<data_dir>/lra_release.gz`
    (about 7.7 GB, kept as the cache of the other tasks) is fetched unless
    it is there, and `pathfinder{image_size}/` is unpacked from it into
    `<data_dir>/lra_release/` unless it is there (then nothing touches the
    network).

    Args:
        data_dir: the download folder; None:
            `keras_elm.data.download.default_data_dir("lra_release")`.
        image_size: 32, 64 or 128 (Path-X).
        mirror: None, or a base URL serving `lra_release.gz`.
        progress: show progress bars.

    Returns:
        The folder to pass to `splits(data_dir=...)` and `load()`:
        `<data_dir>/lra_release`.

    Raises:
        ValueError: `data_dir` cannot be written, or the archive holds no
            `pathfinder{image_size}` folder that `load()` reads (the
            message names what it holds).
        keras_elm.data.download.DownloadError: the server cannot be
            reached or the transfer broke (the next call resumes it).

    Example:

    ```python
    import os
    import tarfile
    import tempfile

    from keras_elm.data import lra
    from keras_elm.data import pathfinder

    # A release already in `data_dir` (a tiny stand-in here) is unpacked
    # without the network.
    data_dir = tempfile.mkdtemp()
    images = os.path.join(data_dir, "images")
    pathfinder.write_release(images, 10, image_size=32)
    with tarfile.open(os.path.join(data_dir, lra.ARCHIVE), "w:gz") as tar:
        tar.add(images, "lra_release/lra_release")
    folder = pathfinder.download(data_dir, image_size=32, progress=False)
    images, labels = pathfinder.load(folder, image_size=32, split="val")
    assert images.shape == (1, 32, 32)
    ```
    """
    _check_choice("image_size", image_size, IMAGE_SIZES)
    folder = lra.download_member(
        data_dir, f"pathfinder{image_size}", mirror=mirror, progress=progress
    )
    return os.path.dirname(folder)  # `load` reads the folder holding it
