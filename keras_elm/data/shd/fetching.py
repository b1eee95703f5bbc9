"""Downloading SHD: the release's two zips, verified, unzipped and checked.

`download()` fetches `shd_train.h5.zip` and `shd_test.h5.zip` from the
Zenke lab (`URL`) with `keras_elm.data.download.fetch` (md5-checked,
resumable, nothing unverified left under a file's name), unzips
`shd_train.h5` and `shd_test.h5` beside them, each written whole or not at
all, and checks each file's structure as `load()` reads it. The zips stay
in the folder as the cache: a later call finds the files (or the zips) and
touches no network.

The checksums are the md5s that two projects pin for these zips: tonic
(`tonic.datasets.SHD`: `train_md5`, `test_md5`) and spikingjelly
(`spikingjelly.datasets.shd.SpikingHeidelbergDigits.resource_url_md5`).
The `.h5.gz` files on compneuro.net are pinned with md5s that differ from
one project to another, so they are not used.

The official counts changed between releases (8,332 train / 2,088 test
samples earlier, 8,156 / 2,264 now): `download()` prints the counts of the
files it got.
"""

import os
import posixpath
import shutil
import zipfile
import zlib

from keras_elm.checks import check_bool
from keras_elm.checks import check_folder
from keras_elm.data import download as _download
from keras_elm.data import files
from keras_elm.data.shd import release
from keras_elm.data.shd.spikes import _KEYS
from keras_elm.data.shd.spikes import FILES
from keras_elm.data.shd.spikes import URL

ARCHIVES = {split: f"{name}.zip" for split, name in FILES.items()}
URLS = {split: URL + name for split, name in ARCHIVES.items()}
# md5s of the zips: tonic (`SHD.train_md5`, `SHD.test_md5`) and
# spikingjelly (`SpikingHeidelbergDigits.resource_url_md5`) pin the same.
CHECKSUMS = {
    "shd_train.h5.zip": {"md5": "f3252aeb598ac776c1b526422d90eecb"},
    "shd_test.h5.zip": {"md5": "1503a5064faa34311c398fb0a1ed0a6f"},
}
# Bytes of the two zips, approximate (about 130 MB + 40 MB), for the plan.
DOWNLOAD_SIZE = 170_000_000
# Samples of the current release's files (an earlier one: 8,332 / 2,088).
RELEASE_COUNTS = {"train": 8156, "test": 2264}


def _manual(split, data_dir):
    """How to get one file by hand, for the error messages."""
    return (
        f"By hand: download {URLS[split]} (md5 "
        f"{CHECKSUMS[ARCHIVES[split]]['md5']}) and unzip {FILES[split]} "
        f"into {data_dir}."
    )


def _structure(path):
    """The samples of the SHD file `path`, from its structure alone.

    Opens the file and checks that it holds `spikes/times`, `spikes/units`
    and `labels` as one-dimensional datasets of one length, as `load()`
    needs, without reading the spikes.

    Raises:
        ValueError: naming the file and what was found.
    """
    with release._open(path) as file:
        shapes = {key: release._dataset(file, key, path).shape for key in _KEYS}
    if any(len(shape) != 1 for shape in shapes.values()) or (
        len(set(shapes.values())) != 1
    ):
        found = ", ".join(f"`{key}` {shape}" for key, shape in shapes.items())
        raise ValueError(
            f"{path}: datasets {', '.join(f'`{key}`' for key in _KEYS)} "
            f"must be one-dimensional, one entry per sample, all of one "
            f"length. Found {found}."
        )
    return shapes["labels"][0]


def _sound(path, progress):
    """The samples of `path` if it is there and sound, else None."""
    if not os.path.isfile(path):
        return None
    try:
        return _structure(path)
    except ValueError as error:
        if progress:
            print(f"{error} Unpacking it again.", flush=True)
        return None


def _member(zipped, archive, name):
    """The zip's entry for the file `name` (at the top, or in a folder)."""
    entries = [
        info
        for info in zipped.infolist()
        if not info.is_dir()
        and posixpath.basename(info.filename) == name
        and not info.filename.startswith("__MACOSX/")
    ]
    if not entries:
        found = [info.filename for info in zipped.infolist()][:10]
        raise ValueError(
            f"The archive {archive} holds no {name}: found {found}. It is "
            f"not the SHD release's zip; delete it and download it again."
        )
    return min(entries, key=lambda info: info.filename.count("/"))


