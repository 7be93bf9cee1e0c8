"""Exposure-level statistics, computed once and shared by every step.

Several steps need statistics over the whole time series of each pixel: the
deep frame (median over time) for spatial outliers, the background scale, the
traces, the 1/f star model and the extraction profile; the median ERR for
weights and the deep frame's noise; a robust per-pixel noise for the temporal
outlier search. Computing them once, from the input integrations, and
passing them along costs one median over the cube instead of five, and lets
`soss_spec2` process an exposure in chunks of integrations that give the same
result as one pass: every step sees the same exposure statistics whatever
chunk it is working on.

Steps run on their own compute the statistics of their own input; inside
`soss_spec2` each step hands the next one the statistics updated for what it
did (bad pixels replaced, background subtracted) through the chunk's
`~jwst_soss_custom.chunks.ChunkContext`.
"""

import dataclasses
import functools
import logging

import bottleneck as bn
import numpy as np

from jwst_soss_custom._base.dq import usable
from jwst_soss_custom.parallel import LocalExecutor

__all__ = ["ExposureStatistics", "exposure_statistics", "cube_statistics", "time_median"]

log = logging.getLogger(__name__)
#: 1.4826 x median absolute deviation = standard deviation for Gaussian noise.
MAD_TO_SIGMA = 1.4826
#: float32 values per block in `time_median` (1 MB: fits a CPU's L2 cache).
_CACHE_VALUES = 2**18


@dataclasses.dataclass(frozen=True)
class ExposureStatistics:
    """Per-pixel statistics over every integration of an exposure.

    Attributes
    ----------
    deep : ndarray (ny, nx) of float32
        Median over time of the usable values (NaN where none is usable).
    err : ndarray (ny, nx) of float32
        Median ERR of the usable values (every 4th integration from 32 on).
    count : ndarray (ny, nx) of int32
        Number of usable values.
    sigma : ndarray (ny, nx) of float32
        Robust white-noise sigma of each pixel's time series: 1.4826 x the
        median absolute first difference / sqrt(2) (every 4th difference from
        32 integrations on); insensitive to trends (the transit) and outliers.
    nints : int
        Integrations in the exposure.
    empty : ndarray of bool (nints,)
        Integrations without a single usable science value (found before any
        work, so a pipeline can refuse the exposure before writing anything).
    """

    deep: np.ndarray
    err: np.ndarray
    count: np.ndarray
    sigma: np.ndarray
    nints: int
    empty: np.ndarray

    @property
    def noise(self):
        """1-sigma error of the deep frame: ERR x sqrt(pi / 2 / count)."""
        return self.err * np.sqrt(np.pi / 2 / np.maximum(self.count, 1))

    def replace(self, **changes):
        """A copy with some attributes replaced (e.g. a background-subtracted deep frame)."""
        return dataclasses.replace(self, **changes)


def exposure_statistics(source, rows_per_band=16, executor=None):
    """Compute `ExposureStatistics` band of detector rows by band.

    Parameters
    ----------
    source : `~jwst_soss_custom.source.ExposureSource` or alike
        Has ``nints``, ``frame_shape`` and ``read(rows=...)`` returning a
        dict with the ``data``, ``err`` and ``dq`` arrays of every
        integration for the rows ``rows`` (a slice): reads from disk, or
        views of a cube in memory (`cube_statistics`).
    rows_per_band : int
        Rows per band: bounds the memory of each process to
        ~``30 x nints x rows x nx`` bytes.
    executor : `~jwst_soss_custom.parallel.LocalExecutor` or alike
        Computes the bands (in parallel when it has workers; the source is
        then sent to them); default: in this process.

    Returns
    -------
    ExposureStatistics
    """
    ny = source.frame_shape[0]
    bands = [slice(y, min(y + rows_per_band, ny)) for y in range(0, ny, rows_per_band)]
    executor = executor or LocalExecutor()
    results = executor.map(functools.partial(band_statistics, source), bands)
    deep, err, sigma, count = (np.concatenate(arrays) for arrays in zip(*(r[:4] for r in results)))
    empty = ~np.logical_or.reduce([r[4] for r in results])
    return ExposureStatistics(deep, err, count, sigma, source.nints, empty)


