"""stpipe Step: remove column-wise 1/f noise from SOSS integrations."""

import logging

import numpy as np

from jwst_soss_custom._base.atomic import atomic_path
from jwst_soss_custom._base.errors import SossInputError
from jwst_soss_custom._base.geometry import non_science
from jwst_soss_custom.exposure import check_soss_model
from jwst_soss_custom.metadata import ORDER0_ATTRIBUTE
from jwst_soss_custom.references import read_image_arrays
from jwst_soss_custom.stpipe import SossStep
from jwst_soss_custom.tracing import traces_for

from .oneoverf import correct_oneoverf, pixel_weights, projection_model, trace_mask

__all__ = ["SossOneOverFStep", "load_mask"]

log = logging.getLogger(__name__)



class SossOneOverFStep(SossStep):
    """Subtract a per-column, per-integration 1/f offset.

    The star is modelled by the deep frame scaled in time (achromatic or
    per column) or fitted jointly with the offset (``solve``); each column's
    offset comes from the pixels outside a band of ``mask_width`` rows around
    each order's trace, field-star order 0s (``soss_order0_mask`` from
    soss_tracing), the user's ``mask_file`` and unusable pixels. See
    docs/steps/oneoverf.md for the methods and their measured performance.
    """

    class_alias = "soss_oneoverf"

    spec = """
    method = option('scale-achromatic', 'scale-chromatic', 'solve', 'window', 'median', 'project', default='scale-achromatic')  # how the star is modelled and the offsets estimated
    mask_width = float(default=40.0, min=0)  # full width (rows) of the band masked around each trace
    outer_width = float(default=70.0, min=0)  # full width (rows) of each order's window (method='window')
    smoothing_window = integer(default=1, min=1)  # running median (integrations) of the white-light scaling (median, scale-achromatic)
    column_window = integer(default=31, min=1)  # running median (columns) of the per-column scaling (scale-chromatic, window)
    clip = float(default=5.0, min=1)  # outlier rejection threshold in sigma (all methods but median)
    mask_file = string(default=None)  # extra pixels to exclude: 2-D .npy or FITS, True/nonzero = exclude
    force = boolean(default=False)  # correct even if 1/f was already removed from the groups (clean_flicker_noise or soss_oneoverf_groups)
    save_offsets = boolean(default=False)  # save the fitted offsets as <root>_oneoverf_offsets.fits
    save_plot = boolean(default=False)  # save a diagnostic plot <root>_oneoverf.png
    suffix = string(default='oneoverf')  # suffix of the saved model
    """  # noqa: E501

    #: Methods that smooth the white-light scaling in time (``smoothing_window``).
    SMOOTHING_METHODS = ("median", "scale-achromatic", "project")

    def time_halo(self):
        """Neighbours each side of a chunk: half the time smoothing of the scaling."""
        return self.smoothing_window // 2 if self.method in self.SMOOTHING_METHODS else 0

    def process(self, input_data, context=None):
        """Remove 1/f column offsets.

        Parameters
        ----------
        input_data : str or CubeModel
        context : `~jwst_soss_custom.chunks.ChunkContext` or None
            The chunk's context inside soss_spec2.

        Returns
        -------
        CubeModel
        """
        # Whether to skip is known from the metadata: no exposure statistics for it.
        model = self.prepare_output(input_data)
        check_soss_model(model, frame=True, placed=context is not None)
        done = _group_level_cleaning(model)
        if done and not self.force:
            # Two cleanings would fight over the same offsets: after
            # soss_oneoverf_groups a second, rate-level pass made the
            # white-light scatter 1.2x instead of 0.98x the photon limit
            # (realistic_small; docs/steps/oneoverf_groups.md).
            log.warning(
                "%s already removed 1/f noise from the groups of this input; skipping "
                "so it is not corrected twice (set force=True to correct anyway).", done
            )
            self.record_step_status(model, "SKIPPED")
            return model
        model, stats, cache, _ = self.open_chunk(model, context, make_copy=False)

        shape = model.data.shape[1:]
        exclude = self._exclusions(model, shape)
        solution = traces_for(model)
        before = model.data.copy() if self.save_plot else None
        offsets, region = correct_oneoverf(
            model.data,
            model.err,
            model.dq,
            solution,
            method=self.method,
            inner_width=self.mask_width,
            outer_width=self.outer_width,
            exclude=exclude,
            smoothing_window=self.smoothing_window,
            column_window=self.column_window,
            clip=self.clip,
            deep=stats.deep,
            err_median=stats.err,
            projection=cache.get("projection"),
        )
        log.info(
            "Removed 1/f offsets (%s): RMS %.4f DN/s per column over %d integrations.",
            self.method,
            float(np.sqrt(np.mean(offsets[:, 0, 4:-4] ** 2))),
            offsets.shape[0],
        )
        if self.save_offsets:
            self._save_offsets(model, offsets, region, cache.get("projection"))
        if self.save_plot:
            from jwst_soss_custom.plotting.cleaning import plot_oneoverf

            path = self.make_output_path(basepath=model.meta.filename, suffix="oneoverf", ext="png")
            plot_oneoverf(before, model.data, offsets[:, 0], path)
        self.record_step_status(model)
        return model

    def prepare_exposure(self, context, model):
        """The exposure's `Projection` (method ``project``), once for every chunk and process.

        Built from the exposure statistics with the traces and order-0 mask
        that soss_tracing found for the exposure (its exposure-level results
        in ``context``); without them, from the input's own traces.
        """
        cache = context.step_cache(self.class_alias)
        if self.method != "project" or "projection" in cache:
            return
        stats = context.statistics
        shape = stats.deep.shape
        tracing = context.cache.get("soss_tracing", {})
        if "solution" in tracing:
            solution, order0 = tracing["solution"], tracing["mask"]
        else:
            solution = traces_for(model, ncols=shape[1])
            order0 = getattr(model, ORDER0_ATTRIBUTE, None)
        exclude = self._exclusions(model, shape, order0)
        traces = trace_mask(solution, shape, self.mask_width)
        cache["projection"] = projection_model(
            stats.deep, stats.err, *_ramp_shape(model), ~(traces | exclude), traces & ~exclude,
            pixel_weights(stats.err),
        )

    def _exclusions(self, model, shape, order0=None):
        """Pixels never used to measure offsets: reference pixels, order 0s, the user's mask.

        ``order0`` defaults to the model's ``soss_order0_mask``.
        """
        exclude = non_science(model.meta.subarray.name, shape)
        if order0 is None:
            order0 = getattr(model, ORDER0_ATTRIBUTE, None)
        if order0 is not None:
            exclude |= _frame_mask(order0, shape, ORDER0_ATTRIBUTE)
            log.info("Excluding %d order-0 contaminant pixels", int(np.count_nonzero(order0)))
        if self.mask_file:
            exclude |= load_mask(self.mask_file, shape)
        return exclude

    def _save_offsets(self, model, offsets, region, projection=None):
        """Offsets (nints, nregions, ncols) and what each pixel received, as a FITS file."""
        from astropy.io import fits

        path = self.make_output_path(
            basepath=model.meta.filename, suffix="oneoverf_offsets", ext="fits"
        )
        header = fits.Header({"METHOD": self.method, "BUNIT": "DN/s"})
        if projection is not None:
            header["GAIN"] = (projection.gain, "gain (e-/DN) of the weighting classes")
        hdus = [fits.PrimaryHDU(header=header), fits.ImageHDU(offsets, name="OFFSETS")]
        if projection is None:
            hdus.append(fits.ImageHDU(region.astype(np.int16), name="REGION"))
        else:
            # Pixel (y, x) received BETA x OFFSETS[:, 0, x] + GAMMA x OFFSETS[:, 1, x].
            hdus += [fits.ImageHDU(projection.beta, name="BETA"),
                     fits.ImageHDU(projection.gamma, name="GAMMA")]
        with atomic_path(path) as temporary:
            fits.HDUList(hdus).writeto(temporary)
        log.info("Saved 1/f offsets %s", path)


