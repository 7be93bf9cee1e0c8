"""Score Stage 3 products against the simulation that made them.

What came out against what went in, for one reduced simulated exposure:

* white-light scatter and the median spectroscopic-channel scatter over the
  photon+read expectation (the products' own errors, point-to-point
  estimator), per order;
* white-light depth recovered (``soss_fit`` least squares, period from the
  truth) against the injected depth and against the depth the field stars'
  light leaves (``depth_diluted``), in sigma;
* the transmission spectrum's reduced chi^2 against the injected and the
  diluted channel depths, per order;
* the wavelength error per order: the pipeline's wavelength of each column
  minus the truth's, in pixels (median over the order's columns).

Usage: ``python -m jwst_soss_custom.datasets.scoring PRODUCTS_DIR TRUTH.asdf``
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

__all__ = ["accuracy", "wavelength_errors", "main"]


def wavelength_errors(x1dints, truth):
    """Pipeline minus true wavelength per order, in pixels (median over columns)."""
    from stdatamodels.jwst import datamodels

    from jwst_soss_custom.tracing.tracing import TraceSolution

    with datamodels.open(x1dints) as model:
        solution = TraceSolution.from_tree(model.soss_traces)
    out = {}
    for order, trace in solution.orders.items():
        o = truth[f"order{order}"]
        cols = o["x"]
        wave_pipe = np.asarray(trace.wavelength, float)[cols]
        dispersion = np.gradient(o["wavelength"], cols.astype(float))
        pixels = (wave_pipe - o["wavelength"]) / dispersion
        inside = np.isfinite(pixels) & (cols > 10) & (cols < 2038)
        out[order] = round(float(np.median(pixels[inside])), 3)
    return out


def accuracy(products, truth_file, x1dints=None):
    """Precision, depth recovery, spectrum chi^2 and wavelength errors of one exposure.

    Parameters
    ----------
    products : Path
        Folder with the ``*_whtlt.ecsv``, ``*_speclc.ecsv`` and
        ``*_precision.ecsv`` of ``soss_tso3``.
    truth_file : Path
        The simulation's ``*_truth.asdf``.
    x1dints : Path, optional
        The stitched ``*_x1dints.fits`` (default: the one in ``products``),
        for the wavelength errors.

    Returns
    -------
    dict
    """
    products = Path(products)
    if x1dints is None:
        x1dints = next(products.glob("*_x1dints.fits"))
    from astropy.table import Table

    from jwst_soss_custom.datasets import load_truth
    from jwst_soss_custom.fitting import fit_products
    from jwst_soss_custom.fitting.truth import (
        injected_channel_depths,
        injected_orbit,
        injected_white_light,
    )
    from jwst_soss_custom.report import whitelight_precision

    truth = load_truth(truth_file)
    whtlt_path = next(products.glob("*_whtlt.ecsv"))
    whtlt = Table.read(whtlt_path)
    speclc = Table.read(next(products.glob("*_speclc.ecsv")))
    precision = Table.read(next(products.glob("*_precision.ecsv")))
    fits_ = fit_products(whtlt, speclc, period=injected_orbit(truth)["period"])
    result = {"orders": {}}
    for order, (scatter, expected, ratio) in sorted(whitelight_precision(whtlt).items()):
        sel = (np.asarray(precision["order"]) == order) & (np.asarray(precision["bin"]) >= 0)
        channel_ratio = np.asarray(precision["ratio"], float)[sel]
        channel_ratio = channel_ratio[np.isfinite(channel_ratio)]
        white = fits_.white_fits[order]
        depth, depth_err = white.derived()["depth_ppm"]
        wave_range = tuple(whtlt.meta.get(f"wavelength_range_order_{order}", (0.85, 2.83)))
        _, injected = injected_white_light(truth, order, wave_range)
        _, diluted = injected_white_light(truth, order, wave_range, key="depth_diluted")
        spectrum = fits_.transmission[np.asarray(fits_.transmission["order"]) == order]
        ok = np.isfinite(np.asarray(spectrum["depth_ppm"], float))
        spectrum = spectrum[ok]
        low = np.asarray(getattr(spectrum["wave_low"], "value", spectrum["wave_low"]), float)
        high = np.asarray(getattr(spectrum["wave_high"], "value", spectrum["wave_high"]), float)
        got = np.asarray(spectrum["depth_ppm"], float)
        err = np.asarray(spectrum["depth_error_ppm"], float)
        chi2, pulls = {}, {}
        for key in ("depth", "depth_diluted"):
            inj = injected_channel_depths(truth, order, low, high, key=key)
            pulls[key] = (got - inj) / err
            chi2[key] = round(float(np.mean(pulls[key] ** 2)), 2)
        result["orders"][order] = {
            "white_scatter_ppm": round(scatter, 1),
            "white_expected_ppm": round(expected, 1),
            "white_ratio": round(ratio, 3),
            "channels": int(channel_ratio.size),
            "channel_ratio_median": round(float(np.median(channel_ratio)), 3),
            "white_depth_ppm": round(float(depth), 1),
            "white_depth_error_ppm": round(float(depth_err), 1),
            "injected_depth_ppm": round(injected, 1),
            "diluted_depth_ppm": round(diluted, 1),
            "white_depth_bias_sigma": round(float((depth - injected) / depth_err), 2),
            "white_depth_bias_vs_diluted_sigma": round(float((depth - diluted) / depth_err), 2),
            "spectrum_channels": int(got.size),
            "spectrum_chi2_red_vs_injected": chi2["depth"],
            "spectrum_chi2_red_vs_diluted": chi2["depth_diluted"],
            # The mean of (recovered - injected) / error over the channels.
            "spectrum_mean_bias_sigma": round(float(np.mean(pulls["depth"])), 2),
            "spectrum_worst_channels": [
                [round(float(w), 3), round(float(p), 1)]
                for w, p in sorted(zip(0.5 * (low + high), pulls["depth"]),
                                   key=lambda item: -abs(item[1]))[:3]],
        }
    result["wavelength_error_px"] = wavelength_errors(x1dints, truth)
    truth_cfg = truth["config"]
    result["wavelength_truth_offset_px"] = {
        1: truth_cfg["trace_dx"] + truth_cfg["trace_dx_order1"],
        2: truth_cfg["trace_dx"] + truth_cfg["trace_dx_order2"],
    }
    return result


def main(argv=None):
    """Print the score of a products folder against a truth file, as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("products", type=Path, help="soss_tso3 output folder")
    parser.add_argument("truth", type=Path, help="the simulation's *_truth.asdf")
    args = parser.parse_args(argv)
    for path in (args.products, args.truth):
        if not path.exists():
            parser.error(f"{path} does not exist.")
    print(json.dumps(accuracy(args.products, args.truth), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
