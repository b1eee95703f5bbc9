"""ACL Anthology Network pairs at byte level: the Long Range Arena "Retrieval".

Each sample is two papers; the label says whether one cites the other
(1) or not (0). `load()` reads the release's TSV files
`new_aan_pairs.{train,eval,test}.tsv` (the `tsv_data/` folder of the Long
Range Arena release), one pair per line, no header, five tab-separated
fields `label id1 id2 text1 text2`. Labels may be written as floats
(`1.0`). Every text becomes its UTF-8 bytes + 1, truncated or zero-padded
to `max_length` (LRA: 4,000). Texts are taken as the bytes they are: a
byte that is not UTF-8 is a token like any other, as in LRA, which reads
the files as bytes too. `download()` fetches the LRA release
(`keras_elm.data.lra`, about 7.7 GB) on request and unpacks `tsv_data/`;
nothing else touches the network.

The lines are split on tabs only, never unquoted: the papers' texts hold
quote characters that a CSV reader would take for field quoting (LRA reads
them with quoting off too).
"""

import functools
import os

import numpy as np

from keras_elm.checks import check_choice as _check_choice
from keras_elm.checks import check_int as _check_int
from keras_elm.data import lra
from keras_elm.data import splitting
from keras_elm.data.text_bytes import VOCABULARY_SIZE  # noqa: F401 (re-export)
from keras_elm.data.text_bytes import check_max_length
from keras_elm.data.text_bytes import claim_fixture_folder
from keras_elm.data.text_bytes import encode
from keras_elm.data.text_bytes import write_atomically

SPLITS = ("train", "val", "test")
HELP = (
    "Pass --download to fetch the LRA release (https://storage.googleapis."
    "com/long-range-arena/lra_release.gz, about 7.7 GB) into --data-dir "
    "and unpack tsv_data/ there; or download it by hand, unpack it, and "
    "pass --data-dir ~/data/lra_release/tsv_data (the folder holding "
    "new_aan_pairs.train.tsv, new_aan_pairs.eval.tsv and "
    "new_aan_pairs.test.tsv). `--smoke` runs on a tiny synthetic fixture "
    "in that format."
)
FILES = {
    "train": "new_aan_pairs.train.tsv",
    "val": "new_aan_pairs.eval.tsv",
    "test": "new_aan_pairs.test.tsv",
}
FIELDS = ("label", "id1", "id2", "text1", "text2")
MAX_LENGTH = 4000
RELEASE_URL = lra.URL
# Bytes `download()` fetches: the whole LRA release.
DOWNLOAD_SIZE = lra.DOWNLOAD_SIZE

# Words of the synthetic papers of `write_fixture`: the two papers of a
# citing pair (label 1) share a topic.
_TOPICS = (
    ("parsing", "treebank", "dependency", "grammar", "parser", "syntax"),
    ("translation", "alignment", "bilingual", "decoder", "phrase", "BLEU"),
    ("speech", "acoustic", "phoneme", "prosody", "recognizer", "audio"),
    ("retrieval", "query", "ranking", "documents", "index", "relevance"),
)
_COMMON_WORDS = (
    "we",
    "the",
    "model",
    "results",
    "show",
    "a",
    "new",
    "method",
    "corpus",
    "naïve",
    '"baseline"',
    "of",
    "and",
    "evaluation",
    "approach",
    "data",
)


def _how_to_get(data_dir):
    return (
        f"`load` expects {', '.join(FILES.values())} in {data_dir!r}: the "
        f"tsv_data/ folder of the Long Range Arena release ({RELEASE_URL} "
        f"unpacks to lra_release/lra_release/tsv_data/; `data_dir` may also "
        f"be the folder holding tsv_data/). "
        f"`keras_elm.data.aan.write_fixture(data_dir)` writes a tiny "
        f"synthetic stand-in in the release's format."
    )


def _find_file(data_dir, name):
    for folder in (data_dir, os.path.join(data_dir, "tsv_data")):
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            return path
    raise FileNotFoundError(
        f"AAN file {os.path.join(data_dir, name)} does not exist. "
        f"{_how_to_get(data_dir)}"
    )


def _malformed(path, number, expected, found):
    return ValueError(
        f"{path}, line {number}: expected {expected}. Found: {found}"
    )


