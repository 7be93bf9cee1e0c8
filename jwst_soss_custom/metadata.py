"""This package's metadata on datamodels: attribute names, copying, segment identity.

Besides the schema's metadata, the package's products carry a few documented
attributes of their own (`SOSS_ATTRIBUTES`, described in docs/products.md)
and ``meta.cal_step.soss_*`` statuses; `inherit_metadata` carries all of it
from a model to the products made from it.
"""

import logging
from pathlib import Path

import numpy as np
from asdf.tags.core import NDArrayType
from asdf.treeutil import walk_and_modify

from jwst_soss_custom._base.errors import SossInputError

log = logging.getLogger(__name__)

__all__ = [
    "TRACES_ATTRIBUTE",
    "BACKGROUND_ATTRIBUTE",
    "BADPIX_ATTRIBUTE",
    "REGRESSORS_ATTRIBUTE",
    "ORDER0_ATTRIBUTE",
    "EXTRACTION_ATTRIBUTE",
    "CONTAMINATION_ATTRIBUTE",
    "INPUT_NOTES_ATTRIBUTE",
    "SOSS_ATTRIBUTES",
    "inherit_metadata",
    "plain_record",
    "wavelength_check_meta",
    "contamination_record",
    "apply_segment_identity",
    "has_int_times",
    "int_start",
    "integration_times",
    "implausible_times",
    "drop_implausible_times",
    "MIN_USABLE_FRACTION",
    "too_few_usable",
    "number_list",
    "product_name",
]

#: Trace solution (tree of `~jwst_soss_custom.tracing.TraceSolution`), set by soss_tracing.
TRACES_ATTRIBUTE = "soss_traces"
#: What soss_background subtracted (template, scales, halo).
BACKGROUND_ATTRIBUTE = "soss_background"
#: Counts of the pixels soss_badpix replaced.
BADPIX_ATTRIBUTE = "soss_badpix"
#: Per-integration trace-stability regressors of x1dints and calints: a numpy
#: structured array with one row per integration, an ``int_num`` field and one
#: float field per regressor (``dx``, ``dy``, ``dwidth`` of order 1). Saved in
#: the ASDF extension of the FITS file; sliced per segment by
#: `~jwst_soss_custom.products.slice_x1dints`, concatenated by Stage 3 stitching.
REGRESSORS_ATTRIBUTE = "soss_regressors"
#: Order-0 contaminant mask (bool 256 x 2048, True = contaminant), set by soss_tracing.
ORDER0_ATTRIBUTE = "soss_order0_mask"
#: How each order was extracted, set by soss_extract on x1dints.
EXTRACTION_ATTRIBUTE = "soss_extraction"
#: Model of the light under each order that is not that order of the target
#: (field stars' traces, the other orders' wings; see
#: `~jwst_soss_custom.tracing.contamination.ContaminationModel.to_tree`), set by
#: soss_tracing on calints; soss_extract keeps only its per-wavelength summary.
CONTAMINATION_ATTRIBUTE = "soss_contamination"
#: What Stage 3 did to an x1dints it read (e.g. flux errors estimated
#: because the product had none): a dict of table-metadata keys to notes, set
#: by `~jwst_soss_custom.lightcurves.modes.as_x1dints` and copied into the
#: light-curve tables' metadata.
INPUT_NOTES_ATTRIBUTE = "soss_input_notes"

#: Model attributes this package adds (documented in docs/products.md).
SOSS_ATTRIBUTES = (
    TRACES_ATTRIBUTE,
    BACKGROUND_ATTRIBUTE,
    BADPIX_ATTRIBUTE,
    REGRESSORS_ATTRIBUTE,
    ORDER0_ATTRIBUTE,
    EXTRACTION_ATTRIBUTE,
    CONTAMINATION_ATTRIBUTE,
    INPUT_NOTES_ATTRIBUTE,
)


def inherit_metadata(target, source):
    """Copy metadata from ``source`` to ``target``, including this package's own.

    `DataModel.update` copies only schema-defined metadata, so the
    ``meta.cal_step.soss_*`` statuses and the `SOSS_ATTRIBUTES` would be lost
    between a cube and the products made from it. The attributes' arrays
    are read from ``source`` now: read from a file they are left unread
    until used, and the target may be saved after ``source`` is closed.

    Parameters
    ----------
    target, source : JwstDataModel
    """
    target.update(source)
    for key, value in source.meta.cal_step.instance.items():
        if key.startswith("soss_"):
            setattr(target.meta.cal_step, key, value)
    for attr in SOSS_ATTRIBUTES:
        value = getattr(source, attr, None)
        if value is not None:
            setattr(target, attr, walk_and_modify(getattr(value, "instance", value), _read))


def _read(node):
    """An ASDF array not read yet from its file, read; any other node as it is."""
    return np.asarray(node) if isinstance(node, NDArrayType) else node


