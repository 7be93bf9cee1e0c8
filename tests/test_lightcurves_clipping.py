"""Time-domain outlier clipping per channel: found, flagged, counted, never silent."""

import logging

import numpy as np
import pytest
from scipy.stats import norm

from jwst_soss_custom.lightcurves import stitch_x1dints
from jwst_soss_custom.lightcurves.clipping import running_median, time_outliers
from jwst_soss_custom.lightcurves.synthetic import synthetic_segments
from jwst_soss_custom.lightcurves.tables import make_light_curves


def test_running_median_is_nan_aware_and_can_leave_the_point_out():
    x = np.array([1.0, 5.0, 2.0, np.nan, 3.0])
    np.testing.assert_allclose(running_median(x, 3), [3.0, 2.0, 3.5, 2.5, 3.0])
    np.testing.assert_allclose(
        running_median(x, 3, exclude_centre=True), [5.0, 1.5, 5.0, 2.5, np.nan]
    )


def test_outliers_found_transit_kept():
    rng = np.random.default_rng(5)
    nints, ncurves = 400, 50
    flux = 1 + rng.normal(0, 1e-3, (nints, ncurves))
    flux[150:260] -= 0.02  # a transit 20 sigma deep, 110 integrations long
    flux[[20, 155, 300], [3, 10, 40]] += [0.01, -0.01, 0.008]  # 8-10 sigma outliers
    flux[30, 7] = np.nan
    found = time_outliers(flux, nsigma=5.0, window=11)
    # Pure Gaussian noise beyond 5 sigma: 2 * norm.sf(5) * 2e4 points = 0.01
    # expected false flags; the residual from an 11-point running median has
    # ~5 % more spread than the noise (measured: ~10x that rate), so allow one.
    extra = np.argwhere(found & ~np.isin(np.arange(nints), [20, 155, 300])[:, None])
    assert found[20, 3] and found[155, 10] and found[300, 40]
    assert len(extra) <= 1, extra
    assert not found[30, 7]
    assert 2 * norm.sf(5) * flux.size < 0.02
    assert not time_outliers(flux, nsigma=0).any()


def test_speclc_flags_and_reports_clipped_points(caplog):
    segments = synthetic_segments(nints=40, nsegments=2, seed=13)
    model = stitch_x1dints(segments)
    flux = np.array(model.spec[0].spec_table["FLUX"])
    # A jump of 3 sigma in 20 adjacent columns of one integration: 20 x 3 /
    # sqrt(20) = 13 sigma in a bin holding them all, >= 6.7 sigma in each of
    # two bins if a bin edge splits them.
    cols = np.arange(1000, 1020)
    flux[12, cols] += 3 * np.sqrt(np.abs(flux[12, cols]))
    model.spec[0].spec_table["FLUX"] = flux
    with caplog.at_level(logging.INFO, logger="jwst_soss_custom"):
        curves = make_light_curves(model, clip_sigma=5.0)
    speclc = curves.speclc
    hit = speclc[speclc["clipped"]]
    assert len(hit) >= 1
    assert np.all(hit["int_num"] == 13) and np.all(hit["order"] == 1)
    assert np.all(np.isnan(hit["flux_norm"])) and np.all(np.isfinite(hit["flux"]))
    assert speclc.meta["number_clipped_order_1"] == len(hit)
    assert speclc.meta["clip_sigma"] == 5.0
    bins = ", ".join(f"{b}: 1" for b in hit["bin"])
    assert f"Order 1: {len(hit)} outlier point(s) beyond 5 sigma clipped" in caplog.text
    assert f"Per bin: {bins}." in caplog.text
    off = make_light_curves(model, clip_sigma=0).speclc
    assert not off["clipped"].any()
    np.testing.assert_array_equal(off["flux"], speclc["flux"])


@pytest.mark.parametrize("window", [5, 11])
def test_transit_edges_are_not_clipped(window):
    """Noise-free box transit: the median filter keeps its edges exactly."""
    model = stitch_x1dints(synthetic_segments(nints=60, nsegments=1, noise=False, depth=0.05))
    curves = make_light_curves(model, clip_sigma=3.0, clip_window=window)
    assert not curves.speclc["clipped"].any()
