"""Derive the simulator's packaged data from real SOSS material.

Run once by a developer (not at simulation time; not installed with the package)::

    python -m tools.calibrate /path/to/shared/data      # from the repository root

It reads the real files described in ``docs/simulator.md`` (WASP-39 median
frame, STScI SUBSTRIP96 background model, F277W order-0 frame, SPECTRACE
reference, published WASP-39b spectrum) and writes the derived products to
``jwst_soss_custom/data/``. The measured numbers are logged and returned so the
documentation can quote them.

Method in short (details in ``docs/simulator.md``):

1. throughputs and the order-3 trace are tabulated from SPECTRACE;
2. the background template is the SUBSTRIP96 column profile, shifted per row
   by the measured tilt of the step, times a smooth vertical factor; the
   factor, its scale and the trace halo are fitted jointly to the trace-free
   pixels of the real frame once the profile cores are subtracted;
3. three profile cores are stacks of real order-1 columns (red, middle and
   blue thirds), each column scaled to a common width, sampled finely in
   offset from the measured trace centre and band-limited;
4. the continuum and the order-2/3 throughput corrections are iterated until
   the simulator's wide-aperture column sums match the real frame's, and the
   width law until the simulated FWHM matches the real one;
5. order-0 stamps are cut from the F277W frame and scaled to CLEAR.

The script is longer than the package's modules (~900 lines) on purpose: it is
one derivation, run once, that reads top to bottom in the order of the
method above; splitting it would scatter the steps of one argument.
"""

import logging
import shutil
import sys
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table
from scipy import ndimage

from jwst_soss_custom._base.data import data_dir, order3_model
from jwst_soss_custom._base.geometry import SUBARRAY_ROWS

log = logging.getLogger(__name__)

__all__ = ["build_package_data", "main"]

MEDFRAME = "wasp39_medframe_substrip256.npy"
BKG96 = "soss_background_model_substrip96.npy"
F277W = "f277w_order0_frame.npy"
SPECTRACE = "jwst_niriss_spectrace_0023.fits"
SPECTRA_DIR = "wasp39b_published_spectra"
#: PWCPOS of the real WASP-39 exposure.
PWCPOS_REAL = 245.79
#: SUBSTRIP96 covers these SUBSTRIP256 rows.
ROWS96 = SUBARRAY_ROWS["SUBSTRIP96"]
#: Real field-star order 0s (x, y of the centre in the F277W frame), in the
#: order the simulator uses them: off the traces, on order 2, on order 1, ...
ORDER0_CENTRES = (
    (1003, 206),
    (1458, 152),
    (1900, 33),
    (1947, 184),
    (1165, 104),
    (1830, 209),
    (1702, 185),
    (843, 44),
)
ORDER0_STAMP = (56, 36)
#: Order-1 column ranges stacked into the profile cores (red to blue).
_CORE_COLUMNS = ((40, 500), (700, 1400), (1400, 1961))
#: Columns whose order-1 profile is hit by a field-star order 0 in the real frame.
_CONTAMINATED_COLUMNS = ((1040, 1066), (1005, 1026), (1555, 1580), (1860, 1932), (830, 856))




def clean_frame(frame):
    """Replace isolated outliers (bad pixels) by the median along the row.

    Along a row the SOSS traces vary slowly, so a 7-column running median is
    a good local model even on the sharp profile horns.
    """
    frame = np.asarray(frame, dtype=float)
    med = ndimage.median_filter(frame, size=(1, 7), mode="nearest")
    resid = frame - med
    scale = 1.4826 * ndimage.median_filter(np.abs(resid), size=(5, 15), mode="nearest")
    scale = np.maximum(scale, 0.05)
    bad = np.abs(resid) > 6 * scale
    out = np.where(bad, med, frame)
    log.info("cleaned %d outlier pixels of the real frame", int(bad.sum()))
    return out, bad


# --------------------------------------------------------------------------- 1
def throughput_table(spectrace_path):
    """Throughputs of orders 1-3 and the order-3 trace from SPECTRACE (<= 3 micron)."""
    with fits.open(spectrace_path) as hdul:
        orders = {hdul[i].header["ORDER"]: hdul[i].data for i in (1, 2, 3)}
    wave = np.asarray(orders[1]["WAVELENGTH"], dtype=float)
    keep = wave <= 3.0
    table = Table()
    table["wavelength"] = np.round(wave[keep], 6)
    for order in (1, 2, 3):
        if not np.allclose(orders[order]["WAVELENGTH"], wave):
            raise ValueError("SPECTRACE orders are not on one wavelength grid.")
        table[f"throughput_{order}"] = np.round(
            np.asarray(orders[order]["THROUGHPUT"], dtype=float)[keep], 6
        )
    table["x_3"] = np.round(np.asarray(orders[3]["X"], dtype=float)[keep], 3)
    table["y_3"] = np.round(np.asarray(orders[3]["Y"], dtype=float)[keep], 3)
    table["wavelength"].unit = "micron"
    table["x_3"].unit = table["y_3"].unit = "pixel"
    table.meta["comments"] = [
        "Order throughputs and order-3 trace (SUBSTRIP256 pixels) tabulated from the",
        "CRDS SPECTRACE reference jwst_niriss_spectrace_0023.fits (STScI reference file,",
        "via github.com/radicamc/exoTEDRF files/, BSD-3-Clause).",
    ]
    return table


