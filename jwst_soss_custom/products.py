"""Build the standard ``x1dints`` product (`TSOMultiSpecModel`) from arrays.

jwst's `make_tso_specmodel` wants one `SpecModel` per integration, which for
a 537-integration exposure means building ~1000 small models. Here the same
table layout is built directly with jwst's own flat-multispec helpers (the
ones `make_tso_specmodel` uses), filled column by column with numpy.
"""

import numpy as np
from jwst.datamodels.utils import flat_multispec
from stdatamodels.jwst import datamodels

from jwst_soss_custom.metadata import (
    REGRESSORS_ATTRIBUTE,
    apply_segment_identity,
    inherit_metadata,
    plain_record,
)

__all__ = [
    "REGRESSORS_ATTRIBUTE",
    "OrderSpectra",
    "join_x1dints",
    "make_x1dints",
    "slice_x1dints",
]


_UNITS = {
    "WAVELENGTH": "um",
    "FLUX": "DN/s",
    "FLUX_ERROR": "DN/s",
    "FLUX_VAR_POISSON": "DN^2 / s^2",
    "FLUX_VAR_RNOISE": "DN^2 / s^2",
    "FLUX_VAR_FLAT": "DN^2 / s^2",
    "BACKGROUND": "DN/s",
    "BKGD_ERROR": "DN/s",
}


class OrderSpectra(dict):
    """Extracted spectra of one order, as plain arrays.

    Keys
    ----
    wavelength : ndarray (ncols,) or (nints, ncols)
        Wavelength in micron per extracted column.
    flux, flux_error : ndarray (nints, ncols)
        Extracted flux and 1-sigma error in DN/s.
    dq : ndarray (nints, ncols) of uint32
        Data-quality flags per extracted element.
    npixels : ndarray (ncols,) or (nints, ncols), optional
        Number of pixels summed per element.
    background : ndarray, optional
        Background summed in the aperture (DN/s).
    """


def make_x1dints(source, spectra, times, segment=None):
    """Build a `TSOMultiSpecModel` holding one spectrum table per order.

    Parameters
    ----------
    source : `~stdatamodels.jwst.datamodels.JwstDataModel`
        Model whose metadata (and ``int_times``) the product inherits.
    spectra : dict of int to `OrderSpectra`
        Spectra per spectral order.
    times : dict of str to ndarray
        Per-integration columns from `jwst_soss_custom.exposure.integration_times`
        (``INT_NUM``, ``MJD-AVG``, ``TDB-MID``, ...).
    segment : int or None
        Segment number written to the ``SEGMENT`` column.

    Returns
    -------
    `~stdatamodels.jwst.datamodels.TSOMultiSpecModel`
    """
    output = datamodels.TSOMultiSpecModel()
    inherit_metadata(output, source)
    if getattr(source, "int_times", None) is not None:
        output.int_times = source.int_times
    for order in sorted(spectra):
        output.spec.append(_order_table(spectra[order], order, times, segment))
    return output


def _order_table(spec, order, times, segment):
    flux = np.asarray(spec["flux"])
    nints, ncols = flux.shape
    tso = datamodels.TSOSpecModel()
    in_cols = datamodels.SpecModel().schema["properties"]["spec_table"]["datatype"]
    out_schema = tso.schema["properties"]["spec_table"]
    columns, is_vector = flat_multispec.determine_vector_and_meta_columns(
        in_cols, out_schema["datatype"]
    )
    table = flat_multispec.make_empty_recarray(
        ncols, nints, columns, is_vector, defaults=out_schema["default"]
    )
    table["WAVELENGTH"] = np.broadcast_to(spec["wavelength"], (nints, ncols))
    table["FLUX"] = flux
    table["FLUX_ERROR"] = spec["flux_error"]
    table["FLUX_VAR_POISSON"] = np.square(spec["flux_error"], dtype=np.float64)
    table["FLUX_VAR_RNOISE"] = 0.0
    table["FLUX_VAR_FLAT"] = 0.0
    table["DQ"] = spec["dq"]
    if "npixels" in spec:
        table["NPIXELS"] = np.broadcast_to(spec["npixels"], (nints, ncols))
    if "background" in spec:
        table["BACKGROUND"] = spec["background"]
    table["N_ALONGDISP"] = ncols
    table["SEGMENT"] = 1 if segment is None else segment
    for key, values in times.items():
        table[key] = values
    tso.spec_table = table
    for name, unit in _UNITS.items():
        tso.spec_table.columns[name].unit = unit
    for name in times:
        if name != "INT_NUM":
            tso.spec_table.columns[name].unit = "d"
    tso.spectral_order = int(order)
    tso.dispersion_direction = 1
    tso.detector = "NIS"
    tso.name = "SOSS"
    return tso


