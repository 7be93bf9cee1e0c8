"""Group-level 1/f removal: injected column offsets and drifts recovered, transit kept."""

import numpy as np
import pytest

from jwst_soss_custom.oneoverf.groups import (
    column_offsets,
    fit_group_oneoverf,
    leak_projection,
    leak_slopes,
    median_ramp,
    ramp_scale,
    remove_group_oneoverf,
    subtract_group_oneoverf,
    transit_leak,
)

NINTS, NGROUPS, NY, NX = 40, 5, 128, 96
READ = 8.0  # DN per read
DEPTH = 0.02
TRACE_ROWS = slice(40, 80)


def _scene(seed, drift=0.0, wings=0.0, oneoverf=6.0):
    """Ramps of a star across rows 40-80 with a transit, plus known 1/f per group and column.

    ``wings``: DN per group of the star's light on every row (its far wings,
    which transit with it), on top of a sky of 2 DN per group.
    """
    rng = np.random.default_rng(seed)
    y = np.arange(NY)[:, None]
    flux = 400.0 * np.exp(-0.5 * ((y - 60) / 6.0) ** 2) + wings + 2.0  # DN per group
    flux = np.broadcast_to(flux, (NY, NX))
    scale = np.ones(NINTS)
    scale[15:25] = 1.0 - DEPTH
    # The star transits, the background does not.
    star = flux - 2.0
    groups = np.empty((NINTS, NGROUPS, NY, NX), np.float32)
    for g in range(NGROUPS):
        mean = (scale[:, None, None] * star + 2.0) * (g + 1)
        groups[:, g] = mean + rng.normal(0, np.sqrt(mean + READ**2))
    offsets = rng.normal(0, oneoverf, (NINTS, NGROUPS, NX))
    slopes = rng.normal(0, drift, (NINTS, NGROUPS, NX))
    u = (np.arange(NY) - NY / 2) / NY
    injected = offsets[:, :, None, :] + slopes[:, :, None, :] * u[None, None, :, None]
    groups += injected.astype(np.float32)
    keep = np.ones((NY, NX), bool)
    keep[TRACE_ROWS] = False
    trace = np.zeros((NY, NX), bool)
    trace[52:68] = True
    return groups, injected, keep, trace, scale


def _transit_depth(groups, trace):
    charge = (groups[:, -1] - groups[:, 0])[:, trace].sum(axis=1)
    out = np.r_[0:15, 25:NINTS]
    return 1.0 - charge[15:25].mean() / charge[out].mean()


@pytest.mark.parametrize("degree, drift", [(0, 0.0), (1, 30.0)])
def test_injected_group_oneoverf_is_recovered_and_the_transit_kept(degree, drift):
    groups, injected, keep, trace, scale = _scene(1, drift)
    clean = groups - injected  # what the removal should reach (up to a per-column constant)
    ramp = median_ramp(groups)
    s = ramp_scale(groups, ramp, trace)
    # The scale follows the transit (to the noise of the summed trace).
    np.testing.assert_allclose(s[15:25].mean() / np.r_[s[:15], s[25:]].mean(), 1 - DEPTH,
                               atol=1e-3)
    coef = remove_group_oneoverf(groups, ramp, s, keep, np.ones((NY, NX), bool), degree=degree)
    assert coef.shape == (NINTS, degree + 1, NGROUPS, NX)
    # Residual 1/f per column and group, measured on the background rows:
    # injected minus removed (the pixel noise cancels in this difference).
    left = (groups - clean)[..., keep[:, 0], :].mean(axis=2)  # (nints, ngroups, nx)
    # Common to all integrations: the median ramp's share of the 1/f (a fixed
    # per-pixel slope offset, which normalised light curves do not see).
    varying = left - left.mean(axis=0)
    # Each offset is a median (or line) over 88 background pixels of noise
    # sigma ~ sqrt(2 (g+1) + READ^2): the expected error of the fitted constant.
    sigma = np.sqrt(2.0 * np.arange(1, NGROUPS + 1) + READ**2)
    npix = keep[:, 0].sum()
    # (a median for degree 0, least squares -- a mean at the centre -- for 1)
    expected = sigma / np.sqrt(npix) * (1.2533 if degree == 0 else 1.0)
    rms = np.sqrt(np.mean(varying**2, axis=(0, 2)))
    assert np.all(rms < 1.3 * expected), (rms, expected)
    before = np.sqrt(np.mean(injected[..., keep[:, 0], :].mean(axis=2) ** 2))
    assert rms.max() < 0.25 * before


