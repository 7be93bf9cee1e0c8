"""Read the raw ramps of one exposure a range of integrations at a time.

The ``uncal`` segments of a SOSS time series hold ~9 MB per integration
(9 groups of 256 x 2048 16-bit values); the official Detector1 loads a whole
segment and its steps hold several float copies of it (~125 MB per
integration measured, 16.9 GB for a 134-integration segment). `RampSource`
checks the segments once (headers and metadata only) and then builds a
`RampModel` of any range of integrations of one segment, reading only those
integrations from disk (astropy's ``section``), so `soss_detector1` can run
the official steps on chunks sized to its memory limit.
"""

import warnings
from pathlib import Path

import numpy as np
from astropy.utils.exceptions import AstropyUserWarning
from stdatamodels.jwst import datamodels

from jwst_soss_custom._base.errors import SossInputError
from jwst_soss_custom._base.geometry import subarray_shape
from jwst_soss_custom.exposure import (
    SegmentInfo,
    check_continues,
    check_header_numbers,
    check_soss_model,
    input_items,
)
from jwst_soss_custom.metadata import has_int_times, inherit_metadata, int_start

__all__ = ["RampSource"]

#: Arrays a ramp file may carry besides SCI (a saved ``*_ramp.fits``), with their types.
_DQ_ARRAYS = {"groupdq": ("GROUPDQ", np.uint8), "pixeldq": ("PIXELDQ", np.uint32)}


class _RampFile:
    """One ramp segment on disk: its metadata now, its integrations on request."""

    def __init__(self, path):
        self.path = Path(path)
        try:
            with warnings.catch_warnings():
                # A truncated file is refused below, by name, not warned about.
                warnings.simplefilter("ignore", AstropyUserWarning)
                self._read_headers()
        except (OSError, KeyError, ValueError, IndexError) as err:
            raise SossInputError(
                f"{self.path.name}: not a readable ramp (uncal) FITS file with a SCI "
                f"extension ({err}): truncated or damaged? Re-download or re-create it."
            ) from None
        self.model.meta.filename = self.path.name

    def _read_headers(self):
        """Shape, DQ arrays present and the metadata model (no arrays) of the file."""
        from astropy.io import fits

        hdul = fits.open(self.path)
        with hdul:
            check_header_numbers(hdul[0].header, self.path.name)
            info = hdul.fileinfo(hdul.index_of("SCI"))
            if info["datLoc"] + info["datSpan"] > self.path.stat().st_size:
                raise SossInputError(
                    f"{self.path.name}: the file is truncated (its SCI data end past the "
                    "end of the file) or damaged: re-download or re-create it."
                )
            header = hdul["SCI"].header
            if header.get("NAXIS") != 4:
                raise SossInputError(
                    f"{self.path.name}: expected a 4-D ramp (nints, ngroups, 256, 2048) in "
                    f"SCI, got {header.get('NAXIS')} dimensions; give the *_uncal.fits "
                    "file (rateints go to soss_spec2)."
                )
            self.shape = tuple(header[f"NAXIS{k}"] for k in (4, 3, 2, 1))
            self.arrays = [name for name, (ext, _) in _DQ_ARRAYS.items() if ext in hdul]
            keep = [fits.PrimaryHDU(header=hdul[0].header)]
            for hdu in hdul[1:]:
                # Empty images satisfy the ASDF tree's references to them.
                keep.append(fits.ImageHDU(name=hdu.name, ver=hdu.ver)
                            if isinstance(hdu, fits.ImageHDU) else hdu.copy())
            self.model = datamodels.RampModel(fits.HDUList(keep))

    def read(self, start, stop, step=1):
        """SCI (float32) and any DQ arrays of integrations ``start:stop:step``."""
        from astropy.io import fits

        out = {}
        try:
            with fits.open(self.path) as hdul:
                # ``section`` reads only these integrations (and applies BZERO).
                out["data"] = np.asarray(hdul["SCI"].section[start:stop:step], dtype=np.float32)
                for name in self.arrays:
                    ext, dtype = _DQ_ARRAYS[name]
                    hdu = hdul[ext]
                    part = hdu.section[start:stop:step] if hdu.header["NAXIS"] == 4 else hdu.data
                    out[name] = np.asarray(part, dtype=dtype)
        except (OSError, ValueError, IndexError) as err:
            raise SossInputError(
                f"{self.path.name}: integrations {start + 1}-{stop} cannot be read ({err}); "
                "the file is truncated or damaged: re-download or re-create it."
            ) from None
        return out


