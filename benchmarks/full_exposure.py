"""Time and peak memory of the full WASP-39b-size exposure through both pipelines.

Simulates (once, cached) the ``full`` preset (537 integrations x 256 x 2048 in
four segments), then runs ``strun soss_spec2`` and ``strun soss_tso3`` exactly
as a user would, each as its own child process, and reports for each its
wall time, its peak memory (summed over the worker processes it forks), and
the time of every stage (soss_spec2's own per-stage record, summed over its
processes) or step (soss_tso3, from stpipe's log timestamps). Results are
printed and written as JSON.

Usage::

    python benchmarks/full_exposure.py [--workdir DIR] [--preset full] [--nints N]
        [--level slopes|rateints] [--repeat 3] [--json out.json] [-- --memory_limit=2 ...]

Beside the reduction it times the least any reduction must do, in the same
run: reading every rateints file once and writing every product once
(``io_floor_s``); ``ratio_to_io_floor`` is the reduction's time over that.

The run with the median total time of ``--repeat`` runs is reported, with
every run's total: the first run after the rateints were written or evicted
from the page cache reads them from disk and takes several seconds longer.
"""

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from astropy.io import fits

BIN = Path(sys.executable).parent
STEP_LINE = re.compile(r"^(\S+ \S+) - stpipe\.step - INFO - Step (\w+) (running|done)")


def _tree(pid):
    """``pid`` and all its descendants (from /proc)."""
    children = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        out.append(todo.pop())
        todo += children.get(out[-1], [])
    return out


def _pss_kb(pid):
    """Proportional set size of a process (shared pages split among their users)."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0
    match = re.search(r"^Pss:\s+(\d+) kB", text, re.MULTILINE)
    return int(match.group(1)) if match else 0


#: Seconds between memory samples. Reading a large process's PSS walks its
#: page tables: sampling every 50 ms took ~10 % of the 2 cores from the run
#: being measured; the pipelines' memory plateaus last seconds.
SAMPLE_INTERVAL = 0.25


def measured(cmd, cwd):
    """Run ``cmd``; return (wall seconds, peak memory MB, stdout+stderr).

    The peak is the largest sum, over the command's process and every worker
    process it forks, of their proportional set sizes (PSS: pages shared
    after a fork counted once in total), sampled every `SAMPLE_INTERVAL`.
    """
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen(
            [str(c) for c in cmd], cwd=cwd, stdout=out, stderr=subprocess.STDOUT, text=True,
            env=dict(os.environ, STPIPE_DISABLE_CRDS_STEPPARS="true", MPLBACKEND="Agg"),
        )
        peak = 0
        while proc.poll() is None:
            peak = max(peak, sum(_pss_kb(pid) for pid in _tree(proc.pid)))
            time.sleep(SAMPLE_INTERVAL)
        wall = time.perf_counter() - start
        out.seek(0)
        log = out.read()
    if proc.returncode != 0:
        sys.exit(f"{cmd} failed:\n{log[-5000:]}")
    return wall, peak / 1024, log


def associate(folder, pattern, name, *options):
    """Write association ``name`` of the files matching ``pattern`` in ``folder``."""
    subprocess.run(
        [BIN / "asn_from_list", *options, "-o", name] + sorted(p.name for p in folder.glob(pattern)),
        cwd=folder,
        check=True,
        capture_output=True,
    )


STAGE_LINE = re.compile(r"Time budget \(summed over processes\): (.*)$", re.MULTILINE)
STAGE_ITEM = re.compile(r"(\w+) ([0-9.]+) s")


def stage_times(log):
    """A pipeline's own time budget: seconds per stage, summed over its processes."""
    match = STAGE_LINE.search(log)
    if not match:
        return {}
    return {name: float(value) for name, value in STAGE_ITEM.findall(match.group(1))
            if name != "total"}


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


