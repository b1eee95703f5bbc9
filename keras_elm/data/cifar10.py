"""Grey CIFAR-10, the Long Range Arena's "Image" task, from files on disk.

Nothing is downloaded. Two sources are read:

- the "python version" of CIFAR-10: a folder holding the pickles
  `data_batch_1` ... `data_batch_5` and `test_batch` (the archive
  `cifar-10-python.tar.gz` unpacks to `cifar-10-batches-py/`);
- a prepared tensorflow-datasets `cifar10` (`tfds.load("cifar10",
  data_dir=..., download=False)` must find it).

Images are turned grey as in LRA, `0.2989 R + 0.587 G + 0.114 B`, rounded
to `uint8`, and the train file is split 90/10 into train and validation
(seeded).
"""

import os
import pickle

import numpy as np

from keras_elm.data.checks import check_choice as _check_choice

SPLITS = ("train", "val", "test")
TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILE = "test_batch"
GREY_WEIGHTS = (0.2989, 0.587, 0.114)
VALIDATION_FRACTION = 0.1

_HOW_TO_GET = (
    "Put the CIFAR-10 'python version' pickles (data_batch_1 ... "
    "data_batch_5, test_batch; https://www.cs.toronto.edu/~kriz/"
    "cifar-10-python.tar.gz unpacks to cifar-10-batches-py/) in that "
    "folder, or pass the `data_dir` of a prepared tensorflow-datasets "
    "'cifar10' (`tfds.builder('cifar10', data_dir=...).download_and_prepare()`"
    " on a machine with a network)."
)


def to_grey(rgb):
    """`uint8` grey images from `uint8` RGB images `(..., 32, 32, 3)`."""
    grey = np.asarray(rgb, "float32") @ np.asarray(GREY_WEIGHTS, "float32")
    return np.clip(np.round(grey), 0, 255).astype("uint8")


def _read_pickle(path):
    try:
        with open(path, "rb") as f:
            batch = pickle.load(f, encoding="bytes")
        data = np.asarray(batch[b"data"], "uint8")
        labels = np.asarray(batch[b"labels"], "int32")
    except (OSError, pickle.UnpicklingError, EOFError, KeyError, TypeError,
            ValueError) as error:
        raise ValueError(
            f"{path} is not a CIFAR-10 python-version batch (a pickle with "
            f"b'data' (N, 3072) uint8 and b'labels'): {error}"
        ) from error
    if data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
        raise ValueError(
            f"{path}: expected b'data' of shape (N, 3072) and N labels. "
            f"Received data {data.shape} and {len(labels)} labels."
        )
    # Rows are the R, G and B planes of 32 x 32 pixels, one after another.
    rgb = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return to_grey(rgb), labels


def _load_pickles(data_dir, files):
    parts = [_read_pickle(os.path.join(data_dir, name)) for name in files]
    return (np.concatenate([p[0] for p in parts]),
            np.concatenate([p[1] for p in parts]))


def _load_tfds(data_dir, split):
    import tensorflow_datasets as tfds

    dataset = tfds.load("cifar10", split=split, data_dir=data_dir,
                        download=False, batch_size=-1, as_supervised=True)
    images, labels = tfds.as_numpy(dataset)
    return to_grey(images), labels.astype("int32")


def _has_prepared_tfds(data_dir):
    return os.path.isdir(os.path.join(data_dir, "cifar10"))


def _validation_split(num_samples, seed):
    order = np.random.default_rng(seed).permutation(num_samples)
    num_val = int(round(VALIDATION_FRACTION * num_samples))
    return order[num_val:], order[:num_val]


def load(data_dir, *, split="train", seed=0):
    """Grey CIFAR-10 images and labels of one split.

    Args:
        data_dir: the folder of the python-version pickles, or the
            `data_dir` of a prepared tensorflow-datasets `cifar10`.
        split: `"train"` (90 % of the train file), `"val"` (the other 10 %)
            or `"test"` (the test file).
        seed: seed of the train/validation split.

    Returns:
        `(images, labels)`: `uint8 (N, 32, 32)` and `int32 (N,)`.

    Example:

    >>> images, labels = keras_elm.data.cifar10.load(
    ...     "~/data/cifar-10-batches-py", split="val")
    """
    _check_choice("split", split, SPLITS)
    data_dir = os.path.expanduser(os.fspath(data_dir))
    if not os.path.isdir(data_dir):
        raise FileNotFoundError(
            f"CIFAR-10 folder {data_dir!r} does not exist. {_HOW_TO_GET}"
        )
    names = TRAIN_FILES if split != "test" else (TEST_FILE,)
    missing = [n for n in names if not os.path.isfile(os.path.join(data_dir, n))]
    if not missing:
        images, labels = _load_pickles(data_dir, names)
    elif _has_prepared_tfds(data_dir):
        images, labels = _load_tfds(data_dir, "test" if split == "test" else "train")
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

    Args:
        directory: folder to write `data_batch_1..train_batches` and
            `test_batch` into (created if needed).
        images: `uint8 (N, 32, 32, 3)` RGB images; the last sixth (at least
            one image) becomes `test_batch`, the rest is dealt into the
            train batches.
        labels: `int (N,)` labels 0..9.
        train_batches: number of train pickles; `load` expects 5.

    Returns:
        The directory.
    """
    images = np.asarray(images, "uint8")
    labels = np.asarray(labels).astype("int64")
    if images.ndim != 4 or images.shape[1:] != (32, 32, 3):
        raise ValueError(
            "Argument `images` must be uint8 (N, 32, 32, 3). "
            f"Received shape {images.shape}."
        )
    os.makedirs(directory, exist_ok=True)
    num_test = max(1, len(images) // 6)
    planes = images.transpose(0, 3, 1, 2).reshape(len(images), -1)
    parts = np.array_split(np.arange(len(images) - num_test), train_batches)
    names = [f"data_batch_{i + 1}" for i in range(train_batches)]
    parts.append(np.arange(len(images) - num_test, len(images)))
    names.append(TEST_FILE)
    for name, rows in zip(names, parts):
        batch = {b"data": planes[rows], b"labels": labels[rows].tolist()}
        temporary = os.path.join(directory, f".{name}.tmp")
        with open(temporary, "wb") as f:
            pickle.dump(batch, f)
        os.replace(temporary, os.path.join(directory, name))
    return directory
