"""Light-curve precision against the photon-noise expectation (pure numpy)."""

import bottleneck as bn
import numpy as np

__all__ = ["point_to_point_scatter", "precision_ratio"]

#: MAD -> standard deviation for Gaussian noise.
_MAD_TO_SIGMA = 1.4826


def point_to_point_scatter(flux, axis=-1):
    """White-noise scatter of a series from its first differences.

    1.4826 × MAD of the first differences ÷ √2: insensitive to slow trends and
    to the transit itself (only the few ingress/egress differences change, and
    the median ignores them), robust to outliers, and unbiased for white
    Gaussian noise. NaNs are ignored.

    Parameters
    ----------
    flux : ndarray
        Series along ``axis`` (e.g. normalised flux per integration).
    axis : int
        Time axis.

    Returns
    -------
    float or ndarray
        Scatter in the units of ``flux``.
    """
    diff = np.diff(np.asarray(flux, float), axis=axis)
    # bottleneck: NaN (not a warning) for a series with no finite difference.
    med = np.expand_dims(bn.nanmedian(diff, axis=axis), axis)
    mad = bn.nanmedian(np.abs(diff - med), axis=axis)
    return _MAD_TO_SIGMA * mad / np.sqrt(2.0)


def precision_ratio(flux, error, axis=-1):
    """Measured scatter, expected scatter, and their ratio.

    Parameters
    ----------
    flux, error : ndarray
        Normalised flux and its propagated 1-sigma error (same shape).
    axis : int
        Time axis.

    Returns
    -------
    measured, expected, ratio : float or ndarray
        `point_to_point_scatter` of ``flux``, the median of ``error``, and
        measured / expected (1 at the photon+read-noise limit).
    """
    measured = point_to_point_scatter(flux, axis=axis)
    expected = bn.nanmedian(np.asarray(error, float), axis=axis)
    with np.errstate(divide="ignore", invalid="ignore"):
        return measured, expected, measured / expected
