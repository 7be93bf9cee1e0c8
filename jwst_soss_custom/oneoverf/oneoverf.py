"""Column-wise 1/f noise removal (pure numpy).

SOSS reads its columns along the fast axis, so 1/f noise shows as an offset
per column and integration. Every method models the star with the deep
(median) frame, scaled in time, and takes each column's offset from what is
left outside the traces:

``median``
    the STScI notebook's: deep frame x smoothed white-light curve, plain
    median of each column.
``scale-achromatic``
    deep frame x white-light curve of every integration, inverse-variance
    weighted mean of each column after clipping outliers.
``scale-chromatic``
    as ``scale-achromatic`` with one light curve per column (the trace flux
    of the column relative to the deep frame, smoothed along the columns so
    the 1/f offset of the column itself does not enter it).
``window``
    the chromatic star model; each order's pixels are corrected with the
    offset measured only between an inner and an outer width around that
    order (1/f that varies along a column is then followed order by order).
``solve``
    per column and integration, a joint weighted least-squares fit of the
    deep frame's scale and the offset over the whole column (traces
    included: they fix the scale).
``project``
    as ``scale-achromatic`` for the background, plus what optimal-weighted
    ramp fitting makes of the same 1/f in bright pixels: each pixel's offset
    is ``beta x`` the background's plus ``gamma x psi``, ``psi`` fitted on
    the traces with a free star scale per column and kept where its power
    along the columns exceeds the noise (`~jwst_soss_custom.oneoverf.projection`).

Weights are the inverse of the time-median ERR^2 of each pixel: a noiseless
estimate of its variance, unlike the ERR of one integration, which would
favour pixels that fluctuated low.
"""

import logging
from dataclasses import dataclass

import bottleneck as bn
import numpy as np
from scipy.ndimage import median_filter

from jwst_soss_custom._base.dq import FLAGS, usable

from . import projection as proj

__all__ = [
    "METHODS",
    "trace_mask",
    "window_regions",
    "pixel_weights",
    "white_light_scaling",
    "chromatic_scaling",
    "column_offsets",
    "weighted_offsets",
    "solve_offsets",
    "Projection",
    "projection_model",
    "project_offsets",
    "correct_oneoverf",
]

log = logging.getLogger(__name__)

SATURATED = np.uint32(FLAGS["SATURATED"])
_CUT_SHORT = np.uint32(FLAGS["SATURATED"] | FLAGS["JUMP_DET"])

METHODS = ("median", "scale-achromatic", "scale-chromatic", "window", "solve", "project")


def full_ramp_missing(dq):
    """Pixels whose slope did not come from one whole ramp (saturated, or split at a jump)."""
    return (dq & _CUT_SHORT) != 0


def trace_mask(solution, shape, width):
    """Pixels within ``width / 2`` rows of any order's trace centre.

    Parameters
    ----------
    solution : `~jwst_soss_custom.tracing.TraceSolution`
    shape : tuple of int
        Frame shape (ny, nx).
    width : float
        Full width of the masked band in pixels.

    Returns
    -------
    ndarray of bool (ny, nx)
    """
    mask = np.zeros(shape, bool)
    for distance in _trace_distances(solution, shape).values():
        mask |= distance <= width / 2
    return mask


def _trace_distances(solution, shape):
    """Row distance of every pixel to each order's trace centre (inf off the order)."""
    rows = np.arange(shape[0])[:, None]
    out = {}
    for order, trace in sorted(solution.orders.items()):
        centre = np.where(np.isfinite(trace.y), trace.y, np.inf)[None, :]
        out[order] = np.abs(rows - centre)
    return out


