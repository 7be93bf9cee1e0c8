"""Run time of soss_fit (least squares) on a full-size exposure's light curves.

Input: the ``whtlt`` and ``speclc`` that ``soss_tso3`` wrote for a full
simulated exposure (537 integrations; ``--steps.lightcurves.bin_width=20``
gives ~100 order-1 channels and ~40 order-2 ones) and the simulation's truth
file for the period. The whole step (reading the tables, white-light fits of
both orders with the default 100 bootstrap refits, every channel, writing the
products) is timed ``--repeat`` times through ``SossFitStep.call``; the white
light and the channels are also timed apart with `fit_products`. The
white-light result is compared with the injected orbit.

Usage::

    python benchmarks/fit_full.py PRODUCTS/<product>_whtlt.ecsv TRUTH.asdf
        [--repeat 3] [--json benchmarks/results_fit_full.json]
"""

import argparse
import json
import logging
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("whtlt", type=Path)
    parser.add_argument("truth", type=Path)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    from astropy.table import Table

    from jwst_soss_custom.datasets import load_truth
    from jwst_soss_custom.fitting import SossFitStep, fit_products
    from jwst_soss_custom.fitting.truth import injected_orbit, injected_white_light

    truth = load_truth(args.truth)
    orbit = injected_orbit(truth)
    whtlt = Table.read(args.whtlt)
    speclc_path = args.whtlt.with_name(args.whtlt.name.replace("_whtlt", "_speclc"))
    speclc = Table.read(speclc_path)

    step_seconds = []
    with tempfile.TemporaryDirectory() as out:
        for _ in range(args.repeat):
            clock = time.perf_counter()
            SossFitStep.call(str(args.whtlt), period=orbit["period"], output_dir=out,
                             save_results=True)  # fmt: skip
            step_seconds.append(time.perf_counter() - clock)

    clock = time.perf_counter()
    white_only = fit_products(whtlt, None, period=orbit["period"])
    white_seconds = time.perf_counter() - clock
    clock = time.perf_counter()
    products = fit_products(whtlt, speclc, period=orbit["period"])
    both_seconds = time.perf_counter() - clock

    fit = white_only.white_fits[1]
    _, depth = injected_white_light(truth)
    deviations = {
        "t0": (fit.values["t0"] - orbit["t0"]) / fit.errors["t0"],
        "a_rs": (fit.values["a_rs"] - orbit["a_rs"]) / fit.errors["a_rs"],
        "b": (fit.values["b"] - orbit["b"]) / fit.errors["b"],
        "depth_ppm": (fit.derived()["depth_ppm"][0] - depth) / fit.derived()["depth_ppm"][1],
    }
    spectrum = products.transmission
    result = {
        "whtlt": str(args.whtlt),
        "nints": len(whtlt),
        "channels": {str(o): int(np.sum(spectrum["order"] == o)) for o in np.unique(spectrum["order"])},
        "step_seconds": [round(s, 2) for s in step_seconds],
        "step_seconds_best": round(min(step_seconds), 2),
        "white_light_seconds": round(white_seconds, 2),
        "white_light_plus_channels_seconds": round(both_seconds, 2),
        "white_light_order1_deviation_sigma": {k: round(float(v), 2) for k, v in deviations.items()},
        "white_light_order1_stats": {
            k: fit.stats[k] for k in ("chi2_red", "beta", "error_scale", "inflated")
        },
        "channels_inflated": int(np.sum(np.asarray(spectrum["error_scale"]) > 1)),
        "channels_failed": int(np.sum(~np.isfinite(np.asarray(spectrum["depth_ppm"])))),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "processor": platform.processor() or platform.machine()},  # fmt: skip
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
