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
