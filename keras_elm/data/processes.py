"""Worker processes of the data generators, which end with their parent."""

import concurrent.futures
import contextlib
import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time

import numpy as np

from keras_elm.checks import check_int
from keras_elm.data import files

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
        threading.Thread(
            target=_watch_parent, args=(parent,), daemon=True
        ).start()


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
        workers,
        mp_context=context,
        initializer=_die_with_parent,
        initargs=(os.getpid(),),
    )
    try:
        yield pool
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def default_workers():
    """The number of cores this process may run on (its CPU affinity).

    The default `workers` of the data generators.

    Example:

    >>> default_workers() >= 1
    True
    """
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def generate_in_chunks(
    make_chunk,
    chunks,
    *,
    workers,
    progress=False,
    unit_name="sample",
    resume_dir=None,
    check=None,
):
    """Runs `make_chunk` on each chunk, in worker processes; yields results.

    The chunks are independent pieces of a data set (each with its own
    random stream), run by `worker_pool(workers)`, or in this process when
    `workers` is 1 or there is one chunk. A `keras.utils.Progbar` counts
    the samples done.

    With `resume_dir`, each finished chunk is saved there at once, whole
    or not at all (`files.atomic_write`, the umask's mode), as a
    compressed `<start>-<stop>.npz` (its samples, counted by the chunks'
    sizes) with the arguments it was made with. A later call over the
    same folder reads the saved chunks back instead of running them again
    (a line says how many samples were made already; the progress bar
    counts the others, so that its estimate of the time left holds), so a
    generation stopped by Ctrl-C or a kill resumes where it was; a
    stopped one says where its chunks are kept. A saved chunk that cannot
    be read, was made with other arguments, or fails `check` is run
    again, with a line that names it and says why. The caller removes the
    folder once the whole result is kept (`caches.cached_arrays` does).

    Args:
        make_chunk: a function of module level (it is sent to the workers)
            taking the items of one entry of `chunks` as its arguments.
            With `resume_dir` it returns a tuple of NumPy arrays and
            Python numbers.
        chunks: a list of `(size, *arguments)`: the samples of the chunk
            (for the progress bar) and the arguments of `make_chunk`.
        workers: the most processes to run at once (fewer when there are
            fewer chunks).
        progress: show a progress bar of the samples done.
        unit_name: what the progress bar counts.
        resume_dir: the folder where finished chunks are kept (created
            when the first one is saved), or None: nothing is saved.
        check: with `resume_dir`, `(chunk, result) -> str or None`: what
            is wrong with `result`, read back for the entry `chunk` of
            `chunks` (dtypes, shapes, values), or None when it is sound.

    Yields:
        `(index, result)` for each chunk, `index` its place in `chunks`:
        first the chunks read back from `resume_dir`, in order (one at a
        time, not all held at once), then the others as they complete (in
        order when `workers` is 1).

    Example:

    >>> chunks = [(2, 0, 2), (2, 2, 4)]
    >>> sorted(generate_in_chunks(range, chunks, workers=1))
    [(0, range(0, 2)), (1, range(2, 4))]
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> def numbers(start, stop):
    ...     return (np.arange(start, stop),)
    >>> _ = list(generate_in_chunks(numbers, chunks[:1], workers=1,
    ...                             resume_dir=folder))
    >>> os.listdir(folder)
    ['0-2.npz']
    >>> list(generate_in_chunks(numbers, chunks, workers=1,
    ...                         resume_dir=folder, unit_name="number"))
    ... # doctest: +ELLIPSIS
    Resuming: 2 of 4 numbers already made (in ...).
    [(0, (array([0, 1]),)), (1, (array([2, 3]),))]
    """
    total = sum(chunk[0] for chunk in chunks)
    paths, made = None, set()
    if resume_dir is not None:
        resume_dir = os.fspath(resume_dir)
        paths = _part_paths(resume_dir, chunks)
        # One at a time: the caller keeps what it needs.
        for index, result in _read_parts(resume_dir, paths, chunks, check):
            made.add(index)
            yield index, result
    done = sum(chunks[index][0] for index in made)
    if done:
        print(
            f"Resuming: {done:,} of {total:,} {unit_name}s already made "
            f"(in {resume_dir}).",
            flush=True,
        )
    remaining = [index for index in range(len(chunks)) if index not in made]
    bar = None
    if progress:
        import keras

        # The samples left: a bar started at those made before would
        # count them as made in no time and promise the end far too soon.
        bar = keras.utils.Progbar(total - done, unit_name=unit_name)
    made_before = done
    # Closed on an error here (a failed save) too: the pool's pending
    # tasks are cancelled at once.
    run = contextlib.closing(_run(make_chunk, chunks, remaining, workers))
    try:
        with run as completed:
            for index, result in completed:
                if paths is not None:
                    _save_part(paths[index], chunks[index], result)
                done += chunks[index][0]
                if bar is not None:
                    bar.update(done - made_before)
                yield index, result
    except GeneratorExit:
        raise
    except BaseException:
        if paths is not None:
            _report_stop(resume_dir, done, total, unit_name, bar)
        raise


