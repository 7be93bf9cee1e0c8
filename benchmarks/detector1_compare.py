"""Stage 1 side by side: official calwebb_detector1 against soss_detector1, scored on depths.

Simulates a realistic preset as raw ramps (``soss_simulate --level uncal``,
cached in ``--workdir``), then for each Stage 1 runs, with ``strun`` as a user
would and the simulator's references offline:

* ``calwebb_detector1`` (the official pipeline, its defaults) or
  ``soss_detector1`` (group-level 1/f after refpix);
* ``soss_spec2`` with its rate-level 1/f step on, and again with it off (so
  no two cleanings fight over the same offsets), then ``soss_tso3``;
* the scoring against the truth (`jwst_soss_custom.datasets.scoring`):
  white-light and median channel scatter over the photon+read expectation,
  white-light depth against the injected one, spectrum chi^2.

Both Stage 1s get the same jump settings (``--jump-args``; by default
``min_diffs_single_pass=1``, because stcal's iterative search takes minutes
per segment with 9 groups: see docs/steps/oneoverf_groups.md).

Usage::

    python benchmarks/detector1_compare.py [--workdir DIR] [--preset realistic_small]
        [--nints N] [--json benchmarks/results_detector1_compare_<date>.json]
"""

import argparse
import json
import os
import sys
import time
from datetime import date
from pathlib import Path

from jwst_soss_custom.datasets import crds_refs
from jwst_soss_custom.datasets.scoring import accuracy
from jwst_soss_custom.pipeline.soss_detector1 import SossDetector1Pipeline

sys.path.insert(0, str(Path(__file__).parent))
from full_exposure import BIN, machine, measured  # noqa: E402

STAGE1 = {"official": "calwebb_detector1", "soss": "soss_detector1"}


def _references(raw):
    return {k: next((raw / "refs").glob(f"*_{k}.fits")) for k in crds_refs.REFERENCE_TYPES}


def stage1(work, raw, which, jump_args):
    """Run one Stage 1 on every uncal segment; its folder of rateints and cost."""
    out = work / f"stage1_{which}"
    if list(out.glob("*_rateints.fits")):
        return out, None
    out.mkdir(exist_ok=True)
    steps = None if which == "official" else SossDetector1Pipeline.step_defs
    args = crds_refs.strun_arguments(_references(raw), steps)
    wall = peak = 0.0
    for uncal in sorted(raw.glob("*_uncal.fits")):
        w, p, log = measured([BIN / "strun", STAGE1[which], uncal, f"--output_dir={out}",
                              *args, *jump_args], work)
        if not list(out.glob(uncal.name.replace("_uncal", "_rateints"))):
            sys.exit(f"{STAGE1[which]} failed on {uncal.name}:\n{log[-3000:]}")
        wall, peak = wall + w, max(peak, p)
    return out, {"wall_s": round(wall, 1), "peak_MB": round(peak)}


def stage23(work, rateints, tag, oneoverf):
    """soss_spec2 (rate-level 1/f on or off) and soss_tso3; the products folder."""
    out = work / f"products_{tag}"
    out.mkdir(exist_ok=True)
    x1d = out / "x1dints"
    x1d.mkdir(exist_ok=True)
    segments = sorted(str(p) for p in rateints.glob("*_rateints.fits"))
    switch = [] if oneoverf else ["--steps.oneoverf.skip=true"]
    asn = out / "spec2_asn.json"
    _run(work, [BIN / "asn_from_list", "-r", "DMSLevel2bBase", "-o", str(asn), *segments])
    _run(work, [BIN / "strun", "soss_spec2", str(asn), f"--output_dir={x1d}", *switch])
    x1dints = sorted(p.name for p in x1d.glob("*_x1dints.fits"))
    _run(work, [BIN / "asn_from_list", "-o", str(x1d / "tso3_asn.json"), "--product-name",
                tag, *x1dints])
    _run(work, [BIN / "strun", "soss_tso3", str(x1d / "tso3_asn.json"), f"--output_dir={out}"])
    return out


def _run(work, cmd):
    _, _, log = measured(cmd, work)
    if "Traceback" in log or "error:" in log:
        sys.exit(f"{Path(str(cmd[0])).name} failed:\n{log[-3000:]}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("benchmark_output/detector1"))
    parser.add_argument("--preset", default="realistic_small")
    parser.add_argument("--nints", type=int, default=None)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--jump-args", nargs="*",
                        default=["--steps.jump.min_diffs_single_pass=1"])
    parser.add_argument("--json", type=Path,
                        default=Path(f"benchmarks/results_detector1_compare_{date.today()}.json"))
    args = parser.parse_args()
    work = args.workdir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    raw = work / "raw"
    if not list(raw.glob("*_uncal.fits")):
        start = time.perf_counter()
        cmd = [BIN / "soss_simulate", "--preset", args.preset, "--level", "uncal",
               "--output-dir", raw, "--seed", str(args.seed), "--quiet"]
        cmd += ["--nints", str(args.nints)] if args.nints else []
        measured(cmd, work)
        print(f"simulated in {time.perf_counter() - start:.0f} s", flush=True)
    os.environ.update(crds_refs.offline_crds_environment(raw / "refs" / "crds_cache"))
    os.environ.setdefault("STPIPE_DISABLE_CRDS_STEPPARS", "true")
    truth = next(raw.glob("*_truth.asdf"))
    report = {"preset": args.preset, "nints": args.nints, "seed": args.seed,
              "jump_args": args.jump_args, "runs": {}, "machine": machine()}
    for which in STAGE1:
        rateints, cost = stage1(work, raw, which, args.jump_args)
        report["runs"][f"{which}_stage1_cost"] = cost
        for oneoverf in (True, False):
            tag = f"{which}_{'rate1f' if oneoverf else 'no_rate1f'}"
            products = stage23(work, rateints, tag, oneoverf)
            x1dints = next(products.glob("*_x1dints.fits"))
            report["runs"][tag] = accuracy(products, truth, x1dints)
            print(tag, json.dumps(report["runs"][tag]), flush=True)
            args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
