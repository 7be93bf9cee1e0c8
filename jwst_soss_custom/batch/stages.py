"""One stage of one exposure: the task a batch worker runs.

A stage runs one of the package's pipelines (or the fit step) on the
products of the stage before it, writing into a hidden folder beside its
final one (``<exposure>/.x1dints.part``) that is renamed to the final
folder (``<exposure>/x1dints``) only when every product is written: a stage
stopped at any point leaves its earlier complete products or nothing under
the final name. The final folder holds a record (`RECORD_NAME`) of what
made it: the parameters' fingerprint, the inputs (name, size, modification
time) and every product (name, size). A rerun skips a stage whose record
matches what it would do now and whose products are all there unchanged;
anything else is redone — a new parameter file, a changed input, a product
removed, or a rerun earlier stage (its products are then newer).

Everything a task needs travels in its arguments and everything it returns
is a small `StageResult`, so the same task runs in a local cluster's worker
or on a remote one that sees the same file system.
"""

import hashlib
import json
import logging
import shutil
import threading
import time
import traceback
from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path

from jwst_soss_custom._base.errors import SossInputError

__all__ = ["Stage", "StageResult", "STAGES", "RECORD_NAME", "run_stage", "stages_for"]

log = logging.getLogger(__name__)

#: The record a finished stage leaves in its folder.
RECORD_NAME = "soss_batch_record.json"

#: Share of a worker's memory limit given to the pipelines' ``memory_limit``:
#: their budgets count the arrays they hold, not the interpreter and
#: libraries around them, and a Dask worker is stopped at 95 % of its limit.
MEMORY_SHARE = 0.6


@dataclass(frozen=True)
class Stage:
    """One stage of the reduction.

    Attributes
    ----------
    name : str
        Short name (summary table, log file).
    alias : str
        The pipeline's or step's stpipe alias; its parameter file in a
        parameter folder is ``<alias>.asdf``.
    pipeline : str
        ``module:class`` of the stpipe class.
    folder : str
        Output folder under the exposure's folder.
    takes : str
        File-name ending of the inputs it takes from the stage before.
    chunked : bool
        Whether the pipeline has ``memory_limit`` and ``processes`` parameters.
    """

    name: str
    alias: str
    pipeline: str
    folder: str
    takes: str
    chunked: bool = False


#: Every stage, in order.
STAGES = (
    Stage("detector1", "soss_detector1", "jwst_soss_custom.pipeline:SossDetector1Pipeline",
          "rateints", "_uncal.fits", chunked=True),
    Stage("spec2", "soss_spec2", "jwst_soss_custom.pipeline:SossSpec2Pipeline",
          "x1dints", "_rateints.fits", chunked=True),
    Stage("tso3", "soss_tso3", "jwst_soss_custom.pipeline:SossTso3Pipeline",
          "products", "_x1dints.fits"),
    Stage("fit", "soss_fit", "jwst_soss_custom.fitting:SossFitStep", "fit", "_whtlt.ecsv"),
)


def stages_for(level, fit=False):
    """The stages an exposure goes through from its input level.

    Parameters
    ----------
    level : {"uncal", "rateints"}
    fit : bool
        End with the transit fit.

    Returns
    -------
    list of `Stage`
    """
    names = ["detector1"] if level == "uncal" else []
    names += ["spec2", "tso3"] + (["fit"] if fit else [])
    return [s for s in STAGES if s.name in names]


@dataclass
class StageResult:
    """What one stage of one exposure did.

    Attributes
    ----------
    exposure, stage : str
    status : {"done", "skipped", "failed", "not run"}
        ``skipped``: complete products of the same inputs and parameters were
        found; ``not run``: an earlier stage failed.
    seconds : float
    products : list of str
        Every file the stage wrote (absolute paths).
    error : str or None
        One line: what went wrong and what to do.
    log : str or None
        The stage's log file.
    summary : dict
        Figures for the batch summary (``soss_tso3``: white-light precision;
        ``soss_fit``: white-light depth).
    peak_memory_gb : float
        Peak resident memory of the worker process when the stage ended (GB;
        the process's peak so far, NaN where the platform does not say).
    """

    exposure: str
    stage: str
    status: str
    seconds: float = 0.0
    products: list = field(default_factory=list)
    error: str | None = None
    log: str | None = None
    summary: dict = field(default_factory=dict)
    peak_memory_gb: float = float("nan")


