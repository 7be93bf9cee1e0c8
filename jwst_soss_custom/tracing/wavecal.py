"""Wavelength check on the data: stellar absorption lines (pure numpy).

pastasoss's wavelength solution can be off by up to a pixel for a visit. The
deep spectrum of each order is normalised by its running median, and the
shift (in columns) of a template of known stellar lines placed with the
predicted solution is fitted by least squares; order 2 is then compared with
order 1 directly in their common wavelength range.
"""

import logging

import numpy as np
from astropy.table import Table
from scipy.ndimage import median_filter

from jwst_soss_custom._base.data import data_path

__all__ = ["load_line_list", "normalised_spectrum", "fit_shift", "line_template",
           "measure_wavelength_shift", "compare_orders", "deep_spectrum", "check_wavelengths"]

log = logging.getLogger(__name__)

#: Packaged line list (origin in ``jwst_soss_custom/data/README.md``).
LINE_LIST = "stellar_lines.ecsv"


def load_line_list(path=None):
    """Stellar lines as ``(wavelength_um, strength)`` arrays.

    Parameters
    ----------
    path : str or None
        ECSV/CSV table with columns ``wavelength`` (micron, vacuum) and
        ``strength`` (relative depth); the packaged list if None.

    Returns
    -------
    wavelength, strength : ndarray
    """
    source = path or data_path(LINE_LIST)
    table = Table.read(source, format="ascii.ecsv" if str(source).endswith("ecsv") else "ascii")
    missing = {"wavelength", "strength"} - set(table.colnames)
    if missing:
        raise ValueError(
            f"Line list {source} lacks column(s) {sorted(missing)}; give 'wavelength' "
            "(micron, vacuum) and 'strength' (relative depth)."
        )
    return np.asarray(table["wavelength"], float), np.asarray(table["strength"], float)


def normalised_spectrum(flux, window=31):
    """Flux divided by its running median, minus 1 (lines are negative).

    Parameters
    ----------
    flux : ndarray (ncols,)
        Spectrum along contiguous columns (NaN allowed).
    window : int
        Running-median length (columns); much longer than a line (2 px).

    Returns
    -------
    ndarray (ncols,)
    """
    flux = np.asarray(flux, float)
    good = np.isfinite(flux)
    filled = np.interp(np.arange(flux.size), np.flatnonzero(good), flux[good])
    continuum = median_filter(filled, size=window, mode="nearest")
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(good & (continuum > 0), flux / continuum - 1.0, np.nan)
    return out


def line_template(columns, line_columns, strength, fwhm):
    """Negative Gaussians (``fwhm`` pixels) at ``line_columns``, one per column.

    Returns
    -------
    ndarray (ncols, nlines)
        Each line scaled by its strength (free amplitudes are fitted on top).
    """
    sigma = fwhm / 2.3548
    arg = (np.asarray(columns, float)[:, None] - np.asarray(line_columns)[None, :]) / sigma
    return -np.exp(-0.5 * arg**2) * np.asarray(strength, float)[None, :]


def fit_shift(signal, model, max_shift=3.0, step=0.02):
    """Shift (pixels) and amplitude of ``model(shift)`` best fitting ``signal``.

    For every trial shift the amplitudes (one per template column, e.g. one
    per line, so that wrong line strengths do not matter) are fitted
    linearly; the shift of the lowest residual is refined with a parabola
    through its neighbours. Its 1-sigma error follows from the curvature of
    chi-square, with the noise taken as the residual scatter of the best fit.

    Parameters
    ----------
    signal : ndarray (n,)
        Normalised spectrum (NaN ignored).
    model : callable
        ``model(shift) -> ndarray (n,) or (n, k)``, the template (or k
        templates with free amplitudes) moved by ``shift``.
    max_shift, step : float
        Trial shifts from ``-max_shift`` to ``max_shift`` every ``step`` pixels.

    Returns
    -------
    dict
        ``shift``, ``error``, ``amplitude`` (mean fitted amplitude),
        ``snr`` (norm of the fitted template over the noise), ``sigma``
        (noise per point), ``at_edge`` (the minimum is at the edge of the
        search).
    """
    good = np.isfinite(signal)
    s = signal[good]
    shifts = np.arange(-max_shift, max_shift + step / 2, step)
    sse = np.empty(shifts.size)
    power = np.empty(shifts.size)
    amp = np.empty(shifts.size)
    for k, shift in enumerate(shifts):
        design = np.atleast_2d(model(shift).T).T[good]
        # Normal equations: ~100x faster than lstsq's SVD for these narrow,
        # well-separated templates (a tiny ridge keeps empty ones harmless).
        normal = design.T @ design
        normal[np.diag_indices_from(normal)] += 1e-12 * max(normal.trace(), 1e-300)
        coef = np.linalg.solve(normal, design.T @ s)
        fitted = design @ coef
        sse[k] = np.sum((s - fitted) ** 2)
        power[k] = fitted @ fitted
        amp[k] = coef.mean()
    k = int(np.argmin(sse))
    # Noise from the residual of the best fit: includes template mismatch,
    # so the error and signal-to-noise are conservative.
    sigma = np.sqrt(max(sse[k], 1e-300) / max(s.size - 2, 1))
    chi2 = sse / sigma**2
    at_edge = k in (0, shifts.size - 1)
    shift, curvature = shifts[k], np.inf
    if not at_edge:
        c0, c1, c2 = chi2[k - 1 : k + 2]
        curvature = (c0 - 2 * c1 + c2) / step**2
        if curvature > 0:
            shift = shifts[k] + 0.5 * step * (c0 - c2) / (c0 - 2 * c1 + c2)
    error = float(np.sqrt(2.0 / curvature)) if np.isfinite(curvature) and curvature > 0 else np.inf
    snr = float(np.sqrt(power[k]) / sigma)
    return {"shift": float(shift), "error": error, "amplitude": float(amp[k]), "snr": snr,
            "sigma": float(sigma), "at_edge": bool(at_edge)}


