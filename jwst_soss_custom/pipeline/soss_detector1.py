"""SossDetector1Pipeline: SOSS uncal segments to rateints, with group-level 1/f removal."""

import logging

from jwst.dark_current import DarkCurrentStep
from jwst.dq_init import DQInitStep
from jwst.gain_scale import GainScaleStep
from jwst.group_scale import GroupScaleStep
from jwst.jump import JumpStep
from jwst.linearity import LinearityStep
from jwst.ramp_fitting import RampFitStep
from jwst.refpix import RefPixStep
from jwst.saturation import SaturationStep
from jwst.superbias import SuperBiasStep

from jwst_soss_custom.exposure import input_items
from jwst_soss_custom.metadata import product_name
from jwst_soss_custom.oneoverf.groups_step import SossOneOverFGroupsStep
from jwst_soss_custom.stpipe import SossPipeline

__all__ = ["SossDetector1Pipeline", "RAMP_STEPS"]

log = logging.getLogger(__name__)

#: The steps applied to the ramps, in order (ramp_fit and gain_scale follow).
RAMP_STEPS = (
    "group_scale", "dq_init", "saturation", "superbias", "refpix", "oneoverf_groups",
    "linearity", "dark_current", "jump",
)


class SossDetector1Pipeline(SossPipeline):
    """Raw SOSS ramps to ``rateints``: the official Detector1 steps plus group-level 1/f.

    The official step classes (group_scale, dq_init, saturation, superbias,
    refpix, linearity, dark_current, jump, ramp_fit, gain_scale) run in the
    official near-infrared order; ``soss_oneoverf_groups`` removes the 1/f of
    every group after refpix, before linearity and jump, where it is still an
    additive signal of the readout. Each segment (one file, a list, or a
    level-2 association) gives ``<segment>_rateints.fits`` (and
    ``<segment>_rate.fits`` with ``save_rate``). Steps that do not apply to
    SOSS (ipc, persistence, charge_migration, the MIRI steps,
    clean_flicker_noise) are not part of it. References come as
    ``--steps.<step>.override_<reftype>=`` files or from CRDS.
    """

    class_alias = "soss_detector1"

    spec = """
    save_calibrated_ramp = boolean(default=False)  # also save each segment's corrected ramp (*_ramp.fits)
    save_rate = boolean(default=False)  # also save the integration-averaged slopes (*_rate.fits)
    """  # noqa: E501

    step_defs = {
        "group_scale": GroupScaleStep,
        "dq_init": DQInitStep,
        "saturation": SaturationStep,
        "superbias": SuperBiasStep,
        "refpix": RefPixStep,
        "oneoverf_groups": SossOneOverFGroupsStep,
        "linearity": LinearityStep,
        "dark_current": DarkCurrentStep,
        "jump": JumpStep,
        "ramp_fit": RampFitStep,
        "gain_scale": GainScaleStep,
    }

    def process(self, input_data):
        """Reduce the raw ramps of every segment.

        Parameters
        ----------
        input_data : str, Path, RampModel, list, or association file
            The uncal segment(s) of one exposure (never modified).

        Returns
        -------
        CubeModel, list of them, or list of str
            One rateints per segment; with ``save_results`` each is written
            as soon as its segment is done (``<segment>_rateints.fits``) and
            the file names are returned instead.
        """
        # As soss_spec2: products keep the names of their segments.
        self.output_use_model = True
        self.suffix = False
        results = [self._segment(item) for item in input_items(input_data)]
        return results[0] if len(results) == 1 else results

    def _segment(self, item):
        """One segment's ramps through the steps; its rateints (saved with save_results)."""
        ramp = self.open_ramp(item)
        # As jwst's Detector1Pipeline: the ramp-level steps write nothing of
        # their own, and dark_current/ramp_fit save their side products beside ours.
        self.dark_current.output_dir = self.output_dir
        self.ramp_fit.output_dir = self.output_dir
        for step in RAMP_STEPS:
            ramp = getattr(self, step).run(ramp)
        name = ramp.meta.filename
        if self.save_calibrated_ramp:
            self._save(ramp, name, "ramp")
        rate, ints = self.ramp_fit.run(ramp)
        status = ramp.meta.cal_step.soss_oneoverf_groups
        for product in (rate, ints):
            # Not a schema keyword, so ramp_fit's metadata copy drops it.
            product.meta.cal_step.soss_oneoverf_groups = status
        ints = self.gain_scale.run(ints)
        if self.save_rate:
            self._save(self.gain_scale.run(rate), name, "rate")
        log.info("%s: %d integrations -> rateints", name, ints.data.shape[0])
        if self.save_results:
            return self._save(ints, name, "rateints")
        ints.meta.filename = product_name(name, "rateints")
        return ints

    def _save(self, model, name, suffix):
        """Write a product of the segment ``name`` as ``<root>_<suffix>.fits``; its path."""
        model.meta.filename = product_name(name, suffix)
        return self.save_model(model, output_file=model.meta.filename, suffix=False, force=True)
