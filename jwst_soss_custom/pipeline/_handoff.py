"""Groups of chunks over worker processes, and their products handed back to the parent.

`run_groups` is how both pipelines run their work units: one group of
chunks (a segment, or several) per call, the groups over the executor's
workers. A pipeline's worker returns its products to the parent process; a product
of a few hundred MB pickled through the pool's pipe would be copied twice
and held whole in the pipe's buffers, so the worker writes it to a scratch
folder of the run and returns only where it is (`hand_over`); the parent
reads it back (`collect`).
"""

import gc
import tempfile
from dataclasses import dataclass
from pathlib import Path

from stdatamodels.jwst import datamodels

from jwst_soss_custom.timing import StageTimer

__all__ = ["ScratchProduct", "collect", "hand_over", "run_groups"]


def run_groups(executor, work, groups, prefix, finish=None, progress=None):
    """Each group of chunks in turn, the groups over the executor's workers.

    Parameters
    ----------
    executor : `~jwst_soss_custom.parallel.LocalExecutor`
    work : callable
        The pipeline's picklable work unit, with a ``scratch`` attribute (set
        here when the groups go to worker processes); called with a group,
        it returns ``(products, seconds)``.
    groups : list
    prefix : str
        Of the scratch folder's name.
    finish : callable or None
        Given every group's products as returned (in order, not yet read
        back), the final products; called while the scratch files exist.
        None: each product read back (`collect`).
    progress : callable or None
        Given the integrations done so far (`~jwst_soss_custom.timing.Progress`);
        the work reports them with `~jwst_soss_custom.parallel.advance`.

    Returns
    -------
    products : list
        Every group's products, in order, read back from scratch files (or
        what ``finish`` made of them).
    timer : `~jwst_soss_custom.timing.StageTimer`
        The time per stage, summed over the groups.
    """
    # stpipe collects garbage before every step run; with the schemas and
    # models loaded by now that is ~0.25 s a run. Freezing what exists
    # leaves only the chunks' new objects to scan.
    gc.collect()
    gc.freeze()
    timer = StageTimer()
    try:
        with tempfile.TemporaryDirectory(prefix=prefix) as scratch:
            if executor.workers(len(groups)) > 1:
                work.scratch = scratch
            outcomes = executor.map(work, groups, progress=progress)
            made = [p for products, _ in outcomes for p in products]
            products = finish(made) if finish else [collect(p) for p in made]
    finally:
        gc.unfreeze()
    for _, seconds in outcomes:
        timer.add(seconds)
    return products, timer


@dataclass
class ScratchProduct:
    """A product a worker process wrote to a scratch file for the parent to read."""

    path: str


def hand_over(model, scratch):
    """The product itself (same process), or where it was written in ``scratch``.

    Parameters
    ----------
    model : JwstDataModel
        A product named by its ``meta.filename``.
    scratch : str or None
        The run's scratch folder when the caller is a worker process.

    Returns
    -------
    JwstDataModel or ScratchProduct
    """
    if scratch is None:
        return model
    path = Path(scratch) / model.meta.filename
    model.save(path)
    model.close()
    return ScratchProduct(str(path))


def collect(product):
    """A product back from a worker process: read it if it was only passed on.

    Parameters
    ----------
    product : JwstDataModel, ScratchProduct or str

    Returns
    -------
    JwstDataModel or str
    """
    if isinstance(product, ScratchProduct):
        with datamodels.open(product.path) as model:
            return model.copy()
    return product
