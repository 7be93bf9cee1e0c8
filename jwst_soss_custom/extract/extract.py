"""Box and optimal (profile-weighted) extraction along a trace (pure numpy).

Both work in an aperture of full width ``width`` centred on the trace, with
fractional edge pixels so the flux changes smoothly when the trace moves:

* **box**: the weighted sum of the aperture; pixels that cannot be used
  (unusable in an integration, order-0 contaminants, another order's core)
  are replaced by the deep-frame profile scaled to the rest of the column;
* **optimal** (Horne 1986): ``F = sum(P D / V) / sum(P^2 / V)`` with the
  spatial profile ``P`` of the deep frame and a fixed per-pixel variance
  ``V`` (median ERR^2), so the weights never correlate with an
  integration's own noise; outlier pixels are rejected iteratively.

The cube is read in chunks of integrations, gathering only each column's
aperture rows.
"""

import numpy as np

from jwst_soss_custom.dq import FLAGS, usable

__all__ = [
    "box_weights",
    "box_extract",
    "aperture_rows",
    "window_weights",
    "aperture_profile",
    "masked_box_extract",
    "optimal_extract",
    "white_light_scatter",
]

_DO_NOT_USE = np.uint32(FLAGS["DO_NOT_USE"])


def box_weights(centre, width, ny):
    """Fraction of each pixel inside a band of full width ``width`` around ``centre``.

    Parameters
    ----------
    centre : ndarray (ncols,)
        Trace centre (row, pixel centres at integers) of each extracted column.
    width : float
        Full width of the aperture in pixels.
    ny : int
        Number of detector rows.

    Returns
    -------
    ndarray (ny, ncols) of float64
        Weights between 0 and 1.
    """
    return window_weights(np.arange(ny)[:, None], True, np.asarray(centre, float), width)


def box_extract(data, err, dq, columns, weights, chunk=64):
    """Weighted column sums of a cube (unusable pixel -> NaN element).

    The simple full-frame form of the box (no profile filling); the step uses
    `masked_box_extract`.

    Parameters
    ----------
    data, err : ndarray (nints, ny, nx)
    dq : ndarray of uint32 (nints, ny, nx)
    columns : ndarray of int (ncols,)
        Detector columns to extract.
    weights : ndarray (ny, ncols)
        Aperture weights of those columns (see `box_weights`).
    chunk : int
        Integrations processed at a time (bounds temporary memory).

    Returns
    -------
    flux, flux_error : ndarray (nints, ncols) of float64
        NaN where a pixel inside the aperture was unusable.
    dq_out : ndarray (nints, ncols) of uint32
        DO_NOT_USE where the flux is NaN.
    """
    rows = np.flatnonzero(weights.any(axis=1))
    band = slice(rows.min(), rows.max() + 1)
    w = weights[band]
    nints = data.shape[0]
    flux = np.empty((nints, columns.size))
    var = np.empty_like(flux)
    missing = np.zeros(flux.shape, bool)
    for start in range(0, nints, chunk):
        stop = min(start + chunk, nints)
        sci = data[start:stop, band][:, :, columns]
        sig = err[start:stop, band][:, :, columns]
        ok = usable(sci, dq[start:stop, band][:, :, columns])
        flux[start:stop] = np.einsum("iyx,yx->ix", np.where(ok, sci, 0.0), w)
        var[start:stop] = np.einsum("iyx,yx->ix", np.where(ok, sig, 0.0) ** 2, w**2)
        missing[start:stop] = np.einsum("iyx,yx->ix", ~ok, w > 0) > 0
    flux[missing] = np.nan
    var[missing] = np.nan
    dq_out = np.where(missing, _DO_NOT_USE, np.uint32(0)).astype(np.uint32)
    return flux, np.sqrt(var), dq_out


def aperture_rows(centre, halfwidth, ny):
    """Detector rows around each column's centre, and which are on the detector.

    Parameters
    ----------
    centre : ndarray (ncols,)
    halfwidth : float
        Largest half-width that will be used (rows beyond it are not gathered).
    ny : int

    Returns
    -------
    rows : ndarray of int (nw, ncols)
        Row indices, clipped to the detector.
    valid : ndarray of bool (nw, ncols)
        False where the unclipped row falls off the detector.
    """
    reach = int(np.ceil(halfwidth)) + 1
    raw = np.floor(centre).astype(int)[None, :] + np.arange(-reach, reach + 2)[:, None]
    return np.clip(raw, 0, ny - 1), (raw >= 0) & (raw < ny)


