"""Diagnostic figures (PNG), headless.

Figures are built with `matplotlib.figure.Figure` directly, not pyplot, so
they need no display, hold no global state between steps, and are freed
when they go out of scope. Each topic has its own module (cleaning,
tracing, light curves); they share `new_figure` and `save_figure`.
"""

import logging
from pathlib import Path

from matplotlib.figure import Figure

from jwst_soss_custom._base.atomic import atomic_path

__all__ = ["new_figure", "save_figure"]

log = logging.getLogger(__name__)


def new_figure(nrows=1, ncols=1, width=8.0, height=4.5, **kwargs):
    """A figure and its axes, without pyplot.

    Parameters
    ----------
    nrows, ncols : int
        Grid of axes.
    width, height : float
        Size in inches.
    **kwargs
        Passed to `Figure.subplots` (e.g. ``sharex=True``).

    Returns
    -------
    fig : `~matplotlib.figure.Figure`
    axes : Axes or ndarray of Axes
    """
    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(nrows, ncols, **kwargs)
    return fig, axes


def save_figure(fig, path, dpi=120):
    """Write a figure as PNG and log where.

    Parameters
    ----------
    fig : `~matplotlib.figure.Figure`
    path : str or Path
        Output file; its folder is created if needed.
    dpi : int

    Returns
    -------
    Path
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as temporary:
        fig.savefig(temporary, dpi=dpi, format=path.suffix.lstrip(".") or None)
    log.info("Saved diagnostic plot %s", path)
    return path
