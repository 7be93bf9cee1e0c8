"""Group-level 1/f removal for SOSS ramps (pure numpy).

Before ramp fitting the 1/f noise of a group is still an additive signal of
the readout: the detector is read along its columns (DMS orientation) at the
10 µs pixel clock, so each column of each group carries its own offset that
also drifts along the column while it is read (~2.7 ms per column). The star
is modelled by the exposure's median ramp scaled per integration (so the
transit is kept, not cleaned away); what the model leaves in the pixels away
from the traces is the 1/f of that group and column, fitted per column as a
constant or a low-order polynomial in row, and subtracted from every science
pixel of the column.

Only the star is scaled, not the sky: the median ramp of the background
pixels is mostly zodiacal light, which does not transit. Scaling it with the
star puts (1 - scale) x background into every in-transit offset, and
subtracting that from the trace deepens the transit by the background's
share of the trace flux (measured on a test scene with a background of 0.5 %
of the trace's mean pixel: +100 ppm on a 2 % transit, 6 sigma). So the model
is ``scale x (ramp - sky) + sky``, the sky being each column's median ramp
over its background pixels.

That split is still not exact: the background pixels also hold light that
transits (the wings of the orders, whose level the column median puts in the
sky) and light that does not (field stars, zodiacal structure the median
misses). Whatever the model gets wrong there follows the star's brightness,
so the fitted offsets would follow the transit and their subtraction would
change the depth (measured on a scene without 1/f: offsets proportional to
``scale - 1`` that make the depths 0.4-0.8 % too shallow). The 1/f of the
readout knows nothing of the star, so `transit_leak` fits, per column and
coefficient, the part of the offsets proportional to ``(g + 1) (scale - 1)``
over every integration of the exposure, and `subtract_group_oneoverf`
leaves it in the data (or, as the leak is linear in the group index,
`leak_slopes` adds it to the slopes after ramp fitting: the same result
when the exposure's integrations are cleaned a chunk at a time).

The functions take plain arrays: groups ``(nints, ngroups, ny, nx)`` float32
(corrected in place), a background mask ``(ny, nx)``, and flags as booleans.
"""

import bottleneck as bn
import numpy as np

from jwst_soss_custom.statistics import time_median

__all__ = [
    "median_ramp",
    "ramp_scale",
    "column_sky",
    "column_offsets",
    "offset_image",
    "fit_group_oneoverf",
    "leak_projection",
    "transit_leak",
    "leak_slopes",
    "remove_group_oneoverf",
    "subtract_group_oneoverf",
]

#: 1.4826 x median absolute deviation = standard deviation for Gaussian noise.
MAD_TO_SIGMA = 1.4826


def median_ramp(groups, bad=None):
    """Median over integrations of every group and pixel (the star's mean ramp).

    Parameters
    ----------
    groups : ndarray (nints, ngroups, ny, nx) of float32
    bad : ndarray of bool, same shape, or None
        Values to leave out (saturated, do-not-use).

    Returns
    -------
    ndarray (ngroups, ny, nx) of float32
        NaN where no value is usable.
    """
    out = np.empty(groups.shape[1:], np.float32)
    for g in range(groups.shape[1]):
        block = groups[:, g]
        if bad is not None:
            block = np.where(bad[:, g], np.float32(np.nan), block)
        out[g] = time_median(np.ascontiguousarray(block, dtype=np.float32))
    return out