def band_statistics(source, rows):
    """Deep frame, median ERR, noise sigma, usable count and finite integrations of rows.

    Parameters
    ----------
    source : `~jwst_soss_custom.source.ExposureSource` or alike
    rows : slice

    Returns
    -------
    tuple
        ``(deep, err, sigma, count, finite)``; ``finite`` (nints,) is True
        for integrations with a usable science value (finite, not
        DO_NOT_USE) in these rows.
    """
    arrays, nints = source.read(rows=rows), source.nints
    # Every 4th integration is plenty for ERR and noise statistics (>= 8
    # values from 32 integrations on) and 4x cheaper than all of them.
    sub = slice(None, None, 4) if nints >= 32 else slice(None)
    nan = np.float32(np.nan)
    ok = usable(arrays["data"], arrays["dq"])
    block = np.where(ok, arrays["data"], nan)
    deep = time_median(block)
    err = time_median(np.where(ok[sub], arrays["err"][sub], nan))
    # The differences block[k + 1] - block[k] for k in ``sub`` only.
    k = np.arange(nints - 1)[sub]
    sigma = MAD_TO_SIGMA / np.sqrt(2) * time_median(np.abs(block[k + 1] - block[k]))
    return (deep, err, sigma.astype(np.float32),
            ok.sum(axis=0, dtype=np.int32), ok.any(axis=(1, 2)))


def time_median(cube):
    """Median over axis 0 of a float32 cube, NaN values ignored (NaN where all are).

    Equal to ``bottleneck.nanmedian(cube, axis=0)`` and 2-4x faster
    on (integrations, rows, columns) cubes. A pixel's series lies a whole
    frame apart in memory, and gathering it costs more than the median
    itself; so blocks of columns small enough to stay in the CPU cache are
    copied out contiguously, transposed there, and numpy's in-place
    partition (introselect) picks the middle values. Pixels with missing
    values (flagged pixels: rare) take bottleneck's NaN-aware median.

    Parameters
    ----------
    cube : ndarray of float32 (n, ny, nx)

    Returns
    -------
    ndarray of float32 (ny, nx)
    """
    n, ny, nx = cube.shape
    out = np.empty((ny, nx), np.float32)
    missing = np.zeros((ny, nx), bool)
    kth = sorted({(n - 1) // 2, n // 2})
    width = int(np.clip(_CACHE_VALUES // (n * ny), 1, nx))
    stage = np.empty((n, ny, width), np.float32)
    lanes = np.empty((ny, width, n), np.float32)
    for x0 in range(0, nx, width):
        x1 = min(x0 + width, nx)
        block = stage[..., : x1 - x0]
        np.copyto(block, cube[:, :, x0:x1])
        series = lanes[:, : x1 - x0]
        np.copyto(series, block.transpose(1, 2, 0))
        missing[:, x0:x1] = np.isnan(series).any(axis=-1)
        series.partition(kth, axis=-1)
        out[:, x0:x1] = series[..., kth[0]]
        if len(kth) == 2:  # even n: the mean of the two middle values, as bottleneck
            out[:, x0:x1] += series[..., kth[1]]
            out[:, x0:x1] /= np.float32(2)
    if missing.any():
        with np.errstate(invalid="ignore"):
            out[missing] = bn.nanmedian(cube[:, missing], axis=0)
    return out


def cube_statistics(model):
    """`ExposureStatistics` of a cube in memory (computed in this process).

    Parameters
    ----------
    model : CubeModel

    Returns
    -------
    ExposureStatistics
    """
    return exposure_statistics(_CubeRows(model))


class _CubeRows:
    """A cube in memory, read the way `exposure_statistics` reads an exposure."""

    def __init__(self, model):
        self.model = model
        self.nints = model.data.shape[0]
        self.frame_shape = model.data.shape[1:]

    def read(self, rows):
        model = self.model
        return {"data": model.data[:, rows], "err": model.err[:, rows], "dq": model.dq[:, rows]}
