"""IMDB movie reviews at byte level, the Long Range Arena's "Text" task.

Nothing is downloaded unless asked: `download()` (the examples'
`--download`; `imdb_download.py`) fetches `aclImdb_v1.tar.gz`, checks its
pinned checksums and unpacks the labelled reviews. Two sources are read,
in this order:

- the raw "Large Movie Review Dataset" (`aclImdb_v1.tar.gz` unpacks to
  `aclImdb/`): `aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt`, one
  review per file; `unsup/` and the other files are ignored;
- a prepared tensorflow-datasets `imdb_reviews` (`tfds.load("imdb_reviews",
  data_dir=..., download=False)` must find it).

Each review becomes its UTF-8 bytes + 1, truncated or zero-padded to
`max_length` (LRA: 4,096), exactly as it is on disk (the `<br />` tags
included): a byte that is not UTF-8 is a token like any other, as in LRA,
which reads the reviews as bytes too. Labels: 0 = negative, 1 = positive.
As in LRA there is no separate validation set: the test split doubles as
validation, so `split="val"` returns exactly the `"test"` data.
"""

import functools
import os
import re

import numpy as np

from keras_elm.checks import check_choice as _check_choice
from keras_elm.checks import check_int as _check_int
from keras_elm.data import splitting
from keras_elm.data.imdb_download import CHECKSUMS  # noqa: F401 (re-export)
from keras_elm.data.imdb_download import CLASSES
from keras_elm.data.imdb_download import DOWNLOAD_SIZE  # noqa: F401
from keras_elm.data.imdb_download import DOWNLOADED_NAME  # noqa: F401
from keras_elm.data.imdb_download import TFDS_NAME
from keras_elm.data.imdb_download import URL
from keras_elm.data.imdb_download import download  # noqa: F401
from keras_elm.data.text_bytes import VOCABULARY_SIZE  # noqa: F401 (re-export)
from keras_elm.data.text_bytes import check_max_length
from keras_elm.data.text_bytes import claim_fixture_folder
from keras_elm.data.text_bytes import encode
from keras_elm.data.text_bytes import write_atomically

SPLITS = ("train", "val", "test")
MAX_LENGTH = 4096
HELP = (
    "Pass --download to fetch aclImdb_v1.tar.gz (84 MB, checked against "
    "pinned checksums) and unpack its labelled reviews into --data-dir "
    "(default: $KERAS_HOME/datasets/keras_elm/imdb, KERAS_HOME being "
    "~/.keras unless set), as keras_elm.data.imdb.download() does. Or by "
    "hand: download "
    "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
    ", unpack it, and pass --data-dir ~/data/aclImdb (the folder holding "
    "train/pos, train/neg, test/pos and test/neg with the reviews as "
    "*.txt), or the data_dir of a prepared tensorflow-datasets "
    "'imdb_reviews'. `--smoke` runs on a tiny synthetic fixture in the "
    "aclImdb layout."
)
_FOLDERS = {"train": "train", "val": "test", "test": "test"}
_REVIEW_NAME = re.compile(r"(\d+)_(\d+)\.txt")

# Words of the synthetic reviews of `write_fixture`: each class has its own
# sentiment words, so that a model can tell the classes apart.
_SENTIMENT_WORDS = (
    (
        "awful",
        "boring",
        "dull",
        "clumsy",
        "tedious",
        "dreadful",
        "weak",
        "lifeless",
    ),
    (
        "superb",
        "moving",
        "brilliant",
        "charming",
        "gripping",
        "wonderful",
        "witty",
        "stunning",
    ),
)
_NEUTRAL_WORDS = (
    "the",
    "film",
    "plot",
    "cast",
    "story",
    "director",
    "ending",
    "music",
    "scenes",
    "actors",
    "and",
    "was",
    "this",
    "movie",
    "café",
    "Amélie",
)


