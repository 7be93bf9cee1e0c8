"""A phase-curve-length exposure in bounded memory: soss_spec2 under a memory_limit.

Simulates (once) a ``full``-preset exposure of ``--nints`` integrations
(default 8,000, in 32 segments; without the VAR_* extensions, which the
reduction never reads, so the rateints take 12 bytes a pixel: ~50 GB), then
runs ``strun soss_spec2 --memory_limit=<budget>`` and reports wall time and
peak memory (summed over the worker processes). The peak must stay under the
budget whatever the length.

Usage::

    python benchmarks/long_exposure.py [--workdir DIR] [--nints 8000] [--nsegments 32]
        [--memory-limit 2.0] [--json out.json]
"""

import argparse
import shutil
import sys
from pathlib import Path

from full_exposure import emit, run_exposure

BYTES_PER_INTEGRATION = 256 * 2048 * 12  # SCI, ERR, DQ


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("benchmark_output"))
    parser.add_argument("--nints", type=int, default=8000)
    parser.add_argument("--nsegments", type=int, default=32)
    parser.add_argument("--memory-limit", type=float, default=2.0, help="GB")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    work = args.workdir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    tag = f"rateints_full_{args.nints}_{args.nsegments}seg"
    need = 1.05 * args.nints * BYTES_PER_INTEGRATION
    if not (work / tag).exists() and shutil.disk_usage(work).free < need:
        sys.exit(f"Not enough disk in {work}: the simulated exposure needs {need / 1e9:.0f} GB, "
                 f"{shutil.disk_usage(work).free / 1e9:.0f} GB are free. Lower --nints or use "
                 "another --workdir.")
    report = run_exposure(
        work, "full", nints=args.nints, nsegments=args.nsegments,
        spec2_options=[f"--memory_limit={args.memory_limit}"], tso3=False,
        simulate_options=["--no-variances"],
    )
    report["memory_limit_GB"] = args.memory_limit
    report["under_budget"] = report["soss_spec2"]["peak_MB"] < 1000 * args.memory_limit
    emit(report, args.json)


if __name__ == "__main__":
    main()
