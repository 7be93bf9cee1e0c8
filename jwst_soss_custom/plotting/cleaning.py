"""Diagnostic figures of the cleaning steps: bad pixels, background, 1/f noise."""

import bottleneck as bn
import numpy as np

from . import new_figure, save_figure

__all__ = ["plot_badpix", "plot_background", "plot_oneoverf", "column_power"]


def _image(ax, image, title, percentiles=(2, 98)):
    lo, hi = np.nanpercentile(image, percentiles)
    im = ax.imshow(image, origin="lower", aspect="auto", vmin=lo, vmax=hi, cmap="viridis")
    ax.set_title(title)
    return im


def plot_badpix(deep, spatial, dq, path):
    """Deep frame with the spatial outliers, and temporal outliers per integration.

    Parameters
    ----------
    deep : ndarray (ny, nx)
    spatial : ndarray of bool (ny, nx)
    dq : ndarray of uint32 (nints, ny, nx)
        After the step: OUTLIER marks the temporal outliers.
    path : str or Path

    Returns
    -------
    Path
    """
    from jwst_soss_custom._base.dq import FLAGS

    fig, (top, bottom) = new_figure(2, 1, height=6.5)
    _image(top, deep, f"deep frame; {int(spatial.sum())} spatial outliers (red)")
    y, x = np.nonzero(spatial)
    top.scatter(x, y, s=8, facecolors="none", edgecolors="red", linewidths=0.6)
    per_int = ((dq & np.uint32(FLAGS["OUTLIER"])) > 0).sum(axis=(1, 2))
    bottom.plot(per_int, ".-")
    bottom.set_xlabel("integration")
    bottom.set_ylabel("temporal outliers")
    return save_figure(fig, path)


def plot_background(frames, model, boxes, step, path, halo=None):
    """Data and scaled template along the columns, in each background region.

    Parameters
    ----------
    frames : ndarray (ny, nx) or (nints, ny, nx)
        What the scales were fitted on (deep frame, or every integration).
    model : ndarray (ny, nx)
        Scaled template.
    boxes : sequence of (rows, cols) slices
    step : int
    path : str or Path
    halo : ndarray (ny, nx), optional
        Fitted star halo: drawn on top of the template, as the data should
        follow their sum.

    Returns
    -------
    Path
    """
    # bottleneck: reference-pixel columns are all NaN, which it takes silently
    frame = bn.nanmedian(frames, axis=0) if np.ndim(frames) == 3 else frames
    fig, ax = new_figure()
    for rows, _ in boxes:
        label = f"rows {rows.start}-{rows.stop}"
        ax.plot(bn.nanmedian(frame[rows], axis=0), lw=0.7, label=f"data {label}")
        ax.plot(bn.nanmedian(model[rows], axis=0), lw=1.2, ls="--", label=f"model {label}")
        if halo is not None:
            total = bn.nanmedian(model[rows] + halo[rows], axis=0)
            ax.plot(total, lw=1.0, ls=":", label=f"model + star halo {label}")
    for _, cols in boxes:
        ax.axvspan(cols.start, cols.stop, color="0.9", zorder=0)
    ax.axvline(step, color="k", lw=0.6)
    finite = np.isfinite(frame[boxes[0][0]])
    hi = np.nanpercentile(frame[boxes[0][0]][finite], 99) * 1.5 if finite.any() else 1
    ax.set_ylim(0, hi)
    ax.set_xlabel("column")
    ax.set_ylabel("DN/s (row median)")
    ax.legend(fontsize=7)
    return save_figure(fig, path)


def column_power(offsets):
    """Mean power spectrum over integrations of column-offset series.

    Parameters
    ----------
    offsets : ndarray (nints, nx)

    Returns
    -------
    freq, power : ndarray
        Frequency in cycles per column and power (DN/s)^2 per unit frequency.
    """
    x = np.nan_to_num(offsets - np.nanmean(offsets, axis=1, keepdims=True))
    power = np.mean(np.abs(np.fft.rfft(x, axis=1)) ** 2, axis=0) / x.shape[1]
    return np.fft.rfftfreq(x.shape[1])[1:], power[1:]


def plot_oneoverf(before, after, offsets, path, rows=slice(200, 250)):
    """Fitted offsets, and the column-offset power spectrum before and after.

    The column offsets "before"/"after" are the medians, in a band of rows
    far from the traces, of each integration minus the deep frame.

    Parameters
    ----------
    before, after : ndarray (nints, ny, nx)
    offsets : ndarray (nints, nx)
        The subtracted offsets.
    path : str or Path
    rows : slice
        Rows used to measure the residual column offsets.

    Returns
    -------
    Path
    """
    band = np.zeros(before.shape[1:], bool)
    band[rows] = True
    return _offsets_and_power(before, after, band, offsets, "fitted 1/f offsets (DN/s)",
                              "power of column offsets", path)


def plot_group_oneoverf(before, after, offsets, keep, path):
    """Group-level 1/f: the fitted offsets, and the column power before and after.

    The column offsets "before"/"after" are the medians over the background
    pixels of each integration's charge (last group minus first) less the
    median charge over integrations.

    Parameters
    ----------
    before, after : ndarray (nints, ny, nx)
        Last minus first group, before and after the removal.
    offsets : ndarray (nints, nx)
        The offsets subtracted from the last group at the middle row (DN).
    keep : ndarray (ny, nx) of bool
        The background pixels.
    path : str or Path

    Returns
    -------
    Path
    """
    return _offsets_and_power(before, after, keep, offsets, "fitted 1/f of the last group (DN)",
                              "power of column offsets (background pixels)", path)


def _offsets_and_power(before, after, pixels, offsets, title, ylabel, path):
    """Offsets as an image (integration x column); column power before and after.

    A column's offset is the median over ``pixels`` of each integration less
    the median over integrations.
    """
    fig, (left, right) = new_figure(1, 2, width=11)
    _image(left, offsets, title)
    left.set_xlabel("column")
    left.set_ylabel("integration")
    rows = np.flatnonzero(pixels.any(axis=1))  # medians in time only where they are used
    for cube, label in ((before, "before"), (after, "after")):
        cube = cube[:, rows]
        residual = np.where(pixels[rows][None], cube - np.nanmedian(cube, axis=0), np.nan)
        freq, power = column_power(np.nanmedian(residual, axis=1))
        right.loglog(freq, power, lw=0.7, label=label)
    right.set_xlabel("frequency (cycles / column)")
    right.set_ylabel(ylabel)
    right.legend()
    return save_figure(fig, path)
