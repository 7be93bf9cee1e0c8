"""Independent pieces of work over worker processes, behind one interface.

An executor has one method, ``map(function, items)``, returning
``[function(item) for item in items]``. The function and the items are
pickled to the workers, so a work unit is a module-level function, a
`functools.partial` of one, or an instance of a class with ``__call__``:
never a closure or a module global. That keeps every executor
interchangeable: `LocalExecutor` (processes on this machine) today, a Dask
cluster's client behind the same method for the batch runner.

The heavy numerical cores hold Python's GIL (bottleneck's medians, the steps'
bookkeeping), so threads do not use a second core; processes do. Local
workers are forked where the platform allows it: they start at once with the
parent's imports and schema caches, and receive the function by the fork
itself (a work unit carrying an exposure's statistics and fits is tens of MB:
pickled once per item it cost ~1.5 s and ~160 MB on the full exposure); only
the items and the results are pickled. The function is still checked to be
picklable, so a work unit that works here also works on a cluster. Where
``fork`` is not available (Windows, or macOS builds that refuse it), or for
one process, the work runs serially in the calling process: same results,
less speed.
"""

import ctypes
import ctypes.util
import multiprocessing
import os
import pickle
import threading
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager

__all__ = ["LocalExecutor", "advance", "can_fork", "keep_freed_memory", "one_blas_thread",
           "return_freed_memory"]


def can_fork():
    """Whether worker processes can be forked on this platform.

    Returns
    -------
    bool
    """
    return "fork" in multiprocessing.get_all_start_methods()


class LocalExecutor:
    """``map`` over up to ``processes`` worker processes of this machine.

    Parameters
    ----------
    processes : int
        Most worker processes; 1 runs the work serially in this process,
        without pickling anything.
    start_method : {None, "fork", "spawn"}
        How workers start. None: forked where the platform allows it, else
        the work runs serially. ``"spawn"`` starts fresh interpreters that
        receive the pickled work unit (slower to start: each imports the
        package; their log messages stay in the worker), as a cluster's
        workers would: the tests use it to prove the work units need nothing
        from the parent's memory.
    """

    def __init__(self, processes=1, start_method=None):
        if start_method not in (None, "fork", "spawn"):
            raise ValueError(f"start_method={start_method!r}: choose None, 'fork' or 'spawn'.")
        if start_method is None:
            start_method = "fork" if can_fork() else None
        self.start_method = start_method
        self.processes = max(1, int(processes)) if start_method else 1

    def workers(self, n_items):
        """Processes that would work on ``n_items`` items at once.

        Parameters
        ----------
        n_items : int

        Returns
        -------
        int
        """
        return max(1, min(self.processes, n_items, os.cpu_count() or 1))

    def map(self, function, items, progress=None):
        """``[function(item) for item in items]``, the items spread over the workers.

        Parameters
        ----------
        function : callable
            A picklable work unit (see the module's documentation).
        items : sequence
            Picklable items.
        progress : callable, optional
            Called in this process with the total the work units have
            reported with `advance` so far (every half second while they
            run, and once at the end).

        Returns
        -------
        list
            The results in the order of ``items``.
        """
        items = list(items)
        workers = self.workers(len(items))
        if workers <= 1:
            with _counting(progress, None):
                return [function(item) for item in items]
        check_picklable(function)
        context = multiprocessing.get_context(self.start_method)
        counter = context.Value("q", 0) if progress is not None else None
        with _counting(progress, counter), ProcessPoolExecutor(
            workers, mp_context=context, initializer=_install, initargs=(function, counter)
        ) as pool:
            return list(pool.map(_run_installed, items))


def check_picklable(function):
    """Raise `TypeError` unless ``function`` can be sent to another process.

    The pickle is streamed to nowhere: the check holds no copy of it.

    Parameters
    ----------
    function : callable
    """
    try:
        pickle.Pickler(_Discard(), protocol=pickle.HIGHEST_PROTOCOL).dump(function)
    except (pickle.PicklingError, TypeError, AttributeError) as err:
        raise TypeError(
            f"{type(function).__name__} {getattr(function, '__qualname__', '')} is not a "
            f"picklable work unit ({err}); use a module-level "
            "function, a functools.partial of one, or an object with __call__."
        ) from None


class _Discard:
    def write(self, data):
        return memoryview(data).nbytes


#: The work unit of this worker process, set once when the worker starts
#: (`_install`); never set in the parent.
_WORKER_FUNCTION = None
#: Where `advance` counts: a shared integer in worker processes, a plain
#: callable's state in this process (`_counting`), or nothing.
_COUNTER = None


def _install(function, counter=None):
    global _WORKER_FUNCTION, _COUNTER
    _WORKER_FUNCTION = function
    _COUNTER = counter


def advance(n):
    """Report ``n`` more units of work done (e.g. integrations) to `LocalExecutor.map`'s ``progress``.

    A no-op when nobody asked for progress.

    Parameters
    ----------
    n : int
    """
    counter = _COUNTER
    if counter is None:
        return
    with counter.get_lock():
        counter.value += int(n)


class _LocalCounter:
    """`multiprocessing.Value`'s interface for work that runs in this process."""

    def __init__(self):
        self.value = 0
        self._lock = threading.Lock()

    def get_lock(self):
        return self._lock


@contextmanager
def _counting(progress, counter):
    """Poll ``counter`` for ``progress`` while the work runs (a thread of this process)."""
    global _COUNTER
    if progress is None:
        yield
        return
    local = counter is None
    if local:
        counter = _COUNTER = _LocalCounter()
    stop = threading.Event()

    def poll():
        while not stop.wait(0.5):
            progress(counter.value)

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        progress(counter.value)
        if local:
            _COUNTER = None


def _run_installed(item):
    return _WORKER_FUNCTION(item)


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


def return_freed_memory():
    """Hand the memory freed so far back to the system (glibc), e.g. before forking workers.

    Inside `keep_freed_memory` the freed heap stays with the process; forked
    workers inherit it, and each writes its own copy of the pages it reuses,
    while the parent keeps the originals: after an exposure-level stage of
    ~2 GB, two workers made the run's total ~2 GB larger than its limit
    (measured on soss_detector1). No-op where the C library is not glibc.
    """
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


_blas_depth = 0


@contextmanager
def one_blas_thread():
    """Run numpy's and scipy's BLAS on one thread inside the block (re-entrant).

    Two reasons, both measured on the full realistic exposure. Products: a
    BLAS reduction split over threads sums in an order that depends on the
    thread count, so the same input gave x1dints differing in the 11th digit
    between a laptop, a Dask worker (Dask runs BLAS on one thread) and a
    cluster node; with one thread they are bit for bit the same everywhere.
    Speed: the package's parallelism is its worker processes, and BLAS
    threads on top of them only compete for the same cores (soss_spec2 on
    2 cores: 35 s with OpenBLAS's default threads, 16 s with one).
    """
    global _blas_depth
    if _blas_depth:
        yield
        return
    from threadpoolctl import threadpool_limits

    _blas_depth += 1
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            yield
    finally:
        _blas_depth -= 1


def _glibc():
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        libc.mallopt, libc.malloc_trim  # noqa: B018 - glibc only
    except (OSError, AttributeError, TypeError):
        return None
    return libc
