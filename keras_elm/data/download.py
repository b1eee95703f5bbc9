"""Downloads on request: verified, resumable, never half-written.

Nothing in keras_elm touches the network unless the user asks (a data
module's `download()`, an example's `--download`). Then:

- `fetch` downloads one file into a folder. The bytes go to a hidden
  `.<name>.part` file beside the target; a broken transfer (or Ctrl-C)
  leaves only that file, and the next call resumes it with an HTTP `Range`
  request (a server that ignores ranges sends the whole file again). Only
  once the pinned checksums and the announced length match is it renamed
  to its name: nothing unverified ever appears under the target's name.
  A checksum mismatch removes the `.part` file and raises a
  `ChecksumError` naming the file and both checksums.
- A file already there whose checksums match is reused without any
  network access: the folder is the cache.
- Only `http` and `https` URLs are fetched, and a redirect from `https` to
  `http` is refused: nothing falls back to an unencrypted connection.
- `unpack_tar` and `unpack_zip` unpack the members a loader reads into a
  temporary folder, which is renamed into place once whole
  (`files.publish_folder`); members with absolute names or `..` are
  refused.

The checksums each data module pins can be replaced, for tests against a
local server serving small archives, with `override_checksums`.
"""

import contextlib
import functools
import hashlib
import os
import shutil
import tarfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib

from keras_elm.data import files

_CHUNK = 1 << 20  # bytes read and hashed at a time
_TIMEOUT = 60  # seconds without data before a transfer counts as broken
# `override_checksums`: file name -> checksums (or None: not checked).
_OVERRIDES = {}


class DownloadError(OSError):
    """A download failed: the server could not be reached, answered an
    error, or the transfer broke. The message names the URL and the manual
    way; a broken transfer is resumed by the next call."""


class NothingToUnpack(ValueError):
    """An archive holds none of the files a loader reads. The message
    names the archive and what its top holds."""


class ChecksumError(ValueError):
    """A downloaded file's checksum is not the pinned one. The message
    names the file, the expected and the found checksum."""


def keras_home():
    """The folder Keras keeps its files in: `$KERAS_HOME`, or `~/.keras`.

    Example:

    >>> import os
    >>> os.path.isabs(keras_home())
    True
    """
    home = os.environ.get("KERAS_HOME") or os.path.join("~", ".keras")
    return os.path.abspath(os.path.expanduser(home))


def default_data_dir(name):
    """Where `download()` puts a dataset when no folder is given.

    Args:
        name: the dataset's folder name, e.g. `"cifar10"`.

    Returns:
        `<keras_home()>/datasets/keras_elm/<name>`, beside the files of
        `keras.datasets` (`~/.keras/datasets`).

    Example:

    >>> default_data_dir("cifar10").endswith(
    ...     os.path.join("datasets", "keras_elm", "cifar10"))
    True
    """
    return os.path.join(keras_home(), "datasets", "keras_elm", name)


def source_url(url, mirror=None):
    """`url`, or the same file on a `mirror` (a base URL).

    Args:
        url: the file's URL at its source.
        mirror: None, or a base URL that replaces the source's folder
            (`"http://127.0.0.1:8000"` for a local server).

    Returns:
        The URL to fetch.

    Example:

    >>> source_url("https://a.org/x/data.tar.gz", "https://mirror.org/d/")
    'https://mirror.org/d/data.tar.gz'
    """
    if mirror is None:
        return url
    if not isinstance(mirror, str) or not mirror.strip():
        raise TypeError(
            f"`mirror` must be a base URL (str) or None. Received: "
            f"mirror={mirror!r}"
        )
    name = os.path.basename(urllib.parse.urlsplit(url).path)
    return f"{mirror.rstrip('/')}/{name}"


@contextlib.contextmanager
def override_checksums(mapping):
    """Replaces pinned checksums within a `with` block: the test hook.

    The data modules pin the checksums of the real archives. Tests serve
    small archives in the same format from a local server, with their own
    checksums given here.

    Args:
        mapping: `{file name: {"sha256": hex, ...}}`; a value of None
            checks no checksum for that file.

    Example:

    ```python
    from keras_elm.data import download

    with download.override_checksums({"a.tar.gz": {"sha256": "00" * 32}}):
        assert download.pinned("a.tar.gz", None) == {"sha256": "00" * 32}
    assert download.pinned("a.tar.gz", None) is None
    ```
    """
    if not isinstance(mapping, dict):
        raise TypeError(
            f"`mapping` must be a dict of file names to checksums. "
            f"Received: {mapping!r}"
        )
    saved = dict(_OVERRIDES)
    _OVERRIDES.update(mapping)
    try:
        yield
    finally:
        _OVERRIDES.clear()
        _OVERRIDES.update(saved)


