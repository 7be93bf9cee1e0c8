"""How group-level 1/f projects into optimally weighted slopes (pure numpy).

``ramp_fit`` (stcal, ``weighting='optimal'``) fits each ramp with weights
``|(g - mid) / mid| ** P`` whose power ``P`` grows with the ramp's
signal-to-noise ratio (0 below 5, up to 10 above 100). The slope is then
``sum_g c_g x group_g`` with coefficients ``c`` that depend on ``P``: faint
pixels get the ordinary least-squares line, bright pixels almost only the
first and last groups. The 1/f offset ``n_g`` of a column in group ``g`` thus
enters a pixel's slope as ``c(P) . n``: the same readout noise gives the
background (``P`` ~ 1 at SOSS background levels) and the trace core
(``P`` = 10) different offsets. Every unbiased slope estimator has
``c . (g - mean g) = 1``, so ``c(P) . c_ref = |c_ref|^2`` for the
least-squares ``c_ref``: the part of a trace pixel's offset that the
background predicts is the background's offset itself (``beta`` ~ 1), and
what is left, ``(c(P) - beta c_ref) . n``, is independent of everything the
background shows. For 9 groups that remainder has 0.87 x the variance of the
offset itself at ``P`` = 10.

The remainder lies almost along one direction of group space (the first
singular vector holds ~99 % of its variance for the SOSS classes), so each pixel's
offset is modelled as ``beta(p) phi + gamma(p) psi`` per column and
integration: ``phi`` is measured by the background, ``psi`` only by the
pixels bright enough to have ``P`` > 1, jointly with a free scale of the
star in that column (so the column's flux, transit included, cannot leak
into ``psi``). A single column constrains ``psi`` poorly (its signal-to-noise
is ~0.3 on the realistic presets), but 1/f is one time series read column
after column, so ``psi`` is correlated along the columns at low frequencies:
`wiener_columns` keeps the frequencies where the measured power exceeds the
noise.
"""

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr

__all__ = [
    "SNR_EDGES",
    "SNR_POWERS",
    "snr_power",
    "slope_coefficients",
    "estimate_gain",
    "expected_coefficients",
    "projection_loadings",
    "ComplementFit",
    "spectral_amplitude",
    "wiener_columns",
]

#: Signal-to-noise edges and the optimal-weighting powers between them
#: (stcal ``snr_power``; the same table as Fixsen et al. 2000).
SNR_EDGES = (5.0, 10.0, 20.0, 50.0, 100.0)
SNR_POWERS = (0.0, 0.4, 1.0, 3.0, 6.0, 10.0)


def snr_power(snr):
    """Optimal-weighting power for a ramp's signal-to-noise ratio.

    Parameters
    ----------
    snr : array_like

    Returns
    -------
    ndarray of float
    """
    index = np.searchsorted(SNR_EDGES, np.nan_to_num(np.asarray(snr, float)), side="right")
    return np.asarray(SNR_POWERS)[index]


def slope_coefficients(ngroups, power, group_time=1.0):
    """Coefficients ``c`` with slope = ``c @ groups`` for a ramp of ``ngroups`` groups.

    The weights are stcal's ``|(g - mid) / mid| ** power`` over the whole
    ramp (no jump, no saturation); the per-pixel read noise divides every
    weight alike and cancels.

    Parameters
    ----------
    ngroups : int
        At least 2.
    power : float or array_like
        Weighting power(s).
    group_time : float
        Seconds per group (the slope is per second).

    Returns
    -------
    ndarray (..., ngroups)
        One row per power.
    """
    if ngroups < 2:
        raise ValueError(f"a slope needs at least 2 groups, got {ngroups}.")
    g = np.arange(ngroups, dtype=float)
    mid = (ngroups - 1) / 2.0
    power = np.asarray(power, float)[..., None]
    w = np.abs((g - mid) / mid) ** power
    sw, sx, sxx = w.sum(-1), (w * g).sum(-1), (w * g * g).sum(-1)
    den = (sw * sxx - sx * sx)[..., None]
    return (sw[..., None] * g * w - sx[..., None] * w) / den / group_time


