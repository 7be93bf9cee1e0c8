"""Light-curve tables (``whtlt`` and ``speclc``) from an ``x1dints`` model.

This is the adapter between the datamodel and the pure numpy cores
(`whitelight`, `binning`): it unpacks each order's spectrum table into
arrays, selects the integrations the same way jwst's ``white_light`` does,
and lays the results out as astropy tables. See ``docs/products.md`` for the
columns.

Row selection (both tables, as in jwst's ``white_light``): integrations whose
``MJD-AVG`` is NaN, or repeats an earlier integration's, are left out with a
warning; the rest are ordered by time.
"""

import logging

import numpy as np
from astropy import units as u
from astropy.table import QTable, Table

from jwst_soss_custom import __version__
from jwst_soss_custom.exposure import SossInputError
from jwst_soss_custom.lightcurves.binning import bin_columns, make_column_bins
from jwst_soss_custom.lightcurves.stitching import integer_runs
from jwst_soss_custom.lightcurves.whitelight import normalise, white_light_sums

__all__ = [
    "DEFAULT_WAVE_RANGES",
    "NORMALISATION",
    "OrderData",
    "order_data",
    "whitelight_table",
    "speclc_table",
]

log = logging.getLogger(__name__)

#: Default inclusive wavelength ranges (micron) per order, for the white
#: light and the spectroscopic bins:
#:
#: * order 1, 0.85-2.83: all of order 1 that falls on SUBSTRIP256; its ends
#:   move by a few nm with the pupil-wheel position, so this is slightly
#:   inside the extracted range;
#: * order 2, 0.60-0.95: the blue part that order 1 does not reach (plus a
#:   0.1 micron overlap for cross-checks); redder order 2 light is fainter
#:   than order 1 at the same wavelength and its throughput dips near the
#:   order 1 blaze (~1.25 micron);
#: * order 3, 0.60-0.95: all of the faint order 3.
DEFAULT_WAVE_RANGES = {1: (0.85, 2.83), 2: (0.6, 0.95), 3: (0.6, 0.95)}

#: How the normalised columns are made (written in the tables' metadata).
NORMALISATION = "divided by the median over all integrations of each light curve"


class OrderData(dict):
    """Arrays of one order, rows already selected and sorted by time.

    Keys: ``wavelength`` (ncols,) the grid of the first row;
    ``wavelength_2d`` (nrows, ncols) or (1, ncols) the per-row wavelengths
    (jwst's white_light selects columns row by row); ``flux``/``flux_error``
    (nrows, ncols); ``int_num``/``mjd_utc``/``bjd_tdb`` (nrows,); and
    ``flux_unit``, ``wave_unit`` (str or None).
    """


