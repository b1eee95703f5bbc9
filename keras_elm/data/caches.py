"""Generator caches: arrays saved with the settings they were made with.

A cache is written whole or not at all (`files.atomic_write`) and read
back only when it is sound: no pickles, the expected arrays with their
dtypes and shapes, and the same settings. Anything else is generated again,
with one printed line that names the file and says why.
"""

import json
import os
import shutil

import numpy as np

from keras_elm.data import files

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
        np.savez(
            f, settings=np.array(json.dumps(settings, sort_keys=True)), **arrays
        )


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
            reason = (
                f"is not an .npz archive (it starts with {magic!r})"
                if magic
                else "is empty"
            )
        else:
            with np.load(path, allow_pickle=False) as stored:
                data = {name: stored[name] for name in stored.files}
            reason = _cache_problem(data, expected, arrays, check)
    except Exception as error:  # any unreadable file is generated again
        reason = f"cannot be read ({type(error).__name__}: {error})"
    if reason is None:
        return data
    print(
        f"Stale or corrupt cache {path}: {reason}; generating it again.",
        flush=True,
    )
    return None


def _settings(settings, names):
    return ", ".join(f"{name}={settings.get(name)!r}" for name in names)


def _cache_problem(data, expected, arrays, check):
    names = set(arrays) | {"settings"}
    if set(data) != names:
        return f"holds the arrays {sorted(data)}, expected {sorted(names)}"
    try:
        stored = json.loads(str(data.pop("settings")))
    except ValueError:
        stored = None
    if not isinstance(stored, dict):
        return "holds no readable settings"
    differ = sorted(
        name
        for name in set(stored) | set(expected)
        if stored.get(name) != expected.get(name)
    )
    if differ:
        return (
            f"was made with {_settings(stored, differ)}, expected "
            f"{_settings(expected, differ)}"
        )
    for name, (dtype, ndim) in arrays.items():
        array = data[name]
        if array.dtype != dtype or array.ndim != ndim:
            return (
                f"`{name}` is {array.dtype} with {array.ndim} "
                f"dimensions, expected {np.dtype(dtype)} with {ndim}"
            )
    return check(data)


def parts_folder(cache_dir, name):
    """The hidden folder of the finished pieces of the cache `name`.

    `<cache_dir>/.<name without .npz>.parts`: named after the cache, so
    that only a call with the same settings reads them back.

    Args:
        cache_dir: the cache folder.
        name: the file name of the cache's `.npz`.

    Returns:
        The folder's path.

    Example:

    >>> parts_folder("cache", "listops_n10_seed0.npz")
    'cache/.listops_n10_seed0.parts'
    """
    stem = name[: -len(".npz")] if name.endswith(".npz") else name
    return os.path.join(cache_dir, f".{stem}.parts")


def cached_arrays(cache_dir, name, settings, read, make, *, resume=False):
    """The arrays `make()` returns, kept in `<cache_dir>/<name>` once made.

    The cache block of the generators: stale temporaries of a killed
    writer are removed, a sound cache (`read`) is returned as it is, and
    otherwise the folder is checked to be writable before `make` runs (so
    a folder that cannot be written is found out at once, not after the
    work), and the arrays are saved with `save_cache`.

    With `resume`, `make` keeps its finished pieces in `parts_folder`
    (`processes.generate_in_chunks(resume_dir=...)`), so that a call
    stopped half way (Ctrl-C, a kill) and made again with the same
    settings goes on from them; the folder is removed once the cache is
    saved (and when a sound cache is found beside it).

    Args:
        cache_dir: the folder (`~` expanded); None: `make()`, nothing kept.
        name: the file name of the `.npz`.
        settings: what the arrays are made with (`save_cache`).
        read: `(path, settings) -> dict of arrays or None`, the reader of a
            cache (`load_cache` with the generator's checks).
        make: `() -> dict of arrays`; with `resume`,
            `(parts) -> dict of arrays`, `parts` the folder for its pieces
            (None without a `cache_dir`: nothing is kept).
        resume: whether `make` takes the folder of its pieces.

    Returns:
        The dict of arrays.

    Example:

    >>> import numpy as np, tempfile
    >>> def read(path, settings):
    ...     return load_cache(path, settings, {"x": (np.int64, 1)},
    ...                       check=lambda data: None)
    >>> folder = tempfile.mkdtemp()
    >>> cached_arrays(folder, "x.npz", {"n": 3}, read,
    ...               lambda: {"x": np.arange(3)})["x"]
    array([0, 1, 2])
    """
    if cache_dir is None:
        return make(None) if resume else make()
    cache_dir = os.path.expanduser(os.fspath(cache_dir))
    # Temporaries of a run killed while saving.
    files.remove_stale_temporaries(cache_dir)
    path = os.path.join(cache_dir, name)
    parts = parts_folder(cache_dir, name)
    arrays = read(path, settings)
    if arrays is None:
        files.check_writable(cache_dir, what="`cache_dir`")
        arrays = make(parts) if resume else make()
        save_cache(path, settings, **arrays)
    if resume:
        # Left by a run killed after the save, or now in the cache.
        shutil.rmtree(parts, ignore_errors=True)
    return arrays
