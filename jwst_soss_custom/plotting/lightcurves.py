"""Diagnostic figures of the Stage 3 light curves (PNG, headless).

Each function takes the tables `~jwst_soss_custom.lightcurves.make_light_curves`
returns (or the same tables read back with `astropy.table.Table.read`), so
the figures can be remade from the products alone.
"""

import logging
import re

import numpy as np

from jwst_soss_custom.plotting import new_figure, save_figure

__all__ = [
    "plot_light_curves",
    "plot_precision",
    "plot_regressors",
    "plot_spectroscopic",
    "plot_white_light",
]

log = logging.getLogger(__name__)


def _values(column):
    return np.asarray(getattr(column, "value", column), dtype=np.float64)


def _norm_columns(whtlt):
    """``{label: column name}`` of the normalised white light of each order."""
    found = {}
    for name in whtlt.colnames:
        match = re.fullmatch(r"whitelight_flux_norm(_order_(\d+))?", name)
        if match:
            found[f"order {match.group(2)}" if match.group(2) else "white light"] = name
    return found


def plot_white_light(whtlt, path):
    """Normalised white light of each order versus time, baseline marked.

    Parameters
    ----------
    whtlt : `~astropy.table.Table`
        A ``whtlt`` table of this package.
    path : str or Path
        Output PNG.

    Returns
    -------
    Path
    """
    columns = _norm_columns(whtlt)
    fig, axes = new_figure(
        len(columns), 1, height=2.5 * len(columns) + 1, sharex=True, squeeze=False
    )
    time = _values(whtlt["BJD_TDB"])
    baseline = np.asarray(whtlt["baseline"], bool) if "baseline" in whtlt.colnames else None
    for ax, (label, name) in zip(axes[:, 0], columns.items(), strict=True):
        flux = _values(whtlt[name])
        ax.plot(
            time,
            flux,
            ".",
            ms=3,
            color="k",
            label="not baseline (transit)" if baseline is not None else label,
        )
        if baseline is not None:
            ax.plot(time[baseline], flux[baseline], ".", ms=3, color="tab:blue", label="baseline")
        ax.set_ylabel(f"{label}\nnormalised flux")
        ax.legend(loc="lower left", fontsize="small")
    axes[-1, 0].set_xlabel("BJD_TDB - 2400000.5 (d)")
    fig.suptitle("White light")
    return save_figure(fig, path)


def plot_spectroscopic(speclc, path, order):
    """2-D light curves of one order: normalised flux, wavelength × time.

    Parameters
    ----------
    speclc : `~astropy.table.Table`
        A ``speclc`` table of this package.
    path : str or Path
        Output PNG.
    order : int
        Spectral order.

    Returns
    -------
    Path
    """
    rows = speclc[speclc["order"] == order]
    nbins = int(speclc.meta.get(f"number_of_bins_order_{order}", np.max(rows["bin"]) + 1))
    flux = _values(rows["flux_norm"]).reshape(nbins, -1)
    time = _values(rows["BJD_TDB"]).reshape(nbins, -1)[0]
    low = _values(rows["wave_low"]).reshape(nbins, -1)[:, 0]
    high = _values(rows["wave_high"]).reshape(nbins, -1)[:, 0]
    fig, ax = new_figure(height=5)
    finite = flux[np.isfinite(flux)]
    vmin, vmax = np.percentile(finite, [1, 99]) if finite.size else (0.99, 1.01)
    # One quad per bin and integration: bins may have gaps (user edges) or
    # uneven widths (resolution), which imshow would misplace.
    image = np.full((2 * nbins - 1, time.size), np.nan)
    image[::2] = flux
    wave_edges = np.empty(2 * nbins)
    wave_edges[0::2], wave_edges[1::2] = low, high
    dt = np.diff(time).mean() if time.size > 1 else 1.0
    time_edges = np.concatenate(
        ([time[0] - dt / 2], 0.5 * (time[1:] + time[:-1]), [time[-1] + dt / 2])
    )
    mesh = ax.pcolormesh(time_edges, wave_edges, image, vmin=vmin, vmax=vmax, cmap="viridis")
    fig.colorbar(mesh, ax=ax, label="normalised flux")
    ax.set_xlabel("BJD_TDB - 2400000.5 (d)")
    ax.set_ylabel("wavelength (µm)")
    ax.set_title(f"Spectroscopic light curves, order {order} ({nbins} bins)")
    return save_figure(fig, path)


