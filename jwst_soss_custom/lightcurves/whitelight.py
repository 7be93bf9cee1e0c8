"""White-light sums and normalisation (pure numpy).

The sum follows jwst's ``white_light`` exactly, so the two products agree to
the last bit: every column whose wavelength lies in the inclusive range
``[min, max]`` is summed with `numpy.nansum`, i.e. NaN fluxes count as zero
and an integration without any finite flux in range sums to 0.
"""

import numpy as np

__all__ = ["white_light_sums", "normalise"]


def white_light_sums(wavelength, flux, flux_error, wave_range):
    """Sum the flux of each integration within a wavelength range.

    Parameters
    ----------
    wavelength : ndarray, shape (ncols,) or (nints, ncols)
        Wavelength of each column (NaN where the order has none).
    flux, flux_error : ndarray, shape (nints, ncols)
        Extracted flux and its 1-sigma error.
    wave_range : (float, float)
        Inclusive ``[min, max]`` wavelength range, in the unit of
        ``wavelength``.

    Returns
    -------
    flux_sum : ndarray of float64, shape (nints,)
        ``nansum`` of the flux in range (0 when no finite flux is in range).
    error_sum : ndarray of float64, shape (nints,)
        Quadrature sum of the errors of the columns whose flux entered the
        sum; non-finite errors are left out (counted in ``nbad_error``).
    nused : ndarray of int, shape (nints,)
        Number of finite fluxes summed per integration.
    nbad_error : int
        Number of summed fluxes whose error was not finite.
    """
    lo, hi = wave_range
    flux = np.asarray(flux)
    inside = (np.asarray(wavelength) >= lo) & (np.asarray(wavelength) <= hi)
    inside = np.broadcast_to(inside, flux.shape)
    # Same construction as jwst's white_light (NaN outside the range, then
    # nansum along the spectrum) so the sums are bitwise identical.
    flux_sum = np.nansum(np.where(inside, flux, np.nan), axis=1)
    used = inside & np.isfinite(flux)
    variance = np.square(np.asarray(flux_error), dtype=np.float64)
    finite_var = np.isfinite(variance)
    error_sum = np.sqrt(np.sum(variance, axis=1, where=used & finite_var))
    return flux_sum, error_sum, used.sum(axis=1), int(np.count_nonzero(used & ~finite_var))


def normalise(flux, error, axis=0, baseline=None):
    """Divide light curves by their median over the baseline integrations.

    Parameters
    ----------
    flux, error : ndarray
        Light curves with integrations along ``axis``.
    axis : int
        Integration axis.
    baseline : ndarray of bool or None
        Integrations (along ``axis``) whose median is the reference; None
        for all of them.

    Returns
    -------
    norm_flux, norm_error : ndarray
        ``flux / median`` and ``error / median``; NaN for a light curve whose
        median is not finite or is zero.
    median : ndarray
        Median of the finite baseline values of each light curve (NaN if none).
    """
    flux = np.asarray(flux, dtype=np.float64)
    moved = np.moveaxis(flux, axis, 0)
    if baseline is not None:
        moved = moved[np.asarray(baseline, bool)]
    series = moved.reshape(moved.shape[0], -1)
    has_data = np.isfinite(series).any(axis=0)
    median = np.full(series.shape[1], np.nan)
    # nanmedian warns on all-NaN series: compute only where there is data.
    median[has_data] = np.nanmedian(series[:, has_data], axis=0)
    median = median.reshape(moved.shape[1:])
    scale = np.where(np.isfinite(median) & (median != 0), median, np.nan)
    scale = np.expand_dims(scale, axis)
    return flux / scale, np.asarray(error, dtype=np.float64) / scale, median
