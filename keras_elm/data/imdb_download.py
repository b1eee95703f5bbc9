"""The IMDB reviews' download: `keras_elm.data.imdb.download`.

`aclImdb_v1.tar.gz` from the Stanford page, checked against its pinned
checksums, of which only the labelled reviews are unpacked, into the
`aclImdb/` layout that `keras_elm.data.imdb.load` reads. Kept apart from
`imdb.py`, which re-exports it, so that neither passes 600 lines; it
imports nothing from `imdb.py`.
"""

import os

from keras_elm.checks import check_folder
from keras_elm.data import download as _download
from keras_elm.data.text_bytes import FIXTURE_MARKER

URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
# The archive's checksums, as projects that download it pin them: sha256
# from tensorflow-datasets (url_checksums/imdb_reviews.txt; MLDatasets.jl
# pins the same), md5 from torchtext (torchtext/datasets/imdb.py; Paddle's
# imdb dataset pins the same).
CHECKSUMS = {
    "sha256": "c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe",  # noqa: E501
    "md5": "7c2ac02c03563afcf9b574c7e56c153a",
}
DOWNLOAD_SIZE = 84_125_825  # bytes of the archive (tensorflow-datasets)
DOWNLOADED_NAME = "aclImdb"  # the folder `download` makes
CLASSES = ("neg", "pos")  # index = label
TFDS_NAME = "imdb_reviews"
FOLDERS = tuple(f"{s}/{c}" for s in ("train", "test") for c in CLASSES)


def _manual(data_dir):
    archive = os.path.join(data_dir, os.path.basename(URL))
    return (
        f"To get it by hand, download {URL} (sha256 {CHECKSUMS['sha256']}) "
        f"and put it at {archive}: `download()` then unpacks it without the "
        f"network. Or unpack it yourself into a folder and pass that folder "
        f"(the one holding aclImdb/) as the data_dir."
    )


def _count_reviews(folder):
    """`{"train/neg": number of *.txt files, ...}` of an aclImdb folder."""
    counts = {}
    for name in FOLDERS:
        path = os.path.join(folder, *name.split("/"))
        try:
            with os.scandir(path) as entries:
                counts[name] = sum(
                    e.name.endswith(".txt") and e.is_file() for e in entries
                )
        except OSError:
            counts[name] = 0
    return counts


def _unpack(archive, folder, progress):
    """Unpacks `aclImdb/{train,test}/{neg,pos}/*.txt` of `archive` into
    `folder`, checked as `load` reads it; returns the reviews' counts."""
    members, counts = [], {}

    def select(name):
        members.append(name)
        parts = name.split("/")
        wanted = (
            len(parts) == 4
            and parts[0] == DOWNLOADED_NAME
            and f"{parts[1]}/{parts[2]}" in FOLDERS
            and parts[3].endswith(".txt")
        )
        return "/".join(parts[1:]) if wanted else None

    def check(unpacked):
        counts.update(_count_reviews(unpacked))
        empty = [f"{DOWNLOADED_NAME}/{n}/" for n, c in counts.items() if not c]
        if empty:
            raise ValueError(f"it holds no reviews (*.txt) in {empty}.")

    try:
        _download.unpack_tar(
            archive, folder, select=select, check=check, progress=progress
        )
    except ValueError as error:
        raise ValueError(
            f"The archive {archive} cannot be unpacked as the IMDB reviews "
            f"(`load` reads {DOWNLOADED_NAME}/{{train,test}}/{{neg,pos}}/"
            f"*.txt): {error} At its top it holds: "
            f"{_download.top_level(members)}. "
            f"{_manual(os.path.dirname(archive))}"
        ) from None
    return counts


def download(data_dir=None, *, mirror=None, progress=True):
    """Downloads the IMDB reviews and unpacks the labelled ones.

    `aclImdb_v1.tar.gz` (`DOWNLOAD_SIZE` bytes) is fetched from `URL` (or
    `mirror`) into `data_dir`, resumed if a transfer was cut, checked
    against `CHECKSUMS` (`keras_elm.data.download.fetch`; nothing
    unverified is ever left at its name), and kept there as a cache. Only
    what `load` reads is unpacked, `aclImdb/{train,test}/{neg,pos}/*.txt`
    (not the 50,000 `unsup` reviews), into `<data_dir>/aclImdb` (made
    whole or not at all). A later call finds that folder and returns at
    once, without the network; so does a call whose `data_dir` is an
    aclImdb folder itself (or holds a prepared tensorflow-datasets
    `imdb_reviews`), which is returned as it is.

    Args:
        data_dir: the folder to keep the archive and `aclImdb/` in; None:
            `keras_elm.data.download.default_data_dir("imdb")`
            (`~/.keras/datasets/keras_elm/imdb`, or under `$KERAS_HOME`).
        mirror: a base URL serving `aclImdb_v1.tar.gz` instead of the
            Stanford page (a mirror, or a local server); None: `URL`.
        progress: print the transfer's progress and what was unpacked.

    Returns:
        The `aclImdb` folder, to pass to `load` or `splits(data_dir=...)`.

    Raises:
        keras_elm.data.download.DownloadError: the server cannot be reached
            or the transfer broke (the message names the URL and the way
            by hand); a rerun resumes it.
        keras_elm.data.download.ChecksumError: the archive is not the
            pinned one (the file, the expected and the found checksum).
        ValueError: `data_dir` cannot be written, or the archive, or an
            `aclImdb` folder already there, is not in the layout `load`
            reads (the message says what was found).

    Example:

    ```python
    import os
    import tempfile

    from keras_elm.data import imdb

    # Offline here: a folder already unpacked is returned as it is.
    data_dir = tempfile.mkdtemp()
    for name in ("train/neg", "train/pos", "test/neg", "test/pos"):
        folder = os.path.join(data_dir, "aclImdb", name)
        os.makedirs(folder)
        with open(os.path.join(folder, "0_1.txt"), "w") as f:
            f.write("A review.")
    root = imdb.download(data_dir)
    tokens, labels = imdb.load(root, split="test", max_length=16)
    ```
    """
    data_dir = check_folder("data_dir", data_dir)
    if data_dir is None:
        data_dir = _download.default_data_dir("imdb")
    data_dir = os.path.abspath(os.path.expanduser(os.fspath(data_dir)))
    if os.path.isdir(data_dir) and (
        all(_count_reviews(data_dir).values())
        or os.path.isdir(os.path.join(data_dir, TFDS_NAME))
    ):
        return data_dir  # the reviews are there already: nothing is missing
    folder = os.path.join(data_dir, DOWNLOADED_NAME)
    if os.path.isdir(folder):
        if os.path.exists(os.path.join(folder, FIXTURE_MARKER)):
            raise ValueError(
                f"The IMDB folder {folder} holds the synthetic stand-in of "
                f"`write_fixture` ({FIXTURE_MARKER}), not the real reviews. "
                f"Delete it, or give download() another data_dir."
            )
        empty = [n for n, count in _count_reviews(folder).items() if not count]
        if empty:
            raise ValueError(
                f"The IMDB folder {folder} is there but holds no reviews "
                f"(*.txt) in {empty}. Delete it, and `download()` unpacks "
                f"the archive again."
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
        train = counts["train/neg"] + counts["train/pos"]
        test = counts["test/neg"] + counts["test/pos"]
        print(
            f"IMDB: {train:,} train and {test:,} test reviews in {folder}",
            flush=True,
        )
    return folder
