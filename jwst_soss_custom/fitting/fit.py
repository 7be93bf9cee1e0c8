"""Least-squares transit fits, residual statistics and error inflation (pure numpy/scipy).

`fit_light_curve` fits one light curve with `LightCurveModel`: a robust
(``soft_l1``) least-squares fit, points beyond ``clip_sigma`` times the
residual scatter left out, then an ordinary least-squares refit from there
whose Jacobian gives the covariance. `residual_statistics` compares the
residual scatter with the propagated errors (reduced chi-square) and measures
the time-averaging (beta) red-noise factor; the uncertainties are inflated
when either exceeds what white noise with the given errors produces in 99 %
of cases.
"""

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from scipy import optimize, stats

from jwst_soss_custom.fitting.model import LightCurveModel, inclination, ld_from_q

__all__ = [
    "FitResult",
    "beta_factor",
    "beta_threshold",
    "check_light_curve",
    "fit_light_curve",
    "guess_orbit",
    "residual_statistics",
]


class FitInputError(ValueError):
    """A light curve that cannot be fitted (the message names the fix)."""


@dataclass
class FitResult:
    """Outcome of one light-curve fit.

    ``values`` holds every parameter (free and fixed); ``errors`` the
    uncertainties of the free ones after inflation (``error_scale``) and
    bootstrap, ``errors_raw`` the covariance ones before inflation, and
    ``errors_bootstrap`` the bootstrap spreads (empty without bootstrap).
    ``stats`` holds the fit statistics.
    """

    values: dict
    errors: dict
    errors_raw: dict
    errors_bootstrap: dict
    free: list
    stats: dict
    model: np.ndarray
    transit: np.ndarray
    systematics: np.ndarray
    time: np.ndarray
    flux: np.ndarray
    error: np.ndarray
    used: np.ndarray = field(repr=False)
    int_num: np.ndarray | None = field(default=None, repr=False)

    def derived(self):
        """Derived quantities: depth (ppm), inclination, u1, u2, with errors."""
        v, e = self.values, self.errors
        rp, erp = v["rp"], e.get("rp", 0.0)
        u1, u2 = ld_from_q(v["q1"], v["q2"])
        return {
            "depth_ppm": (1e6 * rp**2, 1e6 * 2 * rp * erp),
            "inc": (inclination(v["a_rs"], v["b"]), np.nan),
            "u1": (float(u1), np.nan),
            "u2": (float(u2), np.nan),
        }


def check_light_curve(time, flux, error, what="light curve"):
    """Check that the arrays can be fitted; raise `FitInputError` naming the problem."""
    time, flux, error = (np.asarray(a, dtype=float) for a in (time, flux, error))
    if not (time.shape == flux.shape == error.shape) or time.ndim != 1:
        raise FitInputError(f"{what}: time, flux and error must be 1-D arrays of one length.")
    bad = ~(np.isfinite(time) & np.isfinite(flux) & np.isfinite(error))
    if bad.any():
        raise FitInputError(
            f"{what}: {bad.sum()} of {bad.size} points have a non-finite time, flux or "
            "error; remove them (or mark them clipped in the speclc table) before fitting."
        )
    if np.any(error <= 0):
        raise FitInputError(f"{what}: {np.sum(error <= 0)} errors are zero or negative.")
    return time, flux, error


