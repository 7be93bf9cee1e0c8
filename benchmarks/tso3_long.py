"""soss_tso3 on long exposures: wall time and peak memory against the number of integrations.

Stage 3 alone, without simulating and reducing the detector frames first:
the x1dints segments are the synthetic ones of
`jwst_soss_custom.lightcurves.synthetic` (both orders, every SOSS column of
the package's x1dints, 2048 columns, a transit), written once per size in
``--workdir``. Each size is reduced with ``strun soss_tso3`` on the segment
files, as a user would, and timed with the process tree's peak memory (PSS,
as `full_exposure.py`). ``--profile`` also runs it in-process and prints the
resident memory at each log line, to show where the peak is.

Usage::

    python benchmarks/tso3_long.py [--nints 537 2000] [--nsegments 4]
        [--workdir DIR] [--profile] [--json benchmarks/results_tso3_long_<date>.json]
"""

import argparse
import json
import logging
import sys
import threading
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from full_exposure import BIN, machine, measured  # noqa: E402


def segments(work, nints, nsegments):
    """The synthetic x1dints segment files of one size (made once)."""
    folder = work / f"x1dints_{nints}"
    files = sorted(folder.glob("*seg*_x1dints.fits"))
    if len(files) == nsegments:
        return files
    from jwst_soss_custom.lightcurves.synthetic import synthetic_segments

    folder.mkdir(parents=True, exist_ok=True)
    for model in synthetic_segments(nints=nints, nsegments=nsegments):
        model.save(folder / model.meta.filename)
    return sorted(folder.glob("*seg*_x1dints.fits"))


def profile(files, output_dir):
    """Resident memory (MB) at each log line of an in-process run, and its peak."""
    import psutil

    from jwst_soss_custom.pipeline import SossTso3Pipeline

    process, samples, marks, done = psutil.Process(), [], [], threading.Event()

    def sample():
        while not done.is_set():
            samples.append(process.memory_info().rss / 1e6)
            time.sleep(0.05)

    class Marks(logging.Handler):
        def emit(self, record):
            if record.name.startswith("jwst_soss_custom"):
                marks.append((round(max(samples or [0])), record.getMessage()[:80]))

    handler = Marks()
    logging.getLogger().addHandler(handler)
    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        SossTso3Pipeline.call([str(f) for f in files], output_dir=str(output_dir),
                              save_results=True)
    finally:
        done.set()
        thread.join()
        logging.getLogger().removeHandler(handler)
    return {"peak_rss_MB": round(max(samples)), "peak_so_far_at_log_lines": marks}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nints", type=int, nargs="+", default=[537, 2000])
    parser.add_argument("--nsegments", type=int, default=4)
    parser.add_argument("--workdir", type=Path, default=Path("benchmark_output/tso3_long"))
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--json", type=Path,
                        default=Path(f"benchmarks/results_tso3_long_{date.today()}.json"))
    args = parser.parse_args()
    work = args.workdir.resolve()
    report = {"nsegments": args.nsegments, "runs": {}, "machine": machine()}
    for nints in args.nints:
        files = segments(work, nints, args.nsegments)
        out = work / f"products_{nints}"
        wall, peak, _ = measured([BIN / "strun", "soss_tso3", *files, f"--output_dir={out}"],
                                 work)
        entry = {"x1dints_GB": round(sum(f.stat().st_size for f in files) / 1e9, 2),
                 "wall_s": round(wall, 1), "peak_MB": round(peak)}
        if args.profile:
            entry["profile"] = profile(files, work / f"profile_{nints}")
        report["runs"][str(nints)] = entry
        print(nints, json.dumps(entry), flush=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
