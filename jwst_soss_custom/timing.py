"""Where a pipeline run spends its time: wall seconds per stage, logged as a budget."""

import time
from contextlib import contextmanager

__all__ = ["StageTimer"]


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
