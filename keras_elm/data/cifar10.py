"""Grey CIFAR-10, the Long Range Arena's "Image" task, from files on disk.

Nothing is downloaded unless asked: `download()` (the examples'
`--download`) fetches `cifar-10-python.tar.gz`, checks its pinned
checksums and unpacks the six pickles. Two sources are read:

- the "python version" of CIFAR-10: a folder holding the pickles
  `data_batch_1` ... `data_batch_5` and `test_batch` (the archive
  `cifar-10-python.tar.gz` unpacks to `cifar-10-batches-py/`; the folder
  holding that one is accepted too);
- a prepared tensorflow-datasets `cifar10` (`tfds.load("cifar10",
  data_dir=..., download=False)` must find it).

Images are turned grey as in LRA, `0.2989 R + 0.587 G + 0.114 B`, rounded
to `uint8`, and the train file is split 90/10 into train and validation
(seeded).

Pixels and labels are checked, not cast: pixels must be integers 0..255
and labels integers 0..9, one per image, or the file (or argument) is
named and the load (or write) refused. A cast would silently turn 300 into
44, -1 into 255 and 0.5 into 0.
"""

import functools
import os
import pickle

import numpy as np

from keras_elm.checks import check_choice as _check_choice
from keras_elm.checks import check_folder as _check_folder
from keras_elm.checks import check_int as _check_int
from keras_elm.data import download as _download
from keras_elm.data import splitting
from keras_elm.data.files import atomic_write
from keras_elm.data.files import check_writable

SPLITS = ("train", "val", "test")
TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILE = "test_batch"
GREY_WEIGHTS = (0.2989, 0.587, 0.114)
VALIDATION_FRACTION = 0.1
NUM_CLASSES = 10
PIXELS = 32 * 32 * 3  # one row of b'data': the R, G and B planes
URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
# The archive's checksums, as two projects that download it pin them:
# sha256 from Keras (keras/datasets/cifar10.py, `file_hash=`; torchvision's
# prototype datasets pin the same), md5 from torchvision
# (torchvision/datasets/cifar.py, `tgz_md5`).
CHECKSUMS = {
    "sha256": "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",  # noqa: E501
    "md5": "c58f30108f718f92721af3b95e74349a",
}
DOWNLOAD_SIZE = 170_498_071  # bytes of the archive (the server's length)
DOWNLOADED_NAME = "cifar-10-batches-py"  # the folder `download` makes
HELP = (
    "Pass --download to fetch cifar-10-python.tar.gz (170 MB, checked "
    "against pinned checksums) and unpack it into --data-dir (default: "
    "$KERAS_HOME/datasets/keras_elm/cifar10, KERAS_HOME being ~/.keras "
    "unless set), as keras_elm.data.cifar10.download() does. Or by hand: "
    "download https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
    " and unpack it, then pass --data-dir ~/data/cifar-10-batches-py "
    "(the folder holding data_batch_1 ... data_batch_5 and "
    "test_batch), or the data_dir of a prepared tensorflow-datasets "
    "'cifar10'. `--smoke` runs on a tiny random stand-in."
)

_HOW_TO_GET = (
    "Put the CIFAR-10 'python version' pickles (data_batch_1 ... "
    "data_batch_5, test_batch; https://www.cs.toronto.edu/~kriz/"
    "cifar-10-python.tar.gz unpacks to cifar-10-batches-py/) in that "
    "folder, or pass the `data_dir` of a prepared tensorflow-datasets "
    "'cifar10' (`tfds.builder('cifar10', data_dir=...).download_and_prepare()`"
    " on a machine with a network), or let "
    "`keras_elm.data.cifar10.download(data_dir)` (the examples' "
    "`--download`) fetch and unpack the archive (170 MB) into "
    "`<data_dir>/cifar-10-batches-py`, which `load(data_dir)` also finds."
)


def to_grey(rgb):
    """`uint8` grey images from `uint8` RGB images `(..., 32, 32, 3)`."""
    grey = np.asarray(rgb, "float32") @ np.asarray(GREY_WEIGHTS, "float32")
    return np.clip(np.round(grey), 0, 255).astype("uint8")


