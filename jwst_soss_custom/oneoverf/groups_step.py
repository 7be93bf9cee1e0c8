"""stpipe Step: remove 1/f noise from the groups of SOSS ramps, before ramp fitting."""

import logging

import numpy as np
from stdatamodels.jwst.datamodels import dqflags

from jwst_soss_custom._base.atomic import atomic_path
from jwst_soss_custom._base.data import order3_centre
from jwst_soss_custom._base.geometry import (
    SUBSTRIP256_SHAPE,
    subarray_reference_pixels,
    subarray_rows,
)
from jwst_soss_custom.stpipe import SossStep
from jwst_soss_custom.tracing.refine import core_mask, refine_solution
from jwst_soss_custom.tracing.tracing import drop_unread_orders, predict_traces

from .groups import (
    fit_group_oneoverf,
    leak_projection,
    median_ramp,
    ramp_scale,
    subtract_group_oneoverf,
    transit_leak,
)
from .oneoverf_step import load_mask

__all__ = ["SossOneOverFGroupsStep"]

log = logging.getLogger(__name__)

#: Group flags whose values are never fitted on.
_BAD_GROUP = np.uint8(
    dqflags.group["SATURATED"] | dqflags.group["DO_NOT_USE"] | dqflags.group["JUMP_DET"]
)


