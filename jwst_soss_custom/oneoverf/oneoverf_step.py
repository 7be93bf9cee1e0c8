"""stpipe Step: remove column-wise 1/f noise from SOSS integrations."""

import logging

import numpy as np

from jwst_soss_custom._base.errors import SossInputError
from jwst_soss_custom._base.geometry import reference_pixels
from jwst_soss_custom.exposure import check_soss_model
from jwst_soss_custom.metadata import ORDER0_ATTRIBUTE
from jwst_soss_custom.references import read_image_arrays
from jwst_soss_custom.stpipe import SossStep
from jwst_soss_custom.tracing import traces_for

from .oneoverf import correct_oneoverf

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
    method = option('scale-achromatic', 'scale-chromatic', 'solve', 'window', 'median', default='scale-achromatic')  # how the star is modelled and the offsets estimated
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
    SMOOTHING_METHODS = ("median", "scale-achromatic")

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
        check_soss_model(model)
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
        model, stats, _, _ = self.open_chunk(model, context, make_copy=False)

        shape = model.data.shape[1:]
        exclude = reference_pixels(shape)
        order0 = getattr(model, ORDER0_ATTRIBUTE, None)
        if order0 is not None:
            exclude |= _frame_mask(order0, shape, ORDER0_ATTRIBUTE)
            log.info("Excluding %d order-0 contaminant pixels", int(np.count_nonzero(order0)))
        if self.mask_file:
            exclude |= load_mask(self.mask_file, shape)
        before = model.data.copy() if self.save_plot else None
        offsets, region = correct_oneoverf(
            model.data,
            model.err,
            model.dq,
            traces_for(model),
            method=self.method,
            inner_width=self.mask_width,
            outer_width=self.outer_width,
            exclude=exclude,
            smoothing_window=self.smoothing_window,
            column_window=self.column_window,
            clip=self.clip,
            deep=stats.deep,
            err_median=stats.err,
        )
        log.info(
            "Removed 1/f offsets (%s): RMS %.4f DN/s per column over %d integrations.",
            self.method,
            float(np.sqrt(np.mean(offsets[:, 0, 4:-4] ** 2))),
            offsets.shape[0],
        )
        if self.save_offsets:
            self._save_offsets(model, offsets, region)
        if self.save_plot:
            from jwst_soss_custom.plotting.cleaning import plot_oneoverf

            path = self.make_output_path(basepath=model.meta.filename, suffix="oneoverf", ext="png")
            plot_oneoverf(before, model.data, offsets[:, 0], path)
        self.record_step_status(model)
        return model

    def _save_offsets(self, model, offsets, region):
        """Offsets (nints, nregions, ncols) and the region map as a FITS file."""
        from astropy.io import fits

        path = self.make_output_path(
            basepath=model.meta.filename, suffix="oneoverf_offsets", ext="fits"
        )
        header = fits.Header({"METHOD": self.method, "BUNIT": "DN/s"})
        fits.HDUList(
            [
                fits.PrimaryHDU(header=header),
                fits.ImageHDU(offsets, name="OFFSETS"),
                fits.ImageHDU(region.astype(np.int16), name="REGION"),
            ]
        ).writeto(path, overwrite=True)
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


def _group_level_cleaning(model):
    """The step that removed 1/f from the groups of ``model``'s ramps, or None."""
    cal_step = model.meta.cal_step
    if cal_step.clean_flicker_noise == "COMPLETE":
        return "clean_flicker_noise"
    if getattr(cal_step, "soss_oneoverf_groups", None) == "COMPLETE":
        return "soss_oneoverf_groups"
    return None
