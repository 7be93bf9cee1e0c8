"""Spectroscopic binning of extracted spectra by detector columns (pure numpy).

A bin is a run of ``bin_width`` consecutive columns of the wavelength grid,
counted from the blue end of the selected wavelength range. Binning by
columns (not by wavelength) keeps every column in exactly one bin, so flux is
conserved: the bins' sum equals the sum of the columns used.
"""

from dataclasses import dataclass

import numpy as np

__all__ = ["ColumnBins", "LAST_BIN_CHOICES", "column_edges", "make_column_bins", "bin_columns"]

#: What `make_column_bins` does with the columns left over when the number of
#: columns in range is not a multiple of the bin width.
LAST_BIN_CHOICES = ("keep", "merge", "drop")


@dataclass(frozen=True)
class ColumnBins:
    """Definition of the spectroscopic bins of one order.

    Attributes
    ----------
    columns : ndarray of int, shape (nused,)
        Detector columns used, sorted by increasing wavelength; bin ``k``
        holds ``columns[starts[k]:starts[k] + npix[k]]``.
    starts : ndarray of int, shape (nbins,)
        Offset of each bin's first column in ``columns``.
    npix : ndarray of int, shape (nbins,)
        Number of columns in each bin.
    wave_low, wave_high, wave_center : ndarray of float, shape (nbins,)
        Wavelength edges of each bin (outer pixel edges of its bluest and
        reddest columns) and their mid-point, in the grid's unit.
    """

    columns: np.ndarray
    starts: np.ndarray
    npix: np.ndarray
    wave_low: np.ndarray
    wave_high: np.ndarray
    wave_center: np.ndarray

    @property
    def nbins(self):
        """Number of bins."""
        return self.starts.size


def column_edges(wavelength):
    """Lower and upper wavelength edge of every column of a 1-D grid.

    A column's edges lie half-way to its neighbours' centres; the first and
    last finite columns get the same half-width as their only neighbour.

    Parameters
    ----------
    wavelength : ndarray, shape (ncols,)
        Wavelength of each column's centre; NaN where the order has none.

    Returns
    -------
    low, high : ndarray, shape (ncols,)
        Edges per column (``low <= high``); NaN where ``wavelength`` is NaN.

    Raises
    ------
    ValueError
        If the finite wavelengths are not strictly monotonic in column,
        which would make "adjacent columns" meaningless.
    """
    wavelength = np.asarray(wavelength, dtype=np.float64)
    low = np.full(wavelength.shape, np.nan)
    high = np.full(wavelength.shape, np.nan)
    idx = np.flatnonzero(np.isfinite(wavelength))
    if idx.size == 0:
        return low, high
    wave = wavelength[idx]
    step = np.diff(wave)
    if step.size and not (np.all(step > 0) or np.all(step < 0)):
        raise ValueError(
            "The wavelength grid is not strictly monotonic in column, so columns cannot "
            "be binned by adjacency; check the WAVELENGTH column of the x1dints product."
        )
    if wave.size == 1:
        return _put(low, idx, wave), _put(high, idx, wave)
    mid = 0.5 * (wave[1:] + wave[:-1])
    bounds = np.concatenate(([2 * wave[0] - mid[0]], mid, [2 * wave[-1] - mid[-1]]))
    low[idx] = np.minimum(bounds[:-1], bounds[1:])
    high[idx] = np.maximum(bounds[:-1], bounds[1:])
    return low, high


def _put(out, idx, values):
    out[idx] = values
    return out


