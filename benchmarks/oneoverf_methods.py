"""All soss_oneoverf methods side by side on a simulated exposure.

The exposure (by default the ``full`` preset, 537 integrations, simulated
once and cached) goes through soss_badpix and soss_background; then every
1/f method corrects it, and so does a perfect "oracle" correction (the true
injected offsets subtracted). For each method:

* ``residual_1f``: RMS of the 1/f the method leaves behind, relative to the
  injected RMS, free of photon noise (method on the data minus method on the
  oracle-corrected data minus the truth; time means removed);
* ``residual_total``: RMS of fitted - true offsets relative to the injected
  (includes the photon-noise floor of any estimate);
* ``white_ratio``, ``channel_ratio``: excess noise over the oracle, as
  sqrt(1 + var(excess) / sigma^2) for the order-1 white light and the median
  column (30-row aperture);
* ``white_p2p``, ``channel_p2p``: the measured out-of-transit point-to-point
  scatter over the photon+read-noise expectation (what a user measures);
* ``seconds``: run time of the correction.

Usage::

    python benchmarks/oneoverf_methods.py [--workdir benchmark_output] [--preset full]
        [--json benchmarks/results_oneoverf_methods.json]
"""

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np

METHODS = ("median", "scale-achromatic", "scale-chromatic", "window", "solve")
HALF_BOX = 15


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("benchmark_output"))
    parser.add_argument("--preset", default="full")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    from jwst_soss_custom.background import SossBackgroundStep
    from jwst_soss_custom.badpix import SossBadpixStep
    from jwst_soss_custom.datasets import load_truth, simulate
    from jwst_soss_custom._base.geometry import reference_pixels
    from jwst_soss_custom.source import load_exposure
    from jwst_soss_custom.lightcurves.precision import point_to_point_scatter
    from jwst_soss_custom.oneoverf.oneoverf import correct_oneoverf
    from jwst_soss_custom.tracing import predict_traces

    folder = (args.workdir / f"rateints_{args.preset}").resolve()
    if not list(folder.glob("*_truth.asdf")):
        simulate(folder, preset=args.preset)
    truth = load_truth(next(folder.glob("*_truth.asdf")))
    cube, _ = load_exposure(sorted(folder.glob("*_rateints.fits")))
    cube = SossBadpixStep.call(cube)
    cube = SossBackgroundStep.call(cube, override_bkg=str(next(folder.glob("*_bkg_template.npy"))))

    c_true = truth["oneoverf"]["column_offsets"]
    solution = predict_traces(truth["pwcpos"])
    exclude = reference_pixels(cube.data.shape[1:]) | truth["order0"]["mask"]
    rows = np.arange(cube.data.shape[1])[:, None]
    aperture = (np.abs(rows - solution.orders[1].y[None]) <= HALF_BOX).astype(np.float32)
    science = slice(4, 2044)
    sigma_col = np.sqrt(np.nansum(np.nanmedian(cube.err[::10] ** 2, axis=0) * aperture, axis=0))
    baseline = truth["order1"]["light_curves"].min(axis=1) >= 1.0 - 1e-9

    def extract(data):
        return np.einsum("iyx,yx->ix", data, aperture, dtype=np.float64)[:, science]

    def demean(a):
        return a - a.mean(axis=0)

    oracle = cube.data - c_true[:, None, :]
    oracle_flux = extract(oracle)
    on_oracle = {}
    for method in METHODS:
        work = oracle.copy()
        on_oracle[method] = correct_oneoverf(
            work, cube.err, cube.dq, solution, method, exclude=exclude
        )[0][:, 0]
        del work
    del oracle

    report = {"preset": args.preset, "nints": int(cube.data.shape[0]), "methods": {}}
    injected = demean(c_true)[:, science].std()
    for method in ("none",) + METHODS:
        work = cube.data.copy()
        start = time.perf_counter()
        if method == "none":
            fitted = np.zeros_like(c_true)
        else:
            fitted = correct_oneoverf(work, cube.err, cube.dq, solution, method, exclude=exclude)[0][:, 0]
        seconds = time.perf_counter() - start
        flux = extract(work)
        del work
        excess = flux - oracle_flux
        sig = sigma_col[science]
        white = flux[baseline].sum(axis=1)
        white_expected = np.sqrt(np.sum(sig**2))
        channel_p2p = point_to_point_scatter(flux[baseline], axis=0) / sig
        leak = fitted - (on_oracle[method] if method != "none" else 0) - c_true
        report["methods"][method] = {
            "residual_1f": round(float(demean(leak)[:, science].std() / injected), 4),
            "residual_total": round(float(demean(fitted - c_true)[:, science].std() / injected), 4),
            "white_ratio": round(float(np.sqrt(1 + excess.sum(axis=1).var() / np.sum(sig**2))), 4),
            "channel_ratio": round(float(np.median(np.sqrt(1 + excess.var(axis=0) / sig**2))), 4),
            # covariance with the aperture's own noise included (matters for solve)
            "channel_ratio_cov": round(
                float(np.median(np.sqrt(1 + (flux.var(axis=0) - oracle_flux.var(axis=0)) / sig**2))), 4
            ),
            "white_p2p": round(float(point_to_point_scatter(white) / white_expected), 4),
            "channel_p2p": round(float(np.median(channel_p2p)), 4),
            "seconds": round(seconds, 1),
        }
        print(method, report["methods"][method], flush=True)
    # The oracle itself: the photon+read-noise limit as measured
    white = oracle_flux[baseline].sum(axis=1)
    report["oracle"] = {
        "white_p2p": round(float(point_to_point_scatter(white) / np.sqrt(np.sum(sigma_col[science] ** 2))), 4),
        "channel_p2p": round(
            float(np.median(point_to_point_scatter(oracle_flux[baseline], axis=0) / sigma_col[science])), 4
        ),
        # What limits the oracle's white light: correlation with the trace jitter
        "white_jitter_correlation": round(
            float(np.corrcoef(white, truth["jitter"]["dy"][baseline])[0, 1]), 3
        ),
    }
    print("oracle", report["oracle"])
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
