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

from jwst_soss_custom._base.dq import FLAGS, usable

__all__ = [
    "box_weights",
    "box_extract",
    "aperture_rows",
    "window_weights",
    "aperture_profile",
    "masked_box_extract",
    "optimal_extract",
    "white_light_scatter",
    "static_flux",
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
        # In place: a temporary of the chunk's size costs about as much as an einsum.
        sci[~ok] = 0.0
        sig[~(ok & np.isfinite(sig))] = np.inf
        # sci is 0 where not ok: the same terms as summing ok * sci.
        num = np.einsum("iyx,yx->ix", sci, base)
        den = np.einsum("iyx,yx->ix", ok, profile * base)
        with np.errstate(invalid="ignore", divide="ignore"):
            f = num / den
        if n_iter > 0:
            n_rejected += _reject_outliers(sci, sig, ok, profile, base, f, den, clip, n_iter)
        flux[start:stop] = f
        # sig no longer needed: square it in place (0 where not ok).
        np.square(sig, out=sig)
        sig[~ok] = 0.0
        var_out[start:stop] = np.einsum("iyx,yx->ix", sig, base**2)
        # den is 0 in a column masked whole (e.g. under an order 0): lost below.
        with np.errstate(invalid="ignore", divide="ignore"):
            var_out[start:stop] /= den**2
        coverage[start:stop] = np.einsum("iyx,yx->ix", ok, profile * weights)
    lost = ~(coverage >= min_coverage)
    flux[lost] = np.nan
    error = np.where(lost, np.nan, np.sqrt(var_out))
    dq_out = np.where(lost, _DO_NOT_USE, np.uint32(0)).astype(np.uint32)
    return flux, error, dq_out, n_rejected


def _reject_outliers(sci, sig, ok, profile, base, f, den, clip, n_iter):
    """Reject the worst pixel of each column per pass, up to ``n_iter`` passes.

    Only the pairs (integration, column) with a pixel beyond ``clip`` are
    worked on, and in later passes only those that lost a pixel: a column's
    flux changes only when one of its pixels is rejected, so a column with no
    rejection in one pass has none in the next.

    Parameters
    ----------
    sci, sig : ndarray (n, nw, ncols)
        Data (0 where not ok) and errors (inf where not ok) of a chunk.
    ok : ndarray of bool (n, nw, ncols)
        Usable pixels; rejected pixels are set False in place.
    profile, base : ndarray (nw, ncols)
        Spatial profile and numerator weights ``w P / V``.
    f, den : ndarray (n, ncols)
        Flux and denominator ``sum(ok P base)``, updated in place.
    clip : float
    n_iter : int

    Returns
    -------
    int
        Pixels rejected.
    """
    # |D - F P| / sig over the chunk, with one temporary.
    with np.errstate(invalid="ignore", divide="ignore"):
        resid = f[:, None, :] * profile
        np.subtract(sci, resid, out=resid)
        np.abs(resid, out=resid)
        np.divide(resid, sig, out=resid)
    # A max along the rows (cheap, unlike an argmax over a non-last axis)
    # finds the few pairs worth a look; NaN (no flux) is never beyond clip.
    ii, xx = np.nonzero(np.max(resid, axis=1, where=ok, initial=-1.0) > clip)
    del resid
    # Those pairs as (pair, row) arrays: contiguous rows, so each pair's sums
    # run in the same order whichever other pairs are recomputed with it.
    s, e, k = sci[ii, :, xx], sig[ii, :, xx], ok[ii, :, xx]
    profile_t, base_t = np.ascontiguousarray(profile.T), np.ascontiguousarray(base.T)
    fp = f[ii, xx]
    n_rejected = 0
    for _ in range(n_iter):
        p = profile_t[xx]
        with np.errstate(invalid="ignore", divide="ignore"):
            r = np.abs(s - fp[:, None] * p) / e
        r[~k] = -1.0
        # Reject only the worst pixel of each column per pass (Horne): a
        # bright outlier inflates F and can make good pixels look bad.
        worst = np.argmax(r, axis=1)
        pick = np.arange(worst.size)
        reject = k[pick, worst] & (r[pick, worst] > clip)
        if not reject.any():
            break
        ii, xx, worst, s, e, k, p = (a[reject] for a in (ii, xx, worst, s, e, k, p))
        k[np.arange(worst.size), worst] = False
        ok[ii, worst, xx] = False
        n_rejected += worst.size
        b = base_t[xx]
        den[ii, xx] = dp = (k * p * b).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            f[ii, xx] = fp = (k * s * b).sum(axis=1) / dp
    return n_rejected


def static_flux(image, rows, columns, weights, profile, variance=None):
    """The flux a fixed image adds to each column's extraction.

    The same weights as the extraction of the data, without the per-integration
    outlier rejection: ``sum(w C)`` for the box, ``sum(w P C / V) / sum(w P^2
    / V)`` for the optimal extraction (``variance`` given).

    Parameters
    ----------
    image : ndarray (ny, nx)
        E.g. the light of the field stars' traces (DN/s).
    rows : ndarray of int (nw, ncols)
    columns : ndarray of int (ncols,)
    weights : ndarray (nw, ncols)
        Aperture weights of the extraction (0 on excluded pixels).
    profile : ndarray (nw, ncols)
        The extraction's spatial profile (`aperture_profile`).
    variance : ndarray (nw, ncols), optional
        The optimal extraction's fixed variance; None for the box.

    Returns
    -------
    ndarray (ncols,)
    """
    values = np.nan_to_num(np.asarray(image, float)[rows, columns[None, :]])
    if variance is None:
        return (weights * values).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        inv_var = np.where((variance > 0) & np.isfinite(variance), 1.0 / variance, 0.0)
        base = weights * profile * inv_var
        den = (profile * base).sum(axis=0)
        return np.where(den > 0, (base * values).sum(axis=0) / den, 0.0)


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