def _integers(values, what, high, error):
    """`values`, checked to be integers 0..`high`, or raises naming `what`.

    A wrong dtype raises `error`; a value out of range, a `ValueError`.
    """
    if values.size == 0:
        return values
    if values.dtype.kind not in "iu":
        raise error(
            f"{what} must hold integers 0..{high}. Received dtype "
            f"{values.dtype}."
        )
    if values.dtype != np.uint8 or high != 255:
        low, top = values.min(), values.max()
        if low < 0 or top > high:
            raise ValueError(
                f"{what} must hold integers 0..{high}. Received values from "
                f"{low} to {top}."
            )
    return values


def _check_labels(labels, num_images, what, error=ValueError):
    """`int32` labels: 1-D integers 0..9, one per image, or raises."""
    if labels.ndim != 1 or len(labels) != num_images:
        raise ValueError(
            f"{what} must hold one label per image: shape ({num_images},). "
            f"Received shape {labels.shape}."
        )
    return _integers(labels, what, NUM_CLASSES - 1, error).astype("int32")


def _read_pickle(path):
    try:
        with open(path, "rb") as f:
            batch = pickle.load(f, encoding="bytes")
        data = np.asarray(batch[b"data"])
        labels = np.asarray(batch[b"labels"])
    except (
        OSError,
        pickle.UnpicklingError,
        EOFError,
        KeyError,
        TypeError,
        ValueError,
        AttributeError,
        ImportError,
        IndexError,
    ) as error:
        raise ValueError(
            f"{path} is not a CIFAR-10 python-version batch (a pickle with "
            f"b'data' (N, 3072) uint8 and b'labels'): {error}"
        ) from error
    if data.ndim != 2 or data.shape[1] != PIXELS:
        raise ValueError(
            f"{path}: expected b'data' of shape (N, {PIXELS}) and N labels. "
            f"Received data {data.shape} and labels {labels.shape}."
        )
    labels = _check_labels(labels, len(data), f"{path}: b'labels'")
    data = _integers(data, f"{path}: b'data' (pixels)", 255, ValueError)
    # Rows are the R, G and B planes of 32 x 32 pixels, one after another.
    rgb = data.astype("uint8").reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return to_grey(rgb), labels


def _load_pickles(data_dir, files):
    parts = [_read_pickle(os.path.join(data_dir, name)) for name in files]
    images = np.concatenate([p[0] for p in parts])
    if not len(images):
        raise ValueError(
            f"CIFAR-10 files {list(files)} in {data_dir!r} hold no images. "
            f"{_HOW_TO_GET}"
        )
    return images, np.concatenate([p[1] for p in parts])


def _load_tfds(data_dir, split):
    where = (
        f"The tensorflow-datasets 'cifar10' in {data_dir!r} (split {split!r})"
    )
    try:
        import tensorflow_datasets as tfds
    except ImportError as error:
        raise ImportError(
            f"{data_dir!r} holds a tensorflow-datasets 'cifar10' folder, but "
            f"tensorflow-datasets cannot be imported ({error}): install it "
            f"(`pip install tensorflow-datasets`), or pass a folder of the "
            f"python-version pickles."
        ) from error
    try:
        dataset = tfds.load(
            "cifar10",
            split=split,
            data_dir=data_dir,
            download=False,
            batch_size=-1,
            as_supervised=True,
        )
    except (AssertionError, KeyError) as error:
        # What `download=False` raises when the data is not prepared: an
        # AssertionError, or a KeyError ("`splits` is empty") when a version
        # folder is there without its files.
        raise FileNotFoundError(
            f"{where} is not prepared: tensorflow-datasets found no data "
            f"there ({error}) {_HOW_TO_GET}"
        ) from error
    images, labels = (np.asarray(x) for x in tfds.as_numpy(dataset))
    if images.ndim != 4 or images.shape[1:] != (32, 32, 3):
        raise ValueError(
            f"{where}: expected images of shape (N, 32, 32, 3). Received "
            f"{images.shape}."
        )
    labels = _check_labels(labels, len(images), f"{where}: labels")
    images = _integers(images, f"{where}: images", 255, ValueError)
    if not len(images):
        raise ValueError(f"{where} holds no images. {_HOW_TO_GET}")
    return to_grey(images.astype("uint8")), labels


def _has_prepared_tfds(data_dir):
    return os.path.isdir(os.path.join(data_dir, "cifar10"))


def _missing(folder, names=(*TRAIN_FILES, TEST_FILE)):
    return [n for n in names if not os.path.isfile(os.path.join(folder, n))]


