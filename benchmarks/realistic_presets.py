"""Simulator cost and pipeline accuracy on the realistic presets (full size).

For each preset (default ``realistic`` and ``hard``, 537 integrations in four
segments):

1. ``soss_simulate --level uncal`` (raw ramps + references) and
   ``soss_simulate --level rateints`` (the same ramps through the official
   Detector1 steps and optimal-weighted ramp fitting): wall time, peak
   memory (process tree, PSS), size on disk;
2. ``strun soss_spec2`` and ``strun soss_tso3`` on those rateints, with
   their defaults, as a user would run them;
3. what came out against what went in:

   * white-light scatter and the median spectroscopic-channel scatter over
     the photon+read expectation (the products' own errors, point-to-point
     estimator), per order;
   * white-light depth recovered against injected and against the depth the
     field stars' light leaves (``depth_diluted`` of the truth), in sigma;
   * the transmission spectrum (``soss_fit`` least squares, period from the
     truth): reduced chi^2 against the injected depths and against the
     diluted depths, per order;
   * wavelength error per order: the pipeline's wavelength of each column
     minus the truth's, in pixels (median over the order's columns).

Usage::

    python benchmarks/realistic_presets.py [--workdir DIR] [--presets realistic hard]
        [--nints N] [--no-uncal] [--json benchmarks/results_realistic_<date>.json]
"""

import argparse
import json
import sys
from datetime import date
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from full_exposure import BIN, machine, measured, run_exposure  # noqa: E402


def _dir_gb(folder, pattern):
    return round(sum(p.stat().st_size for p in folder.rglob(pattern)) / 1e9, 2)


def uncal_cost(work, preset, nints):
    """Time, memory and disk of writing the preset's raw ramps and references."""
    out = work / f"uncal_{preset}"
    cmd = [BIN / "soss_simulate", "--preset", preset, "--level", "uncal", "--output-dir", out,
           "--quiet"] + (["--nints", nints] if nints else [])
    wall, peak, _ = measured(cmd, work)
    result = {"wall_s": round(wall, 1), "peak_MB": round(peak),
              "uncal_GB": _dir_gb(out, "*_uncal.fits"), "refs_GB": _dir_gb(out / "refs", "*.fits")}
    for path in out.glob("*_uncal.fits"):
        path.unlink()  # 5 GB; the cost is what was measured
    return result


def wavelength_errors(x1dints, truth):
    """Pipeline minus true wavelength per order, in pixels (median over columns)."""
    from stdatamodels.jwst import datamodels

    from jwst_soss_custom.tracing.tracing import TraceSolution

    with datamodels.open(x1dints) as model:
        solution = TraceSolution.from_tree(model.soss_traces)
    out = {}
    for order, trace in solution.orders.items():
        o = truth[f"order{order}"]
        cols = o["x"]
        wave_pipe = np.asarray(trace.wavelength, float)[cols]
        dispersion = np.gradient(o["wavelength"], cols.astype(float))
        pixels = (wave_pipe - o["wavelength"]) / dispersion
        inside = np.isfinite(pixels) & (cols > 10) & (cols < 2038)
        out[order] = round(float(np.median(pixels[inside])), 3)
    return out


