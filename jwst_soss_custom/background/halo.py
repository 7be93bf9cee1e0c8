"""The star's extended halo, modelled from the deep frame (pure numpy/scipy).

No region of a SUBSTRIP256 frame is free of the star: its cross-dispersion
profile has faint power-law wings that reach every row (on the real WASP-39
frame ≈6e-4 of a column's flux per pixel 25 rows from the trace, 1.3e-4 at
100 rows). A background template scaled in any region therefore absorbs
1–3 % of halo light and comes out high by that fraction.

The halo is modelled from the data itself, without tracing: the star light of
the deep frame (what exceeds the background by a fraction of it) is spread
along every column with the kernel ``1 / (1 + (r / r0) ** p)``, ``r`` the
distance in rows. Far from the traces that is each order's column flux times
a power law in the distance to its trace, the form fitted on the real frame
(``docs/simulator.md``), summed over every order the data hold (order 3
included) without knowing where the traces are. Its amplitude, the power
``p`` (on a grid) and two nuisance background scales are fitted by a robust
linear least-squares over every pixel far enough from the star light: that
wide area gives the halo the lever arm (its level changes with the distance
to the traces) that the small, halo-poor scale regions lack.
"""

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import binary_dilation, median_filter

__all__ = ["HaloFit", "star_light", "halo_basis", "fit_halo", "HALO_POWERS", "CALIBRATED_HALO"]

#: Core radius of the halo kernel (rows); it only shapes the kernel within a
#: few rows of the trace, where no pixel is fitted.
HALO_CORE = 2.0
#: Powers tried when the fall-off is fitted (the real WASP-39 frame gives 0.8–1.1).
HALO_POWERS = tuple(np.round(np.arange(0.7, 1.65, 0.1), 2))
#: Power and amplitude of the halo used where it cannot be fitted (SUBSTRIP96
#: reads no row far enough from the star): the halo calibrated on the real
#: WASP-39 SUBSTRIP256 median frame (docs/simulator.md), a property of the
#: telescope's PSF rather than of one visit.
CALIBRATED_HALO = (1.1, 0.0097)


@dataclass
class HaloFit:
    """Result of `fit_halo`.

    Attributes
    ----------
    image : ndarray (ny, nx) of float32
        The fitted halo (DN/s): amplitude × basis.
    amplitude : float
        Halo per unit star light at zero distance (the kernel's peak).
    power : float
        Power-law index of the fall-off with distance.
    scales : ndarray (2,)
        Nuisance background scales of the wide fit (left, right of the step).
    npix : int
        Pixels kept in the fit (after clipping).
    """

    image: np.ndarray
    amplitude: float
    power: float
    scales: np.ndarray
    npix: int


def star_light(deep, background, threshold=0.25, width=5, grow=10, nsigma=5.0):
    """The star light of a deep frame: what clearly exceeds the background, and its wings.

    Parameters
    ----------
    deep : ndarray (ny, nx)
        Deep frame (median over time), DN/s; NaN where unusable.
    background : ndarray (ny, nx)
        Scaled background template; pixels where it is not positive and
        finite (reference pixels) hold no star light.
    threshold : float
        Excess over the background, as a fraction of it, above which a pixel
        counts as star light. It must sit above the halo's own level far from
        the traces, so that the background (whose scale is being measured)
        does not leak in, and low enough to catch the faint orders (order 3
        peaks at ≈ 1 DN/s above a 4–7 DN/s background).
    width : int
        Median filter along the dispersion direction (columns) applied
        first: the traces are smooth along it, hot pixels and cosmic rays
        are isolated.
    grow : int
        Rows added on each side of the pixels above the threshold: the
        profile's wings below it still carry a few per cent of the light.
    nsigma : float
        The threshold is at least this many times the noise of the filtered
        deep frame (estimated from the filter's residuals), so that a noisy
        deep frame does not turn noise into star light.

    Returns
    -------
    ndarray (ny, nx) of float64
        Star light (DN/s), 0 elsewhere.
    """
    usable = np.isfinite(background) & (background > 0)
    raw = np.where(usable & np.isfinite(deep), deep - background, 0.0)
    excess = median_filter(raw, size=(1, int(width)), mode="nearest") if width > 1 else raw
    # Noise of one filtered pixel: robust scatter of the filter's residuals
    # times the median-of-width efficiency (sqrt(pi / 2 / width)).
    scatter = 1.4826 * np.median(np.abs(raw - excess)[usable])
    floor = nsigma * scatter * np.sqrt(np.pi / 2 / max(int(width), 1))
    bright = usable & (excess > np.maximum(threshold * background, floor))
    if grow:
        bright = binary_dilation(bright, structure=np.ones((2 * int(grow) + 1, 1), bool))
    return np.where(bright & usable, excess, 0.0)


def _kernel_spectrum(ny, power, r0=HALO_CORE):
    """FFT of the column kernel on 2 ny points (no wrap-around within the frame)."""
    n = 2 * ny
    r = np.abs(np.fft.fftfreq(n, 1.0 / n))
    kernel = 1.0 / (1.0 + (r / r0) ** power)
    kernel[ny] = 0.0  # the distance ny is never reached inside the frame
    return np.fft.rfft(kernel)