# --------------------------------------------------------------------------- 2
def _step_column(profile, smooth=3):
    kernel = np.ones(smooth) / smooth
    sm = np.convolve(profile, kernel, mode="same")
    diff = np.diff(sm[smooth:-smooth])
    i = int(np.argmax(diff))
    # Sub-pixel peak of the derivative (parabola through the three samples).
    if 0 < i < diff.size - 1:
        a, b, c = diff[i - 1], diff[i], diff[i + 1]
        denom = a - 2 * b + c
        i = i + (0.5 * (a - c) / denom if denom != 0 else 0.0)
    return smooth + i + 0.5


def base_template(bkg96, real, trace_mask):
    """SUBSTRIP96 column profile shifted per row for the measured step tilt.

    Returns
    -------
    template : ndarray
        256 x 2048 template at the STScI level (no vertical factor yet).
    info : dict
        Step column of the STScI model and the fitted tilt.
    """
    bkg96 = np.asarray(bkg96, dtype=float)
    col_profile = np.median(bkg96, axis=0)
    # Reference columns are 0 in the STScI model: extend the edge values so
    # the shifted profile does not pull zeros into the science columns.
    col_profile[:4] = col_profile[4]
    col_profile[-4:] = col_profile[-5]
    lo, hi = 620, 780
    model_step = lo + _step_column(col_profile[lo:hi])

    # Step position in row bands of the real frame clear of the traces.
    bands = [(0, 26), (127, 151), (205, 229), (229, 252)]
    centres, steps = [], []
    masked = np.where(trace_mask, np.nan, real)
    for r0, r1 in bands:
        prof = np.nanmedian(masked[r0:r1, lo:hi], axis=0)
        if np.isnan(prof).mean() > 0.2:
            continue
        prof = np.where(np.isnan(prof), np.nanmedian(prof), prof)
        steps.append(lo + _step_column(prof))
        centres.append(0.5 * (r0 + r1 - 1))
    slope, intercept = np.polyfit(centres, steps, 1)
    rows = np.arange(256)
    shift = intercept + slope * rows - model_step
    x = np.arange(2048, dtype=float)
    template = np.interp((x[None, :] - shift[:, None]).ravel(), x, col_profile).reshape(256, 2048)
    info = {
        "model_step_column": float(model_step),
        "step_rows": [float(c) for c in centres],
        "step_columns": [float(s) for s in steps],
        "step_tilt_per_row": float(slope),
        "step_at_row0": float(intercept),
    }
    log.info("background step: STScI model %.1f; real %s at rows %s (tilt %.4f col/row)",
             model_step, np.round(steps, 1), centres, slope)
    return template, info


def trace_masks(pwcpos, half=(26, 26, 20)):
    """Masks of the pixels within ``half`` rows of each order's centre."""
    from jwst_soss_custom._base.geometry import NX, NY
    from jwst_soss_custom.datasets.traces import trace_solution

    rows = np.arange(NY)[:, None]
    out = {}
    for order, h in zip((1, 2, 3), half):
        trace = trace_solution(order, pwcpos)
        y = np.full(NX, np.nan)
        y[trace.columns] = trace.y
        out[order] = np.abs(rows - y[None, :]) < h
    return out


def _order0_mask(f277w):
    sm = ndimage.gaussian_filter(np.asarray(f277w, dtype=float), (3, 2))
    mask = sm > 0.15
    mask[:, :470] = False  # the F277W order-1 trace, not an order 0
    return ndimage.binary_dilation(mask, iterations=4)


# --------------------------------------------------------------------------- 3
def _centroid_offsets(data, trace, columns):
    """Smooth offset of the real trace centroid from the model, per column."""
    rows = np.arange(256)[:, None]
    y = np.interp(columns, trace.columns, trace.y)
    win = np.abs(rows - y[None, :]) <= 20
    d = np.where(win, data[:, columns], 0.0)
    cen = (d * rows).sum(0) / d.sum(0)
    coeff = np.polyfit(columns, cen - y, 3)
    return y + np.polyval(coeff, columns), coeff


def stack_core(data, centres, stretch, columns, bin_width=0.05, half=30):
    """Stack normalised column profiles on a fine offset grid (effective profile).

    Parameters
    ----------
    data : ndarray
        Frame with background and halo removed.
    centres, stretch : ndarray
        Trace centre and width stretch of each column in ``columns``.

    Returns
    -------
    u, core : ndarray
        Offsets (reference pixels) and the median normalised pixel value.
    """
    offsets = np.arange(-half, half + 1)
    rows = np.round(centres).astype(int)[None, :] + offsets[:, None]
    ok = (rows >= 0) & (rows < 252)
    vals = np.where(ok, data[np.clip(rows, 0, 255), columns[None, :]], np.nan)
    u = (rows - centres[None, :]) / stretch[None, :]
    norm = np.nansum(np.where(np.abs(u) <= 25, vals, 0.0), axis=0)
    vals = vals / norm[None, :] * stretch[None, :]
    edges = np.arange(-half, half + bin_width / 2, bin_width)
    idx = np.digitize(u.ravel(), edges) - 1
    v = vals.ravel()
    good = np.isfinite(v) & (idx >= 0) & (idx < edges.size - 1)
    centres_u = 0.5 * (edges[:-1] + edges[1:])
    core = np.full(centres_u.size, np.nan)
    order = np.argsort(idx[good], kind="stable")
    idx_sorted, v_sorted = idx[good][order], v[good][order]
    bounds = np.searchsorted(idx_sorted, np.arange(centres_u.size + 1))
    for k in range(centres_u.size):  # one median per offset bin (600 bins)
        chunk = v_sorted[bounds[k] : bounds[k + 1]]
        if chunk.size >= 5:
            core[k] = np.median(chunk)
    good = np.isfinite(core)
    core = np.interp(centres_u, centres_u[good], core[good])
    return centres_u, core


