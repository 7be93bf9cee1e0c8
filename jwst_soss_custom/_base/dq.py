"""Data-quality conventions shared by the steps.

Bad pixels that a step replaced keep their original flags (DO_NOT_USE
included) and gain FLUX_ESTIMATED, as jwst's ``pixel_replace`` does; a pixel is
*usable* when its value is finite and it is either not DO_NOT_USE or was
estimated. Reference pixels are never science, nor pixels flagged
NON_SCIENCE: the rows of the SUBSTRIP256 frame a smaller subarray does not
read (`~jwst_soss_custom.source.ExposureSource`).
"""

import numpy as np
from stdatamodels.jwst.datamodels import dqflags

__all__ = ["FLAGS", "usable", "nonzero"]

#: The standard jwst pixel flags by name, as a plain mapping (as stcal takes them).
FLAGS = dict(dqflags.pixel)

_DO_NOT_USE = np.uint32(FLAGS["DO_NOT_USE"])
_ESTIMATED = np.uint32(FLAGS["FLUX_ESTIMATED"])
_REFERENCE = np.uint32(FLAGS["REFERENCE_PIXEL"])
_NON_SCIENCE = np.uint32(FLAGS["NON_SCIENCE"])
#: Elements per block in `usable` (a SUBSTRIP256 frame).
_BLOCK = 256 * 2048


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
    out = np.empty(np.broadcast_shapes(np.shape(data), np.shape(dq)), bool)
    if out.ndim < 3 or np.shape(data) != np.shape(dq):
        _usable(data, dq, out)
        return out
    # A cube at a time would stream every temporary through main memory;
    # frames at a time they stay in the CPU cache (~2x faster).
    step = max(1, _BLOCK // max(out[0].size, 1))
    for k in range(0, out.shape[0], step):
        _usable(data[k : k + step], dq[k : k + step], out[k : k + step])
    return out


def _usable(data, dq, out):
    # One masked copy and three comparisons: usable flag combinations are
    # none, estimated, and estimated do-not-use.
    flags = np.bitwise_and(dq, _DO_NOT_USE | _ESTIMATED | _REFERENCE | _NON_SCIENCE)
    np.equal(flags, 0, out=out)
    out |= flags == _ESTIMATED
    out |= flags == _DO_NOT_USE | _ESTIMATED
    out &= np.isfinite(data)


def nonzero(mask):
    """Indices of the True elements of a mask, as `numpy.nonzero` returns them.

    ``np.nonzero`` of a 3-D cube-sized mask walks it element by element
    (~10x slower); the flat indices of a sparse mask unravel much faster.

    Parameters
    ----------
    mask : ndarray of bool

    Returns
    -------
    tuple of ndarray of intp
    """
    return np.unravel_index(np.flatnonzero(mask), mask.shape)
