"""stpipe Step: subtract a scaled zodiacal background template."""

import logging

import numpy as np

from jwst_soss_custom.references import default_background_path
from jwst_soss_custom.stpipe import SossStep

from .background import (
    background_model,
    box_slices,
    fit_background,
    fit_background_and_halo,
    load_templates,
    locate_step,
    subtract_background,
)
from .halo import CALIBRATED_HALO

__all__ = ["SossBackgroundStep"]

log = logging.getLogger(__name__)

#: Background regions left and right of the template's step, per subarray
#: (x_start, x_stop, y_start, y_stop in SUBSTRIP256 rows): where the star's
#: light is faintest. SUBSTRIP256: above order 2's red end. SUBSTRIP96 reads
#: rows 10-105 only: its bottom rows, >= 30 rows below order 1 and far
#: from order 2 (which runs along its top rows at x < 1000).
DEFAULT_BOXES = {
    "SUBSTRIP256": ((100, 400, 235, 250), (720, 900, 235, 250)),
    "SUBSTRIP96": ((100, 600, 10, 24), (720, 900, 10, 24)),
}


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
    background_box = int_list(min=4, max=4, default=None)  # region left of the step (least star halo): x_start, x_stop, y_start, y_stop in SUBSTRIP256 rows; None = the subarray's default (DEFAULT_BOXES)
    background_box_right = int_list(min=4, max=4, default=None)  # region right of the step (least star halo); None = the subarray's default
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

    def process(self, input_data, context=None):
        """Subtract the scaled template from every integration.

        Parameters
        ----------
        input_data : str or CubeModel
        context : `~jwst_soss_custom.chunks.ChunkContext` or None
            The chunk's context inside soss_spec2.

        Returns
        -------
        CubeModel
        """
        model, stats, cache, _ = self.open_chunk(input_data, context, require_pwcpos=False)
        # Asked every time so that each chunk's product records the reference.
        path = self.reference_path("bkg", default=str(default_background_path()))
        templates, boxes, step, halo = (cache[k] for k in ("templates", "boxes", "step", "halo"))
        index, scales = cache["index"], cache["scales"]
        if self.per_integration:
            index, scales = fit_background(
                model.data, templates, boxes, step, self.percentiles, self.separate_scales,
                halo=None if halo is None else halo.image,
            )
        template = templates[index]
        summary = np.atleast_2d(scales).mean(axis=0)
        subtract_background(model.data, template, scales, step)
        model.meta.background.subtracted = True
        model.meta.background.method = "soss_template"
        model.meta.background.scaling_factor = float(summary.mean())
        model.soss_background = self._record(path, index, len(templates), scales, step, halo)
        if self.save_background:
            self._save_model(model, background_model(template, summary, step))
        if self.save_plot:
            from jwst_soss_custom.plotting.cleaning import plot_background

            png = self.make_output_path(
                basepath=model.meta.filename, suffix="background", ext="png"
            )
            plot_background(
                stats.deep,
                background_model(template, summary, step),
                boxes,
                step,
                png,
                halo=None if halo is None else halo.image,
            )
        self.record_step_status(model)
        return model

    def prepare_exposure(self, context, model):
        """Template, halo and scales fitted to the deep frame; hands on its subtracted deep frame."""
        cache = context.step_cache(self.class_alias)
        if "index" not in cache:
            path = self.reference_path("bkg", str(default_background_path()), record=False)
            cache.update(self._exposure_fit(context.statistics, path, model.meta.subarray.name))
        context.statistics = cache["statistics"]

    def _record(self, path, index, n_templates, scales, step, halo):
        """What was subtracted (``soss_background``), also said in the log."""
        summary = np.atleast_2d(scales).mean(axis=0)
        log.info(
            "Background template %d of %d in %s, step at column %d, scales %.5f (left) "
            "%.5f (right)%s",
            index + 1, n_templates, path, step, *summary,
            " (mean over integrations)" if self.per_integration else "",
        )
        record = {
            "template": str(path),
            "template_index": int(index),
            "step_column": int(step),
            "scale": float(summary.mean()),
            "scales": np.asarray(scales, np.float64),
        }
        if halo is not None:
            # A halo with no fitted pixel and an amplitude is the calibrated one.
            how = ("calibrated, not fitted (no row far enough from the star)"
                   if halo.npix == 0 and halo.amplitude > 0 else f"fitted on {halo.npix} pixels")
            log.info(
                "Star halo: amplitude %.3g of the star light at the trace, fall-off power "
                "%.2f, %s", halo.amplitude, halo.power, how,
            )
            record["halo"] = {"amplitude": halo.amplitude, "power": halo.power,
                              "pixels": halo.npix, "how": how}
        return record

    def _exposure_fit(self, stats, path, subarray):
        """Template, step column, halo and scales fitted to the deep frame, once per exposure."""
        templates = load_templates(path, stats.deep.shape, subarray)
        regions = [given or default for given, default in
                   zip((self.background_box, self.background_box_right), DEFAULT_BOXES[subarray])]
        boxes = [box_slices(b, templates.shape[1:]) for b in regions]
        step = self.step_column
        if step < 0:
            step = locate_step(np.median(templates, axis=0))
        index, scales, halo = fit_background_and_halo(
            stats.deep,
            templates,
            boxes,
            step,
            self.percentiles,
            self.separate_scales,
            halo=self.halo,
            halo_power=None if self.halo_power < 0 else self.halo_power,
            halo_distance=self.halo_distance,
            # No row of a smaller subarray is far enough from the star to
            # measure the halo's fall-off: the calibrated halo is used.
            halo_fixed=None if subarray == "SUBSTRIP256" else CALIBRATED_HALO,
        )
        # The next steps' deep frame: that of the background-subtracted cube
        # (exact for one scale pair; with per-integration scales, those of the
        # deep frame stand for their mean).
        model = background_model(templates[index], scales, step)
        cleaned = stats.replace(deep=(stats.deep - model).astype(np.float32))
        return {
            "templates": templates, "boxes": boxes, "step": step, "halo": halo,
            "index": index, "scales": scales, "statistics": cleaned,
        }

    def _save_model(self, model, image):
        from stdatamodels.jwst import datamodels

        bkg = datamodels.ImageModel(data=image)
        bkg.update(model)
        bkg.soss_background = model.soss_background
        self.save_model(bkg, suffix="bkgmodel", force=True)
