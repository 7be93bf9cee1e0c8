"""Wavelength check (soss_tracing) on host stars it was not built from, and on the real frame.

For each host temperature (3500-6500 K) and pair of injected spectral offsets
(order 1, order 2; -1 ... +1 px from pastasoss), the simulator's scene of the
``realistic`` (or ``hard``) preset is drawn with that star: its own line
depths and widths, lines the packaged list lacks, a random forest of weak
lines, molecular bands below 4500 K, field-star traces and order 0s. Its
deep frame gets the noise of a median over the preset's integrations
(`jwst_soss_custom.datasets.scene.noisy_deep_frame`). Each host has a radial
velocity drawn in +-80 km/s; the check runs with it fitted (the default) and
given (``stellar_rv``). soss_tracing's exposure-level steps then run as inside the step:
refinement, wavelength check, refinement along the applied shift.

Reported per order: bias and rms of the measured shift against the truth,
the pull distribution (error / quoted uncertainty), how often the shift is
applied, the error of the wavelengths finally used (0 where pastasoss is
kept and the truth is 0), and the same for faint hosts (``--faint`` flux
scales) where the check must refuse. Then the real WASP-39 median frame
(``../shared/data``): the offsets found, per feature.

Usage::

    python benchmarks/wavelength_check.py [--preset realistic] [--seeds 2]
        [--json FILE]
"""

import argparse
import json
import logging
import platform
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np

from jwst_soss_custom.datasets.config import make_config
from jwst_soss_custom.datasets.scene import noisy_deep_frame
from jwst_soss_custom.tracing.refine import refine_solution
from jwst_soss_custom.tracing.tracing import predict_traces
from jwst_soss_custom.tracing.wavecal import check_wavelengths, load_line_list

TEFFS = (3500.0, 4250.0, 5000.0, 5750.0, 6500.0)
OFFSETS = (-1.0, -0.5, 0.0, 0.5, 1.0)
# The real frame's noise: 537 integrations of 8 group intervals, gain 1.61.
GAIN, READ_NOISE, EXPOSURE = 1.61, 14.0, 8 * 5.494
REAL_FRAME = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / (
    "wasp39_medframe_substrip256.npy")


def trace_exposure(deep, noise, pwcpos, velocity=None):
    """soss_tracing's exposure-level sequence with its defaults."""
    solution = refine_solution(deep, predict_traces(pwcpos, (1, 2), deep.shape[1]))
    check_wavelengths(deep, solution, load_line_list(), noise=noise, velocity=velocity)
    shifts = {o: t.record["wavelength"]["applied_shift"] for o, t in solution.orders.items()}
    if any(shifts.values()):
        solution = refine_solution(deep, solution, dx=shifts)
    return solution


def one_case(preset, teff, offsets, seed, rv, flux_scale=None, rv_given=False):
    overrides = dict(teff=teff, trace_dx=0.0, trace_dx_order1=offsets[0],
                     trace_dx_order2=offsets[1], seed=seed, stellar_rv=rv)
    if flux_scale is not None:
        overrides["flux_scale"] = flux_scale
    config = make_config(preset, **overrides)
    deep, noise, scene = noisy_deep_frame(config)
    rows = []
    for given in (False, True) if rv_given else (False,):
        rows += _score(scene, config, trace_exposure(deep, noise, config.pwcpos,
                                                     rv if given else None), offsets, given)
    return rows


def _score(scene, config, solution, offsets, given):
    rows = []
    velocity = solution.record["radial_velocity"]
    for order, truth in zip((1, 2), offsets):
        check = solution.orders[order].record["wavelength"]
        x = scene.traces[order].columns
        y_true, _, _ = scene.traces[order].at()
        inside = (x >= 4) & (x < 2044) & (y_true > 5) & (y_true < 250)
        rows.append({
            "preset": config.preset,
            "teff": config.teff, "seed": config.seed, "order": order, "truth": truth,
            "flux_scale": config.flux_scale, "rv": config.stellar_rv, "rv_given": given,
            "rv_fitted": velocity["value"], "rv_error": velocity["error"],
            "shift": check["shift"], "error": check["error"], "status": check["status"],
            "applied": check["applied_shift"], "scatter": check["scatter"],
            "n_used": check["n_used"], "n_features": check["n_features"],
            "trace_y_error_max": float(np.nanmax(np.abs(
                solution.orders[order].y[x[inside]] - y_true[inside]))),
        })
    return rows


def summarise(rows):
    out = {}
    for order in (1, 2):
        r = [x for x in rows if x["order"] == order]
        measured = [x for x in r if x["shift"] is not None and x["error"] is not None]
        d = np.array([x["shift"] - x["truth"] for x in measured])
        pull = d / np.array([x["error"] for x in measured])
        used = np.array([x["applied"] - x["truth"] for x in r])
        out[order] = {
            "cases": len(r), "measured": len(measured),
            "applied": sum(x["status"] == "applied" for x in r),
            "bias": float(d.mean()) if d.size else None,
            "rms": float(np.sqrt(np.mean(d**2))) if d.size else None,
            "max_abs": float(np.abs(d).max()) if d.size else None,
            "pull_std": float(pull.std()) if d.size > 1 else None,
            "pull_mean": float(pull.mean()) if d.size else None,
            "median_error": float(np.median([x["error"] for x in measured])) if d.size else None,
            "used_rms": float(np.sqrt(np.mean(used**2))),
            "trace_y_error_max": float(max(x["trace_y_error_max"] for x in r)),
            "per_teff": {
                str(int(t)): {
                    "bias": float(np.mean([x["shift"] - x["truth"] for x in measured
                                           if x["teff"] == t] or [np.nan])),
                    "rms": float(np.sqrt(np.mean([(x["shift"] - x["truth"]) ** 2
                                                  for x in measured if x["teff"] == t]
                                                 or [np.nan]))),
                }
                for t in sorted({x["teff"] for x in r})
            },
        }
    return out


