"""Spectroscopic binning of extracted spectra by detector columns (pure numpy).

A bin is a run of adjacent whole columns of the wavelength grid, chosen in
one of three ways: ``bin_width`` columns at a time from the blue end of the
selected range (`make_column_bins`), or the columns whose centre falls within
wavelength edges (`make_wavelength_bins`), which come from a resolving power
(`resolution_edges`) or from the user. Whole columns are never split, so
every column used is in exactly one bin and flux is conserved: the bins'
sum equals the sum of the columns used.
"""

from dataclasses import dataclass

import numpy as np

__all__ = [
    "BIN_MODES",
    "Binning",
    "ColumnBins",
    "LAST_BIN_CHOICES",
    "bin_columns",
    "column_edges",
    "make_column_bins",
    "make_wavelength_bins",
    "resolution_edges",
]

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
    return _bins(wavelength, columns, starts)


def _bins(wavelength, columns, starts):
    """`ColumnBins` of sorted ``columns`` cut at ``starts``, with their pixel edges."""
    low, high = column_edges(wavelength)
    wave_low = np.minimum.reduceat(low[columns], starts)
    wave_high = np.maximum.reduceat(high[columns], starts)
    return ColumnBins(
        columns=columns,
        starts=starts,
        npix=np.diff(np.append(starts, columns.size)),
        wave_low=wave_low,
        wave_high=wave_high,
        wave_center=0.5 * (wave_low + wave_high),
    )


def resolution_edges(wave_range, resolution):
    """Contiguous bin edges of constant resolving power over a range.

    Each bin has centre / width = ``resolution``: consecutive edges grow by
    the factor (2R + 1) / (2R - 1). The last bin ends at the first edge at or
    beyond the range's maximum.

    Parameters
    ----------
    wave_range : (float, float)
        ``[min, max]`` wavelength.
    resolution : float
        Resolving power R = lambda / delta-lambda (> 0.5).

    Returns
    -------
    low, high : ndarray
        Edges of each bin.
    """
    lo, hi = (float(v) for v in wave_range)
    if not resolution > 0.5:
        raise ValueError(f"resolution must be above 0.5, got {resolution!r}.")
    if not 0 < lo < hi:
        raise ValueError(f"Wavelength range [{lo}, {hi}] must be positive and increasing.")
    ratio = (2.0 * resolution + 1.0) / (2.0 * resolution - 1.0)
    nbins = int(np.ceil(np.log(hi / lo) / np.log(ratio) - 1e-9))
    edges = lo * ratio ** np.arange(max(nbins, 1) + 1)
    return edges[:-1], edges[1:]


def make_wavelength_bins(wavelength, wave_range, low, high):
    """Bins of the whole columns whose centre lies within given wavelength edges.

    A column belongs to the bin with ``low <= wavelength < high`` (the last
    bin also takes a column exactly at its ``high``); only columns within
    ``wave_range`` are used. Edges that catch no column give no bin.

    Parameters
    ----------
    wavelength : ndarray, shape (ncols,)
        Wavelength grid of the order (NaN where undefined).
    wave_range : (float, float)
        Inclusive ``[min, max]`` of the columns used, as in the white light.
    low, high : array-like, shape (nedges,)
        Requested edges of each bin, increasing and not overlapping (gaps
        allowed: columns in a gap are not used).

    Returns
    -------
    `ColumnBins`
        The recorded edges are the outer pixel edges of the columns of each
        bin (the requested edges, rounded to whole columns).

    Raises
    ------
    ValueError
        For overlapping or unsorted edges, or when no column falls in any bin.
    """
    low = np.atleast_1d(np.asarray(low, dtype=np.float64))
    high = np.atleast_1d(np.asarray(high, dtype=np.float64))
    if low.shape != high.shape or low.size == 0 or not np.all(high > low):
        raise ValueError("Bin edges need one high > low per bin, e.g. columns wave_low, wave_high.")
    order = np.argsort(low)
    low, high = low[order], high[order]
    if np.any(low[1:] < high[:-1]):
        raise ValueError("Bin edges overlap; each wavelength may belong to one bin only.")
    wavelength = np.asarray(wavelength, dtype=np.float64)
    lo, hi = wave_range
    inside = np.flatnonzero((wavelength >= lo) & (wavelength <= hi))
    columns = inside[np.argsort(wavelength[inside], kind="stable")]
    wave = wavelength[columns]
    k = np.searchsorted(low, wave, side="right") - 1
    caught = (k >= 0) & ((wave < high[np.maximum(k, 0)]) | (wave == high[-1]))
    columns, k = columns[caught], k[caught]
    if columns.size == 0:
        raise ValueError(
            f"No column within [{lo}, {hi}] falls in the bin edges "
            f"({low[0]:.4g}-{high[-1]:.4g}); check the edges' unit (micron) and range."
        )
    starts = np.flatnonzero(np.diff(k, prepend=-1))
    return _bins(wavelength, columns, starts)


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


#: How the bins of an order are chosen (the ``bin_mode`` parameter).
BIN_MODES = ("pixels", "resolution", "edges")


@dataclass(frozen=True)
class Binning:
    """How to bin every order: the settings of the ``bin_*`` parameters.

    Attributes
    ----------
    mode : {"pixels", "resolution", "edges"}
        ``pixels``: runs of ``width`` columns (`make_column_bins`);
        ``resolution``: constant resolving power ``resolution``
        (`resolution_edges`); ``edges``: the user's ``edges``.
    width : int
        Columns per bin (``pixels``).
    last_bin : {"keep", "merge", "drop"}
        Leftover red columns (``pixels``).
    resolution : float
        Resolving power R (``resolution``).
    edges : dict of int to (ndarray, ndarray), or None
        Requested ``(low, high)`` edges per order (``edges``); key 0 applies
        to orders without their own.
    """

    mode: str = "pixels"
    width: int = 20
    last_bin: str = "keep"
    resolution: float = 100.0
    edges: dict = None

    def bins(self, order, wavelength, wave_range):
        """The `ColumnBins` of one order.

        Parameters
        ----------
        order : int
            Spectral order (selects the user's edges).
        wavelength : ndarray, shape (ncols,)
            The order's wavelength grid.
        wave_range : (float, float)
            The order's inclusive range of columns used.

        Returns
        -------
        `ColumnBins`
        """
        if self.mode == "pixels":
            return make_column_bins(wavelength, wave_range, self.width, self.last_bin)
        if self.mode == "resolution":
            low, high = resolution_edges(wave_range, self.resolution)
        elif self.mode == "edges":
            edges = self.edges or {}
            if order not in edges and 0 not in edges:
                raise ValueError(
                    f"The bin edges given have no bins for order {order}; add rows with "
                    f"order = {order} (or rows without an order column), or leave the order out."
                )
            low, high = edges.get(order, edges.get(0))
        else:
            raise ValueError(f"bin_mode must be one of {BIN_MODES}, got {self.mode!r}.")
        return make_wavelength_bins(wavelength, wave_range, low, high)

    def meta(self):
        """Table metadata describing the binning."""
        meta = {"bin_mode": self.mode}
        if self.mode == "pixels":
            meta.update(bin_width=int(self.width), last_bin=self.last_bin)
        elif self.mode == "resolution":
            meta["resolution"] = float(self.resolution)
        return meta
