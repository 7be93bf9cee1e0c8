"""Least-squares transit fits, residual statistics and error inflation (pure numpy/scipy).

`fit_light_curve` fits one light curve with `LightCurveModel`: a robust
(``soft_l1``) least-squares fit, points beyond ``clip_sigma`` times the
residual scatter left out, then an ordinary least-squares refit from there
whose Jacobian gives the covariance. `residual_statistics` compares the
residual scatter with the propagated errors (reduced chi-square) and measures
the time-averaging (beta) red-noise factor; the uncertainties are inflated
when either exceeds what white noise with the given errors produces in 99 %
of cases. With an `McmcSettings`, `sample_posterior` (emcee, in
`~jwst_soss_custom.fitting.posterior`) gives the uncertainties from posterior
percentiles instead.
"""

import logging
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from scipy import optimize

from jwst_soss_custom.fitting.model import LightCurveModel, inclination, ld_from_q
from jwst_soss_custom.fitting.posterior import sample_posterior

__all__ = [
    "FitResult",
    "beta_factor",
    "beta_threshold",
    "check_light_curve",
    "fit_light_curve",
    "guess_orbit",
    "residual_statistics",
]

log = logging.getLogger(__name__)

#: Options of every least-squares call (scaled by the Jacobian's columns:
#: the parameters range from ppm-level slopes to a/R* ~ 10).
SOLVER = {"x_scale": "jac"}
#: Limb-darkening parameters (Kipping's q1, q2).
LIMB_DARKENING = ("q1", "q2")
#: Evaluations allowed to one bootstrap refit (see `_bootstrap_errors`).
BOOTSTRAP_MAX_NFEV = 100


class FitInputError(ValueError):
    """A light curve that cannot be fitted (the message names the fix)."""


