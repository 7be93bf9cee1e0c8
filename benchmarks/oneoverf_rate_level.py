"""Rate-level 1/f methods on rateints made by real ramp fitting, and their floor.

For each preset (default ``realistic_small``; the issue's table uses
``realistic`` and ``hard``):

1. the preset's rateints (raw ramps through the official Detector1 steps and
   optimal-weighted ``ramp_fit``), and its **twin without correlated read
   noise**: the same seed with ``oneoverf_scale=0`` and ``pedestal=0``, so
   the photons, read noise, cosmic rays and scene are identical and
   ``rateints - twin`` is, pixel by pixel, the 1/f that ramp fitting left
   in each slope;
2. ``strun soss_spec2`` (each ``--steps.oneoverf.method``, and the step
   skipped) and ``strun soss_tso3``, scored against the injected transit
   (`jwst_soss_custom.datasets.scoring`); the twin is reduced with the default
   as the "no 1/f in the ramps" row;
3. the **floor** of any rate-level correction, from the twin: in a 31-row
   aperture on order 1, the excess variance (over the photon+read noise of
   the aperture) that 1/f adds to each column's flux and to their sum, when
   (a) nothing is removed, (b) each column's true background offset is
   removed from every pixel (the best any one-offset-per-column method can
   do), (c) the true offsets projected on the two directions of
   `jwst_soss_custom.oneoverf.projection` (background offset + remainder,
   the remainder fitted on the aperture's own true offsets) are removed: a
   check of that model, not a reachable floor (the data only give the
   remainder with noise).

Usage::

    python benchmarks/oneoverf_rate_level.py [--workdir DIR] [--presets realistic_small]
        [--methods scale-achromatic solve project] [--json FILE]
"""

import argparse
import glob
import json
import sys
from datetime import date
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from full_exposure import associate, machine, run_exposure  # noqa: E402

METHODS = ("scale-achromatic", "scale-chromatic", "solve", "project")
TWIN = "_no1f"
APERTURE = 15  # half width (rows) of the order-1 aperture of the floor analysis


def twin(work, preset):
    """Simulate (once) the preset's rateints without 1/f, named like run_exposure's."""
    from jwst_soss_custom.datasets.simulate import simulate

    folder = work / f"rateints_{preset}{TWIN}"
    if not (folder / "spec2_asn.json").exists():
        simulate(folder, preset=preset, level="rateints", oneoverf_scale=0.0, pedestal=0.0)
        associate(folder, "*_rateints.fits", "spec2_asn.json", "-r", "DMSLevel2bBase")
    return folder


def _cube(folder, ext):
    from astropy.io import fits

    return np.concatenate([fits.getdata(p, ext).astype(np.float32)
                           for p in sorted(glob.glob(str(folder / "*_rateints.fits")))])


