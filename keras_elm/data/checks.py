"""Argument checks, cache checks and worker pools of the data modules."""

import concurrent.futures
import contextlib
import ctypes
import json
import multiprocessing
import os
import signal
import sys
import threading
import time

import numpy as np

from keras_elm.data import files


def check_int(name, value, minimum):
    """`value` as a Python int, or raises naming `name`.

    Raises:
        TypeError: `value` is not an integer (bools are not).
        ValueError: `value` is below `minimum`.
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(
            f"`{name}` must be an integer. Received: {name}={value!r} of "
            f"type {type(value).__name__}"
        )
    if value < minimum:
        raise ValueError(
            f"`{name}` must be at least {minimum}. Received: {name}={value}"
        )
    return int(value)


def check_choice(name, value, choices):
    """Raises a `ValueError` naming `name` unless `value` is in `choices`."""
    if value not in choices:
        raise ValueError(
            f"`{name}` must be one of {tuple(choices)}. Received: "
            f"{name}={value!r}"
        )


# --- generator caches --------------------------------------------------------

# Part of every cache's stored settings: bump it when what a cache holds
# changes, so that older caches are regenerated.
CACHE_FORMAT = 1
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")


def save_cache(path, settings, **arrays):
    """Writes `arrays` and the `settings` they were made with as one `.npz`.

    Written whole or not at all (`files.atomic_write`), with the umask's
    mode; `load_cache` reads it back.

    Args:
        path: the `.npz` file; its folder must exist.
        settings: a dict of JSON values (what the arrays were made with),
            kept as a JSON string with `CACHE_FORMAT`.
        **arrays: the arrays to keep.

    Example:

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "cache.npz")
    >>> save_cache(path, {"seed": 0}, x=np.arange(3))
    >>> load_cache(path, {"seed": 0}, {"x": (np.int64, 1)},
    ...            check=lambda data: None)["x"]
    array([0, 1, 2])
    """
    settings = {"format": CACHE_FORMAT, **settings}
    with files.atomic_write(path) as f:
        np.savez(f, settings=np.array(json.dumps(settings, sort_keys=True)),
                 **arrays)


def load_cache(path, settings, arrays, check):
    """The arrays of the cache `path` if it is sound, else None.

    A cache is sound when it reads without pickles, holds exactly `arrays`
    (and its settings), each of its dtype and number of dimensions, its
    stored settings equal `settings`, and `check` finds nothing wrong. A
    cache that is not prints one line naming it and why, so that the
    caller generates it again; no error escapes.

    Args:
        path: the `.npz` file; a missing one is None without a word.
        settings: the settings the caller would write with `save_cache`.
        arrays: `{name: (dtype, ndim)}` of the arrays expected.
        check: a function of the dict of arrays that returns what is wrong
            with their shapes or values, or None.

    Returns:
        A dict of the arrays, or None.

    Example:

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "cache.npz")
    >>> save_cache(path, {"seed": 0}, x=np.arange(3))
    >>> load_cache(path, {"seed": 1}, {"x": (np.int64, 1)},
    ...            check=lambda data: None)  # doctest: +ELLIPSIS
    Stale or corrupt cache ...: was made with seed=0, expected seed=1; ...
    """
    if not os.path.exists(path):
        return None
    expected = {"format": CACHE_FORMAT, **settings}
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
        if magic not in _ZIP_MAGIC:
            reason = (f"is not an .npz archive (it starts with {magic!r})"
                      if magic else "is empty")
        else:
            with np.load(path, allow_pickle=False) as stored:
                data = {name: stored[name] for name in stored.files}
            reason = _cache_problem(data, expected, arrays, check)
    except Exception as error:  # any unreadable file is generated again
        reason = f"cannot be read ({type(error).__name__}: {error})"
    if reason is None:
        return data
    print(f"Stale or corrupt cache {path}: {reason}; generating it again.",
          flush=True)
    return None


def _settings(settings, names):
    return ", ".join(f"{name}={settings.get(name)!r}" for name in names)


def _cache_problem(data, expected, arrays, check):
    names = set(arrays) | {"settings"}
    if set(data) != names:
        return (f"holds the arrays {sorted(data)}, expected "
                f"{sorted(names)}")
    try:
        stored = json.loads(str(data.pop("settings")))
    except ValueError:
        stored = None
    if not isinstance(stored, dict):
        return "holds no readable settings"
    differ = sorted(name for name in set(stored) | set(expected)
                    if stored.get(name) != expected.get(name))
    if differ:
        return (f"was made with {_settings(stored, differ)}, expected "
                f"{_settings(expected, differ)}")
    for name, (dtype, ndim) in arrays.items():
        array = data[name]
        if array.dtype != dtype or array.ndim != ndim:
            return (f"`{name}` is {array.dtype} with {array.ndim} "
                    f"dimensions, expected {np.dtype(dtype)} with {ndim}")
    return check(data)


# --- worker processes --------------------------------------------------------

_PR_SET_PDEATHSIG = 1
_PARENT_POLL_SECONDS = 1.0


def _die_with_parent(parent):
    """Initializer of a worker: ends it when `parent` ends, even by SIGKILL.

    On Linux the kernel sends the worker SIGKILL when its parent dies
    (`prctl(PR_SET_PDEATHSIG)`); elsewhere a thread checks the parent id.
    """
    asked = False
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            asked = libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
        except (OSError, AttributeError):
            asked = False
    # The parent may have died before the request.
    if os.getppid() != parent:
        os._exit(1)
    if not asked:
        threading.Thread(target=_watch_parent, args=(parent,),
                         daemon=True).start()


def _watch_parent(parent):
    while os.getppid() == parent:
        time.sleep(_PARENT_POLL_SECONDS)
    os._exit(1)


@contextlib.contextmanager
def worker_pool(workers):
    """A process pool whose workers end when this process ends.

    Forked where the platform can fork: workers start at once and need no
    `__main__` guard in the calling script (they run NumPy only, so a JAX
    already started here, which warns about forking, is never used in
    them). A worker exits when this process is killed, SIGKILL included,
    instead of running on as an orphan. On an error (or Ctrl-C) the
    pending tasks are cancelled.

    Args:
        workers: number of processes.

    Yields:
        A `concurrent.futures.ProcessPoolExecutor`.

    Example:

    >>> with worker_pool(2) as pool:
    ...     list(pool.map(abs, [-1, -2]))
    [1, 2]
    """
    context = None
    if "fork" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("fork")
    pool = concurrent.futures.ProcessPoolExecutor(
        workers, mp_context=context, initializer=_die_with_parent,
        initargs=(os.getpid(),))
    try:
        yield pool
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
