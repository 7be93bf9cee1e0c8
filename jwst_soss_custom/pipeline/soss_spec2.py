"""SossSpec2Pipeline: rateints segments of one exposure to per-segment x1dints."""

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from jwst.lib.suffix import remove_suffix
from stdatamodels.jwst import datamodels

from jwst_soss_custom.background import SossBackgroundStep
from jwst_soss_custom.badpix import SossBadpixStep
from jwst_soss_custom.chunks import ChunkContext, MemoryBudget, plan_chunks
from jwst_soss_custom._base.errors import SossInputError
from jwst_soss_custom._base.geometry import subarray_rows
from jwst_soss_custom.exposure import flag_empty_integrations
from jwst_soss_custom.metadata import (
    apply_segment_identity,
    inherit_metadata,
    int_start,
    product_name,
)
from jwst_soss_custom.extract import SossExtractStep, SossPhotomStep
from jwst_soss_custom.oneoverf import SossOneOverFStep
from jwst_soss_custom.parallel import (
    LocalExecutor,
    advance,
    keep_freed_memory,
    return_freed_memory,
)
from jwst_soss_custom.pipeline._handoff import hand_over, run_groups
from jwst_soss_custom.products import join_x1dints
from jwst_soss_custom.source import ExposureSource
from jwst_soss_custom.statistics import exposure_statistics
from jwst_soss_custom.stpipe import SossPipeline
from jwst_soss_custom.timing import Progress, StageTimer
from jwst_soss_custom.tracing import SossTracingStep

__all__ = ["SossSpec2Pipeline"]

log = logging.getLogger(__name__)

#: The steps every chunk goes through, in order (the last makes the x1dints).
CHUNK_STEPS = ("badpix", "background", "tracing", "oneoverf", "extract")


