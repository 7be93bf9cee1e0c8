"""Pure light-curve cores: column binning, white-light sums, normalisation."""

import numpy as np
import pytest

from jwst_soss_custom.lightcurves import (
    bin_columns,
    column_edges,
    make_column_bins,
    normalise,
    white_light_sums,
)


@pytest.fixture
def spectra():
    """Decreasing wavelength grid (as SOSS order 1) with NaN ends, random flux."""
    rng = np.random.default_rng(3)
    ncols, nints = 300, 12
    wave = np.linspace(2.9, 0.8, ncols)
    wave[:5] = np.nan
    wave[-7:] = np.nan
    flux = rng.uniform(100.0, 200.0, (nints, ncols))
    error = rng.uniform(1.0, 3.0, (nints, ncols))
    flux[:, np.isnan(wave)] = np.nan
    return wave, flux, error


def test_column_edges_half_way_between_centres():
    wave = np.array([np.nan, 3.0, 2.0, 1.0, np.nan])
    low, high = column_edges(wave)
    np.testing.assert_allclose(low[1:4], [2.5, 1.5, 0.5])
    np.testing.assert_allclose(high[1:4], [3.5, 2.5, 1.5])
    assert np.isnan(low[[0, 4]]).all() and np.isnan(high[[0, 4]]).all()


def test_column_edges_rejects_non_monotonic_grid():
    with pytest.raises(ValueError, match="not strictly monotonic"):
        column_edges(np.array([1.0, 2.0, 1.5]))


@pytest.mark.parametrize("last_bin", ["keep", "merge", "drop"])
def test_bins_cover_range_in_increasing_wavelength(spectra, last_bin):
    wave, _, _ = spectra
    wave_range = (1.0, 2.5)
    inside = np.flatnonzero((wave >= 1.0) & (wave <= 2.5))
    bins = make_column_bins(wave, wave_range, 20, last_bin)
    nfull, rest = divmod(inside.size, 20)
    assert rest  # the test needs a leftover to tell the choices apart
    expected_nbins = {"keep": nfull + 1, "merge": nfull, "drop": nfull}[last_bin]
    assert bins.nbins == expected_nbins
    assert np.all(np.diff(wave[bins.columns]) > 0)
    assert np.all(np.diff(bins.wave_center) > 0)
    # Adjacent bins share their edge: no wavelength is lost or counted twice.
    np.testing.assert_allclose(bins.wave_high[:-1], bins.wave_low[1:])
    assert np.all(bins.wave_low <= bins.wave_center) and np.all(bins.wave_center <= bins.wave_high)
    if last_bin == "drop":
        assert bins.npix.sum() == nfull * 20
        assert np.all(bins.npix == 20)
    else:
        assert bins.npix.sum() == inside.size
        assert set(bins.columns) == set(inside)
    if last_bin == "merge":
        assert bins.npix[-1] == 20 + rest


def test_bins_errors_name_the_fix():
    wave = np.linspace(2.0, 1.0, 50)
    with pytest.raises(ValueError, match="No column has a wavelength within"):
        make_column_bins(wave, (3.0, 4.0), 10)
    with pytest.raises(ValueError, match="last_bin='keep'"):
        make_column_bins(wave, (1.0, 2.0), 60, "drop")
    with pytest.raises(ValueError, match="bin_width"):
        make_column_bins(wave, (1.0, 2.0), 0)
    with pytest.raises(ValueError, match="last_bin must be"):
        make_column_bins(wave, (1.0, 2.0), 5, "spread")


@pytest.mark.parametrize("bin_width", [1, 7, 20, 500])
def test_binning_conserves_flux_and_adds_errors_in_quadrature(spectra, bin_width):
    wave, flux, error = spectra
    wave_range = (0.9, 2.6)
    used = (wave >= 0.9) & (wave <= 2.6)
    bins = make_column_bins(wave, wave_range, bin_width)
    binned, binned_error, nvalid = bin_columns(flux, error, bins)
    assert binned.shape == (flux.shape[0], bins.nbins)
    np.testing.assert_allclose(binned.sum(axis=1), flux[:, used].sum(axis=1), rtol=1e-12)
    np.testing.assert_allclose(
        (binned_error**2).sum(axis=1), (error[:, used] ** 2).sum(axis=1), rtol=1e-12
    )
    # Bin by bin, against a direct sum over its columns.
    for k in range(bins.nbins):
        cols = bins.columns[bins.starts[k] : bins.starts[k] + bins.npix[k]]
        np.testing.assert_allclose(binned[:, k], flux[:, cols].sum(axis=1), rtol=1e-12)
        np.testing.assert_allclose(
            binned_error[:, k], np.sqrt((error[:, cols] ** 2).sum(axis=1)), rtol=1e-12
        )
    assert np.all(nvalid == bins.npix)


