"""Baseline (out-of-transit) integrations: user ranges, automatic detection, normalisation."""

import logging

import numpy as np
import pytest

from jwst_soss_custom.lightcurves import SossLightCurvesStep, stitch_x1dints
from jwst_soss_custom.lightcurves.baseline import (
    MIN_TRANSIT_SNR,
    find_dip,
    parse_integration_ranges,
    resolve_baseline,
)
from jwst_soss_custom.lightcurves.synthetic import synthetic_segments, transit_model
from jwst_soss_custom.lightcurves.tables import make_light_curves

NINTS = 60


@pytest.fixture(scope="module")
def stitched():
    """A 60-integration synthetic exposure, 1 % box transit over integrations 22-39."""
    return stitch_x1dints(synthetic_segments(nints=NINTS, nsegments=2, seed=8))


def test_parse_integration_ranges():
    np.testing.assert_array_equal(parse_integration_ranges("1-3, 7,9 - 10"), [1, 2, 3, 7, 9, 10])
    with pytest.raises(ValueError, match="'1:3'.*'1-150, 400-537'"):
        parse_integration_ranges("1:3")
    with pytest.raises(ValueError, match="runs backwards"):
        parse_integration_ranges("5-2")


def test_find_dip_locates_a_box_transit():
    rng = np.random.default_rng(2)
    flux = 1 + rng.normal(0, 1e-3, 300)
    flux[120:190] -= 5e-3
    start, stop, snr = find_dip(flux)
    # Depth / error = 5e-3 / (1e-3 sqrt(1/70 + 1/230)) = 36; edges within a
    # point or two (a point moves the box by < 1 sigma of the fit).
    assert abs(start - 120) <= 2 and abs(stop - 190) <= 2
    assert snr == pytest.approx(36, rel=0.25)


def test_find_dip_on_a_long_series_is_averaged_first():
    flux = np.ones(2500)
    flux[1000:1600] = 0.99
    flux += np.random.default_rng(1).normal(0, 1e-3, flux.size)
    start, stop, _ = find_dip(flux)
    # Averaged by 3 points: edges known to that resolution.
    assert abs(start - 1000) <= 3 and abs(stop - 1600) <= 3


def test_auto_baseline_leaves_out_transit_and_margin():
    int_num = np.arange(1, 201)
    flux = 1 + np.random.default_rng(4).normal(0, 5e-4, 200)
    flux[80:120] -= 0.01
    found = resolve_baseline(int_num, flux, "auto", margin=0.1)
    assert found.method == "auto" and found.snr > MIN_TRANSIT_SNR
    # 40-point dip widened by ceil(0.1 * 40) = 4 on each side.
    assert found.transit == "77-124"
    assert np.count_nonzero(found.mask) == 200 - 48
    meta = found.meta(int_num)
    assert meta["baseline_integrations"] == "1-76, 125-200"
    assert meta["number_of_baseline_integrations"] == 152


def test_no_transit_uses_every_integration_with_a_warning(caplog):
    flux = 1 + np.random.default_rng(6).normal(0, 1e-3, 200)
    with caplog.at_level(logging.WARNING, logger="jwst_soss_custom"):
        found = resolve_baseline(np.arange(1, 201), flux, "auto")
    assert found.method == "all" and found.mask.all()
    assert "No significant transit" in caplog.text


def test_user_baseline_and_errors(caplog):
    int_num = np.arange(1, 51)
    with caplog.at_level(logging.WARNING, logger="jwst_soss_custom"):
        found = resolve_baseline(int_num, None, "1-10, 41-60")
    assert found.method == "user" and np.count_nonzero(found.mask) == 20
    assert "51-60" in caplog.text  # asked for but absent: said, not silently ignored
    assert resolve_baseline(int_num, None, "all").mask.all()
    with pytest.raises(ValueError, match="selects 0 of the integrations present"):
        resolve_baseline(int_num, None, "100-200")


def test_normalised_by_the_baseline_and_recorded_in_metadata(stitched):
    curves = make_light_curves(stitched, baseline="auto")
    whtlt, speclc = curves.whtlt, curves.speclc
    expected_out = transit_model(np.arange(1, NINTS + 1), NINTS, 0.01) == 1.0
    # Every baseline integration is out of transit; most out-of-transit ones are baseline.
    assert not np.any(whtlt["baseline"] & ~expected_out)
    assert np.count_nonzero(whtlt["baseline"]) >= 0.7 * np.count_nonzero(expected_out)
    for table in (whtlt, speclc, curves.precision):
        assert table.meta["baseline_method"] == "auto"
        assert table.meta["baseline_integrations"] == whtlt.meta["baseline_integrations"]
    flux = np.asarray(whtlt["whitelight_flux_order_1"])
    np.testing.assert_allclose(
        whtlt["whitelight_flux_norm_order_1"], flux / np.median(flux[whtlt["baseline"]]), rtol=1e-12
    )
    assert np.median(whtlt["whitelight_flux_norm_order_1"][whtlt["baseline"]]) == pytest.approx(1)


def test_step_takes_user_baseline(stitched):
    table = SossLightCurvesStep.call(stitched, baseline_integrations="1-15,46-60")
    assert table.meta["baseline_method"] == "user"
    assert table.meta["baseline_integrations"] == "1-15, 46-60"
    assert table.meta["transit_integrations"] == "16-45"
    np.testing.assert_array_equal(table["baseline"], np.r_[[True] * 15, [False] * 30, [True] * 15])