def finish_core(u, core, taper=(21.0, 25.0), cutoff=0.75):
    """Taper to zero, band-limit, centre on the centroid and normalise a stacked core.

    A pixel-integrated profile has no power at 1 cycle/pixel (the pixel
    response's transfer function vanishes there), which is what makes
    column sums and centroids independent of the sub-pixel phase. Stacking
    noise breaks that, so frequencies above ``cutoff`` cycles/pixel are
    removed (smooth high-order roll-off); the horns, a few pixels wide,
    keep 98-100 % of their height.
    """
    step = u[1] - u[0]
    r = np.abs(u)
    core = core * np.clip((taper[1] - r) / (taper[1] - taper[0]), 0.0, 1.0)
    freq = np.fft.rfftfreq(core.size, step)
    core = np.fft.irfft(np.fft.rfft(core) * np.exp(-((freq / cutoff) ** 8)), n=core.size)
    core = np.clip(core, 0.0, None)
    centroid = np.sum(u * core) / np.sum(core)
    core = np.interp(u, u - centroid, core, left=0.0, right=0.0)
    core /= np.sum(core) * step
    return core, float(centroid)


def _fwhm_of(u, core):
    from jwst_soss_custom.datasets.reference import _half_max_width

    return _half_max_width(u, core)


def width_law(frame, pwcpos):
    """Perpendicular FWHM versus wavelength from orders 1 (> 0.87 um) and 2 (< 0.87 um)."""
    from tools.measure import profile_fwhm
    from jwst_soss_custom.datasets.traces import trace_solution

    waves, widths = [], []
    for order, (c0, c1), wl_range in ((1, (40, 2030), (0.87, 3.0)), (2, (750, 1760), (0.0, 0.87))):
        cols, wave, fwhm = profile_fwhm(frame, order=order, pwcpos=pwcpos)
        trace = trace_solution(order, pwcpos)
        slope = np.interp(cols, trace.columns, trace.at()[2])
        perp = fwhm / np.sqrt(1 + slope**2)
        keep = (cols >= c0) & (cols <= c1) & (wave >= wl_range[0]) & (wave < wl_range[1])
        keep &= np.isfinite(perp)
        for a, b in _CONTAMINATED_COLUMNS:
            keep &= ~((cols >= a) & (cols <= b))
        waves.append(wave[keep])
        widths.append(perp[keep])
    wave = np.concatenate(waves)
    width = np.concatenate(widths)
    edges = np.arange(0.58, 2.86, 0.05)
    centres, medians = [], []
    for a, b in zip(edges[:-1], edges[1:]):
        sel = (wave >= a) & (wave < b)
        if sel.sum() >= 10:
            centres.append(0.5 * (a + b))
            medians.append(np.median(width[sel]))
    centres, medians = np.array(centres), np.array(medians)
    smooth = ndimage.median_filter(medians, size=3, mode="nearest")
    return centres, smooth


def _column_flux_core(data, centres, columns, half=25):
    rows = np.arange(256)[:, None]
    win = (np.abs(rows - centres[None, :]) <= half) & (rows < 252)
    return np.where(win, data[:, columns], 0.0).sum(0)


def _render_cores(centres_by_order, flux_by_order, stretch_by_order, columns_by_order,
                  wave_by_order, profile):
    from jwst_soss_custom._base.geometry import NX, NY
    from jwst_soss_custom.datasets.scene import _add_core

    flat = np.zeros(NY * NX)
    for order in centres_by_order:
        _add_core(
            flat,
            columns_by_order[order],
            centres_by_order[order],
            stretch_by_order[order],
            flux_by_order[order],
            profile,
            1.0,
            wave_by_order[order],
        )
    return flat.reshape(NY, NX)


def fit_frame_background_and_halo(residual, template, fit_mask, centres_by_order, flux_by_order,
                            columns_by_order, r0_grid, p_grid):
    """Joint fit of the background (template x quadratic in row) and the trace halo.

    ``residual`` is the real frame minus the rendered profile cores; the
    model is ``template * (k0 + k1 t + k2 t^2) + A * halo(r0, p)`` with
    ``t = (row - 128) / 128`` and the halo summed over orders, each scaled by
    its column flux. Linear in (k0, k1, k2, A); (r0, p) on a grid.
    """
    rows = np.arange(256, dtype=float)[:, None]
    t = (rows - 128.0) / 128.0
    y = residual[fit_mask]
    tb = np.broadcast_to(template, residual.shape)
    basis_bkg = [tb[fit_mask], (tb * t)[fit_mask], (tb * t**2)[fit_mask]]
    best = None
    for r0 in r0_grid:
        for p in p_grid:
            halo = np.zeros_like(residual)
            for order, yc in centres_by_order.items():
                cols = columns_by_order[order]
                halo[:, cols] += flux_by_order[order][None, :] / (
                    1.0 + (np.abs(rows - yc[None, :]) / r0) ** p
                )
            a = np.vstack([*basis_bkg, halo[fit_mask]]).T
            keep = np.ones(y.size, dtype=bool)
            for _ in range(3):  # clip stars and residual outliers
                coef, *_ = np.linalg.lstsq(a[keep], y[keep], rcond=None)
                res = y - a @ coef
                sigma = 1.4826 * np.median(np.abs(res[keep]))
                keep = np.abs(res) < 4 * sigma
            score = np.mean(res[keep] ** 2)
            if best is None or score < best[0]:
                best = (score, r0, p, coef)
    _, r0, p, coef = best
    return {
        "r0": float(r0),
        "power": float(p),
        "k": coef[:3].tolist(),
        "amplitude": float(coef[3]),
    }