def accuracy(products, truth_file, x1dints):
    """Precision, depth recovery, spectrum chi^2 and wavelength errors of one exposure."""
    from astropy.table import Table

    from jwst_soss_custom.datasets import load_truth
    from jwst_soss_custom.fitting import fit_products
    from jwst_soss_custom.fitting.truth import (
        injected_channel_depths,
        injected_orbit,
        injected_white_light,
    )
    from jwst_soss_custom.report import whitelight_precision

    truth = load_truth(truth_file)
    whtlt_path = next(products.glob("*_whtlt.ecsv"))
    whtlt = Table.read(whtlt_path)
    speclc = Table.read(next(products.glob("*_speclc.ecsv")))
    precision = Table.read(next(products.glob("*_precision.ecsv")))
    fits_ = fit_products(whtlt, speclc, period=injected_orbit(truth)["period"])
    result = {"orders": {}}
    for order, (scatter, expected, ratio) in sorted(whitelight_precision(whtlt).items()):
        sel = (np.asarray(precision["order"]) == order) & (np.asarray(precision["bin"]) >= 0)
        channel_ratio = np.asarray(precision["ratio"], float)[sel]
        channel_ratio = channel_ratio[np.isfinite(channel_ratio)]
        white = fits_.white_fits[order]
        depth, depth_err = white.derived()["depth_ppm"]
        wave_range = tuple(whtlt.meta.get(f"wavelength_range_order_{order}", (0.85, 2.83)))
        _, injected = injected_white_light(truth, order, wave_range)
        _, diluted = injected_white_light(truth, order, wave_range, key="depth_diluted")
        spectrum = fits_.transmission[np.asarray(fits_.transmission["order"]) == order]
        ok = np.isfinite(np.asarray(spectrum["depth_ppm"], float))
        spectrum = spectrum[ok]
        low = np.asarray(getattr(spectrum["wave_low"], "value", spectrum["wave_low"]), float)
        high = np.asarray(getattr(spectrum["wave_high"], "value", spectrum["wave_high"]), float)
        got = np.asarray(spectrum["depth_ppm"], float)
        err = np.asarray(spectrum["depth_error_ppm"], float)
        chi2 = {}
        for key in ("depth", "depth_diluted"):
            inj = injected_channel_depths(truth, order, low, high, key=key)
            chi2[key] = round(float(np.mean(((got - inj) / err) ** 2)), 2)
        result["orders"][order] = {
            "white_scatter_ppm": round(scatter, 1),
            "white_expected_ppm": round(expected, 1),
            "white_ratio": round(ratio, 3),
            "channels": int(channel_ratio.size),
            "channel_ratio_median": round(float(np.median(channel_ratio)), 3),
            "white_depth_ppm": round(float(depth), 1),
            "white_depth_error_ppm": round(float(depth_err), 1),
            "injected_depth_ppm": round(injected, 1),
            "diluted_depth_ppm": round(diluted, 1),
            "white_depth_bias_sigma": round(float((depth - injected) / depth_err), 2),
            "white_depth_bias_vs_diluted_sigma": round(float((depth - diluted) / depth_err), 2),
            "spectrum_channels": int(got.size),
            "spectrum_chi2_red_vs_injected": chi2["depth"],
            "spectrum_chi2_red_vs_diluted": chi2["depth_diluted"],
        }
    result["wavelength_error_px"] = wavelength_errors(x1dints, truth)
    truth_cfg = truth["config"]
    result["wavelength_truth_offset_px"] = {
        1: truth_cfg["trace_dx"] + truth_cfg["trace_dx_order1"],
        2: truth_cfg["trace_dx"] + truth_cfg["trace_dx_order2"],
    }
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("benchmark_output"))
    parser.add_argument("--presets", nargs="+", default=["realistic", "hard"])
    parser.add_argument("--nints", type=int, default=None)
    parser.add_argument("--no-uncal", action="store_true", help="skip the uncal timing")
    parser.add_argument("--json", type=Path,
                        default=Path(f"benchmarks/results_realistic_{date.today()}.json"))
    args = parser.parse_args()
    work = args.workdir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    report = {"presets": {}, "machine": machine()}
    for preset in args.presets:
        entry = {}
        if not args.no_uncal:
            entry["uncal"] = uncal_cost(work, preset, args.nints)
            print(preset, "uncal", entry["uncal"], flush=True)
        run = run_exposure(work, preset, args.nints, simulate_options=("--level", "rateints"))
        entry["rateints_simulation"] = run.pop("simulation")
        entry["reduction"] = run
        tag = preset + (f"_{args.nints}" if args.nints else "")
        truth_file = next((work / f"rateints_{tag}").glob("*_truth.asdf"))
        x1dints = next((work / f"products_{tag}").glob("*_x1dints.fits"))
        entry["accuracy"] = accuracy(work / f"products_{tag}", truth_file, x1dints)
        print(preset, json.dumps(entry["accuracy"], indent=1), flush=True)
        report["presets"][preset] = entry
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