def _identity(path):
    """Name, size and modification time: enough to see that a file changed."""
    stat = Path(path).stat()
    return [Path(path).name, stat.st_size, stat.st_mtime_ns]


def fingerprint(stage, param_file):
    """What the products of a stage depend on besides its inputs.

    The stage, the versions of the package and of jwst, and the content of
    the parameter file. ``memory_limit`` and ``processes`` are not part of
    it: the products do not depend on them.

    Parameters
    ----------
    stage : `Stage`
    param_file : str or None

    Returns
    -------
    str
        A SHA-256 hex digest.
    """
    from importlib.metadata import version

    digest = hashlib.sha256()
    digest.update(json.dumps([stage.alias, version("jwst_soss_custom"), version("jwst")]).encode())
    if param_file:
        digest.update(Path(param_file).read_bytes())
    return digest.hexdigest()


def _complete(folder, want):
    """The products listed by a matching record, if all are there unchanged; else None."""
    try:
        record = json.loads((folder / RECORD_NAME).read_text())
    except (OSError, ValueError):
        return None
    if {k: record.get(k) for k in want} != want:
        return None
    products = [folder / name for name, _ in record.get("products", [])]
    for path, (_, size) in zip(products, record["products"]):
        if not path.is_file() or path.stat().st_size != size:
            return None
    return [str(p) for p in products]