def derive_profile_and_background(real, bkg96, f277w, pwcpos=PWCPOS_REAL, iterations=3):
    # Long (~120 lines) because it is one fixed-point iteration: profile,
    # background and halo are each fitted with the others held, and the loop
    # body only makes sense read as a whole.
    """Profile cores, width law, halo and background template from the real frame.

    Iterates: subtract background and halo, measure smooth trace centroids,
    stack the cores, render them with the measured column fluxes, then fit
    background (template x quadratic in row) and halo jointly on the
    trace-free pixels of ``real - cores``.

    Returns
    -------
    profile : CrossDispersionProfile
    template : ndarray
        256 x 2048 float32 background template at the STScI level.
    info : dict
        Measured numbers (step, tilt, scale, halo, widths).
    """
    from jwst_soss_custom.datasets.reference import CrossDispersionProfile
    from jwst_soss_custom.datasets.traces import trace_solution

    masks = trace_masks(pwcpos)
    blobs = _order0_mask(f277w)
    trace_mask = masks[1] | masks[2] | masks[3] | blobs
    template0, step_info = base_template(bkg96, real, trace_mask)

    # First background guess: template level in far, trace-free corners.
    wide = trace_masks(pwcpos, half=(70, 70, 30))
    far = ~(wide[1] | wide[2] | wide[3] | blobs)
    far[252:] = False
    far[:, :8] = far[:, -8:] = False
    k_guess = float(np.median(real[far] / template0[far]))
    bkg = k_guess * template0
    rows = np.arange(256, dtype=float)[:, None]
    t = (rows - 128.0) / 128.0

    wave_w, fwhm_w = width_law(real - bkg, pwcpos)
    traces = {o: trace_solution(o, pwcpos) for o in (1, 2, 3)}
    # Order 2 is measurable (bright, clear of order 1, on the detector) over 700-1780.
    columns = {
        1: traces[1].columns[(traces[1].columns >= 4) & (traces[1].columns <= 2043)],
        2: traces[2].columns[(traces[2].columns >= 700) & (traces[2].columns <= 1780)],
    }
    # One core per column range (the horns sharpen towards the red); columns
    # 500-700 are left out because order 2 runs there within 30 px of order 1.
    stack_sets = []
    for lo, hi in _CORE_COLUMNS:
        cols = np.arange(lo, hi)
        for a, b in _CONTAMINATED_COLUMNS:
            cols = cols[~((cols >= a) & (cols <= b))]
        stack_sets.append(cols)
    all_stack = np.concatenate(stack_sets)

    halo_img = np.zeros_like(real)
    halo = {"r0": 20.0, "power": 2.0, "amplitude": 0.0, "k": [k_guess, 0.0, 0.0]}
    fit_mask = ~(masks[1] | masks[2] | masks[3] | blobs)
    fit_mask[252:] = False
    fit_mask[:, :6] = fit_mask[:, -6:] = False
    for it in range(iterations):
        data = real - bkg - halo_img
        # Trace centres (measured, smooth) and width stretch of each order.
        centres, stretch, flux, waves = {}, {}, {}, {}
        fwhm_ref = float(np.median(np.interp(np.interp(all_stack, traces[1].columns,
                                                       traces[1].wavelength), wave_w, fwhm_w)))
        for order in (1, 2):
            cols = columns[order]
            yc, _ = _centroid_offsets(data, traces[order], cols)
            _, wave, slope = (
                np.interp(cols, traces[order].columns, a) for a in traces[order].at()
            )
            centres[order] = yc
            waves[order] = wave
            stretch[order] = np.interp(wave, wave_w, fwhm_w) / fwhm_ref * np.sqrt(1 + slope**2)
            flux[order] = _column_flux_core(data, centres[order], cols)
        cores_list, core_waves, shifts = [], [], []
        for cols in stack_sets:
            s1 = np.interp(cols, columns[1], stretch[1])
            c1 = np.interp(cols, columns[1], centres[1])
            u, core = stack_core(data, c1, s1, cols)
            core, centroid = finish_core(u, core)
            cores_list.append(core)
            shifts.append(centroid)
            wave_cols = np.interp(cols, traces[1].columns, traces[1].wavelength)
            core_waves.append(float(np.median(wave_cols)))
        order_k = np.argsort(core_waves)
        core = np.vstack(cores_list)[order_k]
        core_wave = np.array(core_waves)[order_k]
        profile = CrossDispersionProfile(
            u, core, core_wave, fwhm_ref, wave_w, fwhm_w, 0.0, 1.0, 1.0
        )
        cores = _render_cores(centres, flux, stretch, columns, waves, profile)
        halo = fit_frame_background_and_halo(
            real - cores, template0, fit_mask, centres, flux, columns,
            r0_grid=(2.0, 3.0, 4.0, 6.0, 8.0, 11.0, 15.0), p_grid=(0.9, 1.0, 1.1, 1.25, 1.5, 2.0),
        )
        k0, k1, k2 = halo["k"]
        bkg = template0 * (k0 + k1 * t + k2 * t**2)
        halo_img = np.zeros_like(real)
        for order in (1, 2):
            halo_img[:, columns[order]] += halo["amplitude"] * flux[order][None, :] / (
                1.0 + (np.abs(rows - centres[order][None, :]) / halo["r0"]) ** halo["power"]
            )
        log.info("iteration %d: fwhm_ref %.2f, core centroid shifts %s, halo %s", it, fwhm_ref,
                 np.round(shifts, 3), halo)

    # The fit scaled the halo by the core flux; per unit total column flux
    # (core + halo) its amplitude is a_core / (1 + h), h the halo/core ratio.
    h = CrossDispersionProfile(u, core, core_wave, fwhm_ref, wave_w, fwhm_w, halo["amplitude"],
                               halo["r0"], halo["power"]).halo_fraction
    amplitude_total = halo["amplitude"] / (1.0 + h)
    profile = CrossDispersionProfile(u, core, core_wave, fwhm_ref, wave_w, fwhm_w,
                                     amplitude_total, halo["r0"], halo["power"])

    # Vertical factor normalised to the STScI level over the SUBSTRIP96 rows.
    k0, k1, k2 = halo["k"]
    vertical = k0 + k1 * t[:, 0] + k2 * t[:, 0] ** 2
    scale = float(np.mean(vertical[ROWS96[0] : ROWS96[1]]))
    template = (template0 * (vertical / scale)[:, None]).astype(np.float32)
    template[252:, :] = 0.0
    template[:, :4] = 0.0
    template[:, -4:] = 0.0
    info = dict(step_info)
    info.update(
        background_scale=scale,
        vertical_factor_top_bottom=[float(vertical[0] / scale), float(vertical[251] / scale)],
        background_scale_far_guess=k_guess,
        halo_amplitude=amplitude_total,
        halo_r0=halo["r0"],
        halo_power=halo["power"],
        halo_fraction=profile.halo_fraction,
        fwhm_ref=profile.fwhm_ref,
        core_wavelength=core_wave.tolist(),
        core_fwhm=[_fwhm_of(u, c) for c in core],
    )
    return profile, template, info