def test_depth_is_unbiased_because_the_sky_is_not_scaled_with_the_star():
    """Over several noise draws the cleaned depth equals the depth without 1/f.

    Scaling the whole median ramp (sky included) with the transit deepened it
    by ~100 ppm here (the sky is 0.5 % of the trace's mean pixel), 6 times
    the standard error of this mean over draws.
    """
    diffs = []
    for seed in range(6):
        groups, injected, keep, trace, _ = _scene(10 + seed)
        depth_clean = _transit_depth(groups - injected, trace)
        ramp = median_ramp(groups)
        scale = ramp_scale(groups, ramp, trace)
        remove_group_oneoverf(groups, ramp, scale, keep, np.ones((NY, NX), bool))
        diffs.append(_transit_depth(groups, trace) - depth_clean)
    # Per draw the fitted offsets' noise moves the depth by ~40 ppm.
    standard_error = np.std(diffs, ddof=1) / np.sqrt(len(diffs))
    assert abs(np.mean(diffs)) < 3 * standard_error + 5e-6, (np.mean(diffs), standard_error)
    assert np.std(diffs) < 1e-4


def test_star_light_among_the_background_pixels_does_not_leak_into_the_depth():
    """Transiting wings on the background rows: the offsets must not follow them.

    The column median puts the wings (6 DN per group) in the unscaled sky, so
    in transit the fitted offsets dip by DEPTH x 6 DN per group and their
    subtraction gives the 16 trace rows back ~16 x 6 x DEPTH DN per group:
    the depth comes out ~370 ppm too shallow. `transit_leak` (fitted here on
    the same integrations) leaves that part in the data, in the groups or,
    the same, in the slopes after the fit (`leak_slopes`).
    """
    plain, decorrelated = [], []
    for seed in range(6):
        # 1/f of 2 DN per group: as for SOSS, below the trace's photon noise.
        groups, injected, keep, trace, _ = _scene(30 + seed, wings=6.0, oneoverf=2.0)
        truth = _transit_depth(groups - injected, trace)
        ramp = median_ramp(groups)
        scale = ramp_scale(groups, ramp, trace)
        # The wings are the same in every column here: one leak for all.
        coef = fit_group_oneoverf(groups, ramp, scale, keep)
        leak = transit_leak(leak_projection(coef), scale, NGROUPS, smooth=NX - 1)
        science = np.ones((NY, NX), bool)
        for out, this in ((plain, None), (decorrelated, leak)):
            cleaned = groups.copy()
            remove_group_oneoverf(cleaned, ramp, scale, keep, science, leak=this)
            out.append(_transit_depth(cleaned, trace) - truth)
    error = np.std(decorrelated, ddof=1) / np.sqrt(len(decorrelated))
    assert np.mean(plain) < -200e-6 and abs(np.mean(plain)) > 6 * error, (plain, error)
    assert abs(np.mean(decorrelated)) < 3 * error + 5e-6, (decorrelated, error)


@pytest.mark.parametrize("weights", [np.ones(NGROUPS), np.array([4.0, 1.0, 0.5, 1.0, 4.0])])
def test_the_leak_left_in_the_groups_or_added_to_the_slopes_is_the_same(weights):
    """soss_detector1 cleans chunks and adds the exposure's leak after ramp fitting.

    Exact for any weighting of the groups (optimal weighting gives bright and
    faint pixels different weights), since the leak is linear in the group.
    """
    groups, _, keep, trace, _ = _scene(5, wings=6.0, oneoverf=2.0)
    ramp = median_ramp(groups)
    scale = ramp_scale(groups, ramp, trace)
    coef = fit_group_oneoverf(groups, ramp, scale, keep)
    leak = transit_leak(leak_projection(coef), scale, NGROUPS, smooth=NX - 1)
    assert np.abs(leak).max() > 0
    science = np.ones((NY, NX), bool)
    in_groups, plain = groups.copy(), groups.copy()
    subtract_group_oneoverf(in_groups, coef.copy(), scale, science, leak)
    subtract_group_oneoverf(plain, coef.copy(), scale, science)

    def slopes(ramps):
        g = np.arange(NGROUPS, dtype=np.float64)
        centred = g - (weights * g).sum() / weights.sum()
        kernel = weights * centred / (weights * centred**2).sum()
        return np.einsum("g,igyx->iyx", kernel, ramps.astype(np.float64))

    group_time = 5.49
    added = leak_slopes(leak, scale, NY, group_time)
    np.testing.assert_allclose(slopes(in_groups) / group_time,
                               slopes(plain) / group_time + added, atol=2e-5)


def test_offsets_that_do_not_follow_the_star_are_not_called_a_leak():
    """Pure 1/f and no wings: the leak fitted is noise, not a change of the depth."""
    groups, injected, keep, trace, _ = _scene(3)
    ramp = median_ramp(groups)
    scale = ramp_scale(groups, ramp, trace)
    coef = fit_group_oneoverf(groups, ramp, scale, keep)
    projection = leak_projection(coef)
    leak = transit_leak(projection, scale, NGROUPS)
    assert leak.shape == (coef.shape[1], NX)
    # Times the transit's depth, the leak is a small share of the offsets' noise.
    assert np.abs(leak * NGROUPS * DEPTH).mean() < 0.3 * np.std(injected)
    assert not transit_leak(projection, np.ones(NINTS), NGROUPS).any()