class _RampInMemory:
    """A ramp segment given as a model (never modified)."""

    def __init__(self, model):
        if getattr(model, "data", None) is None or np.ndim(model.data) != 4:
            raise SossInputError(
                f"{model.meta.filename}: expected a 4-D ramp (nints, ngroups, 256, 2048), got "
                f"{type(model).__name__}; give the *_uncal.fits file."
            )
        self.source = model
        self.shape = model.data.shape
        self.arrays = [name for name in _DQ_ARRAYS if model.hasattr(name)]
        self.model = datamodels.RampModel()
        inherit_metadata(self.model, model)
        if has_int_times(model):
            self.model.int_times = model.int_times

    def read(self, start, stop, step=1):
        out = {"data": np.array(self.source.data[start:stop:step], dtype=np.float32)}
        for name in self.arrays:
            array = getattr(self.source, name)
            out[name] = np.array(array[start:stop:step] if array.ndim == 4 else array)
        return out


class RampSource:
    """The ramp segments of one exposure, readable a range of integrations at a time.

    Parameters
    ----------
    inputs : str, Path, RampModel, Level1bModel, or a sequence of them
        An uncal file, a level-2 association (``.json``) of the segments, a
        list of files, or a list of models.

    Attributes
    ----------
    segments : list of `~jwst_soss_custom.exposure.SegmentInfo`
        Each segment's metadata (a `RampModel` without arrays) and its
        integrations in the exposure, in time order.
    nints, ngroups : int
    paths : tuple of str or None
        The segment files, or None when a segment was given as a model (such
        an exposure is reduced in this process only).

    Notes
    -----
    A source of files pickles as their paths: a worker process opens the
    headers again.

    Raises
    ------
    SossInputError
        If a segment is not a SUBSTRIP256 or SUBSTRIP96 SOSS ramp, or the segments are not
        the consecutive parts of one exposure.
    """

    def __init__(self, inputs):
        items = input_items(inputs)
        parts = [
            _RampInMemory(item) if isinstance(item, datamodels.JwstDataModel) else _RampFile(item)
            for item in items
        ]
        self.paths = None if any(isinstance(p, _RampInMemory) for p in parts) else tuple(
            str(Path(item).resolve()) for item in items
        )
        parts.sort(key=lambda part: int_start(part.model))
        self.segments, self._parts, row = [], parts, 0
        for part in parts:
            check_soss_model(part.model, ndim=4)
            shape = subarray_shape(part.model.meta.subarray.name)
            if part.shape[2:] != shape:
                raise SossInputError(
                    f"{part.model.meta.filename}: frame shape {part.shape[2:]} does not match "
                    f"{part.model.meta.subarray.name} {shape}."
                )
            if self.segments:
                check_continues(self.segments[-1], part.model)
                if part.shape[1] != self._parts[0].shape[1]:
                    raise SossInputError(
                        f"Segments are not of one exposure: {part.model.meta.filename} has "
                        f"{part.shape[1]} groups, {self._parts[0].model.meta.filename} "
                        f"{self._parts[0].shape[1]}."
                    )
            self.segments.append(SegmentInfo(part.model, row, row + part.shape[0]))
            row += part.shape[0]
        self.nints = row
        self.ngroups = parts[0].shape[1]
        # The subarray's own frames (the official steps work on them).
        self.frame_shape = parts[0].shape[2:]
        self.subarray = parts[0].model.meta.subarray.name

    def __reduce__(self):
        if self.paths is None:
            raise TypeError(
                "an exposure given as models in memory cannot be sent to another process; "
                "give the segment files, or run in one process."
            )
        return RampSource, (list(self.paths),)

    def ramp(self, index, start, stop, step=1):
        """A `RampModel` of integrations ``start:stop:step`` of segment ``index``.

        It carries the segment's metadata, with the integration range and the
        ``int_times`` rows of those integrations.

        Parameters
        ----------
        index : int
            Segment, in time order.
        start, stop : int
            Integrations counted from 0 in the segment (stop exclusive).
        step : int
            Every ``step``-th integration (`sample`); 1 for a chunk.

        Returns
        -------
        RampModel
        """
        part, segment = self._parts[index], self.segments[index]
        model = datamodels.RampModel(validate_on_assignment=False,
                                     **part.read(start, stop, step))
        inherit_metadata(model, segment.model)
        numbers = int_start(segment.model) + np.arange(start, stop, step)
        model.meta.exposure.integration_start = int(numbers[0])
        model.meta.exposure.integration_end = int(numbers[-1])
        if has_int_times(segment.model):
            table = np.asarray(segment.model.int_times)
            model.int_times = table[np.isin(table["integration_number"], numbers)]
        model.meta.filename = segment.filename
        return model

    def sample(self, count):
        """Integrations spread evenly over the exposure: about ``count`` of them.

        Parameters
        ----------
        count : int

        Returns
        -------
        list of (int, int, int, int)
            ``(segment index, start, stop, step)`` for `ramp`, one per segment
            that holds any of them.
        """
        step = max(1, -(-self.nints // max(1, count)))
        out = []
        for index, segment in enumerate(self.segments):
            # Continue the exposure-wide stride across segment boundaries.
            first = (-segment.start) % step
            if first < segment.stop - segment.start:
                out.append((index, first, segment.stop - segment.start, step))
        return out