def plain_record(node):
    """A ``soss_*`` attribute as plain dicts (recursively), from a dict or an ObjectNode.

    Other values (None, arrays, numbers) are returned as they are.
    """
    node = getattr(node, "instance", node)
    if isinstance(node, dict):
        return {key: plain_record(value) for key, value in node.items()}
    return node


def wavelength_check_meta(model):
    """What the wavelength check measured and applied, per order, as flat metadata.

    Read from the model's ``soss_traces`` record (see soss_tracing): for each
    order ``wavelength_shift_order_<n>`` (pixels applied to pastasoss's
    solution, 0 when kept), ``wavelength_shift_error_order_<n>`` (the
    measured shift's error, None if not measured) and
    ``wavelength_check_order_<n>`` (status). Empty if the model has no
    checked traces.

    Parameters
    ----------
    model : DataModel

    Returns
    -------
    dict
    """
    tree = plain_record(getattr(model, TRACES_ATTRIBUTE, None)) or {}
    meta = {}
    for key in sorted(tree):
        check = tree[key].get("record", {}).get("wavelength") if key.startswith("order") else None
        if not check:
            continue
        order = key[len("order"):]
        meta[f"wavelength_shift_order_{order}"] = float(check.get("applied_shift") or 0.0)
        error = check.get("error")
        meta[f"wavelength_shift_error_order_{order}"] = None if error is None else float(error)
        meta[f"wavelength_check_order_{order}"] = str(check.get("status"))
    return meta


def contamination_record(model):
    """Per order, what soss_extract subtracted under the aperture (plain arrays).

    Read from the x1dints' ``soss_extraction`` record: for each order with a
    contamination model, ``wavelength``, ``target_flux`` (the order's own
    flux in the deep frame), ``field_flux`` (field stars' light subtracted),
    ``neighbour_flux`` (the other order's wings) and ``dilution`` (field /
    target), as float64 arrays in the x1dints' column order.

    Parameters
    ----------
    model : DataModel

    Returns
    -------
    dict of int to dict of ndarray
        Empty when the x1dints carry no contamination model.
    """
    tree = plain_record(getattr(model, EXTRACTION_ATTRIBUTE, None)) or {}
    out = {}
    for key, value in tree.items():
        entry = value.get("contamination") if key.startswith("order") else None
        keys = ("wavelength", "target_flux", "field_flux", "neighbour_flux", "dilution")
        if isinstance(entry, dict) and all(k in entry for k in keys):
            out[int(key[len("order"):])] = {k: np.asarray(entry[k], float) for k in keys}
    return out


def apply_segment_identity(model, segment):
    """Give a product made from the stacked exposure the identity of one segment.

    Copies the segment's file name, segment number, integration range and
    ``int_times`` table; everything else (what the reduction recorded) stays.

    Parameters
    ----------
    model : JwstDataModel
        Product holding the segment's rows; modified in place.
    segment : CubeModel
        The input segment.
    """
    exposure = segment.meta.exposure
    model.meta.exposure.segment_number = exposure.segment_number
    model.meta.exposure.integration_start = exposure.integration_start
    model.meta.exposure.integration_end = exposure.integration_end
    model.meta.filename = segment.meta.filename
    if has_int_times(segment):
        model.int_times = segment.int_times


def has_int_times(model):
    """Whether a model carries a non-empty ``int_times`` table."""
    table = getattr(model, "int_times", None)
    return table is not None and len(table) > 0


def int_start(model):
    """First integration number of a segment or cube (1 when the header has none)."""
    start = model.meta.exposure.integration_start
    return 1 if start is None else start



#: Least share of an exposure's integrations that must stay usable (with data,
#: with a plausible time): below it there is no baseline worth fitting.
MIN_USABLE_FRACTION = 0.5


def too_few_usable(usable, total):
    """Whether ``usable`` of ``total`` integrations are too few to reduce an exposure."""
    return usable < max(2, MIN_USABLE_FRACTION * total)


def number_list(numbers, limit=10):
    """Integration numbers for a message: the first ``limit``, then `` ...``."""
    numbers = [int(n) for n in numbers]
    return ", ".join(map(str, numbers[:limit])) + (" ..." if len(numbers) > limit else "")


def implausible_times(int_num, mid):
    """Integrations whose mid time cannot be right.

    Not finite, not positive, or more than half a cadence off the exposure's
    cadence: the integrations of a time series follow one another at a fixed
    cadence, so the mid times lie on a line in the integration number
    (fitted robustly: the median cadence and offset). Too few finite times
    to fit a line: only the first two tests.

    Parameters
    ----------
    int_num : ndarray of int
    mid : ndarray of float
        Mid times (days), NaN where unknown.

    Returns
    -------
    ndarray of bool
        True where the time is implausible (NaN times included).
    """
    int_num = np.asarray(int_num, float)
    mid = np.asarray(mid, float)
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(mid) | (mid <= 0)
    good = np.flatnonzero(~bad)
    if good.size >= 3:
        order = good[np.argsort(int_num[good])]
        steps = np.diff(mid[order]) / np.diff(int_num[order])
        cadence = np.median(steps)
        if not cadence > 0:
            return np.ones(mid.shape, bool)  # times that do not advance: none usable
        offset = np.median(mid[good] - cadence * int_num[good])
        with np.errstate(invalid="ignore"):
            bad |= np.abs(mid - offset - cadence * int_num) > 0.5 * cadence
    return bad


