"""The spectra of an ``x1dints`` model as arrays, per order, ready for light curves.

`order_data` unpacks each order's spectrum table into arrays and selects the
integrations the same way jwst's ``white_light`` does (integrations whose
``MJD-AVG`` is NaN, or repeats an earlier integration's, are left out with a
warning; the rest are ordered by time); `regressor_columns` gives the
trace-stability regressors of those integrations; `read_bin_edges` reads a
user's wavelength bins.
"""

import logging
from pathlib import Path

import numpy as np
from astropy.io.registry import IORegistryError
from astropy.table import Table

from jwst_soss_custom._base.errors import SossInputError
from jwst_soss_custom.lightcurves.stitching import integer_runs
from jwst_soss_custom.metadata import REGRESSORS_ATTRIBUTE, implausible_times

__all__ = ["OrderData", "order_data", "read_bin_edges", "regressor_columns"]

log = logging.getLogger(__name__)


class OrderData(dict):
    """Arrays of one order, rows already selected and sorted by time.

    Keys: ``wavelength`` (ncols,) the grid of the first row;
    ``wavelength_2d`` (nrows, ncols) or (1, ncols) the per-row wavelengths
    (jwst's white_light selects columns row by row); ``flux``/``flux_error``
    (nrows, ncols); ``int_num``/``mjd_utc``/``bjd_tdb`` (nrows,); and
    ``flux_unit``, ``wave_unit`` (str or None).
    """


def _rows(int_num, mid_time, mid_tdb):
    """Indices of the integrations kept (plausible, unique MJD-AVG and TDB-MID), in time order."""
    bad = implausible_times(int_num, mid_time) | implausible_times(int_num, mid_tdb)
    finite = np.flatnonzero(~bad)
    # Keep the first of repeated time stamps, as jwst's white_light does.
    _, first = np.unique(mid_time[finite], return_index=True)
    keep = finite[np.sort(first)]
    dropped = np.setdiff1d(np.arange(mid_time.size), keep)
    if dropped.size:
        log.warning(
            "%d integration(s) (INT_NUM %s) have no, an implausible (not positive, off the "
            "cadence) or a repeated mid time (MJD-AVG, TDB-MID) and are left out of the "
            "light curves, as jwst's white_light does for missing and repeated ones.",
            dropped.size,
            integer_runs(np.sort(int_num[dropped])),
        )
    if keep.size < 2:
        raise SossInputError(
            f"Only {keep.size} of {mid_time.size} integration(s) have a plausible mid time "
            "(MJD-AVG and TDB-MID finite, positive, on the exposure's cadence): no light "
            "curve can be made. Reduce the rateints with their INT_TIMES table."
        )
    return keep[np.argsort(mid_time[keep], kind="stable")]


def order_data(model, orders=None):
    """Unpack the spectra of the requested orders into arrays.

    Parameters
    ----------
    model : `~stdatamodels.jwst.datamodels.TSOMultiSpecModel`
        An ``x1dints`` model with one spectrum per order (stitch segments
        first with `~jwst_soss_custom.lightcurves.stitch_x1dints`).
    orders : sequence of int or None
        Orders to unpack; None for every order in the model.

    Returns
    -------
    dict of int to `OrderData`

    Raises
    ------
    SossInputError
        If an order is missing or repeated, or if the orders do not hold the
        same integrations.
    """
    specs = {}
    for spec in model.spec:
        order = int(spec.spectral_order)
        if order in specs:
            raise SossInputError(
                f"Order {order} appears in more than one spectrum of "
                f"{model.meta.filename or 'the input'}; stitch the segments first "
                "(stitch_x1dints or the soss_tso3 pipeline)."
            )
        specs[order] = spec
    if orders is None:
        orders = sorted(specs)
    absent = sorted(set(orders) - set(specs))
    if absent:
        raise SossInputError(
            f"Order(s) {absent} requested but the input has orders {sorted(specs)}; "
            "change the `orders` parameter."
        )
    out = {}
    keep = int_num = None
    for order in orders:
        table = specs[order].spec_table
        this_int = np.asarray(table["INT_NUM"])
        if keep is None:
            int_num = this_int
            keep = _rows(this_int, np.asarray(table["MJD-AVG"], dtype=np.float64),
                         np.asarray(table["TDB-MID"], dtype=np.float64))
        elif not np.array_equal(this_int, int_num):
            raise SossInputError(
                f"Orders {orders[0]} and {order} hold different integrations; "
                "light curves of several orders need the same rows in every order."
            )
        wave = np.atleast_2d(np.asarray(table["WAVELENGTH"], dtype=np.float64))
        out[order] = OrderData(
            wavelength=wave[0],
            wavelength_2d=wave[keep] if wave.shape[0] > 1 else wave,
            flux=np.asarray(table["FLUX"])[keep],
            flux_error=np.asarray(table["FLUX_ERROR"])[keep],
            int_num=int_num[keep],
            mjd_utc=np.asarray(table["MJD-AVG"], dtype=np.float64)[keep],
            bjd_tdb=np.asarray(table["TDB-MID"], dtype=np.float64)[keep],
            flux_unit=table.columns["FLUX"].unit,
            wave_unit=table.columns["WAVELENGTH"].unit,
        )
    return out


