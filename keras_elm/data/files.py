"""Files written whole or not at all, readable as the umask allows.

Every file the data modules write (caches, generated releases, fixtures)
goes through `atomic_write`: the bytes go to a hidden temporary file in
the same folder, which is flushed to disk and then renamed over the
target, so a kill at any moment leaves either the old file or the new one,
never half of one. `tempfile.mkstemp` creates files with mode 0600; the
temporary file is given the mode a plain `open` would have given
(0666 less the umask) before it is renamed, so a data set written by one
user is readable by another where the umask allows it.

A kill leaves the temporary file behind. Its name carries the writer's
process id, and `remove_stale_temporaries` deletes those whose writer is
gone, so the next run cleans up after the killed one.
"""

import contextlib
import os
import re
import tempfile

_TEMPORARY = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[A-Za-z0-9_]+\.tmp$")
# Folders this process has cleaned already: a release of 200,000 images is
# written into one folder, which is listed once, not once a file.
_CLEANED = set()


def file_mode():
    """The mode `open(path, "w")` gives a new file: 0666 less the umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _process_alive(pid):
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    except OSError:
        return False
    return True


def remove_stale_temporaries(directory):
    """Deletes the temporary files of `atomic_write` calls that were killed.

    `atomic_write` calls it on the first write into a folder in a process.
    Only files named like `atomic_write`'s temporaries whose writing process
    no longer runs are removed; a write in progress in another process is
    left alone.

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
        try:
            os.remove(path)
            removed.append(path)
        except OSError:
            pass
    return removed


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
    with atomic_write("cache.npz") as f:
        np.savez(f, images=images)
    ```
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"`mode` must be 'w' or 'wb'. Received: mode={mode!r}")
    directory = os.path.dirname(os.path.abspath(path))
    name = os.path.basename(path)
    if directory not in _CLEANED:
        remove_stale_temporaries(directory)
        _CLEANED.add(directory)
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
            f"{what} {directory!r} cannot be written ({error.strerror or error}): "
            "give a folder you can write to."
        ) from None