def estimate_gain(deep, err, ngroups, group_time):
    """Exposure gain (e-/DN) from how the slope variance grows with the signal.

    ``ramp_fit`` reports ``var_poisson = rate / (gain (n - 1) t)`` beside a
    read-noise term that does not depend on the rate, so the median ERR^2 in
    bins of the deep frame's rate rises with slope ``1 / (gain (n - 1) t)``.

    Parameters
    ----------
    deep, err : ndarray (ny, nx)
        Deep frame and median ERR (DN/s).
    ngroups : int
    group_time : float

    Returns
    -------
    float
        Clipped to 0.5-5 e-/DN (every NIR detector's range); 1.6 (NIRISS)
        when the data do not show the slope.
    """
    ok = np.isfinite(deep) & np.isfinite(err) & (err > 0) & (deep > 0)
    rate, var = deep[ok], np.square(err[ok], dtype=np.float64)
    if rate.size < 100 or rate.max() < 20 * np.median(rate):
        return 1.6
    edges = np.geomspace(np.percentile(rate, 50), rate.max(), 16)
    index = np.digitize(rate, edges)
    x, y = [], []
    for k in range(1, edges.size):
        sel = index == k
        if np.count_nonzero(sel) >= 20:
            x.append(np.median(rate[sel]))
            y.append(np.median(var[sel]))
    if len(x) < 3:
        return 1.6
    slope = np.polyfit(x, y, 1)[0]
    if not slope > 0:
        return 1.6
    return float(np.clip(1.0 / (slope * (ngroups - 1) * group_time), 0.5, 5.0))


def expected_coefficients(deep, err, ngroups, group_time, gain):
    """Expected slope coefficients of every pixel, averaged over its weighting classes.

    stcal picks the power from each ramp's measured signal-to-noise ratio,
    ``D / sqrt(rn^2 + D / gain)`` with ``D`` the ramp's last minus first
    group (DN) and ``rn`` the read noise of one read. Near a class edge the
    measured ratio falls on either side from one integration to the next, so
    the coefficients are averaged over the classes with the probability of
    each (the measured ratio's noise is that of ``D``, two reads and the
    photons, over the same denominator).

    Parameters
    ----------
    deep, err : ndarray (ny, nx)
        Deep frame and median ERR (DN/s) of full ramps.
    ngroups : int
    group_time : float
    gain : float
        e-/DN.

    Returns
    -------
    ndarray (ny, nx, ngroups) of float32
        Zero where ``deep`` or ``err`` is not finite.
    """
    n, t = ngroups, group_time
    span = (n - 1) * t
    good = np.isfinite(deep) & np.isfinite(err)
    d = np.where(good, np.clip(deep, 0.0, None) * span, 0.0)  # D in DN
    # ERR^2 T^2 = D / gain + kappa rn^2 (ramp_fit's two variances, whole ramp).
    kappa = 12.0 * (n - 1) / (n * (n + 1))
    rn2 = np.clip((np.where(good, err, 0.0) * span) ** 2 - d / gain, 0.0, None) / kappa
    denom = np.sqrt(rn2 + d / gain)
    with np.errstate(divide="ignore", invalid="ignore"):
        snr = np.where(denom > 0, d / denom, 0.0)
        spread = np.where(denom > 0, np.sqrt(d / gain + 2.0 * rn2) / denom, 1.0)
    # above[k]: probability that the measured ratio reaches the k-th edge;
    # class k lies between edges k and k + 1.
    above = [np.ones_like(snr)] + [ndtr((snr - e) / spread) for e in SNR_EDGES]
    above.append(np.zeros_like(snr))
    table = slope_coefficients(n, SNR_POWERS, t)  # (nclasses, n)
    out = np.zeros(deep.shape + (n,), np.float32)
    for k in range(len(SNR_POWERS)):
        out += ((above[k] - above[k + 1])[..., None] * table[k]).astype(np.float32)
    out[~good] = 0.0
    return out


