"""SossSpec2Pipeline: rateints segments of one exposure to per-segment x1dints."""

import logging
from pathlib import Path

from stdatamodels.jwst import datamodels

from jwst_soss_custom.background import SossBackgroundStep
from jwst_soss_custom.badpix import SossBadpixStep
from jwst_soss_custom.exposure import apply_segment_identity, inherit_metadata, load_exposure
from jwst_soss_custom.extract import SossExtractStep
from jwst_soss_custom.oneoverf import SossOneOverFStep
from jwst_soss_custom.products import slice_x1dints
from jwst_soss_custom.stpipe import SossPipeline
from jwst_soss_custom.tracing import SossTracingStep

__all__ = ["SossSpec2Pipeline"]

log = logging.getLogger(__name__)


class SossSpec2Pipeline(SossPipeline):
    """Clean and extract a SOSS time series, all segments as one exposure.

    Input: one rateints segment, a list of them, or a level-2 association of
    all segments of an exposure. The segments are stacked into one time series
    (exposure-level statistics need every integration), run through
    soss_badpix, soss_background, soss_tracing, soss_oneoverf and soss_extract,
    and written back per segment as ``<segment>_x1dints.fits`` (and
    ``<segment>_calints.fits`` with ``save_calints``).
    """

    class_alias = "soss_spec2"

    spec = """
    save_calints = boolean(default=False)  # also save the cleaned integrations per segment (*_calints.fits)
    """  # noqa: E501

    step_defs = {
        "badpix": SossBadpixStep,
        "background": SossBackgroundStep,
        "tracing": SossTracingStep,
        "oneoverf": SossOneOverFStep,
        "extract": SossExtractStep,
    }

    def process(self, input_data):
        """Reduce one exposure.

        Parameters
        ----------
        input_data : str, Path, CubeModel, list, or association file
            The rateints segment(s) of one exposure.

        Returns
        -------
        TSOMultiSpecModel or list of TSOMultiSpecModel
            One x1dints per input segment.
        """
        # The stacked cube holds copies of the arrays: input models and
        # files are never modified.
        cube, segments = load_exposure(input_data)
        log.info(
            "Reducing %d segment(s), %d integrations, as one time series",
            len(segments),
            cube.data.shape[0],
        )
        cube = self.badpix.run(cube)
        cube = self.background.run(cube)
        cube = self.tracing.run(cube)
        cube = self.oneoverf.run(cube)
        x1dints = self.extract.run(cube)

        results = []
        for segment in segments:
            product = slice_x1dints(x1dints, segment.start, segment.stop, segment=segment.model)
            product.meta.filename = _product_name(segment.filename, "x1dints")
            results.append(product)
            if self.save_calints:
                self._save_calints(cube, segment)

        # As jwst's Spec2Pipeline: stpipe saves each result under its own
        # meta.filename, so segments keep their official names.
        self.output_use_model = True
        self.suffix = False
        return results[0] if len(results) == 1 else results

    def _save_calints(self, cube, segment):
        rows = slice(segment.start, segment.stop)
        calints = datamodels.CubeModel(data=cube.data[rows], err=cube.err[rows], dq=cube.dq[rows])
        inherit_metadata(calints, cube)
        apply_segment_identity(calints, segment.model)
        calints.meta.filename = _product_name(segment.filename, "calints")
        self.save_model(calints, output_file=calints.meta.filename, suffix=False, force=True)


def _product_name(filename, suffix):
    """``jw..._nis_rateints.fits`` -> ``jw..._nis_<suffix>.fits``."""
    from jwst.lib.suffix import remove_suffix

    stem = Path(filename or "soss").stem
    root, separator = remove_suffix(stem)
    return f"{root}{separator or '_'}{suffix}.fits"
