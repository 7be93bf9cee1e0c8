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
    "non_science",
    "subarray_reference_pixels",
    "subarray_rows",
    "subarray_shape",
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


def subarray_rows(name):
    """Rows of the SUBSTRIP256 frame that subarray ``name`` reads, as a slice."""
    return slice(*SUBARRAY_ROWS[name])


def subarray_shape(name):
    """Shape (rows, columns) of subarray ``name``'s own frames."""
    start, stop = SUBARRAY_ROWS[name]
    return (stop - start, NX)


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


def non_science(subarray="SUBSTRIP256", shape=SUBSTRIP256_SHAPE):
    """Pixels of the SUBSTRIP256 frame without science data.

    The reference pixels, and the rows a smaller subarray does not read
    (SUBSTRIP96 is placed in the SUBSTRIP256 frame by
    `~jwst_soss_custom.source.ExposureSource`).

    Parameters
    ----------
    subarray : str
        The exposure's subarray (``meta.subarray.name``).
    shape : tuple of int
        Frame shape (the SUBSTRIP256 frame).

    Returns
    -------
    ndarray of bool, shape ``shape``
    """
    mask = reference_pixels(shape)
    rows = subarray_rows(subarray)
    mask[: rows.start] = True
    mask[rows.stop :] = True
    return mask


def subarray_reference_pixels(subarray):
    """Reference pixels of a subarray's own frames (SUBSTRIP96: the side columns only).

    Parameters
    ----------
    subarray : str

    Returns
    -------
    ndarray of bool, the subarray's shape
    """
    return reference_pixels(SUBSTRIP256_SHAPE)[subarray_rows(subarray)]