class SossOneOverFGroupsStep(SossStep):
    """Subtract each group's column 1/f, modelled away from the traces.

    Runs on the ramps after ``superbias`` and ``refpix`` (soss_detector1 puts
    it there). The star is the median ramp of the exposure scaled per
    integration on the order-1 trace (its sky part unscaled); per integration,
    group and column, what remains in the pixels farther than ``mask_width``/2
    rows from every order (pastasoss traces at the exposure's PWCPOS, refined
    on the median ramp) is fitted as a constant (``degree=0``) or a polynomial
    in row (the drift along the column while it is read) and subtracted from
    every science pixel of the column. See docs/steps/oneoverf_groups.md.
    """

    class_alias = "soss_oneoverf_groups"

    spec = """
    mask_width = float(default=40.0, min=0)  # full width (rows) masked around each order's trace
    degree = integer(default=1, min=0, max=2)  # polynomial in row fitted per group and column (0 = one offset)
    clip = float(default=4.0, min=1)  # background values this many robust sigmas from the column median are left out of the fit
    refine = boolean(default=True)  # refine pastasoss's trace positions on the median ramp
    scale_halfwidth = float(default=8.0, min=1)  # rows either side of order 1's centre summed for the per-integration scale
    mask_file = string(default=None)  # extra pixels to exclude: 2-D .npy or FITS, True/nonzero = exclude
    decorrelate = boolean(default=True)  # leave in the data the part of the offsets that follows the star's brightness (fitted over every integration): 1/f knows nothing of the transit
    reference_integrations = integer(default=64, min=2)  # integrations spread over the exposure whose median ramp is the star model
    save_offsets = boolean(default=False)  # save the removed coefficients and scales as <root>_oneoverf_groups_offsets.fits
    save_plot = boolean(default=False)  # save a diagnostic plot <root>_oneoverf_groups.png (per chunk in soss_detector1)
    suffix = string(default='oneoverf_groups')  # suffix of the saved model
    """  # noqa: E501

    def process(self, input_data, context=None):
        """Remove the group-level 1/f of a SOSS ramp.

        Parameters
        ----------
        input_data : str or RampModel
            A SOSS ramp after superbias and refpix (DN).
        context : `~jwst_soss_custom.chunks.ChunkContext` or None
            From soss_detector1: its step cache holds the exposure's star
            model (`prepare_exposure`). None: made from the input.

        Returns
        -------
        RampModel
        """
        model = self.open_ramp(input_data)
        nints, ngroups, ny, nx = model.data.shape
        bad = _bad_groups(model)
        cache = {} if context is None else context.step_cache(self.class_alias)
        if "ramp" not in cache:
            step = -(-nints // self.reference_integrations)
            cache.update(self._star_model(model.data[::step], bad[::step], model))
        ramp, keep, trace = cache["ramp"], cache["keep"], cache["trace"]
        one_sided = cache.get("one_sided")
        refpix = subarray_reference_pixels(model.meta.subarray.name)
        scale = ramp_scale(model.data, ramp, trace, bad)
        coef = fit_group_oneoverf(model.data, ramp, scale, keep, bad, self.degree, self.clip,
                                  one_sided)
        leak = None
        if self.decorrelate and context is None:
            # The whole exposure is here: its leak, fitted on every integration.
            leak = transit_leak(leak_projection(coef), scale, ngroups)
            log.info("Left in the data the offsets' part following the star's brightness "
                     "(scale %.4f-%.4f): %s.", np.nanmin(scale), np.nanmax(scale),
                     leak_summary(leak, ngroups))
        elif self.decorrelate:
            # A chunk: the pipeline fits the leak over all chunks and adds it
            # to the slopes (`leak_slopes`), exact as the leak is linear in the group.
            context.results[self.class_alias] = {
                "projection": leak_projection(coef).astype(np.float32), "scale": scale,
            }
        before = model.data[:, -1] - model.data[:, 0] if self.save_plot else None
        subtract_group_oneoverf(model.data, coef, scale, ~refpix, leak)
        rms = float(np.sqrt(np.nanmean(coef[:, 0, :, 4:-4] ** 2)))
        npix = int(np.median(keep.sum(axis=0)))
        log.info(
            "Removed group-level 1/f (degree %d): RMS %.3f DN per column offset over %d "
            "integrations x %d groups, fitted on %d background pixels per column "
            "(median); integration scale %.4f-%.4f.",
            self.degree, rms, nints, ngroups, npix, np.nanmin(scale), np.nanmax(scale),
        )
        model.soss_oneoverf_groups = {
            "degree": int(self.degree), "rms_offset_dn": rms, "background_pixels_median": npix,
        }
        if self.save_offsets:
            self._save_offsets(model, coef, scale, keep, leak)
        if self.save_plot:
            from jwst_soss_custom.plotting.cleaning import plot_group_oneoverf

            path = self.make_output_path(basepath=model.meta.filename, suffix="oneoverf_groups",
                                         ext="png")
            plot_group_oneoverf(before, model.data[:, -1] - model.data[:, 0],
                                coef[:, 0, -1], keep, path)
            log.info("Saved group-level 1/f plot %s", path)
        self.record_step_status(model)
        return model

    def prepare_exposure(self, context, model):
        """The exposure's star model, once, from integrations spread over it.

        Parameters
        ----------
        context : `~jwst_soss_custom.chunks.ChunkContext`
            Its cache for this step receives ``ramp`` (the median ramp),
            ``keep`` (background pixels) and ``trace`` (order-1 core).
        model : RampModel
            Integrations of the exposure after superbias and refpix (e.g.
            every k-th, `~jwst_soss_custom.ramp_source.RampSource.sample`).
        """
        cache = context.step_cache(self.class_alias)
        if "ramp" not in cache:
            cache.update(self._star_model(model.data, _bad_groups(model), model))

    def _star_model(self, groups, bad, model):
        """Median ramp, background pixels (away from every order) and the order-1 core.

        The traces are found in the SUBSTRIP256 frame, where a smaller
        subarray's rows are placed (SUBSTRIP96: order 1 refined, order 2's
        predicted core masked where the subarray reads it).
        """
        ramp = median_ramp(groups, bad)
        shape = ramp.shape[1:]
        subarray = model.meta.subarray.name
        rows = subarray_rows(subarray)
        refpix = subarray_reference_pixels(subarray)
        solution = predict_traces(model.meta.instrument.pupil_position, ncols=shape[1])
        unread = drop_unread_orders(solution, subarray)
        if self.refine:
            # The charge of the median ramp is the deep frame here.
            charge = np.full(SUBSTRIP256_SHAPE, np.nan, np.float32)
            charge[rows] = np.nan_to_num(ramp[-1] - ramp[0])
            solution = refine_solution(charge, solution)
        traces = [t.y for t in solution.orders.values()] + unread + [order3_centre(shape[1])]
        excluded = core_mask(traces, SUBSTRIP256_SHAPE, self.mask_width / 2)[rows] | refpix
        if self.mask_file:
            excluded |= load_mask(self.mask_file, shape)
        trace = core_mask([solution.orders[1].y], SUBSTRIP256_SHAPE,
                          self.scale_halfwidth)[rows] & ~refpix
        # Columns with background only below or only above order 1 (SUBSTRIP96's
        # red end, where order 2 runs along the top rows): a slope along the
        # column would be extrapolated to the trace, so they take an offset only.
        centre = solution.orders[1].y - rows.start
        ny = shape[0]
        below = (~excluded & (np.arange(ny)[:, None] < centre[None, :])).any(axis=0)
        above = (~excluded & (np.arange(ny)[:, None] > centre[None, :])).any(axis=0)
        # (Reference columns have neither; they are not fitted at all.)
        one_sided = ~(below & above) & ~refpix.all(axis=0)
        if one_sided.any():
            log.info("Group-level 1/f: %d columns have background on one side of order 1 "
                     "only and are fitted with an offset alone.", int(one_sided.sum()))
        log.info("Group-level 1/f star model: median ramp of %d integrations.", len(groups))
        return {"ramp": ramp, "keep": ~excluded, "trace": trace,
                "one_sided": one_sided if one_sided.any() else None}

    def _save_offsets(self, model, coef, scale, keep, leak):
        """Coefficients (nints, degree+1, ngroups, ncols), scales, fit mask and leak as FITS."""
        from astropy.io import fits

        path = self.make_output_path(
            basepath=model.meta.filename, suffix="oneoverf_groups_offsets", ext="fits"
        )
        header = fits.Header({"DEGREE": self.degree, "BUNIT": "DN"})
        hdus = fits.HDUList([
            fits.PrimaryHDU(header=header),
            fits.ImageHDU(coef, name="COEFFS"),
            fits.ImageHDU(np.asarray(scale, np.float64), name="SCALE"),
            fits.ImageHDU(keep.astype(np.uint8), name="FITMASK"),
            *([] if leak is None else [fits.ImageHDU(leak, name="LEAK")]),
        ])
        with atomic_path(path) as temporary:
            hdus.writeto(temporary)
        log.info("Saved group-level 1/f coefficients %s", path)


def leak_summary(leak, ngroups):
    """One line on a fitted leak: its size where it is largest, in DN per group."""
    if leak is None or not np.any(leak):
        return "none measurable"
    peak = float(np.abs(leak[0]).max()) * ngroups
    return (f"up to {peak:.3f} DN per unit of scale - 1 by the last group, "
            f"{int(np.count_nonzero(leak[0]))} columns")


def _bad_groups(model):
    """Group values never fitted on: saturated, do-not-use or jump-flagged, per group or pixel."""
    bad = (model.groupdq & _BAD_GROUP) != 0
    bad |= ((model.pixeldq & np.uint32(dqflags.pixel["DO_NOT_USE"])) != 0)[None, None]
    return bad