def _run(make_chunk, chunks, indices, workers):
    """`(index, make_chunk(*chunks[index][1:]))` for each of `indices`."""
    workers = min(workers, len(indices))
    if workers <= 1:
        for index in indices:
            yield index, make_chunk(*chunks[index][1:])
        return
    with worker_pool(workers) as pool:
        futures = {
            pool.submit(make_chunk, *chunks[index][1:]): index
            for index in indices
        }
        for future in concurrent.futures.as_completed(futures):
            yield futures[future], future.result()


def _part_paths(folder, chunks):
    """`<folder>/<start>-<stop>.npz` of each chunk, by the chunks' sizes."""
    stops = np.cumsum([chunk[0] for chunk in chunks], dtype=np.int64)
    return [
        os.path.join(folder, f"{stop - chunk[0]}-{stop}.npz")
        for chunk, stop in zip(chunks, stops.tolist())
    ]


def _part_key(chunk):
    return repr(tuple(chunk))


def _save_part(path, chunk, result):
    """Writes one chunk's `result` (a tuple) and its arguments to `path`."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    scalars = [
        place
        for place, value in enumerate(result)
        if isinstance(value, (int, float))
    ]
    # Compressed: the pieces of Path-X's 200,000 images take 0.4 GB, not
    # 3.3 GB beside the cache being written, for about 1 % more time.
    with files.atomic_write(path) as f:
        np.savez_compressed(
            f,
            key=np.array(_part_key(chunk)),
            scalars=np.array(scalars, np.int64),
            **{f"r{place}": value for place, value in enumerate(result)},
        )


def _read_part(path, chunk, check):
    """`(result, None)` of a sound saved chunk, else `(None, reason)`."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            data = {name: stored[name] for name in stored.files}
        if str(data.pop("key", "")) != _part_key(chunk):
            return None, "was made with other arguments"
        scalars = set(data.pop("scalars").tolist())
        places = range(len(data))
        if set(data) != {f"r{place}" for place in places}:
            return None, (
                f"holds the arrays {sorted(data)}, expected r0 to "
                f"r{len(data) - 1}"
            )
        result = tuple(
            data[f"r{place}"].item() if place in scalars else data[f"r{place}"]
            for place in places
        )
        reason = None if check is None else check(chunk, result)
    except Exception as error:  # any unreadable part is made again
        return None, f"cannot be read ({type(error).__name__}: {error})"
    return (None, reason) if reason is not None else (result, None)


def _read_parts(folder, paths, chunks, check):
    """Yields `(index, result)` of each sound saved chunk; names the others."""
    if not os.path.isdir(folder):
        return
    # Temporaries of a run killed while saving a chunk.
    files.remove_stale_temporaries(folder)
    for index, (path, chunk) in enumerate(zip(paths, chunks)):
        if not os.path.exists(path):
            continue
        result, reason = _read_part(path, chunk, check)
        if reason is None:
            yield index, result
        else:
            print(
                f"Unusable part {path}: {reason}; making it again.",
                flush=True,
            )


def _report_stop(folder, done, total, unit_name, bar):
    """Says where the finished chunks of a stopped generation are kept."""
    if not done:
        # Nothing kept: no empty folder left behind.
        with contextlib.suppress(OSError):
            os.rmdir(folder)
        return
    # After a progress bar, on a line of its own.
    prefix = "\n" if bar is not None else ""
    print(
        f"{prefix}Stopped with {done:,} of "
        f"{total:,} {unit_name}s made, kept in {folder}: the same call "
        f"resumes from there.",
        flush=True,
    )


def generator_settings(seed, workers, progress, cache_dir):
    """The checked `seed`, `workers` and `cache_dir` of a generator.

    Args:
        seed: a non-negative integer, or None for a fresh random seed.
        workers: processes to draw with, or None: `default_workers()`.
        progress: whether to show a progress bar (True or False).
        cache_dir: the cache folder, or None.

    Returns:
        `(seed, workers, cache_dir)`: a fresh seed drawn for None (and then
        `cache_dir` None: data of a fresh seed is never cached).

    Example:

    >>> generator_settings(3, 2, False, "cache")
    (3, 2, 'cache')
    """
    if seed is not None:
        seed = check_int("seed", seed, 0)
    workers = (
        default_workers()
        if workers is None
        else check_int("workers", workers, 1)
    )
    if not isinstance(progress, bool):
        raise TypeError(
            f"`progress` must be True or False. Received: progress={progress!r}"
        )
    if seed is None:
        seed, cache_dir = int(np.random.SeedSequence().entropy), None
    return seed, workers, cache_dir
