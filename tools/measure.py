"""Measurements shared by the simulator's calibration and its acceptance tests.

The same functions measure the real WASP-39 frame (to calibrate the
simulator) and the simulated deep frame (to check it), so the comparison is
like for like: whatever the method misses (halo light in the local
background, neighbouring orders in the aperture) it misses on both.
"""

import warnings

import numpy as np

from jwst_soss_custom._base.geometry import NX, NY, REF_COLS, REF_ROWS
from jwst_soss_custom.datasets.traces import trace_solution

__all__ = [
    "aperture_sums",
    "profile_fwhm",
    "background_step_column",
    "background_level",
]

#: Last science row (reference rows above it).
_SCIENCE_ROWS = NY - REF_ROWS


def _cutouts(frame, order, pwcpos, half):
    """Rows around the trace of every column: values, offsets from the centre, columns."""
    trace = trace_solution(order, pwcpos)
    cols = trace.columns[(trace.columns >= REF_COLS) & (trace.columns < NX - REF_COLS)]
    yc = np.interp(cols, trace.columns, trace.y)
    wave = np.interp(cols, trace.columns, trace.wavelength)
    offsets = np.arange(-half, half + 1)
    rows = np.round(yc).astype(int)[None, :] + offsets[:, None]
    valid = (rows >= 0) & (rows < _SCIENCE_ROWS)
    values = np.where(valid, frame[np.clip(rows, 0, NY - 1), cols[None, :]], np.nan)
    dy = rows - yc[None, :]
    # Keep other orders out of the local background.
    for other in (1, 2, 3):
        if other == order:
            continue
        other_trace = trace_solution(other, pwcpos)
        y_other = np.interp(cols, other_trace.columns, other_trace.y, left=np.nan, right=np.nan)
        near = np.abs(rows - y_other[None, :]) < 25
        dy = np.where(near & (np.abs(dy) > 22), np.nan, dy)
    return cols, wave, values.astype(float), dy


def _local_background(values, dy, inner, outer):
    """Median of each column's pixels between ``inner`` and ``outer`` rows of the centre."""
    ring = (np.abs(dy) >= inner) & (np.abs(dy) <= outer)
    below = np.where(ring & (dy < 0), values, np.nan)
    above = np.where(ring & (dy > 0), values, np.nan)
    # Columns where one side is off the detector give all-NaN slices: expected.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        b = np.nanmedian(below, axis=0)
        a = np.nanmedian(above, axis=0)
        return np.nanmean(np.vstack([a, b]), axis=0)


def aperture_sums(frame, order=1, pwcpos=245.79, half_width=20, inner=25, outer=40):
    """Background-subtracted column sums in a wide aperture around the trace.

    Parameters
    ----------
    frame : ndarray
        256 x 2048 rate frame (DN/s).
    order : int
        Spectral order (trace from pastasoss/SPECTRACE at ``pwcpos``).
    pwcpos : float
        Pupil-wheel position used to place the aperture.
    half_width : int
        Aperture half width (rows whose centre is within it of the trace).
    inner, outer : int
        Local background: median of the rows ``inner``-``outer`` from the
        centre on each side (away from other orders), averaged.

    Returns
    -------
    columns, wavelength, sums : ndarray
    """
    cols, wave, values, dy = _cutouts(frame, order, pwcpos, outer)
    background = _local_background(values, dy, inner, outer)
    in_aperture = np.abs(dy) <= half_width
    sums = np.nansum(np.where(in_aperture, values - background[None, :], 0.0), axis=0)
    return cols, wave, sums


def profile_fwhm(frame, order=1, pwcpos=245.79, inner=25, outer=40):
    """Full width at half maximum of the cross-dispersion profile, per column.

    The local background is removed as in `aperture_sums`; the edges are
    the outermost half-maximum crossings within 22 rows of the trace,
    interpolated linearly. This is the width along the column (not
    perpendicular to the trace).

    Returns
    -------
    columns, wavelength, fwhm : ndarray
        NaN where the profile could not be measured.
    """
    cols, wave, values, dy = _cutouts(frame, order, pwcpos, outer)
    background = _local_background(values, dy, inner, outer)
    prof = values - background[None, :]
    core = np.abs(dy) <= 22
    prof_core = np.where(core, prof, -np.inf)
    peak = np.max(prof_core, axis=0)
    above = prof_core > 0.5 * peak[None, :]
    n = prof.shape[0]
    first = np.argmax(above, axis=0)
    last = n - 1 - np.argmax(above[::-1], axis=0)
    idx = np.arange(prof.shape[1])
    ok = (first > 0) & (last < n - 1) & np.isfinite(peak) & (peak > 0)
    first_c = np.clip(first, 1, n - 1)
    last_c = np.clip(last, 0, n - 2)
    half = 0.5 * peak
    with np.errstate(all="ignore"):
        lo_in, lo_out = prof[first_c, idx], prof[first_c - 1, idx]
        hi_in, hi_out = prof[last_c, idx], prof[last_c + 1, idx]
        left = first_c - 1 + (half - lo_out) / (lo_in - lo_out)
        right = last_c + (hi_in - half) / (hi_in - hi_out)
    fwhm = np.where(ok, right - left, np.nan)
    return cols, wave, fwhm


def background_step_column(frame, rows=(205, 250), columns=(600, 800), smooth=3):
    """Column of the background step: the steepest rise of the row-median profile.

    Parameters
    ----------
    frame : ndarray
        256 x 2048 frame (DN/s).
    rows : tuple of int
        Trace-free rows to average (median).
    columns : tuple of int
        Column range searched.
    smooth : int
        Boxcar width (columns) applied before differencing.

    Returns
    -------
    float
        Column (0-based) of the half-way point of the steepest rise.
    """
    profile = np.median(frame[rows[0] : rows[1], columns[0] : columns[1]], axis=0)
    kernel = np.ones(smooth) / smooth
    smoothed = np.convolve(profile, kernel, mode="same")
    diff = np.diff(smoothed[smooth:-smooth])
    return float(columns[0] + smooth + np.argmax(diff) + 0.5)


def background_level(frame, rows, columns):
    """Median level (DN/s) of a trace-free box ``frame[rows, columns]``."""
    return float(np.median(frame[rows[0] : rows[1], columns[0] : columns[1]]))