def _publish(part, final):
    """Put a finished stage folder under its final name (what was there goes)."""
    old = final.with_name(f".{final.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    part.rename(final)
    shutil.rmtree(old, ignore_errors=True)


class _ThreadLog(logging.Handler):
    """Every log record of one thread, to a file (a worker may run other tasks)."""

    def __init__(self, path):
        super().__init__(logging.INFO)
        self.thread = threading.get_ident()
        self.stream = open(path, "w")
        self.setFormatter(logging.Formatter("%(asctime)s - %(name)s - %(levelname)s - %(message)s"))

    def emit(self, record):
        if record.thread == self.thread:
            self.stream.write(self.format(record) + "\n")
            self.stream.flush()

    def close(self):
        self.stream.close()
        super().close()


def _worker_memory_gb():
    """The memory limit of the Dask worker running this task (GB), or None."""
    try:
        from distributed import get_worker

        limit = get_worker().memory_manager.memory_limit
    except (ImportError, ValueError, AttributeError):
        return None
    return limit / 1e9 if limit else None


#: The product each stage's summary figures come from.
SUMMARY_TABLES = {"tso3": "_precision.ecsv", "fit": "_fit_whitelight.ecsv"}


def _summary(stage, products):
    """Figures for the batch summary, per order.

    ``soss_tso3``: the white light's measured scatter and its ratio to the
    photon+read expectation; ``soss_fit``: the white-light depth and error.
    """
    from astropy.table import Table

    tables = [p for p in products if p.endswith(SUMMARY_TABLES.get(stage.name, "\0"))]
    if not tables:
        return {}
    table = Table.read(tables[0], format="ascii.ecsv")
    summary = {}
    if stage.name == "tso3":
        for row in table[table["bin"] == -1]:
            order = int(row["order"])
            summary[f"whitelight_ppm_order_{order}"] = float(row["measured_ppm"])
            summary[f"whitelight_ratio_order_{order}"] = float(row["ratio"])
    else:
        for row in table[table["parameter"] == "depth_ppm"]:
            order = int(row["order"])
            summary[f"depth_ppm_order_{order}"] = float(row["value"])
            summary[f"depth_error_ppm_order_{order}"] = float(row["error"])
    return summary


def _peak_memory_gb():
    """Peak resident memory of this process so far (GB), NaN where unknown."""
    try:
        import resource
    except ImportError:  # not on Windows
        return float("nan")
    # Linux reports kilobytes (macOS bytes; the figure is informative only).
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6


def _one_line(err):
    """The error as one line: the package's own messages as they are."""
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    if isinstance(err, SossInputError):
        return text
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def run_stage(stage, exposure, inputs, output_dir, param_file=None, previous=None):
    """Run one stage of one exposure, or find it already done.

    Parameters
    ----------
    stage : `Stage`
    exposure : str
        The exposure's name (its folder under ``output_dir``).
    inputs : list of str
        The exposure's input files; used by the first stage only.
    output_dir : str
        The batch's output folder.
    param_file : str or None
        The stage's ASDF parameter file.
    previous : `StageResult` or None
        The stage before (its products are this stage's inputs).

    Returns
    -------
    `StageResult`
        Never raises: a failure is a result with its one-line error, the
        traceback in the stage's log.
    """
    base = Path(output_dir) / exposure
    if previous is not None and previous.status in ("failed", "not run"):
        return StageResult(exposure, stage.name, "not run")
    if previous is not None:
        inputs = [p for p in previous.products if p.endswith(stage.takes)]
    start = time.perf_counter()
    (base / "logs").mkdir(parents=True, exist_ok=True)
    log_file = base / "logs" / f"{stage.name}.log"
    final = base / stage.folder
    want = {"fingerprint": fingerprint(stage, param_file),
            "inputs": [_identity(p) for p in sorted(inputs)]}
    done = _complete(final, want)
    if done is not None:
        return StageResult(exposure, stage.name, "skipped", time.perf_counter() - start, done,
                           log=str(log_file), summary=_summary(stage, done))
    part = final.with_name(f".{final.name}.part")
    shutil.rmtree(part, ignore_errors=True)
    part.mkdir()
    handler = _ThreadLog(log_file)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(min(level, logging.INFO) if level else logging.INFO)
    try:
        if not inputs:
            raise SossInputError(f"{exposure}: the stage before {stage.alias} left no "
                                 f"*{stage.takes} product; see its log.")
        module, name = stage.pipeline.split(":")
        cls = getattr(import_module(module), name)
        # The messages go to the stage's log (above), not to the worker's console.
        options = {"output_dir": str(part), "save_results": True, "configure_log": False}
        if param_file:
            options["config_file"] = str(param_file)
        if stage.chunked:
            # The exposures are the parallel work: one process per stage.
            options["processes"] = 1
            memory = _worker_memory_gb()
            if memory:
                options["memory_limit"] = max(0.5, round(MEMORY_SHARE * memory, 2))
        log.info("soss_batch: %s of %s on %d input(s)%s", stage.alias, exposure, len(inputs),
                 f", parameters from {param_file}" if param_file else "")
        cls.call(sorted(inputs) if len(inputs) > 1 else inputs[0], **options)
        names = sorted(p.name for p in part.iterdir() if p.is_file())
        record = {**want, "products": [[n, (part / n).stat().st_size] for n in names],
                  "stage": stage.alias, "exposure": exposure}
        (part / RECORD_NAME).write_text(json.dumps(record, indent=1))
        _publish(part, final)
    except Exception as err:  # noqa: BLE001 - any failure is this exposure's, reported
        log.error("soss_batch: %s of %s failed:\n%s", stage.alias, exposure,
                  traceback.format_exc())
        shutil.rmtree(part, ignore_errors=True)
        return StageResult(exposure, stage.name, "failed", time.perf_counter() - start,
                           error=_one_line(err), log=str(log_file),
                           peak_memory_gb=_peak_memory_gb())
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        handler.close()
    products = [str(final / n) for n in names]
    return StageResult(exposure, stage.name, "done", time.perf_counter() - start, products,
                       log=str(log_file), summary=_summary(stage, products),
                       peak_memory_gb=_peak_memory_gb())
