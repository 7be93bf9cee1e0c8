"""SossDetector1Pipeline: SOSS uncal segments to rateints, with group-level 1/f removal."""

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from jwst.dark_current import DarkCurrentStep
from jwst.dq_init import DQInitStep
from jwst.gain_scale import GainScaleStep
from jwst.group_scale import GroupScaleStep
from jwst.jump import JumpStep
from jwst.lib.suffix import remove_suffix
from jwst.linearity import LinearityStep
from jwst.ramp_fitting import RampFitStep
from jwst.refpix import RefPixStep
from jwst.saturation import SaturationStep
from jwst.superbias import SuperBiasStep
from stdatamodels.jwst import datamodels
from stdatamodels.jwst.datamodels import dqflags

from jwst_soss_custom._base.geometry import subarray_reference_pixels
from jwst_soss_custom.chunks import ChunkContext, RampBudget, plan_chunks
from jwst_soss_custom.metadata import apply_segment_identity, inherit_metadata, product_name
from jwst_soss_custom.oneoverf.groups_step import SossOneOverFGroupsStep
from jwst_soss_custom.parallel import (
    LocalExecutor,
    advance,
    keep_freed_memory,
    return_freed_memory,
)
from jwst_soss_custom.pipeline._handoff import ScratchProduct, collect, hand_over, run_groups
from jwst_soss_custom.ramp_source import RampSource
from jwst_soss_custom.stpipe import SossPipeline
from jwst_soss_custom.timing import Progress, StageTimer

__all__ = ["SossDetector1Pipeline", "RAMP_STEPS", "combine_rates"]

log = logging.getLogger(__name__)

#: The steps applied to the ramps, in order (ramp_fit and gain_scale follow).
RAMP_STEPS = (
    "group_scale", "dq_init", "saturation", "superbias", "refpix", "oneoverf_groups",
    "linearity", "dark_current", "jump",
)
#: The rateints arrays collected from the chunks of a segment.
RATE_ARRAYS = ("data", "dq", "err", "var_poisson", "var_rnoise")


