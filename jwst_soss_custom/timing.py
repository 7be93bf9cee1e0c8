"""Where a pipeline run spends its time: wall seconds per stage, logged as a budget;
and how far a long run has got."""

import sys
import time
from contextlib import contextmanager

__all__ = ["StageTimer", "Progress"]


class StageTimer:
    """Wall time spent per stage, summed over calls (and over processes with `add`).

    Use as ``with timer("stage"): ...``; `budget` gives the line the
    pipelines log at the end of a run.
    """

    def __init__(self):
        self.seconds = {}

    @contextmanager
    def __call__(self, name):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add({name: time.perf_counter() - start})

    def add(self, seconds):
        """Add another timer's ``seconds`` (a worker process's) to these.

        Parameters
        ----------
        seconds : dict of str to float
        """
        for name, value in seconds.items():
            self.seconds[name] = self.seconds.get(name, 0.0) + value

    def budget(self):
        """``stage seconds (share %)`` for every stage, largest first, and the total.

        Returns
        -------
        str
        """
        total = sum(self.seconds.values())
        parts = [
            f"{name} {value:.1f} s ({100 * value / total:.0f} %)"
            for name, value in sorted(self.seconds.items(), key=lambda kv: -kv[1])
        ] if total > 0 else []
        return "; ".join(parts + [f"total {total:.1f} s"])

    def __str__(self):
        return self.budget()


class Progress:
    """``label: done/total unit (share), ETA`` on an interactive terminal; silent elsewhere.

    Call it with the units done so far (`~jwst_soss_custom.parallel.LocalExecutor.map`
    does, every half second). The line is rewritten in place on the
    terminal and ends when the work is done; in a log file, a pipe or a
    batch job's output nothing is written (the log already says what ran).
    Runs shorter than ``quiet_seconds`` print nothing.

    Parameters
    ----------
    total : int
    label : str
    unit : str
    stream : file-like, optional
        Default: standard error.
    quiet_seconds : float
    """

    def __init__(self, total, label, unit="integrations", stream=None, quiet_seconds=2.0):
        self.total, self.label, self.unit = int(total), label, unit
        self.stream = sys.stderr if stream is None else stream
        isatty = getattr(self.stream, "isatty", None)
        self.enabled = bool(isatty and isatty()) and self.total > 0
        self.quiet_seconds = quiet_seconds
        self.start = time.perf_counter()
        self.shown = False

    def __call__(self, done):
        if not self.enabled:
            return
        elapsed = time.perf_counter() - self.start
        finished = done >= self.total
        if not self.shown and (elapsed < self.quiet_seconds or finished):
            return
        eta = f"{(self.total - done) * elapsed / done:.0f} s" if done else "--"
        line = (f"{self.label}: {done}/{self.total} {self.unit} "
                f"({100 * done / self.total:.0f} %), ETA {eta}")
        # The cursor goes back to the start of the line: the next log line,
        # if any, writes over the progress instead of after it.
        self.stream.write(line + ("\n" if finished else "\r"))
        self.stream.flush()
        self.shown = not finished