def _how_to_get(data_dir):
    return (
        f"Either unpack {URL} into {data_dir!r}, so that the reviews are "
        f"{os.path.join(data_dir, 'aclImdb', 'train', 'pos', '*.txt')} and "
        f"likewise aclImdb/train/neg, aclImdb/test/pos and aclImdb/test/neg "
        f"(`data_dir` may also be the aclImdb folder itself), or pass the "
        f"`data_dir` of a prepared tensorflow-datasets '{TFDS_NAME}' "
        f"(`tfds.builder('{TFDS_NAME}', data_dir=...).download_and_prepare()`"
        f" on a machine with a network). "
        f"`keras_elm.data.imdb.download(data_dir)` (the examples' "
        f"`--download`) fetches the archive (84 MB) and unpacks it there. "
        f"`keras_elm.data.imdb.write_fixture(data_dir)` writes a tiny "
        f"synthetic stand-in in the raw layout."
    )


def _raw_root(data_dir):
    """The aclImdb folder `data_dir` is or holds, or None."""
    nested = os.path.join(data_dir, "aclImdb")
    if os.path.isdir(nested):
        return nested
    is_root = os.path.basename(os.path.normpath(data_dir)) == "aclImdb" or any(
        os.path.isdir(os.path.join(data_dir, folder, label))
        for folder in ("train", "test")
        for label in CLASSES
    )
    return data_dir if is_root else None


def _has_prepared_tfds(data_dir):
    # The rule of `cifar10`: tfds keeps a prepared data set in a folder
    # named after it; `tfds.load` itself checks the versions inside.
    return os.path.isdir(os.path.join(data_dir, TFDS_NAME))


def _review_order(name):
    match = _REVIEW_NAME.fullmatch(name)
    return (0, int(match.group(1)), name) if match else (1, 0, name)


def _read_reviews(folder, how_to_get):
    """The bytes of every `*.txt` file of `folder`, by review id."""
    if not os.path.isdir(folder):
        raise FileNotFoundError(
            f"IMDB folder {folder} does not exist. {how_to_get}"
        )
    names = sorted(
        (name for name in os.listdir(folder) if name.endswith(".txt")),
        key=_review_order,
    )
    if not names:
        raise FileNotFoundError(
            f"IMDB folder {folder} holds no reviews (<id>_<rating>.txt "
            f"files). {how_to_get}"
        )
    reviews = []
    for name in names:
        path = os.path.join(folder, name)
        try:
            with open(path, "rb") as f:
                review = f.read()
        except OSError as error:
            raise ValueError(
                f"Cannot read the IMDB review {path}: {error}"
            ) from error
        if not review:
            # No review of the data set is empty: a file cut short.
            raise ValueError(
                f"The IMDB review {path} is empty; expected the text of a "
                f"review. Unpack {URL} again (or delete the file)."
            )
        reviews.append(review)
    return reviews


def _interleave(negative, positive):
    """neg 0, pos 0, neg 1, pos 1, ...; the longer class's rest at the end."""
    texts, labels = [], []
    for i in range(max(len(negative), len(positive))):
        for label, reviews in enumerate((negative, positive)):
            if i < len(reviews):
                texts.append(reviews[i])
                labels.append(label)
    return texts, np.asarray(labels, np.int32)


def _load_raw(root, folder, max_length, how_to_get):
    negative, positive = (
        _read_reviews(os.path.join(root, folder, label), how_to_get)
        for label in CLASSES
    )
    texts, labels = _interleave(negative, positive)
    return encode(texts, max_length), labels


def _load_tfds(data_dir, split, max_length, how_to_get):
    import tensorflow_datasets as tfds

    try:
        dataset = tfds.load(
            TFDS_NAME,
            split=split,
            data_dir=data_dir,
            download=False,
            batch_size=1024,
        )
    except (AssertionError, KeyError) as error:
        # What `download=False` raises when the data is not prepared: an
        # AssertionError, or a KeyError ("`splits` is empty") when a version
        # folder is there without its files.
        raise FileNotFoundError(
            f"tensorflow-datasets found no prepared '{TFDS_NAME}' in "
            f"{data_dir!r}: {error} {how_to_get}"
        ) from error
    texts, labels = [], []
    for batch in tfds.as_numpy(dataset):
        texts.extend(batch["text"])
        labels.extend(batch["label"])
    labels = np.asarray(labels)
    if labels.size and (
        labels.dtype.kind not in "iu" or not np.isin(labels, (0, 1)).all()
    ):
        raise ValueError(
            f"The tensorflow-datasets '{TFDS_NAME}' in {data_dir!r} (split "
            f"{split!r}) holds labels other than 0 and 1: "
            f"{np.unique(labels)[:10].tolist()}."
        )
    return encode(texts, max_length), labels.astype(np.int32)


