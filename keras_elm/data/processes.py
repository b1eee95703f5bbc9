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
    make_chunk, chunks, *, workers, progress=False, unit_name="sample"
):
    """Runs `make_chunk` on each chunk, in worker processes; yields results.

    The chunks are independent pieces of a data set (each with its own
    random stream), run by `worker_pool(workers)`, or in this process when
    `workers` is 1 or there is one chunk. A `keras.utils.Progbar` counts
    the samples done.

    Args:
        make_chunk: a function of module level (it is sent to the workers)
            taking the items of one entry of `chunks` as its arguments.
        chunks: a list of `(size, *arguments)`: the samples of the chunk
            (for the progress bar) and the arguments of `make_chunk`.
        workers: the most processes to run at once (fewer when there are
            fewer chunks).
        progress: show a progress bar of the samples done.
        unit_name: what the progress bar counts.

    Yields:
        `(index, result)` for each chunk, `index` its place in `chunks`,
        as the chunks complete (in order when `workers` is 1).

    Example:

    >>> chunks = [(2, 0, 2), (2, 2, 4)]
    >>> sorted(generate_in_chunks(range, chunks, workers=1))
    [(0, range(0, 2)), (1, range(2, 4))]
    """
    bar = None
    if progress:
        import keras

        bar = keras.utils.Progbar(
            sum(chunk[0] for chunk in chunks), unit_name=unit_name
        )
    done = 0
    workers = min(workers, len(chunks))
    if workers <= 1:
        completed = (
            (index, make_chunk(*chunk[1:]))
            for index, chunk in enumerate(chunks)
        )
        for index, result in completed:
            done += chunks[index][0]
            if bar is not None:
                bar.update(done)
            yield index, result
        return
    with worker_pool(workers) as pool:
        futures = {
            pool.submit(make_chunk, *chunk[1:]): index
            for index, chunk in enumerate(chunks)
        }
        for future in concurrent.futures.as_completed(futures):
            index = futures[future]
            done += chunks[index][0]
            if bar is not None:
                bar.update(done)
            yield index, future.result()


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
