"""Many exposures, each stage of each one a task on a ``dask.distributed`` cluster.

`run_batch` groups the input files into exposures (`find_exposures`),
submits every stage of every exposure as one task (`run_stage`), each
depending on the stage before, waits for all of them, and writes the
summary table. The cluster is a `distributed.LocalCluster` sized to this
machine unless a scheduler address or a client is given (a dask-jobqueue
SLURM/PBS cluster, a Dask Gateway cluster: see docs/batch.md). The workers
must see the input and output folders under the same paths.
"""

import importlib.util
import logging
import os
from pathlib import Path

import numpy as np
from astropy.table import Table

from jwst_soss_custom._base.atomic import atomic_path
from jwst_soss_custom._base.errors import SossInputError
from jwst_soss_custom.batch.exposures import find_exposures
from jwst_soss_custom.batch.stages import STAGES, StageResult, run_stage, stages_for
from jwst_soss_custom.timing import Progress

__all__ = ["SUMMARY_NAME", "run_batch", "default_workers", "parameter_files"]

log = logging.getLogger(__name__)

#: The summary table written into the output folder.
SUMMARY_NAME = "batch_summary.ecsv"

#: Memory one worker needs for one exposure stage (GB, measured on the
#: full 537-integration exposure: soss_spec2 1.7 GB, soss_detector1 3.6 GB
#: at its default budget; with room for the interpreter).
WORKER_MEMORY_GB = {"rateints": 2.5, "uncal": 5.0}


