"""Bad-pixel replacement (pure numpy).

Flagged and non-finite pixels are replaced by linear interpolation along the
dispersion direction (rows) in the same integration: the SOSS profile changes
sharply across a trace but slowly along it, so a row neighbour is the better
estimate. Only bad pixels are touched, so the cost scales with their number,
not with the cube size.
"""

import numpy as np

from jwst_soss_custom.dq import FLAGS, reference_pixels, usable

__all__ = ["replace_bad_pixels", "bad_pixel_mask"]


def bad_pixel_mask(data, dq):
    """Pixels to replace: flagged DO_NOT_USE or non-finite, reference pixels excluded.

    Parameters
    ----------
    data : ndarray (nints, ny, nx)
    dq : ndarray of uint32, same shape

    Returns
    -------
    ndarray of bool, same shape
    """
    bad = ~usable(data, dq)
    bad &= ~reference_pixels(data.shape[-2:])
    return bad


def replace_bad_pixels(data, bad, max_distance=4):
    """Replace bad pixels in place by linear interpolation along rows.

    Each bad pixel takes the linear interpolation between the nearest good
    pixel on its left and on its right within ``max_distance`` columns, or the
    one neighbour found if only one side has one.

    Parameters
    ----------
    data : ndarray (nints, ny, nx)
        Science cube, modified in place.
    bad : ndarray of bool, same shape
        Pixels to replace.
    max_distance : int
        Largest column distance of the neighbours used.

    Returns
    -------
    n_fallback : int
        How many had no good neighbour within ``max_distance`` columns and
        took instead the median over time of the pixel's good values (0 if it
        has none).
    """
    if max_distance < 1:
        raise ValueError(f"max_distance must be at least 1, got {max_distance}.")
    i, y, x = np.nonzero(bad)
    nx = data.shape[-1]
    # Nearest good neighbour on each side: its value and distance (0 = none yet).
    value = {-1: np.zeros(i.size), 1: np.zeros(i.size)}
    dist = {-1: np.zeros(i.size), 1: np.zeros(i.size)}
    for dx in range(1, max_distance + 1):
        for side in (-1, 1):
            xn = x + side * dx
            inside = (xn >= 0) & (xn < nx)
            xn = np.clip(xn, 0, nx - 1)
            candidate = data[i, y, xn]
            new = (dist[side] == 0) & inside & ~bad[i, y, xn] & np.isfinite(candidate)
            value[side][new] = candidate[new]
            dist[side][new] = dx
    left, right = dist[-1] > 0, dist[1] > 0
    both = left & right
    values = np.where(left, value[-1], value[1])
    values[both] = (value[-1][both] * dist[1][both] + value[1][both] * dist[-1][both]) / (
        dist[-1][both] + dist[1][both]
    )
    found = left | right
    if not found.all():
        values[~found] = _time_median(data, bad, y[~found], x[~found])
    data[i, y, x] = values
    return int(np.count_nonzero(~found))


def flag_replaced(dq, replaced):
    """Add FLUX_ESTIMATED to replaced pixels, keeping their original flags.

    Parameters
    ----------
    dq : ndarray of uint32
        Modified in place.
    replaced : ndarray of bool
    """
    dq[replaced] |= np.uint32(FLAGS["FLUX_ESTIMATED"])


def _time_median(data, bad, y, x):
    """Median over time of the good values of pixels (y, x); 0 where none is good."""
    pixels, inverse = np.unique(np.stack([y, x]), axis=1, return_inverse=True)
    series = data[:, pixels[0], pixels[1]].astype(np.float64)
    series[bad[:, pixels[0], pixels[1]] | ~np.isfinite(series)] = np.nan
    with np.errstate(all="ignore"):
        empty = np.isnan(series).all(axis=0)
        series[:, empty] = 0.0
        median = np.nanmedian(series, axis=0)
    return median[inverse.ravel()]