def measure_wavelength_shift(flux, columns, model_x, model_wavelength, lines, fwhm=2.0,
                             max_shift=3.0, snr_min=5.0, window=31):
    """Column shift of an order's spectrum relative to the predicted wavelengths.

    The true wavelength of column ``c`` is ``lambda_model(c - shift)``; a
    positive shift means the spectrum sits at larger columns than predicted.

    Parameters
    ----------
    flux : ndarray (ncols,)
        Deep spectrum of the order at ``columns``.
    columns : ndarray of int (ncols,)
        Contiguous detector columns, increasing.
    model_x, model_wavelength : ndarray
        Predicted wavelength solution (pastasoss) as samples, x increasing.
    lines : tuple of ndarray
        ``(wavelength, strength)`` of the stellar lines.
    fwhm : float
        Line width on the detector (pixels).
    max_shift : float
        Largest shift searched (pixels).
    snr_min : float
        Minimum signal-to-noise of the line template (one amplitude for all
        lines, absorption positive) for the shift to count as measured.
    window : int
        Running-median length for the continuum.

    Returns
    -------
    dict
        `fit_shift`'s keys plus ``n_lines`` (lines in range) and ``status``:
        ``"measured"`` or ``"not measurable"`` (too few or too weak lines, or
        the best shift at the edge of the search).
    """
    columns = np.asarray(columns)
    wave_c = np.interp(columns, model_x, model_wavelength)
    lam, strength = lines
    # Line positions in columns from the (monotonic) predicted solution.
    order = np.argsort(wave_c)
    line_x = np.interp(lam, wave_c[order], columns[order].astype(float), left=np.nan, right=np.nan)
    margin = max_shift + window / 2
    inside = np.isfinite(line_x) & (line_x > columns[0] + margin) & (line_x < columns[-1] - margin)
    result = {"n_lines": int(inside.sum())}
    if not inside.any():
        return {**result, "shift": 0.0, "error": np.inf, "amplitude": 0.0, "snr": 0.0,
                "at_edge": False, "status": "not measurable"}
    signal = normalised_spectrum(flux, window)

    def template(shift):
        return line_template(columns, line_x[inside] + shift, strength[inside], fwhm)

    fit = fit_shift(signal, template, max_shift)
    # Detection: one amplitude for the whole line list at the best shift. The
    # per-line amplitudes that fix the shift would also fit pure noise
    # (their norm is ~sqrt(n_lines) sigma), so they cannot say whether lines exist.
    good = np.isfinite(signal)
    one = template(fit["shift"]).sum(axis=1)[good]
    fit["amplitude"] = float(one @ signal[good] / (one @ one))
    fit["snr"] = float(fit["amplitude"] * np.sqrt(one @ one) / fit["sigma"])
    ok = fit["snr"] >= snr_min and not fit["at_edge"]
    return {**result, **fit, "status": "measured" if ok else "not measurable"}


def compare_orders(flux1, wave1, flux2, wave2, columns2, max_shift=3.0, snr_min=5.0,
                   window=31):
    """Shift (order-2 columns) of order 2's spectrum against order 1's.

    Order 1's normalised spectrum, as a function of its (corrected)
    wavelengths, is the template; it is evaluated at order 2's wavelengths
    of columns ``c - shift``. A shift near 0 means the two solutions agree.

    Parameters
    ----------
    flux1, wave1 : ndarray
        Order 1 deep spectrum and wavelengths (any column order).
    flux2, wave2, columns2 : ndarray
        Order 2 deep spectrum, wavelengths and contiguous columns (increasing).
    max_shift, snr_min, window
        As in `measure_wavelength_shift`.

    Returns
    -------
    dict
        `fit_shift`'s keys, ``range`` (common wavelengths, micron) and
        ``status``.
    """
    s1 = normalised_spectrum(flux1, window)
    s2 = normalised_spectrum(flux2, window)
    o1 = np.argsort(wave1)
    lo = max(np.nanmin(wave1), np.nanmin(wave2))
    hi = min(np.nanmax(wave1), np.nanmax(wave2))
    common = (wave2 > lo) & (wave2 < hi) & np.isfinite(s2)
    base = {"range": [float(lo), float(hi)]}
    if common.sum() < 4 * window:
        return {**base, "shift": 0.0, "error": np.inf, "amplitude": 0.0, "snr": 0.0,
                "at_edge": False, "status": "not measurable"}
    good1 = np.isfinite(s1[o1])
    w1, t1 = wave1[o1][good1], s1[o1][good1]
    c2 = np.asarray(columns2, float)
    order2 = np.argsort(c2)

    def model(shift):
        lam = np.interp(c2 - shift, c2[order2], wave2[order2])
        return np.interp(lam, w1, t1)

    signal = np.where(common, s2, np.nan)
    fit = fit_shift(signal, model, max_shift)
    ok = fit["snr"] >= snr_min and fit["amplitude"] > 0 and not fit["at_edge"]
    return {**base, **fit, "status": "measured" if ok else "not measurable"}