@dataclass
class FitResult:
    """Outcome of one light-curve fit.

    ``values`` holds every parameter (free and fixed); ``errors`` the
    uncertainties of the free ones after inflation (``error_scale``) and
    bootstrap (or MCMC), ``errors_raw`` the covariance ones before inflation,
    ``errors_bootstrap`` the bootstrap spreads (empty without bootstrap),
    ``errors_mcmc`` the posterior half 16-84 % ranges and ``samples`` the
    posterior draws (empty and None without MCMC). ``stats`` holds the fit
    statistics.
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
    errors_mcmc: dict = field(default_factory=dict)
    samples: np.ndarray | None = field(default=None, repr=False)

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


#: Fewest points a light curve needs (a transit and a baseline to fit).
MIN_POINTS = 10


def check_light_curve(time, flux, error, what="light curve"):
    """Check that the arrays can be fitted; raise `FitInputError` naming the problem."""
    time, flux, error = (np.asarray(a, dtype=float) for a in (time, flux, error))
    if not (time.shape == flux.shape == error.shape) or time.ndim != 1:
        raise FitInputError(f"{what}: time, flux and error must be 1-D arrays of one length.")
    if time.size < MIN_POINTS:
        raise FitInputError(
            f"{what}: {time.size} usable points (integrations with data), fewer than "
            f"{MIN_POINTS}; nothing to fit."
        )
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
    from scipy import stats  # here: importing scipy.stats costs every strun ~0.4 s

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
    mcmc=None,
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
    mcmc : `~jwst_soss_custom.fitting.posterior.McmcSettings`, optional
        Sample the posterior with emcee from the least-squares solution (see
        `sample_posterior`); the uncertainties are then half the 16-84 %
        posterior range (scaled by beta when that applies) instead of the
        covariance and bootstrap ones (no bootstrap is then run).
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
    model = LightCurveModel(time, period, poly_order, ramp, regressors)
    problem = _Problem(model, flux, error, dict(fixed or {}), initial)
    _check_coverage(model, problem.values, time, min_baseline, min_transit, what)
    final = _optimise(problem, clip_sigma)
    best = problem.unpack(final.x)
    used = problem.used
    _check_coverage(model, best, time[used], min_baseline, min_transit, what, model_used=used)

    try:
        raw = np.sqrt(np.clip(np.diag(np.linalg.pinv(final.jac.T @ final.jac)), 0, None))
    except np.linalg.LinAlgError:
        raw = np.full(len(problem.free), np.nan)
    full = model(best)
    statistics = residual_statistics((flux - full)[used], error[used], len(problem.free), inflate)
    statistics["n_outliers"] = int((~used).sum())
    statistics["converged"] = bool(final.success)
    statistics["at_bound"] = ",".join(problem.at_bound(final.x)) or "none"
    errors_raw = dict(zip(problem.free, (float(r) for r in raw), strict=True))
    errors = {n: e * statistics["error_scale"] for n, e in errors_raw.items()}
    # At a bound of its range, or with no curvature of the chi-square, a
    # parameter's covariance error means nothing (it came out as +-0): the
    # data do not constrain it there, so it has no error (NaN) and is named.
    unconstrained = sorted(set(problem.at_bound(final.x))
                           | {n for n, r in errors_raw.items() if not r > 0})
    statistics["unconstrained"] = ",".join(unconstrained) or "none"
    errors_boot = {}
    if bootstrap and bootstrap > 1 and mcmc is None:  # the posterior replaces it
        errors_boot = _bootstrap_errors(problem, final.x, full, statistics, int(bootstrap), seed)
        errors = {n: max(e, errors_boot[n]) for n, e in errors.items()}
    statistics["error_method"] = (
        f"max(covariance, bootstrap of {int(bootstrap)})" if errors_boot else "covariance"
    )
    errors_mcmc, samples = {}, None
    if mcmc is not None:
        errors_mcmc, samples = _posterior_errors(problem, final.x, raw, statistics, mcmc, what)
        errors = dict(errors_mcmc)
    elif unconstrained:
        # (The posterior's one-sided ranges are errors; the covariance's are not.)
        errors.update({n: np.nan for n in unconstrained})
        # Limb darkening at its physical bound is common and harmless: said
        # in the statistics, not warned about in every channel.
        named = [n for n in unconstrained if n not in LIMB_DARKENING]
        if named:
            log.warning("%s: %s at a bound of its range or not constrained by the data: "
                        "reported without an error (NaN).", what, ", ".join(named))
    return FitResult(
        values={k: float(best[k]) for k in model.names},
        errors=errors,
        errors_raw=errors_raw,
        errors_bootstrap=errors_boot,
        free=problem.free,
        stats=statistics,
        model=full,
        transit=model.transit(best),
        systematics=model.systematics(best),
        time=time,
        flux=flux,
        error=error,
        used=used,
        errors_mcmc=errors_mcmc,
        samples=samples,
    )


class _Problem:
    """The least-squares problem of one fit: free parameters, bounds, residuals.

    The optimiser works on t0 relative to the middle of the visit. In
    absolute MJD (~6e4 days) t0 dominated the norm of the parameter vector,
    to which scipy's step tolerance is relative, so the robust fit stopped
    after a few steps on the a/R*-b valley (a noiseless light curve came out
    8-36 sigma off); and the finite-difference step of t0, relative to
    max(1, |t0|), was 9e-4 days (77 s), coarser than the ingress sampling.

    Attributes
    ----------
    free : list of str
    values : dict
        Starting values of every parameter (fixed ones included).
    lo, hi, x0 : ndarray
        Bounds and start of the free parameters (t0 relative to ``origin``).
    used : ndarray of bool
        Points the residuals include (outliers are left out by `_optimise`).
    target : ndarray
        The flux the residuals compare with (bootstrap draws swap it).
    """

    def __init__(self, model, flux, error, fixed, initial):
        time = model.time
        start = {"q1": 0.36, "q2": 0.3}
        if not {"t0", "rp", "a_rs", "b"} <= set(fixed) | set(initial or {}):
            start.update(guess_orbit(time, flux, model.period))
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
        self.model, self.error, self.target = model, error, flux
        self.free = [n for n in model.names if n not in fixed]
        self.values = {**start, **fixed}
        self.origin = np.array([model.time_mid if n == "t0" else 0.0 for n in self.free])
        self.lo = np.array([bounds[n][0] for n in self.free]) - self.origin
        self.hi = np.array([bounds[n][1] for n in self.free]) - self.origin
        x0 = np.clip(np.array([float(self.values[n]) for n in self.free]) - self.origin,
                     self.lo, self.hi)
        # Start strictly inside the bounds (trf requires it).
        width = np.where(np.isfinite(self.hi - self.lo), self.hi - self.lo, 1.0)
        self.x0 = np.clip(x0, self.lo + 1e-6 * width, self.hi - 1e-6 * width)
        self.used = np.ones(time.size, dtype=bool)

    def unpack(self, x):
        """Every parameter's value for the free parameters ``x``."""
        out = dict(self.values)
        out.update(zip(self.free, x + self.origin, strict=True))
        return out

    def residuals(self, x):
        """Normalised residuals of the used points."""
        return ((self.target - self.model(self.unpack(x))) / self.error)[self.used]

    def solve(self, x, **options):
        """`scipy.optimize.least_squares` from ``x`` within the bounds."""
        return optimize.least_squares(
            self.residuals, x, bounds=(self.lo, self.hi), **SOLVER, **options
        )

    def at_bound(self, x):
        """Free parameters within 1e-4 of their range from a bound."""
        return [
            n for n, v, a, b in zip(self.free, x, self.lo, self.hi, strict=True)
            if np.isfinite(a) and np.isfinite(b)
            and (v - a < 1e-4 * (b - a) or b - v < 1e-4 * (b - a))
        ]


