"""Precision report: measured scatter vs the photon+read-noise expectation.

The estimator (1.4826 MAD of first differences / sqrt(2)) on n baseline
points has a relative standard deviation of about 1 / sqrt(0.37 (n - 1)) for
white Gaussian noise (the MAD's 37 % efficiency): 0.26 for the ~40 baseline
integrations of the 60-integration simulated exposure. Tolerances below
follow from it.
"""

import numpy as np
import pytest
from astropy.table import Table

from jwst_soss_custom.datasets import NO_SYSTEMATICS, simulate
from jwst_soss_custom.lightcurves import stitch_x1dints
from jwst_soss_custom.lightcurves.synthetic import synthetic_segments
from jwst_soss_custom.lightcurves.tables import make_light_curves
from jwst_soss_custom.pipeline import SossSpec2Pipeline, SossTso3Pipeline
from jwst_soss_custom.report import main as report_main

PRODUCT = "wasp39b_sim"


def _relative_sd(npoints):
    """Relative standard deviation of the point-to-point estimator on n points."""
    return 1.0 / np.sqrt(0.37 * (npoints - 1))


def test_precision_table_on_synthetic_noise():
    """Synthetic spectra drawn with exactly their errors: ratio 1 per channel on average."""
    model = stitch_x1dints(synthetic_segments(nints=200, nsegments=2, seed=17))
    curves = make_light_curves(model)
    precision = curves.precision
    assert precision.colnames == [
        "order", "bin", "wave_low", "wave_high", "wave_center", "npix", "n_points",
        "measured_ppm", "expected_ppm", "ratio",
    ]  # fmt: skip
    white = precision[precision["bin"] == -1]
    assert list(white["order"]) == [1, 2]
    nbase = curves.whtlt.meta["number_of_baseline_integrations"]
    assert np.all(precision["n_points"] == nbase)
    for order in (1, 2):
        rows = precision[(precision["order"] == order) & (precision["bin"] >= 0)]
        assert len(rows) == curves.speclc.meta[f"number_of_bins_order_{order}"]
        # Median of N channel ratios: sd ~ 1.25 sd_one / sqrt(N); 5 sigma.
        tol = 5 * 1.25 * _relative_sd(nbase) / np.sqrt(len(rows))
        assert np.median(rows["ratio"]) == pytest.approx(1.0, abs=tol)
        # Expected = median normalised error over the baseline, in ppm.
        lc = curves.speclc[(curves.speclc["order"] == order) & (curves.speclc["bin"] == 3)]
        base = np.asarray(lc["baseline"])
        assert rows["expected_ppm"][3] == pytest.approx(
            1e6 * np.median(lc["flux_norm_error"][base])
        )
    for row in white:
        assert row["ratio"] == pytest.approx(1.0, abs=4 * _relative_sd(nbase))
    assert precision.meta["estimator"].startswith("measured: 1.4826 MAD")


@pytest.fixture(scope="module")
def simulated_products(tmp_path_factory):
    """60 simulated integrations, photon + read noise only, through Spec2 and Tso3."""
    root = tmp_path_factory.mktemp("precision_sim")
    sim = simulate(root / "raw", preset="small", nints=60, seed=3, **NO_SYSTEMATICS)
    SossSpec2Pipeline.call(
        [str(p) for p in sim.segment_files], output_dir=str(root / "x1d"), save_results=True
    )
    segments = sorted(str(p) for p in (root / "x1d").glob("*_x1dints.fits"))
    SossTso3Pipeline.call(
        segments,
        output_dir=str(root / "products"),
        output_file=PRODUCT,
        steps={"lightcurves": {"bin_width": 4}},  # ~700 channels: a precise median ratio
    )
    return root / "products"


def test_precision_ratio_on_the_simulator_matches_the_injected_noise(simulated_products):
    """NO_SYSTEMATICS: photon + read noise only, so measured / expected must be 1 within 10 %."""
    precision = Table.read(simulated_products / f"{PRODUCT}_precision.ecsv")
    nbase = precision.meta["number_of_baseline_integrations"]
    assert precision.meta["baseline_method"] == "auto" and 30 <= nbase <= 50
    for order in (1, 2):
        ratio = np.asarray(
            precision["ratio"][(precision["order"] == order) & (precision["bin"] >= 0)]
        )
        ratio = ratio[np.isfinite(ratio)]
        assert ratio.size > 150
        # Statistical error of the median over ratio.size channels: 1.25 x
        # 0.26 / sqrt(>150) < 0.025 (asserted below), so 10 % is > 4 sigma:
        # failing means excess noise or a wrong error propagation, not bad luck.
        assert 1.25 * _relative_sd(nbase) / np.sqrt(ratio.size) < 0.1 / 4
        assert np.median(ratio) == pytest.approx(1.0, abs=0.10)
    white = precision[precision["bin"] == -1]
    # One white light per order: one estimate each, 4 sigma.
    np.testing.assert_allclose(white["ratio"], 1.0, atol=4 * _relative_sd(nbase))


def test_report_prints_the_precision(simulated_products, capsys):
    assert report_main([str(simulated_products / f"{PRODUCT}_whtlt.ecsv")]) == 0
    out = capsys.readouterr().out
    assert f"{PRODUCT}_precision.ecsv" in out
    assert "order 1: measured" in out and "channels" in out


def test_regressors_from_tracing_reach_the_light_curves(simulated_products):
    """Contract with soss_tracing: its per-integration regressors end up as whtlt columns."""
    whtlt = Table.read(simulated_products / f"{PRODUCT}_whtlt.ecsv")
    names = [n for n in whtlt.colnames if n.startswith("regressor_")]
    assert {"regressor_dx", "regressor_dy"} <= set(names)
    for name in names:
        assert np.all(np.isfinite(whtlt[name]))
