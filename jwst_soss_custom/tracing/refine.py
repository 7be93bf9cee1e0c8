"""Traces refined on the data, trace-stability regressors, order-0 contaminants.

Pure numpy/scipy: arrays in, arrays out. The deep frame (median over time)
fixes the static geometry: a global shift of each pastasoss trace plus a
smooth residual, and the field-star order 0s. Each integration is then
compared with the deep frame to measure how order 1 moved and widened.
"""

import logging

import bottleneck as bn
import numpy as np
from scipy import ndimage

from jwst_soss_custom._base.dq import usable

__all__ = [
    "column_centroids",
    "fit_trace_offset",
    "stability_regressors",
    "detect_order0",
    "core_mask",
    "refine_solution",
    "REGRESSOR_DTYPE",
]

log = logging.getLogger(__name__)

#: Row layout of the trace-stability regressors (one row per integration).
REGRESSOR_DTYPE = np.dtype([("int_num", "i4"), ("dx", "f8"), ("dy", "f8"), ("dwidth", "f8")])


def _window_weights(centre, width, ny):
    """Fraction of each pixel (ny, ncols) inside ``centre +- width/2``."""
    rows = np.arange(ny)[:, None]
    low = np.maximum(rows - 0.5, centre[None, :] - width / 2)
    high = np.minimum(rows + 0.5, centre[None, :] + width / 2)
    return np.clip(high - low, 0.0, 1.0)


def column_centroids(image, columns, guess, width=50.0, side=8.0, n_iter=8):
    """Flux-weighted centroid of the trace in each column, window re-centred.

    The window has fractional edges and is re-centred on the previous
    estimate, so the result does not depend on the sub-pixel phase. A
    straight line through the mean levels of two side bands (``side`` rows
    beyond each window edge) is subtracted first, so that a sloping
    background (the wings of a neighbouring order) does not pull the
    centroid. The window must hold the whole profile core (it is ~34 px wide
    at 5 % of the peak): a narrower window truncates the asymmetric core and
    biases the centroid by 0.1-0.3 px.

    Parameters
    ----------
    image : ndarray (ny, nx)
        Deep frame (NaN = unusable; treated as 0 weight).
    columns : ndarray of int (ncols,)
    guess : ndarray (ncols,)
        Starting centre (e.g. pastasoss).
    width : float
        Full window width in pixels.
    side : float
        Width of each side band used for the local background.
    n_iter : int
        Re-centring iterations.

    Returns
    -------
    centre : ndarray (ncols,)
        NaN where the window holds no positive flux.
    flux : ndarray (ncols,)
        Background-subtracted flux in the final window (a weight for fits).
    """
    ny = image.shape[0]
    sub = np.nan_to_num(image[:, columns].astype(np.float64))
    rows = np.arange(ny, dtype=float)[:, None]
    centre = np.asarray(guess, float).copy()
    flux = np.zeros_like(centre)
    half = width / 2 + side / 2
    for _ in range(n_iter):
        level = []
        for offset in (-half, half):
            w = _window_weights(centre + offset, side, ny)
            with np.errstate(invalid="ignore", divide="ignore"):
                level.append((w * sub).sum(axis=0) / w.sum(axis=0))
        low, high = (np.nan_to_num(v) for v in level)
        background = low + (high - low) * (rows - centre + half) / (2 * half)
        w = _window_weights(centre, width, ny) * (sub - background)
        flux = w.sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            centre = np.where(flux > 0, (w * rows).sum(axis=0) / flux, np.nan)
        centre = np.where(np.isfinite(centre), centre, guess)
    return centre, flux


