"""``soss_fit``: transit fits of a ``whtlt`` / ``speclc`` pair, to the transmission spectrum."""

import logging
from pathlib import Path

from astropy.table import Table

from jwst_soss_custom.ecsv import read_ecsv, write_ecsv
from jwst_soss_custom.fitting.combine import bin_spectrum
from jwst_soss_custom.fitting.fit import FitInputError
from jwst_soss_custom.fitting.published import reference_spectrum
from jwst_soss_custom.fitting.tables import FitSettings, fit_products
from jwst_soss_custom.stpipe import SossStep

__all__ = ["SossFitStep"]

log = logging.getLogger(__name__)


class SossFitStep(SossStep):
    """Fit the white light (orbit, depth, limb darkening, systematics) and every channel.

    Input: a ``<product>_whtlt.ecsv`` table (``soss_tso3``); its
    ``<product>_speclc.ecsv`` is read from the same folder unless
    ``speclc_file`` names another (none found: white light only). Returns the
    transmission table (`~astropy.table.QTable`), or the white-light fit table
    when there are no spectroscopic light curves. When results are saved it
    writes ``<product>_fit_whitelight.ecsv``, ``<product>_transmission.ecsv`` and
    ``<product>_transmission_R100.ecsv`` (`spectrum_resolution`) into
    ``output_dir``; with ``save_plots``, PNG figures (the transmission
    spectrum beside a published one, `reference_spectrum`). See ``docs/fitting.md``.
    """

    class_alias = "soss_fit"

    spec = """
    period = float(default=None)  # orbital period (days); required unless the whtlt metadata has 'period'
    t0 = float(default=None)  # first guess of the mid-transit time (BJD_TDB - 2400000.5); None: from the dip
    poly_order = integer(min=0, max=5, default=1)  # white light: order of the polynomial-in-time baseline
    ramp = boolean(default=False)  # white light: add an exponential ramp at the start of the visit
    use_regressors = boolean(default=False)  # add linear terms in the regressor_* columns (white light and channels); tilt-event steps (regressor_tilt_*) are always fitted
    spec_poly_order = integer(min=0, max=5, default=1)  # channels: order of the polynomial baseline
    spec_limb_darkening = option("free", "white", default="free")  # channels: fit q1, q2 (free) or fix them to the white light's
    common_mode = boolean(default=False)  # divide each channel by the white light's residuals (data / model) first
    orbit_order = integer(min=1, max=3, default=1)  # order whose white-light orbit (t0, a/R*, b) the channels use
    bootstrap = integer(min=0, default=100)  # white light: parametric-bootstrap refits; errors = max(covariance, bootstrap spread) (0: covariance only)
    mcmc = boolean(default=False)  # white light: uncertainties from an emcee posterior (16-84 % percentiles) instead of covariance/bootstrap
    mcmc_walkers = integer(min=2, default=32)  # mcmc: number of walkers (at least twice the free parameters)
    mcmc_steps = integer(min=10, default=2000)  # mcmc: steps per walker
    mcmc_burn = integer(min=0, default=500)  # mcmc: first steps of each walker dropped as burn-in
    mcmc_seed = integer(default=0)  # mcmc: random seed (same seed, same chains)
    clip_sigma = float(min=0, default=5)  # after the robust fit, leave out points beyond this many sigma (0: none)
    inflate_errors = option("auto", "always", "never", default="auto")  # scale uncertainties by sqrt(chi2_red) and beta when significant (auto), always, or never
    min_baseline = integer(min=1, default=10)  # fewest out-of-transit points a fit accepts
    fit_spectroscopic = boolean(default=True)  # also fit the spectroscopic light curves
    speclc_file = string(default=None)  # speclc table; None: <product>_speclc.ecsv beside the whtlt
    spectrum_resolution = float(min=0, default=100)  # also write <product>_transmission_R<R>.ecsv: the channels averaged into bins of this resolving power (0: not)
    reference_spectrum = string(default="auto")  # drawn on the transmission plot: auto (the packaged published WASP-39b spectrum for WASP-39), none, or a file in the published layout
    save_plots = boolean(default=False)  # write PNG figures: white-light fits, channel grid, transmission spectrum
    output_ext = string(default=".ecsv")  # product tables are ECSV
    """  # noqa: E501

    def process(self, input_data):
        """Fit the light curves.

        Parameters
        ----------
        input_data : str, Path or `~astropy.table.Table`
            The ``whtlt`` table or its file.

        Returns
        -------
        `~astropy.table.QTable`
            The transmission table (or the white-light fit table).
        """
        whtlt, product, folder = self._read_whtlt(input_data)
        speclc = self._read_speclc(folder, product) if self.fit_spectroscopic else None
        settings = FitSettings(
            period=self.period,
            poly_order=self.poly_order,
            ramp=self.ramp,
            use_regressors=self.use_regressors,
            clip_sigma=self.clip_sigma,
            inflate=self.inflate_errors,
            min_baseline=self.min_baseline,
            orbit_order=self.orbit_order,
            spec_poly_order=self.spec_poly_order,
            spec_limb_darkening=self.spec_limb_darkening,
            common_mode=self.common_mode,
            t0=self.t0,
            bootstrap=self.bootstrap,
            mcmc=self.mcmc,
            mcmc_walkers=self.mcmc_walkers,
            mcmc_steps=self.mcmc_steps,
            mcmc_burn=self.mcmc_burn,
            mcmc_seed=self.mcmc_seed,
        )
        products = fit_products(whtlt, speclc, settings)
        if self.output_file:
            product = Path(self.output_file).name.split(".")[0]
        out_dir = Path(self.output_dir) if self.output_dir else Path.cwd()
        binned = None
        if products.transmission is not None and self.spectrum_resolution > 0:
            binned = bin_spectrum(products.transmission, self.spectrum_resolution)
        if self.save_results:
            out_dir.mkdir(parents=True, exist_ok=True)
            self._write(products.whitelight, out_dir / f"{product}_fit_whitelight.ecsv")
            if products.transmission is not None:
                self._write(products.transmission, out_dir / f"{product}_transmission.ecsv")
            if binned is not None:
                self._write(binned, out_dir /
                            f"{product}_transmission_R{self.spectrum_resolution:g}.ecsv")
        if self.save_plots:
            from jwst_soss_custom.plotting.fitting import plot_fits

            reference = reference_spectrum(self.reference_spectrum,
                                           products.whitelight.meta.get("target_name"))
            plot_fits(products, lambda kind: out_dir / f"{product}_{kind}.png", reference, binned)
        return products.transmission if products.transmission is not None else products.whitelight

    @staticmethod
    def _write(table, path):
        write_ecsv(table, path)
        log.info("Saved %s", path)

    def _read_whtlt(self, input_data):
        if isinstance(input_data, Table):
            return input_data, "soss_fit", None
        path = Path(str(input_data))
        if not path.is_file():
            raise FitInputError(f"Input table {path} does not exist: give a <product>_whtlt.ecsv.")
        table = read_ecsv(path, "a <product>_whtlt.ecsv from soss_tso3", FitInputError)
        stem = path.name.rsplit(".", 1)[0]
        product = stem[: -len("_whtlt")] if stem.endswith("_whtlt") else stem
        return table, product, path.parent

    def _read_speclc(self, folder, product):
        if self.speclc_file:
            path = Path(self.speclc_file)
            if not path.is_file():
                raise FitInputError(f"speclc_file {path} does not exist.")
        elif folder is not None:
            path = folder / f"{product}_speclc.ecsv"
            if not path.is_file():
                log.warning("No %s: fitting the white light only.", path)
                return None
        else:
            log.warning("No speclc_file given: fitting the white light only.")
            return None
        return read_ecsv(path, "a <product>_speclc.ecsv from soss_tso3", FitInputError)
