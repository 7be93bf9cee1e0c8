"""The point-to-point precision estimator is unbiased for white noise."""

import numpy as np

from jwst_soss_custom.lightcurves.precision import point_to_point_scatter, precision_ratio


def test_point_to_point_scatter_of_white_noise_with_a_transit():
    rng = np.random.default_rng(11)
    n, sigma, trials = 500, 300e-6, 200
    t = np.arange(n)
    transit = np.where((t > 200) & (t < 300), 1 - 0.02, 1.0)
    flux = transit + rng.normal(0, sigma, (trials, n))
    found = point_to_point_scatter(flux, axis=-1)
    # MAD estimator efficiency ~37%: relative sd of one estimate ~ 1/sqrt(0.37 n)
    # and the mean over trials has 1/sqrt(trials) of that.
    tolerance = 4 / np.sqrt(0.37 * n * trials)
    assert abs(found.mean() / sigma - 1) < tolerance
    measured, expected, ratio = precision_ratio(flux[0], np.full(n, sigma))
    assert expected == sigma and abs(ratio - 1) < 4 / np.sqrt(0.37 * n)
