"""Diagnostic figure of soss_tracing: traces, order 0s, wavelength check, regressors."""

import numpy as np

from . import new_figure, save_figure

__all__ = ["plot_tracing"]


def plot_tracing(deep, solution, mask, regressors, path):
    """Deep frame with the refined traces and contaminants, wavelength check, regressors.

    The wavelength panel shows what each stellar feature says about its
    order's shift (its own shift minus the star's Doppler shift, with its
    error; open symbols: left out), and each order's result.

    Parameters
    ----------
    deep : ndarray (ny, nx)
    solution : `~jwst_soss_custom.tracing.TraceSolution`
    mask : ndarray of bool (ny, nx)
        Order-0 contaminants.
    regressors : structured ndarray or None
        ``int_num``, ``dx``, ``dy``, ``dwidth`` per integration.
    path : str or Path

    Returns
    -------
    Path
    """
    fig, axes = new_figure(3, 1, width=10, height=10, height_ratios=(2, 1, 1))
    finite = deep[np.isfinite(deep)]
    vmax = np.percentile(finite, 99) if finite.size else 1.0
    axes[0].imshow(deep, origin="lower", aspect="auto", cmap="gray", vmin=0, vmax=vmax)
    axes[0].contour(mask, levels=[0.5], colors="red", linewidths=0.6)
    for order, trace in solution.orders.items():
        axes[0].plot(trace.y, lw=0.7, label=f"order {order}")
    _field_traces(axes[0], solution, deep.shape)
    axes[0].set(xlabel="column", ylabel="row", ylim=(-0.5, deep.shape[0] - 0.5),
                title="deep frame, refined traces, field stars' traces (dashed), order 0s (red)")
    axes[0].legend(loc="upper right", fontsize=8)
    _wavelength_panel(axes[1], solution)
    if regressors is not None:
        for name in ("dx", "dy"):
            axes[2].plot(regressors["int_num"], regressors[name], lw=0.8, label=f"{name} (px)")
        axes[2].plot(regressors["int_num"], 10 * regressors["dwidth"], lw=0.8,
                     label="10 x dwidth")
        axes[2].legend(fontsize=8)
    axes[2].set(xlabel="integration", ylabel="order 1 vs deep frame")
    return save_figure(fig, path)


def _field_traces(ax, solution, shape):
    """Centre lines of the field stars' traces soss_tracing modelled (the target's, shifted)."""
    stars = (solution.record.get("contamination") or {}).get("field_traces", [])
    columns = np.arange(shape[1])
    for star in stars:
        for trace in solution.orders.values():
            known = np.isfinite(trace.y)
            y = np.interp(columns - star["dx"], columns[known], trace.y[known],
                          left=np.nan, right=np.nan) + star["dy"]
            ax.plot(columns, y, "--", color="cyan", lw=0.6)


def _wavelength_panel(ax, solution):
    velocity = (solution.record.get("radial_velocity") or {}).get("value") or 0.0
    for order, trace in sorted(solution.orders.items()):
        check = trace.record.get("wavelength")
        if not check or not check.get("features"):
            continue
        feats = check["features"]
        wave = np.array([f["wavelength"] for f in feats])
        own = np.array([f["shift"] - f.get("velocity_px", 0.0) * velocity for f in feats])
        error = np.array([f["error"] for f in feats])
        used = np.array([f["used"] for f in feats])
        points = ax.errorbar(wave[used], own[used], error[used], fmt="o", ms=4,
                             label=f"order {order}: {check['status']}")
        ax.errorbar(wave[~used], own[~used], error[~used], fmt="o", ms=4, mfc="none",
                    color=points[0].get_color())
        if check.get("shift") is not None:
            ax.axhline(check["shift"], color=points[0].get_color(), lw=0.8)
    ax.set(xlabel="wavelength (micron)", ylabel="feature shift (px)",
           title=f"wavelength check (star's velocity {velocity:+.0f} km/s removed)")
    if ax.has_data():
        ax.legend(fontsize=8)