def profile_tables(profile):
    """ECSV tables of the profile core (with halo parameters) and of the width law."""
    core = Table()
    core["u"] = np.round(profile.u, 4)
    for k, values in enumerate(profile.core, start=1):
        core[f"core_{k}"] = values
    core["u"].unit = "pixel"
    core.meta["core_wavelength"] = [round(float(w), 4) for w in profile.core_wavelength]
    core.meta["fwhm_ref"] = round(float(profile.fwhm_ref), 4)
    core.meta["halo_amplitude"] = float(profile.halo_amplitude)
    core.meta["halo_r0"] = float(profile.halo_r0)
    core.meta["halo_power"] = float(profile.halo_power)
    core.meta["comments"] = [
        "SOSS cross-dispersion profile cores: effective (pixel-integrated) profiles per unit",
        "flux at the reference width fwhm_ref, stacked from order-1 columns 40-500, 700-1400",
        "and 1400-1960 (core_1..3 at core_wavelength) of the real WASP-39 median frame",
        "(JWST ERS program 1366; github.com/afeinstein20/wasp39b_niriss_paper, MIT,",
        "(c) 2022 Adina Feinstein). Halo per unit column flux: a / (1 + (r/r0)^p).",
    ]
    width = Table()
    width["wavelength"] = np.round(profile.width_wavelength, 4)
    width["fwhm"] = np.round(profile.width_fwhm, 3)
    width["wavelength"].unit = "micron"
    width["fwhm"].unit = "pixel"
    width.meta["comments"] = [
        "Perpendicular FWHM of the SOSS profile versus wavelength, measured on the real",
        "WASP-39 median frame (orders 1 and 2); same origin and licence as the core.",
    ]
    return core, width


# --------------------------------------------------------------------------- 4
def _smooth_sums(sums, size=31, sigma=4.0):
    """Continuum of column sums: running median (rejects lines, order 0s) then Gaussian."""
    return ndimage.gaussian_filter1d(ndimage.median_filter(sums, size=size, mode="nearest"), sigma)


#: Smoothing window (columns) of the column sums: about 30 nm in each order,
#: wide enough to remove the Ca II triplet and the hydrogen lines.
_SMOOTH_COLUMNS = {1: 31, 2: 65, 3: 91}
#: Wavelength ranges where each order sets the continuum (1, 2) or where
#: its throughput correction is measured against the continuum (2, 3).
_CONTINUUM_RANGE = {1: (0.87, 2.83), 2: (0.60, 0.87)}
_SCALE_RANGE = {2: (0.87, 1.12), 3: (0.70, 0.93)}


def _ratio_on_grid(grid, wave, ratio, lo, hi):
    sel = (wave >= lo) & (wave < hi) & np.isfinite(ratio) & (ratio > 0)
    o = np.argsort(wave[sel])
    on = (grid >= wave[sel].min()) & (grid <= wave[sel].max())
    return on, np.interp(grid[on], wave[sel][o], ratio[sel][o])


