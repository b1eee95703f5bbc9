"""ListOps (Nangia and Bowman 2018), the Long Range Arena's "ListOps" task.

Nested prefix expressions over the digits 0-9 with four operators on lists:
`MIN`, `MAX`, `MED` (the median, rounded down: for an even count the floor
of the mean of the two middle values) and `SM` (the sum modulo 10). The
label is the value of the expression, 0 to 9 (10 classes). A source is
written as space-separated tokens, an operator as `"[" + name`, the end of
its list as `"]"`:

    [MAX 2 9 [MIN 4 7 ] 0 ]        -> 9

Two sources:

- `generate()` draws expressions here with LRA's recipe, seeded, on every
  core, optionally cached as one `.npz` (in `trees`);
- `load()` reads the LRA release, `lra_release/listops-1000/basic_{train,
  val,test}.tsv`, or a folder written by `write_release()` (in `release`).

`splits()` gives the train/val/test arrays of the example, from either,
split by the one rule `split_sizes()`.

The release files are TSV with the header `Source\\tTarget`. Their sources
also wrap operands in round brackets: an operator with operands
`a1 ... ak` is written

    ( ( ... ( [OP a1 ) a2 ) ... ak ) ] )      (k + 1 opening brackets)

that is, the list is built as nested pairs `(((OP, a1), a2), ..., "]")`
and each pair is written `( left right )`. `write_tsv()` writes that form
and `tokenize()` drops every `(` and `)`, as LRA does, so the model sees
the plain source. `VOCABULARY` lists the tokens left; index 0 is padding.

`download()` fetches the LRA release (`keras_elm.data.lra`, about 7.7 GB)
on request and unpacks `listops-1000/`; nothing else touches the network.
The generator follows LRA's recipe (`generate()`) but is written afresh
and draws its own random numbers, so its trees are distributed as the
release's, not identical to them.
"""

import os

from keras_elm.checks import check_int as _check_int
from keras_elm.data import files
from keras_elm.data import lra
from keras_elm.data import splitting
from keras_elm.data.listops import release
from keras_elm.data.listops import trees
from keras_elm.data.listops.release import FILES
from keras_elm.data.listops.release import HEADER
from keras_elm.data.listops.release import RELEASE_SIZES
from keras_elm.data.listops.release import SPLITS
from keras_elm.data.listops.release import _check_split  # noqa: F401
from keras_elm.data.listops.release import _read_tsv  # noqa: F401
from keras_elm.data.listops.release import _tokenize  # noqa: F401
from keras_elm.data.listops.release import _wrap  # noqa: F401
from keras_elm.data.listops.release import load
from keras_elm.data.listops.release import split_sizes
from keras_elm.data.listops.release import tokenize
from keras_elm.data.listops.release import write_release
from keras_elm.data.listops.release import write_tsv
from keras_elm.data.listops.trees import _CHUNK  # noqa: F401
from keras_elm.data.listops.trees import GENERATOR_VERSION
from keras_elm.data.listops.trees import NUM_CLASSES
from keras_elm.data.listops.trees import OPERATOR_PROBABILITY
from keras_elm.data.listops.trees import OPERATORS
from keras_elm.data.listops.trees import VOCABULARY
from keras_elm.data.listops.trees import VOCABULARY_SIZE
from keras_elm.data.listops.trees import _check_settings  # noqa: F401
from keras_elm.data.listops.trees import _decode  # noqa: F401
from keras_elm.data.listops.trees import _draw_chunk  # noqa: F401
from keras_elm.data.listops.trees import _draw_levels  # noqa: F401
from keras_elm.data.listops.trees import generate
from keras_elm.data.processes import default_workers as _default_workers  # noqa: F401

HELP = (
    "Pass --download to fetch the LRA release (https://storage.googleapis."
    "com/long-range-arena/lra_release.gz, about 7.7 GB) into --data-dir "
    "and unpack listops-1000/ there; or download it by hand, unpack it, "
    "and pass --data-dir ~/data/lra_release/listops-1000 (the folder "
    "holding basic_train.tsv, basic_val.tsv and basic_test.tsv); without "
    "--data-dir the trees are generated."
)
# Bytes `download()` fetches: the whole LRA release.
DOWNLOAD_SIZE = lra.DOWNLOAD_SIZE

__all__ = [
    "DOWNLOAD_SIZE",
    "FILES",
    "GENERATOR_VERSION",
    "HEADER",
    "HELP",
    "NUM_CLASSES",
    "OPERATORS",
    "OPERATOR_PROBABILITY",
    "RELEASE_SIZES",
    "SPLITS",
    "VOCABULARY",
    "VOCABULARY_SIZE",
    "default_min_length",
    "download",
    "generate",
    "load",
    "release",
    "split_sizes",
    "splits",
    "tokenize",
    "trees",
    "write_release",
    "write_tsv",
]


