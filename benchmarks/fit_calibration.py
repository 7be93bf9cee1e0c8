"""Injection and recovery of soss_fit: pixel-level simulations and many cheap realisations.

Two parts, written to one JSON file:

* ``pixel``: for each seed, the ``small`` preset (100 integrations, photon +
  read noise only) through soss_spec2, soss_tso3 (10-column bins) and the fits
  with their default settings. White light: (fit - truth) / error of t0,
  depth and a/R* (and b), and the chi-square of the data against the injected
  light curve (its systematics refitted) minus the best fit's: for a model
  that contains the truth and correct errors this is chi-square distributed
  with as many degrees of freedom as transit parameters (6). Channels: the
  reduced chi-square of the recovered spectrum against the injected one
  (common offset removed) and the spread of the pulls.
* ``draws``: the first seed's noiseless injected white light plus Gaussian
  noise of its whtlt errors, refitted ``--draws`` times with covariance errors
  only and ``--bootstrap-draws`` times with the default bootstrap: the spread
  and mean of the pulls, and how often each parameter, and any of t0, depth
  and a/R*, lands beyond 2 sigma.

Usage::

    python benchmarks/fit_calibration.py [--workdir fit_calibration] [--seeds 5 6 7]
        [--draws 1000] [--bootstrap-draws 200] [--json benchmarks/results_fit_calibration.json]
"""

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np

NAMES = ("t0", "depth_ppm", "a_rs", "b")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("fit_calibration"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[5, 6, 7])
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--bootstrap-draws", type=int, default=200)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    pixel = [pixel_run(args.workdir / f"seed{seed}", seed) for seed in args.seeds]
    first = args.workdir / f"seed{args.seeds[0]}"
    draws = {
        "covariance": noise_draws(first, args.draws, bootstrap=0),
        "bootstrap_100": noise_draws(first, args.bootstrap_draws, bootstrap=100),
    }
    result = {"preset": "small", "pixel": pixel, "draws": draws}
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


def _inputs(folder, seed=None):
    """Simulate and reduce once (cached in ``folder``); return tables and truth."""
    from astropy.table import Table

    from jwst_soss_custom.datasets import NO_SYSTEMATICS, load_truth, simulate
    from jwst_soss_custom.pipeline import SossSpec2Pipeline, SossTso3Pipeline

    whtlt = folder / "products" / "sim_whtlt.ecsv"
    if not whtlt.is_file():
        sim = simulate(folder / "raw", preset="small", seed=seed, **NO_SYSTEMATICS)
        SossSpec2Pipeline.call([str(p) for p in sim.segment_files],
                               output_dir=str(folder / "x1d"), save_results=True)  # fmt: skip
        SossTso3Pipeline.call(
            sorted(str(p) for p in (folder / "x1d").glob("*_x1dints.fits")),
            output_dir=str(folder / "products"), output_file="sim",
            steps={"lightcurves": {"bin_width": 10}},
        )  # fmt: skip
    truth = load_truth(next((folder / "raw").glob("*_truth.asdf")))
    speclc = Table.read(folder / "products" / "sim_speclc.ecsv")
    return Table.read(whtlt), speclc, truth


def _white_truth(truth):
    from jwst_soss_custom.fitting.truth import injected_orbit, injected_white_light

    flux, depth = injected_white_light(truth)
    values = injected_orbit(truth)
    values["depth_ppm"] = depth
    return flux, values


def _pulls(fit, values):
    derived = fit.derived()
    out = {}
    for name in NAMES:
        value, error = derived[name] if name in derived else (fit.values[name], fit.errors[name])
        out[name] = float((value - values[name]) / error)
    return out


def pixel_run(folder, seed):
    """White-light and spectrum recovery on one pixel-level simulation."""
    from jwst_soss_custom.fitting import fit_light_curve, fit_products
    from jwst_soss_custom.fitting.truth import injected_channel_depths

    whtlt, speclc, truth = _inputs(folder, seed)
    flux, values = _white_truth(truth)
    clock = time.perf_counter()
    products = fit_products(whtlt, speclc, period=values["period"])
    seconds = time.perf_counter() - clock
    white = products.white_fits[1]
    pulls = _pulls(white, values)
    # Chi-square of the data against the injected transit (systematics refitted).
    noiseless = fit_light_curve(white.time, flux, white.error, values["period"], inflate="never")
    fixed = {k: noiseless.values[k] for k in ("t0", "rp", "a_rs", "b", "q1", "q2")}
    at_truth = fit_light_curve(white.time, white.flux, white.error, values["period"],
                               fixed=fixed, clip_sigma=0, inflate="never")  # fmt: skip
    best = fit_light_curve(white.time, white.flux, white.error, values["period"], clip_sigma=0,
                           inflate="never")  # fmt: skip

    def chi2(fit):
        return float(np.sum(((fit.flux - fit.model) / fit.error) ** 2))

    rows = products.transmission[products.transmission["order"] == 1]
    injected = injected_channel_depths(truth, 1, rows["wave_low"].value, rows["wave_high"].value)
    spec_pulls = (np.asarray(rows["depth_ppm"]) - injected) / np.asarray(rows["depth_error_ppm"])
    offset = float(np.mean(spec_pulls))
    return {
        "seed": seed,
        "white_pulls": pulls,
        "white_max_abs_pull_t0_depth_a_rs": max(abs(pulls[n]) for n in NAMES[:3]),
        "white_chi2_red": white.stats["chi2_red"],
        "white_delta_chi2_truth": chi2(at_truth) - chi2(best),
        "white_errors": {n: float(white.errors[n]) for n in ("t0", "rp", "a_rs", "b")},
        "channels": int(len(rows)),
        "spectrum_chi2_red_offset_removed": float(
            np.sum((spec_pulls - offset) ** 2) / (len(spec_pulls) - 1)
        ),
        "spectrum_chi2_red": float(np.mean(spec_pulls**2)),
        "spectrum_mean_pull": offset,
        "spectrum_pull_std": float(np.std(spec_pulls)),
        "fit_seconds": seconds,
    }


def noise_draws(folder, ndraws, bootstrap):
    """Pulls of the white-light fit over Gaussian noise draws of the whtlt errors."""
    from jwst_soss_custom.fitting import fit_light_curve
    from jwst_soss_custom.fitting.tables import white_light_curves

    whtlt, _, truth = _inputs(folder)
    curve = white_light_curves(whtlt)[1]
    flux, values = _white_truth(truth)
    rng = np.random.default_rng(2026)
    pulls = []
    clock = time.perf_counter()
    for k in range(ndraws):
        noisy = flux + rng.normal(0.0, curve["error"])
        fit = fit_light_curve(curve["time"], noisy, curve["error"], values["period"],
                              bootstrap=bootstrap, seed=k)  # fmt: skip
        pulls.append([_pulls(fit, values)[n] for n in NAMES])
    pulls = np.array(pulls)
    beyond = np.abs(pulls) > 2
    return {
        "draws": ndraws,
        "bootstrap": bootstrap,
        "pull_std": dict(zip(NAMES, np.std(pulls, axis=0).round(4).tolist(), strict=True)),
        "pull_mean": dict(zip(NAMES, np.mean(pulls, axis=0).round(4).tolist(), strict=True)),
        "fraction_beyond_2sigma": dict(
            zip(NAMES, beyond.mean(axis=0).round(4).tolist(), strict=True)
        ),
        "fraction_any_of_t0_depth_a_rs_beyond_2sigma": float(beyond[:, :3].any(axis=1).mean()),
        "seconds_per_fit": (time.perf_counter() - clock) / ndraws,
    }


if __name__ == "__main__":
    main()