def _scene_config(background_scale):
    from jwst_soss_custom.datasets.config import SimConfig

    return SimConfig(nints=1, nsegments=1, stellar_line_depth=0.0, n_order0=0,
                     background_scale=background_scale, pwcpos=PWCPOS_REAL)


def derive_spectrum(real, profile, template, background_scale, start=None, iterations=6):
    """Continuum and throughput corrections matching the real column sums.

    The continuum (DN/s per micron before throughput) comes from order 1
    above 0.87 micron. Between 0.87 and 1.12 micron order 2 sees the same
    continuum, and the ratio of its real to simulated column sums is the
    correction to its SPECTRACE throughput (held constant outside that
    range); below 0.87 micron order 2, with that correction, sets the
    continuum. Order 3 gets its own correction over 0.66-0.95 micron. Each
    pass renders the scene and compares the smoothed wide-aperture sums of
    `aperture_sums`; the continuum is kept smooth (3 nm Gaussian) so the
    junction of the orders at 0.87 micron leaves no step.

    Returns
    -------
    grid, flux : ndarray
        Continuum.
    scales : dict of int to ndarray
        Throughput corrections of orders 2 and 3 on ``grid``.
    """
    from tools.measure import aperture_sums
    from jwst_soss_custom.datasets.scene import Scene, throughput
    from jwst_soss_custom.datasets.traces import trace_solution

    grid = np.round(np.arange(0.55, 2.9005, 0.001), 4)
    config = _scene_config(background_scale)
    real_sums = {}
    for order in (1, 2, 3):
        c, w, s = aperture_sums(real, order=order, pwcpos=PWCPOS_REAL)
        real_sums[order] = (c, w, _smooth_sums(s, _SMOOTH_COLUMNS[order]))
    if start is None:
        # Order-1 sums / (throughput x dispersion), flat beyond.
        c, w, s = real_sums[1]
        trace1 = trace_solution(1, PWCPOS_REAL)
        disp = np.abs(np.gradient(np.interp(c, trace1.columns, trace1.wavelength)))
        o = np.argsort(w)
        flux = np.interp(grid, w[o], (s / (throughput(1, w) * disp))[o])
        scales = {2: np.ones_like(grid), 3: np.ones_like(grid)}
    else:
        flux, scales = start[1].copy(), {k: v.copy() for k, v in start[2].items()}
    for it in range(iterations):
        scene = Scene(config, profile=profile, spectrum=(grid, flux), background_template=template,
                      throughput_scale={k: (grid, v) for k, v in scales.items()})
        sim = scene.deep_frame()
        ratios = {}
        for order in (1, 2, 3):
            c, w, s_real = real_sums[order]
            _, _, s_sim = aperture_sums(sim, order=order, pwcpos=PWCPOS_REAL)
            with np.errstate(divide="ignore", invalid="ignore"):
                ratios[order] = (w, s_real / _smooth_sums(s_sim, _SMOOTH_COLUMNS[order]))
        worst = 0.0
        for order, (lo, hi) in _CONTINUUM_RANGE.items():
            on, factor = _ratio_on_grid(grid, *ratios[order], lo, hi)
            flux[on] *= factor
            worst = max(worst, float(np.max(np.abs(factor - 1))))
        for order, (lo, hi) in _SCALE_RANGE.items():
            on, factor = _ratio_on_grid(grid, *ratios[order], lo, hi)
            scales[order][on] *= factor
            scales[order][grid < grid[on][0]] = scales[order][on][0]
            scales[order][grid > grid[on][-1]] = scales[order][on][-1]
            scales[order] = ndimage.gaussian_filter1d(scales[order], 10.0, mode="nearest")
            if order == 2:
                # Below 0.87 um the order-2 ratio was used for the continuum;
                # the change of the constant correction must not count twice.
                flux[grid < lo] /= factor[0]
        measured = (grid >= _CONTINUUM_RANGE[2][0]) & (grid <= _CONTINUUM_RANGE[1][1])
        flux[grid < _CONTINUUM_RANGE[2][0]] = flux[measured][0]
        flux[grid > _CONTINUUM_RANGE[1][1]] = flux[measured][-1]
        flux = ndimage.gaussian_filter1d(flux, 3.0, mode="nearest")
        log.info("spectrum iteration %d: largest continuum correction %.4f; throughput "
                 "scale order 2 %.3f, order 3 %.3f-%.3f", it, worst, scales[2][0],
                 scales[3].min(), scales[3].max())
    return grid, flux, scales


def refine_width(real, profile, template, background_scale, spectrum):
    """Rescale the width law so the simulated FWHM matches the real one per wavelength bin."""
    from tools.measure import profile_fwhm
    from jwst_soss_custom.datasets.reference import CrossDispersionProfile
    from jwst_soss_custom.datasets.scene import Scene

    grid, flux, scales = spectrum
    scene = Scene(_scene_config(background_scale), profile=profile, spectrum=(grid, flux),
                  background_template=template,
                  throughput_scale={k: (grid, v) for k, v in scales.items()})
    sim = scene.deep_frame()
    factor = np.ones_like(profile.width_wavelength)
    for order, (lo, hi) in ((1, (0.87, 3.0)), (2, (0.0, 0.87))):
        _, wave, f_real = profile_fwhm(real, order=order, pwcpos=PWCPOS_REAL)
        _, _, f_sim = profile_fwhm(sim, order=order, pwcpos=PWCPOS_REAL)
        half = 0.025
        for k, wl in enumerate(profile.width_wavelength):
            if not lo <= wl < hi:
                continue
            sel = (np.abs(wave - wl) < half) & np.isfinite(f_real) & np.isfinite(f_sim)
            if sel.sum() >= 10:
                factor[k] = np.median(f_real[sel]) / np.median(f_sim[sel])
    log.info("width refinement factors %.3f-%.3f", factor.min(), factor.max())
    return CrossDispersionProfile(
        profile.u, profile.core, profile.core_wavelength, profile.fwhm_ref,
        profile.width_wavelength,
        profile.width_fwhm * factor, profile.halo_amplitude, profile.halo_r0, profile.halo_power,
    )