def default_workers(level="rateints"):
    """Workers a local cluster gets: one per core, as many as the memory allows.

    Parameters
    ----------
    level : {"uncal", "rateints"}
        The earliest input level of the batch (raw ramps need more memory).

    Returns
    -------
    int
    """
    import psutil

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    memory = psutil.virtual_memory().total / 1e9
    return max(1, min(cores or 1, int(memory // WORKER_MEMORY_GB[level])))


def parameter_files(params_dir):
    """The parameter file of each stage found in a folder (``<alias>.asdf``).

    Parameters
    ----------
    params_dir : str, Path or None

    Returns
    -------
    dict
        Stage name to file path (str); stages without a file are left out.
    """
    if params_dir is None:
        return {}
    folder = Path(params_dir)
    if not folder.is_dir():
        raise SossInputError(f"Parameter folder {folder} does not exist; give the folder "
                             "holding soss_spec2.asdf etc. (or leave --params-dir out).")
    return {s.name: str(folder / f"{s.alias}.asdf") for s in STAGES
            if (folder / f"{s.alias}.asdf").is_file()}


def _client(scheduler, workers, level):
    """A client of the given scheduler or of a new local cluster; the cluster; a dashboard?"""
    import dask
    from distributed import Client, LocalCluster

    if scheduler:
        return Client(scheduler), None, True
    # The dashboard needs bokeh; without it, none is started (no warning).
    dashboard = ":0" if importlib.util.find_spec("bokeh") else None
    # A worker that dies (out of memory) fails its exposure at once instead
    # of taking the stage to three more workers.
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        cluster = LocalCluster(n_workers=workers or default_workers(level), threads_per_worker=1,
                               processes=True, dashboard_address=dashboard)
    return Client(cluster), cluster, dashboard is not None


def _gather(future, exposure, stage):
    """A task's result; a worker lost or a task cancelled is the exposure's failure."""
    try:
        return future.result()
    except Exception as err:  # noqa: BLE001 - KilledWorker, CancelledError, ...
        return StageResult(exposure, stage, "failed",
                           error=f"{type(err).__name__}: the worker running {stage} was lost "
                                 f"({str(err).splitlines()[0] if str(err) else 'no detail'}); "
                                 "it may have run out of memory: give workers more memory.")


def _row(exposure, results):
    """One summary row from an exposure's stage results."""
    statuses = [r.status for r in results]
    if "failed" in statuses or not results:
        status = "failed"
    elif all(s == "skipped" for s in statuses):
        status = "skipped"
    else:
        status = "done"
    failed = next((r for r in results if r.status == "failed"), None)
    summary = {k: v for r in results for k, v in r.summary.items()}
    last = next((r for r in reversed(results) if r.status in ("done", "skipped")), None)
    return {
        "exposure": exposure.name,
        "level": exposure.level,
        "segments": len(exposure.files),
        "status": status,
        "stages": " ".join(f"{r.stage}:{r.status}" for r in results),
        "seconds": round(sum(r.seconds for r in results), 2),
        "peak_memory_gb": round(max((r.peak_memory_gb for r in results
                                     if np.isfinite(r.peak_memory_gb)), default=np.nan), 3),
        "whitelight_ppm_order_1": summary.get("whitelight_ppm_order_1", np.nan),
        "whitelight_ratio_order_1": summary.get("whitelight_ratio_order_1", np.nan),
        "whitelight_ppm_order_2": summary.get("whitelight_ppm_order_2", np.nan),
        "whitelight_ratio_order_2": summary.get("whitelight_ratio_order_2", np.nan),
        **{f"{name}_order_{order}": summary.get(f"{name}_order_{order}", np.nan)
           for order in (1, 2) for name in ("depth_ppm", "depth_error_ppm")},
        "products": str(Path(last.products[0]).parent) if last and last.products else "",
        "log": (failed.log if failed and failed.log else
                str(Path(results[-1].log).parent) if results and results[-1].log else ""),
        "error": exposure.error or (failed.error if failed else ""),
    }


def run_batch(inputs, output_dir, *, scheduler=None, client=None, workers=None,
              params_dir=None, fit=False, recursive=False):
    """Reduce every SOSS exposure found in the input folders.

    Parameters
    ----------
    inputs : str, Path or list of them
        Folders of ``*_uncal.fits`` and/or ``*_rateints.fits`` segments.
    output_dir : str or Path
        One folder per exposure is made in it, and `SUMMARY_NAME`.
    scheduler : str or None
        Address of a running Dask scheduler (``tcp://host:8786``); None: a
        local cluster for this run.
    client : `distributed.Client` or None
        A client to use as it is (e.g. of a dask-jobqueue cluster); it is not
        closed.
    workers : int or None
        Workers of the local cluster; None: `default_workers`.
    params_dir : str, Path or None
        Folder of parameter files, one per stage (``soss_detector1.asdf``,
        ``soss_spec2.asdf``, ``soss_tso3.asdf``, ``soss_fit.asdf``), shared by
        every exposure; a stage without one runs with its defaults.
    fit : bool
        Also fit the transits (``soss_fit``; give its period in
        ``soss_fit.asdf``).
    recursive : bool
        Also look for inputs in sub-folders.

    Returns
    -------
    `~astropy.table.Table`
        The summary: one row per exposure (status ``done``, ``skipped`` or
        ``failed``), also written to ``output_dir/batch_summary.ecsv``.
    """
    if isinstance(inputs, (str, Path)):
        inputs = [inputs]
    try:
        exposures = find_exposures(inputs, recursive=recursive)
    except FileNotFoundError as err:
        raise SossInputError(str(err)) from None
    if not exposures:
        raise SossInputError(f"No *_uncal.fits or *_rateints.fits SOSS segments in "
                             f"{', '.join(map(str, inputs))}; give the folders that hold them.")
    params = parameter_files(params_dir)
    output_dir = Path(output_dir).resolve()
    output_dir.mkdir(parents=True, exist_ok=True)
    runnable = [e for e in exposures if e.error is None]
    level = "uncal" if any(e.level == "uncal" for e in runnable) else "rateints"
    cluster, dashboard, own_client = None, client is not None, False
    if client is None and runnable:
        client, cluster, dashboard = _client(scheduler, workers, level)
        own_client = True
    results = {e.name: [] for e in exposures}
    try:
        if runnable:
            link = client.dashboard_link if dashboard else None
            log.info("soss_batch: %d exposure(s) (%d with bad input) on %s; dashboard %s",
                     len(exposures), len(exposures) - len(runnable), client.scheduler.address,
                     link or "not available (pip install \"jwst_soss_custom[dashboard]\")")
            chains = _submit(client, runnable, output_dir, params, fit)
            progress = Progress(len(chains), "soss_batch", unit="exposures")
            _wait(chains, progress)
            for name, chain in chains.items():
                results[name] = [_gather(f, name, stage) for stage, f in chain]
    finally:
        if own_client:
            client.close()
        if cluster is not None:
            cluster.close()
    table = Table(rows=[_row(e, results[e.name]) for e in exposures])
    table.meta["inputs"] = [str(Path(p).resolve()) for p in inputs]
    table.meta["parameter_files"] = params
    with atomic_path(output_dir / SUMMARY_NAME) as path:
        table.write(path, format="ascii.ecsv")
    return table


def _submit(client, exposures, output_dir, params, fit):
    """Every stage of every exposure as a task after the one before; per exposure, its chain."""
    chains = {}
    for exposure in exposures:
        previous = None
        chain = []
        for stage in stages_for(exposure.level, fit):
            future = client.submit(
                run_stage, stage, exposure.name, [str(p) for p in exposure.files],
                str(output_dir), params.get(stage.name), previous,
                key=f"{stage.name}-{exposure.name}-{os.urandom(4).hex()}", pure=False)
            chain.append((stage.name, future))
            previous = future
        chains[exposure.name] = chain
    return chains


def _wait(chains, progress):
    """Until every exposure's last stage is over, counting exposures done."""
    from distributed import as_completed

    last = [chain[-1][1] for chain in chains.values()]
    for done, _ in enumerate(as_completed(last), start=1):
        progress(done)