def floor(work, preset):
    """Excess variance 1/f leaves in order-1 column fluxes for ideal corrections.

    Returns
    -------
    dict
        Per correction: median over columns of the excess variance of a
        column's aperture flux, and that of the sum over columns (white
        light), both in units of the photon+read-noise variance.
    """
    from jwst_soss_custom.oneoverf.oneoverf import trace_mask
    from jwst_soss_custom.oneoverf.projection import (
        estimate_gain,
        expected_coefficients,
        projection_loadings,
    )
    from jwst_soss_custom.tracing import traces_for
    from stdatamodels.jwst import datamodels

    noisy, clean = work / f"rateints_{preset}", work / f"rateints_{preset}{TWIN}"
    oneoverf = _cube(noisy, "SCI")
    oneoverf -= _cube(clean, "SCI")
    err = np.nanmedian(_cube(clean, "ERR")[::4], axis=0)
    deep = np.nanmedian(_cube(clean, "SCI")[::4], axis=0)
    first = sorted(noisy.glob("*_rateints.fits"))[0]
    with datamodels.open(first) as model:
        ngroups, tgroup = model.meta.exposure.ngroups, model.meta.exposure.group_time
        solution = traces_for(model)
    ny, nx = deep.shape
    trace = solution.orders[1]
    columns = np.flatnonzero(np.isfinite(trace.y[4:-4])) + 4
    aperture = np.zeros((ny, nx), bool)
    centre = np.round(trace.y[columns]).astype(int)
    for dy in range(-APERTURE, APERTURE + 1):
        rows = np.clip(centre + dy, 0, ny - 1)
        aperture[rows, columns] = True
    band = trace_mask(solution, (ny, nx), 40.0)
    reference = ~band
    reference[:4], reference[-4:], reference[:, :4], reference[:, -4:] = False, False, False, False
    weights = np.where(np.isfinite(err) & (err > 0), 1.0 / err**2, 0.0)
    gain = estimate_gain(deep, err, ngroups, tgroup)
    coef = expected_coefficients(deep, err, ngroups, tgroup, gain)
    beta, gamma, _, _ = projection_loadings(coef, reference & (weights > 0), weights,
                                            band & (weights > 0))
    f = np.nan_to_num(oneoverf)
    wref = np.where(reference, weights, 0.0).astype(np.float32)
    background = np.einsum("iyx,yx->ix", f, wref) / np.maximum(wref.sum(axis=0), 1e-30)
    # Oracle remainder: the true offsets of the aperture along gamma, once the
    # background's share (beta x background) is removed.
    wap = np.where(aperture, weights * gamma, 0.0).astype(np.float32)
    rest = f - background[:, None, :] * beta
    psi = np.einsum("iyx,yx->ix", rest, wap) / np.maximum(
        np.einsum("yx,yx->x", wap, gamma), 1e-30)
    variance = np.nansum(np.where(aperture, err**2, 0.0), axis=0)[columns]
    out = {"gain": round(gain, 3), "aperture_rows": 2 * APERTURE + 1}
    for name, removed in (
        ("uncorrected", 0.0),
        ("true background offset per column", background[:, None, :]),
        ("true offsets along the two directions (model check)", background[:, None, :] * beta
         + psi[:, None, :] * gamma),
    ):
        excess = np.where(aperture, f - removed, 0.0).sum(axis=1)[:, columns]
        excess -= excess.mean(axis=0)  # a constant per column belongs to the deep frame
        out[name] = {
            "channel_excess": round(float(np.median(excess.var(axis=0) / variance)), 3),
            "white_excess": round(float(excess.sum(axis=1).var() / variance.sum()), 3),
        }
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("benchmark_output"))
    parser.add_argument("--presets", nargs="+", default=["realistic_small"])
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--floor-only", action="store_true",
                        help="only the floor analysis (the rateints and twins must exist)")
    args = parser.parse_args()
    from jwst_soss_custom.datasets.scoring import accuracy

    work = args.workdir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    report = {"date": str(date.today()), "machine": machine(), "presets": {}}
    for preset in args.presets:
        if args.floor_only:
            report["presets"][preset] = {"floor": floor(work, preset)}
            continue
        rows = {}
        runs = [(m, preset, [f"--steps.oneoverf.method={m}"]) for m in args.methods]
        runs += [("skipped", preset, ["--steps.oneoverf.skip=true"])]
        for label, tag, options in runs:
            result = run_exposure(work, tag, spec2_options=options,
                                  simulate_options=["--level", "rateints"], label=f"_{label}")
            truth = next((work / f"rateints_{preset}").glob("*_truth.asdf"))
            rows[label] = {"soss_spec2_s": result["soss_spec2"]["wall_s"],
                           "oneoverf_s": result["soss_spec2"]["stages_s"].get("oneoverf"),
                           "accuracy": accuracy(work / f"products_{tag}_{label}", truth)}
            print(preset, label, json.dumps(rows[label]["accuracy"]["orders"]), flush=True)
        twin(work, preset)
        result = run_exposure(work, f"{preset}{TWIN}", label="_default")
        rows["no correlated read noise in the ramps"] = {
            "accuracy": accuracy(work / f"products_{preset}{TWIN}_default",
                                 next((work / f"rateints_{preset}{TWIN}").glob("*_truth.asdf")))}
        report["presets"][preset] = {"reductions": rows, "floor": floor(work, preset)}
        print(preset, "floor", json.dumps(report["presets"][preset]["floor"]), flush=True)
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