def real_frame(pwcpos=245.76, nints=537, velocity=None):
    """The check on the real WASP-39 median frame (background not removed: a
    smooth continuum to the line fits), noise of a 537-integration median."""
    deep = np.load(REAL_FRAME).astype(float)
    signal = np.clip(deep, 0.0, None)
    variance = (signal * GAIN * EXPOSURE + 2 * (READ_NOISE * GAIN) ** 2) / (GAIN * EXPOSURE) ** 2
    noise = np.sqrt(np.pi / 2 * variance / nints)
    solution = trace_exposure(deep, noise, pwcpos, velocity)
    return {order: dict(solution.orders[order].record["wavelength"]) for order in (1, 2)} | {
        "trace_dy": {o: solution.orders[o].record["dy"] for o in (1, 2)},
        "radial_velocity": solution.record["radial_velocity"]}


#: WASP-39's systemic radial velocity (km/s; Faedi et al. 2011, A&A 531, A40).
WASP39_SYSTEMIC_RV = -58.4
#: Mid-time of the ERS SOSS transit (2022 July 26-27) and WASP-39's position.
WASP39_EPOCH, WASP39_RA, WASP39_DEC = "2022-07-27T00:00:00", "14h29m18.4s", "-03d26m40s"


def wasp39_velocity():
    """WASP-39's line-of-sight velocity relative to the observatory (km/s).

    Its systemic velocity plus the barycentric correction (JWST's VELOSYS,
    computed here from Earth's barycentric velocity, which JWST at L2 shares
    to ~1 km/s): the frame's header is not available.
    """
    import astropy.units as u
    from astropy.coordinates import SkyCoord, get_body_barycentric_posvel
    from astropy.time import Time

    _, velocity = get_body_barycentric_posvel("earth", Time(WASP39_EPOCH, scale="tdb"))
    towards = SkyCoord(WASP39_RA, WASP39_DEC).cartesian.xyz.value
    velosys = -float(velocity.xyz.to(u.km / u.s).value @ towards)
    return WASP39_SYSTEMIC_RV + velosys


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="realistic")
    parser.add_argument("--seeds", type=int, default=2, help="offset pairings per temperature")
    parser.add_argument("--faint", type=float, nargs="*", default=[0.02, 0.005],
                        help="flux scales (x WASP-39, J=10.7) of the faint-host runs")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    logging.disable(logging.INFO)
    start = time.time()
    rows, case = [], 0
    # Host velocities relative to JWST: systemic (most hosts within +-60 km/s)
    # plus the observatory's (+-30 km/s).
    velocities = np.random.default_rng(11).uniform(-80.0, 80.0, len(TEFFS) * args.seeds * 5)
    for i, teff in enumerate(TEFFS):
        for rep in range(args.seeds):
            for j, o1 in enumerate(OFFSETS):
                # Every order-2 offset meets every order-1 offset across the grid.
                o2 = OFFSETS[(j + 2 * i + 1 + 3 * rep) % len(OFFSETS)]
                rows += one_case(args.preset, teff, (o1, o2), 500 + case, velocities[case],
                                 rv_given=True)
                case += 1
    faint = []
    for scale in args.faint:
        for k, teff in enumerate(TEFFS):
            faint += one_case(args.preset, teff, (0.5, -0.5), 900 + k, -30.0, flux_scale=scale)
    result = {
        "date": date.today().isoformat(),
        "machine": f"{platform.processor() or platform.machine()}, python {sys.version.split()[0]}",
        "preset": args.preset,
        "cases": case,
        "summary": summarise([r for r in rows if not r["rv_given"]]),
        "summary_rv_given": summarise([r for r in rows if r["rv_given"]]),
        "rv_fitted_minus_true": [
            (r["rv"], r["rv_fitted"], r["rv_error"]) for r in rows
            if not r["rv_given"] and r["order"] == 1],
        "faint": {str(s): summarise([r for r in faint if r["flux_scale"] == s])
                  for s in args.faint},
        "faint_statuses": [(r["flux_scale"], r["teff"], r["order"], r["status"]) for r in faint],
        "real_frame": {"fitted": real_frame(), "velocity_given": wasp39_velocity(),
                       "given": real_frame(velocity=wasp39_velocity())},
        "rows": rows,
        "seconds": time.time() - start,
    }
    text = json.dumps(result, indent=1, default=float)
    if args.json:
        Path(args.json).write_text(text)
    summary = {k: result[k] for k in ("summary", "summary_rv_given", "faint")}
    print(json.dumps(summary, indent=1, default=float))
    for mode in ("fitted", "given"):
        for order in (1, 2):
            real = result["real_frame"][mode][order]
            print(f"real frame, velocity {mode}, order {order}: {real['status']} shift "
                  f"{real['shift']} +- {real['error']} ({real['n_used']}/{real['n_features']} "
                  "features)")
        print("   velocity", result["real_frame"][mode]["radial_velocity"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