def _parse_label(field, path, number):
    try:
        value = float(field.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        value = None
    if value not in (0.0, 1.0):
        raise _malformed(
            path,
            number,
            "a label 0 or 1 (also written 0.0 or 1.0) in the first field",
            repr(field.decode("utf-8", "replace")),
        )
    return int(value)


def _read_pairs(path, max_length):
    """The label and the two texts, cut to `max_length` bytes, of each line."""
    texts_a, texts_b, labels = [], [], []
    blank = None  # the first empty line; only trailing ones are allowed
    try:
        with open(path, "rb") as f:
            # Binary lines end at b"\n" only: a stray b"\r" inside a text
            # does not split it, and one before b"\n" (CRLF) is dropped.
            for number, line in enumerate(f, start=1):
                line = line.removesuffix(b"\n").removesuffix(b"\r")
                if not line:
                    blank = blank or number
                    continue
                if blank is not None:
                    raise _malformed(
                        path,
                        blank,
                        "a pair (empty lines are allowed only at the end)",
                        "''",
                    )
                fields = line.split(b"\t")
                if len(fields) != len(FIELDS):
                    raise _malformed(
                        path,
                        number,
                        f"{len(FIELDS)} tab-separated fields "
                        f"({' '.join(FIELDS)})",
                        f"{len(fields)} fields in "
                        f"{line[:80].decode('utf-8', 'replace')!r}",
                    )
                labels.append(_parse_label(fields[0], path, number))
                texts_a.append(fields[3][:max_length])
                texts_b.append(fields[4][:max_length])
    except OSError as error:
        raise ValueError(f"Cannot read the AAN file {path}: {error}") from error
    if not labels:
        raise ValueError(
            f"{path} holds no pairs; expected one line per pair: "
            f"{' <tab> '.join(FIELDS)}."
        )
    return texts_a, texts_b, np.asarray(labels, np.int32)


def load(data_dir, *, split="train", max_length=MAX_LENGTH):
    """Byte tokens of the two papers of each pair, and the pairs' labels.

    The pairs come in the file's order; no file is modified.

    Args:
        data_dir: the folder holding `new_aan_pairs.{train,eval,test}.tsv`:
            the LRA release's `tsv_data/` (or the folder holding it), or
            the `directory` of `write_fixture()`.
        split: `"train"` (`new_aan_pairs.train.tsv`), `"val"`
            (`new_aan_pairs.eval.tsv`) or `"test"`
            (`new_aan_pairs.test.tsv`).
        max_length: tokens per text: longer texts are truncated, shorter
            ones padded with 0 at the end.

    Returns:
        `((tokens_a, tokens_b), labels)`: two `int32 (N, max_length)`
        arrays, UTF-8 byte + 1 (1..256, 0 = padding, `VOCABULARY_SIZE =
        257`), of `text1` and `text2`, and `int32 (N,)` labels (1: one
        paper cites the other).

    Example:

    >>> import tempfile
    >>> directory = write_fixture(tempfile.mkdtemp(), num_samples=4)
    >>> (a, b), labels = load(directory, split="val", max_length=256)
    >>> a.shape, b.shape, labels.shape
    ((4, 256), (4, 256), (4,))
    """
    _check_choice("split", split, SPLITS)
    max_length = check_max_length(max_length)
    data_dir = os.path.expanduser(os.fspath(data_dir))
    path = _find_file(data_dir, FILES[split])
    texts_a, texts_b, labels = _read_pairs(path, max_length)
    return (encode(texts_a, max_length), encode(texts_b, max_length)), labels


def _paper(rng, topic):
    words = list(rng.choice(_COMMON_WORDS, int(rng.integers(8, 20))))
    for _ in range(int(rng.integers(3, 7))):
        words.insert(
            int(rng.integers(0, len(words) + 1)),
            str(rng.choice(_TOPICS[topic])),
        )
    return " ".join(words) + "."


def write_fixture(directory, num_samples=8, *, seed=0):
    """Writes tiny synthetic `new_aan_pairs.{train,eval,test}.tsv` files.

    The release's format: no header, `label id1 id2 text1 text2` separated
    by tabs, labels written as `1.0` / `0.0` on every other line and `1` /
    `0` on the rest, ACL-Anthology-like ids (`P05-1022`), texts with
    quote characters and non-ASCII letters. A pair is labelled 1 when its
    two made-up papers share a topic, so a model can learn the task. Each
    file is written atomically, with the umask's mode; the same call writes
    the same bytes.

    A fixture already in `directory` (another seed's or size's, or one an
    interrupted call left) is replaced; the file `keras_elm_fixture.json`
    marks a fixture. AAN files there without it are another data set's
    (the release's, say), which is never overwritten: that is a
    `ValueError`.

    Args:
        directory: the folder to write the three files into (created if
            needed).
        num_samples: pairs per file, half of them (rounded down) labelled 1.
        seed: seed of the texts and labels.

    Returns:
        The directory, which `load` accepts as `data_dir`.

    Example:

    >>> import tempfile
    >>> directory = write_fixture(tempfile.mkdtemp(), num_samples=6)
    >>> int(load(directory, split="test")[1].sum())
    3
    """
    num_samples = _check_int("num_samples", num_samples, 1)
    rng = np.random.default_rng(seed)
    directory = os.fspath(directory)
    claim_fixture_folder(
        directory,
        [
            os.path.join(directory, name)
            for name in FILES.values()
            if os.path.lexists(os.path.join(directory, name))
        ],
        "keras_elm.data.aan.write_fixture",
        {"num_samples": int(num_samples), "seed": seed},
    )
    for split in SPLITS:
        lines = []
        labels = rng.permutation(np.arange(num_samples) % 2)
        for i, label in enumerate(labels):
            topic_a = int(rng.integers(len(_TOPICS)))
            other = int(rng.integers(1, len(_TOPICS)))
            topic_b = topic_a if label else (topic_a + other) % len(_TOPICS)
            ids = [
                f"{rng.choice(['P', 'J', 'N', 'W'])}"
                f"{rng.integers(0, 14):02d}-{rng.integers(1000, 2000)}"
                for _ in range(2)
            ]
            written = f"{label}.0" if i % 2 == 0 else f"{label}"
            lines.append(
                "\t".join(
                    [written, *ids, _paper(rng, topic_a), _paper(rng, topic_b)]
                )
                + "\n"
            )
        write_atomically(
            os.path.join(directory, FILES[split]),
            "".join(lines).encode("utf-8"),
        )
    return directory


def splits(
    data_dir=None,
    *,
    num_samples=40,
    max_length=MAX_LENGTH,
    seed=0,
    cache_dir=None,
    smoke=False,
):
    """The train, val and test pairs of the Retrieval example.

    From the files in `data_dir` (`load()`); the AAN pairs cannot be
    generated, so without `data_dir` there is only the `smoke` stand-in:
    `write_fixture()` pairs under `<cache_dir>/smoke_data/` (once), read
    back by `load()`.

    Args:
        data_dir: the release's `tsv_data/` folder (or the one holding it),
            or None.
        num_samples: pairs of each split of the smoke stand-in.
        max_length: bytes per text, padded or cut.
        seed: seed of the stand-in.
        cache_dir: the folder of the stand-in; None: a new temporary one.
        smoke: without `data_dir`, run on the stand-in.

    Returns:
        `{"train": ([tokens_1, tokens_2], labels), "val": ..., "test": ...}`:
        the two texts' tokens as a list (the two inputs of the two-tower
        model), as `load()` returns them.

    Raises:
        FileNotFoundError: no `data_dir` and no `smoke` (the message says
            what to download, `HELP`), or a file of `data_dir` is missing.

    Example:

    >>> data = splits(smoke=True, num_samples=4, max_length=100)
    >>> [tuple(x.shape) for x in data["val"][0]]
    [(4, 100), (4, 100)]
    """
    num_samples = _check_int("num_samples", num_samples, 1)
    max_length = check_max_length(max_length)
    data = splitting.from_files(
        functools.partial(load, max_length=max_length),
        data_dir,
        smoke=smoke,
        cache_dir=cache_dir,
        write_fixture=lambda folder: write_fixture(
            folder, num_samples, seed=seed
        ),
        missing="the Retrieval task needs the AAN pairs of the LRA release, "
        "which cannot be generated. " + HELP,
        num_samples=num_samples,
        seed=seed,
        settings=dict(retrieval=""),
    )
    # The two-tower model takes a list of its two inputs.
    return {
        split: (list(texts), labels) for split, (texts, labels) in data.items()
    }


def download(data_dir=None, *, mirror=None, progress=True):
    """Downloads the LRA release and unpacks the AAN pairs (`tsv_data/`).

    `keras_elm.data.lra.download_member(data_dir, "aan")`:
    `<data_dir>/lra_release.gz` (about 7.7 GB, kept as the cache of the
    other tasks) is fetched unless it is there, and `tsv_data/` is
    unpacked from it into `<data_dir>/lra_release/` unless it is there
    (then nothing touches the network).

    Args:
        data_dir: the download folder; None:
            `keras_elm.data.download.default_data_dir("lra_release")`.
        mirror: None, or a base URL serving `lra_release.gz`.
        progress: show progress bars.

    Returns:
        The folder to pass to `splits(data_dir=...)` and `load()`:
        `<data_dir>/lra_release/tsv_data`.

    Raises:
        ValueError: `data_dir` cannot be written, or the archive holds no
            AAN folder that `load()` reads (the message names what it
            holds).
        keras_elm.data.download.DownloadError: the server cannot be
            reached or the transfer broke (the next call resumes it).

    Example:

    ```python
    import os
    import tarfile
    import tempfile

    from keras_elm.data import aan
    from keras_elm.data import lra

    # A release already in `data_dir` (a tiny stand-in here) is unpacked
    # without the network.
    data_dir = tempfile.mkdtemp()
    pairs = aan.write_fixture(os.path.join(data_dir, "pairs"), 4)
    with tarfile.open(os.path.join(data_dir, lra.ARCHIVE), "w:gz") as tar:
        tar.add(pairs, "lra_release/lra_release/tsv_data")
    folder = aan.download(data_dir, progress=False)
    (a, b), labels = aan.load(folder, split="test", max_length=64)
    assert a.shape == (4, 64)
    ```
    """
    return lra.download_member(
        data_dir, "aan", mirror=mirror, progress=progress
    )
