"""Independent pieces of work in forked worker processes.

The heavy numerical cores hold Python's GIL (bottleneck's medians, the steps'
bookkeeping), so threads do not use a second core; forked processes do, and
see the parent's memory (exposure statistics, step parameters) without
copying or pickling it. Where ``fork`` is not available (Windows, or macOS
builds that refuse it), or for one process, the work runs serially in the
calling process: same results, less speed.
"""

import ctypes
import ctypes.util
import multiprocessing
import os
from contextlib import contextmanager

__all__ = ["fork_map", "can_fork", "keep_freed_memory"]

_TASK = None


def can_fork():
    """Whether worker processes can be forked on this platform.

    Returns
    -------
    bool
    """
    return "fork" in multiprocessing.get_all_start_methods()


def _run(index):
    return _TASK[0](_TASK[1][index])


def fork_map(function, items, processes):
    """``[function(item) for item in items]``, over up to ``processes`` forked workers.

    Parameters
    ----------
    function : callable
        Any callable, closures included (the workers inherit it by forking;
        only the items' indices and the results are pickled).
    items : sequence
    processes : int
        Most worker processes; 1 runs serially in this process.

    Returns
    -------
    list
        The results in the order of ``items``.
    """
    global _TASK
    processes = min(processes, len(items), os.cpu_count() or 1)
    if processes <= 1 or not can_fork():
        return [function(item) for item in items]
    _TASK = (function, list(items))
    try:
        with multiprocessing.get_context("fork").Pool(processes) as pool:
            return pool.map(_run, range(len(items)), chunksize=1)
    finally:
        _TASK = None


# glibc mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


@contextmanager
def keep_freed_memory():
    """Let glibc reuse freed large blocks during a reduction, and return them after.

    By default glibc serves every block above 32 MB with a fresh ``mmap`` and
    unmaps it on free, so each of the steps' cube-sized temporaries is
    page-faulted in again: on the full exposure that is ~20 % of the steps'
    time (measured). Inside this context large blocks come from the heap and
    freed memory stays there for the next temporary; at exit the defaults
    are restored and the free memory is handed back (``malloc_trim``). The
    peak memory is the same. No-op where the C library is not glibc.
    """
    libc = _glibc()
    if libc is None:
        yield
        return
    libc.mallopt(_M_MMAP_THRESHOLD, 1 << 30)
    libc.mallopt(_M_TRIM_THRESHOLD, (1 << 31) - 1)
    try:
        yield
    finally:
        libc.mallopt(_M_MMAP_THRESHOLD, 128 * 1024)
        libc.mallopt(_M_TRIM_THRESHOLD, 128 * 1024)
        libc.malloc_trim(0)


def _glibc():
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        libc.mallopt, libc.malloc_trim  # noqa: B018 - glibc only
    except (OSError, AttributeError, TypeError):
        return None
    return libc