def projection_loadings(coefficients, reference, weights, bright):
    """Loadings ``beta`` (on the background offset) and ``gamma`` (on the remainder).

    Parameters
    ----------
    coefficients : ndarray (ny, nx, ngroups)
        `expected_coefficients`.
    reference : ndarray of bool (ny, nx)
        Pixels that measure the background offset.
    weights : ndarray (ny, nx)
        Their inverse variances.
    bright : ndarray of bool (ny, nx)
        Pixels whose remainder sets its direction (the traces).

    Returns
    -------
    beta, gamma : ndarray (ny, nx) of float32
    c_ref : ndarray (ngroups,)
        The background offset's coefficients (weighted mean over ``reference``).
    direction : ndarray (ngroups,)
        Unit vector of the remainder in group space.
    """
    w = np.where(reference, weights, 0.0).astype(np.float64)
    c_ref = np.einsum("yx,yxg->g", w, coefficients, dtype=np.float64) / max(w.sum(), 1e-30)
    beta = coefficients @ (c_ref / (c_ref @ c_ref))
    rest = coefficients[bright] - beta[bright][:, None] * c_ref
    if rest.shape[0] == 0:
        direction = np.zeros_like(c_ref)
    else:
        # Each pixel's remainder weighted by its inverse variance: the pixels
        # that set psi best set its direction.
        scale = np.sqrt(np.clip(weights[bright], 0.0, None))[:, None]
        direction = np.linalg.svd(rest * scale, full_matrices=False)[2][0]
        direction *= np.sign(direction[-1]) or 1.0
    gamma = (coefficients - beta[..., None] * c_ref.astype(np.float32)) @ direction
    return beta.astype(np.float32), gamma.astype(np.float32), c_ref, direction


@dataclass(frozen=True)
class ComplementFit:
    """Weighted fit of ``a x star + psi x gamma`` per column, with exposure-level weights.

    The star's scale ``a`` is free in every column and integration, so
    anything proportional to the star in a column (the transit, the
    white-light scaling of the star model) drops out of ``psi`` exactly.
    The normal matrix depends only on exposure statistics (weights, star,
    ``gamma``) and is computed once; each integration then costs two
    weighted sums over the pixels (`psi`).

    Attributes
    ----------
    star_weights, gamma_weights : ndarray (ny, nx) of float32
        ``w x star`` and ``w x gamma`` (0 outside the fit).
    sss, ssg, sgg : ndarray (nx,)
        The normal matrix of each column.
    """

    star_weights: np.ndarray
    gamma_weights: np.ndarray
    sss: np.ndarray
    ssg: np.ndarray
    sgg: np.ndarray

    @classmethod
    def build(cls, star, gamma, weights):
        """The fit of ``star`` and ``gamma`` with ``weights`` (0 = pixel not used).

        Parameters
        ----------
        star, gamma, weights : ndarray (ny, nx)

        Returns
        -------
        ComplementFit
        """
        star = np.nan_to_num(star).astype(np.float64)
        w = np.where(np.isfinite(weights), weights, 0.0)
        ws, wg = w * star, w * gamma
        return cls(ws.astype(np.float32), wg.astype(np.float32), (ws * star).sum(axis=0),
                   (ws * gamma).sum(axis=0), (wg * gamma).sum(axis=0))

    def psi(self, values, known_star=0.0, known_gamma=0.0):
        """``psi`` of every column and integration, and its variance.

        Parameters
        ----------
        values : ndarray (nints, ny, nx) of float32
            Data, finite wherever the weights are not 0.
        known_star, known_gamma : ndarray (nints, nx) or float
            What is already modelled (the background offsets) in the two
            weighted sums, subtracted from them.

        Returns
        -------
        psi, variance : ndarray (nints, nx)
            ``variance`` is inf where the column does not constrain ``psi``
            (``gamma`` nearly proportional to the star, or no pixel).
        """
        sr = np.einsum("iyx,yx->ix", values, self.star_weights) - known_star
        gr = np.einsum("iyx,yx->ix", values, self.gamma_weights) - known_gamma
        det = self.sss * self.sgg - self.ssg**2
        ok = (det > 1e-6 * self.sss * self.sgg) & (self.sgg > 0)
        safe = np.where(ok, det, 1.0)
        psi = np.where(ok, (self.sss * gr - self.ssg * sr) / safe, 0.0)
        variance = np.broadcast_to(np.where(ok, self.sss / safe, np.inf), psi.shape)
        return psi.astype(np.float32), variance