def _optimise(problem, clip_sigma):
    """Robust fit, outliers left out (``problem.used``), then the least-squares refit."""
    robust = problem.solve(problem.x0, loss="soft_l1", f_scale=3.0)
    if clip_sigma and clip_sigma > 0:
        flux, error = problem.target, problem.error
        norm = (flux - problem.model(problem.unpack(robust.x))) / error
        spread = 1.4826 * np.median(np.abs(norm - np.median(norm)))
        # In units of the errors, never below them: noiseless or over-estimated
        # errors must not turn ordinary points into outliers.
        problem.used = np.abs(norm - np.median(norm)) <= clip_sigma * max(spread, 1.0)
    return problem.solve(robust.x)


def _bootstrap_errors(problem, x, full, statistics, draws, seed):
    """Spread of refits to the best model plus noise of the chi-square-scaled errors."""
    rng = np.random.default_rng(seed)
    flux = problem.target
    sigma = problem.error * statistics["scale_chi2"]
    fits = []
    for _ in range(draws):
        problem.target = full + rng.normal(0.0, sigma)
        # From the optimum a refit needs <= 17 evaluations on the simulated
        # light curves (median 6); one along a direction the data do not
        # constrain ran to scipy's 800 every time (30 integrations: 50 s).
        fits.append(problem.solve(x, max_nfev=BOOTSTRAP_MAX_NFEV).x)
    problem.target = flux
    spread = np.std(fits, axis=0, ddof=1)
    return {n: float(sd * statistics["scale_beta"])
            for n, sd in zip(problem.free, spread, strict=True)}


def _posterior_errors(problem, x, raw, statistics, mcmc, what):
    """Half the 16-84 % posterior ranges (emcee from ``x``) and the samples."""

    def log_likelihood(params):
        return -0.5 * np.sum(problem.residuals(params) ** 2) / statistics["scale_chi2"] ** 2

    samples, info = sample_posterior(
        log_likelihood, x, raw * statistics["scale_chi2"], problem.lo, problem.hi, mcmc, what
    )
    samples = samples + problem.origin  # t0 back in the time system of the data
    low, high = np.percentile(samples, [15.865, 84.135], axis=0)
    errors = {n: float(half * statistics["scale_beta"])
              for n, half in zip(problem.free, 0.5 * (high - low), strict=True)}
    statistics.update(info)
    statistics["error_method"] = (
        f"mcmc ({mcmc.walkers} walkers x {mcmc.steps} steps, {mcmc.burn} burn-in)"
    )
    return errors, samples


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