def default_min_length(max_length):
    """The lower length bound of generated trees for `max_length`.

    LRA's 500, or for a short `max_length` (1000 or less) a quarter of it,
    so that short trees can still be drawn.

    Args:
        max_length: the upper bound, tokens.

    Returns:
        The lower bound, an int of at least 1.

    Example:

    >>> default_min_length(2000), default_min_length(60)
    (500, 15)
    """
    max_length = _check_int("max_length", max_length, 1)
    return 500 if max_length > 1000 else max(1, max_length // 4)


def splits(
    data_dir=None,
    *,
    num_samples=100_000,
    max_length=2000,
    min_length=None,
    seed=0,
    cache_dir=None,
    smoke=False,
    progress=True,
):
    """The train, val and test token arrays of the ListOps example.

    From the release files in `data_dir`; without it, `num_samples` trees
    are generated (`generate()`, cached under `<cache_dir>/data_cache/`)
    and split by `split_sizes()` in generation order, or, with `smoke`,
    the same trees are written as release files under
    `<cache_dir>/smoke_data/` (once: a rerun reads them again) and read
    back with `load()`, so that the run goes through the real format.

    Args:
        data_dir: the folder of `basic_{train,val,test}.tsv`, or None.
        num_samples: trees to generate (without `data_dir`), at least 3.
        max_length: tokens per row, padded or cut; generated trees are
            shorter.
        min_length: generated trees are longer; None: `default_min_length`.
        seed: seed of the generated trees.
        cache_dir: the folder of generated files; None: the trees are kept
            in memory only (and a smoke fixture in a new temporary folder).
        smoke: without `data_dir`, go through the release's file format.
        progress: show a progress bar while generating.

    Returns:
        `{"train": (tokens, labels), "val": ..., "test": ...}`: `int32`
        tokens `(N, max_length)` and `int32` labels `(N,)`.

    Raises:
        FileNotFoundError: a file of `data_dir` is missing.

    Example:

    >>> data = splits(num_samples=50, max_length=60, progress=False)
    >>> {name: x.shape for name, (x, y) in data.items()}
    {'train': (42, 60), 'val': (4, 60), 'test': (4, 60)}
    """
    data_dir = splitting.check_folder("data_dir", data_dir)
    cache_dir = splitting.check_folder("cache_dir", cache_dir)
    smoke = splitting.check_bool("smoke", smoke)
    max_length = _check_int("max_length", max_length, 1)
    seed = _check_int("seed", seed, 0)
    if data_dir:
        return {
            split: load(data_dir, split=split, max_length=max_length)
            for split in SPLITS
        }
    num_samples = _check_int("num_samples", num_samples, len(SPLITS))
    if min_length is None:
        min_length = default_min_length(max_length)
    min_length = _check_int("min_length", min_length, 1)
    lengths = dict(min_length=min_length, max_length=max_length)
    if smoke:
        # Through the release's bracket-wrapped TSV and the real loader.
        folder = files.made_once(
            cache_dir,
            lambda path: write_release(path, num_samples, seed=seed, **lengths),
            num_samples=num_samples,
            seed=seed,
            listops="",
            **lengths,
        )
        return splits(folder, max_length=max_length)
    sources, targets = generate(
        num_samples,
        seed=seed,
        cache_dir=None
        if cache_dir is None
        else os.path.join(cache_dir, "data_cache"),
        progress=splitting.check_bool("progress", progress),
        **lengths,
    )
    tokens = tokenize(sources, max_length)
    result, start = {}, 0
    for split, size in split_sizes(num_samples).items():
        result[split] = (
            tokens[start : start + size],
            targets[start : start + size],
        )
        start += size
    return result


def download(data_dir=None, *, mirror=None, progress=True):
    """Downloads the LRA release and unpacks ListOps.

    `keras_elm.data.lra.download_member(data_dir, "listops")`:
    `<data_dir>/lra_release.gz` (about 7.7 GB, kept as the cache of the
    other tasks) is fetched unless it is there, and `listops-1000/` is
    unpacked from it into `<data_dir>/lra_release/` unless it is there
    (then nothing touches the network).

    Args:
        data_dir: the download folder; None:
            `keras_elm.data.download.default_data_dir("lra_release")`.
        mirror: None, or a base URL serving `lra_release.gz`.
        progress: show progress bars.

    Returns:
        The folder to pass to `splits(data_dir=...)` and `load()`:
        `<data_dir>/lra_release/listops-1000`.

    Raises:
        ValueError: `data_dir` cannot be written, or the archive holds no
            ListOps folder that `load()` reads (the message names what it
            holds).
        keras_elm.data.download.DownloadError: the server cannot be
            reached or the transfer broke (the next call resumes it).

    Example:

    ```python
    import os
    import tarfile
    import tempfile

    from keras_elm.data import listops
    from keras_elm.data import lra

    # A release already in `data_dir` (a tiny stand-in here) is unpacked
    # without the network.
    data_dir = tempfile.mkdtemp()
    trees = os.path.join(data_dir, "trees")
    listops.write_release(trees, 50, seed=0, min_length=10, max_length=60)
    with tarfile.open(os.path.join(data_dir, lra.ARCHIVE), "w:gz") as tar:
        tar.add(trees, "lra_release/lra_release/listops-1000")
    folder = listops.download(data_dir, progress=False)
    tokens, labels = listops.load(folder, split="val", max_length=60)
    assert tokens.shape == (4, 60)
    ```
    """
    return lra.download_member(
        data_dir, "listops", mirror=mirror, progress=progress
    )
