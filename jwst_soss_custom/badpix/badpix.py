"""Bad-pixel detection and replacement (pure numpy).

Three kinds of bad pixel are found:

* flagged (DO_NOT_USE) and non-finite pixels;
* spatial outliers (unflagged hot or dead pixels): pixels of the deep
  (median over time) frame that deviate from the median of their
  neighbours in a box by more than ``n`` robust sigmas, where the sigma is
  local (1.4826 x the median absolute deviation in the box, floored at the
  deep frame's own noise) so that the steep edges of the traces are not
  taken for outliers;
* temporal outliers (cosmic rays, telegraph pixels): values deviating from
  a running median along time by more than ``n`` robust sigmas of that
  pixel's own residuals.

Flagged, non-finite and spatial outliers are replaced by linear
interpolation along the dispersion direction (rows) in the same integration:
the SOSS profile changes sharply across a trace but slowly along it, so a
row neighbour is the better estimate; only bad pixels are touched, so the
cost scales with their number. Temporal outliers take the running median of
their own time series.
"""

import bottleneck as bn
import numpy as np
from scipy.ndimage import median_filter

from jwst_soss_custom._base.dq import FLAGS, nonzero, usable

from jwst_soss_custom._base.geometry import reference_pixels

__all__ = [
    "clean_cube",
    "replace_bad_pixels",
    "bad_pixel_mask",
    "flag_replaced",
    "spatial_outliers",
    "temporal_outliers",
    "MAD_TO_SIGMA",
]

#: 1.4826 x median absolute deviation = standard deviation for Gaussian noise.
MAD_TO_SIGMA = 1.4826


def clean_cube(data, err, dq, spatial, sigma, deep, *, temporal_threshold=6.0,
               temporal_window=5, max_distance=4, core=slice(None), outside=None):
    """Flag and replace the bad pixels of a cube in place: the step's whole work on arrays.

    Temporal outliers (with a threshold) take the running median of their
    series and gain OUTLIER and JUMP_DET; spatial outliers of the deep frame
    (``spatial``: +1 hot, -1 dead) gain HOT or DEAD and DO_NOT_USE; they,
    flagged and non-finite pixels are interpolated along rows, and every
    replaced pixel gains FLUX_ESTIMATED (`flag_replaced`).

    Parameters
    ----------
    data, err : ndarray (nints, ny, nx) of float32
        Modified in place; ``err`` is interpolated like ``data``.
    dq : ndarray (nints, ny, nx) of uint32
        Modified in place.
    spatial : ndarray (ny, nx) of int8
        Spatial outliers of the exposure (`spatial_outliers`).
    sigma : ndarray (ny, nx)
        Per-pixel temporal noise.
    deep : ndarray (ny, nx)
        Deep frame (fills unusable values inside the running median).
    temporal_threshold : float or None
        Temporal threshold in sigmas; None leaves the temporal search out.
    temporal_window : int
        Running-median width along time.
    max_distance : int
        Farthest column used to interpolate.
    core : slice
        Integrations counted in the returned numbers (a chunk's own).
    outside : ndarray (ny, nx) of bool or None
        Pixels without science data, never searched or replaced
        (`~jwst_soss_custom._base.geometry.non_science`); default the
        SUBSTRIP256 reference pixels.

    Returns
    -------
    dict
        ``n_flagged``, ``n_spatial``, ``n_temporal``, ``n_fallback`` (pixels
        interpolated from their time series instead) and ``n_elements`` (of
        the core).
    """
    refpix = reference_pixels(data.shape[1:]) if outside is None else outside
    bad = bad_pixel_mask(data, dq, refpix)
    counts = {"n_flagged": int(np.count_nonzero(bad[core])), "n_temporal": 0,
              "n_spatial": int(np.count_nonzero(spatial)), "n_elements": bad[core].size}
    if temporal_threshold is not None:
        cosmic = temporal_outliers(
            data, ~bad & ~refpix, sigma, deep, temporal_threshold, temporal_window
        )
        counts["n_temporal"] = int(np.count_nonzero(cosmic[core]))
        dq[cosmic] |= np.uint32(FLAGS["OUTLIER"] | FLAGS["JUMP_DET"])
        flag_replaced(dq, cosmic)
        del cosmic
    dq[:, spatial > 0] |= np.uint32(FLAGS["HOT"] | FLAGS["DO_NOT_USE"])
    dq[:, spatial < 0] |= np.uint32(FLAGS["DEAD"] | FLAGS["DO_NOT_USE"])
    bad |= (spatial != 0)[None]
    counts["n_fallback"] = replace_bad_pixels(data, bad, max_distance=max_distance)
    # The estimate's uncertainty is taken as its neighbours' (interpolated
    # the same way), so errors stay finite wherever the data are.
    replace_bad_pixels(err, bad, max_distance=max_distance)
    flag_replaced(dq, bad)
    return counts