def _validation_split(num_samples, seed):
    order = np.random.default_rng(seed).permutation(num_samples)
    num_val = int(round(VALIDATION_FRACTION * num_samples))
    return order[num_val:], order[:num_val]


def load(data_dir, *, split="train", seed=0):
    """Grey CIFAR-10 images and labels of one split.

    Args:
        data_dir: the folder of the python-version pickles (or the one
            holding their `cifar-10-batches-py/`, as `download()` makes
            it), or the `data_dir` of a prepared tensorflow-datasets
            `cifar10`.
        split: `"train"` (90 % of the train file), `"val"` (the other 10 %)
            or `"test"` (the test file).
        seed: seed of the train/validation split.

    Returns:
        `(images, labels)`: `uint8 (N, 32, 32)` and `int32 (N,)`.

    Raises:
        FileNotFoundError: neither source is there: pickles missing, and
            no tensorflow-datasets `cifar10`, or one not prepared.
        ValueError: a file that is no CIFAR-10 batch, or whose pixels are
            not integers 0..255 or labels not integers 0..9, one per image
            (the file is named); a split without images.

    Example:

    >>> images, labels = load("~/data/cifar-10-batches-py",
    ...                       split="val")  # doctest: +SKIP
    """
    _check_choice("split", split, SPLITS)
    data_dir = os.path.expanduser(os.fspath(data_dir))
    if not os.path.isdir(data_dir):
        raise FileNotFoundError(
            f"CIFAR-10 folder {data_dir!r} does not exist. {_HOW_TO_GET}"
        )
    names = TRAIN_FILES if split != "test" else (TEST_FILE,)
    missing = _missing(data_dir, names)
    nested = os.path.join(data_dir, DOWNLOADED_NAME)
    if not missing:
        images, labels = _load_pickles(data_dir, names)
    elif os.path.isdir(nested) and not _missing(nested, names):
        # The folder `download()` unpacked into.
        images, labels = _load_pickles(nested, names)
    elif _has_prepared_tfds(data_dir):
        images, labels = _load_tfds(
            data_dir, "test" if split == "test" else "train"
        )
    else:
        raise FileNotFoundError(
            f"CIFAR-10 files {missing} are missing from {data_dir!r}, and it "
            f"holds no prepared tensorflow-datasets 'cifar10'. {_HOW_TO_GET}"
        )
    if split == "test":
        return images, labels
    train, val = _validation_split(len(images), seed)
    chosen = train if split == "train" else val
    return images[chosen], labels[chosen]


