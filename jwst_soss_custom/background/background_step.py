"""stpipe Step: subtract a scaled zodiacal background template."""

import logging

import bottleneck as bn
import numpy as np

from jwst_soss_custom.dq import usable
from jwst_soss_custom.exposure import check_soss_model
from jwst_soss_custom.references import default_background_path
from jwst_soss_custom.stpipe import SossStep

from .background import (
    background_model,
    box_slices,
    fit_background_and_halo,
    load_templates,
    locate_step,
    subtract_background,
)

__all__ = ["SossBackgroundStep"]

log = logging.getLogger(__name__)


class SossBackgroundStep(SossStep):
    """Subtract the background template scaled to the data in source-free regions.

    The template comes from ``override_bkg`` (a 2-D ``.npy`` array or FITS
    image of the frame's shape, or a library of several: the best-fitting is
    used); without it, the packaged SUBSTRIP256 template. Left and right of
    the template's step (located automatically or given) the scale is the
    trimmed median of data/template in one region each, for the deep frame
    (one pair for the exposure) or for every integration. The star's
    extended halo, which reaches every region, is modelled from the deep
    frame and taken out of the regions first (``halo``).
    """

    class_alias = "soss_background"

    spec = """
    background_box = int_list(min=4, max=4, default=list(100, 400, 235, 250))  # region left of the step (least star halo): x_start, x_stop, y_start, y_stop
    background_box_right = int_list(min=4, max=4, default=list(720, 900, 235, 250))  # region right of the step (least star halo)
    step_column = integer(default=-1)  # first column right of the background step; -1 = locate it in the template
    separate_scales = boolean(default=True)  # one scale each side of the step (else one from both regions)
    per_integration = boolean(default=False)  # scale every integration (else the deep frame, once)
    percentiles = float_list(min=2, max=2, default=list(10.0, 90.0))  # range of data/template ratios kept before the median
    halo = boolean(default=True)  # model the star's extended halo (from the deep frame) so the scales measure the background alone
    halo_power = float(default=-1.0)  # power-law index of the halo's fall-off with distance from the trace; -1 = fit it (0.7-1.6)
    halo_distance = integer(default=30)  # pixels closer than this (rows) to the star light are left out of the halo fit
    save_background = boolean(default=False)  # save the subtracted model as <root>_bkgmodel.fits (scales in its table)
    save_plot = boolean(default=False)  # save a diagnostic plot <root>_background.png
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
        templates = load_templates(path, model.data.shape[1:])
        regions = (self.background_box, self.background_box_right)
        boxes = [box_slices(b, templates.shape[1:]) for b in regions]
        step = self.step_column
        if step < 0:
            step = locate_step(np.median(templates, axis=0))
        deep = self._deep_frame(model, boxes)
        index, scales, halo = fit_background_and_halo(
            deep,
            templates,
            boxes,
            step,
            self.percentiles,
            self.separate_scales,
            frames=model.data if self.per_integration else None,
            halo=self.halo,
            halo_power=None if self.halo_power < 0 else self.halo_power,
            halo_distance=self.halo_distance,
        )
        template = templates[index]
        summary = np.atleast_2d(scales).mean(axis=0)
        log.info(
            "Background template %d of %d in %s, step at column %d, scales %.5f (left) "
            "%.5f (right)%s",
            index + 1,
            len(templates),
            path,
            step,
            *summary,
            " (mean over integrations)" if self.per_integration else "",
        )
        if halo is not None:
            log.info(
                "Star halo: amplitude %.3g of the star light at the trace, fall-off power "
                "%.2f, fitted on %d pixels",
                halo.amplitude,
                halo.power,
                halo.npix,
            )
        subtract_background(model.data, template, scales, step)

        model.meta.background.subtracted = True
        model.meta.background.method = "soss_template"
        model.meta.background.scaling_factor = float(summary.mean())
        record = {
            "template": str(path),
            "template_index": int(index),
            "step_column": int(step),
            "scale": float(summary.mean()),
            "scales": np.asarray(scales, np.float64),
        }
        if halo is not None:
            record["halo"] = {
                "amplitude": halo.amplitude,
                "power": halo.power,
                "pixels": halo.npix,
            }
        model.soss_background = record
        if self.save_background:
            self._save_model(model, background_model(template, summary, step))
        if self.save_plot:
            from jwst_soss_custom.plotting.cleaning import plot_background

            png = self.make_output_path(
                basepath=model.meta.filename, suffix="background", ext="png"
            )
            plot_background(
                deep,
                background_model(template, summary, step),
                boxes,
                step,
                png,
                halo=None if halo is None else halo.image,
            )
        self.record_step_status(model)
        return model

    def _deep_frame(self, model, boxes):
        """Median over time of the usable pixels (NaN elsewhere, reference pixels included).

        The regions' rows use every integration (they set the scales); the
        rest of the frame, needed for the halo, uses about 32 evenly spaced
        integrations: the halo fit rests on tens of thousands of pixels and
        its star light is bright, so 32 already recover the scales of the
        simulator to 0.1–0.3 % (the tiny preset has 30), while a full-cube
        median would cost seconds.
        """
        data, dq = model.data, model.dq
        nan = np.float32(np.nan)
        deep = np.full(data.shape[1:], nan, np.float32)
        with np.errstate(invalid="ignore"):
            if self.halo:
                pick = slice(None, None, max(1, len(data) // 32))
                deep[:] = bn.nanmedian(
                    np.where(usable(data[pick], dq[pick]), data[pick], nan), axis=0
                )
            rows = np.unique(np.concatenate([np.arange(r.start, r.stop) for r, _ in boxes]))
            block = data[:, rows]
            deep[rows] = bn.nanmedian(np.where(usable(block, dq[:, rows]), block, nan), axis=0)
        return deep

    def _save_model(self, model, image):
        from stdatamodels.jwst import datamodels

        bkg = datamodels.ImageModel(data=image)
        bkg.update(model)
        bkg.soss_background = model.soss_background
        self.save_model(bkg, suffix="bkgmodel", force=True)
