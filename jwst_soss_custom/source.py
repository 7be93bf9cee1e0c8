"""Read the integrations of one exposure in pieces, without loading it whole.

`ExposureSource` checks the segments of an exposure once (metadata only) and
then hands out any range of integrations, or any band of detector rows over
all integrations, as native float32/uint32 arrays. File segments are read with
plain positioned reads straight into the output arrays: no FITS model is
built around the arrays (building one reads and validates every extension,
VAR_* included), and nothing is memory-mapped, so a process's resident memory
is what it holds, not the page cache of files it has read.
"""

import functools
import logging
import os
from pathlib import Path

import numpy as np
from stdatamodels.jwst import datamodels

from jwst_soss_custom._base.errors import SossInputError
from jwst_soss_custom._base.dq import FLAGS
from jwst_soss_custom._base.geometry import SUBSTRIP256_SHAPE, subarray_rows, subarray_shape
from jwst_soss_custom.exposure import (
    SegmentInfo,
    check_continues,
    check_header_numbers,
    check_soss_model,
    input_items,
)
from jwst_soss_custom.metadata import (
    drop_implausible_times,
    has_int_times,
    inherit_metadata,
    int_start,
)

__all__ = ["ExposureSource", "load_exposure"]

log = logging.getLogger(__name__)

#: The arrays every step works on, with their in-memory types.
ARRAYS = {"data": ("SCI", np.float32), "err": ("ERR", np.float32), "dq": ("DQ", np.uint32)}
#: What the rows a subarray does not read hold in the SUBSTRIP256 frame.
UNREAD = {"data": np.nan, "err": np.nan, "dq": FLAGS["DO_NOT_USE"] | FLAGS["NON_SCIENCE"]}


class _FileSegment:
    """Positioned reads of the SCI, ERR and DQ cubes of one FITS segment."""

    def __init__(self, path):
        from astropy.io import fits

        self.path = Path(path)
        self.layout = {}
        try:
            with fits.open(self.path) as hdul:
                check_header_numbers(hdul[0].header, self.path.name)
                _check_complete(hdul, self.path)
                for name, (extname, _) in ARRAYS.items():
                    header = hdul[extname].header
                    if header.get("NAXIS") != 3:
                        raise SossInputError(
                            f"{self.path.name}: expected a 3-D rateints/calints cube "
                            f"(nints, 256, 2048) in {extname}, got {header.get('NAXIS')} "
                            "dimensions; give the *_rateints.fits product, not *_rate.fits."
                        )
                    bitpix = header["BITPIX"]
                    if bitpix not in (-32, 32):
                        raise SossInputError(
                            f"{self.path.name}: {extname} has BITPIX={bitpix}; expected "
                            "32-bit values as the pipeline writes them."
                        )
                    shape = (header["NAXIS3"], header["NAXIS2"], header["NAXIS1"])
                    self.layout[name] = (
                        hdul.fileinfo(hdul.index_of(extname))["datLoc"],
                        float(header.get("BZERO", 0)),
                        float(header.get("BSCALE", 1)),
                    )
                    self.shape = shape
                self.model = _metadata_model(hdul)
        except (OSError, KeyError) as err:
            raise SossInputError(
                f"{self.path.name}: not a rateints/calints FITS file with SCI, ERR and DQ "
                f"extensions ({err})."
            ) from None
        self.model.meta.filename = self.path.name

    def read(self, name, start, stop, rows, out):
        """Read ``name``, integrations ``start:stop``, rows ``rows`` into ``out``."""
        offset, bzero, bscale = self.layout[name]
        _, ny, nx = self.shape
        frame = ny * nx * 4
        band = out.shape[1] * nx * 4
        view = memoryview(out).cast("B")
        with open(self.path, "rb", buffering=0) as handle:
            if out.shape[1] == ny:  # whole frames: one contiguous read
                handle.seek(offset + start * frame)
                _read_exactly(handle, view, self.path)
            else:
                for k in range(out.shape[0]):
                    handle.seek(offset + (start + k) * frame + rows.start * nx * 4)
                    _read_exactly(handle, view[k * band : (k + 1) * band], self.path)
        out.byteswap(inplace=True)  # FITS is big-endian
        if name == "dq" and (bzero, bscale) == (2.0**31, 1.0):
            # Unsigned 32-bit as FITS stores it: int32 offset by 2**31,
            # i.e. the top bit flipped.
            out ^= np.uint32(2**31)
        elif (bzero, bscale) != (0.0, 1.0):
            out[...] = out.view(np.int32 if name == "dq" else np.float32) * bscale + bzero