def regressor_columns(model, int_num):
    """Trace-stability regressors of a model, one value per light-curve row.

    Parameters
    ----------
    model : `~stdatamodels.jwst.datamodels.TSOMultiSpecModel`
        Model that may carry the `~jwst_soss_custom.products.REGRESSORS_ATTRIBUTE`
        structured array (field ``int_num`` plus float fields).
    int_num : ndarray of int
        Integration number of each row.

    Returns
    -------
    dict of str to ndarray
        ``regressor_<field>`` per float field, matched on ``int_num`` (NaN
        for an integration the regressors lack); empty when there are none.
    """
    regressors = getattr(model, REGRESSORS_ATTRIBUTE, None)
    if regressors is None:
        return {}
    regressors = np.asarray(regressors)
    names = regressors.dtype.names or ()
    if "int_num" not in names:
        log.warning(
            "%s has no int_num field (fields: %s); the regressors are left out of the "
            "light curves.",
            REGRESSORS_ATTRIBUTE,
            ", ".join(names) or "none",
        )
        return {}
    regressors = regressors[np.argsort(regressors["int_num"], kind="stable")]
    known = regressors["int_num"]
    if known.size == 0:
        return {}
    pos = np.minimum(np.searchsorted(known, int_num), known.size - 1)
    found = known[pos] == int_num
    if not np.all(found):
        log.warning(
            "Trace regressors are missing for integrations %s; NaN there.",
            integer_runs(np.sort(int_num[~found])),
        )
    columns = {}
    for name in names:
        if name != "int_num":
            values = np.asarray(regressors[name], dtype=np.float64)[pos]
            columns[f"regressor_{name}"] = np.where(found, values, np.nan)
    return columns


def read_bin_edges(path):
    """Read user bin edges from a table file.

    Parameters
    ----------
    path : str or Path
        Any table astropy reads (ECSV, CSV, whitespace-separated text, FITS)
        with columns ``wave_low`` and ``wave_high`` in micron (or just two
        columns, taken as those) and optionally ``order``.

    Returns
    -------
    dict of int to (ndarray, ndarray)
        ``(low, high)`` per order; key 0 for edges without an order column
        (they apply to every order).

    Raises
    ------
    ValueError
        If the file is missing or its columns cannot be identified.
    """
    if not Path(path).is_file():
        raise ValueError(f"Bin edges file {path} does not exist; check bin_edges_file.")
    try:
        try:
            table = Table.read(path)
        except IORegistryError:  # no format from the name (.txt, .dat): astropy's ascii guessing
            table = Table.read(path, format="ascii")
    except (OSError, ValueError, TypeError) as err:
        raise ValueError(
            f"Cannot read bin edges from {path} ({err}); write them as ECSV, CSV or two "
            "whitespace-separated columns wave_low wave_high (micron)."
        ) from None
    names = table.colnames
    if {"wave_low", "wave_high"} <= set(names):
        low, high = table["wave_low"], table["wave_high"]
    elif len(names) == 2:
        low, high = table[names[0]], table[names[1]]
    else:
        raise ValueError(
            f"{path}: cannot find the bin edges among columns {names}; name them wave_low, "
            "wave_high (micron), with an optional order column."
        )
    low = np.asarray(getattr(low, "value", low), dtype=np.float64)
    high = np.asarray(getattr(high, "value", high), dtype=np.float64)
    if "order" not in names:
        return {0: (low, high)}
    orders = np.asarray(table["order"], dtype=int)
    return {int(o): (low[orders == o], high[orders == o]) for o in np.unique(orders)}
