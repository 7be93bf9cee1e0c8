"""The official calwebb_detector1, offline, on a whole simulated uncal exposure.

Simulates a preset at the ``uncal`` level (default ``realistic_small``: 100
integrations x 9 groups in two segments, every effect on), runs
``strun calwebb_detector1`` on every segment with the simulated references
and the offline CRDS cache (no server), exactly as a user would, and checks
the rateints against the noiseless truth: z-scores (rate - truth) / ERR of
out-of-transit integrations per brightness band (median and robust width),
and the fraction of pixels flagged as jumps.

Usage::

    python benchmarks/detector1_small.py [--workdir DIR] [--preset realistic_small]
        [--json benchmarks/results_detector1_small.json]
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from full_exposure import BIN, machine, measured  # noqa: E402

BANDS = ((10, 50), (50, 200), (200, 5000))


def zscores(rateints, truth):
    """Median and robust width of (rate - truth) / ERR per band, out of transit."""
    from stdatamodels.jwst import datamodels

    expected = truth["deep_frame"] * truth["bad_pixels"]["response"]
    science = np.ones(expected.shape, bool)
    science[-4:] = False
    science[:, :4] = science[:, -4:] = False
    science &= ~truth["bad_pixels"]["hot_unflagged"]
    white = truth["order1"]["white_light"]
    out_of_transit = white > 0.9999 * white.max()
    zs = {band: [] for band in BANDS}
    jumps = []
    for path in rateints:
        with datamodels.open(path) as model:
            first = model.meta.exposure.integration_start - 1
            keep = out_of_transit[first : first + model.data.shape[0]]
            z = (model.data[keep] - expected) / model.err[keep]
            for lo, hi in BANDS:
                sel = z[:, science & (expected > lo) & (expected < hi)]
                zs[(lo, hi)].append(sel[np.isfinite(sel)])
            jumps.append(np.mean((model.dq & 4) > 0))
    result = {}
    for (lo, hi), parts in zs.items():
        z = np.concatenate(parts)
        median = float(np.median(z))
        result[f"{lo}-{hi} DN/s"] = {
            "n": int(z.size),
            "median": round(median, 4),
            "robust_width": round(float(1.4826 * np.median(np.abs(z - median))), 4),
            "std": round(float(np.std(z)), 4),
        }
    result["jump_fraction"] = round(float(np.mean(jumps)), 6)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("benchmark_output"))
    parser.add_argument("--preset", default="realistic_small")
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results_detector1_small.json"))
    args = parser.parse_args()
    from jwst_soss_custom.datasets import crds_refs, load_truth

    work = args.workdir.resolve()
    raw = work / f"uncal_{args.preset}"
    wall, peak, _ = measured([BIN / "soss_simulate", "--preset", args.preset, "--level", "uncal",
                              "--output-dir", raw, "--quiet"], work)
    report = {"preset": args.preset, "simulate_uncal": {"wall_s": round(wall, 1),
                                                        "peak_MB": round(peak)}}
    refs = {r: raw / "refs" / crds_refs.reference_filename(_config(args.preset), r)
            for r in crds_refs.REFERENCE_TYPES}
    out = work / f"detector1_{args.preset}"
    out.mkdir(exist_ok=True)
    rateints, runs = [], []
    # The strun children inherit the offline CRDS settings.
    with crds_refs.offline_crds(raw / "refs" / "crds_cache"):
        for uncal in sorted(raw.glob("*_uncal.fits")):
            wall, peak, log = measured([BIN / "strun", "calwebb_detector1", uncal,
                                        f"--output_dir={out}", *crds_refs.strun_arguments(refs)],
                                       work)
            runs.append({"segment": uncal.name, "wall_s": round(wall, 1), "peak_MB": round(peak),
                         "traceback_in_log": "Traceback" in log})
            rateints.append(out / uncal.name.replace("_uncal", "_rateints"))
    report["calwebb_detector1"] = runs
    report["rateints_vs_truth"] = zscores(rateints, load_truth(next(raw.glob("*_truth.asdf"))))
    report["machine"] = machine()
    text = json.dumps(report, indent=2)
    print(text)
    args.json.write_text(text + "\n")


def _config(preset):
    from jwst_soss_custom.datasets import make_config

    return make_config(preset)


if __name__ == "__main__":
    main()