class SossSpec2Pipeline(SossPipeline):
    """Clean and extract a SOSS time series, all segments as one exposure.

    Input: one rateints segment, a list of them, or a level-2 association of
    all segments of an exposure. The exposure-level statistics (deep frame,
    median ERR, per-pixel noise) are computed once over every integration of
    every segment; then chunks of integrations, sized to ``memory_limit``, run
    through soss_badpix, soss_background, soss_tracing, soss_oneoverf and
    soss_extract, all sharing those statistics, so the result does not depend
    on the chunking. Products are written per segment as
    ``<segment>_x1dints.fits`` (and ``<segment>_calints.fits`` with
    ``save_calints``), each as soon as its segment is done.
    """

    class_alias = "soss_spec2"

    spec = """
    save_calints = boolean(default=False)  # also save the cleaned integrations per segment (*_calints.fits)
    memory_limit = float(default=3.0, min=0.5)  # GB the reduction may use; the exposure is processed in chunks that fit (results do not depend on it)
    processes = integer(default=2, min=1)  # processes working on segments (and statistics) in parallel; 1 = this process only
    """  # noqa: E501

    step_defs = {
        "badpix": SossBadpixStep,
        "background": SossBackgroundStep,
        "tracing": SossTracingStep,
        "oneoverf": SossOneOverFStep,
        "extract": SossExtractStep,
        "photom": SossPhotomStep,
    }

    @classmethod
    def load_spec_file(cls, preserve_comments=None):
        """The merged spec, with the ``photom`` sub-step skipped by default.

        Light curves and depths are relative: the fluxes stay in DN/s unless
        a calibration is asked for (``--steps.photom.skip=false
        --steps.photom.override_photom=...``); standalone ``soss_photom``
        keeps ``skip=False``.
        """
        kwargs = {} if preserve_comments is None else {"preserve_comments": preserve_comments}
        spec = super().load_spec_file(**kwargs)
        spec["steps"]["photom"]["skip"] = "boolean(default=True)"
        return spec

    def process(self, input_data, *more_segments):
        """Reduce one exposure.

        Parameters
        ----------
        input_data : str, Path, CubeModel, list, or association file
            The rateints segment(s) of one exposure (never modified).
        *more_segments : str or Path
            Further segment files, as ``strun soss_spec2 seg1.fits seg2.fits``
            gives them.

        Returns
        -------
        TSOMultiSpecModel, list of them, or list of str
            One x1dints per input segment; with ``save_results`` the products
            are written as soon as each segment is done and their file names
            are returned instead (so that a long exposure's products never
            need to be in memory together).
        """
        # As jwst's Spec2Pipeline: products are saved under their own
        # meta.filename, so segments keep their official names.
        self.output_use_model = True
        self.suffix = False
        source = ExposureSource(self.gather_inputs(input_data, more_segments))
        # Models in memory cannot be sent to worker processes: one process then.
        executor = LocalExecutor(self.processes if source.paths is not None else 1)
        budget = MemoryBudget(self.memory_limit, source.nints, source.frame_shape,
                              executor.workers(len(source.segments)))
        halo = sum(getattr(self, name).time_halo() for name in CHUNK_STEPS)
        groups = self._plan(source, budget, halo)
        processes = executor.workers(len(groups))
        log.info(
            "Reducing %d segment(s), %d integrations, as one time series: %d chunk(s) of "
            "<= %d integrations, %d process(es), memory_limit %.1f GB",
            len(source.segments), source.nints, sum(map(len, groups)),
            min(budget.chunk_integrations, source.nints), processes, self.memory_limit,
        )
        timer = StageTimer()
        with keep_freed_memory():
            with timer("statistics"):
                stats = exposure_statistics(
                    # The bands were sized for the budget's processes: no more.
                    source, rows_per_band=budget.band_rows,
                    executor=LocalExecutor(budget.processes),
                )
            # Before any chunk runs, so nothing is written for a bad exposure;
            # a few empty integrations are flagged by soss_badpix and left out.
            flag_empty_integrations(
                stats.empty, int_start(source.segments[0].model),
                f"{source.segments[0].filename} (exposure of {len(source.segments)} segment(s))",
            )
            with timer("exposure"):
                cache = self._prepare_exposure(stats, source.segments[0].model)
            # The exposure-level fits' temporaries (the contamination model's
            # images: ~0.4 GB) must not be copied into forked workers.
            return_freed_memory()
            results, worked = run_groups(
                executor, _ChunkGroups(self, source, stats, cache, halo), groups, "soss_spec2_",
                progress=Progress(source.nints, "soss_spec2"),
            )
        timer.add(worked.seconds)
        log.info("Time budget (summed over processes): %s", timer.budget())
        return results[0] if len(results) == 1 else results

    def _prepare_exposure(self, stats, model):
        """Each step's exposure-level results, computed once here for every chunk and process."""
        context = ChunkContext(stats)
        for name in CHUNK_STEPS:
            step = getattr(self, name)
            if not step.skip:
                step.prepare_exposure(context, model)
        return context.cache

    def _plan(self, source, budget, halo):
        """Chunks of integrations, grouped by the process that will run them in turn."""
        if not any(getattr(self, name).needs_whole_series() for name in CHUNK_STEPS):
            chunks = plan_chunks(source.segments, budget.chunk_integrations, halo)
            return [
                [c for c in chunks if segment.start <= c[0] < segment.stop]
                for segment in source.segments
            ]
        if budget.chunk_integrations < source.nints:
            raise SossInputError(
                "steps.extract.box_mode='optimize' compares the widths over the whole time "
                f"series, so the {source.nints} integrations must be reduced in one chunk: "
                f"give a memory_limit of {budget.required_gb(source.nints):.1f} GB or more, "
                "or box_mode='fixed'."
            )
        return [[(0, source.nints)]]

    def _reduce(self, source, stats, cache, group, halo, scratch):
        """Chunks through the steps, in turn; the x1dints of the segments they complete.

        Returns
        -------
        products : list of TSOMultiSpecModel or str
            Each product, or where it was written: the output (with
            ``save_results``) or ``scratch`` (a worker process's product, read
            back by `~jwst_soss_custom.pipeline._handoff.collect`).
        seconds : dict
            Time spent per stage.
        """
        timer = StageTimer()
        products, parts, cleaned = [], {}, {}
        for start, stop in group:
            lo, hi = max(0, start - halo), min(source.nints, stop + halo)
            with timer("read"):
                cube = source.cube(lo, hi)
            context = ChunkContext(stats, slice(start - lo, stop - lo), cache)
            holder = next(s for s in source.segments if s.start <= start < s.stop)
            cube.meta.filename = holder.filename
            if (start, stop) != (holder.start, holder.stop):
                # What a step saves (save_results, diagnostics) is then named
                # per chunk: jw..._nis_int0001-0104_badpix.fits.
                first = cube.meta.exposure.integration_start
                label = f"int{first + start - lo:04d}-{first + stop - lo - 1:04d}"
                root, separator = remove_suffix(Path(holder.filename).stem)
                cube.meta.filename = f"{root}_{label}{separator or '_'}rateints.fits"
                log.info("Chunk %s", cube.meta.filename)
            for name in CHUNK_STEPS[:-1]:
                with timer(name):
                    cube = getattr(self, name).run(cube, context)
            with timer(CHUNK_STEPS[-1]):
                x1dints = getattr(self, CHUNK_STEPS[-1]).run(cube, context)
            for index, segment in enumerate(source.segments):
                first, last = max(start, segment.start), min(stop, segment.stop)
                if first >= last:
                    continue
                parts.setdefault(index, []).append((x1dints, first - lo, last - lo))
                if self.save_calints:
                    # The segment's rows only: the chunk itself is released.
                    cleaned.setdefault(index, []).append(_rows(cube, first - lo, last - lo))
                if last == segment.stop:
                    with timer("write"):
                        if self.save_calints:
                            self._save_calints(cleaned.pop(index), segment)
                        products.append(self._segment_product(parts.pop(index), segment, scratch))
            del cube
            advance(stop - start)
        return products, timer.seconds

    def _segment_product(self, parts, segment, scratch=None):
        """The x1dints of one segment from its chunks; saved now with save_results."""
        product = join_x1dints(parts, segment=segment.model)
        product.meta.filename = product_name(segment.filename, "x1dints")
        if not self.photom.skip:
            product = self.photom.run(product)
        if self.save_results:
            self.finalize_result(product, [])
            path = self.save_model(product, output_file=product.meta.filename, suffix=False,
                                   force=True)
            product.close()
            return path
        return hand_over(product, scratch)

    def _save_calints(self, pieces, segment):
        """Write a segment's cleaned integrations from its chunks' rows (`_rows`).

        In the subarray's own rows (SUBSTRIP96: the rows it read), as the
        input segment.
        """
        rows = subarray_rows(segment.model.meta.subarray.name)
        calints = datamodels.CubeModel(
            **{name: np.concatenate([getattr(p, name)[:, rows] for p in pieces])
               for name in ("data", "err", "dq")}
        )
        inherit_metadata(calints, pieces[0])
        apply_segment_identity(calints, segment.model)
        calints.meta.filename = product_name(segment.filename, "calints")
        self.save_model(calints, output_file=calints.meta.filename, suffix=False, force=True)


def _rows(cube, start, stop):
    """Copies of a chunk's integrations ``start:stop`` with its metadata."""
    piece = datamodels.CubeModel(
        data=cube.data[start:stop].copy(), err=cube.err[start:stop].copy(),
        dq=cube.dq[start:stop].copy(),
    )
    inherit_metadata(piece, cube)
    return piece


@dataclass
class _ChunkGroups:
    """The work unit of `SossSpec2Pipeline`: one group of chunks through the steps.

    Picklable (the pipeline and its parameters, the exposure's files, its
    statistics and the steps' exposure-level results), so any executor can
    run it in another process; called with a group of ``(start, stop)``
    chunks, it returns what `SossSpec2Pipeline._reduce` returns.
    """

    pipeline: SossSpec2Pipeline
    source: ExposureSource
    stats: object
    cache: dict
    halo: int
    scratch: str = None

    def __call__(self, group):
        return self.pipeline._reduce(
            self.source, self.stats, self.cache, group, self.halo, self.scratch
        )
