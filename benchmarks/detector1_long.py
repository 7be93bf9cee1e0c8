"""soss_detector1 on a long exposure: memory bounded by memory_limit, not by the length.

Simulates (once, in ``--workdir``) a realistic exposure of ``--nints``
integrations as raw ramps, in segments of ~134 integrations as the JWST
ground system writes them (``--nsegments``; 2,000 integrations x 9 groups
are ~19 GB of uncal files), then runs ``strun soss_detector1`` on all
segments at the default ``memory_limit`` (or ``--memory-limit``) and reports
wall time, peak memory summed over the worker processes (PSS), the pipeline's
own time budget and its chunk plan. The peak must stay under the limit
whatever the length.

Usage::

    python benchmarks/detector1_long.py [--workdir DIR] [--nints 2000] [--nsegments 15]
        [--memory-limit 4.0] [--json out.json]
"""

import argparse
import os
import re
import shutil
import sys
import time
from pathlib import Path

from full_exposure import BIN, emit, measured, stage_times

from jwst_soss_custom.datasets import crds_refs

BYTES_PER_INTEGRATION = 9 * 256 * 2048 * 2  # uncal: 9 groups of 16-bit values
PLAN = re.compile(r"Reducing .*$", re.MULTILINE)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("benchmark_output/detector1_long"))
    parser.add_argument("--nints", type=int, default=2000)
    parser.add_argument("--nsegments", type=int, default=15)
    parser.add_argument("--memory-limit", type=float, default=4.0, help="GB")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    work = args.workdir.resolve()
    raw = work / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    # The uncal files, and the rateints (20 bytes a pixel) written from them.
    need = args.nints * (BYTES_PER_INTEGRATION + 20 * 256 * 2048)
    if not list(raw.glob("*_uncal.fits")):
        if shutil.disk_usage(work).free < need:
            sys.exit(f"Not enough disk in {work}: {need / 1e9:.0f} GB needed.")
        start = time.perf_counter()
        measured([BIN / "soss_simulate", "--preset", "realistic", "--level", "uncal",
                  "--nints", str(args.nints), "--nsegments", str(args.nsegments),
                  "--output-dir", raw, "--seed", "3", "--quiet"], work)
        print(f"simulated in {time.perf_counter() - start:.0f} s", flush=True)
    os.environ.update(crds_refs.offline_crds_environment(raw / "refs" / "crds_cache"))
    refs = crds_refs.find_references(raw / "refs")
    uncals = sorted(str(p) for p in raw.glob("*_uncal.fits"))
    asn = work / "detector1_asn.json"
    measured([BIN / "asn_from_list", "-r", "DMSLevel2bBase", "-o", asn, *uncals], work)
    out = work / "rateints"
    out.mkdir(exist_ok=True)
    from jwst_soss_custom.pipeline.soss_detector1 import SossDetector1Pipeline

    wall, peak, log = measured(
        [BIN / "strun", "soss_detector1", asn, f"--output_dir={out}",
         f"--memory_limit={args.memory_limit}",
         *crds_refs.strun_arguments(refs, SossDetector1Pipeline.step_defs)], work)
    made = list(out.glob("*_rateints.fits"))
    if len(made) != len(uncals):
        sys.exit(f"soss_detector1 made {len(made)} of {len(uncals)} rateints:\n{log[-3000:]}")
    plan = PLAN.search(log)
    report = {
        "nints": args.nints, "nsegments": args.nsegments, "ngroups": 9,
        "memory_limit_GB": args.memory_limit,
        "soss_detector1": {"wall_s": round(wall, 1), "peak_MB": round(peak),
                           "s_per_integration": round(wall / args.nints, 3),
                           "plan": plan.group(0) if plan else None,
                           "stages_s": stage_times(log)},
        "under_budget": peak < 1000 * args.memory_limit,
    }
    emit(report, args.json)


if __name__ == "__main__":
    main()