def slice_x1dints(x1dints, start, stop, segment=None):
    """Rows ``start:stop`` of every order of an x1dints model, as a new model.

    The metadata of the reduction (step statuses, references, background) are
    kept; with ``segment`` given, the segment's identity replaces the stacked
    exposure's: its file name, segment number, integration range and
    ``int_times`` table.

    Parameters
    ----------
    x1dints : `~stdatamodels.jwst.datamodels.TSOMultiSpecModel`
        Product of the stacked exposure.
    start, stop : int
        Row range (0-based, stop exclusive).
    segment : CubeModel or None
        The input segment these rows came from.

    Returns
    -------
    `~stdatamodels.jwst.datamodels.TSOMultiSpecModel`
    """
    return join_x1dints([(x1dints, start, stop)], segment)


def join_x1dints(parts, segment=None):
    """Concatenate row ranges of several x1dints models (chunks of one exposure).

    Per-integration records ride along: the ``soss_regressors`` rows and
    per-integration background scales are concatenated, the bad-pixel counts
    of ``soss_badpix`` that depend on the integrations are summed; every other
    record is taken from the first part (they are exposure-level results,
    the same for all chunks).

    Parameters
    ----------
    parts : list of (TSOMultiSpecModel, int, int)
        Each model with the row range (0-based, stop exclusive) to take, in
        time order.
    segment : CubeModel or None
        The input segment these rows came from (see `slice_x1dints`).

    Returns
    -------
    `~stdatamodels.jwst.datamodels.TSOMultiSpecModel`
    """
    first = parts[0][0]
    output = datamodels.TSOMultiSpecModel()
    inherit_metadata(output, first)
    if len(parts) > 1:
        _join_records(output, parts)
    regressors = [getattr(m, REGRESSORS_ATTRIBUTE, None) for m, *_ in parts]
    if regressors[0] is not None:
        rows = [np.asarray(r)[a:b] for r, (_, a, b) in zip(regressors, parts, strict=True)]
        setattr(output, REGRESSORS_ATTRIBUTE, np.concatenate(rows))
    number = None
    if segment is not None:
        number = segment.meta.exposure.segment_number
        apply_segment_identity(output, segment)
    for k, spec in enumerate(first.spec):
        part = datamodels.TSOSpecModel()
        table = np.concatenate([np.asarray(m.spec[k].spec_table)[a:b] for m, a, b in parts])
        if number is not None:
            table["SEGMENT"] = number
        part.spec_table = table
        for name in spec.spec_table.columns.names:
            part.spec_table.columns[name].unit = spec.spec_table.columns[name].unit
        for attr in ("spectral_order", "dispersion_direction", "detector", "name"):
            setattr(part, attr, getattr(spec, attr))
        output.spec.append(part)
    return output


def _join_records(output, parts):
    """Records of several chunks made into the record of their integrations."""
    badpix = [_record(m, "soss_badpix") for m, *_ in parts]
    if badpix[0] is not None:
        # Counts of the integrations each chunk owns (see soss_badpix).
        output.soss_badpix = {
            **badpix[0],
            **{key: sum(b[key] for b in badpix) for key in ("n_flagged", "n_temporal")},
        }
    background = [_record(m, "soss_background") for m, *_ in parts]
    if background[0] is not None and np.ndim(background[0]["scales"]) == 2:
        scales = [np.asarray(b["scales"])[a:b_] for b, (_, a, b_) in zip(background, parts)]
        output.soss_background = {**background[0], "scales": np.concatenate(scales)}


def _record(model, name):
    """A ``soss_*`` record of a model as a plain dict (None if absent)."""
    return plain_record(getattr(model, name, None))