def guess_orbit(time, flux, period):
    """Rough t0, rp and a/R* from the dip of a normalised light curve.

    Smoothed with a running median of 5 points, the points below half the
    deepest dip give the mid-time and (roughly) the duration, from which
    a/R* follows for b = 0.3.
    """
    order = np.argsort(time)
    t, f = time[order], flux[order]
    base = np.median(f)
    k = min(5, max(1, t.size // 10))
    pad = np.pad(f, k // 2, mode="edge")
    smooth = np.median(np.lib.stride_tricks.sliding_window_view(pad, k), axis=1)[: t.size]
    depth = base - smooth.min()
    low = smooth < base - 0.5 * depth
    if depth <= 0 or not low.any():
        raise FitInputError(
            "no in-transit points: the light curve shows no dip; check the time range "
            "(the transit must be inside the visit) or give t0."
        )
    t0 = 0.5 * (t[low].min() + t[low].max())
    duration = max(t[low].max() - t[low].min(), 3 * np.median(np.diff(t)))
    a_rs = 1.0 / np.sin(min(np.pi * duration / period, 0.5 * np.pi))
    return {"t0": t0, "rp": np.sqrt(max(depth / base, 1e-6)), "a_rs": max(a_rs, 1.5), "b": 0.3}


def _binned_std(resid, sizes):
    """Standard deviation of residuals averaged in bins of each size (last axis)."""
    out = []
    for m in sizes:
        nb = resid.shape[-1] // m
        binned = resid[..., : nb * m].reshape(*resid.shape[:-1], nb, m).mean(axis=-1)
        expected_factor = np.sqrt(nb / (nb - 1.0)) / np.sqrt(m)
        out.append(binned.std(axis=-1) / expected_factor)
    return np.array(out)


def _bin_sizes(npoints, max_size=None):
    top = npoints // 8 if max_size is None else min(max_size, npoints // 8)
    if top < 2:
        return np.array([], dtype=int)
    return np.unique(np.round(np.geomspace(2, top, 8)).astype(int))


def beta_factor(resid, max_size=None):
    """Time-averaging red-noise factor of residuals (Winn et al. 2008).

    For bins of m points (2 ... N/8), the scatter of the binned residuals is
    compared with ``sigma_1 / sqrt(m) * sqrt(M / (M - 1))`` expected for
    white noise (M bins); beta is the median ratio (1 for white noise).
    """
    resid = np.asarray(resid, dtype=float)
    sizes = _bin_sizes(resid.size, max_size)
    if sizes.size == 0:
        return 1.0
    sigma1 = resid.std()
    return float(np.median(_binned_std(resid, sizes) / sigma1))


@lru_cache(maxsize=64)
def beta_threshold(npoints, quantile=0.99, draws=400, max_size=None):
    """Beta that white noise of ``npoints`` points exceeds with probability 1 - quantile.

    Measured on ``draws`` Gaussian series (fixed seed), so the threshold
    matches the estimator exactly.
    """
    sizes = _bin_sizes(npoints, max_size)
    if sizes.size == 0:
        return np.inf
    rng = np.random.default_rng(12345)
    noise = rng.standard_normal((draws, npoints))
    betas = np.median(_binned_std(noise, sizes) / noise.std(axis=-1), axis=0)
    return float(np.quantile(betas, quantile))


def residual_statistics(resid, error, nfree, inflate="auto"):
    """Scatter against the propagated errors, red noise, and the error scale.

    Parameters
    ----------
    resid, error : ndarray
        Residuals (data - model) and propagated errors of the points used.
    nfree : int
        Number of free parameters.
    inflate : {"auto", "always", "never"}
        ``auto``: scale errors by sqrt(reduced chi-square) when it exceeds its
        99 % white-noise quantile, and by beta when beta exceeds its 99 %
        white-noise quantile; ``always``: by max(1, sqrt(chi2_red)) x max(1,
        beta); ``never``: 1.

    Returns
    -------
    dict
    """
    n = resid.size
    dof = max(n - nfree, 1)
    chi2_red = float(np.sum((resid / error) ** 2) / dof)
    beta = beta_factor(resid)
    beta_99 = beta_threshold(n)
    chi2_99 = float(stats.chi2.ppf(0.99, dof) / dof)
    scale_chi2, scale_beta, reasons = 1.0, 1.0, []
    if inflate == "always":
        scale_chi2, scale_beta = max(1.0, np.sqrt(chi2_red)), max(1.0, beta)
        reasons.append("always")
    elif inflate == "auto":
        if chi2_red > chi2_99:
            scale_chi2 = np.sqrt(chi2_red)
            reasons.append(f"chi2_red {chi2_red:.2f} > {chi2_99:.2f}")
        if beta > beta_99:
            scale_beta = beta
            reasons.append(f"beta {beta:.2f} > {beta_99:.2f}")
    elif inflate != "never":
        raise ValueError(f"inflate={inflate!r}: choose 'auto', 'always' or 'never'.")
    scale = scale_chi2 * scale_beta
    return {
        "n_points": int(n),
        "dof": int(dof),
        "chi2_red": chi2_red,
        "chi2_red_99": chi2_99,
        "beta": beta,
        "beta_99": beta_99,
        "rms_ppm": float(1e6 * resid.std()),
        "expected_ppm": float(1e6 * np.median(error)),
        "error_scale": float(scale),
        "scale_chi2": float(scale_chi2),
        "scale_beta": float(scale_beta),
        "inflated": "; ".join(reasons) if reasons and scale > 1 else "no",
    }


def fit_light_curve(
    time,
    flux,
    error,
    period,
    fixed=None,
    initial=None,
    poly_order=1,
    ramp=False,
    regressors=None,
    clip_sigma=5.0,
    inflate="auto",
    min_baseline=10,
    min_transit=3,
    bootstrap=0,
    seed=0,
    what="light curve",
):
    """Fit a transit times systematics to one normalised light curve.

    Parameters
    ----------
    time, flux, error : ndarray
        Times (days), normalised flux and its propagated error.
    period : float
        Orbital period (days); required.
    fixed : dict, optional
        Parameters held at the given values (e.g. the orbit ``t0``, ``a_rs``,
        ``b`` of the white light for spectroscopic channels, or ``q1``,
        ``q2``).
    initial : dict, optional
        Starting values of free parameters (otherwise guessed from the dip).
    poly_order, ramp, regressors
        Systematics model (see `LightCurveModel`).
    clip_sigma : float
        After the robust fit, points beyond this many residual standard
        deviations are left out (0: none).
    inflate : {"auto", "always", "never"}
        Error inflation (see `residual_statistics`).
    min_baseline, min_transit : int
        Fewest out-of-transit and in-transit points accepted.
    bootstrap : int
        Number of parametric-bootstrap refits (0: none): the best model plus
        Gaussian noise of the (chi-square-scaled) errors, refitted; each
        parameter's uncertainty is then the larger of the covariance one and
        the bootstrap spread (both scaled by beta when that applies): a
        guard for likelihoods far from Gaussian (the covariance alone gives
        pull spreads 0.96-1.05 on the 100-integration simulation).
    seed : int
        Seed of the bootstrap noise.
    what : str
        Name used in messages.

    Returns
    -------
    FitResult
    """
    if period is None or not np.isfinite(period) or period <= 0:
        raise FitInputError(
            f"{what}: the orbital period is missing or invalid ({period!r}); give it in days "
            "(soss_fit: --period=4.0552941)."
        )
    time, flux, error = check_light_curve(time, flux, error, what)
    fixed = dict(fixed or {})
    model = LightCurveModel(time, period, poly_order, ramp, regressors)
    start = {"q1": 0.36, "q2": 0.3}
    if not {"t0", "rp", "a_rs", "b"} <= set(fixed) | set(initial or {}):
        start.update(guess_orbit(time, flux, period))
    start.update(initial or {})
    bounds = {
        "t0": (time.min(), time.max()),
        "rp": (1e-4, 0.5),
        "a_rs": (1.01, 200.0),
        "b": (0.0, 1.0),
        "q1": (0.0, 1.0),
        "q2": (0.0, 1.0),
    }
    for name, (value, low, high) in model.defaults().items():
        start.setdefault(name, value)
        bounds[name] = (low, high)
    free = [n for n in model.names if n not in fixed]
    values = {**start, **fixed}
    # The optimiser works on t0 relative to the middle of the visit. In
    # absolute MJD (~6e4 days) t0 dominated the norm of the parameter vector,
    # to which scipy's step tolerance is relative, so the robust fit stopped
    # after a few steps on the a/R*-b valley (a noiseless light curve came
    # out 8-36 sigma off); and the finite-difference step of t0, relative to
    # max(1, |t0|), was 9e-4 days (77 s), coarser than the ingress sampling.
    origin = np.array([model.time_mid if n == "t0" else 0.0 for n in free])
    lo = np.array([bounds[n][0] for n in free]) - origin
    hi = np.array([bounds[n][1] for n in free]) - origin
    x0 = np.clip(np.array([float(values[n]) for n in free]) - origin, lo, hi)
    # Start strictly inside the bounds (trf requires it).
    width = np.where(np.isfinite(hi - lo), hi - lo, 1.0)
    x0 = np.clip(x0, lo + 1e-6 * width, hi - 1e-6 * width)

    def unpack(x):
        out = dict(values)
        out.update(zip(free, x + origin, strict=True))
        return out

    used = np.ones(time.size, dtype=bool)

    target = [flux]  # the data residuals() compares with (bootstrap draws swap it)

    def residuals(x):
        return ((target[0] - model(unpack(x))) / error)[used]

    _check_coverage(model, values, time, min_baseline, min_transit, what)
    robust = optimize.least_squares(
        residuals, x0, bounds=(lo, hi), loss="soft_l1", f_scale=3.0, x_scale="jac"
    )
    if clip_sigma and clip_sigma > 0:
        norm = (flux - model(unpack(robust.x))) / error
        spread = 1.4826 * np.median(np.abs(norm - np.median(norm)))
        # In units of the errors, never below them: noiseless or over-estimated
        # errors must not turn ordinary points into outliers.
        used = np.abs(norm - np.median(norm)) <= clip_sigma * max(spread, 1.0)
    final = optimize.least_squares(residuals, robust.x, bounds=(lo, hi), x_scale="jac")
    best = unpack(final.x)
    _check_coverage(model, best, time[used], min_baseline, min_transit, what, model_used=used)

    jac = final.jac
    try:
        cov = np.linalg.pinv(jac.T @ jac)
        raw = np.sqrt(np.clip(np.diag(cov), 0, None))
    except np.linalg.LinAlgError:
        raw = np.full(len(free), np.nan)
    full = model(best)
    resid = (flux - full)[used]
    statistics = residual_statistics(resid, error[used], len(free), inflate)
    statistics["n_outliers"] = int((~used).sum())
    statistics["converged"] = bool(final.success)
    at_bound = [
        n for n, v, a, b in zip(free, final.x, lo, hi, strict=True)
        if np.isfinite(a) and np.isfinite(b) and (v - a < 1e-4 * (b - a) or b - v < 1e-4 * (b - a))
    ]
    statistics["at_bound"] = ",".join(at_bound) if at_bound else "none"
    errors_raw = dict(zip(free, (float(r) for r in raw), strict=True))
    errors = {n: e * statistics["error_scale"] for n, e in errors_raw.items()}
    errors_boot = {}
    if bootstrap and bootstrap > 1:
        rng = np.random.default_rng(seed)
        sigma = error * statistics["scale_chi2"]
        draws = []
        for _ in range(int(bootstrap)):
            target[0] = full + rng.normal(0.0, sigma)
            draws.append(
                optimize.least_squares(residuals, final.x, bounds=(lo, hi), x_scale="jac").x
            )
        target[0] = flux
        spread = np.std(draws, axis=0, ddof=1)
        for n, sd in zip(free, spread, strict=True):
            errors_boot[n] = float(sd * statistics["scale_beta"])
            errors[n] = max(errors[n], errors_boot[n])
    statistics["error_method"] = (
        f"max(covariance, bootstrap of {int(bootstrap)})" if errors_boot else "covariance"
    )
    return FitResult(
        values={k: float(best[k]) for k in model.names},
        errors=errors,
        errors_raw=errors_raw,
        errors_bootstrap=errors_boot,
        free=free,
        stats=statistics,
        model=full,
        transit=model.transit(best),
        systematics=model.systematics(best),
        time=time,
        flux=flux,
        error=error,
        used=used,
    )


def _check_coverage(model, values, time, min_baseline, min_transit, what, model_used=None):
    """Enough in-transit and out-of-transit points for the model's transit."""
    transit = model.transit(values)
    if model_used is not None:
        transit = transit[model_used]
    n_in = int(np.sum(transit < 1.0))
    n_out = int(transit.size - n_in)
    if n_in < min_transit:
        raise FitInputError(
            f"{what}: no in-transit points ({n_in} in transit for t0={values['t0']:.5f}, "
            f"fewer than {min_transit}); the transit is outside the data: check t0, the "
            "period and the time column (BJD_TDB)."
        )
    if n_out < min_baseline:
        raise FitInputError(
            f"{what}: too few baseline points ({n_out} out of transit, fewer than "
            f"min_baseline={min_baseline}); the systematics cannot be fitted. Use a longer "
            "visit, a simpler baseline (poly_order=0) or lower min_baseline."
        )
