"""Data-quality conventions shared by the steps.

Bad pixels that a step replaced keep their original flags (DO_NOT_USE
included) and gain FLUX_ESTIMATED, as jwst's ``pixel_replace`` does; a pixel is
*usable* when its value is finite and it is either not DO_NOT_USE or was
estimated. Reference pixels are never science.
"""

import numpy as np
from stdatamodels.jwst.datamodels import dqflags

__all__ = ["FLAGS", "usable", "reference_pixels"]

#: The standard jwst pixel flags by name.
FLAGS = dqflags.pixel

_DO_NOT_USE = np.uint32(FLAGS["DO_NOT_USE"])
_ESTIMATED = np.uint32(FLAGS["FLUX_ESTIMATED"])
_REFERENCE = np.uint32(FLAGS["REFERENCE_PIXEL"])


def usable(data, dq):
    """Boolean mask of pixels whose values may be used.

    Parameters
    ----------
    data : ndarray
        Science values.
    dq : ndarray of uint32
        Data-quality flags, same shape as ``data`` (or broadcastable).

    Returns
    -------
    ndarray of bool
    """
    # One masked copy and three comparisons: usable flag combinations are
    # none, estimated, and estimated do-not-use (cubes are large: every
    # temporary counts).
    flags = np.bitwise_and(dq, _DO_NOT_USE | _ESTIMATED | _REFERENCE)
    ok = flags == 0
    ok |= flags == _ESTIMATED
    ok |= flags == _DO_NOT_USE | _ESTIMATED
    ok &= np.isfinite(data)
    return ok


def reference_pixels(shape, n_rows_top=4, n_cols=4):
    """Mask of SUBSTRIP256 reference pixels (top rows, columns at both edges).

    Parameters
    ----------
    shape : tuple of int
        Frame shape (ny, nx).
    n_rows_top, n_cols : int
        Width of the reference-pixel borders.

    Returns
    -------
    ndarray of bool, shape ``shape``
    """
    mask = np.zeros(shape, bool)
    mask[shape[0] - n_rows_top :, :] = True
    mask[:, :n_cols] = True
    mask[:, shape[1] - n_cols :] = True
    return mask
