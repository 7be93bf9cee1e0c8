"""``soss_lightcurves``: white-light and spectroscopic light curves from an x1dints."""

import logging

from stdatamodels.jwst import datamodels

from jwst_soss_custom.ecsv import write_ecsv
from jwst_soss_custom._base.errors import SossInputError
from jwst_soss_custom.lightcurves.binning import Binning
from jwst_soss_custom.lightcurves.modes import as_x1dints, default_wave_ranges
from jwst_soss_custom.lightcurves.stitching import stitch_x1dints
from jwst_soss_custom.lightcurves.orders import read_bin_edges
from jwst_soss_custom.lightcurves.tables import make_light_curves
from jwst_soss_custom.stpipe import SossStep

__all__ = ["SossLightCurvesStep"]

log = logging.getLogger(__name__)


class SossLightCurvesStep(SossStep):
    """Make the white-light (``whtlt``) and spectroscopic (``speclc``) light curves.

    Input is one ``x1dints`` product (a file or a `TSOMultiSpecModel`), for
    example the stitched output of ``soss_tso3``; a model holding several
    spectra per order (segments appended, as jwst's ``calwebb_tso3`` writes)
    is stitched first. The step returns the white-light table (an
    `~astropy.table.QTable` with jwst's ``whtlt`` columns plus errors,
    normalised fluxes, the baseline flag and any trace regressors). When
    results are saved it writes ``<name>_whtlt.ecsv`` and, with
    ``save_speclc``/``save_precision``, ``<name>_speclc.ecsv`` and
    ``<name>_precision.ecsv``; with ``save_plots``, PNG diagnostics.
    """

    class_alias = "soss_lightcurves"

    spec = """
    order1_wave_range = float_list(min=2, max=2, default=None)  # order 1 [min, max] micron summed (white light) and binned; None: the mode's (SOSS 0.85-2.83, MIRI LRS 5-12, NIRSpec/NIRCam where the flux is)
    order2_wave_range = float_list(min=2, max=2, default=None)  # order 2 [min, max] micron; None: SOSS 0.6-0.95, the blue end order 1 misses
    order3_wave_range = float_list(min=2, max=2, default=None)  # order 3 [min, max] micron; None: SOSS 0.6-0.95
    orders = int_list(default=None)  # orders to make light curves of; None: every order in the input
    bin_mode = option("pixels", "resolution", "edges", default="pixels")  # spectroscopic bins: bin_width columns, constant resolving power, or bin_edges_file
    bin_width = integer(min=1, default=20)  # bin_mode=pixels: bin width in detector columns (pixels)
    last_bin = option("keep", "merge", "drop", default="keep")  # bin_mode=pixels: leftover red-end columns: own narrower bin, merged into the last bin, or unused
    resolution = float(min=1, default=100)  # bin_mode=resolution: resolving power R = wavelength / bin width
    bin_edges_file = string(default=None)  # bin_mode=edges: table file with wave_low, wave_high (micron) and optional order columns
    baseline_integrations = force_list(default=list("auto"))  # out-of-transit integrations: auto (found in the white light), all, or INT_NUM ranges such as 1-150,400-537
    baseline_margin = float(min=0, default=0.2)  # auto baseline: transit found widened by this fraction of its length on each side
    clip_sigma = float(min=0, default=5)  # clip time-domain outliers of each channel beyond this many robust sigma (0: off)
    clip_window = integer(min=3, default=11)  # running-median window (integrations) of the outlier clipping
    tilt_threshold = float(min=0, default=8)  # a step in the trace regressors this significant (sigma) is a tilt event, fitted as a step (0: no search)
    save_speclc = boolean(default=True)  # when saving, also write the <name>_speclc.ecsv spectroscopic light curves
    save_precision = boolean(default=True)  # when saving, also write the <name>_precision.ecsv precision report
    save_contamination = boolean(default=True)  # when saving, also write <name>_contamination.ecsv (field stars' light and the other order's wings subtracted, per column)
    save_plots = boolean(default=False)  # write PNG diagnostics: white light, 2-D light curves, precision, regressors
    output_ext = string(default=".ecsv")  # white-light table format (ECSV, as jwst's white_light)
    suffix = string(default="whtlt")  # suffix of the white-light table
    """  # noqa: E501

    def wave_ranges(self, model):
        """Wavelength range per order: the ``order<N>_wave_range`` parameters, else the mode's.

        Parameters
        ----------
        model : `~stdatamodels.jwst.datamodels.TSOMultiSpecModel`
            The x1dints (its mode and, for NIRSpec/NIRCam, its wavelengths).

        Returns
        -------
        dict of int to (float, float)
        """
        ranges = default_wave_ranges(model)
        for order in (1, 2, 3):
            given = getattr(self, f"order{order}_wave_range")
            if given is not None:
                ranges[order] = tuple(float(v) for v in given)
        return ranges

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

    def binning(self):
        """The `~jwst_soss_custom.lightcurves.binning.Binning` of the ``bin_*`` parameters."""
        edges = None
        if self.bin_mode == "edges":
            if not self.bin_edges_file:
                raise ValueError(
                    "bin_mode='edges' needs bin_edges_file: a table with wave_low, wave_high "
                    "(micron) and optional order columns."
                )
            edges = read_bin_edges(self.bin_edges_file)
        return Binning(self.bin_mode, self.bin_width, self.last_bin, self.resolution, edges)

    def _make_tables(self, model):
        """Compute the tables, save them (and plots) if asked, and return the white light."""
        orders = None if self.orders is None else [int(o) for o in self.orders]
        spectra_orders = [int(s.spectral_order) for s in model.spec]
        if len(set(spectra_orders)) != len(spectra_orders):
            log.info("Several spectra per order in the input: stitching them first.")
            model = stitch_x1dints([model])
        curves = make_light_curves(
            model,
            self.wave_ranges(model),
            orders,
            binning=self.binning(),
            baseline=self.baseline_integrations,
            baseline_margin=self.baseline_margin,
            clip_sigma=self.clip_sigma,
            clip_window=self.clip_window,
            tilt_threshold=self.tilt_threshold,
            spectroscopic=self.save_speclc or self.save_precision or self.save_plots,
        )
        if self.save_results:
            self._write(curves.whtlt, self.make_output_path(), "white-light table")
            if self.save_speclc:
                self._write(curves.speclc, self._side_path("speclc"), "spectroscopic light curves")
            if self.save_precision:
                self._write(curves.precision, self._side_path("precision"), "precision report")
            if self.save_contamination and curves.contamination is not None:
                self._write(curves.contamination, self._side_path("contamination"),
                            "contamination table")
        if self.save_plots:
            from jwst_soss_custom.plotting.lightcurves import plot_light_curves

            plot_light_curves(curves, lambda kind: self._side_path(kind, ext="png"))
        return curves.whtlt

    def _side_path(self, suffix, ext="ecsv"):
        return self.make_output_path(suffix=suffix, ext=ext)

    @staticmethod
    def _write(table, path, what):
        write_ecsv(table, path)  # astropy's ECSV, data lines by its fast C writer
        log.info("Saved %s %s", what, path)

    def _open_x1dints(self, input_data):
        model = input_data
        if not isinstance(input_data, datamodels.JwstDataModel):
            model = self.open_model(input_data)
        try:
            name = getattr(model.meta, "filename", None) or str(input_data)
            readable = as_x1dints(model, name, self.class_alias)
        except SossInputError:
            if model is not input_data:
                model.close()
            raise
        if readable is not model and model is not input_data:
            model.close()
        return readable
