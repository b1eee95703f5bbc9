"""Files written whole or not at all, readable as the umask allows.

Every file the data modules write (caches, generated releases, fixtures)
goes through `atomic_write`: the bytes go to a hidden temporary file in
the same folder, which is flushed to disk and then renamed over the
target, so a kill at any moment leaves either the old file or the new one,
never half of one. `tempfile.mkstemp` creates files with mode 0600; the
temporary file is given the mode a plain `open` would have given
(0666 less the umask) before it is renamed, so a data set written by one
user is readable by another where the umask allows it.

Files that another library writes by name (`model.save`) go through
`atomic_path` instead, which hands out the temporary path; whole folders
(generated data sets) through `publish_folder`.

A kill leaves the temporary file behind. Its name carries the writer's
process id, and `remove_stale_temporaries` deletes those whose writer is
gone, so the next run cleans up after the killed one.
"""

import contextlib
import os
import re
import secrets
import shutil
import tempfile

# `.<name>.<pid>.<random>.tmp<suffix>`: Keras chooses the format by the
# suffix, so `atomic_path`'s temporaries keep it (`atomic_write`'s do not).
_TEMPORARY = re.compile(
    r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[A-Za-z0-9_]+\.tmp"
    r"(\.keras|\.weights\.h5)?$"
)
_SUFFIXES = (".weights.h5", ".keras")
# Folders this process has cleaned already: a release of 200,000 images is
# written into one folder, which is listed once, not once a file.
_CLEANED = set()


def _umask():
    umask = os.umask(0)
    os.umask(umask)
    return umask


def file_mode():
    """The mode `open(path, "w")` gives a new file: 0666 less the umask."""
    return 0o666 & ~_umask()


def folder_mode():
    """The mode `os.mkdir(path)` gives a new folder: 0777 less the umask."""
    return 0o777 & ~_umask()


def _process_alive(pid):
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # alive, someone else's (or unknown: kept)
        return True
    return True


def is_temporary(name):
    """Whether a file name is that of a temporary of this module's writers.

    Args:
        name: a file name (no folder).

    Returns:
        True for the temporaries of `atomic_write`, `atomic_path` and
        `publish_folder` (of any process, alive or not).

    Example:

    >>> is_temporary(".cache.npz.123.ab12.tmp"), is_temporary("cache.npz")
    (True, False)
    """
    return _TEMPORARY.match(name) is not None