def window_regions(solution, shape, inner, outer):
    """Which offset corrects each pixel, and which pixels measure each order's offset.

    Parameters
    ----------
    solution : `~jwst_soss_custom.tracing.TraceSolution`
    shape : tuple of int
    inner, outer : float
        Full widths (rows) of the excluded core and of the window.

    Returns
    -------
    region : ndarray of int (ny, nx)
        0 outside every window (whole-column offset), k for the k-th order in
        sorted order. Where windows overlap the brighter, lower order wins.
    measure : list of ndarray of bool (ny, nx)
        measure[0] all pixels (whole column), measure[k] the window ring of
        the k-th order, outside every order's core.
    """
    if not 0 <= inner < outer:
        raise ValueError(
            f"window needs 0 <= inner width < outer width, got {inner} and {outer}; "
            "raise outer_width."
        )
    distances = _trace_distances(solution, shape)
    core = np.zeros(shape, bool)
    for d in distances.values():
        core |= d <= inner / 2
    region = np.zeros(shape, np.intp)
    measure = [np.ones(shape, bool)]
    for k, d in reversed(list(enumerate(distances.values(), start=1))):
        region[d <= outer / 2] = k
    for d in distances.values():
        measure.append((d <= outer / 2) & ~core)
    return region, measure


def median_err(err):
    """Median ERR of each pixel over time (every 4th integration from 32 on).

    Every 4th integration (>= 8 values from 32 on) gives the variance to
    ~10 %, plenty for weights, at a quarter of a full-cube median.

    Parameters
    ----------
    err : ndarray (nints, ny, nx) or (ny, nx)
        ERR cube, or already its median (returned as is).

    Returns
    -------
    ndarray (ny, nx)
    """
    if err.ndim == 3:
        err = bn.nanmedian(err[::4] if err.shape[0] >= 32 else err, axis=0)
    return err


