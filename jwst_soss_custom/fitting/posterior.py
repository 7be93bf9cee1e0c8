"""Posterior sampling of a transit fit with emcee (``soss_fit --mcmc=true``)."""

import logging
from dataclasses import dataclass

import numpy as np

__all__ = ["McmcSettings", "sample_posterior"]

log = logging.getLogger(__name__)


@dataclass
class McmcSettings:
    """Posterior sampling with emcee (``soss_fit --mcmc=true``).

    ``walkers`` chains of ``steps`` steps each; the first ``burn`` steps of
    every chain are dropped. ``seed`` makes the run reproducible.
    """

    walkers: int = 32
    steps: int = 2000
    burn: int = 500
    seed: int = 0

    def __post_init__(self):
        if self.burn >= self.steps:
            raise ValueError(
                f"mcmc burn-in ({self.burn} steps) must be shorter than the chains "
                f"({self.steps} steps)."
            )


def sample_posterior(log_likelihood, best, scales, lo, hi, settings, what="light curve"):
    """Sample a posterior with emcee, flat priors inside the bounds.

    The walkers start in a small ball (1 % of ``scales``) around the
    least-squares solution ``best``, so the burn-in only has to spread them
    over the posterior, not to find it.

    Parameters
    ----------
    log_likelihood : callable
        ``log_likelihood(x)`` of the free-parameter vector.
    best, scales : ndarray
        Least-squares solution and (covariance) uncertainties.
    lo, hi : ndarray
        Bounds (flat prior; may be infinite).
    settings : McmcSettings
    what : str
        Name used in messages.

    Returns
    -------
    samples : ndarray
        (n_samples, n_free) posterior draws after burn-in.
    info : dict
        ``mcmc_acceptance`` (mean acceptance fraction),
        ``mcmc_autocorr_steps`` (largest integrated autocorrelation time) and
        ``mcmc_effective_samples`` (walkers x kept steps / that time; fewer
        than 500 is said in a warning).
    """
    import emcee

    ndim = best.size
    walkers = int(settings.walkers)
    if walkers < 2 * ndim:
        raise ValueError(
            f"{what}: mcmc needs at least twice as many walkers as free parameters "
            f"({walkers} < 2 x {ndim}); raise mcmc_walkers."
        )

    def log_prob(x):
        if np.any(x <= lo) or np.any(x >= hi):
            return -np.inf
        return log_likelihood(x)

    rng = np.random.default_rng(settings.seed)
    scales = np.where(np.isfinite(scales) & (scales > 0), scales, 1e-6 * (np.abs(best) + 1))
    start = best + 0.01 * scales * rng.standard_normal((walkers, ndim))
    # Walkers must start where the prior is non-zero: reflect any outside a bound.
    width = np.where(np.isfinite(hi - lo), hi - lo, 1.0)
    start = np.clip(start, lo + 1e-9 * width, hi - 1e-9 * width)
    sampler = emcee.EnsembleSampler(walkers, ndim, log_prob)
    # emcee draws its moves from its own RandomState: seed it for repeatable chains.
    sampler.random_state = np.random.RandomState(settings.seed).get_state()
    sampler.run_mcmc(start, int(settings.steps), progress=False)
    samples = sampler.get_chain(discard=int(settings.burn), flat=True)
    tau = sampler.get_autocorr_time(discard=int(settings.burn), quiet=True, tol=0)
    kept = int(settings.steps) - int(settings.burn)
    info = {
        "mcmc_acceptance": float(np.mean(sampler.acceptance_fraction)),
        "mcmc_autocorr_steps": float(np.nanmax(tau)),
    }
    # From n independent Gaussian draws the 16-84 % half-width has a relative error
    # of 0.96/sqrt(n) (order-statistic variance of the two percentiles).
    info["mcmc_effective_samples"] = float(walkers * kept / max(info["mcmc_autocorr_steps"], 1.0))
    if info["mcmc_effective_samples"] < 500:
        log.warning(
            "%s: only %.0f independent posterior draws (%d walkers x %d steps after burn-in, "
            "autocorrelation %.0f steps): the uncertainties are known to ~%.0f %% only; "
            "raise mcmc_steps.",
            what, info["mcmc_effective_samples"], walkers, kept, info["mcmc_autocorr_steps"],
            96 / np.sqrt(info["mcmc_effective_samples"]),
        )  # fmt: skip
    return samples, info
