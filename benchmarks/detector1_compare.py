"""Stage 1 side by side: official calwebb_detector1 against soss_detector1, scored on depths.

Simulates a realistic preset as raw ramps (``soss_simulate --level uncal``,
cached in ``--workdir``), then for each Stage 1 runs, with ``strun`` as a user
would and the simulator's references offline:

* ``calwebb_detector1`` (the official pipeline, its defaults), the same with
  its ``clean_flicker_noise`` on with the time-series settings
  (``median_image`` background, science regions masked from the PASTASOSS
  reference the simulator writes), or ``soss_detector1`` (group-level 1/f
  after refpix);
* ``soss_spec2`` with its rate-level 1/f step on, and again with it off (so
  no two cleanings fight over the same offsets), then ``soss_tso3``;
* the scoring against the truth (`jwst_soss_custom.datasets.scoring`):
  white-light and median channel scatter over the photon+read expectation,
  white-light depth against the injected one, spectrum chi^2.

All Stage 1s get the same jump settings (``--jump-args``; by default
``min_diffs_single_pass=1``, because stcal's iterative search takes minutes
per segment with 9 groups: see docs/steps/oneoverf_groups.md).

Usage::

    python benchmarks/detector1_compare.py [--workdir DIR] [--preset realistic_small]
        [--nints N] [--subarray SUBSTRIP256|SUBSTRIP96]
        [--json benchmarks/results_detector1_compare_<date>.json]
"""

import argparse
import json
import os
import sys
import time
from datetime import date
from pathlib import Path

from jwst_soss_custom._base.geometry import subarray_rows
from jwst_soss_custom.datasets import crds_refs, load_truth
from jwst_soss_custom.datasets.scoring import accuracy
from jwst_soss_custom.pipeline.soss_detector1 import SossDetector1Pipeline

sys.path.insert(0, str(Path(__file__).parent))
from full_exposure import BIN, machine, measured, stage_times  # noqa: E402

STAGE1 = {"official": "calwebb_detector1", "official_cfn": "calwebb_detector1",
          "soss": "soss_detector1"}


def stage1(work, raw, which, jump_args):
    """Run one Stage 1 on every uncal segment; its folder of rateints and cost."""
    out = work / f"stage1_{which}"
    if list(out.glob("*_rateints.fits")):
        return out, None
    out.mkdir(exist_ok=True)
    steps = SossDetector1Pipeline.step_defs if which == "soss" else None
    args = crds_refs.strun_arguments(crds_refs.find_references(raw / "refs"), steps,
                                     clean_flicker_noise=which == "official_cfn")
    uncals = sorted(raw.glob("*_uncal.fits"))
    if which == "soss":
        # All segments as one exposure (one star model for the 1/f step).
        asn = out / "detector1_asn.json"
        _run(work, [BIN / "asn_from_list", "-r", "DMSLevel2bBase", "-o", str(asn),
                    *map(str, uncals)])
        runs = [asn]
    else:
        runs = uncals  # calwebb_detector1 takes one segment at a time
    wall = peak = 0.0
    for item in runs:
        w, p, log = measured([BIN / "strun", STAGE1[which], item, f"--output_dir={out}",
                              *args, *jump_args], work)
        wall, peak = wall + w, max(peak, p)
    for uncal in uncals:
        if not list(out.glob(uncal.name.replace("_uncal", "_rateints"))):
            sys.exit(f"{STAGE1[which]} failed on {uncal.name}:\n{log[-3000:]}")
    cost = {"wall_s": round(wall, 1), "peak_MB": round(peak)}
    if which == "soss":
        cost["stages_s"] = stage_times(log)
    return out, cost


def jump_flags(rateints, truth):
    """Share of order-1 trace pixels flagged JUMP_DET, in and out of transit.

    Jump detection must not take the transit (a few per cent drop of every
    trace pixel's slope) for cosmic rays: the two shares should agree.
    """
    import numpy as np
    from stdatamodels.jwst import datamodels
    from stdatamodels.jwst.datamodels import dqflags

    white = np.asarray(truth["order1"]["white_light"], float)  # injected flux
    white /= white.max()
    inside = white < 1 - 0.5 * (1 - white.min())
    y = np.asarray(truth["order1"]["y"], float)
    x = np.asarray(truth["order1"]["x"], int)
    flagged = []
    for path in sorted(rateints.glob("*_rateints.fits")):
        with datamodels.open(path) as model:
            # The truth is in SUBSTRIP256 rows; a smaller subarray starts lower.
            first = subarray_rows(model.meta.subarray.name).start
            rows = np.clip(np.round(y).astype(int)[None, :] + np.arange(-8, 9)[:, None] - first,
                           0, model.data.shape[1] - 1)
            dq = model.dq[:, rows, np.broadcast_to(x, rows.shape)]
            flagged.append(((dq & dqflags.pixel["JUMP_DET"]) != 0).mean(axis=(1, 2)))
    flagged = np.concatenate(flagged)
    return {"in_transit": round(float(flagged[inside].mean()), 5),
            "out_of_transit": round(float(flagged[~inside].mean()), 5)}


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
    # `measured` stops on a non-zero exit status; a traceback a command
    # survived is a failure too. (Not any "error:": strun's parameter dump
    # has "wavelength_max_error: 0.2".)
    _, _, log = measured(cmd, work)
    if "Traceback" in log:
        sys.exit(f"{Path(str(cmd[0])).name} failed:\n{log[-3000:]}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("benchmark_output/detector1"))
    parser.add_argument("--preset", default="realistic_small")
    parser.add_argument("--nints", type=int, default=None)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--subarray", default="SUBSTRIP256", choices=("SUBSTRIP256", "SUBSTRIP96"))
    parser.add_argument("--jump-args", nargs="*",
                        default=["--steps.jump.min_diffs_single_pass=1"])
    parser.add_argument("--stage1", nargs="*", default=list(STAGE1), choices=list(STAGE1),
                        help="the Stage 1s to run (default all)")
    parser.add_argument("--json", type=Path,
                        default=Path(f"benchmarks/results_detector1_compare_{date.today()}.json"))
    args = parser.parse_args()
    work = args.workdir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    raw = work / "raw"
    if not list(raw.glob("*_uncal.fits")):
        start = time.perf_counter()
        cmd = [BIN / "soss_simulate", "--preset", args.preset, "--level", "uncal",
               "--output-dir", raw, "--seed", str(args.seed), "--subarray", args.subarray,
               "--quiet"]
        cmd += ["--nints", str(args.nints)] if args.nints else []
        measured(cmd, work)
        print(f"simulated in {time.perf_counter() - start:.0f} s", flush=True)
    os.environ.update(crds_refs.offline_crds_environment(raw / "refs" / "crds_cache"))
    os.environ.setdefault("STPIPE_DISABLE_CRDS_STEPPARS", "true")
    truth = next(raw.glob("*_truth.asdf"))
    report = {"preset": args.preset, "nints": args.nints, "seed": args.seed,
              "subarray": args.subarray,
              "jump_args": args.jump_args, "runs": {}, "machine": machine()}
    for which in args.stage1:
        rateints, cost = stage1(work, raw, which, args.jump_args)
        report["runs"][f"{which}_stage1_cost"] = cost
        report["runs"][f"{which}_jump_flags"] = jump_flags(rateints, load_truth(truth))
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
