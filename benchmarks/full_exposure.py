"""Time and peak memory of the full WASP-39b-size exposure through both pipelines.

Simulates (once, cached) the ``full`` preset (537 integrations x 256 x 2048 in
four segments), then runs ``strun soss_spec2`` and ``strun soss_tso3`` exactly
as a user would, each as its own child process, and reports for each its
wall time, its peak resident memory, and the time of every step (from
stpipe's log timestamps). Results are printed and written as JSON.

Usage::

    python benchmarks/full_exposure.py [--workdir DIR] [--preset full] [--json out.json]
"""

import argparse
import json
import os
import platform
import re
import resource
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

BIN = Path(sys.executable).parent
STEP_LINE = re.compile(r"^(\S+ \S+) - stpipe\.step - INFO - Step (\w+) (running|done)")


def measured(cmd, cwd):
    """Run ``cmd`` in a child process; return (wall seconds, peak RSS MB, stdout+stderr).

    The peak comes from a one-child helper process, so that
    ``RUSAGE_CHILDREN`` holds exactly that command's maximum.
    """
    probe = (
        "import resource, subprocess, sys;"
        "p = subprocess.run(sys.argv[1:], capture_output=True, text=True);"
        "sys.stdout.write(p.stdout + p.stderr);"
        "print('PEAK_KB', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss);"
        "sys.exit(p.returncode)"
    )
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", probe, *map(str, cmd)],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=dict(os.environ, STPIPE_DISABLE_CRDS_STEPPARS="true", MPLBACKEND="Agg"),
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{cmd} failed:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
    peak_kb = int(re.search(r"PEAK_KB (\d+)", proc.stdout).group(1))
    return wall, peak_kb / 1024, proc.stdout


def associate(folder, pattern, name, *options):
    """Write association ``name`` of the files matching ``pattern`` in ``folder``."""
    subprocess.run(
        [BIN / "asn_from_list", *options, "-o", name] + sorted(p.name for p in folder.glob(pattern)),
        cwd=folder,
        check=True,
        capture_output=True,
    )


def step_times(log):
    """Seconds spent in each step, from the 'Step X running/done' log lines."""
    started, spent = {}, {}
    for line in log.splitlines():
        match = STEP_LINE.match(line)
        if not match:
            continue
        stamp = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f")
        name, what = match.group(2), match.group(3)
        if what == "running":
            started[name] = stamp
        elif name in started:
            spent[name] = (stamp - started.pop(name)).total_seconds()
    return spent


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("benchmark_output"))
    parser.add_argument("--preset", default="full")
    parser.add_argument("--nints", type=int, default=None, help="override the preset's nints")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    work = args.workdir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    tag = args.preset + (f"_{args.nints}" if args.nints else "")
    rateints = work / f"rateints_{tag}"
    if not list(rateints.glob("*_rateints.fits")):
        cmd = [BIN / "soss_simulate", "--preset", args.preset, "--output-dir", rateints]
        if args.nints:
            cmd += ["--nints", args.nints]
        wall, peak, _ = measured(cmd, work)
        print(f"simulated {tag} in {wall:.1f} s (peak {peak:.0f} MB)")
        associate(rateints, "*_rateints.fits", "spec2_asn.json", "-r", "DMSLevel2bBase")
    nbytes = sum(p.stat().st_size for p in rateints.glob("*_rateints.fits"))

    x1d = work / f"x1dints_{tag}"
    spec2 = measured(
        [BIN / "strun", "soss_spec2", rateints / "spec2_asn.json", "--output_dir", x1d], work
    )
    associate(x1d, "*_x1dints.fits", "tso3_asn.json", "--product-name", "bench")
    tso3 = measured(
        [BIN / "strun", "soss_tso3", x1d / "tso3_asn.json", "--output_dir", work / f"products_{tag}"],
        work,
    )

    import jwst
    import numpy

    import jwst_soss_custom

    report = {
        "preset": tag,
        "rateints_GB": round(nbytes / 1e9, 2),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "numpy": numpy.__version__,
            "jwst": jwst.__version__,
            "jwst_soss_custom": jwst_soss_custom.__version__,
        },
    }
    for name, (wall, peak, log) in (("soss_spec2", spec2), ("soss_tso3", tso3)):
        report[name] = {
            "wall_s": round(wall, 1),
            "peak_MB": round(peak),
            "steps_s": {k: round(v, 1) for k, v in step_times(log).items()},
        }
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