def _unzip(archive, name, target):
    """Unzips `name` to `target`, whole or not at all; checks it as
    `load()` does. Returns its number of samples."""
    with files.atomic_path(target) as temporary:
        try:
            with zipfile.ZipFile(archive) as zipped:
                entry = _member(zipped, archive, name)
                with (
                    zipped.open(entry) as source,
                    open(temporary, "wb") as f,
                ):
                    shutil.copyfileobj(source, f, 1 << 20)
        except (zipfile.BadZipFile, EOFError, zlib.error) as error:
            raise ValueError(
                f"{archive} is not a whole zip archive ({error}): delete it "
                f"and download it again."
            ) from None
        try:
            labels = release._read(temporary)[3]
        except ValueError as error:
            how_to_get = release._how_to_get(os.path.dirname(temporary))
            found = (
                str(error)
                .replace(f" {how_to_get}", "")
                .replace(temporary, f"{entry.filename} (in the zip)")
            )
            raise ValueError(
                f"The archive {archive} does not hold an SHD file as "
                f"`load()` reads it: {found} Delete it and download it "
                f"again, or get the files by hand."
            ) from None
    return len(labels)


def download(data_dir=None, *, mirror=None, progress=True):
    """Downloads SHD's files, verified, and unzips them into `data_dir`.

    Fetches `shd_train.h5.zip` and `shd_test.h5.zip` from `URL` (about
    170 MB together, `DOWNLOAD_SIZE`), checks their md5s (`CHECKSUMS`),
    unzips `shd_train.h5` and `shd_test.h5` into `data_dir` and checks
    their structure as `load()` does. A broken transfer is resumed by the
    next call; a file that is already there and sound is kept, so a second
    call touches no network. Prints the samples of each file: the release's
    counts changed over time (`RELEASE_COUNTS`).

    Args:
        data_dir: the folder to put the files in (created if needed); None:
            `<keras home>/datasets/keras_elm/shd` (`~/.keras` or
            `$KERAS_HOME`).
        mirror: None, or a base URL serving the same two zips (a mirror,
            or a local server in tests).
        progress: show the transfers' progress and print the counts.

    Returns:
        `data_dir`, to pass to `load()` or `splits(data_dir=...)`.

    Raises:
        ValueError: `data_dir` cannot be written, or an unpacked file is not
            an SHD file (the message names it and what was found).
        keras_elm.data.download.ChecksumError: a zip's md5 is not the
            pinned one (the zip is removed).
        keras_elm.data.download.DownloadError: the server cannot be
            reached or the transfer broke (the message names the URL and
            the manual way).

    Example:

    ```python
    import tempfile

    from keras_elm.data import shd

    # Files already there and sound are kept: no network access.
    folder = shd.write_synthetic(tempfile.mkdtemp(), num_train=20, num_test=10)
    assert shd.download(folder, progress=False) == folder
    ```
    """
    check_folder("data_dir", data_dir)
    progress = check_bool("progress", progress)
    if mirror is not None:
        _download.source_url(URL, mirror)  # checks it
    if data_dir:
        data_dir = os.path.abspath(os.path.expanduser(os.fspath(data_dir)))
    else:
        data_dir = _download.default_data_dir("shd")
    counts = {}
    for split, name in FILES.items():
        target = os.path.join(data_dir, name)
        counts[split] = _sound(target, progress)
        if counts[split] is not None:
            continue
        archive = _download.fetch(
            _download.source_url(URLS[split], mirror),
            data_dir,
            checksums=CHECKSUMS[ARCHIVES[split]],
            manual=_manual(split, data_dir),
            progress=progress,
        )
        counts[split] = _unzip(archive, name, target)
    if progress:
        synthetic = release.is_synthetic(data_dir)
        print(_counts_line(counts, data_dir, synthetic), flush=True)
    return data_dir


def _counts_line(counts, data_dir, synthetic):
    """The line that reports the samples the user got."""
    line = (
        f"SHD: {counts['train']:,} train / {counts['test']:,} test samples "
        f"in {data_dir}"
    )
    if synthetic:
        line += (
            ": a synthetic stand-in (write_synthetic), not the release; "
            "delete its files to download the release"
        )
    elif counts != RELEASE_COUNTS:
        line += (
            f" (the current release has {RELEASE_COUNTS['train']:,} / "
            f"{RELEASE_COUNTS['test']:,}, an earlier one 8,332 / 2,088)"
        )
    return line
