"""stpipe Step: remove column-wise 1/f noise from SOSS integrations."""

import logging

import numpy as np

from jwst_soss_custom.dq import reference_pixels
from jwst_soss_custom.exposure import check_soss_model
from jwst_soss_custom.stpipe import SossStep
from jwst_soss_custom.tracing import traces_for

from .oneoverf import column_offsets, deep_frame, trace_mask, white_light_scaling

__all__ = ["SossOneOverFStep"]

log = logging.getLogger(__name__)


class SossOneOverFStep(SossStep):
    """Subtract a per-column, per-integration 1/f offset.

    Method ``median`` (the STScI SOSS notebook's): subtract the deep frame
    scaled by the smoothed white-light curve, then take the median of each
    column outside a band of ``mask_width`` rows around each order's trace.
    The traces come from the input's ``soss_traces`` (set by soss_tracing) or
    are predicted from PWCPOS.
    """

    class_alias = "soss_oneoverf"

    spec = """
    method = option('median', default='median')  # how the offsets are estimated
    mask_width = float(default=40.0, min=0)  # full width (rows) of the band masked around each trace
    smoothing_window = integer(default=5, min=1)  # running-median width (integrations) of the white-light scaling
    force = boolean(default=False)  # correct even if the official clean_flicker_noise already ran
    save_offsets = boolean(default=False)  # save the fitted offsets (nints x ncols) as <root>_oneoverf.fits
    suffix = string(default='oneoverf')  # suffix of the saved model
    """  # noqa: E501

    def process(self, input_data):
        """Remove 1/f column offsets.

        Parameters
        ----------
        input_data : str or CubeModel

        Returns
        -------
        CubeModel
        """
        model = self.prepare_output(input_data)
        check_soss_model(model)
        if model.meta.cal_step.clean_flicker_noise == "COMPLETE" and not self.force:
            log.warning(
                "clean_flicker_noise already corrected 1/f noise in this input; skipping "
                "so it is not corrected twice (set force=True to correct anyway)."
            )
            self.record_step_status(model, "SKIPPED")
            return model

        solution = traces_for(model)
        shape = model.data.shape[1:]
        traces = trace_mask(solution, shape, self.mask_width)
        exclude = traces | reference_pixels(shape)
        deep = deep_frame(model.data)
        scaling = white_light_scaling(model.data, deep, traces, self.smoothing_window)
        offsets = column_offsets(model.data, deep, scaling, exclude)
        model.data -= offsets[:, None, :]
        science = ~reference_pixels(shape).all(axis=0)
        empty = science & ~(~exclude).any(axis=0)
        if empty.any():
            log.warning(
                "%d science columns have no pixel outside the trace mask and keep their "
                "1/f noise; reduce mask_width to correct them.",
                int(empty.sum()),
            )
        log.info(
            "Removed 1/f offsets: RMS %.4f DN/s per column over %d integrations.",
            float(np.sqrt(np.mean(offsets[:, science & ~empty] ** 2))),
            offsets.shape[0],
        )
        if self.save_offsets:
            from stdatamodels.jwst import datamodels

            saved = datamodels.ImageModel(data=offsets)
            saved.update(model)
            self.save_model(saved, suffix="oneoverf", force=True)
        self.record_step_status(model)
        return model
