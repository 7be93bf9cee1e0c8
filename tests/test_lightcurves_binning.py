"""Spectroscopic binning by pixels, resolving power and user edges: flux conserved."""

import numpy as np
import pytest
from astropy.table import Table

from jwst_soss_custom.lightcurves import SossLightCurvesStep, stitch_x1dints
from jwst_soss_custom.lightcurves.binning import (
    Binning,
    bin_columns,
    make_wavelength_bins,
    resolution_edges,
)
from jwst_soss_custom.lightcurves.synthetic import synthetic_segments
from jwst_soss_custom.lightcurves.orders import read_bin_edges
from jwst_soss_custom.lightcurves.tables import make_light_curves

LIMITS = {1: (0.9, 2.7), 2: (0.62, 0.93)}


@pytest.fixture(scope="module")
def stitched():
    return stitch_x1dints(synthetic_segments(nints=30, nsegments=2, seed=21))


def test_resolution_edges_have_the_requested_resolving_power():
    low, high = resolution_edges((1.0, 2.0), 50)
    centre = 0.5 * (low + high)
    np.testing.assert_allclose(centre / (high - low), 50, rtol=1e-12)
    np.testing.assert_allclose(low[1:], high[:-1])
    assert low[0] == 1.0 and high[-1] >= 2.0 > high[-2]
    with pytest.raises(ValueError, match="resolution must be above"):
        resolution_edges((1.0, 2.0), 0.1)


def test_wavelength_bins_take_whole_columns_by_centre():
    wave = np.linspace(2.0, 1.0, 11)  # 0.1 micron per column, decreasing
    bins = make_wavelength_bins(wave, (1.0, 2.0), [1.0, 1.45, 1.8], [1.25, 1.75, 2.0])
    # Column centres 1.0, 1.1, 1.2 | 1.5, 1.6, 1.7 | 1.8, 1.9, 2.0 (last edge inclusive);
    # 1.3 and 1.4 fall in the gap and are not used.
    np.testing.assert_array_equal(bins.npix, [3, 3, 3])
    np.testing.assert_allclose(wave[bins.columns], [1.0, 1.1, 1.2, 1.5, 1.6, 1.7, 1.8, 1.9, 2.0])
    np.testing.assert_allclose(bins.wave_low, [0.95, 1.45, 1.75])  # outer pixel edges
    np.testing.assert_allclose(bins.wave_high, [1.25, 1.75, 2.05])
    with pytest.raises(ValueError, match="overlap"):
        make_wavelength_bins(wave, (1.0, 2.0), [1.0, 1.2], [1.5, 1.7])
    with pytest.raises(ValueError, match="unit"):
        make_wavelength_bins(wave, (1.0, 2.0), [1000.0], [2000.0])


@pytest.mark.parametrize(
    "binning",
    [
        Binning("pixels", width=7),
        Binning("resolution", resolution=80.0),
        Binning("resolution", resolution=3000.0),
    ],
    ids=["pixels", "R80", "R3000"],
)
def test_every_mode_conserves_flux(stitched, binning):
    """The bins of an order add up to its white light in every integration."""
    curves = make_light_curves(stitched, LIMITS, binning=binning, clip_sigma=0)
    for order in (1, 2):
        rows = curves.speclc[curves.speclc["order"] == order]
        nbins = curves.speclc.meta[f"number_of_bins_order_{order}"]
        flux = np.asarray(rows["flux"]).reshape(nbins, -1)
        error = np.asarray(rows["flux_error"]).reshape(nbins, -1)
        white = np.asarray(curves.whtlt[f"whitelight_flux_order_{order}"])
        white_error = np.asarray(curves.whtlt[f"whitelight_flux_error_order_{order}"])
        np.testing.assert_allclose(flux.sum(axis=0), white, rtol=1e-12)
        np.testing.assert_allclose(np.sqrt((error**2).sum(axis=0)), white_error, rtol=1e-12)
        centre = rows["wave_center"].reshape(nbins, -1)[:, 0]
        assert np.all(np.diff(centre) > 0)
    assert curves.speclc.meta["bin_mode"] == binning.mode


def test_resolution_mode_bins_are_near_the_resolving_power(stitched):
    speclc = make_light_curves(
        stitched, LIMITS, binning=Binning("resolution", resolution=60.0)
    ).speclc
    bins = speclc[(speclc["order"] == 1) & (speclc["int_num"] == 1)]
    achieved = bins["wave_center"] / (bins["wave_high"] - bins["wave_low"])
    # Whole columns (~1 nm) round each ~30 nm bin edge by up to half a column
    # at each end: R within ~1/15 of 60 except for the truncated last bin.
    np.testing.assert_allclose(achieved[:-1], 60, rtol=0.08)
    assert speclc.meta["resolution"] == 60.0


@pytest.mark.parametrize("layout", ["ecsv_with_orders", "plain_text"])
def test_edges_file(stitched, tmp_path, layout):
    if layout == "ecsv_with_orders":
        path = tmp_path / "edges.ecsv"
        Table(
            {"order": [1, 1, 2], "wave_low": [1.0, 1.5, 0.7], "wave_high": [1.5, 2.0, 0.8]}
        ).write(path)
    else:
        path = tmp_path / "edges.txt"
        path.write_text("1.0 1.5\n1.5 2.0\n0.7 0.8\n")
    edges = read_bin_edges(path)
    table = SossLightCurvesStep.call(
        stitched,
        bin_mode="edges",
        bin_edges_file=str(path),
        save_results=True,
        output_dir=str(tmp_path),
        output_file="edges",
    )
    speclc = Table.read(tmp_path / "edges_speclc.ecsv")
    nbins = {o: speclc.meta[f"number_of_bins_order_{o}"] for o in (1, 2)}
    if layout == "ecsv_with_orders":
        assert set(edges) == {1, 2} and nbins == {1: 2, 2: 1}
    else:
        assert set(edges) == {0} and nbins == {1: 2, 2: 1}  # 1.0-2.0 is outside order 2's range
    first = speclc[(speclc["order"] == 1) & (speclc["int_num"] == 1)]
    assert first["wave_low"][0] == pytest.approx(1.0, abs=1e-3)  # within a column (~1 nm)
    assert first["wave_high"][1] == pytest.approx(2.0, abs=1e-3)
    assert len(table) == 30


def test_edges_mode_errors_name_the_fix(stitched, tmp_path):
    with pytest.raises(ValueError, match="needs bin_edges_file"):
        SossLightCurvesStep.call(stitched, bin_mode="edges")
    with pytest.raises(ValueError, match="does not exist"):
        SossLightCurvesStep.call(
            stitched, bin_mode="edges", bin_edges_file=str(tmp_path / "no.ecsv")
        )
    path = tmp_path / "only1.ecsv"
    Table({"order": [1], "wave_low": [1.0], "wave_high": [2.0]}).write(path)
    with pytest.raises(ValueError, match="no bins for order 2"):
        SossLightCurvesStep.call(stitched, bin_mode="edges", bin_edges_file=str(path))


def test_bin_columns_with_gaps_between_bins():
    wave = np.linspace(1.0, 2.0, 11)
    flux = np.arange(22.0).reshape(2, 11)
    bins = make_wavelength_bins(wave, (1.0, 2.0), [1.0, 1.55], [1.25, 2.0])
    binned, _, nvalid = bin_columns(flux, np.ones_like(flux), bins)
    np.testing.assert_allclose(binned[0], [0 + 1 + 2, 6 + 7 + 8 + 9 + 10])
    np.testing.assert_array_equal(nvalid[0], [3, 5])
