"""stpipe Step: find and replace bad pixels of SOSS rateints."""

import logging

import numpy as np

from jwst_soss_custom.dq import FLAGS, reference_pixels
from jwst_soss_custom.exposure import check_integrations, check_soss_model
from jwst_soss_custom.stpipe import SossStep

from .badpix import (
    bad_pixel_mask,
    flag_replaced,
    replace_bad_pixels,
    spatial_outliers,
    temporal_outliers,
)

__all__ = ["SossBadpixStep"]

log = logging.getLogger(__name__)

#: Noise of a median of n Gaussian values = sqrt(pi/2) x that of their mean.
_MEDIAN_EFFICIENCY = np.sqrt(np.pi / 2)


class SossBadpixStep(SossStep):
    """Find and replace flagged, spatially and temporally deviant pixels.

    Flagged and non-finite pixels and spatial outliers of the deep frame
    (unflagged hot and dead pixels) are interpolated along rows; temporal
    outliers (cosmic rays, telegraph pixels) take the running median of
    their own time series. Every replaced pixel keeps its flags and gains
    FLUX_ESTIMATED (as jwst's ``pixel_replace`` does); spatial outliers also
    gain HOT or DEAD and DO_NOT_USE, temporal ones OUTLIER and JUMP_DET.
    """

    class_alias = "soss_badpix"

    spec = """
    max_distance = integer(default=4, min=1)  # farthest column used to interpolate a bad pixel
    spatial = boolean(default=True)  # flag outliers of the deep frame (unflagged hot/dead pixels)
    spatial_threshold = float(default=15.0, min=0)  # spatial threshold in local robust sigmas of the deep frame
    spatial_box = integer(default=5, min=3)  # side (pixels) of the local median box
    temporal = boolean(default=True)  # flag outliers along time (cosmic rays, telegraph pixels)
    temporal_threshold = float(default=6.0, min=0)  # temporal threshold in robust sigmas of each pixel
    temporal_window = integer(default=5, min=3)  # running-median width along time (odd, integrations)
    save_plot = boolean(default=False)  # save a diagnostic plot <root>_badpix.png
    suffix = string(default='badpix')  # suffix of the saved model
    """  # noqa: E501

    def process(self, input_data):
        """Find and replace bad pixels of a rateints/calints cube.

        Parameters
        ----------
        input_data : str or CubeModel

        Returns
        -------
        CubeModel
        """
        model = self.prepare_output(input_data)
        check_soss_model(model, require_pwcpos=False)
        check_integrations(model)
        nints = model.data.shape[0]
        refpix = reference_pixels(model.data.shape[1:])
        bad = bad_pixel_mask(model.data, model.dq)
        n_flagged = int(np.count_nonzero(bad))

        search = self.temporal and nints >= self.temporal_window
        if self.temporal and not search:
            log.warning(
                "Temporal outlier search skipped: %d integrations, fewer than "
                "temporal_window=%d.",
                nints,
                self.temporal_window,
            )
        cosmic, deep, err_median = temporal_outliers(
            model.data,
            model.err,
            ~bad & ~refpix,
            self.temporal_threshold if search else None,
            self.temporal_window,
        )
        n_temporal = int(np.count_nonzero(cosmic))
        model.dq[cosmic] |= np.uint32(FLAGS["OUTLIER"] | FLAGS["JUMP_DET"])
        flag_replaced(model.dq, cosmic)
        del cosmic

        spatial = np.zeros(refpix.shape, bool)
        if self.spatial:
            deep_sigma = _MEDIAN_EFFICIENCY * err_median / np.sqrt(nints)
            sign = spatial_outliers(
                deep,
                np.nan_to_num(deep_sigma, nan=np.inf),
                self.spatial_threshold,
                self.spatial_box,
                exclude=refpix,
            )
            spatial = sign != 0
            model.dq[:, sign > 0] |= np.uint32(FLAGS["HOT"] | FLAGS["DO_NOT_USE"])
            model.dq[:, sign < 0] |= np.uint32(FLAGS["DEAD"] | FLAGS["DO_NOT_USE"])
            bad |= spatial[None]

        n_fallback = replace_bad_pixels(model.data, bad, max_distance=self.max_distance)
        # The estimate's uncertainty is taken as its neighbours' (interpolated
        # the same way), so errors stay finite wherever the data are.
        replace_bad_pixels(model.err, bad, max_distance=self.max_distance)
        flag_replaced(model.dq, bad)
        n_spatial = int(np.count_nonzero(spatial))
        log.info(
            "Bad pixels replaced: %d flagged/non-finite (%.4f%% of the cube), %d spatial "
            "outliers (pixels, x%d integrations), %d temporal outliers (%.5f%%); %d had "
            "no good neighbour within %d columns and took their median over time.",
            n_flagged,
            100.0 * n_flagged / model.data.size,
            n_spatial,
            nints,
            n_temporal,
            100.0 * n_temporal / model.data.size,
            n_fallback,
            self.max_distance,
        )
        model.soss_badpix = {
            "n_flagged": n_flagged,
            "n_spatial": n_spatial,
            "n_temporal": n_temporal,
        }
        if self.save_plot:
            from jwst_soss_custom.plotting.cleaning import plot_badpix

            path = self.make_output_path(basepath=model.meta.filename, suffix="badpix", ext="png")
            plot_badpix(deep, spatial, model.dq, path)
        self.record_step_status(model)
        return model