def _check_complete(hdul, path):
    """Say so when the file ends inside its last extension (the extensions after it are lost)."""
    import warnings

    with warnings.catch_warnings():
        # astropy warns about a truncated file while reading its headers.
        warnings.simplefilter("ignore")
        hdul.readall()
        info = hdul.fileinfo(len(hdul) - 1)
    size = path.stat().st_size
    if info["datLoc"] + info["datSpan"] > size:
        raise SossInputError(f"{path.name}: file is truncated ({size} bytes, but extension "
                             f"{hdul[-1].name} ends at byte {info['datLoc'] + info['datSpan']}); "
                             "re-download or re-create it.")


def _read_exactly(handle, view, path):
    done = 0
    while done < len(view):
        n = handle.readinto(view[done:])
        if not n:
            raise SossInputError(f"{path.name}: file is truncated; re-download or re-create it.")
        done += n


def _metadata_model(hdul):
    """A CubeModel with the metadata and INT_TIMES of an open FITS file, no arrays."""
    from astropy.io import fits

    keep = [fits.PrimaryHDU(header=hdul[0].header)]
    for hdu in hdul[1:]:
        # Empty image extensions satisfy the ASDF tree's references to them.
        keep.append(
            fits.ImageHDU(name=hdu.name, ver=hdu.ver)
            if isinstance(hdu, fits.ImageHDU)
            else hdu.copy()
        )
    return datamodels.CubeModel(fits.HDUList(keep))


class _ModelSegment:
    """A segment already in memory (never modified)."""

    def __init__(self, model):
        if not isinstance(model, datamodels.CubeModel):
            raise SossInputError(
                f"{model.meta.filename}: expected a rateints/calints CubeModel, "
                f"got {type(model).__name__}."
            )
        check_soss_model(model, require_pwcpos=False)
        self.source = model
        self.shape = model.data.shape
        self.model = datamodels.CubeModel()
        inherit_metadata(self.model, model)
        if has_int_times(model):
            self.model.int_times = model.int_times

    def read(self, name, start, stop, rows, out):
        out[...] = getattr(self.source, name)[start:stop, rows]