def halo_basis(source, power, r0=HALO_CORE, spectrum=None, ny=None):
    """Spread star light along the columns with a power-law kernel.

    Parameters
    ----------
    source : ndarray (ny, nx)
        Star light (see `star_light`).
    power : float
        Index ``p`` of the kernel ``1 / (1 + (r / r0) ** p)``.
    r0 : float
        Core radius of the kernel (rows).
    spectrum : ndarray, optional
        ``numpy.fft.rfft(source, n=2 * ny, axis=0)``, when already computed
        (the fit tries several powers on one source).
    ny : int, optional
        Rows of the frame, when only ``spectrum`` is given.

    Returns
    -------
    ndarray (ny, nx) of float64
    """
    ny = source.shape[0] if ny is None else ny
    if spectrum is None:
        spectrum = np.fft.rfft(source, n=2 * ny, axis=0)
    out = np.fft.irfft(spectrum * _kernel_spectrum(ny, power, r0)[:, None], n=2 * ny, axis=0)
    return out[:ny]


def _robust_lstsq(design, values, clip=4.0, iterations=4):
    """Least squares with iterative clipping at ``clip`` × 1.4826 MAD of the residuals."""
    keep = np.ones(values.size, bool)
    for _ in range(iterations):
        coef, *_ = np.linalg.lstsq(design[keep], values[keep], rcond=None)
        resid = values - design @ coef
        sigma = 1.4826 * np.median(np.abs(resid[keep]))
        keep = np.abs(resid) < clip * sigma
    return coef, resid, sigma, keep


def fit_halo(deep, template, scales, step, *, power=None, distance=30, threshold=0.25,
             separate=True, clip=4.0, max_pixels=60000, fixed=None):
    """Fit the star's halo jointly with the background on the source-free pixels.

    The model ``s_left × template + s_right × template + a × H_p`` (``H_p``
    from `halo_basis` of the `star_light`) is fitted to every pixel at least
    ``distance`` rows from star light, by least squares with clipping (order
    0s, hot pixels and cosmic rays go), for each power ``p``; the power with
    the smallest clipped residual is kept. The amplitude is held
    non-negative: a frame without a halo (or without a star) gives 0.

    Parameters
    ----------
    deep : ndarray (ny, nx)
        Deep frame (median over time), DN/s; NaN where unusable (reference
        pixels, bad pixels).
    template : ndarray (ny, nx)
        Background template.
    scales : pair of float
        First background scales (left, right of ``step``), to isolate the
        star light; the fit re-estimates them.
    step : int
        First column right of the background step.
    power : float or None
        Fixed power-law index; None fits it on `HALO_POWERS`.
    distance : int
        Pixels closer than this (rows, along the column) to star light are
        left out: the halo model is least certain near the traces.
    threshold : float
        Star light threshold as a fraction of the background (`star_light`).
    separate : bool
        Separate nuisance scales either side of the step.
    clip : float
        Clipping threshold in robust standard deviations.
    max_pixels : int
        At most this many fit pixels (evenly subsampled), which bounds the
        cost; tens of thousands already determine three coefficients to
        well below the noise of the scale regions.
    fixed : pair of float or None
        ``(power, amplitude)`` of a halo taken as known instead of fitted
        (a subarray that reads no row far from the star: `CALIBRATED_HALO`);
        ``power``, when given, replaces its power.

    Returns
    -------
    HaloFit
    """
    deep = np.asarray(deep, dtype=np.float64)
    template = np.asarray(template, dtype=np.float64)
    right = np.arange(deep.shape[1]) >= step
    scales = np.asarray(scales, dtype=np.float64)
    background = np.where(right, scales[1], scales[0]) * template
    source = star_light(deep, background, threshold)
    if not source.any():
        # Nothing clearly above the background: there is no star to make a halo.
        return HaloFit(np.zeros(deep.shape, np.float32), 0.0, np.nan, scales, 0)
    if fixed is not None:
        p = fixed[0] if power is None else float(power)
        return HaloFit((fixed[1] * halo_basis(source, p)).astype(np.float32),
                       float(fixed[1]), p, scales, 0)
    near = binary_dilation(source > 0, structure=np.ones((2 * int(distance) + 1, 1), bool))
    fit = ~near & np.isfinite(deep) & np.isfinite(template) & (template > 0)
    rows, cols = np.nonzero(fit)
    if rows.size < 1000:
        raise ValueError(
            f"Only {rows.size} pixels lie {distance} rows or more from the star light; "
            "lower halo_distance or switch the halo model off (halo=False)."
        )
    if rows.size > max_pixels:
        pick = np.linspace(0, rows.size - 1, max_pixels).astype(np.intp)
        rows, cols = rows[pick], cols[pick]
    t = template[rows, cols]
    side = right[cols]
    values = deep[rows, cols]
    nuisance = [t * ~side, t * side] if separate else [t]
    spectrum = np.fft.rfft(source, n=2 * deep.shape[0], axis=0)
    best = None
    for p in HALO_POWERS if power is None else (float(power),):
        basis = halo_basis(source, p, spectrum=spectrum)
        design = np.stack([*nuisance, basis[rows, cols]], axis=1)
        coef, resid, sigma, keep = _robust_lstsq(design, values, clip)
        if coef[-1] < 0:
            # A negative halo is unphysical: refit without it.
            coef, resid, sigma, keep = _robust_lstsq(design[:, :-1], values, clip)
            coef = np.append(coef, 0.0)
        if best is None:
            cap = (clip * sigma) ** 2  # one truncation for every power, so scores compare
        score = np.mean(np.minimum(resid**2, cap))
        if best is None or score < best[0]:
            best = (score, p, coef, basis, int(keep.sum()))
    _, p, coef, basis, npix = best
    fitted = np.array([coef[0], coef[1]]) if separate else np.array([coef[0], coef[0]])
    return HaloFit(
        image=(coef[-1] * basis).astype(np.float32),
        amplitude=float(coef[-1]),
        power=float(p),
        scales=fitted,
        npix=npix,
    )