def drop_implausible_times(table, name):
    """An ``int_times`` table with the implausible times of any row set to NaN.

    A row is implausible when its mid time in UTC or in TDB is (see
    `implausible_times`); all its times become NaN, so the light curves leave
    the integration out (it has no time to be fitted at) and say so.

    Parameters
    ----------
    table : structured ndarray
        The exposure's INT_TIMES rows.
    name : str
        File or exposure named in the messages; too few rows with a
        plausible time (`too_few_usable`) raise `SossInputError`.

    Returns
    -------
    table : structured ndarray
        A copy (the input is not modified).
    numbers : list of int
        Integration numbers whose times were dropped.
    """
    table = np.array(table, copy=True)
    numbers = np.asarray(table["integration_number"])
    bad = np.zeros(len(table), bool)
    for column in ("int_mid_MJD_UTC", "int_mid_BJD_TDB"):
        bad |= implausible_times(numbers, table[column])
    dropped = [int(n) for n in numbers[bad]]
    if not dropped:
        return table, dropped
    shown = number_list(dropped)
    if too_few_usable(len(table) - len(dropped), len(table)):
        raise SossInputError(
            f"{name}: {len(dropped)} of {len(table)} INT_TIMES rows have no plausible mid "
            f"time (not finite, not positive, or off the exposure's cadence; integration "
            f"numbers {shown}). Give the INT_TIMES table the pipeline wrote for the exposure."
        )
    for column in _TIME_COLUMNS.values():
        table[column][bad] = np.nan
    log.warning(
        "%s: %d integration(s) have implausible times in INT_TIMES (not finite, not "
        "positive, or off the exposure's cadence; integration numbers %s); their times "
        "are set to NaN and the light curves leave them out.",
        name, len(dropped), shown,
    )
    return table, dropped


def integration_times(model):
    """Mid-integration times of every row of a cube, from its ``int_times`` table.

    Parameters
    ----------
    model : CubeModel
        A (possibly stacked) rateints/calints model.

    Returns
    -------
    dict of str to ndarray
        Keys ``MJD-BEG``, ``MJD-AVG``, ``MJD-END``, ``TDB-BEG``, ``TDB-MID``,
        ``TDB-END`` and ``INT_NUM``; times are NaN where the table has no row
        for an integration.
    """
    nint = model.data.shape[0]
    start = int_start(model)
    int_num = np.arange(start, start + nint)
    out = {key: np.full(nint, np.nan) for key in _TIME_COLUMNS}
    out["INT_NUM"] = int_num.astype(np.int32)
    if not has_int_times(model):
        log.warning("No INT_TIMES table: the products' time columns will be NaN.")
        return out
    table = np.asarray(model.int_times)
    rows = {n: i for i, n in enumerate(table["integration_number"])}
    idx = np.array([rows.get(n, -1) for n in int_num])
    have = idx >= 0
    if not have.all():
        log.warning(
            "INT_TIMES has no row for integration(s) %s of %s: their times will be NaN.",
            number_list(int_num[~have]), model.meta.filename,
        )
    for key, column in _TIME_COLUMNS.items():
        out[key][have] = table[column][idx[have]]
    # A cube on its own (a step run alone); soss_spec2 has checked the
    # exposure's table already, leaving NaN (which passes quietly here).
    finite = np.isfinite(out["MJD-AVG"]) & np.isfinite(out["TDB-MID"])
    if finite.any():
        bad = finite & (implausible_times(int_num, out["MJD-AVG"])
                        | implausible_times(int_num, out["TDB-MID"]))
        if bad.any():
            log.warning(
                "Integration(s) %s of %s have implausible times (not finite, not positive, "
                "or off the cadence): set to NaN.",
                number_list(int_num[bad]), model.meta.filename,
            )
            for key in _TIME_COLUMNS:
                out[key][bad] = np.nan
    return out


_TIME_COLUMNS = {
    "MJD-BEG": "int_start_MJD_UTC",
    "MJD-AVG": "int_mid_MJD_UTC",
    "MJD-END": "int_end_MJD_UTC",
    "TDB-BEG": "int_start_BJD_TDB",
    "TDB-MID": "int_mid_BJD_TDB",
    "TDB-END": "int_end_BJD_TDB",
}


def product_name(filename, suffix):
    """File name of an input's product: ``…_nis_rateints.fits`` -> ``…_nis_<suffix>.fits``.

    Parameters
    ----------
    filename : str or None
        The input's file name (any jwst suffix is replaced).
    suffix : str

    Returns
    -------
    str
    """
    from jwst.lib.suffix import remove_suffix

    stem = Path(filename or "soss").stem
    root, separator = remove_suffix(stem)
    return f"{root}{separator or '_'}{suffix}.fits"