def deep_spectrum(deep, trace_y, columns, halfwidth=15.0):
    """Box spectrum of a deep frame along a trace (fractional edges).

    Unusable (NaN) pixels take the median of their row neighbours, so they
    do not fake absorption lines.

    Parameters
    ----------
    deep : ndarray (ny, nx)
    trace_y : ndarray (nx,)
    columns : ndarray of int
    halfwidth : float

    Returns
    -------
    ndarray (ncols,)
    """
    ny = deep.shape[0]
    image = np.asarray(deep, float)
    bad = ~np.isfinite(image)
    if bad.any():
        image = np.where(bad, median_filter(np.nan_to_num(image), size=(1, 5)), image)
    rows = np.arange(ny)[:, None]
    yc = trace_y[columns][None, :]
    low = np.maximum(rows - 0.5, yc - halfwidth)
    high = np.minimum(rows + 0.5, yc + halfwidth)
    weights = np.clip(high - low, 0.0, 1.0)
    return (weights * image[:, columns]).sum(axis=0)


def check_wavelengths(deep, solution, lines, fwhm=2.0, snr_min=5.0, apply_sigma=3.0,
                      max_shift=3.0):
    """Measure, and apply when significant, each order's wavelength shift.

    Updates ``solution`` in place: a significant shift replaces an order's
    wavelengths by pastasoss's ``lambda(c - shift)``; every order's
    ``record["wavelength"]`` says what was measured and done, and
    ``solution.record["order2_vs_order1"]`` holds the cross-check.

    Parameters
    ----------
    deep : ndarray (ny, nx)
    solution : `~jwst_soss_custom.tracing.TraceSolution`
        Refined traces (the positions are used, the wavelengths replaced).
    lines : tuple of ndarray
        ``(wavelength, strength)``; see `load_line_list`.
    fwhm, snr_min, max_shift
        See `measure_wavelength_shift`.
    apply_sigma : float
        The shift is applied when larger than ``apply_sigma`` times its error.

    Returns
    -------
    `~jwst_soss_custom.tracing.TraceSolution`
    """
    from .tracing import model_trace

    spectra = {}
    for order, trace in solution.orders.items():
        cols = trace.columns
        cols = cols[(cols >= 4) & (cols < deep.shape[1] - 4)]
        mx, _, mwave = model_trace(solution.pwcpos, order)
        flux = deep_spectrum(deep, trace.y, cols)
        fit = measure_wavelength_shift(flux, cols, mx, mwave, lines, fwhm, max_shift, snr_min)
        applied = fit["status"] == "measured" and abs(fit["shift"]) > apply_sigma * fit["error"]
        if applied:
            all_cols = np.arange(trace.wavelength.size)
            new = np.interp(all_cols - fit["shift"], mx, mwave, left=np.nan, right=np.nan)
            trace.wavelength = np.where(np.isfinite(trace.wavelength), new, np.nan)
        status = "applied" if applied else (
            "not significant" if fit["status"] == "measured" else "not measurable")
        trace.record["wavelength"] = {
            "shift": fit["shift"] if fit["status"] == "measured" else None,
            "error": fit["error"] if np.isfinite(fit["error"]) else None,
            "snr": fit["snr"],
            "n_lines": fit["n_lines"],
            "status": status,
        }
        log.info(
            "Order %d wavelengths: %s (shift %+.3f +- %.3f px, line S/N %.1f, %d lines)",
            order, status, fit["shift"], fit["error"], fit["snr"], fit["n_lines"],
        )
        spectra[order] = (flux, trace.wavelength[cols], cols)
    if 1 in spectra and 2 in spectra:
        (f1, w1, _), (f2, w2, c2) = spectra[1], spectra[2]
        cross = compare_orders(f1, w1, f2, w2, c2, max_shift, snr_min)
        solution.record["order2_vs_order1"] = {
            "shift": cross["shift"],
            "error": cross["error"] if np.isfinite(cross["error"]) else None,
            "snr": cross["snr"],
            "range_um": cross["range"], "status": cross["status"],
        }
        log.info(
            "Order 2 vs order 1 over %.2f-%.2f um: shift %+.3f +- %.3f order-2 px (%s)",
            *cross["range"], cross["shift"], cross["error"], cross["status"],
        )
    return solution