def window_weights(rows, valid, centre, width):
    """Fractional weights (nw, ncols) of a full width ``width`` at gathered rows."""
    if width <= 0:
        raise ValueError(f"Aperture width must be positive, got {width}.")
    low = np.maximum(rows - 0.5, centre[None, :] - width / 2)
    high = np.minimum(rows + 0.5, centre[None, :] + width / 2)
    return np.clip(high - low, 0.0, 1.0) * valid


def aperture_profile(deep, rows, columns, weights):
    """Spatial profile from the deep frame, normalised to 1 in the aperture.

    Parameters
    ----------
    deep : ndarray (ny, nx)
        Deep frame (background-subtracted, NaN = unusable).
    rows : ndarray of int (nw, ncols)
    columns : ndarray of int (ncols,)
    weights : ndarray (nw, ncols)
        Aperture weights.

    Returns
    -------
    ndarray (nw, ncols)
        ``P >= 0`` with ``sum(weights * P) = 1`` per column; NaN pixels of
        the deep frame get the mean of their row neighbours in the aperture
        so the profile has no holes.
    """
    values = deep[rows, columns[None, :]].astype(np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        pair = np.stack([np.roll(values, 1, axis=1), np.roll(values, -1, axis=1)])
        count = np.isfinite(pair).sum(axis=0)
        mean = np.nansum(pair, axis=0) / np.maximum(count, 1)
        values = np.where(bad, np.where(count > 0, mean, 0.0), values)
    profile = np.clip(np.nan_to_num(values), 0.0, None) * (weights > 0)
    norm = (weights * profile).sum(axis=0)
    return profile / np.where(norm > 0, norm, 1.0)[None, :]


def _gather(cube, start, stop, rows, columns):
    return cube[start:stop][:, rows, columns[None, :]]


def masked_box_extract(data, err, dq, columns, rows, weights, profile, min_coverage=0.5,
                       chunk=32):
    """Box extraction for one or several widths, filling unusable pixels from the profile.

    ``F = sum_ok(w D) * sum(w P) / sum_ok(w P)``: pixels unusable in an
    integration count as the profile scaled to the usable ones. Pixels never
    to be used (order 0s, another order's core) must have zero weight.

    Parameters
    ----------
    data, err : ndarray (nints, ny, nx)
    dq : ndarray of uint32 (nints, ny, nx)
    columns : ndarray of int (ncols,)
    rows : ndarray of int (nw, ncols)
        Gathered aperture rows (`aperture_rows`).
    weights : ndarray (nwidth, nw, ncols)
        Box weights of each width (`window_weights`, 0 on excluded pixels).
    profile : ndarray (nw, ncols)
        Spatial profile (`aperture_profile`).
    min_coverage : float
        Smallest profile fraction of the box that must be usable; below it
        the element is NaN and DO_NOT_USE.
    chunk : int
        Integrations per chunk.

    Returns
    -------
    flux, flux_error : ndarray (nints, nwidth, ncols)
    dq_out : ndarray of uint32 (nints, nwidth, ncols)
    n_filled : ndarray of int (nwidth,)
        Elements that needed profile filling.
    """
    nints = data.shape[0]
    shape = (nints, weights.shape[0], columns.size)
    flux = np.empty(shape)
    var = np.empty(shape)
    coverage = np.empty(shape)
    wp_all = np.einsum("wyx,yx->wx", weights, profile)
    for start in range(0, nints, chunk):
        stop = min(start + chunk, nints)
        sci = _gather(data, start, stop, rows, columns)
        ok = usable(sci, _gather(dq, start, stop, rows, columns))
        sig = np.where(ok, _gather(err, start, stop, rows, columns), 0.0)
        sci = np.where(ok, sci, 0.0)
        flux[start:stop] = np.einsum("iyx,wyx->iwx", sci, weights)
        var[start:stop] = np.einsum("iyx,wyx->iwx", sig**2, weights**2)
        coverage[start:stop] = np.einsum("iyx,wyx->iwx", ok * profile[None], weights)
    with np.errstate(invalid="ignore", divide="ignore"):
        scale = wp_all[None] / coverage
    lost = ~(coverage >= min_coverage * wp_all[None])
    n_filled = ((scale > 1 + 1e-9) & ~lost).sum(axis=(0, 2))
    flux = np.where(lost, np.nan, flux * scale)
    error = np.where(lost, np.nan, np.sqrt(var) * scale)
    dq_out = np.where(lost, _DO_NOT_USE, np.uint32(0)).astype(np.uint32)
    return flux, error, dq_out, n_filled


def optimal_extract(data, err, dq, columns, rows, weights, profile, variance,
                    clip=5.0, n_iter=3, min_coverage=0.5, chunk=32):
    """Profile-weighted (Horne) extraction with iterative outlier rejection.

    Parameters
    ----------
    data, err : ndarray (nints, ny, nx)
    dq : ndarray of uint32 (nints, ny, nx)
    columns : ndarray of int (ncols,)
    rows : ndarray of int (nw, ncols)
    weights : ndarray (nw, ncols)
        Aperture weights (which pixels, and edge fractions; 0 on pixels never
        to be used: order 0s, another order's core).
    profile : ndarray (nw, ncols)
        Spatial profile normalised in the aperture (`aperture_profile`).
    variance : ndarray (nw, ncols)
        Fixed per-pixel variance (e.g. median ERR^2 over time).
    clip : float
        A pixel more than ``clip`` sigma (its ERR) from ``F P`` is rejected
        and the flux re-estimated, up to ``n_iter`` times.
    n_iter : int
    min_coverage : float
        Smallest usable profile fraction (else NaN, DO_NOT_USE).
    chunk : int

    Returns
    -------
    flux, flux_error : ndarray (nints, ncols)
    dq_out : ndarray of uint32 (nints, ncols)
    n_rejected : int
        Outlier pixels rejected in total.
    """
    nints = data.shape[0]
    flux = np.empty((nints, columns.size))
    var_out = np.empty_like(flux)
    coverage = np.empty_like(flux)
    n_rejected = 0
    with np.errstate(invalid="ignore", divide="ignore"):
        inv_var = np.where((variance > 0) & np.isfinite(variance), 1.0 / variance, 0.0)
    base = weights * profile * inv_var  # weight of D in the numerator
    for start in range(0, nints, chunk):
        stop = min(start + chunk, nints)
        sci = _gather(data, start, stop, rows, columns).astype(np.float64)
        sig = _gather(err, start, stop, rows, columns).astype(np.float64)
        ok = usable(sci, _gather(dq, start, stop, rows, columns)) & (weights > 0)
        sci = np.where(ok, sci, 0.0)
        sig = np.where(ok & np.isfinite(sig), sig, np.inf)
        for iteration in range(n_iter + 1):
            num = np.einsum("iyx,yx->ix", ok * sci, base)
            den = np.einsum("iyx,yx->ix", ok * profile[None], base)
            with np.errstate(invalid="ignore", divide="ignore"):
                f = num / den
            if iteration == n_iter:
                break
            resid = np.abs(sci - f[:, None, :] * profile[None]) / sig
            # Reject only the worst pixel of each column per pass (Horne):
            # a bright outlier inflates F and can make good pixels look bad.
            worst = np.argmax(np.where(ok, resid, -1.0), axis=1)
            worst_value = np.take_along_axis(resid, worst[:, None, :], axis=1)[:, 0]
            reject = ok & (np.arange(ok.shape[1])[None, :, None] == worst[:, None, :]) & (
                worst_value[:, None, :] > clip)
            if not reject.any():
                break
            n_rejected += int(reject.sum())
            ok &= ~reject
        flux[start:stop] = f
        var_out[start:stop] = np.einsum("iyx,yx->ix", ok * np.where(ok, sig, 0.0) ** 2, base**2)
        var_out[start:stop] /= den**2
        coverage[start:stop] = np.einsum("iyx,yx->ix", ok * profile[None], weights)
    lost = ~(coverage >= min_coverage)
    flux[lost] = np.nan
    error = np.where(lost, np.nan, np.sqrt(var_out))
    dq_out = np.where(lost, _DO_NOT_USE, np.uint32(0)).astype(np.uint32)
    return flux, error, dq_out, n_rejected


def white_light_scatter(flux):
    """Point-to-point scatter of the normalised white light (robust).

    ``1.4826 MAD(diff(w / median(w))) / sqrt(2)``: insensitive to the slow
    transit shape, so it ranks apertures by noise.

    Parameters
    ----------
    flux : ndarray (nints, ..., ncols)
        Extracted flux; columns are summed (NaN columns ignored).

    Returns
    -------
    ndarray (...)
    """
    white = np.nansum(flux, axis=-1)
    white = white / np.median(white, axis=0)
    diff = np.diff(white, axis=0)
    return 1.4826 * np.median(np.abs(diff - np.median(diff, axis=0)), axis=0) / np.sqrt(2)
