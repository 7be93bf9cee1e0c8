"""Stitch the ``x1dints`` segments of one exposure into one product.

Long exposures are split into segments (``-seg001``, ``-seg002``, ...), each
with its own ``x1dints`` file. Light curves need the whole time series, so
the per-order spectrum tables are concatenated row-wise (rows are
integrations) and ordered by ``INT_NUM``. Before that, the segments are
checked to be one consistent exposure: same orders, same number of columns,
same wavelength grid, no integration given twice. Missing integrations (a
segment left out) are allowed with a warning: the light curves simply have
a gap in time.

The functions here use stdatamodels but no stpipe, so they run anywhere.
"""

import copy
import logging

import numpy as np
from stdatamodels.jwst import datamodels

from jwst_soss_custom._base.errors import SossInputError
from jwst_soss_custom.exposure import SEGMENT_IDENTITY, meta_value

from jwst_soss_custom.metadata import has_int_times, inherit_metadata
from jwst_soss_custom.products import REGRESSORS_ATTRIBUTE

__all__ = ["copy_spec", "detach_x1dints", "integer_runs", "stitch_x1dints"]

log = logging.getLogger(__name__)

#: What identifies one exposure, as for the rateints and uncal segments,
#: and the observation keywords Stage 2 copies into x1dints besides;
#: segments must agree on each where both have it.
_EXPOSURE_KEYS = tuple(path for _, path in SEGMENT_IDENTITY) + (
    "observation.visit_group",
    "observation.sequence_id",
    "observation.activity_id",
    "exposure.type",
)


def integer_runs(values):
    """Describe sorted integers as compact runs, e.g. ``"1-3, 7"``.

    Parameters
    ----------
    values : array-like of int
        Sorted, unique integers.

    Returns
    -------
    str
    """
    values = np.asarray(values, dtype=np.int64)
    if values.size == 0:
        return "none"
    breaks = np.flatnonzero(np.diff(values) != 1)
    starts = np.concatenate(([values[0]], values[breaks + 1]))
    stops = np.concatenate((values[breaks], [values[-1]]))
    return ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in zip(starts, stops, strict=True))


def copy_spec(spec, table=None):
    """Copy one spectrum of a `TSOMultiSpecModel`, optionally with a new table.

    Parameters
    ----------
    spec : node of ``TSOMultiSpecModel.spec``
        Spectrum whose attributes (spectral_order, detector, ...) and column
        units are copied.
    table : numpy structured array or None
        Table to use instead of a copy of ``spec.spec_table``.

    Returns
    -------
    `~stdatamodels.jwst.datamodels.TSOSpecModel`
    """
    return _new_spec(*_spec_head(spec), np.array(spec.spec_table) if table is None else table)


def _spec_head(spec):
    """A spectrum's attributes but its table, and its columns' units."""
    attributes = {key: copy.deepcopy(value) for key, value in spec.instance.items()
                  if key != "spec_table"}
    units = {column.name: column.unit for column in spec.spec_table.columns}
    return attributes, units


def _new_spec(attributes, units, table):
    """A `TSOSpecModel` of these attributes and table, the columns given their units."""
    # The values come from a validated spectrum: validating each assignment
    # again only costs time (a schema walk and a copy of the table each).
    part = datamodels.TSOSpecModel(validate_on_assignment=False)
    for key, value in attributes.items():
        setattr(part, key, value)
    part.spec_table = table
    for column in part.spec_table.columns:
        if column.name in units:
            column.unit = units[column.name]
    return part


def detach_x1dints(model):
    """A copy of an x1dints in memory, its tables held once.

    A model opened from a FITS file holds each spectrum table twice: the
    file's big-endian buffer and stdatamodels' native copy (0.58 GB for a
    0.29 GB segment, measured). The copy holds the native tables, metadata,
    ``int_times`` and the package's attributes, and needs nothing of the
    file: closing it returns the rest, one segment at a time.

    Parameters
    ----------
    model : `~stdatamodels.jwst.datamodels.TSOMultiSpecModel`

    Returns
    -------
    `~stdatamodels.jwst.datamodels.TSOMultiSpecModel`
    """
    # Every value comes from a validated model: no validation on assignment.
    out = datamodels.TSOMultiSpecModel(validate_on_assignment=False)
    inherit_metadata(out, model)
    out.meta.filename = model.meta.filename
    if has_int_times(model):
        out.int_times = np.array(model.int_times)
    for spec in model.spec:
        out.spec.append(copy_spec(spec))
    return out