class SossDetector1Pipeline(SossPipeline):
    """Raw SOSS ramps to ``rateints``: the official Detector1 steps plus group-level 1/f.

    The official step classes (group_scale, dq_init, saturation, superbias,
    refpix, linearity, dark_current, jump, ramp_fit, gain_scale) run in the
    official near-infrared order; ``soss_oneoverf_groups`` removes the 1/f of
    every group after refpix, before linearity and jump, where it is still an
    additive signal of the readout. Steps that do not apply to SOSS (ipc,
    persistence, charge_migration, the MIRI steps, clean_flicker_noise) are
    not part of it. References come as ``--steps.<step>.override_<reftype>=``
    files or from CRDS.

    Input: one uncal segment, a list, or a level-2 association of all
    segments of an exposure. The exposure's star model for the 1/f step is
    made once from integrations spread over every segment; then each segment
    is cut into chunks of integrations sized to ``memory_limit`` that run
    through the steps (``processes`` segments at a time). When every
    segment is done, the part of the 1/f step's offsets that follows the
    star's brightness, fitted over all integrations, is added back to the
    slopes (`~jwst_soss_custom.oneoverf.groups.leak_slopes`), and each
    segment's ``<segment>_rateints.fits`` (and ``<segment>_rate.fits`` with
    ``save_rate``) is written.
    """

    class_alias = "soss_detector1"

    spec = """
    save_calibrated_ramp = boolean(default=False)  # also save the corrected ramps (*_ramp.fits; per chunk when a segment is cut)
    save_rate = boolean(default=False)  # also save the integration-averaged slopes (*_rate.fits)
    memory_limit = float(default=4.0, min=0.5)  # GB the reduction may use; segments are processed in chunks of integrations that fit
    processes = integer(default=2, min=1)  # processes working on segments in parallel; 1 = this process only
    """  # noqa: E501

    step_defs = {
        "group_scale": GroupScaleStep,
        "dq_init": DQInitStep,
        "saturation": SaturationStep,
        "superbias": SuperBiasStep,
        "refpix": RefPixStep,
        "oneoverf_groups": SossOneOverFGroupsStep,
        "linearity": LinearityStep,
        "dark_current": DarkCurrentStep,
        "jump": JumpStep,
        "ramp_fit": RampFitStep,
        "gain_scale": GainScaleStep,
    }

    #: Official-step settings for SOSS time series, given as a CRDS parameter
    #: reference would give them (below parameter files and the command
    #: line; see docs/steps/oneoverf_groups.md). jump: compare each group
    #: difference with the pixel's median difference over all integrations
    #: of the chunk in one pass (with <10 differences per integration stcal
    #: would otherwise search iteratively: minutes per segment), and never
    #: switch to sigma clipping at >=100 integrations, so that the flags do
    #: not depend on how the exposure is chunked.
    STEP_DEFAULTS = {"jump": {"min_diffs_single_pass": 1, "minimum_sigclip_groups": 1_000_000}}

    @classmethod
    def get_config_from_reference(cls, dataset, disable=None, crds_observatory=None):
        """The SOSS settings of the official steps (`STEP_DEFAULTS`), without CRDS."""
        config = cls._empty_config()
        config["steps"] = {name: dict(pars) for name, pars in cls.STEP_DEFAULTS.items()}
        return config

    def process(self, input_data, *more_segments):
        """Reduce the raw ramps of every segment.

        Parameters
        ----------
        input_data : str, Path, RampModel, list, or association file
            The uncal segment(s) of one exposure (never modified).
        *more_segments : str or Path
            Further segment files (``strun soss_detector1 seg1.fits seg2.fits``).

        Returns
        -------
        CubeModel, list of them, or list of str
            One rateints per segment; with ``save_results`` each is written
            (``<segment>_rateints.fits``) and the file names are returned
            instead.
        """
        # As soss_spec2: products keep the names of their segments.
        self.output_use_model = True
        self.suffix = False
        # As jwst's Detector1Pipeline: the ramp-level steps write nothing of
        # their own, and dark_current/ramp_fit save their side products beside ours.
        self.dark_current.output_dir = self.output_dir
        self.ramp_fit.output_dir = self.output_dir
        source = RampSource(self.gather_inputs(input_data, more_segments))
        # Models in memory cannot be sent to worker processes: one process then.
        executor = LocalExecutor(self.processes if source.paths is not None else 1)
        longest = max(s.stop - s.start for s in source.segments)
        budget = RampBudget(self.memory_limit, source.ngroups, source.frame_shape, longest,
                            executor.workers(len(source.segments)))
        groups = [
            [(index, start - segment.start, stop - segment.start)
             for start, stop in plan_chunks([segment], budget.chunk_integrations)]
            for index, segment in enumerate(source.segments)
        ]
        log.info(
            "Reducing %d segment(s), %d integrations x %d groups: %d chunk(s) of <= %d "
            "integrations, %d process(es), memory_limit %.1f GB",
            len(source.segments), source.nints, source.ngroups, sum(map(len, groups)),
            budget.chunk_integrations, budget.processes, self.memory_limit,
        )
        timer = StageTimer()
        with keep_freed_memory():
            with timer("exposure"):
                cache = self._prepare_exposure(source, budget)
            executor = LocalExecutor(budget.processes if source.paths is not None else 1)
            # The sample's memory, freed, goes back to the system: forked
            # workers would each copy it, and this process would keep it
            # beside the segment it fills.
            return_freed_memory()
            try:
                results, worked = run_groups(
                    executor, _RampChunks(self, source, cache), groups, "soss_detector1_",
                    finish=lambda made: self._finish(made, source.ngroups, timer),
                    progress=Progress(source.nints, "soss_detector1"),
                )
            finally:
                for segment in source.segments:
                    self._partial(segment.filename).unlink(missing_ok=True)
        timer.add(worked.seconds)
        log.info("Time budget (summed over processes): %s", timer.budget())
        return results[0] if len(results) == 1 else results

    def _prepare_exposure(self, source, budget):
        """The 1/f step's star model, from integrations spread over the exposure."""
        context = ChunkContext(None)
        step = self.oneoverf_groups
        if step.skip:
            return context.cache
        count = min(step.reference_integrations, budget.sample_integrations)
        if count < step.reference_integrations:
            log.info("memory_limit allows a star model of %d integrations, not %d.",
                     count, step.reference_integrations)
        plan = source.sample(count)
        total = sum(len(range(start, stop, stride)) for _, start, stop, stride in plan)
        shape = (total, source.ngroups, *source.frame_shape)
        sample = datamodels.RampModel(data=np.empty(shape, np.float32),
                                      groupdq=np.empty(shape, np.uint8))
        row = 0
        for index, start, stop, stride in plan:
            # Through the steps before the 1/f step a chunk at a time; only
            # the corrected groups and flags are kept.
            picks = range(start, stop, stride)
            for first in range(0, len(picks), budget.chunk_integrations):
                part = picks[first : first + budget.chunk_integrations]
                ramp = source.ramp(index, part.start, part[-1] + 1, stride)
                for name in RAMP_STEPS[: RAMP_STEPS.index("oneoverf_groups")]:
                    ramp = getattr(self, name).run(ramp)
                n = len(part)
                sample.data[row : row + n] = ramp.data
                sample.groupdq[row : row + n] = ramp.groupdq
                sample.pixeldq = ramp.pixeldq if row == 0 else sample.pixeldq | ramp.pixeldq
                if row == 0:
                    inherit_metadata(sample, ramp)
                row += n
                del ramp
        step.prepare_exposure(context, sample)
        return context.cache

    def _reduce(self, source, cache, group, scratch):
        """The chunks of one segment through the steps, in turn; its rateints.

        Returns
        -------
        products : list of `_Segment`
            The segment's rateints (and rate) as they are or, from a worker
            process, where they were written in ``scratch`` for the parent
            to read; its 1/f leak sums for `_finish`.
        seconds : dict
            Time spent per stage.
        """
        timer = StageTimer()
        index = group[0][0]
        segment = source.segments[index]
        # The segment's arrays, filled chunk by chunk (not concatenated at the
        # end: that would hold the segment twice).
        arrays, rates, first = {}, [], None
        leak_sums = {"projection": [], "scale": []}
        for _, start, stop in group:
            with timer("read"):
                ramp = source.ramp(index, start, stop)
            if len(group) > 1:
                # What a step saves is then named per chunk: ..._int0001-0034_ramp.fits.
                begin = ramp.meta.exposure.integration_start
                root, separator = remove_suffix(Path(segment.filename).stem)
                ramp.meta.filename = (f"{root}_int{begin:04d}-{begin + stop - start - 1:04d}"
                                      f"{separator or '_'}uncal.fits")
            context = ChunkContext(None, cache=cache)
            for name in RAMP_STEPS:
                with timer(name):
                    step = getattr(self, name)
                    ramp = step.run(ramp, context) if name == "oneoverf_groups" else step.run(ramp)
            for key, value in context.results.get(self.oneoverf_groups.class_alias, {}).items():
                leak_sums[key].append(value)
            if self.save_calibrated_ramp:
                with timer("write"):
                    self._save(ramp, ramp.meta.filename, "ramp")
            with timer("ramp_fit"):
                rate, ints = self.ramp_fit.run(ramp)
            status = ramp.meta.cal_step.soss_oneoverf_groups
            del ramp
            with timer("gain_scale"):
                ints = self.gain_scale.run(ints)
            for name in RATE_ARRAYS:
                value = getattr(ints, name)
                if name not in arrays:
                    length = segment.stop - segment.start
                    arrays[name] = np.empty((length, *value.shape[1:]), value.dtype)
                arrays[name][start:stop] = value
            if self.save_rate:
                rates.append({name: getattr(rate, name) for name in RATE_ARRAYS})
            if first is None:
                first, first_rate = ints, rate
            advance(stop - start)
        with timer("write"):
            rateints = datamodels.CubeModel(
                **arrays
            )
            inherit_metadata(rateints, first)
            # Not a schema keyword, so ramp_fit's metadata copy drops it.
            rateints.meta.cal_step.soss_oneoverf_groups = status
            apply_segment_identity(rateints, segment.model)
            name = segment.filename
            log.info("%s: %d integrations -> rateints", name, rateints.data.shape[0])
            rateints.meta.filename = product_name(name, "rateints")
            if self.save_results:
                # Beside the product, under a name no reader takes for it,
                # until the leak is known (`_publish`): a long exposure's
                # segments fit neither in memory nor twice on disk.
                rateints.save(self._partial(name))
                done = _Segment(name, ScratchProduct(str(self._partial(name))))
            else:
                done = _Segment(name, hand_over(rateints, scratch))
            if self.save_rate:
                rate = datamodels.ImageModel(**combine_rates(rates))
                inherit_metadata(rate, first_rate)
                rate.meta.cal_step.soss_oneoverf_groups = status
                rate = self.gain_scale.run(rate)
                rate.meta.filename = product_name(name, "rate")
                done.rate = hand_over(rate, scratch)
            if leak_sums["scale"]:
                done.projection = np.concatenate(leak_sums["projection"])
                done.scale = np.concatenate(leak_sums["scale"])
            return [done], timer.seconds

    def _finish(self, segments, ngroups, timer):
        """The leak fitted over every segment added to the slopes; the products.

        Parameters
        ----------
        segments : list of `_Segment`
            As the work units returned them, in order.
        ngroups : int
        timer : `~jwst_soss_custom.timing.StageTimer`
            Receives the time spent here.

        Returns
        -------
        list of CubeModel or str
            The rateints (their file names with ``save_results``).
        """
        from jwst_soss_custom.oneoverf.groups import transit_leak
        from jwst_soss_custom.oneoverf.groups_step import leak_summary

        leak = None
        if segments and all(s.scale is not None for s in segments):
            with timer("oneoverf_groups"):
                scale = np.concatenate([s.scale for s in segments])
                leak = transit_leak(np.concatenate([s.projection for s in segments]), scale,
                                    ngroups)
            log.info("Added to the slopes the 1/f offsets' part following the star's "
                     "brightness, fitted over %d integrations (scale %.4f-%.4f): %s.",
                     scale.size, np.nanmin(scale), np.nanmax(scale),
                     leak_summary(leak, ngroups))
        out = []
        for segment in segments:
            with timer("write"):
                if segment.rate is not None:
                    rate = collect(segment.rate)
                    if leak is not None:
                        # Its integrations weigh equally (same read noise): the
                        # leak of the mean scale.
                        _add_leak(rate.data[None], leak, [np.nanmean(segment.scale)],
                                  rate.meta.exposure.group_time, rate.meta.subarray.name)
                    self._save(rate, segment.name, "rate")
                if self.save_results:
                    out.append(self._publish(segment, leak))
                    continue
                rateints = collect(segment.rateints)
                if leak is not None:
                    _add_leak(rateints.data, leak, segment.scale,
                              rateints.meta.exposure.group_time, rateints.meta.subarray.name)
                out.append(rateints)
        return out

    def _publish(self, segment, leak):
        """A segment's waiting rateints: the leak added in place, then its final name.

        The file is updated through a memory map, an integration at a time,
        so the parent never holds a segment (1.4 GB for 134 integrations).

        Returns
        -------
        str
            The product's path.
        """
        from astropy.io import fits

        partial = self._partial(segment.name)
        final = partial.with_name(product_name(segment.name, "rateints"))
        with fits.open(partial, mode="update", memmap=True) as hdul:
            hdul[0].header["FILENAME"] = final.name
            if leak is not None:
                _add_leak(hdul["SCI"].data, leak, segment.scale, hdul[0].header["TGROUP"],
                          hdul[0].header["SUBARRAY"])
        partial.replace(final)
        log.info("Saved model in %s", final)
        return str(final)

    def _partial(self, name):
        """Where a segment's rateints wait for the leak of the whole exposure."""
        final = product_name(name, "rateints")
        return Path(self.output_dir or ".") / f".{Path(final).stem}.partial.fits"

    def _save(self, model, name, suffix):
        """Write a product of the segment ``name`` as ``<root>_<suffix>.fits``; its path."""
        model.meta.filename = product_name(name, suffix)
        return self.save_model(model, output_file=model.meta.filename, suffix=False, force=True)


