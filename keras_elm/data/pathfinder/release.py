"""Pathfinder's files: the LRA release's layout, written and read."""

import os

import numpy as np

from keras_elm.checks import check_choice as _check_choice
from keras_elm.checks import check_int as _check_int
from keras_elm.data import files
from keras_elm.data.pathfinder.drawing import DIFFICULTIES
from keras_elm.data.pathfinder.drawing import IMAGE_SIZES
from keras_elm.data.pathfinder.drawing import SPLITS
from keras_elm.data.pathfinder.generator import generate


def _release_folder(data_dir, image_size, difficulty):
    return os.path.join(
        os.fspath(data_dir),
        f"pathfinder{image_size}",
        DIFFICULTIES[difficulty][0],
    )


def write_release(
    directory,
    num_samples,
    *,
    image_size=32,
    difficulty="hard",
    seed=0,
    images_per_batch=1000,
):
    """Writes generated images in the layout of the LRA release.

    `<directory>/pathfinder{S}/<folder>/imgs/<batch>/sample_<n>.png` are
    8-bit grey PNGs, and `<directory>/pathfinder{S}/<folder>/metadata/
    <batch>.npy` are text files (despite the suffix) with one line per
    image: `imgs/<batch> sample_<n>.png 0 <label>`. `load(directory, ...)`
    reads them back. Writing the same call again rewrites the same files.
    Each file is written whole or not at all, with the mode the umask
    gives; the folder is checked to be writable before any image is drawn.

    Args:
        directory: the folder to hold `pathfinder{S}/`.
        num_samples: number of images.
        image_size: 32, 64 or 128.
        difficulty: `"easy"`, `"intermediate"` or `"hard"`; names `<folder>`
            (`DIFFICULTIES`).
        seed: seed of `generate()`.
        images_per_batch: images per `imgs/<batch>/` folder and metadata
            file.

    Returns:
        The path of `<directory>/pathfinder{S}/<folder>`.

    Example:

    >>> import tempfile
    >>> directory = tempfile.mkdtemp()
    >>> root = write_release(directory, 10, image_size=32)
    >>> images, labels = load(directory, image_size=32, split="train")
    >>> images.shape
    (8, 32, 32)
    """
    from PIL import Image

    num_samples = _check_int("num_samples", num_samples, 1)
    images_per_batch = _check_int("images_per_batch", images_per_batch, 1)
    _check_choice("image_size", image_size, IMAGE_SIZES)
    _check_choice("difficulty", difficulty, DIFFICULTIES)
    if seed is not None:
        seed = _check_int("seed", seed, 0)
    root = _release_folder(
        os.path.expanduser(os.fspath(directory)), image_size, difficulty
    )
    metadata_dir = os.path.join(root, "metadata")
    batches = range(-(-num_samples // images_per_batch))
    names = {f"{batch}.npy" for batch in batches}
    if os.path.isdir(metadata_dir):
        # `load` reads every metadata file, so another set's would mix in.
        foreign = sorted(
            name
            for name in os.listdir(metadata_dir)
            if name.endswith(".npy") and name not in names
        )
        if foreign:
            raise FileExistsError(
                f"{metadata_dir} holds metadata files of another data set "
                f"({', '.join(foreign[:3])}); write to an empty `directory`."
            )
    # Found out now, not after the images are drawn.
    files.check_writable(metadata_dir, what="the release folder")
    images, labels = generate(
        num_samples,
        image_size=image_size,
        difficulty=difficulty,
        seed=seed,
        progress=False,
    )
    for batch in batches:
        image_dir = os.path.join(root, "imgs", str(batch))
        os.makedirs(image_dir, exist_ok=True)
        lines = []
        first = batch * images_per_batch
        for n, index in enumerate(
            range(first, min(first + images_per_batch, num_samples))
        ):
            with files.atomic_write(
                os.path.join(image_dir, f"sample_{n}.png")
            ) as f:
                Image.fromarray(images[index]).save(f, format="PNG")
            lines.append(f"imgs/{batch} sample_{n}.png 0 {labels[index]}\n")
        with files.atomic_write(
            os.path.join(metadata_dir, f"{batch}.npy"),
            "w",
            encoding="ascii",
            newline="\n",
        ) as f:
            f.writelines(lines)
    return root


def _metadata_order(name):
    stem = name[: -len(".npy")]
    return (0, int(stem), name) if stem.isdigit() else (1, 0, name)


def _read_metadata(path, root):
    """The (image path, label) pairs a metadata file lists, but empty files."""
    entries = []
    with open(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise ValueError(
                    f"{path}, line {number}: not UTF-8 text (byte "
                    f"{raw[error.start]:#04x} at column {error.start + 1}); "
                    f"expected '<image folder> <file name> <any> <label 0 "
                    f"or 1>'."
                ) from None
            fields = line.split()
            if not fields:
                continue
            if len(fields) < 4 or fields[3] not in ("0", "1"):
                raise ValueError(
                    f"{path}, line {number}: expected '<image folder> "
                    f"<file name> <any> <label 0 or 1> ...'. Received: "
                    f"{line.rstrip()!r}"
                )
            image = os.path.join(root, fields[0], fields[1])
            try:
                empty = os.path.getsize(image) == 0
            except FileNotFoundError as error:
                raise FileNotFoundError(
                    f"{image}, listed on line {number} of {path}, does not "
                    f"exist."
                ) from error
            if not empty:
                entries.append((image, int(fields[3])))
    return entries


# Image modes `load` reads, and how: 8-bit grey as it is; 1-bit, palette
# and RGB images converted to grey by Pillow (ITU-R 601-2 luma, exact for
# grey RGB); 16-bit grey scaled to 8 bits, v -> round(v * 255 / 65535).
_GREY_MODES = ("L",)
_CONVERTED_MODES = ("1", "P", "RGB")
_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N")


def _read_image(path, image_size):
    from PIL import Image

    try:
        with Image.open(path) as image:
            image.load()
            mode = image.mode
            if mode in _SIXTEEN_BIT_MODES:
                wide = np.asarray(image).astype(np.uint32)
                pixels = ((wide * 255 + 32767) // 65535).astype(np.uint8)
            elif mode in _GREY_MODES + _CONVERTED_MODES:
                pixels = np.asarray(image.convert("L"), np.uint8)
            else:
                pixels = None
    except (OSError, ValueError, SyntaxError) as error:
        raise ValueError(f"Cannot read the image {path}: {error}") from error
    if pixels is None:
        raise ValueError(
            f"{path} has the image mode {mode!r}; expected 8-bit grey ('L'), "
            f"16-bit grey ('I;16', scaled to 8 bits), 1-bit ('1'), palette "
            f"('P') or RGB ('RGB') without transparency."
        )
    if pixels.shape != (image_size, image_size):
        raise ValueError(
            f"{path} is {pixels.shape[1]} x {pixels.shape[0]} pixels; "
            f"expected {image_size} x {image_size} for "
            f"image_size={image_size}."
        )
    return pixels


def split_indices(num_samples, seed):
    """The release's seeded 80/10/10 split: `{split: row indices}`.

    Args:
        num_samples: number of samples to split.
        seed: seed of the shuffle.

    Returns:
        A dict from `"train"`, `"val"`, `"test"` to int arrays of rows.
    """
    order = np.random.default_rng(seed).permutation(num_samples)
    n_train = int(0.8 * num_samples)
    n_val = int(0.1 * num_samples)
    return dict(zip(SPLITS, np.split(order, [n_train, n_train + n_val])))


def load(data_dir, *, image_size=32, difficulty="hard", split="train", seed=0):
    """Loads Pathfinder images from the LRA release (or `write_release()`).

    Reads every metadata file of `<data_dir>/pathfinder{S}/<folder>/
    metadata/` in order, skips the empty image files (the release has
    some), shuffles the images with `seed` and splits them 80/10/10 into
    `"train"`, `"val"` and `"test"`. Only the split's images are decoded:
    8-bit grey PNGs as they are, 16-bit grey ones scaled to 8 bits
    (`round(v * 255 / 65535)`), 1-bit, palette and RGB ones converted to
    grey; other modes (with transparency, for one) raise. A release that
    lists no image, or a split left empty, raises. The files are only
    read.

    Args:
        data_dir: the folder holding `pathfinder32/`, `pathfinder64/` and
            `pathfinder128/`: the `lra_release/` folder of the Long Range
            Arena release, or the `directory` of `write_release()`.
        image_size: 32, 64 or 128 (Path-X).
        difficulty: `"easy"` (`curv_baseline`), `"intermediate"`
            (`curv_contour_length_9`) or `"hard"`
            (`curv_contour_length_14`).
        split: `"train"`, `"val"` or `"test"`.
        seed: seed of the shuffle; the same seed gives disjoint splits.

    Returns:
        `(images, labels)`: `uint8` images `(N, image_size, image_size)` and
        `int32` labels `(N,)`.

    Example:

    >>> images, labels = load("~/data/lra_release", image_size=32,
    ...                       split="val")  # doctest: +SKIP
    """
    _check_choice("image_size", image_size, IMAGE_SIZES)
    _check_choice("difficulty", difficulty, DIFFICULTIES)
    _check_choice("split", split, SPLITS)
    seed = _check_int("seed", seed, 0)
    data_dir = os.path.expanduser(os.fspath(data_dir))
    root = _release_folder(data_dir, image_size, difficulty)
    metadata_dir = os.path.join(root, "metadata")
    if not os.path.isdir(metadata_dir):
        raise FileNotFoundError(
            f"No Pathfinder metadata folder {metadata_dir}. `load` expects "
            f"<data_dir>/pathfinder{image_size}/{DIFFICULTIES[difficulty][0]}"
            f"/metadata/*.npy and the imgs/ they list, as in the Long Range "
            f"Arena release (pass data_dir='.../lra_release', the folder of "
            f"the LRA repository's lra_release archive that holds "
            f"pathfinder32/), or write that layout with "
            f"keras_elm.data.pathfinder.write_release({data_dir!r}, "
            f"num_samples, image_size={image_size}, "
            f"difficulty={difficulty!r})."
        )
    names = sorted(
        (name for name in os.listdir(metadata_dir) if name.endswith(".npy")),
        key=_metadata_order,
    )
    entries = []
    for name in names:
        entries.extend(_read_metadata(os.path.join(metadata_dir, name), root))
    if not entries:
        raise ValueError(
            f"The Pathfinder metadata folder {metadata_dir} lists no image "
            f"(its {len(names)} metadata files *.npy are empty or list only "
            f"empty image files): expected the release's metadata, or the "
            f"folder of keras_elm.data.pathfinder.write_release()."
        )
    rows = split_indices(len(entries), seed)[split]
    if not len(rows):
        raise ValueError(
            f"The {split!r} split of the {len(entries)} images listed in "
            f"{metadata_dir} is empty (80/10/10 of {len(entries)}): the "
            f"release needs at least 10 images."
        )
    images = np.empty((len(rows), image_size, image_size), np.uint8)
    labels = np.empty(len(rows), np.int32)
    for i, row in enumerate(rows):
        path, labels[i] = entries[row]
        images[i] = _read_image(path, image_size)
    return images, labels