def stitch_x1dints(models, names=None, wave_tolerance=1e-4, consume=False):
    """Concatenate the integrations of several ``x1dints`` segments.

    Parameters
    ----------
    models : sequence of `~stdatamodels.jwst.datamodels.TSOMultiSpecModel`
        Segments of one exposure, in any order. A model may hold several
        spectra of one order (as jwst's ``calwebb_tso3`` writes them): they
        are stitched too.
    names : sequence of str or None
        Names used in messages (default: ``meta.filename``).
    wave_tolerance : float
        Largest absolute difference allowed between the wavelength grids of
        the segments (unit of the WAVELENGTH column, micron).
    consume : bool
        Empty the list ``models`` once read (a caller that owns the models
        and keeps no other reference to them): each order's input tables are
        then freed as soon as that order is stitched, so the peak is the
        inputs and one order's product rather than the inputs and the whole
        product.

    Returns
    -------
    `~stdatamodels.jwst.datamodels.TSOMultiSpecModel`
        A new model (inputs are not modified): metadata of the first segment
        in integration order, one spectrum per order with the rows of all
        segments sorted by ``INT_NUM``, the concatenated ``int_times``, and
        ``integration_start``/``integration_end`` spanning the rows. The
        ``SEGMENT`` column keeps each row's segment number. Trace
        regressors (`~jwst_soss_custom.products.REGRESSORS_ATTRIBUTE`) of
        the segments are concatenated in ``int_num`` order.

    Raises
    ------
    SossInputError
        If the segments disagree on exposure, orders, number of columns,
        columns or wavelength grid, or if an integration appears twice.
    """
    given, models = models, list(models)
    if not models:
        raise SossInputError("No x1dints segments were given to stitch.")
    if names is None:
        names = [m.meta.filename or f"input {i + 1}" for i, m in enumerate(models)]
    names = list(names)
    for model, name in zip(models, names, strict=True):
        if not isinstance(model, datamodels.TSOMultiSpecModel) or len(model.spec) == 0:
            raise SossInputError(
                f"{name}: expected an x1dints product (TSOMultiSpecModel with at least "
                f"one spectrum), got {type(model).__name__}."
            )
    _check_same_exposure(models, names)

    pieces, heads = {}, {}  # order -> list of (name, table); order -> `_spec_head`
    for model, name in zip(models, names, strict=True):
        for spec in model.spec:
            if spec.spectral_order is None:
                raise SossInputError(
                    f"{name}: a spectrum has no spectral_order; SOSS x1dints products "
                    "carry one spectrum table per order. Re-extract the segment."
                )
            order = int(spec.spectral_order)
            pieces.setdefault(order, []).append((name, np.asarray(spec.spec_table)))
            heads.setdefault(order, spec)
    _check_same_orders(models, names)

    first = int(np.argmin([_first_int(model) for model in models]))
    # Built without validating each assignment: every value comes from the
    # validated segments, and the ~130 schema walks (those of the tables
    # copying them out of their FITS_rec) cost as much as the stitching
    # itself (0.6 s for a full exposure). The product is validated when
    # saved, and the model returned validates assignments again.
    output = datamodels.TSOMultiSpecModel(validate_on_assignment=False)
    inherit_metadata(output, models[first])
    int_times = _stitch_int_times(models)
    if int_times is not None:
        output.int_times = int_times
    regressors = _stitch_regressors(models, names)
    if regressors is not None:
        setattr(output, REGRESSORS_ATTRIBUTE, regressors)
    heads = {order: _spec_head(spec) for order, spec in heads.items()}
    nints = models[0].meta.exposure.nints
    segments = sorted(
        {int(m.meta.exposure.segment_number) for m in models if m.meta.exposure.segment_number}
    )
    if consume:
        # From here the tables are held by `pieces` alone: each order's go
        # once stitched.
        given.clear()
    del models

    orders = sorted(pieces)
    stitched = {}
    for order in orders:
        stitched[order] = _stitch_order(order, pieces.pop(order), wave_tolerance)
    # A copy: a view of the column would keep the whole table alive.
    int_num = np.array(stitched[orders[0]]["INT_NUM"])
    for order in orders[1:]:
        other = stitched[order]["INT_NUM"]
        if not np.array_equal(other, int_num):
            missing = np.setxor1d(other, int_num)
            raise SossInputError(
                f"Orders {orders[0]} and {order} hold different integrations "
                f"(integrations {integer_runs(missing)} are in only one of them); every "
                "segment must have the same integrations in every order. Re-extract the "
                "segments or leave the inconsistent one out."
            )
    _warn_gaps(nints, segments, names, int_num)
    output.meta.exposure.integration_start = int(int_num[0])
    output.meta.exposure.integration_end = int(int_num[-1])
    output.meta.exposure.segment_number = None
    for order in orders:
        # Each table handed over (and let go) in turn: the spectrum model
        # makes its own FITS table of it.
        output.spec.append(_new_spec(*heads[order], stitched.pop(order)))
    log.info(
        "Stitched %d segment(s): %d integrations (%s), orders %s.",
        len(names),
        int_num.size,
        integer_runs(int_num),
        ", ".join(str(o) for o in orders),
    )
    return datamodels.TSOMultiSpecModel(output)  # same tree, default validation


