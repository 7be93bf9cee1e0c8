"""Diagnostic figure of soss_tracing: traces on the deep frame, order 0s, regressors."""

import numpy as np

from . import new_figure, save_figure

__all__ = ["plot_tracing"]


def plot_tracing(deep, solution, mask, regressors, path):
    """Deep frame with the refined traces and contaminants, and the regressors.

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
    fig, axes = new_figure(2, 1, width=10, height=7, height_ratios=(2, 1))
    finite = deep[np.isfinite(deep)]
    vmax = np.percentile(finite, 99) if finite.size else 1.0
    axes[0].imshow(deep, origin="lower", aspect="auto", cmap="gray", vmin=0, vmax=vmax)
    axes[0].contour(mask, levels=[0.5], colors="red", linewidths=0.6)
    for order, trace in solution.orders.items():
        axes[0].plot(trace.y, lw=0.7, label=f"order {order}")
    axes[0].set(xlabel="column", ylabel="row", title="deep frame, refined traces, order 0s (red)")
    axes[0].legend(loc="upper right", fontsize=8)
    if regressors is not None:
        for name in ("dx", "dy"):
            axes[1].plot(regressors["int_num"], regressors[name], lw=0.8, label=f"{name} (px)")
        axes[1].plot(regressors["int_num"], 10 * regressors["dwidth"], lw=0.8,
                     label="10 x dwidth")
        axes[1].legend(fontsize=8)
    axes[1].set(xlabel="integration", ylabel="order 1 vs deep frame")
    return save_figure(fig, path)