def plot_precision(precision, path):
    """Measured scatter of every channel beside its photon+read-noise expectation.

    Parameters
    ----------
    precision : `~astropy.table.Table`
        A precision table of this package.
    path : str or Path
        Output PNG.

    Returns
    -------
    Path
    """
    fig, (top, bottom) = new_figure(2, 1, height=6, sharex=True)
    colours = {}
    for order in np.unique(precision["order"]):
        rows = precision[(precision["order"] == order) & (precision["bin"] >= 0)]
        wave = _values(rows["wave_center"])
        line = top.plot(wave, rows["measured_ppm"], ".", ms=4, label=f"order {order} measured")[0]
        colours[order] = line.get_color()
        top.plot(
            wave,
            rows["expected_ppm"],
            "-",
            color=colours[order],
            label=f"order {order} photon+read noise",
        )
        bottom.plot(wave, rows["ratio"], ".", ms=4, color=colours[order])
    white = precision[precision["bin"] < 0]
    text = "\n".join(
        f"order {r['order']} white light: {r['measured_ppm']:.0f} ppm, ratio {r['ratio']:.2f}"
        for r in white
    )
    bottom.annotate(text, (0.01, 0.97), xycoords="axes fraction", va="top", fontsize="small")
    top.set_yscale("log")
    top.set_ylabel("scatter per integration (ppm)")
    top.legend(fontsize="small")
    bottom.axhline(1.0, color="0.5", lw=1)
    bottom.set_ylabel("measured / expected")
    bottom.set_xlabel("wavelength (µm)")
    fig.suptitle("Precision on the baseline (point-to-point estimator)")
    return save_figure(fig, path)


def plot_regressors(table, path):
    """Trace-stability regressors (``regressor_*`` columns) versus time.

    Parameters
    ----------
    table : `~astropy.table.Table`
        A ``whtlt`` table holding ``regressor_<name>`` columns.
    path : str or Path
        Output PNG.

    Returns
    -------
    Path or None
        None (nothing written) when the table has no regressors.
    """
    names = [n for n in table.colnames if n.startswith("regressor_")]
    if not names:
        log.info("No trace regressors in the light curves: no regressor plot.")
        return None
    fig, axes = new_figure(len(names), 1, height=1.8 * len(names) + 1, sharex=True, squeeze=False)
    time = _values(table["BJD_TDB"])
    for ax, name in zip(axes[:, 0], names, strict=True):
        ax.plot(time, _values(table[name]), ".-", ms=3, lw=0.5)
        ax.set_ylabel(name.removeprefix("regressor_"))
    axes[-1, 0].set_xlabel("BJD_TDB - 2400000.5 (d)")
    fig.suptitle("Trace-stability regressors")
    return save_figure(fig, path)


def plot_light_curves(curves, path_for):
    """Every light-curve diagnostic of one exposure.

    Parameters
    ----------
    curves : `~jwst_soss_custom.lightcurves.tables.LightCurves`
        The tables.
    path_for : callable
        ``path_for(kind)`` gives the PNG path of a figure; ``kind`` is
        ``whtlt``, ``speclc_order<N>``, ``precision``, ``regressors`` or
        ``contamination``.

    Returns
    -------
    list of Path
        Files written.
    """
    written = [plot_white_light(curves.whtlt, path_for("whtlt"))]
    if curves.speclc is not None:
        for order in np.unique(curves.speclc["order"]):
            written.append(
                plot_spectroscopic(curves.speclc, path_for(f"speclc_order{order}"), order)
            )
    written.append(plot_precision(curves.precision, path_for("precision")))
    regressors = plot_regressors(curves.whtlt, path_for("regressors"))
    if regressors is not None:
        written.append(regressors)
    if curves.contamination is not None:
        written.append(plot_contamination(curves.contamination, path_for("contamination")))
    return written


def plot_contamination(table, path):
    """Dilution by field stars and the other order's share, per order against wavelength."""
    fig, axes = new_figure(2, 1, width=9, height=6, sharex=True)
    for order in np.unique(table["order"]):
        rows = table[table["order"] == order]
        wave = np.asarray(rows["wavelength"], float)
        target = np.asarray(rows["target_flux"], float)
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(target > 0, np.asarray(rows["neighbour_flux"], float) / target,
                             np.nan)
        axes[0].plot(wave, 100 * np.asarray(rows["dilution"], float), lw=0.8,
                     label=f"order {order}")
        axes[1].plot(wave, 100 * share, lw=0.8, label=f"order {order}")
    axes[0].set_ylabel("field-star dilution (%)")
    axes[1].set_ylabel("other order's share (%)")
    axes[1].set_yscale("symlog", linthresh=0.1)
    axes[1].set_xlabel("wavelength (micron)")
    for ax in axes:
        ax.legend(fontsize=8)
    axes[0].set_title("Light under the apertures that is not the order's own (subtracted)")
    return save_figure(fig, path)