def load(data_dir, *, split="train", max_length=MAX_LENGTH):
    """Byte tokens and labels of the IMDB reviews of one split.

    From the raw aclImdb folder, the reviews come in a fixed order:
    negative and positive alternate (neg, pos, neg, pos, ...), each class
    sorted by the review id of its file names `<id>_<rating>.txt`. From
    tensorflow-datasets, they come in the prepared files' order. Nothing is
    shuffled (`model.fit` shuffles), and no file is modified.

    Args:
        data_dir: a folder holding `aclImdb/` (or the `aclImdb` folder
            itself), or the `data_dir` of a prepared tensorflow-datasets
            `imdb_reviews`. The raw folder is used when both are there.
        split: `"train"` (the 25,000 train reviews), `"test"` (the 25,000
            test reviews) or `"val"`, which returns exactly the test data:
            as in LRA, the test split doubles as validation.
        max_length: tokens per review: longer reviews are truncated,
            shorter ones padded with 0 at the end.

    Returns:
        `(tokens, labels)`: `int32 (N, max_length)` tokens, UTF-8 byte + 1
        (1..256, 0 = padding, `VOCABULARY_SIZE = 257`), and `int32 (N,)`
        labels, 0 = negative, 1 = positive.

    Example:

    >>> import tempfile
    >>> directory = tempfile.mkdtemp()
    >>> _ = write_fixture(directory, num_samples_per_class=2)
    >>> tokens, labels = load(directory, split="val", max_length=512)
    >>> tokens.shape, labels.tolist()
    ((4, 512), [0, 1, 0, 1])
    """
    _check_choice("split", split, SPLITS)
    max_length = check_max_length(max_length)
    data_dir = os.path.expanduser(os.fspath(data_dir))
    how_to_get = _how_to_get(data_dir)
    if not os.path.isdir(data_dir):
        raise FileNotFoundError(
            f"IMDB folder {data_dir!r} does not exist. {how_to_get}"
        )
    root = _raw_root(data_dir)
    if root is not None:
        return _load_raw(root, _FOLDERS[split], max_length, how_to_get)
    if _has_prepared_tfds(data_dir):
        return _load_tfds(data_dir, _FOLDERS[split], max_length, how_to_get)
    raise FileNotFoundError(
        f"{data_dir!r} holds neither an aclImdb/ folder of reviews nor a "
        f"prepared tensorflow-datasets '{TFDS_NAME}'. {how_to_get}"
    )


def _review(rng, label, max_length):
    """A synthetic review of `label`, at most `max_length` UTF-8 bytes."""
    text = ""
    for sentence in range(int(rng.integers(2, 5))):
        words = list(rng.choice(_NEUTRAL_WORDS, int(rng.integers(4, 9))))
        for _ in range(int(rng.integers(1, 3))):
            words.insert(
                int(rng.integers(0, len(words) + 1)),
                str(rng.choice(_SENTIMENT_WORDS[label])),
            )
        words[0] = words[0][:1].upper() + words[0][1:]
        separator = (
            "" if sentence == 0 else str(rng.choice([" ", "<br /><br />"]))
        )
        text += separator + " ".join(words) + "."
    if max_length is None:
        return text
    # Whole words only, but always one word (cut to size if it must be).
    words = text.split(" ")
    kept = words[0]
    for word in words[1:]:
        if len(f"{kept} {word}".encode("utf-8")) > max_length:
            break
        kept = f"{kept} {word}"
    return kept.encode("utf-8")[:max_length].decode("utf-8", "ignore")


