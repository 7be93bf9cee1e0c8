"""Official x1dints of every TSO spectroscopy mode through soss_tso3 and soss_fit.

The products are built the way jwst's extract_1d builds them: one SpecModel
per integration, put together by jwst's own ``make_tso_specmodel`` (the
TSOMultiSpecModel layout, jwst >= 1.18), or kept one spectrum per integration
with its times in the spectrum's metadata (the older MultiSpecModel layout).
"""

from types import SimpleNamespace

import batman
import numpy as np
import pytest
from astropy.table import Table
from jwst.datamodels.utils.tso_multispec import make_tso_specmodel
from stdatamodels.jwst import datamodels

from jwst_soss_custom._base.errors import SossInputError
from jwst_soss_custom.fitting import SossFitStep
from jwst_soss_custom.lightcurves.modes import as_x1dints, scatter_errors
from jwst_soss_custom.pipeline import SossTso3Pipeline

PERIOD, T0, RP = 4.05528, 60000.2, 0.145
NINTS = 160

#: exp_type: instrument, detector file tag, wavelength grid per order (micron),
#: spectral_order written by the official pipeline (None: not set).
MODES = {
    "NIS_SOSS": ("NIRISS", "nis", {1: np.linspace(2.84, 0.84, 300), 2: np.linspace(1.4, 0.6, 200)},
                 True),
    "MIR_LRS-SLITLESS": ("MIRI", "mirimage", {1: np.linspace(14.0, 4.5, 250)}, False),
    "NRS_BRIGHTOBJ": ("NIRSPEC", "nrs1", {1: np.linspace(0.6, 5.3, 300)}, False),
    "NRC_TSGRISM": ("NIRCAM", "nrcalong", {1: np.linspace(3.9, 5.0, 300)}, True),
}


def _times(nints=NINTS):
    return T0 + np.linspace(-0.16, 0.16, nints)


def _transit(times):
    params = batman.TransitParams()
    params.t0, params.per, params.rp, params.a, params.inc = T0, PERIOD, RP, 11.4, 87.8
    params.ecc, params.w, params.u, params.limb_dark = 0.0, 90.0, [0.2, 0.15], "quadratic"
    return batman.TransitModel(params, times).light_curve(params)


def _spectra(rng, wave, errors=True, nints=NINTS):
    """Per-integration flux and errors of one order: a smooth spectrum, the transit, noise."""
    star = 1e5 * np.exp(-0.5 * ((wave - wave.mean()) / (0.6 * np.ptp(wave))) ** 2)
    star[:3] = np.nan  # the ends of a real extraction
    sigma = np.sqrt(star) * 3.0
    flux = (star[None] * _transit(_times(nints))[:, None]
            + rng.normal(0, 1, (nints, wave.size)) * sigma)
    error = np.broadcast_to(sigma, flux.shape) if errors else np.full(flux.shape, np.nan)
    return flux, error


SPEC_DTYPE = datamodels.SpecModel().get_dtype("spec_table")


def _table(wave, flux, error):
    table = np.zeros(wave.size, dtype=SPEC_DTYPE)
    table["WAVELENGTH"], table["FLUX"], table["FLUX_ERROR"] = wave, flux, error
    return table


def _spec_model(wave, flux, error, order):
    """One integration's spectrum, as jwst's extract_1d makes it."""
    spec = datamodels.SpecModel(spec_table=_table(wave, flux, error))
    spec.spec_table.columns["wavelength"].unit = "um"
    spec.spec_table.columns["flux"].unit = "Jy"
    spec.spec_table.columns["flux_error"].unit = "Jy"
    if order is not None:
        spec.spectral_order = order
    return spec


def _meta(model, exp_type, instrument, tag):
    model.meta.exposure.type = exp_type
    model.meta.instrument.name = instrument
    model.meta.instrument.filter = "CLEAR"
    for spec in model.spec:  # NIRSpec: jwst's white light names its columns after it
        spec.detector = tag.upper()
    model.meta.target.catalog_name = "TEST-1"
    model.meta.filename = f"jw01234001001_03101_00001-seg001_{tag}_x1dints.fits"


