"""Independent pieces of work in forked worker processes.

The heavy numerical cores hold Python's GIL (bottleneck's medians, the steps'
bookkeeping), so threads do not use a second core; forked processes do, and
see the parent's memory (exposure statistics, step parameters) without
copying or pickling it. Where ``fork`` is not available (Windows, or macOS
builds that refuse it), or for one process, the work runs serially in the
calling process: same results, less speed.
"""

import multiprocessing
import os

__all__ = ["fork_map", "can_fork"]

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