def write_fixture(
    directory, num_samples_per_class=4, *, seed=0, max_length=None
):
    """Writes a tiny synthetic aclImdb folder in the raw layout.

    `<directory>/aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt`, ids
    from 0, ratings 7..10 for positive and 1..4 for negative reviews, as in
    the real data set. The reviews are short made-up sentences whose
    sentiment words differ between the classes (so a model can learn them),
    with the real files' `<br />` tags and a few non-ASCII characters. Each
    file is written atomically, with the umask's mode; the same call writes
    the same bytes.

    A fixture already in `directory` (another seed's or size's, or one an
    interrupted call left) is replaced, its extra reviews deleted; the file
    `aclImdb/keras_elm_fixture.json` marks a fixture. Reviews there without it
    are another data set's, which is never touched: that is a `ValueError`.

    Args:
        directory: the folder to hold `aclImdb/` (created if needed).
        num_samples_per_class: reviews per class and split.
        seed: seed of the words and ratings.
        max_length: if given, every review is at most this many bytes, cut
            at a word boundary, so that `load(..., max_length=max_length)`
            sees whole reviews.

    Returns:
        The path of `<directory>/aclImdb`, which `load` also accepts.

    Example:

    >>> import tempfile
    >>> root = write_fixture(tempfile.mkdtemp(), num_samples_per_class=3)
    >>> load(root, split="train")[0].shape
    (6, 4096)
    """
    num_samples_per_class = _check_int(
        "num_samples_per_class", num_samples_per_class, 1
    )
    if max_length is not None:
        max_length = check_max_length(max_length)
    rng = np.random.default_rng(seed)
    root = os.path.join(os.fspath(directory), "aclImdb")
    folders = {}
    for folder in ("train", "test"):
        for label, name in enumerate(CLASSES):
            files = folders[os.path.join(root, folder, name)] = {}
            for i in range(num_samples_per_class):
                rating = int(
                    rng.integers(7, 11) if label else rng.integers(1, 5)
                )
                files[f"{i}_{rating}.txt"] = _review(
                    rng, label, max_length
                ).encode("utf-8")
    # `load` reads every review of a folder, so those of another set would
    # mix in: a fixture's (marked) are replaced, anything else refused.
    existing = {
        class_dir: [
            name
            for name in (
                os.listdir(class_dir) if os.path.isdir(class_dir) else ()
            )
            if name.endswith(".txt")
        ]
        for class_dir in folders
    }
    claim_fixture_folder(
        root,
        [os.path.join(d, n) for d, names in existing.items() for n in names],
        "keras_elm.data.imdb.write_fixture",
        {
            "num_samples_per_class": int(num_samples_per_class),
            "seed": seed,
            "max_length": max_length,
        },
    )
    for class_dir, files in folders.items():
        os.makedirs(class_dir, exist_ok=True)
        for file_name, data in files.items():
            write_atomically(os.path.join(class_dir, file_name), data)
        for name in existing[class_dir]:
            if name not in files:
                os.remove(os.path.join(class_dir, name))
    return root


def splits(
    data_dir=None,
    *,
    num_samples=40,
    max_length=MAX_LENGTH,
    seed=0,
    cache_dir=None,
    smoke=False,
):
    """The train, val and test bytes of the Text example.

    From the files in `data_dir` (`load()`); IMDB cannot be generated, so
    without `data_dir` there is only the `smoke` stand-in: `write_fixture()`
    reviews (`num_samples // 4` of each class, at least 2) under
    `<cache_dir>/smoke_data/` (once), read back by `load()`.

    Args:
        data_dir: the aclImdb folder (or one holding it, or the data_dir of
            a prepared tensorflow-datasets `imdb_reviews`), or None.
        num_samples: sets the size of the smoke stand-in.
        max_length: bytes per review, padded or cut.
        seed: seed of the stand-in.
        cache_dir: the folder of the stand-in; None: a new temporary one.
        smoke: without `data_dir`, run on the stand-in.

    Returns:
        `{"train": (tokens, labels), "val": ..., "test": ...}` as `load()`
        returns them.

    Raises:
        FileNotFoundError: no `data_dir` and no `smoke` (the message says
            what to download, `HELP`), or a file of `data_dir` is missing.

    Example:

    >>> data = splits(smoke=True, num_samples=8, max_length=100)
    >>> tuple(data["train"][0].shape)
    (4, 100)
    """
    num_samples = _check_int("num_samples", num_samples, 1)
    max_length = check_max_length(max_length)
    return splitting.from_files(
        functools.partial(load, max_length=max_length),
        data_dir,
        smoke=smoke,
        cache_dir=cache_dir,
        write_fixture=lambda folder: write_fixture(
            folder,
            max(2, num_samples // 4),
            seed=seed,
            max_length=max_length,
        ),
        missing="the Text task needs IMDB, which cannot be generated. " + HELP,
        num_samples=num_samples,
        seed=seed,
        settings=dict(text="", max_length=max_length),
    )
