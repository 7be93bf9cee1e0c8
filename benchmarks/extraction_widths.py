"""Box widths vs optimal extraction on the simulator: precision against the noise limit.

Simulates (once, cached in the work directory) two exposures of the given
preset: ``clean`` (photon and read noise only; the background removed with
the truth) and ``realistic`` (every default systematic, cleaned by
soss_badpix, soss_background and soss_oneoverf as soss_spec2 does). Both are
traced by soss_tracing, then extracted with optimal extraction and box
extraction of several widths. For each order it reports the median
per-column scatter and the white-light scatter over the optimal-weighting
noise limit (`jwst_soss_custom.extract.scoring`), the transit-depth reduced
chi-square and the time taken. Results are printed and written as JSON.

Usage::

    python benchmarks/extraction_widths.py [--workdir DIR] [--preset full] [--json out.json]
"""

import argparse
import json
import logging
import os
import time
from datetime import datetime
from pathlib import Path

import numpy as np

os.environ.setdefault("STPIPE_DISABLE_CRDS_STEPPARS", "true")

CONFIGS = [(f"optimal {w}", {"method": "optimal", "box_width": float(w)}) for w in (30, 40)]
CONFIGS += [(f"box {w}", {"method": "box", "box_width": float(w)})
            for w in (20, 24, 28, 30, 32, 36, 40, 44)]
CONFIGS += [("box optimize", {"method": "box", "box_mode": "optimize"})]


def prepared(kind, preset, workdir):
    """The traced cube and truth of one simulated exposure."""
    from jwst_soss_custom.background import SossBackgroundStep
    from jwst_soss_custom.badpix import SossBadpixStep
    from jwst_soss_custom.datasets import NO_SYSTEMATICS, load_truth, simulate
    from jwst_soss_custom.source import load_exposure
    from jwst_soss_custom.oneoverf import SossOneOverFStep
    from jwst_soss_custom.tracing import SossTracingStep

    folder = workdir / f"{preset}_{kind}"
    truth_files = sorted(folder.glob("*_truth.asdf"))
    if not truth_files:
        extra = NO_SYSTEMATICS if kind == "clean" else {}
        simulate(folder, preset=preset, seed=3, **extra)
        truth_files = sorted(folder.glob("*_truth.asdf"))
    truth = load_truth(truth_files[0])
    cube, _ = load_exposure(sorted(folder.glob("*_rateints.fits")))
    if kind == "clean":
        cube.data -= truth["background"][None]
        return SossTracingStep.call(cube, regressors=False), truth
    cube = SossBadpixStep.call(cube)
    cube = SossBackgroundStep.call(cube, override_bkg=str(next(folder.glob("*_bkg_template.npy"))))
    cube = SossTracingStep.call(cube)
    return SossOneOverFStep.call(cube), truth


def score(cube, truth):
    """Every configuration's precision per order."""
    from jwst_soss_custom.extract import SossExtractStep
    from jwst_soss_custom.extract.scoring import (
        depth_chi2,
        scatter_over_limit,
        white_light_over_limit,
    )

    rows = []
    for name, kwargs in CONFIGS:
        start = time.perf_counter()
        x1d = SossExtractStep.call(cube, **kwargs)
        seconds = time.perf_counter() - start
        record = x1d.soss_extraction
        record = record.instance if hasattr(record, "instance") else record
        for order in (1, 2):
            ratio, _ = scatter_over_limit(x1d, truth, order)
            rows.append({
                "config": name,
                "order": order,
                "width": record[f"order{order}"]["width"],
                "median_scatter_over_limit": float(np.nanmedian(ratio)),
                "white_over_limit": white_light_over_limit(x1d, truth, order),
                "depth_chi2": depth_chi2(x1d, truth, order),
                "seconds": seconds,
            })
            print("{config:>13} order {order}: width {width:4.0f}  median scatter/limit "
                  "{median_scatter_over_limit:.4f}  white/limit {white_over_limit:.3f}  "
                  "depth chi2 {depth_chi2:.3f}  {seconds:.1f} s".format(**rows[-1]), flush=True)
        x1d.close()
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default="benchmark_data")
    parser.add_argument("--preset", default="full")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    logging.getLogger("stpipe").setLevel(logging.WARNING)
    workdir = Path(args.workdir)
    results = {"preset": args.preset, "date": datetime.now().isoformat(timespec="seconds")}
    for kind in ("clean", "realistic"):
        print(f"== {kind} ({args.preset})", flush=True)
        cube, truth = prepared(kind, args.preset, workdir)
        results[kind] = score(cube, truth)
        cube.close()
    out = args.json or Path(__file__).with_name(
        f"results_extraction_widths_{args.preset}_{datetime.now():%Y-%m-%d}.json")
    Path(out).write_text(json.dumps(results, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