def ramp_scale(groups, ramp, trace, bad=None):
    """Brightness of each integration relative to the median ramp, on the trace.

    The charge collected between the first and the last group, summed over
    the trace pixels, divided by the same sum of the median ramp: the white
    light curve (transit included) that scales the star model.

    Parameters
    ----------
    groups : ndarray (nints, ngroups, ny, nx)
    ramp : ndarray (ngroups, ny, nx)
        `median_ramp`.
    trace : ndarray (ny, nx) of bool
        Pixels of the trace cores.
    bad : ndarray of bool (nints, ngroups, ny, nx) or None

    Returns
    -------
    ndarray (nints,) of float64
    """
    charge = groups[:, -1] - groups[:, 0]
    model = ramp[-1] - ramp[0]
    use = trace & np.isfinite(model)
    if bad is not None:
        use = use[None] & ~(bad[:, -1] | bad[:, 0])
    else:
        use = np.broadcast_to(use, charge.shape)
    num = np.where(use, charge, 0).sum(axis=(1, 2), dtype=np.float64)
    den = np.where(use, model[None], 0).sum(axis=(1, 2), dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return num / den


def column_sky(ramp, keep):
    """Each column's sky ramp: the median ramp over its background pixels.

    Parameters
    ----------
    ramp : ndarray (ngroups, ny, nx)
        `median_ramp`.
    keep : ndarray (ny, nx) of bool
        Background pixels.

    Returns
    -------
    ndarray (ngroups, 1, nx) of float32
        0 in columns without a background pixel.
    """
    with np.errstate(all="ignore"):
        sky = bn.nanmedian(np.where(keep[None], ramp, np.float32(np.nan)), axis=1)
    return np.nan_to_num(sky).astype(np.float32)[:, None, :]


def column_offsets(residual, keep, degree=0, clip=4.0, one_sided=None):
    """Per-column 1/f of the groups of one integration, fitted on background pixels.

    Parameters
    ----------
    residual : ndarray (ngroups, ny, nx)
        The groups minus the scaled star model.
    keep : ndarray of bool (ngroups, ny, nx) or (ny, nx)
        Pixels to fit on (away from the traces, usable).
    degree : {0, 1, 2}
        0: one robust offset per column (median); 1 or 2: a polynomial in row
        (the drift along the column while it is read), fitted by least
        squares after the values beyond ``clip`` robust sigmas from the
        median are left out.
    clip : float
    one_sided : ndarray of bool (nx,) or None
        Columns whose fit pixels lie on one side of the trace only: a slope
        along the column would be extrapolated to the trace, so these take
        the median alone (higher terms 0).

    Returns
    -------
    ndarray (degree + 1, ngroups, nx) of float64
        Polynomial coefficients in the centred row ``u = (y - ny/2) / ny``,
        constant first; NaN where a column has too few pixels.
    """
    ngroups, ny, nx = residual.shape
    keep = np.broadcast_to(keep, residual.shape) & np.isfinite(residual)
    values = np.where(keep, residual, np.nan)
    with np.errstate(all="ignore"):
        median = bn.nanmedian(values, axis=1)
    coef = np.full((degree + 1, ngroups, nx), np.nan)
    coef[0] = median
    if degree == 0:
        return coef
    dev = np.abs(values - median[:, None, :])
    with np.errstate(all="ignore"):
        sigma = MAD_TO_SIGMA * bn.nanmedian(dev, axis=1)
        use = keep & (dev <= clip * np.fmax(sigma, 1e-6)[:, None, :])
    u = (np.arange(ny) - ny / 2) / ny
    powers = np.stack([u**k for k in range(degree + 1)])  # (degree+1, ny)
    w = use.astype(np.float64)
    v = np.where(use, residual, 0.0).astype(np.float64)
    # Normal equations per (group, column): sum_y w u^(j+k) and sum_y w u^j v.
    gram = np.einsum("jy,ky,gyx->gxjk", powers, powers, w)
    rhs = np.einsum("jy,gyx->gxj", powers, v)
    enough = use.sum(axis=1) > 4 * (degree + 1)
    gram[~enough] = np.eye(degree + 1)
    rhs[~enough] = 0.0
    solved = np.linalg.solve(gram, rhs[..., None])[..., 0]  # (ngroups, nx, degree+1)
    coef = np.moveaxis(solved, -1, 0)
    coef[:, ~enough] = np.nan
    if one_sided is not None:
        coef[0][:, one_sided] = median[:, one_sided]
        coef[1:, :, one_sided] = 0.0
    return coef


def offset_image(coef, ny):
    """The fitted 1/f of every row: ``(ngroups, ny, nx)`` from `column_offsets`.

    Parameters
    ----------
    coef : ndarray (degree + 1, ngroups, nx)
    ny : int

    Returns
    -------
    ndarray (ngroups, ny, nx) of float32
    """
    u = (np.arange(ny) - ny / 2) / ny
    image = np.zeros((coef.shape[1], ny, coef.shape[2]), np.float32)
    for k in range(coef.shape[0]):
        image += (np.nan_to_num(coef[k])[:, None, :] * (u**k)[None, :, None]).astype(np.float32)
    return image


def fit_group_oneoverf(groups, ramp, scale, keep, bad=None, degree=0, clip=4.0,
                       one_sided=None):
    """Each integration's fitted column 1/f, without changing the groups.

    Parameters are those of `remove_group_oneoverf`, and ``one_sided`` that
    of `column_offsets`.

    Returns
    -------
    ndarray (nints, degree + 1, ngroups, nx) of float32
    """
    nints, ngroups, ny, nx = groups.shape
    sky = column_sky(ramp, keep)
    star = np.nan_to_num(ramp).astype(np.float32) - sky
    out = np.empty((nints, degree + 1, ngroups, nx), np.float32)
    for i in range(nints):
        residual = groups[i] - np.float32(scale[i]) * star - sky
        use = keep[None] if bad is None else keep[None] & ~bad[i]
        out[i] = column_offsets(residual, use, degree, clip, one_sided)
    return out


def leak_projection(coef):
    """Each integration's offsets summed over groups with weights ``g + 1``.

    What `transit_leak` needs of an integration's coefficients: the leak
    grows as ``g + 1``, and with the scale centred over the exposure the
    per-group constants drop out of the fit, so this sum is all it uses
    (a few kB per integration, where the coefficients are ``ngroups`` times
    more).

    Parameters
    ----------
    coef : ndarray (nints, degree + 1, ngroups, nx)
        `fit_group_oneoverf`.

    Returns
    -------
    ndarray (nints, degree + 1, nx) of float64
    """
    tau = np.arange(1, coef.shape[2] + 1, dtype=np.float64)
    return np.einsum("ikgx,g->ikx", np.nan_to_num(np.asarray(coef, np.float64)), tau)


def transit_leak(projection, scale, ngroups, smooth=101, trials=32, seed=0):
    """The part of the fitted offsets that follows the star's brightness.

    Light that the model misplaces accumulates like all charge, so the leak
    of group ``g`` is ``lambda(x) (g + 1) (scale - 1)``. ``lambda`` is fitted
    by least squares over integrations and groups at once (each coefficient
    and column, with a constant per group) and smoothed by a running median
    of ``smooth`` columns (what leaks varies slowly along the trace).

    The 1/f in the offsets is what limits that fit, and its low frequencies
    are shared by hundreds of neighbouring columns, which the running median
    cannot average away: fitted on 64 integrations of a 537-integration
    exposure the noise put ±0.01 DN/s in transit into whole blocks of
    columns, 500-1000 ppm on the channels there, more than the leak it was
    to correct. So the fit uses every integration given, and ``lambda`` is
    shrunk where it is not measured: the same fit with the scales shuffled
    (``trials`` times) gives the noise ``sigma`` of each smoothed value, and
    ``lambda`` is multiplied by ``lambda^2 / (lambda^2 + sigma^2)``.

    Parameters
    ----------
    projection : ndarray (nints, degree + 1, nx)
        `leak_projection` of the integrations' fitted offsets.
    scale : ndarray (nints,)
        Their `ramp_scale`.
    ngroups : int
    smooth : int
        Columns in the running median (1 = none).
    trials : int
        Shuffles of the scales that measure the fit's noise (0 = no shrinking).
    seed : int
        Of the shuffles (the result is reproducible).

    Returns
    -------
    ndarray (degree + 1, nx) of float32
        Offset per group index ``g + 1`` and unit of ``scale - 1``; 0 where
        it cannot be fitted.
    """
    from scipy.ndimage import median_filter

    x = np.asarray(scale, np.float64) - 1.0
    ok = np.isfinite(x)
    x = x[ok] - x[ok].mean()
    p = np.asarray(projection, np.float64)[ok]
    tau = np.arange(1, ngroups + 1, dtype=np.float64)
    denominator = (x**2).sum() * (tau**2).sum()
    if not denominator > 0:
        return np.zeros(p.shape[1:], np.float32)

    def fit(weights):
        rate = np.einsum("i,ikx->kx", weights, p) / denominator
        return median_filter(rate, size=(1, smooth), mode="mirror") if smooth > 1 else rate

    rate = fit(x)
    if trials > 0:
        rng = np.random.default_rng(seed)
        noise = np.mean([fit(rng.permutation(x)) ** 2 for _ in range(trials)], axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            rate = np.nan_to_num(rate * rate**2 / (rate**2 + noise))
    return rate.astype(np.float32)


def leak_slopes(leak, scale, ny, group_time):
    """What the leak left in the groups adds to each integration's slopes.

    The leak is linear in the group index, so whatever the weights and
    whichever groups ramp fitting uses (jumps, saturation), it adds exactly
    ``lambda (scale - 1) / group_time`` to the slope: leaving it in the
    groups and adding it to the slopes afterwards are the same.

    Parameters
    ----------
    leak : ndarray (degree + 1, nx)
        `transit_leak`.
    scale : ndarray (nints,)
    ny : int
    group_time : float
        Seconds per group.

    Returns
    -------
    ndarray (nints, ny, nx) of float32
        DN/s to add.
    """
    image = offset_image(np.asarray(leak)[:, None, :], ny)[0]
    factor = (np.nan_to_num(np.asarray(scale, np.float64)) - 1.0) / group_time
    return (factor[:, None, None] * image[None]).astype(np.float32)


def remove_group_oneoverf(groups, ramp, scale, keep, science, bad=None, degree=0, clip=4.0,
                          leak=None):
    """Subtract each group's fitted column 1/f from the science pixels, in place.

    Parameters
    ----------
    groups : ndarray (nints, ngroups, ny, nx) of float32
        Corrected in place.
    ramp : ndarray (ngroups, ny, nx)
        `median_ramp` of the exposure; its sky part (`column_sky`) is not
        scaled.
    scale : ndarray (nints,)
        `ramp_scale` of each integration.
    keep : ndarray (ny, nx) of bool
        Background pixels the offsets are fitted on.
    science : ndarray (ny, nx) of bool
        Pixels corrected (reference pixels are left as they are).
    bad : ndarray of bool (nints, ngroups, ny, nx) or None
        Values never fitted on (saturated, do-not-use, jumps).
    degree, clip
        See `column_offsets`.
    leak : ndarray (degree + 1, nx) or None
        `transit_leak`: ``leak x (g + 1) x (scale - 1)`` is left in the data.

    Returns
    -------
    ndarray (nints, degree + 1, ngroups, nx) of float32
        The coefficients removed (the constant term is the column offset).
    """
    out = fit_group_oneoverf(groups, ramp, scale, keep, bad, degree, clip)
    return subtract_group_oneoverf(groups, out, scale, science, leak)


def subtract_group_oneoverf(groups, coef, scale, science, leak=None):
    """Subtract fitted column 1/f from the science pixels, in place.

    Parameters
    ----------
    groups : ndarray (nints, ngroups, ny, nx) of float32
        Corrected in place.
    coef : ndarray (nints, degree + 1, ngroups, nx)
        `fit_group_oneoverf`; the leak is taken out of it in place.
    scale : ndarray (nints,)
    science : ndarray (ny, nx) of bool
    leak : ndarray (degree + 1, nx) or None
        `transit_leak`.

    Returns
    -------
    ndarray (nints, degree + 1, ngroups, nx) of float32
        ``coef``, the coefficients removed.
    """
    ny, ngroups = groups.shape[2], groups.shape[1]
    if leak is not None:
        tau = np.arange(1, ngroups + 1, dtype=np.float32)
        per_group = leak[:, None, :] * tau[None, :, None]
    for i in range(groups.shape[0]):
        if leak is not None:
            coef[i] -= per_group * np.float32(scale[i] - 1.0)
        groups[i] -= np.where(science[None], offset_image(coef[i], ny), np.float32(0))
    return coef