def _frame_mask(array, shape, name):
    mask = np.asarray(array).astype(bool)
    if mask.shape != tuple(shape):
        raise SossInputError(
            f"{name} has shape {mask.shape}, but the frames are {tuple(shape)}; "
            "give a 2-D mask of the frame's shape (True = exclude)."
        )
    return mask


def load_mask(path, shape):
    """Read a user exclusion mask (2-D ``.npy`` or FITS image; nonzero = exclude).

    Parameters
    ----------
    path : str or Path
    shape : tuple of int
        Frame shape the mask must have.

    Returns
    -------
    ndarray of bool
    """
    items = read_image_arrays(path, "mask_file")
    if not items:
        raise SossInputError(f"mask_file {path} holds no image.")
    return _frame_mask(items[0][1], shape, f"mask_file {path}")


def _ramp_shape(model):
    """Groups per integration and group time of the ramps the slopes came from."""
    exposure = model.meta.exposure
    ngroups, group_time = exposure.ngroups, exposure.group_time
    if not isinstance(ngroups, int | np.integer) or ngroups < 2:
        raise SossInputError(
            f"{model.meta.filename}: method 'project' needs NGROUPS >= 2 in the header "
            f"(got {ngroups!r}); use the rateints as ramp_fit wrote them, or another method."
        )
    if not isinstance(group_time, float | int) or not np.isfinite(group_time) or group_time <= 0:
        raise SossInputError(
            f"{model.meta.filename}: method 'project' needs a positive TGROUP in the header "
            f"(got {group_time!r}); use the rateints as ramp_fit wrote them, or another method."
        )
    return int(ngroups), float(group_time)


def _group_level_cleaning(model):
    """The step that removed 1/f from the groups of ``model``'s ramps, or None."""
    cal_step = model.meta.cal_step
    if cal_step.clean_flicker_noise == "COMPLETE":
        return "clean_flicker_noise"
    if getattr(cal_step, "soss_oneoverf_groups", None) == "COMPLETE":
        return "soss_oneoverf_groups"
    return None
