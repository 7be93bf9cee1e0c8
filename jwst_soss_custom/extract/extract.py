"""Box extraction with fractional edge pixels (pure numpy).

The aperture of each order is a band of fixed full width centred on the
trace; pixels cut by its edges count with the fraction of their height inside
it, so the extracted flux varies smoothly with the trace position.
"""

import numpy as np

from jwst_soss_custom.dq import FLAGS, usable

__all__ = ["box_weights", "box_extract"]


def box_weights(centre, width, ny):
    """Fraction of each pixel inside a band of full width ``width`` around ``centre``.

    Parameters
    ----------
    centre : ndarray (ncols,)
        Trace centre (row, pixel centres at integers) of each extracted column.
    width : float
        Full width of the aperture in pixels.
    ny : int
        Number of detector rows.

    Returns
    -------
    ndarray (ny, ncols) of float64
        Weights between 0 and 1.
    """
    if width <= 0:
        raise ValueError(f"Box width must be positive, got {width}.")
    rows = np.arange(ny)[:, None]
    low = np.maximum(rows - 0.5, centre[None, :] - width / 2)
    high = np.minimum(rows + 0.5, centre[None, :] + width / 2)
    return np.clip(high - low, 0.0, 1.0)


def box_extract(data, err, dq, columns, weights, chunk=64):
    """Weighted column sums of a cube.

    Parameters
    ----------
    data, err : ndarray (nints, ny, nx)
    dq : ndarray of uint32 (nints, ny, nx)
    columns : ndarray of int (ncols,)
        Detector columns to extract.
    weights : ndarray (ny, ncols)
        Aperture weights of those columns (see `box_weights`).
    chunk : int
        Integrations processed at a time (bounds temporary memory).

    Returns
    -------
    flux, flux_error : ndarray (nints, ncols) of float64
        NaN where a pixel inside the aperture was unusable.
    dq_out : ndarray (nints, ncols) of uint32
        DO_NOT_USE where the flux is NaN.
    """
    rows = np.flatnonzero(weights.any(axis=1))
    band = slice(rows.min(), rows.max() + 1)
    w = weights[band]
    nints = data.shape[0]
    flux = np.empty((nints, columns.size))
    var = np.empty_like(flux)
    missing = np.zeros(flux.shape, bool)
    for start in range(0, nints, chunk):
        stop = min(start + chunk, nints)
        sci = data[start:stop, band][:, :, columns]
        sig = err[start:stop, band][:, :, columns]
        ok = usable(sci, dq[start:stop, band][:, :, columns])
        flux[start:stop] = np.einsum("iyx,yx->ix", np.where(ok, sci, 0.0), w)
        var[start:stop] = np.einsum("iyx,yx->ix", np.where(ok, sig, 0.0) ** 2, w**2)
        missing[start:stop] = np.einsum("iyx,yx->ix", ~ok, w > 0) > 0
    flux[missing] = np.nan
    var[missing] = np.nan
    dq_out = np.where(missing, np.uint32(FLAGS["DO_NOT_USE"]), np.uint32(0)).astype(np.uint32)
    return flux, np.sqrt(var), dq_out
