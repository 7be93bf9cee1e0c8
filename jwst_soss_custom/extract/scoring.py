"""Score an extraction against the simulator's truth (tests and benchmarks).

Everything here needs a truth dict from `jwst_soss_custom.datasets.load_truth`:
the injected light curves, the noiseless star frame and the expected ERR.
"""

import numpy as np

from .extract import aperture_rows, window_weights

__all__ = ["truth_columns", "scatter_over_limit", "white_light_over_limit", "depth_chi2"]


def truth_columns(truth, order, wavelength):
    """Index into the truth arrays of ``order`` of each extracted element (by wavelength)."""
    x, wave = truth[f"order{order}"]["x"], truth[f"order{order}"]["wavelength"]
    cols = np.rint(np.interp(wavelength, wave[::-1], x[::-1])).astype(int)
    return np.searchsorted(x, cols)


def _order_arrays(x1d, truth, order):
    spec = next(s for s in x1d.spec if s.spectral_order == order)
    flux = np.asarray(spec.spec_table["FLUX"], float)
    idx = truth_columns(truth, order, spec.spec_table["WAVELENGTH"][0])
    return flux, truth[f"order{order}"]["light_curves"][:, idx].astype(float), idx


def scatter_over_limit(x1d, truth, order, window=30.0):
    """Per-column scatter (injected light curve divided out) over the optimal noise limit.

    The limit is the optimal-weighting one, ``sqrt(1 / sum(P^2 / V))``, with
    the true profile ``P`` (noiseless star frame) and true variance ``V``
    (expected ERR) in a ``window``-px aperture, relative to the flux in it.

    Returns
    -------
    ratio : ndarray (ncols,)
    limit : ndarray (ncols,)
        Relative noise limit per column.
    """
    flux, lc, idx = _order_arrays(x1d, truth, order)
    relative = flux / lc
    scatter = np.std(relative / relative.mean(axis=0), axis=0, ddof=1)
    star = truth["deep_frame"] - truth["background"] - truth["order0"]["image"]
    cols, yc = truth[f"order{order}"]["x"][idx], truth[f"order{order}"]["y"][idx]
    rows, valid = aperture_rows(yc, window / 2, star.shape[0])
    weights = window_weights(rows, valid, yc, window)
    signal = star[rows, cols[None]] * weights
    total = signal.sum(axis=0)
    variance = truth["expected_err"][rows, cols[None]].astype(float) ** 2
    # Flagged pixels (NaN ERR) carry no information: they drop out of the limit.
    inverse = np.where((weights > 0) & np.isfinite(variance), (signal / total) ** 2 / variance, 0.0)
    limit = np.sqrt(1.0 / np.sum(inverse, axis=0)) / total
    return scatter / limit, limit


def white_light_over_limit(x1d, truth, order, window=30.0):
    """White-light scatter (injected light curve divided out) over its noise limit.

    The limit adds the per-column limits of `scatter_over_limit` in
    quadrature, weighted by each column's flux.
    """
    flux, lc, _ = _order_arrays(x1d, truth, order)
    _, limit = scatter_over_limit(x1d, truth, order, window)
    good = np.isfinite(flux).all(axis=0)
    scale = np.mean(flux[:, good] / lc[:, good], axis=0)
    white = flux[:, good].sum(axis=1) / (lc[:, good] * scale).sum(axis=1)
    white_limit = np.sqrt(np.sum((limit[good] * scale) ** 2)) / scale.sum()
    return float(np.std(white, ddof=1) / white_limit)


def depth_chi2(x1d, truth, order):
    """Reduced chi-square of recovered minus injected depths, per column.

    Each column is fitted as ``a + b (lc - 1)`` with the injected light curve
    ``lc``; ``b / a`` is recovered / injected depth, its error from the fit's
    residual scatter.
    """
    flux, lc, _ = _order_arrays(x1d, truth, order)
    x = lc - 1.0
    xm, fm = x.mean(axis=0), flux.mean(axis=0)
    sxx = ((x - xm) ** 2).sum(axis=0)
    b = ((x - xm) * (flux - fm)).sum(axis=0) / sxx
    a = fm - b * xm
    resid = flux - a - b * x
    sigma_b = np.sqrt((resid**2).sum(axis=0) / (x.shape[0] - 2) / sxx)
    return float(np.nanmean(((b / a - 1) / (sigma_b / a)) ** 2))
