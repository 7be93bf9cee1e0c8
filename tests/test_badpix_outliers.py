"""soss_badpix: spatial and temporal outliers, injected and recovered on the simulator."""

import numpy as np
import pytest

from jwst_soss_custom.badpix.badpix import spatial_outliers, temporal_outliers
from jwst_soss_custom.statistics import cube_statistics
from jwst_soss_custom._base.dq import FLAGS


@pytest.fixture(scope="module")
def cleaned(tiny_exposure):
    """The tiny exposure (cosmic rays, hot and dead pixels) through soss_badpix."""
    from jwst_soss_custom.badpix import SossBadpixStep
    from jwst_soss_custom.source import load_exposure

    cube, _ = load_exposure(tiny_exposure.segment_files)
    raw = cube.data.copy()
    return raw, SossBadpixStep.call(cube)


def _clean_pixels(truth):
    bad = truth["bad_pixels"]
    any_bad = bad["hot_flagged"] | bad["hot_unflagged"] | bad["dead_flagged"] | bad["dead_unflagged"]
    # Field-star order 0s are real point-like sources, not clean sky: the
    # spatial search may take their peaks for hot pixels.
    return ~any_bad & ~truth["order0"]["mask"]


def test_cosmic_rays_above_10_sigma_are_found(cleaned, tiny_truth):
    _, model = cleaned
    cr = tiny_truth["cosmic_rays"]
    sigma = tiny_truth["expected_err"][cr["y"], cr["x"]]
    strong = np.isfinite(sigma) & (cr["amplitude"] > 10 * sigma)
    strong &= _clean_pixels(tiny_truth)[cr["y"], cr["x"]]
    flagged = (model.dq[cr["integration"], cr["y"], cr["x"]] & FLAGS["OUTLIER"]) > 0
    assert strong.sum() > 300  # enough to measure 99 %
    assert flagged[strong].mean() >= 0.99
    est = (model.dq[cr["integration"], cr["y"], cr["x"]] & FLAGS["FLUX_ESTIMATED"]) > 0
    assert est[strong & flagged].all()


def test_unflagged_hot_and_dead_pixels_are_found(cleaned, tiny_truth):
    _, model = cleaned
    bad = tiny_truth["bad_pixels"]
    sigma = np.nan_to_num(tiny_truth["expected_err"], nan=np.inf)
    hot = bad["hot_unflagged"] & (bad["hot_rate"] > 10 * sigma)
    found_hot = (model.dq[0] & FLAGS["HOT"]) > 0
    assert hot.sum() >= 30
    assert found_hot[hot].mean() >= 0.99
    found_dead = (model.dq[0] & FLAGS["DEAD"]) > 0
    # dead pixels keep <=10 % of at least the background: >= 30 sigma deficits
    assert found_dead[bad["dead_unflagged"]].mean() >= 0.99
    # spatial outliers are replaced in every integration
    assert ((model.dq[:, hot] & FLAGS["FLUX_ESTIMATED"]) > 0).all()


def test_false_positives_below_1e_5(cleaned, tiny_truth):
    _, model = cleaned
    clean = _clean_pixels(tiny_truth)
    spatial = (model.dq[0] & (FLAGS["HOT"] | FLAGS["DEAD"])) > 0
    assert (spatial & clean).sum() / clean.sum() < 1e-5
    cr = tiny_truth["cosmic_rays"]
    hit = np.zeros(model.dq.shape, bool)
    hit[cr["integration"], cr["y"], cr["x"]] = True
    temporal = ((model.dq & FLAGS["OUTLIER"]) > 0) & ~hit & clean
    assert temporal.sum() / (clean.sum() * model.dq.shape[0]) < 1e-5


def test_replacement_does_not_bias_the_flux(cleaned, tiny_truth):
    """Inject cosmic rays and hot pixels into the cleaned cube and remove them again.

    The difference of the aperture sums before injection and after removal
    comes only from the replaced values; its mean over all replaced pixels,
    relative to the flux, must be consistent with zero within 3 standard
    errors (derived from the spread of the differences themselves).
    """
    from jwst_soss_custom.tracing import predict_traces

    _, model = cleaned
    reference = model.data.copy()
    data = reference.copy()
    rng = np.random.default_rng(11)
    nints, ny, nx = data.shape
    n = 3000
    i, y, x = rng.integers(0, nints, n), rng.integers(10, ny - 10, n), rng.integers(10, nx - 10, n)
    data[i, y, x] += 30.0 * model.err[i, y, x]
    usable = np.ones(data.shape, bool)
    stats = cube_statistics(model)
    found = temporal_outliers(data, usable, np.fmax(stats.sigma, stats.err), stats.deep, 6.0)
    assert found[i, y, x].mean() >= 0.99
    y_trace = predict_traces(tiny_truth["pwcpos"]).orders[1].y
    aperture = np.abs(np.arange(ny)[:, None] - y_trace[None]) <= 15
    diff = np.einsum("iyx,yx->ix", data - reference, aperture, dtype=np.float64)
    flux = np.einsum("iyx,yx->ix", reference, aperture, dtype=np.float64)
    touched = np.einsum("iyx,yx->ix", found, aperture) > 0
    rel = diff[touched] / flux[touched]
    assert abs(rel.mean()) < 3 * rel.std() / np.sqrt(rel.size) + 1e-12
    # and the white light is unchanged to far below its photon noise (~1e-4)
    white = diff.sum(axis=1) / flux.sum(axis=1)
    assert np.abs(white).max() < 1e-5


def test_temporal_outliers_on_a_pure_series():
    rng = np.random.default_rng(2)
    data = rng.normal(100, 1.0, (40, 6, 7)).astype(np.float32)
    data += np.linspace(0, 5, 40)[:, None, None].astype(np.float32)  # a trend is followed
    data[17, 2, 3] += 12.0
    sigma, fill = np.ones((6, 7)), np.median(data, axis=0)
    found = temporal_outliers(data, np.ones(data.shape, bool), sigma, fill, 6.0, 5)
    assert found[17, 2, 3] and found.sum() == 1
    assert abs(data[17, 2, 3] - (100 + 5 * 17 / 39)) < 3.0
    with pytest.raises(ValueError, match="odd"):
        temporal_outliers(data, np.ones(data.shape, bool), sigma, fill, 6.0, 4)


def test_spatial_outliers_ignore_steep_trace_edges():
    ny, nx = 80, 200
    rows = np.arange(ny)[:, None]
    centre = 40 + 0.05 * np.arange(nx)  # a tilted trace with steep edges
    deep = 500 * np.exp(-0.5 * ((rows - centre) / 4.0) ** 2) + 5.0
    deep[60, 100] += 10.0  # hot pixel, 10 / 0.05 = 200 sigma
    deep[38, 120] += 10.0  # hot pixel on the steep edge (67 DN/s, gradient ~33 DN/s/row)
    deep[20, 50] = 0.5  # dead pixel
    out = spatial_outliers(deep.astype(np.float32), 0.05, 15.0, 5)
    assert out[60, 100] == 1 and out[38, 120] == 1 and out[20, 50] == -1
    assert np.count_nonzero(out) == 3