def remove_stale_temporaries(directory):
    """Deletes the temporaries (files, folders) of writers that were killed.

    `atomic_write` and `atomic_path` call it on the first write into a
    folder in a process. Only files and folders named like the temporaries
    of `atomic_write`, `atomic_path` and `publish_folder` whose writing
    process no longer runs are removed; a write in progress in another
    process is left alone.

    Args:
        directory: the folder to clean (nothing happens if it is missing).

    Returns:
        The paths removed.
    """
    removed = []
    try:
        names = os.listdir(directory)
    except OSError:
        return removed
    for name in names:
        match = _TEMPORARY.match(name)
        if match is None or _process_alive(int(match.group("pid"))):
            continue
        path = os.path.join(directory, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
            if not os.path.lexists(path):
                removed.append(path)
            continue
        try:
            os.remove(path)
            removed.append(path)
        except OSError:
            pass
    return removed


def _clean_once(directory):
    if directory not in _CLEANED:
        remove_stale_temporaries(directory)
        _CLEANED.add(directory)


@contextlib.contextmanager
def atomic_write(path, mode="wb", **open_kwargs):
    """Opens a file to write that appears at `path` only once complete.

    Args:
        path: the file to write; its folder must exist.
        mode: `"wb"` or `"w"` (text; pass `encoding=` in `open_kwargs`).
        **open_kwargs: passed to `open` (e.g. `encoding`, `newline`).

    Yields:
        The open file object. When the `with` block ends without an error
        the file is flushed, synced and renamed to `path` (replacing any
        old file), with the umask's mode; on an error the temporary file is
        removed and `path` is left as it was.

    Example:

    ```python
    import os
    import tempfile

    import numpy as np

    from keras_elm.data.files import atomic_write

    path = os.path.join(tempfile.mkdtemp(), "cache.npz")
    with atomic_write(path) as f:
        np.savez(f, images=np.zeros((2, 4), np.uint8))
    ```
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"`mode` must be 'w' or 'wb'. Received: mode={mode!r}")
    directory = os.path.dirname(os.path.abspath(path))
    name = os.path.basename(path)
    _clean_once(directory)
    handle, temporary = tempfile.mkstemp(
        dir=directory, prefix=f".{name}.{os.getpid()}.", suffix=".tmp"
    )
    try:
        with os.fdopen(handle, mode, **open_kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(temporary, file_mode())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(temporary)
        raise


@contextlib.contextmanager
def atomic_path(path):
    """A temporary path that is renamed to `path` once written.

    For files that another library writes by name (`model.save`,
    `model.save_weights`): the temporary path is in the same folder and
    keeps a `.keras` or `.weights.h5` suffix, since Keras chooses the
    format by it. A kill at any moment leaves the old `path` or the new
    one, never half of one; the temporary file of a killed writer is
    removed by the next (`remove_stale_temporaries`).

    Args:
        path: the file to write; its folder must exist.

    Yields:
        The temporary path to write to. When the `with` block ends without
        an error the file there is synced and renamed to `path` (replacing
        any old file); on an error it is removed and `path` is left as it
        was.

    Example:

    ```python
    import os
    import tempfile

    import keras

    from keras_elm.data.files import atomic_path

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    path = os.path.join(tempfile.mkdtemp(), "model.keras")
    with atomic_path(path) as temporary:
        model.save(temporary)
    ```
    """
    directory, name = os.path.split(os.path.abspath(path))
    suffix = next((end for end in _SUFFIXES if name.endswith(end)), "")
    temporary = os.path.join(
        directory, f".{name}.{os.getpid()}.{secrets.token_hex(4)}.tmp{suffix}"
    )
    _clean_once(directory)
    try:
        yield temporary
        with open(temporary, "rb") as f:
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(temporary)
        raise


def publish_folder(folder, write):
    """A folder made whole under a temporary name, then renamed to `folder`.

    For data written as many files (a generated data set): a killed writer
    leaves no half-made folder that a rerun would trust, only a temporary
    one that `remove_stale_temporaries` deletes. An existing `folder` is
    reused as it is; when two processes make it at once, one wins and the
    other's is dropped. The folder gets the umask's mode (0777 less it).

    Args:
        folder: the folder to make.
        write: `(folder) -> path or None`, writing the data into the empty
            `folder` given, and returning the path a reader should open
            (the folder or one inside it; None: the folder).

    Returns:
        The path inside `folder` that `write` returned, remembered in a
        hidden `.<name>.path` file beside it for later calls.

    Example:

    ```python
    import os
    import tempfile

    import numpy as np

    from keras_elm.data.files import publish_folder

    def write(folder):
        np.save(os.path.join(folder, "x.npy"), np.arange(3))

    path = publish_folder(os.path.join(tempfile.mkdtemp(), "synthetic"), write)
    ```
    """
    folder = os.path.abspath(folder)
    parent, name = os.path.split(folder)
    marker = os.path.join(parent, f".{name}.path")
    if os.path.isdir(folder):
        return _inside(folder, marker)
    os.makedirs(parent, exist_ok=True)
    remove_stale_temporaries(parent)
    temporary = tempfile.mkdtemp(
        dir=parent, suffix=".tmp", prefix=f".{name}.{os.getpid()}."
    )
    try:
        inner = os.path.relpath(
            os.path.abspath(write(temporary) or temporary), temporary
        )
        with atomic_write(marker, "w", encoding="utf-8") as f:
            f.write(inner)
        os.chmod(temporary, folder_mode())  # `mkdtemp` makes it 0700
        os.rename(temporary, folder)
    except OSError:
        if not os.path.isdir(folder):  # not another run's, made meanwhile
            raise
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    return _inside(folder, marker)


def made_once(cache_dir, write, *, num_samples, seed, **settings):
    """A folder of small data (a smoke fixture), named by its settings and
    made once.

    The folder is `<cache_dir>/smoke_data/<key>`, the key naming what the
    data depends on (`settings` in their order, then `num_samples` and
    `seed`: `listops-min_length15-max_length60-n40-seed0`), so other
    settings get their own folder and a rerun with the same ones reuses it.
    It is made whole by `publish_folder`: a killed writer leaves no
    half-made folder that a rerun would trust.

    Args:
        cache_dir: the folder to keep it under; None: a new temporary
            folder (`tempfile.mkdtemp`), so nothing is reused.
        write: `(folder) -> path or None`, writing the data into the empty
            `folder` given and returning the path a loader reads (the
            folder or one inside it; None: the folder).
        num_samples: the number of samples, part of the key (`n`).
        seed: the seed, part of the key.
        **settings: the other values the data depends on, in the key's
            order (`name=""` puts the name alone).

    Returns:
        The path to read, inside `<cache_dir>/smoke_data/<key>`.

    Example:

    ```python
    import os
    import tempfile

    from keras_elm.data import files

    def write(folder):
        with open(os.path.join(folder, "x.txt"), "w") as f:
            f.write("1")

    cache = tempfile.mkdtemp()
    path = files.made_once(cache, write, num_samples=4, seed=0, toy="")
    assert path == os.path.join(cache, "smoke_data", "toy-n4-seed0")
    ```
    """
    if cache_dir is None:
        cache_dir = tempfile.mkdtemp(prefix="keras_elm_")
    settings = dict(settings, n=num_samples, seed=seed)
    key = "-".join(f"{name}{value}" for name, value in settings.items())
    return publish_folder(os.path.join(cache_dir, "smoke_data", key), write)


def _inside(folder, marker):
    try:
        with open(marker, encoding="utf-8") as f:
            return os.path.normpath(os.path.join(folder, f.read().strip()))
    except OSError:
        return folder


def check_writable(directory, what="the cache folder"):
    """Creates `directory` if needed and checks that files can be made there.

    Called before long work (data generation) whose result is saved there,
    so that a folder that cannot be written is found out at once, not after
    hours of work.

    Args:
        directory: the folder.
        what: how error messages name it.

    Raises:
        ValueError: `directory` is a file, cannot be created, or cannot be
            written.
    """
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise ValueError(
            f"{what} {directory!r} is a file, not a folder: give a folder."
        )
    try:
        os.makedirs(directory, exist_ok=True)
        handle, probe = tempfile.mkstemp(dir=directory, prefix=".write_check.")
        os.close(handle)
        os.remove(probe)
    except OSError as error:
        raise ValueError(
            f"{what} {directory!r} cannot be written "
            f"({error.strerror or error}): give a folder you can write to."
        ) from None
