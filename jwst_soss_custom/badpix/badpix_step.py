"""stpipe Step: replace bad pixels of SOSS rateints."""

import logging

import numpy as np

from jwst_soss_custom.exposure import check_integrations, check_soss_model
from jwst_soss_custom.stpipe import SossStep

from .badpix import bad_pixel_mask, flag_replaced, replace_bad_pixels

__all__ = ["SossBadpixStep"]

log = logging.getLogger(__name__)


class SossBadpixStep(SossStep):
    """Replace DQ-flagged and non-finite pixels by interpolation along rows.

    Replaced pixels keep their flags and gain FLUX_ESTIMATED (as jwst's
    ``pixel_replace`` does), so later steps use the estimates while the DQ
    array still says which pixels were bad.
    """

    class_alias = "soss_badpix"

    spec = """
    max_distance = integer(default=4, min=1)  # farthest column used to interpolate a bad pixel
    suffix = string(default='badpix')  # suffix of the saved model
    """  # noqa: E501

    def process(self, input_data):
        """Replace bad pixels of a rateints/calints cube.

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
        bad = bad_pixel_mask(model.data, model.dq)
        n_bad = int(np.count_nonzero(bad))
        n_fallback = replace_bad_pixels(model.data, bad, max_distance=self.max_distance)
        # The estimate's uncertainty is taken as its neighbours' (interpolated
        # the same way), so errors stay finite wherever the data are.
        replace_bad_pixels(model.err, bad, max_distance=self.max_distance)
        flag_replaced(model.dq, bad)
        log.info(
            "Replaced %d bad pixels (%.4f%% of the cube); %d had no good neighbour "
            "within %d columns and took their median over time.",
            n_bad,
            100.0 * n_bad / model.data.size,
            n_fallback,
            self.max_distance,
        )
        self.record_step_status(model)
        return model