def _first_int(model):
    """Smallest integration number of a model (for ordering the metadata source)."""
    return min(int(np.min(np.asarray(s.spec_table)["INT_NUM"])) for s in model.spec)


def _check_same_exposure(models, names):
    ref = models[0]
    for model, name in zip(models[1:], names[1:], strict=True):
        for path in _EXPOSURE_KEYS:
            a, b = meta_value(ref, path), meta_value(model, path)
            if a is not None and b is not None and a != b:
                raise SossInputError(
                    f"{names[0]} and {name} are not segments of one exposure: "
                    f"meta.{path} is {a!r} in one and {b!r} in the other. "
                    "Give only the segments of one exposure."
                )


def _check_same_orders(models, names):
    ref = sorted({int(s.spectral_order) for s in models[0].spec})
    for model, name in zip(models[1:], names[1:], strict=True):
        orders = sorted({int(s.spectral_order) for s in model.spec})
        if orders != ref:
            raise SossInputError(
                f"{name} has spectral orders {orders} but {names[0]} has {ref}; all "
                "segments must be extracted with the same orders. Re-extract the segments "
                "with the same soss_extract settings."
            )


def _grid(name, order, table, tolerance):
    """The wavelength grid of one piece, checked to be the same in every row."""
    wave = np.atleast_2d(table["WAVELENGTH"])
    grid = wave[0]
    nan_differs = np.isnan(wave) != np.isnan(grid)
    off = np.abs(wave - grid) > tolerance
    if np.any(nan_differs) or np.any(off):
        rows = np.flatnonzero(np.any(nan_differs | off, axis=1))
        raise SossInputError(
            f"{name}, order {order}: the wavelength grid changes between integrations "
            f"(rows {integer_runs(rows)} differ from the first); light curves need one "
            "grid per order. Re-extract with a fixed wavelength solution."
        )
    return grid


def _stitch_order(order, parts, tolerance):
    """Concatenate and sort the tables of one order, after checking them."""
    ref_name, ref_table = parts[0]
    ref_grid = _grid(ref_name, order, ref_table, tolerance)
    tables = [ref_table]
    for name, table in parts[1:]:
        if table.dtype.names != ref_table.dtype.names:
            extra = set(table.dtype.names) ^ set(ref_table.dtype.names)
            raise SossInputError(
                f"{name}, order {order}: its spectrum table columns differ from "
                f"{ref_name}'s ({sorted(extra)} in only one); stitch products of the "
                "same software version."
            )
        grid = _grid(name, order, table, tolerance)
        if grid.shape != ref_grid.shape:
            raise SossInputError(
                f"{name}, order {order}: {grid.size} columns but {ref_name} has "
                f"{ref_grid.size}; all segments must be extracted on the same columns."
            )
        nan_differs = np.isnan(grid) != np.isnan(ref_grid)
        diff = np.abs(grid - ref_grid)
        worst = np.nanmax(diff) if np.any(np.isfinite(diff)) else 0.0
        if np.any(nan_differs) or worst > tolerance:
            detail = (
                f"the columns with a wavelength differ ({np.count_nonzero(nan_differs)} columns)"
                if np.any(nan_differs)
                else f"they differ by up to {worst:.3g} (tolerance {tolerance:g})"
            )
            raise SossInputError(
                f"{name} and {ref_name}, order {order}: the wavelength grids do not match: "
                f"{detail}. Extract all segments with the same trace and wavelength "
                "solution, or raise wave_tolerance if the difference is harmless."
            )
        tables.append(table.astype(ref_table.dtype, copy=False))

    combined = np.concatenate(tables)
    int_num = combined["INT_NUM"]
    values, counts = np.unique(int_num, return_counts=True)
    if np.any(counts > 1):
        _raise_duplicates(order, parts, values[counts > 1])
    if np.all(np.diff(int_num) > 0):
        return combined  # already in order: spare a copy of the whole table
    return combined[np.argsort(int_num, kind="stable")]