def official_x1dints(folder, exp_type, layout="tso", errors=True, seed=1, nints=NINTS):
    """An official-style x1dints file of one mode; its path (``folder`` None: the model)."""
    instrument, tag, grids, has_order = MODES[exp_type]
    rng = np.random.default_rng(seed)
    times = _times(nints)
    if layout == "tso":
        model = datamodels.TSOMultiSpecModel()
        for order, wave in grids.items():
            flux, error = _spectra(rng, wave, errors, nints)
            # jwst takes units and metadata from the first spectrum and only
            # the table (and absent metadata) from the others: those need not
            # be SpecModels, which take ~45 ms each to build.
            tso = make_tso_specmodel([_spec_model(wave, flux[0], error[0], None)] + [
                SimpleNamespace(spec_table=_table(wave, f, e))
                for f, e in zip(flux[1:], error[1:], strict=True)])
            tso.spec_table["INT_NUM"] = np.arange(1, nints + 1)
            tso.spec_table["MJD-AVG"] = times  # as extract_1d fills them from INT_TIMES
            tso.spec_table["TDB-MID"] = times + 0.0008
            tso.spectral_order = order if has_order else None
            model.spec.append(tso)
    else:
        model = datamodels.MultiSpecModel()
        per_order = {order: _spectra(rng, wave, errors, nints) for order, wave in grids.items()}
        for k in range(nints):
            for order, wave in grids.items():
                flux, error = per_order[order]
                spec = _spec_model(wave, flux[k], error[k], order if has_order else None)
                spec.int_num = k + 1
                spec.mid_time_mjd, spec.mid_tdb = times[k], times[k] + 0.0008
                model.spec.append(spec)
    _meta(model, exp_type, instrument, tag)
    if folder is None:
        return model
    path = folder / model.meta.filename
    model.save(path)
    return path


def _depth_within_errors(folder, product, orders):
    fit = SossFitStep.call(str(folder / f"{product}_whtlt.ecsv"), period=PERIOD, bootstrap=0,
                           fit_spectroscopic=False, save_results=True, output_dir=str(folder))
    table = Table.read(folder / f"{product}_fit_whitelight.ecsv")
    for order in orders:
        row = table[(table["order"] == order) & (table["parameter"] == "depth_ppm")][0]
        assert abs(row["value"] - 1e6 * RP**2) < 4 * row["error"], (order, row)
    return fit


@pytest.mark.parametrize("exp_type", list(MODES))
def test_official_x1dints_of_each_mode_give_light_curves_and_depths(exp_type, tmp_path):
    path = official_x1dints(tmp_path, exp_type)
    SossTso3Pipeline.call(str(path), output_dir=str(tmp_path), save_results=True)
    tag = MODES[exp_type][1]
    product = f"jw01234001001_03101_00001_{tag}"
    whtlt = Table.read(tmp_path / f"{product}_whtlt.ecsv")
    speclc = Table.read(tmp_path / f"{product}_speclc.ecsv")
    orders = sorted(MODES[exp_type][2])
    assert whtlt.meta["exp_type"] == exp_type
    for order in orders:
        lo, hi = whtlt.meta[f"wavelength_range_order_{order}"]
        wave = MODES[exp_type][2][order]
        if exp_type == "MIR_LRS-SLITLESS":
            assert (lo, hi) == (5.0, 12.0)
        elif exp_type != "NIS_SOSS":  # where the flux is: all but the NaN ends
            assert np.isclose(lo, np.sort(wave)[0 if wave[0] > wave[-1] else 3])
        assert set(speclc[speclc["order"] == order]["bin"]) != set()
    assert not any(k.startswith("flux_error") for k in whtlt.meta)
    _depth_within_errors(tmp_path, product, orders)


