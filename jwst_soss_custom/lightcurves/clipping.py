"""Time-domain outliers of light curves (pure numpy).

Each light curve is compared with its running median in time; points that
stand out by more than ``nsigma`` robust standard deviations of the residuals
are outliers (cosmic-ray hits the cleaning missed, a bad column in one
integration). The noise scale is the point-to-point scatter (robust, and
blind to the transit). A running median follows a transit as long as the transit lasts
more than half the window (a median filter keeps step edges), so the transit
itself is never clipped.
"""

import bottleneck as bn
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from jwst_soss_custom.lightcurves.precision import point_to_point_scatter

__all__ = ["running_median", "time_outliers"]


def running_median(flux, window, exclude_centre=False):
    """Centred running median along axis 0, NaN-aware.

    Parameters
    ----------
    flux : ndarray, shape (nints, ...)
        Series along axis 0.
    window : int
        Odd number of points (an even one is made odd by adding 1); the
        window is truncated at the ends.
    exclude_centre : bool
        Leave each point out of its own window (the median of its
        neighbours).

    Returns
    -------
    ndarray of float64, same shape
        NaN where the window holds no finite value.
    """
    half = int(window) // 2
    flux = np.asarray(flux, dtype=np.float64)
    pad = np.full((half, *flux.shape[1:]), np.nan)
    padded = np.concatenate((pad, flux, pad))
    windows = sliding_window_view(padded, 2 * half + 1, axis=0)
    if exclude_centre:
        windows = np.delete(windows, half, axis=-1)
    # bottleneck's nanmedian: no warning on all-NaN windows, and ~10x numpy's speed.
    return bn.nanmedian(windows, axis=-1)


def time_outliers(flux, nsigma=5.0, window=11, error=None):
    """Flag time-domain outliers of each light curve.

    Parameters
    ----------
    flux : ndarray, shape (nints,) or (nints, ncurves)
        Light curves, time along axis 0 (normalised or not).
    nsigma : float
        Threshold in robust standard deviations (the point-to-point scatter,
        1.4826 × MAD of first differences / √2) of the residual from the
        running median; 0 or less flags nothing.
    window : int
        Running-median window (integrations).
    error : ndarray or None
        Propagated 1-sigma errors of ``flux``. When given, their median is a
        floor of the scale: on a short series the point-to-point scatter
        itself is uncertain (±26 % for 40 points) and could come out low
        enough to clip good points.

    Returns
    -------
    ndarray of bool, same shape as ``flux``
        True for outliers; never True where ``flux`` is not finite.
    """
    flux = np.asarray(flux, dtype=np.float64)
    if nsigma <= 0 or flux.shape[0] < 3:
        return np.zeros(flux.shape, bool)
    # The point stays in its own window: a median filter then keeps step
    # edges (transit contacts) exactly; without it, the points next to a
    # contact would sit half-way to the median of their neighbours.
    residual = flux - running_median(flux, window)
    # Scale from first differences, not from the residuals: those are pulled
    # towards 0 by the point's own weight in its median (1/window of them are
    # exactly 0), so their MAD would underestimate the noise.
    scale = point_to_point_scatter(flux, axis=0)
    if error is not None:
        scale = np.fmax(scale, bn.nanmedian(np.asarray(error, dtype=np.float64), axis=0))
    with np.errstate(invalid="ignore"):
        return np.abs(residual) > nsigma * scale
