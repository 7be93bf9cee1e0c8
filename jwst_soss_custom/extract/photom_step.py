"""``soss_photom``: absolute flux calibration of SOSS x1dints, by jwst's own photom code."""

import logging

from stdatamodels.jwst import datamodels

from jwst_soss_custom._base.errors import SossInputError
from jwst_soss_custom.stpipe import SossStep

__all__ = ["SossPhotomStep"]

log = logging.getLogger(__name__)


class SossPhotomStep(SossStep):
    """Convert x1dints fluxes from DN/s to physical units with a PHOTOM reference.

    The light curves and transit depths are relative and do not need it, so
    ``soss_spec2`` skips it unless asked (``--steps.photom.skip=false``).
    The conversion is jwst's own (`jwst.photom.photom.DataSet`, as the
    official ``calwebb_spec2`` applies it to SOSS x1dints): per order, the
    reference's ``photmj`` times its relative response interpolated at each
    column's wavelength, applied to FLUX, FLUX_ERROR and their variances;
    the unit is what jwst writes (MJy in jwst 3.0). The reference comes from
    ``override_photom`` (a NIRISS SOSS PHOTOM file), else from CRDS where it
    is reachable; it is recorded in ``meta.ref_file.photom``.
    """

    class_alias = "soss_photom"

    spec = """
    suffix = string(default="x1dints")  # suffix of the product
    """  # noqa: E501

    reference_file_types = ["photom"]

    def process(self, input_data):
        """Calibrate the fluxes of one x1dints.

        Parameters
        ----------
        input_data : str, Path or `~stdatamodels.jwst.datamodels.TSOMultiSpecModel`
            A SOSS x1dints in DN/s (never changed: a model given directly is
            copied before it is calibrated).

        Returns
        -------
        `~stdatamodels.jwst.datamodels.TSOMultiSpecModel`
        """
        from jwst.photom.photom import DataSet

        model = self.open_model(input_data)
        if not isinstance(model, datamodels.TSOMultiSpecModel) or \
                model.meta.exposure.type != "NIS_SOSS":
            raise SossInputError(
                f"{model.meta.filename or 'input'}: soss_photom calibrates SOSS x1dints "
                "(TSOMultiSpecModel, EXP_TYPE NIS_SOSS).")
        path = self.reference_path("photom", record=False) or self._from_crds(model)
        # A model read from a file here, or soss_spec2's own segment product,
        # is calibrated in place; only a caller's model is copied first.
        if isinstance(input_data, datamodels.JwstDataModel) and self.parent is None:
            model = model.copy()
        calibrated = DataSet(model).apply_photom(path, "N/A")
        self._reference_files_used.append(("photom", path))
        calibrated.meta.cal_step.photom = "COMPLETE"
        units = {str(s.spec_table.columns["FLUX"].unit) for s in calibrated.spec}
        log.info("Fluxes calibrated with %s: FLUX in %s.", path, ", ".join(sorted(units)))
        return calibrated

    def _from_crds(self, model):
        """The PHOTOM reference from CRDS, or a one-line error saying what to give."""
        try:
            return self.get_reference_file(model, "photom")
        except Exception as err:  # noqa: BLE001 - CRDS not configured, not reachable, ...
            raise SossInputError(
                "soss_photom needs a PHOTOM reference: give --steps.photom.override_photom="
                f"<jwst_niriss_photom_*.fits> (CRDS could not provide one: "
                f"{str(err).splitlines()[0] if str(err) else type(err).__name__})."
            ) from None