def test_binning_leaves_out_nan_flux():
    wave = np.linspace(1.0, 2.0, 8)
    flux = np.ones((2, 8))
    error = np.full((2, 8), 2.0)
    flux[0, 1] = np.nan
    flux[1, 4:8] = np.nan
    error[0, 2] = np.nan  # finite flux, unknown error: left out of the variance
    bins = make_column_bins(wave, (1.0, 2.0), 4)
    binned, binned_error, nvalid = bin_columns(flux, error, bins)
    np.testing.assert_allclose(binned[0], [3.0, 4.0])
    np.testing.assert_allclose(binned_error[0], [np.sqrt(8.0), 4.0])
    np.testing.assert_array_equal(nvalid, [[3, 4], [4, 0]])
    # No finite flux at all in a bin: NaN, not a misleading zero.
    assert np.isnan(binned[1, 1]) and np.isnan(binned_error[1, 1])


def test_white_light_sums_match_jwst_algorithm(spectra):
    wave, flux, error = spectra
    flux = flux.copy()
    flux[3, 100:110] = np.nan
    wave_range = (1.2, 2.4)
    total, total_error, nused, nbad = white_light_sums(wave, flux, error, wave_range)
    # jwst's white_light: NaN outside [min, max] (inclusive), then nansum.
    masked = flux.copy()
    masked[:, ~((wave >= 1.2) & (wave <= 2.4))] = np.nan
    np.testing.assert_array_equal(total, np.nansum(masked, axis=1))
    finite = np.isfinite(masked)
    np.testing.assert_allclose(
        total_error, np.sqrt(np.where(finite, error**2, 0.0).sum(axis=1)), rtol=1e-12
    )
    np.testing.assert_array_equal(nused, finite.sum(axis=1))
    assert nbad == 0


def test_white_light_sums_are_nan_safe():
    wave = np.array([1.0, 1.5, 2.0, 2.5])
    flux = np.array([[1.0, 2.0, 3.0, 4.0], [np.nan] * 4])
    error = np.array([[1.0, np.nan, 1.0, 1.0], [1.0] * 4])
    total, total_error, nused, nbad = white_light_sums(wave, flux, error, (1.0, 2.0))
    np.testing.assert_array_equal(total, [6.0, 0.0])  # bounds inclusive; all-NaN sums to 0
    np.testing.assert_allclose(total_error, [np.sqrt(2.0), 0.0])
    np.testing.assert_array_equal(nused, [3, 0])
    assert nbad == 1


def test_normalise_divides_by_median_without_warnings():
    flux = np.array([[1.0, np.nan, 0.0], [3.0, np.nan, 0.0], [2.0, np.nan, 0.0]])
    error = np.ones_like(flux)
    norm, norm_error, median = normalise(flux, error, axis=0)
    np.testing.assert_allclose(median[[0, 2]], [2.0, 0.0])
    assert np.isnan(median[1])
    np.testing.assert_allclose(norm[:, 0], [0.5, 1.5, 1.0])
    np.testing.assert_allclose(norm_error[:, 0], 0.5)
    assert np.isnan(norm[:, 1:]).all()  # all-NaN and zero-median series
    norm1, _, median1 = normalise(np.array([2.0, 4.0, 6.0]), np.ones(3))
    np.testing.assert_allclose(norm1, [0.5, 1.0, 1.5])
    assert float(median1) == 4.0


def test_bins_sum_to_white_light(spectra):
    wave, flux, error = spectra
    wave_range = (0.85, 2.83)
    white, white_error, _, _ = white_light_sums(wave, flux, error, wave_range)
    bins = make_column_bins(wave, wave_range, 13)
    binned, binned_error, _ = bin_columns(flux, error, bins)
    np.testing.assert_allclose(binned.sum(axis=1), white, rtol=1e-12)
    np.testing.assert_allclose(np.sqrt((binned_error**2).sum(axis=1)), white_error, rtol=1e-12)