def _raise_duplicates(order, parts, duplicated):
    involved = []
    sets = []
    for name, table in parts:
        ints = np.unique(table["INT_NUM"])
        if np.intersect1d(ints, duplicated).size or ints.size != table.size:
            involved.append(f"{name} (integrations {integer_runs(ints)})")
            sets.append(ints)
    same = len(sets) > 1 and all(np.array_equal(s, sets[0]) for s in sets)
    kind = "duplicated (the same segment given twice?)" if same else "overlapping"
    raise SossInputError(
        f"Order {order}: integrations {integer_runs(duplicated)} appear more than once; "
        f"the inputs are {kind}: {'; '.join(involved)}. Give each segment of the exposure "
        "exactly once."
    )


def _warn_gaps(nints, segments, names, int_num):
    """Warn about integrations (or segments) missing from the stitched series.

    ``nints`` is the exposure's NINTS (or None), ``segments`` the segment
    numbers given.
    """
    last = int(int_num[-1])
    if nints is not None and int(nints) >= last:
        expected = np.arange(1, int(nints) + 1)
    else:
        expected = np.arange(int(int_num[0]), last + 1)
    missing = np.setdiff1d(expected, int_num)
    if missing.size == 0:
        return
    hint = ""
    if segments:
        absent = sorted(set(range(1, segments[-1] + 1)) - set(segments))
        if absent:
            hint = f" Segment(s) {integer_runs(absent)} are missing."
        if int(int_num[-1]) < expected[-1]:
            hint += f" Segments after {segments[-1]} may be missing."
    log.warning(
        "Integrations %s of %d are missing from the inputs (%s).%s The stitched product "
        "keeps the %d integrations given, in order, without padding or interpolation: "
        "the light curves have no points for the missing integrations.",
        integer_runs(missing),
        expected[-1],
        ", ".join(names),
        hint,
        int_num.size,
    )


def _stitch_int_times(models):
    """Concatenate the INT_TIMES tables, one row per integration number."""
    tables = [
        np.asarray(m.int_times)
        for m in models
        if getattr(m, "int_times", None) is not None and len(m.int_times) > 0
    ]
    if not tables:
        return None
    try:
        combined = np.concatenate([t.astype(tables[0].dtype, copy=False) for t in tables])
    except (TypeError, ValueError):
        log.warning("INT_TIMES tables of the segments differ in layout; keeping the first.")
        return tables[0]
    _, first = np.unique(combined["integration_number"], return_index=True)
    return combined[first]


def _stitch_regressors(models, names):
    """Concatenate the segments' trace regressors in ``int_num`` order (None if none).

    Segments without regressors, or with other fields than the first, are
    left out with a warning: their integrations get NaN regressors in the
    light curves rather than stopping the reduction.
    """
    found = [
        (name, np.asarray(getattr(m, REGRESSORS_ATTRIBUTE)))
        for m, name in zip(models, names, strict=True)
        if getattr(m, REGRESSORS_ATTRIBUTE, None) is not None
    ]
    if not found:
        return None
    ref = found[0][1].dtype
    kept = [(n, r) for n, r in found if r.dtype.names == ref.names]
    left_out = [n for n, _ in found if n not in {k for k, _ in kept}]
    left_out += [n for m, n in zip(models, names, strict=True) if n not in {k for k, _ in found}]
    if left_out:
        log.warning(
            "Trace regressors (%s) missing or with other fields in %s; those integrations "
            "get no regressors.",
            ", ".join(ref.names or ()),
            ", ".join(left_out),
        )
    combined = np.concatenate([r.astype(ref, copy=False) for _, r in kept])
    if "int_num" not in (ref.names or ()):
        return combined
    return combined[np.argsort(combined["int_num"], kind="stable")]