def fit_trace_offset(columns, centroid, weight, model_x, model_y, degree=2, clip=4.0, n_iter=5,
                     dx=0.0):
    """Offset of a model trace plus a smooth residual, fitted to centroids.

    The model is ``y(c) = y_model(c - dx) + dy + poly(c)`` where ``poly`` has
    no constant or linear term when ``degree < 2`` (only the offset). The
    along-trace shift ``dx`` is *given*, not fitted: over most of order 1 the
    trace is nearly straight, so a shift along it changes ``y`` almost as
    ``dy`` does and a fit of both wanders along that direction (several
    pixels) without improving the fit. The along-trace shift is the spectral
    shift the wavelength check measures (or 0, pastasoss's). Outlier columns
    (order 0s, overlap, bad columns) are clipped at ``clip`` robust sigma.

    Parameters
    ----------
    columns : ndarray of int
    centroid, weight : ndarray
        Measured centres and their weights (e.g. flux in the window).
    model_x, model_y : ndarray
        The model trace (x increasing).
    degree : int
        Degree of the residual polynomial (0 or 1 = offset only; its
        constant term is ``dy``, a linear term would be degenerate with it
        and the trace's own slope).
    clip : float
        Rejection threshold in robust standard deviations.
    n_iter : int
        Clipping iterations.
    dx : float
        Along-trace shift (pixels) of the model.

    Returns
    -------
    y_fit : callable
        ``y_fit(c)`` for any columns.
    record : dict
        ``dx`` (as given), ``dy`` (pixels), ``rms`` of the residual,
        ``n_used`` columns.
    """
    c = np.asarray(columns, float)
    good = np.isfinite(centroid) & (weight > 0)
    scale = 1024.0
    powers = np.arange(2, degree + 1)

    def model(cols, dy, coef):
        base = np.interp(cols - dx, model_x, model_y, left=np.nan, right=np.nan) + dy
        u = (np.asarray(cols, float) - scale) / scale
        return base + (u[:, None] ** powers[None, :] @ coef if coef.size else 0.0)

    base = model(c, 0.0, np.zeros(powers.size))
    u = (c - scale) / scale
    design = np.column_stack([np.ones_like(c), u[:, None] ** powers[None, :]])
    params = np.zeros(1 + powers.size)
    for _ in range(n_iter):
        use = good & np.isfinite(base)
        sw = np.sqrt(weight[use])
        params = np.linalg.lstsq(design[use] * sw[:, None], (centroid - base)[use] * sw,
                                 rcond=None)[0]
        resid = centroid - base - design @ params
        sigma = 1.4826 * np.nanmedian(np.abs(resid[use] - np.nanmedian(resid[use])))
        good = np.isfinite(centroid) & (weight > 0) & (np.abs(resid) <= clip * max(sigma, 1e-3))
    dy, coef = float(params[0]), params[1:]
    record = {
        "dx": float(dx),
        "dy": dy,
        "rms": float(np.sqrt(np.nanmean(resid[good] ** 2))),
        "n_used": int(good.sum()),
    }
    return (lambda cols: model(np.asarray(cols, float), dy, coef)), record


def core_mask(traces, shape, halfwidth):
    """Pixels within ``halfwidth`` rows of any trace centre.

    Parameters
    ----------
    traces : iterable of ndarray (nx,)
        Trace centre per detector column (NaN off the detector).
    shape : tuple of int
    halfwidth : float

    Returns
    -------
    ndarray of bool (ny, nx)
    """
    rows = np.arange(shape[0])[:, None]
    mask = np.zeros(shape, bool)
    for y in traces:
        centre = np.where(np.isfinite(y), y, -1e6)[None, :]
        mask |= np.abs(rows - centre) <= halfwidth
    return mask


def detect_order0(image, noise, cores, threshold=5.0, window=41, min_pixels=6, grow=2, edge=4):
    """Field-star order-0 contaminants on a deep frame or an F277W image.

    The smooth scene (traces, background) is removed with a running median
    along the rows; contaminants are groups of at least ``min_pixels``
    connected pixels more than ``threshold`` sigma above it, outside the
    trace cores (where the profile's own structure would dominate). Each
    contaminant's bounding box, grown by ``grow`` pixels, is masked, so the
    part hidden under a trace core is masked too.

    Parameters
    ----------
    image : ndarray (ny, nx)
        Deep frame (DN/s); NaN = unusable.
    noise : ndarray (ny, nx) or float
        1-sigma noise of ``image``.
    cores : ndarray of bool (ny, nx)
        Trace cores, excluded from the detection.
    threshold : float
        Detection threshold in sigma.
    window : int
        Running-median length along the rows (pixels, odd); longer than a
        contaminant is wide along the rows is not needed, only longer than
        its bright core.
    min_pixels : int
        Minimum number of pixels above threshold (single hot pixels and
        cosmic-ray residuals are not contaminants).
    grow : int
        Pixels added around each contaminant's bounding box.
    edge : int
        Reference columns at each side (no light; excluded from the median).

    Returns
    -------
    mask : ndarray of bool (ny, nx)
        True on contaminant pixels.
    catalog : list of dict
        ``x``, ``y`` (peak position), ``peak`` (DN/s above the scene),
        ``npix`` per contaminant.
    """
    img = np.nan_to_num(np.asarray(image, np.float32))
    # The running median stops at the reference columns (no light there).
    smooth = np.zeros_like(img)
    sci = slice(edge, img.shape[1] - edge)
    smooth[:, sci] = ndimage.median_filter(img[:, sci], size=(1, window), mode="nearest")
    with np.errstate(invalid="ignore", divide="ignore"):
        snr = (img - smooth) / noise
    snr = np.where(cores | ~np.isfinite(snr), 0.0, snr)
    snr[:, :edge] = snr[:, img.shape[1] - edge :] = 0.0
    # Seeds above the threshold, grown through connected pixels above half of it.
    labels, n = ndimage.label(snr > threshold / 2)
    mask = np.zeros(img.shape, bool)
    catalog = []
    if n == 0:
        return mask, catalog
    strong = ndimage.sum_labels(snr > threshold, labels, np.arange(1, n + 1))
    slices = ndimage.find_objects(labels)
    ny, nx = img.shape
    for k in np.flatnonzero(strong >= min_pixels):
        sy, sx = slices[k]
        box = (slice(max(sy.start - grow, 0), min(sy.stop + grow, ny)),
               slice(max(sx.start - grow, 0), min(sx.stop + grow, nx)))
        mask[box] = True
        member = labels[sy, sx] == k + 1
        resid = np.where(member, img[sy, sx] - smooth[sy, sx], -np.inf)
        iy, ix = np.unravel_index(np.argmax(resid), resid.shape)
        catalog.append({"x": int(sx.start + ix), "y": int(sy.start + iy),
                        "peak": float(resid[iy, ix]), "npix": int(member.sum())})
    return mask, catalog