def pixel_weights(err):
    """Inverse variance of each pixel from its median ERR over time.

    Parameters
    ----------
    err : ndarray (nints, ny, nx) or (ny, nx)
        ERR cube, or its median over time (an exposure statistic).

    Returns
    -------
    ndarray (ny, nx) of float32
        0 where the variance is not finite or not positive.
    """
    err = median_err(err)
    var = np.square(err, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.where(np.isfinite(var) & (var > 0), 1.0 / var, 0.0)
    return w.astype(np.float32)


def white_light_scaling(data, deep, mask, window=5):
    """Relative flux of each integration, smoothed in time.

    Parameters
    ----------
    data : ndarray (nints, ny, nx)
    deep : ndarray (ny, nx)
        Deep frame.
    mask : ndarray of bool (ny, nx)
        Pixels summed (the traces).
    window : int
        Width of the running median applied along time (1 = none).

    Returns
    -------
    ndarray (nints,)
    """
    flux = bn.nansum(data[:, mask], axis=1)
    scaling = flux / bn.nansum(deep[mask])
    if window > 1:
        scaling = median_filter(scaling, size=window, mode="nearest")
    return scaling


def chromatic_scaling(data, deep, mask, column_window=31, time_window=1):
    """Relative flux of each column in each integration.

    The trace flux of a column also holds that column's 1/f offset (times
    the number of rows summed), which is independent from column to column
    while the light curves change slowly with wavelength: a running median
    over ``column_window`` columns removes it.

    Parameters
    ----------
    data : ndarray (nints, ny, nx)
    deep : ndarray (ny, nx)
    mask : ndarray of bool (ny, nx)
        Pixels summed per column (the traces).
    column_window, time_window : int
        Running-median widths along columns and along time (1 = none).

    Returns
    -------
    ndarray (nints, nx) of float32
        Columns without trace pixels take the white-light scaling.
    """
    weight = mask.astype(np.float32)
    flux = np.empty((data.shape[0], data.shape[2]))
    for rows in _chunks(data.shape[0], 32):
        block = data[rows]
        flux[rows] = np.einsum("iyx,yx->ix", np.where(np.isfinite(block), block, 0), weight)
    ref = np.einsum("yx,yx->x", np.nan_to_num(deep), weight, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        scaling = flux / ref
    good = ref > 0.01 * ref.max()
    white = flux[:, good].sum(axis=1) / ref[good].sum()
    scaling[:, ~good] = white[:, None]
    size = (max(time_window, 1), max(column_window, 1))
    if size != (1, 1):
        scaling = median_filter(scaling, size=size, mode="nearest")
    return scaling.astype(np.float32)


def _chunks(nints, chunk):
    for start in range(0, nints, chunk):
        yield slice(start, min(start + chunk, nints))


def _star_model(deep, scaling, rows):
    """Scaled deep frame for integrations ``rows``: (n, ny, nx) float32."""
    s = np.asarray(scaling[rows], np.float32)
    if s.ndim == 1:
        return s[:, None, None] * deep
    return s[:, None, :] * deep


def column_offsets(data, deep, scaling, exclude, chunk=4):
    """1/f offset of every column: plain median of the residual (``median``).

    Parameters
    ----------
    data : ndarray (nints, ny, nx)
    deep : ndarray (ny, nx)
    scaling : ndarray (nints,) or (nints, nx)
        Flux of each integration (or column) relative to ``deep``.
    exclude : ndarray of bool (ny, nx)
        Pixels not used (traces, reference pixels). Non-finite data are
        ignored as well.
    chunk : int
        Integrations processed at a time; bounds the temporary memory.

    Returns
    -------
    offsets : ndarray (nints, nx) of float32
        Zero where a column has no usable pixel.
    """
    offsets = np.empty((data.shape[0], data.shape[2]), np.float32)
    for rows in _chunks(data.shape[0], chunk):
        resid = data[rows] - _star_model(deep, scaling, rows)
        resid[:, exclude] = np.nan
        offsets[rows] = bn.nanmedian(resid, axis=1)
    np.nan_to_num(offsets, copy=False, nan=0.0)
    return offsets


def _robust_weighted_mean(resid, w, clip):
    """Inverse-variance weighted column means, after one clipping pass.

    Pixels further than ``clip`` sigma (from their own weight) from a first
    weighted mean are dropped: residual cosmic rays, unmasked contaminants.
    (A first median would be more robust but costs ~3x the time; soss_badpix
    has already removed the large outliers.)
    """
    resid = np.where(w > 0, resid, np.float32(0))
    first = _weighted_mean(resid, w)
    with np.errstate(invalid="ignore"):
        keep = (resid - first[:, None, :]) ** 2 * w <= clip * clip
    return _weighted_mean(resid, np.where(keep, w, np.float32(0)))


def _weighted_mean(values, w):
    num = np.einsum("iyx,iyx->ix", values, w)
    den = w.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / den, 0.0).astype(np.float32)


def weighted_offsets(data, dq, deep, scaling, weights, measure, clip=5.0, chunk=4,
                     each_chunk=None):
    """1/f offsets from inverse-variance weighted column means of the residual.

    Parameters
    ----------
    data, dq : ndarray (nints, ny, nx)
    deep, weights : ndarray (ny, nx)
    scaling : ndarray (nints,) or (nints, nx)
    measure : list of ndarray of bool (ny, nx)
        One offset per mask: the pixels allowed to measure it.
    clip : float
        Outlier threshold in sigma.
    chunk : int
    each_chunk : callable or None
        Called as ``each_chunk(rows, resid, ok, offsets)`` after each block
        of integrations, with its residual, usable pixels and offsets: more
        sums from the same pass over the data (method ``project``).

    Returns
    -------
    ndarray (nints, len(measure), nx) of float32
    """
    nints, _, nx = data.shape
    offsets = np.empty((nints, len(measure), nx), np.float32)
    for rows in _chunks(nints, chunk):
        resid = data[rows] - _star_model(deep, scaling, rows)
        ok = usable(resid, dq[rows])
        for k, allowed in enumerate(measure):
            w = np.where(ok & allowed, weights, np.float32(0))
            offsets[rows, k] = _robust_weighted_mean(resid, w, clip)
        if each_chunk is not None:
            each_chunk(rows, resid, ok, offsets[rows])
    return offsets


def solve_offsets(data, dq, deep, weights, allowed, clip=5.0, chunk=4):
    """Joint weighted least-squares fit of ``a * deep + c`` per column and integration.

    Parameters
    ----------
    data, dq : ndarray (nints, ny, nx)
    deep, weights : ndarray (ny, nx)
    allowed : ndarray of bool (ny, nx)
        Pixels used in the fit.
    clip : float
        Pixels further than ``clip`` sigma from the first fit are dropped and
        the fit repeated once.
    chunk : int

    Returns
    -------
    offsets : ndarray (nints, nx) of float32
        The fitted ``c``.
    scale : ndarray (nints, nx) of float32
        The fitted ``a`` (the column's light curve).
    """
    nints, _, nx = data.shape
    offsets = np.empty((nints, nx), np.float32)
    scale = np.empty((nints, nx), np.float32)
    d = np.nan_to_num(deep).astype(np.float32)
    for rows in _chunks(nints, chunk):
        sci = data[rows]
        w = np.where(usable(sci, dq[rows]) & allowed, weights, np.float32(0))
        y = np.where(w > 0, sci, np.float32(0))
        for _ in range(2):
            a, c = _fit_line(d, y, w)
            with np.errstate(invalid="ignore"):
                resid2 = (y - a[:, None, :] * d - c[:, None, :]) ** 2 * w
            w = np.where(resid2 <= clip * clip, w, np.float32(0))
        offsets[rows], scale[rows] = c, a
    return offsets, scale


def _fit_line(d, y, w):
    """Weighted least squares of y = a d + c along axis 1 (rows), vectorised.

    The sums are accumulated in float32 (256 terms: ~1e-6 relative) and the
    2x2 system solved in float64.
    """
    wy = w * y
    s = w.sum(axis=1).astype(np.float64)
    sd = np.einsum("iyx,yx->ix", w, d).astype(np.float64)
    sdd = np.einsum("iyx,yx->ix", w, d * d).astype(np.float64)
    sy = wy.sum(axis=1).astype(np.float64)
    sdy = np.einsum("iyx,yx->ix", wy, d).astype(np.float64)
    det = s * sdd - sd * sd
    with np.errstate(invalid="ignore", divide="ignore"):
        a = np.where(det > 0, (s * sdy - sd * sy) / det, 0.0)
        c = np.where(det > 0, (sdd * sy - sd * sdy) / det, np.where(s > 0, sy / s, 0.0))
    return a.astype(np.float32), c.astype(np.float32)


@dataclass(frozen=True)
class Projection:
    """How the 1/f of the groups enters each pixel's slope (method ``project``).

    Attributes
    ----------
    beta, gamma : ndarray (ny, nx) of float32
        Loadings of each pixel's offset on the background offset and on the
        remainder ``psi`` (`~jwst_soss_custom.oneoverf.projection`).
    gain : float
        The exposure's gain used for the weighting classes (e-/DN).
    reference_norm2 : float
        Squared norm of the background offset's slope coefficients
        (s^-2): the background offsets have ``reference_norm2`` times the
        power of ``psi`` (a unit-norm projection of the same group offsets).
    fit : `~jwst_soss_custom.oneoverf.projection.ComplementFit`
        The fit of ``psi`` on the traces.
    """

    beta: np.ndarray
    gamma: np.ndarray
    gain: float
    reference_norm2: float
    fit: proj.ComplementFit


def projection_model(deep, err_median, ngroups, group_time, reference, traces, weights):
    """The `Projection` of an exposure from its statistics.

    Parameters
    ----------
    deep, err_median : ndarray (ny, nx)
        Exposure statistics (DN/s).
    ngroups : int
    group_time : float
        Seconds.
    reference : ndarray of bool (ny, nx)
        Pixels that measure the background offset.
    traces : ndarray of bool (ny, nx)
        The traces' band: the pixels that measure ``psi`` (excluded pixels
        already removed).
    weights : ndarray (ny, nx)
        Inverse variances.

    Returns
    -------
    Projection
    """
    gain = proj.estimate_gain(deep, err_median, ngroups, group_time)
    coefficients = proj.expected_coefficients(deep, err_median, ngroups, group_time, gain)
    beta, gamma, c_ref, _ = proj.projection_loadings(
        coefficients, reference & (weights > 0), weights, traces & (weights > 0)
    )
    log.info("1/f projection: gain %.2f e-/DN, remainder loading %.4f to %.4f on the traces",
             gain, float(gamma[traces].min(initial=0)), float(gamma[traces].max(initial=0)))
    fit = proj.ComplementFit.build(deep, gamma, np.where(traces, weights, 0.0))
    return Projection(beta, gamma, gain, float(c_ref @ c_ref), fit)


def project_offsets(data, dq, deep, scaling, weights, allowed, projection, clip=5.0, chunk=4):
    """Background offsets and the remainder ``psi`` of every column (method ``project``).

    Parameters
    ----------
    data, dq : ndarray (nints, ny, nx)
    deep, weights : ndarray (ny, nx)
    scaling : ndarray (nints,)
        White-light scaling of the star model.
    allowed : ndarray of bool (ny, nx)
        Pixels that measure the background offset.
    projection : Projection
    clip : float
        Outlier threshold (sigma) of the background offsets.
    chunk : int

    Returns
    -------
    ndarray (nints, 2, nx) of float32
        The background offset and the filtered ``psi`` of each column.
    """
    nints, _, nx = data.shape
    out = np.empty((nints, 2, nx), np.float32)
    psi = np.empty((nints, nx), np.float32)
    variance = np.empty((nints, nx))
    fit, beta = projection.fit, projection.beta
    # What the background offsets put into the fit's sums, per unit offset.
    beta_star = (fit.star_weights * beta).sum(axis=0)
    beta_gamma = (fit.gamma_weights * beta).sum(axis=0)

    def psi_sums(rows, resid, ok, offsets):
        # The star's scale is free in every column, so the residual from the
        # star model gives the same psi as the data. Pixels left out take the
        # background offset's value: they then tell nothing about psi. Left
        # out: unusable pixels, and ramps cut short (saturated, or split at a
        # jump), whose slopes weighted their groups otherwise.
        ok = ok & ~full_ramp_missing(dq[rows])
        values = np.where(ok, resid, np.float32(0))
        i, y, x = np.nonzero(~ok)
        values[i, y, x] = offsets[i, 0, x] * beta[y, x]
        offset = offsets[:, 0]
        psi[rows], variance[rows] = fit.psi(values, offset * beta_star, offset * beta_gamma)

    out[:, 0] = weighted_offsets(data, dq, deep, scaling, weights, [allowed], clip, chunk,
                                 each_chunk=psi_sums)[:, 0]
    # psi's power along the columns, from the background offsets' (same 1/f).
    science = slice(4, nx - 4) if nx > 16 else slice(None)
    length = out[:, 0, science].shape[1]
    amplitude = proj.spectral_amplitude(out[:, 0, science]) / projection.reference_norm2
    out[:, 1] = proj.wiener_columns(psi, variance, amplitude * (nx / length) ** 2)
    return out


def correct_oneoverf(
    data,
    err,
    dq,
    solution,
    method="scale-achromatic",
    inner_width=40.0,
    outer_width=70.0,
    exclude=None,
    smoothing_window=5,
    column_window=31,
    clip=5.0,
    chunk=4,
    deep=None,
    err_median=None,
    ramp=None,
    projection=None,
):
    """Estimate and subtract the 1/f offsets of a cube, in place.

    Parameters
    ----------
    data, err, dq : ndarray (nints, ny, nx)
        ``data`` is corrected in place.
    solution : `~jwst_soss_custom.tracing.TraceSolution`
    method : str
        One of `METHODS`.
    inner_width : float
        Full width (rows) masked around each trace.
    outer_width : float
        Full width of the window around each order (``window`` only).
    exclude : ndarray of bool (ny, nx) or None
        Other pixels never used to measure offsets (reference pixels,
        order-0 contaminants, a user mask).
    smoothing_window : int
        Running median (integrations) of the white-light scaling (``median``
        and ``scale-achromatic``).
    column_window : int
        Running median (columns) of the chromatic scaling.
    clip : float
        Outlier threshold (sigma) of the weighted methods.
    chunk : int
        Integrations processed at a time: few, so that each temporary stays
        in the CPU cache (measured ~2x faster than 32).
    deep, err_median : ndarray (ny, nx) or None
        The exposure's deep frame and median ERR
        (`~jwst_soss_custom.statistics.ExposureStatistics`); None: computed
        from ``data`` and ``err``.
    ramp : tuple (int, float) or None
        Groups per integration and group time (s) of the ramps the slopes
        were fitted from (``project``).
    projection : Projection or None
        The exposure's `Projection` (``project``); None: made from ``deep``,
        ``err_median`` and ``ramp``.

    Returns
    -------
    offsets : ndarray (nints, nregions, nx) of float32
        The subtracted offsets; nregions is 1 except for ``window`` (whole
        column, then one per order) and ``project`` (the background offset,
        then ``psi``).
    region : ndarray of int (ny, nx) or None
        Which of the offsets each pixel received; None for ``project``,
        whose pixels receive ``beta x offsets[:, 0] + gamma x offsets[:, 1]``.
    """
    if method not in METHODS:
        raise ValueError(f"Unknown 1/f method {method!r}; choose one of {', '.join(METHODS)}.")
    shape = data.shape[1:]
    exclude = np.zeros(shape, bool) if exclude is None else exclude
    traces = trace_mask(solution, shape, inner_width)
    allowed = ~(traces | exclude)
    region = np.zeros(shape, np.intp)
    if deep is None:
        deep = bn.nanmedian(data, axis=0)
    err_median = median_err(err if err_median is None else err_median)
    weights = pixel_weights(err_median)
    if method == "project":
        if projection is None:
            if ramp is None:
                raise ValueError("method 'project' needs the ramp's groups and group time.")
            projection = projection_model(deep, err_median, *ramp, allowed, traces & ~exclude,
                                          weights)
        scaling = white_light_scaling(data, deep, traces, smoothing_window)
        offsets = project_offsets(data, dq, deep, scaling, weights, allowed, projection, clip,
                                  chunk)
        for rows in _chunks(data.shape[0], chunk):
            data[rows] -= offsets[rows, 0][:, None, :] * projection.beta
            # A saturated ramp's groups were weighted otherwise: gamma does
            # not describe it, and it keeps the background's share only.
            gamma = np.where(dq[rows] & SATURATED, np.float32(0), projection.gamma)
            data[rows] -= offsets[rows, 1][:, None, :] * gamma
        return offsets, None
    if method == "median":
        scaling = white_light_scaling(data, deep, traces, smoothing_window)
        offsets = column_offsets(data, deep, scaling, ~allowed, chunk)[:, None, :]
    elif method == "solve":
        # The star's scale is fitted, so the traces pin it down rather than
        # bias the offset: only ``exclude`` applies (measured: masking the
        # traces leaves the scale poorly constrained and the offsets ~1.5x noisier).
        offsets = solve_offsets(data, dq, deep, weights, ~exclude, clip, chunk)[0]
        offsets = offsets[:, None, :]
    else:
        measure = [allowed]
        if method == "scale-achromatic":
            scaling = white_light_scaling(data, deep, traces, smoothing_window)
        else:
            scaling = chromatic_scaling(data, deep, traces, column_window)
        if method == "window":
            region, rings = window_regions(solution, shape, inner_width, outer_width)
            measure += [ring & ~exclude for ring in rings[1:]]
        offsets = weighted_offsets(data, dq, deep, scaling, weights, measure, clip, chunk)
    columns = np.arange(shape[1])
    for rows in _chunks(data.shape[0], chunk):
        if offsets.shape[1] == 1:  # one offset per column: broadcast, no gather
            data[rows] -= offsets[rows, 0][:, None, :]
        else:
            data[rows] -= offsets[rows][:, region, columns]
    return offsets, region
