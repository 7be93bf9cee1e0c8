"""soss_batch throughput: the same exposures on 1 and on 2 local Dask workers.

Simulates ``--exposures`` exposures of a preset at the rateints level (once,
cached in ``--workdir``; each its own observation number and seed), then
runs ``soss_batch`` on them from the command line with ``--workers 1`` and
``--workers 2`` (a fresh output folder each, so nothing is skipped), and a
third time on the 2-worker output (everything skipped: the cost of a
restart). Reports the wall time, exposures per minute, the throughput ratio
and the peak memory of the worker processes (from the batch summary).

Usage::

    python benchmarks/batch_throughput.py --exposures 8 --preset small \\
        --workdir /tmp/batch_bench --json benchmarks/results_batch_throughput.json
"""

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

from astropy.table import Table

BIN = Path(sys.executable).parent


def simulate_inputs(folder, preset, count):
    """``count`` exposures of ``preset`` as rateints in ``folder`` (kept between runs)."""
    from jwst_soss_custom.datasets import simulate

    done = folder / "done.json"
    wanted = {"preset": preset, "count": count}
    if done.exists() and json.loads(done.read_text()) == wanted:
        return
    shutil.rmtree(folder, ignore_errors=True)
    for k in range(count):
        simulate(folder, preset=preset, seed=100 + k, observation=f"{k + 1:03d}")
    done.write_text(json.dumps(wanted))


def run(inputs, output, workers):
    """One ``soss_batch`` run: wall time and its summary table."""
    start = time.perf_counter()
    proc = subprocess.run([str(BIN / "soss_batch"), str(inputs), "--output-dir", str(output),
                           "--workers", str(workers)], capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"soss_batch failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return wall, Table.read(output / "batch_summary.ecsv", format="ascii.ecsv")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exposures", type=int, default=8)
    parser.add_argument("--preset", default="small")
    parser.add_argument("--workdir", type=Path, default=Path("batch_bench"))
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    os.environ.setdefault("STPIPE_DISABLE_CRDS_STEPPARS", "true")
    inputs = args.workdir / "inputs"
    simulate_inputs(inputs, args.preset, args.exposures)
    results = {"preset": args.preset, "exposures": args.exposures,
               "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
                          f"{platform.python_implementation()} {platform.python_version()}",
               "runs": {}}
    for workers in (1, 2):
        output = args.workdir / f"out_{workers}"
        shutil.rmtree(output, ignore_errors=True)
        wall, table = run(inputs, output, workers)
        results["runs"][str(workers)] = {
            "wall_s": round(wall, 1),
            "exposures_per_minute": round(60 * len(table) / wall, 2),
            "stage_seconds_median": round(float(sorted(table["seconds"])[len(table) // 2]), 1),
            "worker_peak_memory_gb": round(float(max(table["peak_memory_gb"])), 2),
        }
        print(f"{workers} worker(s): {wall:.1f} s, {results['runs'][str(workers)]}")
    wall, table = run(inputs, args.workdir / "out_2", 2)
    assert set(table["status"]) == {"skipped"}, table["status"]
    results["restart_all_skipped_s"] = round(wall, 1)
    results["throughput_ratio_2_vs_1"] = round(
        results["runs"]["1"]["wall_s"] / results["runs"]["2"]["wall_s"], 2)
    print(json.dumps(results, indent=1))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
