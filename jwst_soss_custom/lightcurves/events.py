"""Tilt events: steps in the trace-stability regressors (pure numpy).

When a primary-mirror segment tilts during a visit, the trace's position and
width change abruptly and stay changed, and the flux through a fixed
aperture with them. Such a step is found in the per-integration regressors
(``dx``, ``dy``, ``dwidth`` of soss_tracing), where the transit does not show:
at every integration ``k`` a straight line plus a step at ``k`` is fitted to
the ``window`` integrations on each side (so slow drifts are not steps), the
step's significance ``z`` is computed per regressor from its point-to-point
noise, and the squares are summed over the regressors. The largest sum above
``threshold**2`` is an event; the search repeats away from it.
"""

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy.ndimage import median_filter

__all__ = ["find_trace_steps", "step_regressors", "TILT_PREFIX"]

#: Light-curve column prefix of the step regressors (``regressor_tilt_<n>``).
TILT_PREFIX = "tilt_"


def _step_filter(window):
    """Weights giving the step of a line + step fit to ``2 window`` points, and their norm."""
    t = np.arange(-window, window, dtype=float) + 0.5
    design = np.column_stack([np.ones_like(t), t, (t > 0).astype(float)])
    weights = np.linalg.pinv(design)[2]
    return weights, float(np.sqrt(weights @ weights))


def _cleaned(values):
    """Values with gaps interpolated and single-integration outliers replaced; and their noise."""
    values = np.asarray(values, float)
    good = np.isfinite(values)
    if good.sum() < 3:
        return None, np.nan
    filled = np.interp(np.arange(values.size), np.flatnonzero(good), values[good])
    smooth = median_filter(filled, size=5, mode="nearest")
    step = np.diff(filled)
    # Point-to-point noise: insensitive to drifts and to the steps themselves.
    sigma = 1.4826 * np.median(np.abs(step - np.median(step))) / np.sqrt(2)
    if not sigma > 0:
        return None, np.nan
    outlier = np.abs(filled - smooth) > 6 * sigma
    return np.where(outlier, smooth, filled), sigma


def find_trace_steps(int_num, regressors, window=20, threshold=8.0, max_events=3,
                     names=("dx", "dy", "dwidth")):
    """Integrations where the trace regressors step.

    Parameters
    ----------
    int_num : ndarray of int (n,)
        Integration numbers, increasing.
    regressors : dict of str to ndarray (n,)
        Per-integration regressors (``regressor_`` prefix allowed); NaN
        allowed.
    window : int
        Integrations on each side of a candidate step (events closer than
        this to the start or end of the visit, or to each other, are not
        separated).
    threshold : float
        Combined significance (sigma; ``sqrt(sum z**2)`` over the
        regressors) an event needs.
    max_events : int
    names : tuple of str
        Regressors searched (those present).

    Returns
    -------
    list of dict
        One per event, in time order: ``int_num`` (first integration after
        the step), ``significance`` and ``steps`` (the step of each
        regressor, its units).
    """
    int_num = np.asarray(int_num)
    series = {}
    for name in names:
        values = regressors.get(name, regressors.get(f"regressor_{name}"))
        if values is None:
            continue
        cleaned, sigma = _cleaned(values)
        if cleaned is not None:
            series[name] = (cleaned, sigma)
    n = int_num.size
    if not series or n < 2 * window + 1:
        return []
    weights, norm = _step_filter(window)
    # Candidate k: the step between k-1 and k, with window points each side.
    steps = {name: sliding_window_view(v, 2 * window) @ weights for name, (v, _) in series.items()}
    total = sum((steps[name] / (sigma * norm)) ** 2 for name, (_, sigma) in series.items())
    events = []
    free = np.ones(total.size, bool)
    while len(events) < max_events and (free & (total > threshold**2)).any():
        k = int(np.argmax(np.where(free, total, -np.inf)))
        events.append({
            "int_num": int(int_num[k + window]),
            "significance": float(np.sqrt(total[k])),
            "steps": {name: float(steps[name][k]) for name in series},
        })
        free[max(k - 2 * window, 0):k + 2 * window + 1] = False
    return sorted(events, key=lambda event: event["int_num"])


def step_regressors(int_num, events):
    """Step columns, 0 before each event and 1 from its first integration on.

    Parameters
    ----------
    int_num : ndarray of int
        Integration number of each row.
    events : list of dict
        `find_trace_steps` output.

    Returns
    -------
    dict of str to ndarray
        ``regressor_tilt_<n>`` (n from 1) per event.
    """
    int_num = np.asarray(int_num)
    return {f"regressor_{TILT_PREFIX}{n}": (int_num >= event["int_num"]).astype(float)
            for n, event in enumerate(events, start=1)}