def _rows(int_num, mid_time):
    """Indices of the integrations kept (unique, finite MJD-AVG), in time order."""
    finite = np.flatnonzero(np.isfinite(mid_time))
    # Keep the first of repeated time stamps, as jwst's white_light does.
    _, first = np.unique(mid_time[finite], return_index=True)
    keep = finite[np.sort(first)]
    dropped = np.setdiff1d(np.arange(mid_time.size), keep)
    if dropped.size:
        log.warning(
            "%d integration(s) (INT_NUM %s) have no or a repeated mid time (MJD-AVG) and "
            "are left out of the light curves, as jwst's white_light does.",
            dropped.size,
            integer_runs(np.sort(int_num[dropped])),
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
            keep = _rows(this_int, np.asarray(table["MJD-AVG"], dtype=np.float64))
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


def _base_meta(model):
    """The table metadata jwst's white_light writes, in the same order."""
    meta = {
        "instrument": model.meta.instrument.name,
        "exp_type": model.meta.exposure.type,
        "subarray": model.meta.subarray.name,
        "filter": model.meta.instrument.filter,
        "pupil": model.meta.instrument.pupil,
        "target_name": model.meta.target.catalog_name,
    }
    return meta


def _check_ranges(orders, wave_ranges):
    for order in orders:
        if order not in wave_ranges:
            raise ValueError(
                f"No wavelength range for order {order}; set order{order}_wave_range "
                "(or leave the order out with `orders`)."
            )
        lo, hi = wave_ranges[order]
        if not lo < hi:
            raise ValueError(
                f"order{order}_wave_range is [{lo}, {hi}]: the minimum must be below the "
                "maximum (micron)."
            )


def _unit(name):
    return None if name in (None, "") else u.Unit(name)


def whitelight_table(model, wave_ranges=None, orders=None):
    """White-light curve of each order, laid out like jwst's ``whtlt``.

    Parameters
    ----------
    model : `~stdatamodels.jwst.datamodels.TSOMultiSpecModel`
        Stitched ``x1dints`` model.
    wave_ranges : dict of int to (float, float) or None
        Inclusive wavelength range per order (micron); defaults to
        `DEFAULT_WAVE_RANGES`.
    orders : sequence of int or None
        Orders to include; None for all orders of the model.

    Returns
    -------
    `~astropy.table.QTable`
        Columns ``MJD_UTC``, ``BJD_TDB`` and ``whitelight_flux_order_N`` as
        jwst's ``white_light`` (no ``_order_N`` when there is only one
        order), then ``whitelight_flux_error_order_N``,
        ``whitelight_flux_norm_order_N`` and
        ``whitelight_flux_norm_error_order_N``.
    """
    wave_ranges = DEFAULT_WAVE_RANGES if wave_ranges is None else wave_ranges
    data = order_data(model, orders)
    _check_ranges(data, wave_ranges)
    first = data[next(iter(data))]
    table = QTable(meta=_base_meta(model))
    table["MJD_UTC"] = first["mjd_utc"]
    table["BJD_TDB"] = first["bjd_tdb"]
    columns = {"flux": {}, "error": {}, "norm": {}, "norm_error": {}}
    for order, arrays in data.items():
        flux, error, nused, nbad = white_light_sums(
            arrays["wavelength_2d"], arrays["flux"], arrays["flux_error"], wave_ranges[order]
        )
        empty = nused == 0
        if np.any(empty):
            log.warning(
                "Order %d: integrations %s have no finite flux in [%g, %g]; their white "
                "light is 0, as in jwst's white_light.",
                order,
                integer_runs(np.sort(arrays["int_num"][empty])),
                *wave_ranges[order],
            )
        if nbad:
            log.warning(
                "Order %d: %d summed flux value(s) have a non-finite error, left out of "
                "the white-light error.",
                order,
                nbad,
            )
        norm, norm_error, median = normalise(flux, error)
        unit = _unit(arrays["flux_unit"])
        columns["flux"][order] = flux if unit is None else flux << unit
        columns["error"][order] = error if unit is None else error << unit
        columns["norm"][order] = norm
        columns["norm_error"][order] = norm_error
        log.info(
            "Order %d white light over [%g, %g] micron: median %.6g %s.",
            order,
            *wave_ranges[order],
            median,
            arrays["flux_unit"] or "",
        )
    tag = {order: f"_order_{order}" if len(data) > 1 else "" for order in data}
    for kind, prefix in (
        ("flux", "whitelight_flux"),
        ("error", "whitelight_flux_error"),
        ("norm", "whitelight_flux_norm"),
        ("norm_error", "whitelight_flux_norm_error"),
    ):
        for order, values in columns[kind].items():
            table[f"{prefix}{tag[order]}"] = values
    table.meta.update(_extra_meta(table, data, wave_ranges))
    return table


def _extra_meta(table, data, wave_ranges):
    meta = {"number_of_integrations": len(table)}
    for order in data:
        meta[f"wavelength_range_order_{order}"] = [float(v) for v in wave_ranges[order]]
    meta["normalisation"] = NORMALISATION
    meta["software"] = f"jwst_soss_custom {__version__}"
    return meta


def speclc_table(model, wave_ranges=None, bin_width=20, last_bin="keep", orders=None):
    """Spectroscopic light curves in long ("tidy") form, one row per order, bin and integration.

    Parameters
    ----------
    model : `~stdatamodels.jwst.datamodels.TSOMultiSpecModel`
        Stitched ``x1dints`` model.
    wave_ranges : dict of int to (float, float) or None
        Inclusive wavelength range per order (micron); defaults to
        `DEFAULT_WAVE_RANGES`.
    bin_width : int
        Bin width in detector columns.
    last_bin : {"keep", "merge", "drop"}
        Handling of the leftover columns, see
        `~jwst_soss_custom.lightcurves.binning.make_column_bins`.
    orders : sequence of int or None
        Orders to include; None for all orders of the model.

    Returns
    -------
    `~astropy.table.Table`
        Columns ``order``, ``bin``, ``wave_low``, ``wave_high``,
        ``wave_center``, ``npix``, ``int_num``, ``MJD_UTC``, ``BJD_TDB``,
        ``flux``, ``flux_error``, ``flux_norm``, ``flux_norm_error``,
        ``nvalid``; rows sorted by order, bin (increasing wavelength) and
        time. See ``docs/products.md``.
    """
    wave_ranges = DEFAULT_WAVE_RANGES if wave_ranges is None else wave_ranges
    data = order_data(model, orders)
    _check_ranges(data, wave_ranges)
    parts = []
    meta = _base_meta(model)
    flux_unit = wave_unit = None
    for order, arrays in data.items():
        try:
            bins = make_column_bins(arrays["wavelength"], wave_ranges[order], bin_width, last_bin)
        except ValueError as err:
            raise ValueError(f"Order {order}: {err}") from None
        flux, error, nvalid = bin_columns(arrays["flux"], arrays["flux_error"], bins)
        norm, norm_error, _ = normalise(flux, error, axis=0)
        nrows = flux.shape[0]
        # Long layout: for each bin, all integrations (bin-major), hence the
        # transposes of the (nints, nbins) arrays.
        parts.append(
            {
                "order": np.full(bins.nbins * nrows, order, dtype=np.int16),
                "bin": np.repeat(np.arange(bins.nbins, dtype=np.int32), nrows),
                "wave_low": np.repeat(bins.wave_low, nrows),
                "wave_high": np.repeat(bins.wave_high, nrows),
                "wave_center": np.repeat(bins.wave_center, nrows),
                "npix": np.repeat(bins.npix.astype(np.int32), nrows),
                "int_num": np.tile(arrays["int_num"].astype(np.int32), bins.nbins),
                "MJD_UTC": np.tile(arrays["mjd_utc"], bins.nbins),
                "BJD_TDB": np.tile(arrays["bjd_tdb"], bins.nbins),
                "flux": flux.T.ravel(),
                "flux_error": error.T.ravel(),
                "flux_norm": norm.T.ravel(),
                "flux_norm_error": norm_error.T.ravel(),
                "nvalid": nvalid.T.ravel().astype(np.int32),
            }
        )
        flux_unit = flux_unit or arrays["flux_unit"]
        wave_unit = wave_unit or arrays["wave_unit"]
        meta[f"number_of_bins_order_{order}"] = int(bins.nbins)
        log.info(
            "Order %d: %d bins of %d columns over [%g, %g] micron.",
            order,
            bins.nbins,
            bin_width,
            *wave_ranges[order],
        )
    columns = {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
    table = Table(columns, meta=meta)
    for name in ("wave_low", "wave_high", "wave_center"):
        table[name].unit = _unit(wave_unit)
    for name in ("flux", "flux_error"):
        table[name].unit = _unit(flux_unit)
    table.meta["number_of_integrations"] = int(data[next(iter(data))]["int_num"].size)
    table.meta["bin_width"] = int(bin_width)
    table.meta["last_bin"] = last_bin
    for order in data:
        table.meta[f"wavelength_range_order_{order}"] = [float(v) for v in wave_ranges[order]]
    table.meta["normalisation"] = NORMALISATION
    table.meta["software"] = f"jwst_soss_custom {__version__}"
    return table
