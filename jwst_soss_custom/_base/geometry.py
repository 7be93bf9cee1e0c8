"""SOSS subarray geometry: frame shape, reference pixels, pupil-wheel range."""

import numpy as np

__all__ = [
    "NY",
    "NX",
    "SUBSTRIP256_SHAPE",
    "REF_ROWS",
    "REF_COLS",
    "SUBARRAY_ROWS",
    "PWCPOS_RANGE",
    "reference_pixels",
]

#: Rows and columns of the SUBSTRIP256 subarray (DMS orientation).
NY, NX = 256, 2048
#: Detector shape (rows, columns) of the SUBSTRIP256 subarray.
SUBSTRIP256_SHAPE = (NY, NX)
#: Reference pixels of SUBSTRIP256: the top 4 rows and 4 columns on each side.
REF_ROWS = 4
REF_COLS = 4
#: Rows of the full SOSS strip that each subarray reads (start, stop), in
#: SUBSTRIP256 row numbers: SUBSTRIP96 cuts the bottom 10 rows and everything
#: above row 105 (most of order 2 and all of order 3).
SUBARRAY_ROWS = {"SUBSTRIP256": (0, NY), "SUBSTRIP96": (10, 106)}
#: Pupil-wheel positions over which pastasoss's trace model is calibrated.
PWCPOS_RANGE = (245.656, 245.923)


def reference_pixels(shape, n_rows_top=REF_ROWS, n_cols=REF_COLS):
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