def stability_regressors(data, dq, deep, trace_y, columns, halfwidth=15.0, exclude=None,
                         int_start=1, clip=5.0, chunk=2):
    """Per-integration x shift, y shift and relative width change of one order.

    Each integration is fitted, over the pixels of the order's core, as a
    linear combination of the deep frame and its derivatives:
    ``d = a [D - dx dD/dx - dy dD/dy - dw (D + (y - yc) dD/dy)]``, the first-order
    expansion of the deep frame shifted by (dx, dy) and stretched by
    ``1 + dw`` about the trace centre ``yc`` (flux kept). Weights are Poisson
    (``1 / D``); pixels unusable in an integration are left out, and pixels
    more than ``clip`` sigma from the first fit (cosmic rays) are rejected
    once.

    Parameters
    ----------
    data : ndarray (nints, ny, nx)
    dq : ndarray of uint32, same shape
    deep : ndarray (ny, nx)
        Deep frame (background-subtracted or not: the background is
        nearly flat across a trace core).
    trace_y : ndarray (nx,)
        Refined trace centre of the order per detector column.
    columns : ndarray of int
        Columns of the order to use.
    halfwidth : float
        Rows either side of the centre used.
    exclude : ndarray of bool (ny, nx), optional
        Pixels never used (order 0s, reference pixels).
    int_start : int
        Integration number of the first row.
    clip : float
        Outlier threshold (sigma).
    chunk : int
        Integrations processed at a time: two keep the temporaries in the
        CPU cache (measured ~2x faster than 32).

    Returns
    -------
    ndarray of `REGRESSOR_DTYPE` (nints,)
        ``dx``, ``dy`` in pixels and ``dwidth`` relative (0.01 = 1 % wider),
        relative to the deep frame.
    """
    nints, ny, nx = data.shape
    yc = trace_y[columns]
    rows = np.arange(ny, dtype=float)[:, None]
    inside = np.abs(rows - yc[None, :]) <= halfwidth
    if exclude is not None:
        inside &= ~exclude[:, columns]
    deep64 = deep.astype(np.float64)
    ddx = np.gradient(deep64, axis=1)[:, columns]
    ddy = np.gradient(deep64, axis=0)[:, columns]
    d0 = deep64[:, columns]
    inside &= np.isfinite(d0) & np.isfinite(ddx) & np.isfinite(ddy) & (d0 > 0)
    r_idx, c_idx = np.nonzero(inside)
    pix_rows, pix_cols = r_idx, columns[c_idx]
    dist = (rows[:, 0][r_idx] - yc[c_idx])
    d = d0[r_idx, c_idx]
    design = np.column_stack([
        d,
        -ddx[r_idx, c_idx],
        -ddy[r_idx, c_idx],
        -(d + dist * ddy[r_idx, c_idx]),
    ])
    weight = 1.0 / d
    outer = (design[:, :, None] * design[:, None, :]).reshape(-1, 16)
    out = np.zeros(nints, REGRESSOR_DTYPE)
    out["int_num"] = np.arange(int_start, int_start + nints)
    for start in range(0, nints, chunk):
        stop = min(start + chunk, nints)
        values = data[start:stop][:, pix_rows, pix_cols].astype(np.float64)
        ok = usable(values, dq[start:stop][:, pix_rows, pix_cols])
        values = np.where(ok, values, 0.0)
        for _ in range(2):
            w = ok * weight[None, :]
            # Both as BLAS matrix products: sum_p w_ip X_pk X_pl = w @ (X_k X_l).
            normal = (w @ outer).reshape(-1, 4, 4)
            rhs = (w * values) @ design
            # An integration without usable pixels (flagged whole by
            # soss_badpix) has no regressors: NaN, masked downstream.
            solvable = ok.sum(axis=1) > design.shape[1]
            beta = np.full(rhs.shape, np.nan)
            beta[solvable] = np.linalg.solve(normal[solvable], rhs[solvable][..., None])[..., 0]
            # Noise ~ sqrt(D) up to a factor (gain x time) measured robustly here.
            z = (values - beta @ design.T) / np.sqrt(d)[None, :]
            zmasked = np.where(ok, np.abs(z), np.nan)
            sigma = 1.4826 * bn.nanmedian(zmasked, axis=1)[:, None]
            with np.errstate(invalid="ignore"):
                ok &= np.abs(z) <= clip * sigma
        scale = beta[:, 0]
        out["dx"][start:stop] = beta[:, 1] / scale
        out["dy"][start:stop] = beta[:, 2] / scale
        out["dwidth"][start:stop] = beta[:, 3] / scale
    return out