def bad_pixel_mask(data, dq, outside=None):
    """Pixels to replace: flagged DO_NOT_USE or non-finite, non-science pixels excluded.

    Parameters
    ----------
    data : ndarray (nints, ny, nx)
    dq : ndarray of uint32, same shape
    outside : ndarray (ny, nx) of bool or None
        Pixels without science data; default the reference pixels.

    Returns
    -------
    ndarray of bool, same shape
    """
    bad = ~usable(data, dq)
    bad &= ~(reference_pixels(data.shape[-2:]) if outside is None else outside)
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
    i, y, x = nonzero(bad)
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


def spatial_outliers(deep, deep_sigma, threshold=15.0, box=5, exclude=None):
    """Pixels of the deep frame that stand out from their neighbourhood.

    The model of a pixel is the running median of its row (``box`` pixels),
    which follows the steep but monotonic cross-dispersion edges of a trace
    exactly; stellar lines, which dent a whole column of the profile by the
    same fraction, are then removed with the running median of that
    fractional residual along the column. What remains is compared with a
    local sigma: 1.4826 x the median absolute residual in a ``box`` x
    ``box`` square, floored at the deep frame's own noise, so residual
    structure (curvature, order 0s) is not flagged while a hot or dead pixel
    is.

    Parameters
    ----------
    deep : ndarray (ny, nx)
        Median over time of the usable pixels (NaN elsewhere).
    deep_sigma : ndarray (ny, nx) or float
        Noise of the deep frame (e.g. 1.2533 x median ERR / sqrt(nints)).
    threshold : float
        Detection threshold in local sigmas (both signs: hot and dead).
    box : int
        Length of the running medians and side of the local-sigma box.
    exclude : ndarray of bool (ny, nx) or None
        Pixels never flagged (reference pixels).

    Returns
    -------
    ndarray of int8 (ny, nx)
        +1 where a pixel is too bright (hot), -1 too faint (dead), else 0.
    """
    if threshold <= 0 or box < 3:
        raise ValueError(
            f"spatial outliers need threshold > 0 and box >= 3, got {threshold} and {box}."
        )
    filled = np.where(np.isfinite(deep), deep, bn.nanmedian(deep)).astype(np.float32)
    model = median_filter(filled, size=(1, box), mode="nearest")
    resid = filled - model
    bright = model > 10 * deep_sigma  # fractional residuals are noise elsewhere
    frac = np.where(bright, resid / np.where(bright, model, 1), 0).astype(np.float32)
    resid -= np.where(bright, model, 0) * median_filter(frac, size=(box, 1), mode="nearest")
    row = _score(resid, box, deep_sigma)
    # Where a tilted trace crosses a row within a few pixels the row model is
    # poor; an outlier must then also stand out along its column, at a third
    # of the threshold (the profile's curvature inflates the sigma there),
    # unless it is beyond three times the threshold in its row (a hot pixel
    # between the horns of the profile can be its column's median).
    column = _score(filled - median_filter(filled, size=(box, 1), mode="nearest"), box, deep_sigma)
    confirmed = (np.abs(column) > threshold / 3) & (np.sign(column) == np.sign(row))
    strong = np.abs(row) > 3 * threshold
    out = np.isfinite(deep) & (np.abs(row) > threshold) & (confirmed | strong)
    if exclude is not None:
        out &= ~exclude
    return (np.sign(row) * out).astype(np.int8)


def _score(resid, box, floor):
    """Residual in units of 1.4826 x its median absolute value in a box (floored)."""
    sigma = MAD_TO_SIGMA * median_filter(np.abs(resid), size=box, mode="nearest")
    return resid / np.maximum(sigma, floor)


