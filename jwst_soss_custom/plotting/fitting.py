"""Figures of the transit fits: white light and residuals, channel grid, transmission spectrum."""

import numpy as np

from jwst_soss_custom.plotting import new_figure, save_figure

__all__ = [
    "plot_combined",
    "plot_fits",
    "plot_published_comparison",
    "plot_transmission",
    "plot_white_light_fit",
    "plot_channel_grid",
]


def _hours(result, t0):
    return (result.time - t0) * 24.0


def plot_white_light_fit(white_fits):
    """Detrended white light with the transit model (top) and residuals (bottom), per order."""
    orders = sorted(white_fits)
    fig, axes = new_figure(2, len(orders), width=5.0 * len(orders), height=5.5, squeeze=False,
                           sharex="col")  # fmt: skip
    for col, order in enumerate(orders):
        fit = white_fits[order]
        hours = _hours(fit, fit.values["t0"])
        top, bottom = axes[0, col], axes[1, col]
        used = fit.used
        top.plot(hours[used], (fit.flux / fit.systematics)[used], ".", ms=3, color="0.4")
        top.plot(hours[~used], (fit.flux / fit.systematics)[~used], "x", color="C3",
                 label="left out")  # fmt: skip
        top.plot(hours, fit.transit, color="C0", lw=1.5, label="transit model")
        top.set_title(f"Order {order}: depth {1e6 * fit.values['rp'] ** 2:.0f} ppm")
        top.set_ylabel("detrended flux")
        top.legend(fontsize=8)
        resid = 1e6 * (fit.flux - fit.model)
        bottom.plot(hours[used], resid[used], ".", ms=3, color="0.4")
        bottom.axhline(0, color="C0")
        s = fit.stats
        bottom.set_title(
            f"rms {s['rms_ppm']:.0f} ppm (expected {s['expected_ppm']:.0f}), "
            f"beta {s['beta']:.2f}, errors x{s['error_scale']:.2f}", fontsize=9,
        )  # fmt: skip
        bottom.set_xlabel("hours from mid-transit")
        bottom.set_ylabel("residual (ppm)")
    return fig


def plot_channel_grid(channel_fits, order, ncols=6, max_channels=36):
    """Detrended light curves and models of (up to ``max_channels``) channels of one order."""
    fits = [
        (ch, r)
        for ch, r in channel_fits
        if ch["order"] == order and not isinstance(r, Exception)
    ]
    if len(fits) > max_channels:
        fits = [fits[i] for i in np.linspace(0, len(fits) - 1, max_channels).astype(int)]
    nrows = max(1, int(np.ceil(len(fits) / ncols)))
    fig, axes = new_figure(nrows, ncols, width=2.2 * ncols, height=1.8 * nrows, squeeze=False,
                           sharex=True, sharey=True)  # fmt: skip
    for ax in axes.flat[len(fits):]:
        ax.set_visible(False)
    for ax, (ch, fit) in zip(axes.flat, fits, strict=False):
        hours = _hours(fit, fit.values["t0"])
        ax.plot(hours[fit.used], (fit.flux / fit.systematics)[fit.used], ".", ms=1.5, color="0.5")
        ax.plot(hours, fit.transit, color="C0", lw=1)
        ax.set_title(f"{ch['wave_center']:.3f} µm", fontsize=8)
        ax.tick_params(labelsize=7)
    fig.suptitle(f"Order {order} channels (detrended) and fits", fontsize=10)
    return fig


def _micron(column):
    """Plain float array in micron from a Column or Quantity column."""
    return np.asarray(getattr(column, "value", column), dtype=float)


def plot_transmission(transmission, reference=None, binned=None):
    """Depth (ppm) vs wavelength per order with error bars.

    Optional: a ``(wave, depth, err[, label])`` reference drawn beneath, and
    the spectrum binned at constant resolving power (`bin_spectrum`) on top.
    """
    fig, ax = new_figure(width=8.0, height=4.0)
    for k, order in enumerate(np.unique(transmission["order"])):
        rows = transmission[transmission["order"] == order]
        wave = _micron(rows["wave_center"])
        half = 0.5 * (_micron(rows["wave_high"]) - _micron(rows["wave_low"]))
        ax.errorbar(wave, rows["depth_ppm"], yerr=rows["depth_error_ppm"], xerr=half, fmt="o",
                    ms=3, color=f"C{k}", alpha=0.45 if binned is not None else 1.0,
                    label=f"order {order}")  # fmt: skip
    if binned is not None and len(binned):
        ax.errorbar(_micron(binned["wave_center"]), binned["depth_ppm"],
                    yerr=binned["depth_error_ppm"], fmt="D", ms=3, color="k",
                    label=f"R = {binned.meta.get('resolution', 0):g}")  # fmt: skip
    if reference is not None:
        wave, depth, err = reference[:3]
        label = reference[3] if len(reference) > 3 else "reference"
        ax.errorbar(wave, depth, yerr=err, fmt="s", ms=2, color="0.3", alpha=0.35, zorder=1,
                    label=label)  # beneath this reduction
    ax.set_xlabel("wavelength (µm)")
    ax.set_ylabel("transit depth (ppm)")
    ax.legend(fontsize=8)
    return fig


