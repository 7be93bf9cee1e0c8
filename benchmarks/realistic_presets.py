"""Simulator cost and pipeline accuracy on the realistic presets (full size).

For each preset (default ``realistic`` and ``hard``, 537 integrations in four
segments):

1. ``soss_simulate --level uncal`` (raw ramps + references) and
   ``soss_simulate --level rateints`` (the same ramps through the official
   Detector1 steps and optimal-weighted ramp fitting): wall time, peak
   memory (process tree, PSS), size on disk;
2. ``strun soss_spec2`` and ``strun soss_tso3`` on those rateints, with
   their defaults, as a user would run them;
3. what came out against what went in (`jwst_soss_custom.datasets.scoring`):
   white-light and median channel scatter over the photon+read expectation,
   white-light depth against injected and diluted, the transmission
   spectrum's reduced chi^2 against both, and the wavelength error per order.

Usage::

    python benchmarks/realistic_presets.py [--workdir DIR] [--presets realistic hard]
        [--nints N] [--no-uncal] [--jump-detection truth|jwst]
        [--json benchmarks/results_realistic_<date>.json]

(``--workdir`` caches the simulated rateints by preset: use a new one when
changing ``--jump-detection``.)
"""

import argparse
import json
import sys
from datetime import date
from pathlib import Path

from jwst_soss_custom.datasets.scoring import accuracy

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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("benchmark_output"))
    parser.add_argument("--presets", nargs="+", default=["realistic", "hard"])
    parser.add_argument("--nints", type=int, default=None)
    parser.add_argument("--no-uncal", action="store_true", help="skip the uncal timing")
    parser.add_argument("--jump-detection", choices=("truth", "jwst"), default="truth",
                        help="rateints level: simulator's jump flags or the official jump step")
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
        run = run_exposure(work, preset, args.nints, simulate_options=(
            "--level", "rateints", "--jump-detection", args.jump_detection))
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