def temporal_outliers(data, usable_mask, sigma, fill, threshold=6.0, window=5, row_chunk=2):
    """Values deviating from a running median along time; replaced in place.

    Parameters
    ----------
    data : ndarray (nints, ny, nx)
        Modified in place: outliers take the running median of their
        neighbours in time (recomputed without the outliers: a median of 5
        that holds an outlier is biased towards it by ~0.3 sigma).
    usable_mask : ndarray of bool, same shape
        Values that may be tested and used in the medians.
    sigma : ndarray (ny, nx)
        Each pixel's white-noise sigma, an exposure statistic (e.g.
        `~jwst_soss_custom.statistics.ExposureStatistics` ``sigma`` floored at
        the median ERR).
    fill : ndarray (ny, nx)
        Value standing in for unusable values inside the running median (the
        deep frame): a per-pixel constant, so the result of an integration
        depends only on its ``window`` neighbours and a cube cut into chunks
        of integrations gives the same answer as the whole.
    threshold : float
        Threshold in units of ``sigma``.
    window : int
        Width (integrations, odd) of the centred running median; the series
        is reflected at both ends so the first and last values are tested too.
    row_chunk : int
        Detector rows processed at a time (all integrations): a band small
        enough to stay in the CPU cache through the running median (2 rows
        of 70 integrations: 1 MB) runs twice as fast as 16 rows.

    Returns
    -------
    ndarray of bool, same shape as ``data``
        The outliers found (and replaced).
    """
    if window < 3 or window % 2 == 0:
        raise ValueError(f"temporal window must be an odd number >= 3, got {window}.")
    if threshold <= 0:
        raise ValueError(f"temporal threshold must be positive, got {threshold}.")
    nints, ny, _ = data.shape
    if nints <= window // 2:
        # The series is reflected by window // 2 values at each end.
        raise ValueError(
            f"temporal outliers need more than {window // 2} integrations for "
            f"window={window}, got {nints}; lower temporal_window or switch the "
            "temporal search off."
        )
    found = np.zeros(data.shape, bool)
    for y0 in range(0, ny, row_chunk):
        rows = slice(y0, min(y0 + row_chunk, ny))
        ok = usable_mask[:, rows]
        block = np.where(ok, data[:, rows], np.float32(np.nan))
        running = running_median(np.where(ok, block, fill[rows]), window)
        with np.errstate(invalid="ignore"):
            hit = np.abs(block - running) > threshold * sigma[rows]
        t, y, x = nonzero(hit)
        data[t, y + y0, x] = _median_without(block, hit, t, y, x, window // 2)
        found[:, rows] = hit
    return found


def running_median(series, window):
    """Centred running median along axis 0, series reflected at both ends.

    Windows of 3 and 5 use min/max selection networks (~5x faster than
    bottleneck's ``move_median``); NaN propagates.

    Parameters
    ----------
    series : ndarray (n, ...)
    window : int
        Odd width, at most n.

    Returns
    -------
    ndarray, same shape
    """
    half = window // 2
    padded = np.concatenate([series[half:0:-1], series, series[-2 : -half - 2 : -1]])
    n = series.shape[0]
    views = [padded[k : k + n] for k in range(window)]
    if window == 3:
        return _median3(*views)
    if window == 5:
        a, b, c, d, e = views
        f = np.maximum(np.minimum(a, b), np.minimum(c, d))
        g = np.minimum(np.maximum(a, b), np.maximum(c, d))
        return _median3(e, f, g)
    return bn.move_median(padded, window, axis=0)[window - 1 :]


def _median3(x, y, z):
    return np.maximum(np.minimum(x, y), np.minimum(np.maximum(x, y), z))


def _median_without(block, hit, t, y, x, half):
    """Median of the window around each hit (t, y, x), other hits excluded."""
    offsets = np.arange(-half, half + 1)
    tt = np.abs(t[:, None] + offsets)  # reflected at the start
    last = block.shape[0] - 1
    tt = np.where(tt > last, 2 * last - tt, tt)
    values = block[tt, y[:, None], x[:, None]]
    values[hit[tt, y[:, None], x[:, None]]] = np.nan
    with np.errstate(all="ignore"):
        return bn.nanmedian(values, axis=1)