def refine_solution(deep, solution, width=60.0, isolation=20.0, side=8.0, degree=0,
                    edge_rows=4, dx=None):
    """Refine every order of a predicted solution on the deep frame.

    Centroids are measured only in columns where the order is isolated (no
    other order within ``width / 2 + isolation`` rows, the window fully on
    science rows), then `fit_trace_offset` fits pastasoss's trace, moved
    along itself by the order's ``dx``, offset by ``dy`` (plus an optional
    smooth residual), and the fit is evaluated in every column.

    Parameters
    ----------
    deep : ndarray (ny, nx)
        Deep frame (background-subtracted preferably).
    solution : `~jwst_soss_custom.tracing.TraceSolution`
        pastasoss prediction.
    width, side : float
        Centroid window and side-band widths (see `column_centroids`).
    isolation : float
        Extra clearance (rows) from any other order.
    degree : int
        Residual polynomial degree (0: global shift only).
    edge_rows : int
        Reference rows at the top of the frame.
    dx : dict of int to float, optional
        Along-trace shift of each order (pixels; the applied wavelength
        shift); 0 (pastasoss's) for orders not given.

    Returns
    -------
    `~jwst_soss_custom.tracing.TraceSolution`
        New solution; each order's ``record`` holds ``dx`` (as given), ``dy``
        (offset from pastasoss, pixels), ``rms`` (column scatter about the
        fit) and ``n_used``.
    """
    from .tracing import OrderTrace, TraceSolution, model_trace

    ny, nx = deep.shape
    refined = TraceSolution(solution.pwcpos, source="pastasoss+refined",
                            record=dict(solution.record))
    for order, trace in solution.orders.items():
        cols = trace.columns
        y = trace.y[cols]
        half = width / 2 + side
        ok = (cols >= 4) & (cols < nx - 4) & (y - half >= 0) & (y + half <= ny - 1 - edge_rows)
        for other, other_trace in solution.orders.items():
            if other != order:
                gap = np.abs(np.nan_to_num(other_trace.y[cols], nan=1e6) - y)
                ok &= gap > width / 2 + isolation
        if ok.sum() < 50:
            raise ValueError(
                f"Order {order}: only {ok.sum()} isolated columns to refine the trace on; "
                "lower 'refine_width' or 'refine_isolation', or set refine=False."
            )
        centre, flux = column_centroids(deep, cols[ok], y[ok], width, side)
        mx, my, _ = model_trace(solution.pwcpos, order)
        y_fit, record = fit_trace_offset(cols[ok], centre, flux, mx, my, degree=degree,
                                         dx=(dx or {}).get(order, 0.0))
        new_y = np.full(nx, np.nan)
        new_y[cols] = y_fit(cols)
        log.info(
            "Order %d: trace offset from pastasoss dy=%+.3f px along dx=%+.3f px "
            "(%d isolated columns, residual rms %.3f px)",
            order, record["dy"], record["dx"], record["n_used"], record["rms"],
        )
        refined.orders[order] = OrderTrace(order, new_y, trace.wavelength.copy(),
                                           {**trace.record, **record})
    return refined