@pytest.mark.parametrize("exp_type", list(MODES))
def test_official_white_light_tables_of_each_mode_are_fitted(exp_type, tmp_path):
    """jwst's WhiteLightStep on the official x1dints, its table through soss_fit."""
    from jwst.white_light import WhiteLightStep

    from jwst_soss_custom.lightcurves import write_wavelengthrange

    path = official_x1dints(tmp_path, exp_type)
    options = {}
    if exp_type == "NIS_SOSS":  # the only mode whose ranges come from a reference
        options["override_wavelengthrange"] = str(write_wavelengthrange(
            tmp_path / "wavelengthrange.asdf", {1: (0.85, 2.83), 2: (0.6, 0.95)}))
    table = WhiteLightStep.call(str(path), **options)
    if exp_type == "NRS_BRIGHTOBJ":
        assert "BJD_TDB_NRS1" in table.colnames  # jwst's NIRSpec naming
    table.write(tmp_path / "official_whtlt.ecsv", format="ascii.ecsv")
    SossFitStep.call(str(tmp_path / "official_whtlt.ecsv"), period=PERIOD, bootstrap=0,
                     save_results=True, output_dir=str(tmp_path))
    fits_table = Table.read(tmp_path / "official_fit_whitelight.ecsv")
    depths = fits_table[fits_table["parameter"] == "depth_ppm"]
    assert len(depths) == len(MODES[exp_type][2])
    for row in depths:
        assert abs(row["value"] - 1e6 * RP**2) < 4 * row["error"], row


def test_the_older_layout_and_missing_errors(tmp_path):
    """One spectrum per integration (older jwst), no flux errors: read, estimated, labelled."""
    path = official_x1dints(tmp_path, "NRC_TSGRISM", layout="multi", errors=False, nints=70)
    with datamodels.open(path) as model:
        assert isinstance(model, datamodels.MultiSpecModel)
        readable = as_x1dints(model, path.name, "test")
        assert isinstance(readable, datamodels.TSOMultiSpecModel)
        assert np.all(np.isnan(model.spec[0].spec_table["FLUX_ERROR"]))  # input untouched
    table = readable.spec[0].spec_table
    assert list(table["INT_NUM"][:3]) == [1, 2, 3]
    assert np.allclose(table["MJD-AVG"], _times(70))
    SossTso3Pipeline.call(str(path), output_dir=str(tmp_path), save_results=True)
    product = "jw01234001001_03101_00001_nrcalong"
    whtlt = Table.read(tmp_path / f"{product}_whtlt.ecsv")
    assert whtlt.meta["flux_error_order_1"].startswith("estimated")
    precision = Table.read(tmp_path / f"{product}_precision.ecsv")
    white = precision[(precision["order"] == 1) & (precision["bin"] == -1)][0]
    # Estimated errors describe the scatter: measured / expected near 1
    # (0.28 is 3 sigma of a scatter measured on ~55 baseline points).
    assert abs(white["ratio"] - 1) < 0.28
    _depth_within_errors(tmp_path, product, [1])


def test_scatter_errors_recover_white_noise():
    rng = np.random.default_rng(3)
    sigma = np.array([1.0, 5.0, 20.0])
    trend = np.linspace(0, 50, 2000)[:, None]  # slow: no effect on consecutive differences
    flux = 1000 + trend + rng.normal(0, 1, (2000, 3)) * sigma
    flux[:, 2] = np.nan
    estimate = scatter_errors(flux)
    assert np.allclose(estimate[:2], sigma[:2], rtol=0.06) and np.isnan(estimate[2])


def test_other_exposure_types_are_refused():
    model = official_x1dints(None, "NRC_TSGRISM", nints=5)
    model.meta.exposure.type = "NRS_FIXEDSLIT"
    with pytest.raises(SossInputError, match="EXP_TYPE is 'NRS_FIXEDSLIT'.*NRC_TSGRISM"):
        as_x1dints(model, "fixed-slit", "soss_tso3")