class ExposureSource:
    """The segments of one exposure, readable in pieces.

    Parameters
    ----------
    inputs : str, Path, CubeModel, or sequence of them
        A rateints/calints file, a level-2 association (``.json``) of the
        segments, a list of files, or a list of models.

    Attributes
    ----------
    segments : list of `SegmentInfo`
        Each segment's metadata and its integrations in the exposure.
    nints : int
    frame_shape : tuple of int
    paths : tuple of str or None
        The segment files, or None when any segment was given as a model
        (such an exposure is read in this process only).

    Notes
    -----
    A source of files pickles as their paths: a worker process that receives
    one opens the files again (metadata only, once per process: `reopen`).

    Raises
    ------
    SossInputError
        On any input `load_exposure` refuses.
    """

    def __init__(self, inputs):
        items = input_items(inputs)
        parts = [
            _ModelSegment(item)
            if isinstance(item, datamodels.JwstDataModel)
            else _FileSegment(item)
            for item in items
        ]
        # Files can be opened again in another process; models cannot be sent.
        self.paths = None if any(isinstance(p, _ModelSegment) for p in parts) else tuple(
            str(Path(item).resolve()) for item in items
        )
        parts.sort(key=lambda part: int_start(part.model))
        shapes = {part.shape[1:] for part in parts}
        if len(shapes) > 1:
            raise SossInputError(
                f"Segments have different frame shapes {sorted(shapes)}; give segments of "
                "one exposure."
            )
        self.segments, self._parts = [], parts
        row = 0
        for part in parts:
            check_soss_model(part.model)
            shape = subarray_shape(part.model.meta.subarray.name)
            if part.shape[1:] != shape:
                raise SossInputError(
                    f"{part.model.meta.filename}: data shape {part.shape[1:]} does not match "
                    f"{part.model.meta.subarray.name} {shape}."
                )
            if self.segments:
                check_continues(self.segments[-1], part.model)
            self.segments.append(SegmentInfo(part.model, row, row + part.shape[0]))
            row += part.shape[0]
        self.nints = row
        # Every step works in the SUBSTRIP256 frame; a smaller subarray's
        # rows are placed where they lie in it (check_continues has made
        # sure every segment has the same subarray).
        self.subarray = parts[0].model.meta.subarray.name
        self.rows_read = subarray_rows(self.subarray)
        self.frame_shape = SUBSTRIP256_SHAPE
        # The exposure's INT_TIMES, when every segment has its table.
        tables = [np.asarray(s.model.int_times) for s in self.segments if has_int_times(s.model)]
        self._int_times = np.concatenate(tables) if len(tables) == len(self.segments) else None
        if self._int_times is not None:
            self._int_times, _ = drop_implausible_times(
                self._int_times,
                f"{self.segments[0].filename} (exposure of {len(self.segments)} segment(s))",
            )

    def __reduce__(self):
        if self.paths is None:
            raise TypeError(
                "an exposure given as models in memory cannot be sent to another process; "
                "give the segment files, or run in one process."
            )
        return reopen, (self.paths, tuple(_identity(path) for path in self.paths))

    def read(self, start=0, stop=None, rows=None):
        """Arrays of integrations ``start:stop`` (exposure rows), rows ``rows``.

        Parameters
        ----------
        start, stop : int
            Integrations, counted from 0 in the exposure.
        rows : slice or None
            Detector rows (default all).

        Returns
        -------
        dict of str to ndarray
            ``data``, ``err`` (float32) and ``dq`` (uint32), each
            ``(stop - start, nrows, 2048)``.
        """
        stop = self.nints if stop is None else stop
        rows = slice(0, self.frame_shape[0]) if rows is None else rows
        shape = (stop - start, rows.stop - rows.start, self.frame_shape[1])
        out = {name: np.empty(shape, dtype) for name, (_, dtype) in ARRAYS.items()}
        # The rows of the band the subarray read, in the band and in the files.
        first_row = max(rows.start, self.rows_read.start)
        last_row = max(first_row, min(rows.stop, self.rows_read.stop))
        inside = slice(first_row - rows.start, last_row - rows.start)
        partial = inside != slice(0, shape[1])
        read = out
        if partial:
            # Rows the subarray does not have: no data, never science.
            for name, array in out.items():
                array[...] = UNREAD[name]
            # Positioned reads need contiguous buffers.
            read = {name: np.empty_like(array[:, inside]) for name, array in out.items()}
        in_file = slice(first_row - self.rows_read.start, last_row - self.rows_read.start)
        for part, seg in zip(self._parts, self.segments, strict=True):
            first, last = max(start, seg.start), min(stop, seg.stop)
            if first < last and last_row > first_row:
                for name, array in read.items():
                    part.read(name, first - seg.start, last - seg.start, in_file,
                              array[first - start : last - start])
        if partial:
            for name, array in read.items():
                out[name][:, inside] = array
        return out

    def cube(self, start=0, stop=None):
        """A CubeModel of integrations ``start:stop`` with the exposure's metadata.

        The first segment's metadata, the integration range and the
        ``int_times`` rows of those integrations; ``meta.filename`` is that of
        the segment holding ``start``.

        Parameters
        ----------
        start, stop : int

        Returns
        -------
        CubeModel
        """
        stop = self.nints if stop is None else stop
        # Arrays of the right types, read here: re-validating every later
        # assignment on the chunk (each step's records) only costs time.
        cube = datamodels.CubeModel(validate_on_assignment=False, **self.read(start, stop))
        first = self.segments[0].model
        inherit_metadata(cube, first)
        begin = int_start(first) + start
        cube.meta.exposure.integration_start = begin
        cube.meta.exposure.integration_end = begin + stop - start - 1
        if self._int_times is not None:
            numbers = self._int_times["integration_number"]
            cube.int_times = self._int_times[(numbers >= begin) & (numbers < begin + stop - start)]
        holder = next(s for s in self.segments if s.start <= start < s.stop)
        cube.meta.filename = holder.filename
        return cube



@functools.lru_cache(maxsize=4)
def reopen(paths, identities):
    """The `ExposureSource` of files, opened once per process.

    Parameters
    ----------
    paths : tuple of str
    identities : tuple
        Size and modification time of each file: a file changed since
        (a long-lived worker reducing another run) is opened afresh.

    Returns
    -------
    ExposureSource
    """
    return ExposureSource(list(paths))


def _identity(path):
    status = os.stat(path)
    return status.st_size, status.st_mtime_ns


def load_exposure(inputs):
    """Open, check and stack the segments of one exposure into one cube.

    Only SCI, ERR and DQ are read, straight into the stacked arrays
    (`ExposureSource`), so the peak memory is the stacked cube whatever the
    number of segments.

    Parameters
    ----------
    inputs : str, Path, CubeModel, or sequence of them
        A rateints/calints file, a level-2 association (``.json``) of the
        segments, a list of files, or a list of models (models are not
        modified).

    Returns
    -------
    stacked : `~stdatamodels.jwst.datamodels.CubeModel`
        Every integration in time order (float32 SCI/ERR, uint32 DQ), the
        concatenated ``int_times`` table, and the metadata of the first segment
        with ``integration_start``/``integration_end`` spanning all segments.
    segments : list of `~jwst_soss_custom.exposure.SegmentInfo`
        Each segment's metadata and rows in ``stacked``, in time order.

    Raises
    ------
    SossInputError
        If a segment is not a SUBSTRIP256 SOSS time series, if the segments are
        of different exposures or shapes, or if integrations overlap or are
        missing between them.
    """
    source = ExposureSource(inputs)
    return source.cube(), source.segments