def spectral_amplitude(series, kmax=64):
    """Amplitude ``A`` of a ``A / k + white`` power spectrum along the columns, per row.

    Parameters
    ----------
    series : ndarray (nints, n)
        One series along the columns per integration (finite).
    kmax : int
        Frequencies (cycles across the series) fitted, from 1.

    Returns
    -------
    ndarray (nints,)
        ``A`` (>= 0), in units of ``|rfft|^2 x k``.
    """
    centred = series - series.mean(axis=1, keepdims=True)
    power = np.abs(np.fft.rfft(centred, axis=1)) ** 2
    k = np.arange(1, min(kmax, power.shape[1] - 1) + 1, dtype=float)
    design = np.stack([1.0 / k, np.ones_like(k)], axis=1)
    solution = np.linalg.lstsq(design, power[:, 1:k.size + 1].T, rcond=None)[0]
    return np.clip(solution[0], 0.0, None)


def wiener_columns(psi, variance, amplitude):
    """Keep the spatial frequencies of ``psi`` where the 1/f it traces exceeds the noise.

    ``psi`` is measured column by column with independent noise
    (``variance``), white along the columns. The 1/f it traces is one time
    series read column after column, so along the columns its power falls as
    ``A / k`` (``k`` cycles across the columns), with the same ``A`` as the
    group offsets themselves: ``psi`` is a unit-norm projection of them.
    A single integration's ``psi`` is too noisy to measure ``A`` (a fit of
    its own spectrum has a noise of ~N, enough to keep noise), so ``A``
    comes from the well-measured background offsets (`spectral_amplitude`
    of them, divided by their coefficients' squared norm). ``psi`` is
    multiplied in Fourier space by the Wiener gain ``(A / k) / (A / k + N)``.

    The mean over the columns (their inverse-variance weighted mean, taken
    out first) is not kept: it is where everything the star model gets
    wrong in every column alike lands, above all the light that does not
    follow the star's scale (sky left by soss_background, the orders'
    wings, field stars), which follows the transit. On realistic_small its
    estimate correlates with the white light (r = 0.47 without any 1/f in
    the ramps), and keeping it made the order-1 white light's excess
    variance 15.8 x the photon noise instead of 3.9; a free sky constant
    per column in the fit removes that correlation only by absorbing most
    of ``psi``.

    Parameters
    ----------
    psi, variance : ndarray (nints, nx)
        ``variance`` is inf where a column does not constrain ``psi``.
    amplitude : ndarray (nints,)
        ``A`` of each integration, for series of ``nx`` columns.

    Returns
    -------
    ndarray (nints, nx) of float32
        Zero outside the span of columns that constrain ``psi``.
    """
    out = np.zeros(psi.shape, np.float32)
    measured = np.isfinite(variance).any(axis=0)
    if not measured.any():
        return out
    first, last = np.flatnonzero(measured)[[0, -1]]
    span = slice(first, last + 1)
    n = last + 1 - first
    var = variance[:, span]
    finite = np.isfinite(var)
    weights = np.where(finite, 1.0 / np.where(finite, var, 1.0), 0.0)
    total = np.maximum(weights.sum(axis=1), 1e-300)[:, None]
    mean = (weights * np.where(finite, psi[:, span], 0.0)).sum(axis=1)[:, None] / total
    values = np.where(finite, psi[:, span] - mean, 0.0)
    # White noise of per-column variance v has power sum(v) at every frequency.
    noise = np.sum(np.where(finite, var, 0.0), axis=1)[:, None]
    spectrum = np.fft.rfft(values, axis=1)
    k = np.arange(spectrum.shape[1], dtype=float)
    k[0] = np.inf  # the mean is not kept
    # A / k over nx columns is (n / nx) A / k' over the n measured ones
    # (the same frequency has k' = k n / nx cycles, and the power scales with n).
    signal = (np.asarray(amplitude, float)[:, None] * (n / psi.shape[1]) ** 2) / k
    with np.errstate(invalid="ignore", divide="ignore"):
        gain = np.where(signal > 0, signal / (signal + noise), 0.0)
    out[:, span] = np.fft.irfft(spectrum * gain, n=n, axis=1)
    return out
