"""stpipe Step: subtract a scaled zodiacal background template."""

import logging

import bottleneck as bn

from jwst_soss_custom.exposure import check_soss_model
from jwst_soss_custom.references import default_background_path
from jwst_soss_custom.stpipe import SossStep

from .background import background_scale, box_slices, load_template, subtract_background

__all__ = ["SossBackgroundStep"]

log = logging.getLogger(__name__)


class SossBackgroundStep(SossStep):
    """Subtract the background template scaled to the data in a source-free box.

    The template comes from ``override_bkg`` (a 2-D ``.npy`` array or FITS
    image of the frame's shape); without it, the packaged SUBSTRIP256 template
    is used (see docs/background.md for its origin). The scale is the trimmed
    median of data/template in ``background_box`` of the deep (median over
    time) frame, one value for the exposure.
    """

    class_alias = "soss_background"

    spec = """
    background_box = int_list(min=4, max=4, default=list(350, 550, 230, 250))  # source-free region: x_start, x_stop, y_start, y_stop
    percentiles = float_list(min=2, max=2, default=list(25.0, 50.0))  # range of data/template ratios kept before the median
    save_background = boolean(default=False)  # save the subtracted background model as <root>_bkgmodel.fits
    suffix = string(default='bkgsub')  # suffix of the saved model
    """  # noqa: E501

    reference_file_types = ["bkg"]

    def process(self, input_data):
        """Subtract the scaled template from every integration.

        Parameters
        ----------
        input_data : str or CubeModel

        Returns
        -------
        CubeModel
        """
        model = self.prepare_output(input_data)
        check_soss_model(model, require_pwcpos=False)
        path = self.reference_path("bkg", default=str(default_background_path()))
        template = load_template(path, model.data.shape[1:])
        rows, cols = box_slices(self.background_box, template.shape)
        # Only the box of the deep frame is needed for the scale.
        deep_box = bn.nanmedian(model.data[:, rows, cols], axis=0)
        scale = background_scale(deep_box, template[rows, cols], self.percentiles)
        log.info("Background template %s scaled by %.5f", path, scale)
        subtract_background(model.data, template, scale)

        model.meta.background.subtracted = True
        model.meta.background.method = "soss_template"
        model.meta.background.scaling_factor = scale
        model.soss_background = {"scale": scale, "template": str(path)}
        if self.save_background:
            from stdatamodels.jwst import datamodels

            bkg = datamodels.ImageModel(data=template * scale)
            bkg.update(model)
            self.save_model(bkg, suffix="bkgmodel", force=True)
        self.record_step_status(model)
        return model