def test_a_leak_the_data_do_not_measure_is_shrunk_one_they_do_is_kept():
    """Offsets of pure noise (shared by all columns, as low-frequency 1/f) give no leak.

    With the noise shared by all columns the running median cannot average
    it: the shuffled-scale trials see that and shrink the fit towards 0,
    while a leak well above that noise comes through within its error.
    """
    nints, ngroups, nx = 300, 9, 256
    scale = np.ones(nints)
    scale[100:200] = 1.0 - DEPTH
    tau = np.arange(1, ngroups + 1)
    norm = np.sqrt((tau**2).sum())
    x = scale - scale.mean()
    # The fit's noise for offsets of 3 DN per group and integration.
    sigma = 3.0 / np.sqrt((x**2).sum()) / norm
    raw, shrunk = [], []
    for seed in range(20):
        rng = np.random.default_rng(seed)
        noise = rng.normal(0, 3.0 * norm, (nints, 1, 1)) * np.ones((1, 1, nx))
        raw.append(np.abs(transit_leak(noise, scale, ngroups, trials=0)).mean())
        shrunk.append(np.abs(transit_leak(noise, scale, ngroups)).mean())
    assert 0.5 * sigma < np.mean(raw) < 1.2 * sigma  # |N(0, sigma)| averages 0.8 sigma
    assert np.mean(shrunk) < 0.5 * np.mean(raw)
    true = 20 * sigma
    leaking = noise + true * (tau**2).sum() * (scale - 1)[:, None, None]
    np.testing.assert_allclose(transit_leak(leaking, scale, ngroups), true, rtol=0.25)


def test_a_constant_per_column_leaves_the_drift_a_line_removes_it():
    groups, injected, keep, _, _ = _scene(2, drift=40.0)
    residual = groups[0] - median_ramp(groups)
    u = (np.arange(NY) - NY / 2) / NY
    flat = column_offsets(residual, keep, degree=0)
    line = column_offsets(residual, keep, degree=1)
    truth = injected[0]
    model0 = flat[0][:, None, :] * np.ones((NY, 1))
    model1 = line[0][:, None, :] + line[1][:, None, :] * u[None, :, None]
    # Differences to the truth, less their common constant (the median ramp's share).
    err0 = (model0 - truth) - (model0 - truth).mean(axis=1, keepdims=True)
    err1 = (model1 - truth) - (model1 - truth).mean(axis=1, keepdims=True)
    assert np.sqrt(np.mean(err1**2)) < 0.5 * np.sqrt(np.mean(err0**2))


def test_columns_without_background_get_no_offset():
    residual = np.ones((2, 20, 3), np.float32)
    keep = np.zeros((20, 3), bool)
    keep[:, 0] = True
    coef = column_offsets(residual, keep, degree=1)
    assert np.isfinite(coef[:, :, 0]).all() and np.isnan(coef[:, :, 1:]).all()
    np.testing.assert_allclose(coef[0, :, 0], 1.0)


def test_one_sided_columns_take_an_offset_not_an_extrapolated_slope():
    """Background only below the trace (SUBSTRIP96's red end): the median, no slope."""
    rng = np.random.default_rng(3)
    ny, nx = 60, 400
    rows = np.arange(ny)[:, None]
    # A constant 1/f offset of 5 DN plus white noise of 1 DN; the fit pixels
    # are rows 0-19 only (the trace, at row 40, and the rows around it are not
    # background).
    residual = (5.0 + rng.normal(0, 1.0, (1, ny, nx))).astype(np.float32)
    keep = np.broadcast_to(rows < 20, (ny, nx))
    one_sided = np.arange(nx) < nx // 2
    free = column_offsets(residual, keep, degree=1)
    held = column_offsets(residual, keep, degree=1, one_sided=one_sided)
    np.testing.assert_array_equal(held[:, :, ~one_sided], free[:, :, ~one_sided])
    assert (held[1][:, one_sided] == 0).all()
    np.testing.assert_array_equal(held[0][:, one_sided],
                                  np.median(residual[:, :20, one_sided], axis=1))
    # At the trace the offset is the median's: its error is that of a median
    # of 20 values (1.2533 / sqrt(20) DN, within the 10 % an RMS over 200
    # columns is known to); the line fitted on rows 0-19 and extrapolated
    # there errs by more than twice as much.
    u = (40 - ny / 2) / ny
    rms_held = np.sqrt(np.mean((held[0][:, one_sided] - 5.0) ** 2))
    rms_free = np.sqrt(np.mean((free[0][:, one_sided] + free[1][:, one_sided] * u - 5.0) ** 2))
    assert abs(rms_held / (1.2533 / np.sqrt(20)) - 1) < 3 * 0.05
    assert rms_free > 2 * rms_held