def plot_combined(tables, names, spectrum, offsets):
    """Each visit's depths shifted by its offset (faint), and their combination (black).

    Parameters
    ----------
    tables : list of `~astropy.table.Table`
        The visits' transmission tables, their usable channels only
        (`~jwst_soss_custom.fitting.combine.usable_channels`).
    names : list of str
    spectrum, offsets : `~astropy.table.QTable`
        From `~jwst_soss_custom.fitting.combine.combine_visits`.
    """
    shift = {(row["visit"], int(row["order"])): float(row["offset_ppm"]) for row in offsets}
    fig, ax = new_figure(width=8.0, height=4.5)
    for k, (rows, name) in enumerate(zip(tables, names)):
        order = np.asarray(rows["order"], dtype=int)
        minus = np.array([shift.get((name, o), shift.get((name, 0), 0.0)) for o in order])
        ax.errorbar(_micron(rows["wave_center"]), np.asarray(rows["depth_ppm"]) - minus,
                    yerr=rows["depth_error_ppm"], fmt=".", ms=3, alpha=0.35, color=f"C{k}",
                    label=f"{name} ({minus[0] if minus.size else 0:+.0f} ppm)")
    ax.errorbar(_micron(spectrum["wave_center"]), spectrum["depth_ppm"],
                yerr=spectrum["depth_error_ppm"], fmt="o", ms=3, color="k", label="combined")
    ax.set_xlabel("wavelength (µm)")
    ax.set_ylabel("transit depth (ppm)")
    ax.legend(fontsize=7, ncol=2)
    return fig


def plot_published_comparison(published, transmission=None, offset_ppm=0.0, orders=(1, 2)):
    """The published WASP-39b NIRISS spectra, with ours on top when given.

    Parameters
    ----------
    published : dict of str to `~astropy.table.Table`
        From `~jwst_soss_custom.fitting.published.load_published_spectra`
        (quality-0 bins are drawn, in the paper's colour per reduction).
    transmission : `~astropy.table.Table`, optional
        Our ``<product>_transmission.ecsv`` (channels whose fit failed are left out).
    offset_ppm : float
        Added to our depths: reductions differ by a common offset (orbit,
        limb darkening, dilution), so shapes compare best once it is removed.
    orders : tuple of int
        Orders drawn.

    Returns
    -------
    `~matplotlib.figure.Figure`
        With the public spectra's attribution written above the axes.
    """
    # The credit travels with the tables (their ``attribution`` metadata).
    credits = dict.fromkeys(t.meta.get("attribution") for t in published.values())
    attribution = " ".join(c for c in credits if c)
    fig, ax = new_figure(width=9.0, height=4.5)
    for k, (name, table) in enumerate(published.items()):
        good = (table["quality"] == 0) & np.isin(table["order"], orders)
        label = f"{name} ({table.meta['pipeline']})" if table.meta.get("pipeline") else name
        ax.errorbar(_micron(table["wave"][good]), table["dppm"][good],
                    yerr=table["dppm_err"][good], fmt="o", ms=2, lw=0.6, alpha=0.55,
                    color=table.meta.get("color") or f"C{k}", label=label)  # fmt: skip
    if transmission is not None:
        ok = np.isin(transmission["order"], orders) & np.isfinite(transmission["depth_ppm"])
        rows = transmission[ok]
        shift = f" {offset_ppm:+.0f} ppm" if offset_ppm else ""
        ax.errorbar(_micron(rows["wave_center"]), rows["depth_ppm"] + offset_ppm,
                    yerr=rows["depth_error_ppm"], fmt="s", ms=3, color="k", lw=0.8,
                    label=f"this reduction{shift}")  # fmt: skip
    ax.set_xlabel("wavelength (µm)")
    ax.set_ylabel("transit depth (ppm)")
    ax.legend(fontsize=7, ncol=2)
    # As a title, so the constrained layout keeps the credit clear of the labels.
    ax.set_title(attribution, fontsize=6, color="0.3", loc="left")
    return fig


def plot_fits(products, path_for, reference=None, binned=None):
    """Write every fit figure; ``path_for(kind)`` gives each file's path.

    Kinds: ``fit_whitelight``, ``fit_channels_order<N>`` and ``transmission``
    (with ``reference`` and ``binned`` as in `plot_transmission`).
    """
    paths = [save_figure(plot_white_light_fit(products.white_fits), path_for("fit_whitelight"))]
    if products.transmission is not None:
        for order in np.unique(products.transmission["order"]):
            fig = plot_channel_grid(products.channel_fits, int(order))
            paths.append(save_figure(fig, path_for(f"fit_channels_order{int(order)}")))
        fig = plot_transmission(products.transmission, reference, binned)
        paths.append(save_figure(fig, path_for("transmission")))
    return paths