def _add_leak(slopes, leak, scale, group_time, subarray):
    """Add the 1/f leak of each integration's scale to its slopes (science pixels), in place.

    Parameters
    ----------
    slopes : ndarray (nints, ny, nx)
        In memory or a memory map of a file, one integration at a time.
    leak : ndarray (degree + 1, nx)
    scale : sequence of float (nints,)
    group_time : float
    subarray : str
    """
    from jwst_soss_custom.oneoverf.groups import leak_slopes

    science = ~subarray_reference_pixels(subarray)
    for i, value in enumerate(scale):
        added = leak_slopes(leak, [value], slopes.shape[1], group_time)[0]
        slopes[i] += np.where(science, added, np.float32(0))


def combine_rates(rates):
    """The exposure's slopes from the slopes of its chunks, as ramp_fit combines integrations.

    stcal's ramp_fit averages the integrations' slopes weighted by their
    inverse read-noise variance, and sums the inverse Poisson and read-noise
    variances; the same over chunks (each itself such an average) gives the
    segment's average.

    Parameters
    ----------
    rates : list of dict
        Each chunk's ``rate`` arrays: data, dq, err, var_poisson, var_rnoise.

    Returns
    -------
    dict of ndarray
        The combined arrays (float32; dq uint32).
    """
    if len(rates) == 1:
        return dict(rates[0])
    data = np.stack([r["data"] for r in rates]).astype(np.float64)
    vr = np.stack([r["var_rnoise"] for r in rates]).astype(np.float64)
    vp = np.stack([r["var_poisson"] for r in rates]).astype(np.float64)
    usable = np.isfinite(data) & (vr > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        wr = np.where(usable, 1.0 / vr, 0.0)
        wp = np.where(usable & (vp > 0), 1.0 / vp, 0.0)
        rate = (np.where(usable, data, 0.0) * wr).sum(axis=0) / wr.sum(axis=0)
        var_rnoise = np.where(wr.sum(axis=0) > 0, 1.0 / wr.sum(axis=0), 0.0)
        var_poisson = np.where(wp.sum(axis=0) > 0, 1.0 / wp.sum(axis=0), 0.0)
    dq = np.stack([r["dq"] for r in rates])
    # A condition of every chunk (do-not-use, saturated) holds for the
    # exposure only if it holds in all; anything else in any.
    everywhere = np.bitwise_and.reduce(dq, axis=0)
    anywhere = np.bitwise_or.reduce(dq, axis=0)
    whole = np.uint32(dqflags.pixel["DO_NOT_USE"] | dqflags.pixel["SATURATED"])
    return {
        "data": rate.astype(np.float32),
        "dq": ((anywhere & ~whole) | (everywhere & whole)).astype(np.uint32),
        "err": np.sqrt(var_poisson + var_rnoise).astype(np.float32),
        "var_poisson": var_poisson.astype(np.float32),
        "var_rnoise": var_rnoise.astype(np.float32),
    }


@dataclass
class _Segment:
    """One segment's products from a work unit, and its share of the 1/f leak fit."""

    name: str
    rateints: object
    rate: object = None
    projection: np.ndarray = None
    scale: np.ndarray = None


@dataclass
class _RampChunks:
    """The work unit of `SossDetector1Pipeline`: one segment's chunks through the steps.

    Picklable (the pipeline and its parameters, the exposure's files and the
    star model), so any executor can run it in another process; called with
    a list of ``(segment, start, stop)`` chunks, it returns what
    `SossDetector1Pipeline._reduce` returns.
    """

    pipeline: SossDetector1Pipeline
    source: RampSource
    cache: dict
    scratch: str = None

    def __call__(self, group):
        return self.pipeline._reduce(self.source, self.cache, group, self.scratch)
