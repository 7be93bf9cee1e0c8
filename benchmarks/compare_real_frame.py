"""A simulated deep frame beside the real WASP-39 SOSS frame: figure and ratios.

The simulated deep frame is the median over integrations of simulated
``rateints`` (the realistic preset at the ramp level: noise, 1/f, cosmic
rays, contaminants and all, through the official Detector1 steps). Both
frames are measured with the same functions (`tools/measure.py`):

* cross-dispersion profiles of order 1 at 1.2, 1.8 and 2.6 um (local
  background removed, each column normalised by its aperture sum, median
  over the columns within 0.03 um, against the row offset from the trace);
* background-subtracted column sums (41-row aperture) of orders 1 and 2;
* the background either side of the step: row-band medians along x, in the
  trace-free rows 210-250.

Usage::

    python benchmarks/compare_real_frame.py REAL.npy RATEINTS_DIR \
        [--figure docs/figures/simulated_vs_real.png] [--json out.json]
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

# The developer tools live beside the package, not in it.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tools.measure import aperture_sums, profile_fwhm  # noqa: E402

WAVELENGTHS = (1.2, 1.8, 2.6)


def simulated_deep_frame(folder):
    """Median over all integrations of the rateints segments in ``folder``."""
    from stdatamodels.jwst import datamodels

    frames = []
    for path in sorted(Path(folder).glob("*_rateints.fits")):
        with datamodels.open(path) as model:
            frames.append(np.array(model.data))
    return np.nanmedian(np.concatenate(frames), axis=0)


def mean_profile(frame, wavelength, pwcpos, width=0.03, half=30):
    """Median normalised cross-dispersion profile of order 1 near ``wavelength``."""
    from tools.measure import _cutouts, _local_background

    cols, wave, values, dy = _cutouts(frame, 1, pwcpos, 40)
    background = _local_background(values, dy, 25, 40)
    prof = values - background[None, :]
    _, _, sums = aperture_sums(frame, 1, pwcpos)
    near = np.abs(wave - wavelength) < width
    offsets = np.arange(-half, half + 1)
    out = np.full(offsets.size, np.nan)
    for k, off in enumerate(offsets):
        sel = np.abs(dy[:, near] - off) < 0.5
        vals = (prof[:, near] / sums[near][None, :])[sel]
        out[k] = np.nanmedian(vals) if vals.size else np.nan
    return offsets, out


def background_rows(frame, rows=(210, 250), columns=(5, 1500), width=20):
    """Median of ``rows`` in bins of ``width`` columns (DN/s)."""
    edges = np.arange(columns[0], columns[1], width)
    band = frame[rows[0]:rows[1]]
    return edges + width / 2, np.array([np.nanmedian(band[:, e:e + width]) for e in edges])


def _ratio_stats(ratio):
    ratio = ratio[np.isfinite(ratio)]
    return {"median": round(float(np.median(ratio)), 3),
            "p16": round(float(np.percentile(ratio, 16)), 3),
            "p84": round(float(np.percentile(ratio, 84)), 3)}


def compare(real, sim, pwcpos=245.79):
    """Ratios simulated / real of every compared quantity, and the curves to plot."""
    curves, ratios = {}, {}
    for order, (lo, hi) in ((1, (0.9, 2.5)), (2, (0.6, 0.85))):
        cols, wave, s_real = aperture_sums(real, order, pwcpos)
        _, _, s_sim = aperture_sums(sim, order, pwcpos)
        inside = (wave > lo) & (wave < hi) & (s_real > 0)
        curves[f"sums{order}"] = (wave, s_real, s_sim)
        ratios[f"order{order}_column_sums_{lo}-{hi}um"] = _ratio_stats(s_sim[inside] / s_real[inside])
    _, wave, f_real = profile_fwhm(real, 1, pwcpos)
    _, _, f_sim = profile_fwhm(sim, 1, pwcpos)
    for w in WAVELENGTHS:
        off, p_real = mean_profile(real, w, pwcpos)
        _, p_sim = mean_profile(sim, w, pwcpos)
        curves[f"profile{w}"] = (off, p_real, p_sim)
        near = np.abs(wave - w) < 0.05
        core = np.abs(off) <= 12
        ratios[f"profile_{w}um"] = {
            "peak_sim/real": round(float(np.nanmax(p_sim[core]) / np.nanmax(p_real[core])), 3),
            "fwhm_real_px": round(float(np.nanmedian(f_real[near])), 2),
            "fwhm_sim_px": round(float(np.nanmedian(f_sim[near])), 2),
            "rms_difference_over_peak": round(float(
                np.sqrt(np.nanmean((p_sim - p_real) ** 2)) / np.nanmax(p_real[core])), 3),
        }
    x, b_real = background_rows(real)
    _, b_sim = background_rows(sim)
    curves["background"] = (x, b_real, b_sim)
    for name, (a, b) in {"left_of_step_x100-650": (100, 650),
                         "right_of_step_x750-1400": (750, 1400)}.items():
        sel = (x > a) & (x < b)
        ratios[f"background_{name}"] = _ratio_stats(b_sim[sel] / b_real[sel])
    return curves, ratios


def plot(curves, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(14, 7.5))
    for ax, w in zip(axes[0], WAVELENGTHS):
        off, p_real, p_sim = curves[f"profile{w}"]
        ax.plot(off, p_real, "k-", label="real (WASP-39, ERS 1366)")
        ax.plot(off, p_sim, "C1--", label="simulated (realistic preset)")
        ax.set_title(f"order 1 profile at {w} um")
        ax.set_xlabel("rows from trace centre")
        ax.set_ylabel("fraction of column flux")
    axes[0, 0].legend(fontsize=8)
    for ax, order in zip(axes[1][:2], (1, 2)):
        wave, s_real, s_sim = curves[f"sums{order}"]
        ax.plot(wave, s_real, "k-", lw=0.8, label="real")
        ax.plot(wave, s_sim, "C1-", lw=0.8, alpha=0.8, label="simulated")
        ax.set_title(f"order {order} column sums (41 rows, local bkg removed)")
        ax.set_xlabel("wavelength (um)")
        ax.set_ylabel("DN/s")
    ax = axes[1, 2]
    x, b_real, b_sim = curves["background"]
    ax.plot(x, b_real, "k-", label="real")
    ax.plot(x, b_sim, "C1-", label="simulated")
    ax.set_title("background, rows 210-250")
    ax.set_xlabel("column")
    ax.set_ylabel("DN/s")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("real", type=Path, help="wasp39_medframe_substrip256.npy")
    parser.add_argument("rateints", type=Path, help="folder of simulated rateints")
    parser.add_argument("--figure", type=Path, default=Path("docs/figures/simulated_vs_real.png"))
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    real = np.load(args.real).astype(float)
    sim = simulated_deep_frame(args.rateints)
    curves, ratios = compare(real, sim)
    plot(curves, args.figure)
    text = json.dumps(ratios, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