def pinned(filename, checksums):
    """The checksums `fetch` checks for `filename`: an override's, if any
    (`override_checksums`), else `checksums`."""
    if filename in _OVERRIDES:
        return _OVERRIDES[filename]
    return checksums


def checksums_of(path, algorithms=("sha256", "md5")):
    """The checksums of a file, computed in one pass.

    Args:
        path: the file.
        algorithms: `hashlib` names.

    Returns:
        `{algorithm: hex digest}`.

    Example:

    >>> import tempfile
    >>> with tempfile.NamedTemporaryFile() as f:
    ...     checksums_of(f.name, ("md5",))
    {'md5': 'd41d8cd98f00b204e9800998ecf8427e'}
    """
    hashes = {name: hashlib.new(name) for name in algorithms}
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            for digest in hashes.values():
                digest.update(block)
    return {name: digest.hexdigest() for name, digest in hashes.items()}


def _mismatch(path, checksums):
    """`(algorithm, expected, found)` of the first checksum that differs."""
    if not checksums:
        return None
    found = checksums_of(path, tuple(checksums))
    for name, expected in checksums.items():
        if found[name] != expected.lower():
            return name, expected.lower(), found[name]
    return None


class _NoDowngrade(urllib.request.HTTPRedirectHandler):
    """Follows redirects, but never from https to anything else."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if req.full_url.lower().startswith("https:") and not (
            newurl.lower().startswith("https:")
        ):
            raise DownloadError(
                f"{req.full_url} redirects to {newurl}, which is not https: "
                f"refused (nothing falls back to an unencrypted connection)."
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(_NoDowngrade)


def _check_url(url):
    if not isinstance(url, str):
        raise TypeError(f"`url` must be a str. Received: url={url!r}")
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme not in ("http", "https"):
        raise ValueError(
            f"`url` must be an http or https URL. Received: url={url!r}"
        )


def fetch(
    url, folder, *, checksums=None, filename=None, manual="", progress=True
):
    """Downloads `url` into `folder`, verified, resuming a broken transfer.

    Args:
        url: an `http` or `https` URL.
        folder: the folder to put the file in (created if needed).
        checksums: `{"sha256": hex, "md5": hex, ...}`, every one checked
            (in one pass), or None (then only the length the server
            announced is checked). `override_checksums` can replace them.
        filename: the file's name in `folder` (None: the URL's).
        manual: how to get the file by hand, added to error messages.
        progress: show a `keras.utils.Progbar` of the bytes.

    Returns:
        The path of the verified file, `<folder>/<filename>`.

    Raises:
        ValueError: `folder` cannot be written (before any network access).
        ChecksumError: the downloaded file's checksum is not the pinned
            one (the partial file is removed).
        DownloadError: the server could not be reached, answered an error,
            or the transfer broke (the next call resumes it).

    Example:

    ```python
    import os
    import tempfile

    from keras_elm.data import download

    folder = tempfile.mkdtemp()
    path = os.path.join(folder, "notes.txt")
    with open(path, "w") as f:
        f.write("hello")
    # A file present with the right checksum is reused: no network access.
    sha256 = download.checksums_of(path, ("sha256",))["sha256"]
    same = download.fetch(
        "https://example.org/notes.txt", folder, checksums={"sha256": sha256}
    )
    assert same == path
    ```
    """
    _check_url(url)
    filename = filename or os.path.basename(urllib.parse.urlsplit(url).path)
    if not filename:
        raise ValueError(
            f"`url` names no file (give `filename`). Received: url={url!r}"
        )
    folder = os.path.abspath(os.path.expanduser(os.fspath(folder)))
    files.check_writable(folder, what="the download folder")
    checksums = pinned(filename, checksums)
    path = os.path.join(folder, filename)
    if os.path.isfile(path):
        if checksums is None:
            return path
        mismatch = _mismatch(path, checksums)
        if mismatch is None:
            return path
        print(
            f"{path}: {mismatch[0]} {mismatch[2]} is not the pinned "
            f"{mismatch[1]}: downloading it again",
            flush=True,
        )
    part = os.path.join(folder, f".{filename}.part")
    _transfer(url, part, manual, progress)
    mismatch = _mismatch(part, checksums)
    if mismatch is not None:
        os.remove(part)
        name, expected, found = mismatch
        raise ChecksumError(
            f"The file {filename} downloaded from {url} has the {name} "
            f"checksum {found}, not the expected {expected}: it is corrupt "
            f"or not the pinned file, and was removed. Try again later, or "
            f"get it by hand. {manual}".rstrip()
        )
    os.chmod(part, files.file_mode())
    os.replace(part, path)
    return path


def _transfer(url, part, manual, progress):
    """Downloads `url` into `part`, appending to what is there if the
    server serves the rest (HTTP 206)."""
    start = os.path.getsize(part) if os.path.isfile(part) else 0
    request = urllib.request.Request(url, headers={"User-Agent": "keras_elm"})
    if start:
        request.add_header("Range", f"bytes={start}-")
    try:
        response = _OPENER.open(request, timeout=_TIMEOUT)
    except urllib.error.HTTPError as error:
        if error.code == 416 and start:  # the part is already whole, or bad
            os.remove(part)
            return _transfer(url, part, manual, progress)
        raise DownloadError(
            f"Could not download {url}: the server answered {error.code} "
            f"{error.reason}. {manual}".rstrip()
        ) from None
    except DownloadError:
        raise
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", None) or error
        raise DownloadError(
            f"Could not download {url}: {reason}. {manual}".rstrip()
        ) from None
    with response:
        if start and response.status != 206:
            start = 0  # the server ignored the range: the whole file again
        length = response.headers.get("Content-Length")
        total = start + int(length) if length is not None else None
        bar = None
        if progress:
            import keras

            print(f"downloading {url}", flush=True)
            bar = keras.utils.Progbar(total, unit_name="byte")
        received = start
        try:
            with open(part, "ab" if start else "wb") as f:
                for block in iter(lambda: response.read(_CHUNK), b""):
                    f.write(block)
                    received += len(block)
                    if bar is not None:
                        bar.update(received)
                f.flush()
                os.fsync(f.fileno())
        except (OSError, ValueError) as error:
            raise DownloadError(
                f"The download of {url} broke after {received:,} bytes "
                f"({error}); run again to resume it. {manual}".rstrip()
            ) from None
    if total is not None and received != total:
        raise DownloadError(
            f"The download of {url} stopped after {received:,} of "
            f"{total:,} bytes; run again to resume it. {manual}".rstrip()
        )


def _member_path(folder, relative, archive, name):
    """`folder/relative`, refusing names that would leave `folder`."""
    relative = os.path.normpath(relative)
    if (
        os.path.isabs(relative)
        or relative.startswith("..")
        or relative in (".", "")
    ):
        raise ValueError(
            f"The archive {archive} holds the member {name!r}, whose path "
            f"would leave the folder it is unpacked into: refused."
        )
    return os.path.join(folder, relative)


class _CountingReader:
    """A file object that reports how many bytes were read from it."""

    def __init__(self, f, report):
        self._f, self._report, self.count = f, report, 0

    def read(self, size=-1):
        data = self._f.read(size)
        self.count += len(data)
        self._report(self.count)
        return data


def unpack_tar(archive, target, *, select, check=None, progress=True):
    """Unpacks the members `select` picks, whole or not at all.

    The archive is read once, as a stream (any compression), so a
    gigabytes-large release needs no index and no second pass.

    Args:
        archive: the `.tar`, `.tar.gz`... file.
        target: the folder to make; returned as it is if it exists.
        select: `(member name) -> relative path or None`: where a regular
            file goes in `target` (None: skipped). Names are given without
            a leading `./`.
        check: None, or `(folder) -> None` run on the unpacked temporary
            folder before it is renamed; raising there publishes nothing.
        progress: show a `keras.utils.Progbar` of the archive's bytes.

    Returns:
        `target`.

    Raises:
        ValueError: the archive is not a whole tar archive, or a member's
            path would leave `target`.
        NothingToUnpack: no member was selected (a `ValueError`).

    Example:

    ```python
    import io
    import os
    import tarfile
    import tempfile

    from keras_elm.data import download

    folder = tempfile.mkdtemp()
    archive = os.path.join(folder, "a.tar.gz")
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("top/keep.txt")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"ok"))
    out = download.unpack_tar(
        archive,
        os.path.join(folder, "out"),
        select=lambda name: name.split("/", 1)[1],
        progress=False,
    )
    assert os.listdir(out) == ["keep.txt"]
    ```
    """

    def write(folder):
        bar = None
        if progress:
            import keras

            print(f"unpacking {archive}", flush=True)
            bar = keras.utils.Progbar(
                os.path.getsize(archive), unit_name="byte"
            )
        with open(archive, "rb") as raw:
            reader = _CountingReader(
                raw, bar.update if bar is not None else (lambda n: None)
            )
            try:
                with tarfile.open(fileobj=reader, mode="r|*") as tar:
                    _write_members(folder, archive, _tar_entries(tar), select)
            except (tarfile.TarError, EOFError, zlib.error, OSError) as error:
                raise ValueError(
                    f"{archive} is not a whole tar archive ({error}): "
                    f"delete it and download it again."
                ) from None

    return _publish(target, write, check)


def _write_members(folder, archive, entries, select):
    """Writes the regular files of `entries` that `select` picks.

    `entries`: `(name, open)` of each member, in order; `open()` gives
    its bytes as a file, None for what is not a regular file. Raises
    `NothingToUnpack` when none is selected.
    """
    count, seen = 0, {}  # top entries, in order
    for name, open_member in entries:
        seen.setdefault(_top_entry(name))
        relative = select(name) if open_member is not None else None
        if relative is None:
            continue
        path = _member_path(folder, relative, archive, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open_member() as source, open(path, "wb") as f:
            shutil.copyfileobj(source, f)
        count += 1
    if not count:
        raise NothingToUnpack(_nothing_selected(archive, seen))


def _tar_entries(tar):
    for member in tar:
        extract = functools.partial(tar.extractfile, member)
        yield (
            member.name.removeprefix("./"),
            (extract if member.isfile() else None),
        )


def _zip_entries(zipped):
    for info in zipped.infolist():
        extract = functools.partial(zipped.open, info)
        yield info.filename, None if info.is_dir() else extract


def _publish(target, write, check):
    """`target` made by `write(folder)` then `check(folder)`, whole or not
    at all (`files.publish_folder`); an existing `target` as it is."""
    target = os.path.abspath(target)
    if os.path.isdir(target):
        return target

    def write_and_check(folder):
        write(folder)
        if check is not None:
            check(folder)

    files.publish_folder(target, write_and_check)
    return target


def top_level(names, limit=10):
    """What an archive holds at its top, for a message.

    Args:
        names: the archive's member names.
        limit: the most entries shown.

    Returns:
        E.g. `"a/, b.txt and 3 more"` (`"no files"` for none).

    Example:

    >>> top_level(["a/x.txt", "a/y.txt", "b.txt"])
    'a/, b.txt'
    """
    top = []
    for name in names:
        parts = name.split("/", 1)
        entry = parts[0] + ("/" if len(parts) > 1 else "")
        if entry and entry not in top:
            top.append(entry)
    shown = ", ".join(top[:limit]) or "no files"
    return shown + (f" and {len(top) - limit} more" if len(top) > limit else "")


def _top_entry(name):
    top, slash, _ = name.partition("/")
    return top + slash


def _nothing_selected(archive, seen):
    return (
        f"{archive} holds none of the files to unpack. At its top it "
        f"holds: {top_level(seen)}."
    )


def unpack_zip(archive, target, *, select, check=None):
    """`unpack_tar` for a `.zip` archive (read with `zipfile`).

    Args:
        archive: the `.zip` file.
        target: the folder to make; returned as it is if it exists.
        select: `(member name) -> relative path or None`.
        check: None, or `(folder) -> None` run before the rename.

    Returns:
        `target`.

    Raises:
        ValueError: the archive is not a whole zip archive, or a member's
            path would leave `target`.
        NothingToUnpack: no member was selected (a `ValueError`).
    """

    def write(folder):
        try:
            with zipfile.ZipFile(archive) as zipped:
                _write_members(folder, archive, _zip_entries(zipped), select)
        except (zipfile.BadZipFile, EOFError, zlib.error, OSError) as error:
            raise ValueError(
                f"{archive} is not a whole zip archive ({error}): delete it "
                f"and download it again."
            ) from None

    return _publish(target, write, check)