def run_exposure(work, preset="full", nints=None, nsegments=None, spec2_options=(),
                 tso3=True, simulate_options=(), label=""):
    """Simulate (once) and reduce one exposure; return its report dict.

    Parameters
    ----------
    work : Path
        Folder for the simulated rateints (kept between runs) and the products.
    preset : str
        Simulator preset.
    nints, nsegments : int or None
        Overrides of the preset's size.
    spec2_options : sequence of str
        Extra ``strun soss_spec2`` arguments (e.g. ``--memory_limit=2``).
    tso3 : bool
        Also run ``strun soss_tso3``.
    simulate_options : sequence of str
        Extra ``soss_simulate`` arguments. Without ``--level``, the
        slope-level simulator is used, on which docs/performance.md was
        measured (``soss_simulate``'s own default is now the ramp level).
    label : str
        Appended to the names of the product folders (several reductions
        of one simulated exposure).

    Returns
    -------
    dict
    """
    tag = preset + (f"_{nints}" if nints else "") + (f"_{nsegments}seg" if nsegments else "")
    rateints = work / f"rateints_{tag}"
    simulated = None
    if not (rateints / "spec2_asn.json").exists():
        cmd = [BIN / "soss_simulate", "--preset", preset, "--output-dir", rateints, "--quiet"]
        cmd += ["--nints", nints] if nints else []
        cmd += ["--nsegments", nsegments] if nsegments else []
        cmd += list(simulate_options)
        if "--level" not in simulate_options:
            cmd += ["--level", "slopes"]
        wall, peak, _ = measured(cmd, work)
        print(f"simulated {tag} in {wall:.1f} s (peak {peak:.0f} MB)", flush=True)
        simulated = {"wall_s": round(wall, 1), "peak_MB": round(peak),
                     "options": [str(o) for o in simulate_options]}
        associate(rateints, "*_rateints.fits", "spec2_asn.json", "-r", "DMSLevel2bBase")
    nbytes = sum(p.stat().st_size for p in rateints.glob("*_rateints.fits"))
    n = sum(fits.getheader(p, "SCI")["NAXIS3"] for p in rateints.glob("*_rateints.fits"))

    x1d = work / f"x1dints_{tag}{label}"
    wall, peak, log = measured(
        [BIN / "strun", "soss_spec2", rateints / "spec2_asn.json", "--output_dir", x1d,
         *spec2_options],
        work,
    )
    report = {
        "exposure": tag,
        "nints": n,
        "rateints_GB": round(nbytes / 1e9, 2),
        "spec2_options": list(spec2_options),
        "simulation": simulated,
        "soss_spec2": {"wall_s": round(wall, 1), "peak_MB": round(peak),
                       "stages_s": {k: round(v, 1) for k, v in stage_times(log).items()}},
    }
    if tso3:
        associate(x1d, "*_x1dints.fits", "tso3_asn.json", "--product-name", "bench")
        wall, peak, log = measured(
            [BIN / "strun", "soss_tso3", x1d / "tso3_asn.json", "--output_dir",
             work / f"products_{tag}{label}"],
            work,
        )
        report["soss_tso3"] = {"wall_s": round(wall, 1), "peak_MB": round(peak),
                               "steps_s": {k: round(v, 1) for k, v in step_times(log).items()}}
        report["total_wall_s"] = round(report["soss_spec2"]["wall_s"] + wall, 1)
        report["total_peak_MB"] = max(report["soss_spec2"]["peak_MB"], round(peak))
        floor, _, _ = measured([sys.executable, "-c", IO_FLOOR, rateints, x1d,
                                work / f"products_{tag}{label}"], work)
        report["io_floor_s"] = round(floor, 2)
        report["ratio_to_io_floor"] = round(report["total_wall_s"] / floor, 1)
    return report


#: The least any reduction must do, timed in its own process: read every
#: rateints file once (plain 16 MB reads) and write every product once (a
#: copy of each x1dints and product file, to a scratch folder).
IO_FLOOR = """
import shutil, sys, tempfile
from pathlib import Path
rateints, *products = map(Path, sys.argv[1:])
buffer = bytearray(16 << 20)
for path in sorted(rateints.glob("*_rateints.fits")):
    with open(path, "rb", buffering=0) as handle:
        while handle.readinto(buffer):
            pass
with tempfile.TemporaryDirectory() as scratch:
    for folder in products:
        for path in folder.iterdir():
            if path.is_file() and path.suffix in (".fits", ".ecsv"):
                shutil.copyfile(path, Path(scratch) / path.name)
"""


def machine():
    """What the numbers were measured on."""
    import jwst
    import numpy

    import jwst_soss_custom

    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "jwst": jwst.__version__,
        "jwst_soss_custom": jwst_soss_custom.__version__,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("benchmark_output"))
    parser.add_argument("--preset", default="full")
    parser.add_argument("--nints", type=int, default=None, help="override the preset's nints")
    parser.add_argument("--nsegments", type=int, default=None)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--repeat", type=int, default=3, help="runs (the median is reported)")
    parser.add_argument("--level", choices=("slopes", "rateints"), default="slopes",
                        help="simulator level (rateints: real ramp fitting, ~9 min to simulate "
                             "the full realistic preset)")
    parser.add_argument("spec2_options", nargs="*", help="extra strun soss_spec2 options")
    args = parser.parse_args()
    work = args.workdir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    report = median_run([
        run_exposure(work, args.preset, args.nints, args.nsegments, args.spec2_options,
                     simulate_options=("--level", args.level))
        for _ in range(args.repeat)
    ])
    emit(report, args.json)


def median_run(reports):
    """The report with the median total time, with every run's total added."""
    chosen = sorted(reports, key=lambda r: r["total_wall_s"])[len(reports) // 2]
    chosen["repeats_total_wall_s"] = [r["total_wall_s"] for r in reports]
    return chosen


def emit(report, path=None):
    """Print a report (with the machine it was measured on) and write it as JSON."""
    report["machine"] = machine()
    print(json.dumps(report, indent=2))
    if path:
        Path(path).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