def spectrum_table(grid, flux):
    """ECSV table of the continuum with its provenance."""
    table = Table()
    table["wavelength"] = grid
    table["flux"] = np.round(flux, 1)
    table["wavelength"].unit = "micron"
    table["flux"].unit = "DN / (s micron)"
    table.meta["comments"] = [
        "WASP-39 continuum seen by NIRISS/SOSS before the order throughputs: the smoothed,",
        "background-subtracted order-1 (>0.87 um) and order-2 (<0.87 um) column sums of the",
        "real WASP-39 median frame (JWST ERS program 1366; github.com/afeinstein20/",
        "wasp39b_niriss_paper, MIT, (c) 2022 Adina Feinstein), divided by the SPECTRACE",
        "throughput (order 2 with its measured correction) and dispersion, iterated through",
        "the simulator until its column sums match. Flat beyond 0.60-2.83 um.",
    ]
    return table


# --------------------------------------------------------------------------- 5
def order0_stamps(f277w, real, centres=ORDER0_CENTRES, shape=ORDER0_STAMP):
    """Cut the order-0 blobs from the F277W frame and scale them to the CLEAR frame.

    The CLEAR/F277W ratio is fitted on blobs isolated from the traces.
    """
    f277w = np.asarray(f277w, dtype=float)
    sy, sx = shape
    stamps, xs, ys = [], [], []
    for x, y in centres:
        y0, x0 = y - sy // 2, x - sx // 2
        pad = np.pad(f277w, ((sy, sy), (sx, sx)), mode="constant")
        cut = pad[y0 + sy : y0 + 2 * sy, x0 + sx : x0 + 2 * sx].copy()
        border = np.concatenate(
            [cut[:3].ravel(), cut[-3:].ravel(), cut[:, :3].ravel(), cut[:, -3:].ravel()]
        )
        cut -= np.median(border)
        keep = ndimage.binary_dilation(ndimage.gaussian_filter(cut, 1.0) > 0.2, iterations=2)
        lab, n = ndimage.label(keep)
        if n > 1:  # keep only the blob at the centre
            centre_label = lab[sy // 2 - 3 : sy // 2 + 4, sx // 2 - 3 : sx // 2 + 4].max()
            keep = lab == centre_label
        stamps.append(np.where(keep, np.clip(cut, 0, None), 0.0))
        xs.append(x)
        ys.append(y)
    stamps = np.array(stamps)
    # CLEAR / F277W amplitude on the isolated blobs (no trace within 40 rows).
    ratios = []
    for k, (x, y) in enumerate(centres):
        if k not in (0, 3, 5):
            continue
        y0, x0 = y - sy // 2, x - sx // 2
        cut = real[max(y0, 0) : y0 + sy, x0 : x0 + sx]
        st = stamps[k][max(y0, 0) - y0 : max(y0, 0) - y0 + cut.shape[0]]
        a = np.vstack([st.ravel(), np.ones(st.size)]).T
        coef, *_ = np.linalg.lstsq(a, cut.ravel(), rcond=None)
        ratios.append(coef[0])
    ratio = float(np.median(ratios))
    log.info("order-0 CLEAR/F277W amplitude ratios %s -> %.2f", np.round(ratios, 2), ratio)
    return {
        "stamps": (stamps * ratio).astype(np.float32),
        "x": np.array(xs, dtype=np.int32),
        "y": np.array(ys, dtype=np.int32),
        "clear_over_f277w": np.float32(ratio),
    }, ratio


# --------------------------------------------------------------------------- all
def build_package_data(shared_dir):
    """Derive every packaged data file from the real material in ``shared_dir``.

    The files are written to the package's ``data`` folder (later steps of
    the derivation read the earlier ones through the normal loaders).

    Parameters
    ----------
    shared_dir : str or Path
        Folder holding the real files (see module docstring).

    Returns
    -------
    dict
        The measured numbers (quoted in ``docs/simulator.md``).
    """
    from jwst_soss_custom.datasets import reference

    shared = Path(shared_dir)
    out = data_dir()
    out.mkdir(parents=True, exist_ok=True)
    numbers = {}

    throughput_table(shared / SPECTRACE).write(out / reference.THROUGHPUT_FILE, overwrite=True)
    depth_file = reference.DEPTH_SPECTRUM_FILE
    shutil.copyfile(shared / SPECTRA_DIR / depth_file, out / depth_file)
    _clear_caches()

    real, bad = clean_frame(np.load(shared / MEDFRAME))
    bkg96 = np.load(shared / BKG96)
    f277w = np.load(shared / F277W)

    stamps, ratio = order0_stamps(f277w, real)
    np.savez_compressed(out / reference.ORDER0_FILE, **stamps)
    numbers["order0_clear_over_f277w"] = ratio

    profile, template, info = derive_profile_and_background(real, bkg96, f277w)
    numbers.update(info)
    # 1e-4 DN/s is far below any use of the template and lets it compress 3x.
    np.savez_compressed(out / reference.BACKGROUND_FILE, template=np.round(template, 4))
    _clear_caches()

    spectrum = derive_spectrum(real, profile, template, info["background_scale"])
    for _ in range(2):
        profile = refine_width(real, profile, template, info["background_scale"], spectrum)
        spectrum = derive_spectrum(real, profile, template, info["background_scale"],
                                   start=spectrum, iterations=3)
    core_table, width_table = profile_tables(profile)
    core_table.write(out / reference.PROFILE_FILE, overwrite=True)
    width_table.write(out / reference.WIDTH_FILE, overwrite=True)
    grid, flux, scales = spectrum
    spectrum_table(grid, flux).write(out / reference.SPECTRUM_FILE, overwrite=True)
    table = throughput_table(shared / SPECTRACE)
    for order in (1, 2, 3):
        factor = scales.get(order, np.ones_like(grid))
        table[f"scale_{order}"] = np.round(np.interp(table["wavelength"], grid, factor), 5)
    table.meta["comments"] += [
        "scale_<order>: empirical throughput correction measured on the real WASP-39 frame",
        "(order 2: its column sums relative to order 1's continuum at 0.87-1.12 um; order 3:",
        "its column sums at 0.70-0.93 um; constant outside those ranges; 1 for order 1).",
    ]
    table.write(out / reference.THROUGHPUT_FILE, overwrite=True)
    numbers["order2_throughput_scale"] = float(scales[2][0])
    numbers["order3_throughput_scale_range"] = [float(scales[3].min()), float(scales[3].max())]
    _clear_caches()
    for key, value in numbers.items():
        log.info("%s = %s", key, value)
    return numbers


def compare_to_real(sim, real, pwcpos=PWCPOS_REAL):
    """Numbers comparing a simulated deep frame with the real one (as in the tests).

    Parameters
    ----------
    sim, real : ndarray
        256 x 2048 frames (DN/s).

    Returns
    -------
    dict
        Column-sum ratio range over 0.9-2.5 micron (11-column running
        medians), median FWHM of both per 0.2-micron band, step columns,
        background levels in two trace-free boxes, and the brightest pixel
        near 1.17 micron.
    """
    from tools.measure import (
        aperture_sums,
        background_level,
        background_step_column,
        profile_fwhm,
    )

    _, wave, s_real = aperture_sums(real, pwcpos=pwcpos)
    cols, _, s_sim = aperture_sums(sim, pwcpos=pwcpos)
    band = (wave >= 0.9) & (wave <= 2.5)
    ratio = ndimage.median_filter(s_sim, 11) / ndimage.median_filter(s_real, 11)
    _, _, f_real = profile_fwhm(real, pwcpos=pwcpos)
    _, _, f_sim = profile_fwhm(sim, pwcpos=pwcpos)
    fwhm = []
    for lo in np.arange(0.9, 2.5, 0.2):
        sel = (wave >= lo) & (wave < lo + 0.2)
        fwhm.append((round(float(lo), 1), float(np.nanmedian(f_real[sel])),
                     float(np.nanmedian(f_sim[sel]))))
    near = cols[np.abs(wave - 1.17) < 0.03]
    boxes = {"left (rows 210-250, x 100-650)": ((210, 250), (100, 650)),
             "right (rows 225-250, x 750-1000)": ((225, 250), (750, 1000))}
    return {
        "column_sum_ratio_range": (float(ratio[band].min()), float(ratio[band].max())),
        "column_sum_max_real": float(ndimage.median_filter(s_real, 11)[band].max()),
        "column_sum_max_sim": float(ndimage.median_filter(s_sim, 11)[band].max()),
        "fwhm_real_sim": fwhm,
        "step_column_real": background_step_column(real),
        "step_column_sim": background_step_column(sim),
        "background_real_sim": {k: (background_level(real, *b), background_level(sim, *b))
                                for k, b in boxes.items()},
        "peak_1p17_real": float(np.max(real[:252, near])),
        "peak_1p17_sim": float(np.max(sim[:252, near])),
    }


def _clear_caches():
    from jwst_soss_custom.datasets import reference, traces

    for loader in (
        reference._background_template,
        reference.load_profile,
        reference.load_throughput,
        reference.load_stellar_spectrum,
        reference.load_order0_stamps,
        reference.load_depth_spectrum,
        traces._model_trace,
        order3_model,
    ):
        loader.cache_clear()


def main(argv=None):
    """Command-line entry: ``python -m jwst_soss_custom.datasets.calibrate SHARED_DIR``."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print(
            "usage: python -m tools.calibrate SHARED_DATA_DIR",
            file=sys.stderr,
        )
        return 2
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    shared = argv[0]
    numbers = build_package_data(shared)
    from jwst_soss_custom.datasets.config import SimConfig
    from jwst_soss_custom.datasets.scene import Scene

    sim = Scene(SimConfig(nints=1, nsegments=1)).deep_frame()
    numbers.update(compare_to_real(sim, np.load(Path(shared) / MEDFRAME)))
    for key, value in numbers.items():
        print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