def write_batches(directory, images, labels, *, train_batches=5):
    """Writes RGB images in the python-version layout (for tests, smoke runs).

    Each file is written whole or not at all (`keras_elm.data.files.
    atomic_write`) with the umask's mode, replacing a file of the same name
    (another seed's, say); a killed write leaves the old file, never half
    of a new one.

    Args:
        directory: folder to write `data_batch_1..train_batches` and
            `test_batch` into (created if needed).
        images: RGB images `(N, 32, 32, 3)` of integers 0..255 (any integer
            dtype; floats are refused, not truncated), `N >= 2`; the last
            sixth (at least one image) becomes `test_batch`, the rest is
            dealt into the train batches.
        labels: `N` integer labels 0..9, one per image.
        train_batches: number of train pickles, at least 1; `load` expects
            5.

    Returns:
        The directory.

    Raises:
        TypeError: `images` or `labels` are not integers, or
            `train_batches` is not an integer.
        ValueError: a shape or value out of range, or a `directory` that
            cannot be written.

    Example:

    >>> import tempfile
    >>> rng = np.random.default_rng(0)
    >>> folder = write_batches(
    ...     tempfile.mkdtemp(),
    ...     rng.integers(0, 256, (12, 32, 32, 3), dtype="uint8"),
    ...     rng.integers(0, 10, 12))
    >>> load(folder, split="test")[0].shape
    (2, 32, 32)
    """
    train_batches = _check_int("train_batches", train_batches, 1)
    try:
        images, labels = np.asarray(images), np.asarray(labels)
    except ValueError as error:  # ragged nested lists
        raise ValueError(
            f"Arguments `images` and `labels` must be arrays (N, 32, 32, 3) "
            f"and (N,): {error}"
        ) from None
    if images.ndim != 4 or images.shape[1:] != (32, 32, 3):
        raise ValueError(
            "Argument `images` must be RGB images of shape (N, 32, 32, 3). "
            f"Received shape {images.shape}."
        )
    if len(images) < 2:
        raise ValueError(
            "Argument `images` must hold at least 2 images (one for the "
            f"train batches, one for test_batch). Received {len(images)}."
        )
    images = _integers(images, "Argument `images` (pixels)", 255, TypeError)
    labels = _check_labels(labels, len(images), "Argument `labels`", TypeError)
    directory = os.fspath(directory)
    check_writable(directory, what="CIFAR-10 folder")
    num_test = max(1, len(images) // 6)
    planes = (
        images.astype("uint8").transpose(0, 3, 1, 2).reshape(len(images), -1)
    )
    parts = np.array_split(np.arange(len(images) - num_test), train_batches)
    names = [f"data_batch_{i + 1}" for i in range(train_batches)]
    parts.append(np.arange(len(images) - num_test, len(images)))
    names.append(TEST_FILE)
    for name, rows in zip(names, parts):
        batch = {b"data": planes[rows], b"labels": labels[rows].tolist()}
        with atomic_write(os.path.join(directory, name), "wb") as f:
            pickle.dump(batch, f)
    return directory


def splits(
    data_dir=None, *, num_samples=40, seed=0, cache_dir=None, smoke=False
):
    """The train, val and test images of the Image example.

    From the files in `data_dir` (`load()`); CIFAR-10 cannot be generated,
    so without `data_dir` there is only the `smoke` stand-in: random images
    written as the python-version pickles under `<cache_dir>/smoke_data/`
    (once) and read back by `load()`.

    Args:
        data_dir: the folder of `data_batch_1..5` and `test_batch` (or of a
            prepared tensorflow-datasets `cifar10`), or None.
        num_samples: images of the smoke stand-in.
        seed: seed of the validation split (and of the stand-in).
        cache_dir: the folder of the stand-in; None: a new temporary one.
        smoke: without `data_dir`, run on the random stand-in.

    Returns:
        `{"train": (images, labels), "val": ..., "test": ...}` as `load()`
        returns them.

    Raises:
        FileNotFoundError: no `data_dir` and no `smoke` (the message says
            what to download, `HELP`), or a file of `data_dir` is missing.

    Example:

    >>> data = splits(smoke=True, num_samples=12)
    >>> tuple(data["test"][0].shape)
    (2, 32, 32)
    """
    num_samples = _check_int("num_samples", num_samples, 2)
    seed = _check_int("seed", seed, 0)
    # Tiny random pickles in the real format, read by the real loader.
    rng = np.random.default_rng(seed)
    return splitting.from_files(
        functools.partial(load, seed=seed),
        data_dir,
        smoke=smoke,
        cache_dir=cache_dir,
        write_fixture=lambda path: write_batches(
            path,
            rng.integers(0, 256, (num_samples, 32, 32, 3), dtype="uint8"),
            rng.integers(0, 10, num_samples),
        ),
        missing="the Image task needs CIFAR-10, which cannot be generated. "
        + HELP,
        num_samples=num_samples,
        seed=seed,
        settings=dict(image=""),
    )


def _manual(data_dir):
    archive = os.path.join(data_dir, os.path.basename(URL))
    return (
        f"To get it by hand, download {URL} (sha256 {CHECKSUMS['sha256']}) "
        f"and put it at {archive}: `download()` then unpacks it without the "
        f"network. Or unpack it yourself and pass its cifar-10-batches-py "
        f"folder as the data_dir."
    )


def _unpack(archive, folder, progress):
    """Unpacks the six pickles of `archive` into `folder`, checked as
    `load` reads them; returns the number of images of each split."""
    members, counts = [], {"train": 0, "test": 0}
    expected = f"{DOWNLOADED_NAME}/{{{', '.join((*TRAIN_FILES, TEST_FILE))}}}"

    def select(name):
        members.append(name)
        top, _, inner = name.partition("/")
        wanted = top == DOWNLOADED_NAME and inner in (*TRAIN_FILES, TEST_FILE)
        return inner if wanted else None

    def check(unpacked):
        missing = _missing(unpacked)
        if missing:
            raise ValueError(f"{missing} are missing from it.")
        for name in (*TRAIN_FILES, TEST_FILE):
            try:
                images, _ = _read_pickle(os.path.join(unpacked, name))
            except ValueError as error:
                raise ValueError(
                    f"its member {DOWNLOADED_NAME}/{name} is not a CIFAR-10 "
                    f"batch as `load` reads it: {error}"
                ) from None
            counts["test" if name == TEST_FILE else "train"] += len(images)

    try:
        _download.unpack_tar(
            archive, folder, select=select, check=check, progress=progress
        )
    except ValueError as error:
        raise ValueError(
            f"The archive {archive} cannot be unpacked as CIFAR-10's python "
            f"version (`load` reads {expected}): {error} At its top it "
            f"holds: {_download.top_level(members)}. "
            f"{_manual(os.path.dirname(archive))}"
        ) from None
    return counts


def download(data_dir=None, *, mirror=None, progress=True):
    """Downloads CIFAR-10's python version and unpacks the six pickles.

    `cifar-10-python.tar.gz` (`DOWNLOAD_SIZE` bytes) is fetched from `URL`
    (or `mirror`) into `data_dir`, resumed if a transfer was cut, checked
    against `CHECKSUMS` (`keras_elm.data.download.fetch`; nothing
    unverified is ever left at its name), and kept there as a cache. Only
    `data_batch_1..5` and `test_batch` are unpacked, into
    `<data_dir>/cifar-10-batches-py` (made whole or not at all), each
    read as `load` reads it first. A later call finds that folder and
    returns at once, without the network; so does a call whose `data_dir`
    holds the pickles itself (or a prepared tensorflow-datasets
    `cifar10`), which is returned as it is.

    Args:
        data_dir: the folder to keep the archive and the pickles in; None:
            `keras_elm.data.download.default_data_dir("cifar10")`
            (`~/.keras/datasets/keras_elm/cifar10`, or under `$KERAS_HOME`).
        mirror: a base URL serving `cifar-10-python.tar.gz` instead of the
            Toronto page (a mirror, or a local server); None: `URL`.
        progress: show the transfer's progress and what was unpacked.

    Returns:
        The folder of the pickles, to pass to `load` or
        `splits(data_dir=...)`.

    Raises:
        keras_elm.data.download.DownloadError: the server cannot be reached
            or the transfer broke (the message names the URL and the way
            by hand); a rerun resumes it.
        keras_elm.data.download.ChecksumError: the archive is not the
            pinned one (the file, the expected and the found checksum).
        ValueError: `data_dir` cannot be written, or the archive, or a
            `cifar-10-batches-py` folder already there, is not in the
            layout `load` reads (the message says what was found).

    Example:

    ```python
    import os
    import tempfile

    from keras_elm.data import cifar10

    # Offline here: a folder already unpacked is returned as it is.
    data_dir = tempfile.mkdtemp()
    folder = os.path.join(data_dir, cifar10.DOWNLOADED_NAME)
    cifar10.write_batches(folder, [[[[0, 0, 0]] * 32] * 32] * 12, [0] * 12)
    assert cifar10.download(data_dir) == folder
    images, labels = cifar10.load(data_dir, split="test")
    ```
    """
    data_dir = _check_folder("data_dir", data_dir)
    if data_dir is None:
        data_dir = _download.default_data_dir("cifar10")
    data_dir = os.path.abspath(os.path.expanduser(os.fspath(data_dir)))
    if os.path.isdir(data_dir) and (
        not _missing(data_dir) or _has_prepared_tfds(data_dir)
    ):
        return data_dir  # the files are there already: nothing is missing
    folder = os.path.join(data_dir, DOWNLOADED_NAME)
    if os.path.isdir(folder):
        missing = _missing(folder)
        if missing:
            raise ValueError(
                f"The CIFAR-10 folder {folder} is there but lacks {missing}. "
                f"Delete it, and `download()` unpacks the archive again."
            )
        return folder
    archive = _download.fetch(
        _download.source_url(URL, mirror),
        data_dir,
        checksums=CHECKSUMS,
        manual=_manual(data_dir),
        progress=progress,
    )
    counts = _unpack(archive, folder, progress)
    if progress:
        print(
            f"CIFAR-10: {counts['train']:,} train and {counts['test']:,} "
            f"test images in {folder}",
            flush=True,
        )
    return folder
