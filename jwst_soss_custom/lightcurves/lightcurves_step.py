"""``soss_lightcurves``: white-light and spectroscopic light curves from an x1dints."""

import logging

from stdatamodels.jwst import datamodels

from jwst_soss_custom.exposure import SossInputError
from jwst_soss_custom.lightcurves.stitching import stitch_x1dints
from jwst_soss_custom.lightcurves.tables import speclc_table, whitelight_table
from jwst_soss_custom.stpipe import SossStep

__all__ = ["SossLightCurvesStep"]

log = logging.getLogger(__name__)


class SossLightCurvesStep(SossStep):
    """Make the white-light (``whtlt``) and spectroscopic (``speclc``) light curves.

    Input is one ``x1dints`` product (a file or a `TSOMultiSpecModel`), for
    example the stitched output of ``soss_tso3``; a model holding several
    spectra per order (segments appended, as jwst's ``calwebb_tso3`` writes)
    is stitched first. The step returns the white-light table (an
    `~astropy.table.QTable` with jwst's ``whtlt`` columns plus errors and
    normalised fluxes). When results are saved it writes
    ``<name>_whtlt.ecsv`` and, with ``save_speclc``, ``<name>_speclc.ecsv``.
    """

    class_alias = "soss_lightcurves"

    spec = """
    order1_wave_range = float_list(min=2, max=2, default=list(0.85, 2.83))  # order 1 [min, max] micron summed (white light) and binned
    order2_wave_range = float_list(min=2, max=2, default=list(0.6, 0.95))  # order 2 [min, max] micron: the blue end order 1 misses
    order3_wave_range = float_list(min=2, max=2, default=list(0.6, 0.95))  # order 3 [min, max] micron
    orders = int_list(default=None)  # orders to make light curves of; None: every order in the input
    bin_width = integer(min=1, default=20)  # spectroscopic bin width in detector columns (pixels)
    last_bin = option("keep", "merge", "drop", default="keep")  # leftover red-end columns: own narrower bin, merged into the last bin, or unused
    save_speclc = boolean(default=True)  # when saving, also write the <name>_speclc.ecsv spectroscopic light curves
    output_ext = string(default=".ecsv")  # white-light table format (ECSV, as jwst's white_light)
    suffix = string(default="whtlt")  # suffix of the white-light table
    """  # noqa: E501

    def wave_ranges(self):
        """Wavelength range per order from the ``order<N>_wave_range`` parameters.

        Returns
        -------
        dict of int to (float, float)
        """
        return {
            order: tuple(float(v) for v in getattr(self, f"order{order}_wave_range"))
            for order in (1, 2, 3)
        }

    def process(self, input_data):
        """Make the light curves of one x1dints product.

        Parameters
        ----------
        input_data : str, Path or `~stdatamodels.jwst.datamodels.TSOMultiSpecModel`
            The x1dints product.

        Returns
        -------
        `~astropy.table.QTable`
            The white-light table (see ``docs/products.md``).
        """
        opened = self._open_x1dints(input_data)
        try:
            whtlt = self._make_tables(opened)
        finally:
            if opened is not input_data:
                opened.close()
        return whtlt

    def _make_tables(self, model):
        """Compute the tables, save them if asked, and return the white light."""
        orders = None if self.orders is None else [int(o) for o in self.orders]
        spectra_orders = [int(s.spectral_order) for s in model.spec]
        if len(set(spectra_orders)) != len(spectra_orders):
            log.info("Several spectra per order in the input: stitching them first.")
            model = stitch_x1dints([model])
        whtlt = whitelight_table(model, self.wave_ranges(), orders)
        if self.save_results:
            path = self.make_output_path()
            whtlt.write(path, format="ascii.ecsv", overwrite=True)
            log.info("Saved white-light table %s", path)
            if self.save_speclc:
                speclc = speclc_table(
                    model, self.wave_ranges(), self.bin_width, self.last_bin, orders
                )
                path = self.make_output_path(suffix="speclc", ext="ecsv")
                speclc.write(path, format="ascii.ecsv", overwrite=True)
                log.info("Saved spectroscopic light curves %s", path)
        return whtlt

    def _open_x1dints(self, input_data):
        if isinstance(input_data, datamodels.JwstDataModel):
            model = input_data
        else:
            model = self.open_model(input_data)
        if not isinstance(model, datamodels.TSOMultiSpecModel) or len(model.spec) == 0:
            name = getattr(model.meta, "filename", None) or input_data
            kind = type(model).__name__
            if model is not input_data:
                model.close()
            raise SossInputError(
                f"{name}: soss_lightcurves needs an x1dints product (TSOMultiSpecModel with "
                f"spectra), got {kind}. Run soss_spec2 (or soss_tso3 for segments) first."
            )
        exp_type = model.meta.exposure.type
        if exp_type != "NIS_SOSS":
            name = model.meta.filename
            if model is not input_data:
                model.close()
            raise SossInputError(
                f"{name}: EXP_TYPE is {exp_type!r}; the SOSS light curves need a NIS_SOSS "
                "x1dints product."
            )
        return model
