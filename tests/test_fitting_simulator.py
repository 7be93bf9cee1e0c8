"""Injection and recovery: a simulated exposure through soss_spec2, soss_tso3 and soss_fit.

The small preset (100 integrations, transit over the middle third, photon + read noise
only) with 10-column bins: ~200 order-1 channels. The injected depth of a channel is the
flux-weighted mean of its columns' depths (the simulator's per-column truth,
`jwst_soss_custom.fitting.truth`). Tolerances come from the fitted uncertainties.

White light. The fit's model contains the injected light curve exactly (a noiseless
fit lands on it to 1e-11 sigma) and its errors are calibrated: over 1000 Gaussian
draws of this white light's noise the pulls of t0, depth and a/R* have spreads
0.98, 1.08, 0.99 (`benchmarks/fit_calibration.py`, `test_white_light_errors_are_calibrated`
below). So each parameter is within 2 sigma in 95 % of realisations, and all three in
87 % (measured: 13 % of draws have one beyond). Eight pixel-level seeds agree: the worst
of the three is at 2.04, 2.41, 2.05 sigma for seeds 5, 6, 7 and within 1.81 sigma for
seeds 1, 2, 3, 4, 8; the data's chi-square against the injected light curve exceeds the
best fit's by 3.4-9.4 (chi-square with 6 degrees of freedom: 99 % below 16.8). The test
runs seed 1, the demo's seed; it was among the seeds measured, so its 2 sigma check pins
this realisation, while the calibration itself is tested on the noise draws.

Spectrum: the reduced chi-square of N channels has a standard deviation sqrt(2/N) (0.1
for N = 200) and the spread of N pulls 1/sqrt(2N) (5 per cent). The channels share the
white-light orbit, whose own error shifts every depth together; that common offset is
not in the per-channel errors, so the chi-square is taken after removing the mean pull
(one degree of freedom). Eight seeds: 0.82-1.05, pull spreads 0.90-1.02.
"""

import numpy as np
import pytest
from astropy.table import Table

from jwst_soss_custom.datasets import NO_SYSTEMATICS, load_truth, simulate
from jwst_soss_custom.fitting import SossFitStep, fit_light_curve
from jwst_soss_custom.fitting.tables import white_light_curves
from jwst_soss_custom.fitting.truth import (
    injected_channel_depths,
    injected_orbit,
    injected_white_light,
)
from jwst_soss_custom.pipeline import SossSpec2Pipeline, SossTso3Pipeline

PRODUCT = "wasp39b_fit"


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    root = tmp_path_factory.mktemp("fit_sim")
    sim = simulate(root / "raw", preset="small", seed=1, **NO_SYSTEMATICS)
    SossSpec2Pipeline.call(
        [str(p) for p in sim.segment_files], output_dir=str(root / "x1d"), save_results=True
    )
    SossTso3Pipeline.call(
        sorted(str(p) for p in (root / "x1d").glob("*_x1dints.fits")),
        output_dir=str(root / "products"),
        output_file=PRODUCT,
        steps={"lightcurves": {"bin_width": 10}},
    )
    truth = load_truth(sim.truth_file)
    whtlt = root / "products" / f"{PRODUCT}_whtlt.ecsv"
    SossFitStep.call(
        str(whtlt),
        period=truth["transit"]["period"],
        output_dir=str(root / "fits"),
        save_results=True,
    )
    white = Table.read(root / "fits" / f"{PRODUCT}_fit_whitelight.ecsv")
    spectrum = Table.read(root / "fits" / f"{PRODUCT}_transmission.ecsv")
    return white, spectrum, truth, Table.read(whtlt)


def _param(white, order, name):
    row = white[(white["order"] == order) & (white["parameter"] == name)][0]
    return row["value"], row["error"]


def test_white_light_recovers_t0_depth_and_a_rs_within_2_sigma(fitted):
    white, _, truth, _ = fitted
    orbit = injected_orbit(truth)
    _, depth = injected_white_light(truth)
    for name, expected in (("t0", orbit["t0"]), ("depth_ppm", depth), ("a_rs", orbit["a_rs"])):
        value, error = _param(white, 1, name)
        assert abs(value - expected) < 2 * error, (name, value, expected, error)
    stats = white.meta["fit_statistics_order_1"]
    assert stats["inflated"] == "no"  # photon + read noise only: nothing to inflate


def test_white_light_errors_are_calibrated(fitted):
    """300 Gaussian draws of the whtlt errors around the injected white light.

    Spread of 300 unit pulls: 4 % (15 % is > 3.5 sigma); mean: 0.06 (0.25 is 4
    sigma); a fraction beyond 2 sigma of 0.046 has a binomial sd of 0.012 (0.1 is
    4.5 sigma).
    """
    _, _, truth, whtlt = fitted
    curve = white_light_curves(whtlt)[1]
    flux, depth = injected_white_light(truth)
    orbit = injected_orbit(truth)
    rng = np.random.default_rng(11)
    pulls = []
    for _ in range(300):
        fit = fit_light_curve(curve["time"], flux + rng.normal(0, curve["error"]),
                              curve["error"], orbit["period"], inflate="never")  # fmt: skip
        d, derr = fit.derived()["depth_ppm"]
        pulls.append([(fit.values["t0"] - orbit["t0"]) / fit.errors["t0"], (d - depth) / derr,
                      (fit.values["a_rs"] - orbit["a_rs"]) / fit.errors["a_rs"]])  # fmt: skip
    pulls = np.array(pulls)
    np.testing.assert_allclose(np.std(pulls, axis=0), 1.0, atol=0.15)
    assert np.all(np.abs(np.mean(pulls, axis=0)) < 0.25)
    assert np.all(np.mean(np.abs(pulls) > 2, axis=0) < 0.1)


def test_transmission_spectrum_matches_the_injected_one(fitted):
    _, spectrum, truth, _ = fitted
    rows = spectrum[spectrum["order"] == 1]
    assert len(rows) >= 20
    err = np.asarray(rows["depth_error_ppm"])
    injected = injected_channel_depths(truth, 1, rows["wave_low"], rows["wave_high"])
    pulls = (np.asarray(rows["depth_ppm"]) - injected) / err
    offset = np.mean(pulls)
    chi2_red = np.sum((pulls - offset) ** 2) / (len(pulls) - 1)
    assert 0.7 < chi2_red < 1.3
    assert np.std(pulls) == pytest.approx(1.0, abs=0.15)
    assert np.all(np.isfinite(err)) and np.all(err > 0)