def make_column_bins(wavelength, wave_range, bin_width, last_bin="keep"):
    """Group the columns within a wavelength range into bins of ``bin_width``.

    Parameters
    ----------
    wavelength : ndarray, shape (ncols,)
        Wavelength grid of the order (NaN where undefined).
    wave_range : (float, float)
        Inclusive ``[min, max]`` wavelength of the columns used, as in the
        white light.
    bin_width : int
        Number of columns per bin.
    last_bin : {"keep", "merge", "drop"}
        When the number of columns in range is not a multiple of
        ``bin_width``, the leftover columns (at the red end) form a narrower
        bin (``keep``), join the last full bin (``merge``), or are not used
        (``drop``).

    Returns
    -------
    `ColumnBins`

    Raises
    ------
    ValueError
        For a bad ``bin_width``/``last_bin``, or when no column lies within
        ``wave_range``.
    """
    if int(bin_width) != bin_width or bin_width < 1:
        raise ValueError(f"bin_width must be a positive integer, got {bin_width!r}.")
    if last_bin not in LAST_BIN_CHOICES:
        raise ValueError(f"last_bin must be one of {LAST_BIN_CHOICES}, got {last_bin!r}.")
    bin_width = int(bin_width)
    wavelength = np.asarray(wavelength, dtype=np.float64)
    lo, hi = wave_range
    inside = np.flatnonzero((wavelength >= lo) & (wavelength <= hi))
    if inside.size == 0:
        finite = wavelength[np.isfinite(wavelength)]
        covered = (
            f"{finite.min():.4g}-{finite.max():.4g}" if finite.size else "no finite wavelength"
        )
        raise ValueError(
            f"No column has a wavelength within [{lo}, {hi}] (the grid covers {covered}); "
            "widen the wavelength range of this order or leave the order out."
        )
    columns = inside[np.argsort(wavelength[inside], kind="stable")]
    nfull, rest = divmod(columns.size, bin_width)
    starts = np.arange(0, columns.size, bin_width)
    if rest and nfull and last_bin == "merge":
        starts = starts[:-1]
    elif rest and last_bin == "drop":
        if nfull == 0:
            raise ValueError(
                f"bin_width={bin_width} is larger than the {columns.size} columns in "
                f"[{lo}, {hi}] and last_bin='drop' leaves no bin; use a smaller bin_width "
                "or last_bin='keep'."
            )
        starts = starts[:-1]
        columns = columns[: nfull * bin_width]
    npix = np.diff(np.append(starts, columns.size))

    low, high = column_edges(wavelength)
    wave_low = np.minimum.reduceat(low[columns], starts)
    wave_high = np.maximum.reduceat(high[columns], starts)
    return ColumnBins(
        columns=columns,
        starts=starts,
        npix=npix,
        wave_low=wave_low,
        wave_high=wave_high,
        wave_center=0.5 * (wave_low + wave_high),
    )


def bin_columns(flux, flux_error, bins):
    """Sum flux over each bin's columns; add errors in quadrature.

    NaN-safe like `numpy.nansum`: non-finite fluxes are left out of the sums
    (and so are their errors); a non-finite error of a finite flux is left
    out of the variance. A bin with no finite flux in an integration gets
    NaN flux and error (``nvalid == 0``).

    Parameters
    ----------
    flux, flux_error : ndarray, shape (nints, ncols)
        Extracted flux and 1-sigma error per column.
    bins : `ColumnBins`
        Bins from `make_column_bins`.

    Returns
    -------
    flux_sum, error_sum : ndarray of float64, shape (nints, nbins)
        Binned flux and its 1-sigma error.
    nvalid : ndarray of int32, shape (nints, nbins)
        Number of columns with finite flux summed into each bin.
    """
    flux = np.asarray(flux)[:, bins.columns]
    error = np.asarray(flux_error)[:, bins.columns]
    good = np.isfinite(flux)
    values = np.where(good, flux, 0.0).astype(np.float64, copy=False)
    variance = np.square(error, dtype=np.float64)
    variance = np.where(good & np.isfinite(variance), variance, 0.0)
    flux_sum = np.add.reduceat(values, bins.starts, axis=1)
    error_sum = np.sqrt(np.add.reduceat(variance, bins.starts, axis=1))
    nvalid = np.add.reduceat(good.astype(np.int32), bins.starts, axis=1)
    empty = nvalid == 0
    flux_sum[empty] = np.nan
    error_sum[empty] = np.nan
    return flux_sum, error_sum, nvalid
