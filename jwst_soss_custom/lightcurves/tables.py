"""Light-curve tables (``whtlt``, ``speclc``, ``precision``) from an ``x1dints`` model.

This is the adapter between the datamodel and the pure numpy cores
(`whitelight`, `binning`, `baseline`, `clipping`, `precision`): it unpacks
each order's spectrum table into arrays, selects the integrations the same
way jwst's ``white_light`` does, and lays the results out as astropy tables.
`make_light_curves` makes all three at once (one baseline for all);
`whitelight_table` and `speclc_table` are shortcuts to one of them. See
``docs/products.md`` for the columns.

Row selection (both tables, as in jwst's ``white_light``): integrations whose
``MJD-AVG`` is NaN, or repeats an earlier integration's, are left out with a
warning; the rest are ordered by time.
"""

import logging
from dataclasses import dataclass

import numpy as np
from astropy import units as u
from astropy.table import QTable, Table

from jwst_soss_custom import __version__
from jwst_soss_custom._base.errors import SossInputError
from jwst_soss_custom.lightcurves.baseline import DEFAULT_MARGIN, resolve_baseline
from jwst_soss_custom.lightcurves.binning import Binning, bin_columns
from jwst_soss_custom.lightcurves.clipping import time_outliers
from jwst_soss_custom.lightcurves.events import find_trace_steps, step_regressors
from jwst_soss_custom.lightcurves.modes import SOSS_WAVE_RANGES, default_wave_ranges
from jwst_soss_custom.lightcurves.precision import precision_ratio
from jwst_soss_custom.lightcurves.stitching import integer_runs
from jwst_soss_custom.lightcurves.orders import order_data, regressor_columns
from jwst_soss_custom.lightcurves.whitelight import normalise, white_light_sums
from jwst_soss_custom.metadata import (
    INPUT_NOTES_ATTRIBUTE,
    TRACES_ATTRIBUTE,
    contamination_record,
    plain_record,
    too_few_usable,
    wavelength_check_meta,
)

__all__ = [
    "DEFAULT_WAVE_RANGES",
    "NORMALISATION",
    "LightCurves",
    "make_light_curves",
    "speclc_table",
    "whitelight_table",
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
DEFAULT_WAVE_RANGES = SOSS_WAVE_RANGES

#: How the normalised columns are made (written in the tables' metadata).
NORMALISATION = "divided by the median over the baseline integrations of each light curve"

#: How the precision report measures and predicts the scatter.
ESTIMATOR = (
    "measured: 1.4826 MAD of first differences / sqrt(2) of the normalised flux over the "
    "baseline (clipped points left out); expected: median normalised propagated error there"
)


def _base_meta(model):
    """The table metadata jwst's white_light writes, in the same order."""
    return {
        "instrument": model.meta.instrument.name,
        "exp_type": model.meta.exposure.type,
        "subarray": model.meta.subarray.name,
        "filter": model.meta.instrument.filter,
        "pupil": model.meta.instrument.pupil,
        "target_name": model.meta.target.catalog_name,
    }


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


@dataclass
class LightCurves:
    """The three light-curve tables of one exposure.

    Attributes
    ----------
    whtlt : `~astropy.table.QTable`
        White light per order (jwst's columns first).
    speclc : `~astropy.table.Table` or None
        Spectroscopic light curves (long layout), if asked for.
    precision : `~astropy.table.Table`
        Precision report: one row per white light and per bin.
    contamination : `~astropy.table.Table` or None
        Per order and column, what soss_extract subtracted under the
        aperture (None when the x1dints record none).
    """

    whtlt: QTable
    speclc: Table | None
    precision: Table
    contamination: Table | None = None


def make_light_curves(
    model,
    wave_ranges=None,
    orders=None,
    binning=None,
    baseline="auto",
    baseline_margin=DEFAULT_MARGIN,
    clip_sigma=5.0,
    clip_window=11,
    spectroscopic=True,
    tilt_threshold=8.0,
):
    """White-light and spectroscopic light curves and their precision report.

    Parameters
    ----------
    model : `~stdatamodels.jwst.datamodels.TSOMultiSpecModel`
        Stitched ``x1dints`` model (one spectrum per order).
    wave_ranges : dict of int to (float, float) or None
        Inclusive wavelength range per order (micron); defaults to the
        mode's (`~jwst_soss_custom.lightcurves.modes.default_wave_ranges`).
    orders : sequence of int or None
        Orders to include; None for all orders of the model.
    binning : `~jwst_soss_custom.lightcurves.binning.Binning` or None
        How to bin (default: 20 columns per bin).
    baseline : str
        ``"auto"`` (transit found in the white light of the first order),
        ``"all"``, or integration ranges such as ``"1-150, 400-537"``.
    baseline_margin : float
        ``auto``: widen the transit found by this fraction of its length.
    clip_sigma : float
        Threshold of the time-domain outlier clipping of each channel (robust
        standard deviations); 0 turns it off.
    clip_window : int
        Running-median window of the clipping (integrations).
    spectroscopic : bool
        Make the spectroscopic light curves (and their precision rows).
    tilt_threshold : float
        Significance (sigma) of a step in the trace regressors that counts as
        a tilt event (`events.find_trace_steps`); each event adds a step
        column ``regressor_tilt_<n>`` that soss_fit always fits. 0: no search.

    Returns
    -------
    `LightCurves`
    """
    wave_ranges = default_wave_ranges(model) if wave_ranges is None else wave_ranges
    binning = Binning() if binning is None else binning
    data = order_data(model, orders)
    _check_ranges(data, wave_ranges)
    first = data[next(iter(data))]
    int_num = first["int_num"]
    regressors = regressor_columns(model, int_num)
    events = find_trace_steps(int_num, regressors, threshold=tilt_threshold) if (
        tilt_threshold > 0) else []
    for event in events:
        log.warning(
            "Tilt event: the trace steps at integration %d (%.0f sigma; dx %+.4f px, dy %+.4f "
            "px, dwidth %+.5f); a step regressor goes into the light curves.",
            event["int_num"], event["significance"], *(event["steps"].get(k, np.nan)
                                                       for k in ("dx", "dy", "dwidth")),
        )
    regressors.update(step_regressors(int_num, events))
    white = {
        order: _white_light(order, arrays, wave_ranges[order]) for order, arrays in data.items()
    }
    flux0, _, nused0 = white[next(iter(white))]
    with_data = np.logical_or.reduce([nused > 0 for _, _, nused in white.values()])
    if too_few_usable(int(with_data.sum()), with_data.size):
        raise SossInputError(
            f"The x1dints hold finite flux in only {int(with_data.sum())} of {with_data.size} "
            "integrations (in the wavelength ranges used), too few for a baseline; check the "
            "spectra (an x1dints of NaN fluxes, or wavelength ranges outside the data)."
        )
    # An integration with no finite flux sums to 0 (jwst's rule): not a dip.
    search = np.where(nused0 > 0, flux0, np.nan)
    found = resolve_baseline(int_num, search, baseline, baseline_margin)

    meta = _base_meta(model)
    meta["number_of_integrations"] = int(int_num.size)
    for order in data:
        meta[f"wavelength_range_order_{order}"] = [float(v) for v in wave_ranges[order]]
    meta["normalisation"] = NORMALISATION
    # Integrations without data in any order (flagged whole by soss_spec2).
    without = np.logical_or.reduce([nused == 0 for _, _, nused in white.values()])
    meta["integrations_without_data"] = [int(n) for n in int_num[without]]
    # Integrations of the x1dints the light curves leave out for want of a
    # (unique, finite) mid time: order_data has named them in the log.
    every = np.asarray(model.spec[0].spec_table["INT_NUM"]) if len(model.spec) else int_num
    meta["integrations_without_time"] = [int(n) for n in np.setdiff1d(every, int_num)]
    meta.update(found.meta(int_num))
    meta.update(plain_record(getattr(model, INPUT_NOTES_ATTRIBUTE, None)) or {})
    meta.update(wavelength_check_meta(model))
    subtracted = contamination_record(model)
    contamination = {order: _on_columns(entry, data[order]["wavelength"])
                     for order, entry in subtracted.items() if order in data}
    meta.update(_contamination_meta(model, contamination, wave_ranges))
    meta["tilt_events"] = [event["int_num"] for event in events]
    meta["tilt_significance"] = [round(event["significance"], 1) for event in events]
    meta["tilt_handling"] = (
        "step regressors regressor_tilt_<n> (0 before, 1 from the event), always fitted by "
        "soss_fit" if events else "none found")
    meta["software"] = f"jwst_soss_custom {__version__}"

    whtlt, precision_parts = _whtlt_table(data, white, found.mask, meta)
    for name, values in regressors.items():
        whtlt[name] = values
    speclc = None
    if spectroscopic:
        speclc, parts = _speclc_table(
            data, wave_ranges, binning, found.mask, clip_sigma, clip_window, contamination
        )
        precision_parts.extend(parts)
        speclc.meta = {**meta, **binning.meta(), **speclc.meta}
        speclc.meta.update(clip_sigma=float(clip_sigma), clip_window=int(clip_window))
        for name, values in regressors.items():
            speclc[name] = np.tile(values, len(speclc) // max(int_num.size, 1))
    precision = _precision_table(precision_parts, {**meta, "estimator": ESTIMATOR})
    log_precision(precision)
    return LightCurves(whtlt, speclc, precision,
                       _contamination_table(subtracted, meta))


def _white_light(order, arrays, wave_range):
    """White light of one order, with jwst's warnings: (flux, error, nused)."""
    flux, error, nused, nbad = white_light_sums(
        arrays["wavelength_2d"], arrays["flux"], arrays["flux_error"], wave_range
    )
    empty = nused == 0
    if np.any(empty):
        log.warning(
            "Order %d: integrations %s have no finite flux in [%g, %g]; their white "
            "light is 0, as in jwst's white_light, and their normalised flux NaN.",
            order,
            integer_runs(np.sort(arrays["int_num"][empty])),
            *wave_range,
        )
    if nbad:
        log.warning(
            "Order %d: %d summed flux value(s) have a non-finite error, left out of "
            "the white-light error.",
            order,
            nbad,
        )
    return flux, error, nused


def _whtlt_table(data, white, baseline, meta):
    """The whtlt table and the white-light precision rows."""
    first = data[next(iter(data))]
    table = QTable(meta=dict(meta))
    table["MJD_UTC"] = first["mjd_utc"]
    table["BJD_TDB"] = first["bjd_tdb"]
    columns = {"flux": {}, "error": {}, "norm": {}, "norm_error": {}}
    rows = []
    for order, arrays in data.items():
        flux, error, nused = white[order]
        # An integration without data has a white light of 0 (as jwst's),
        # but no normalised flux: NaN, left out of the baseline and precision.
        norm, norm_error, median = normalise(np.where(nused > 0, flux, np.nan), error,
                                             baseline=baseline)
        unit = _unit(arrays["flux_unit"])
        columns["flux"][order] = flux if unit is None else flux << unit
        columns["error"][order] = error if unit is None else error << unit
        columns["norm"][order] = norm
        columns["norm_error"][order] = norm_error
        lo, hi = meta[f"wavelength_range_order_{order}"]
        rows.append(
            _precision_part(order, -1, (lo, hi), nused.max(), norm[baseline], norm_error[baseline])
        )
        log.info("Order %d white light: baseline median %.6g %s.", order, median, unit or "")
    tag = {order: f"_order_{order}" if len(data) > 1 else "" for order in data}
    for kind, prefix in (
        ("flux", "whitelight_flux"),
        ("error", "whitelight_flux_error"),
        ("norm", "whitelight_flux_norm"),
        ("norm_error", "whitelight_flux_norm_error"),
    ):
        for order, values in columns[kind].items():
            table[f"{prefix}{tag[order]}"] = values
    table["int_num"] = first["int_num"].astype(np.int32)
    table["baseline"] = baseline
    return table, rows


def _precision_part(order, index, edges, npix, norm, norm_error):
    """Precision columns of one light curve, or of all bins of an order at once.

    ``norm``/``norm_error`` are the baseline rows, time along axis 0.
    """
    measured, expected, ratio = precision_ratio(norm, norm_error, axis=0)
    columns = {
        "order": np.full(np.size(index), order, dtype=np.int16),
        "bin": index,
        "wave_low": edges[0],
        "wave_high": edges[1],
        "npix": npix,
        "n_points": np.count_nonzero(np.isfinite(norm), axis=0),
        "measured_ppm": 1e6 * measured,
        "expected_ppm": 1e6 * expected,
        "ratio": ratio,
    }
    return {name: np.atleast_1d(values) for name, values in columns.items()}


def _on_columns(entry, wavelength):
    """A contamination record's arrays on the light curves' columns (matched by wavelength)."""
    order = np.argsort(entry["wavelength"])
    return {key: np.interp(wavelength, entry["wavelength"][order], values[order])
            for key, values in entry.items() if key != "wavelength"}


def _contamination_meta(model, contamination, wave_ranges):
    """What was subtracted under the apertures, as flat metadata.

    ``dilution_order_<n>``: the field stars' light subtracted over the order's
    white-light range, as a fraction of the order's own flux (the depth
    before the correction was ``depth / (1 + dilution)``); ``field_traces``:
    the field stars' traces soss_tracing modelled (shift, flux ratios).
    """
    meta = {}
    for order, entry in contamination.items():
        meta[f"dilution_order_{order}"] = round(float(
            np.nansum(entry["field_flux"]) / max(np.nansum(entry["target_flux"]), 1e-30)), 6)
    traces = plain_record(getattr(model, TRACES_ATTRIBUTE, None)) or {}
    record = traces.get("record", {}).get("contamination")
    if record is not None:
        meta["field_traces"] = [
            {k: v for k, v in star.items() if k in ("dx", "dy", "flux_ratio_order_1",
                                                     "flux_ratio_order_2", "quality")}
            for star in record.get("field_traces", [])]
    if contamination:
        meta["contamination_handling"] = (
            "field stars' traces subtracted by soss_extract (dilution per bin in speclc)")
    return meta


def _contamination_table(record, meta):
    """One row per order and column: the light under the aperture that is not the order's."""
    if not record:
        return None
    rows = {key: [] for key in ("order", "wavelength", "target_flux", "field_flux",
                                "neighbour_flux", "dilution")}
    for order, entry in sorted(record.items()):
        keep = np.argsort(entry["wavelength"])
        rows["order"].append(np.full(keep.size, order, np.int16))
        for key in list(rows)[1:]:
            rows[key].append(entry[key][keep])
    table = Table({key: np.concatenate(values) for key, values in rows.items()})
    table.meta = {key: value for key, value in meta.items()
                  if key.startswith(("dilution_order_", "field_traces", "contamination_"))}
    table.meta["comments"] = [
        "target_flux: the order's own flux in the deep frame (DN/s, extraction weights);",
        "field_flux: field stars' light subtracted from every integration (DN/s);",
        "neighbour_flux: the other order's wings, subtracted scaled by its white light;",
        "dilution: field_flux / target_flux (depths before the correction: depth/(1+dilution)).",
    ]
    return table


def _speclc_table(data, wave_ranges, binning, baseline, clip_sigma, clip_window,
                  contamination=None):
    """The speclc table (long layout) and the per-bin precision rows."""
    parts, rows, meta = [], [], {}
    flux_unit = wave_unit = None
    for order, arrays in data.items():
        try:
            bins = binning.bins(order, arrays["wavelength"], wave_ranges[order])
        except ValueError as err:
            raise ValueError(f"Order {order}: {err}") from None
        flux, error, nvalid = bin_columns(arrays["flux"], arrays["flux_error"], bins)
        entry = (contamination or {}).get(order)
        if entry is not None:
            field, _, _ = bin_columns(entry["field_flux"][None, :],
                                      np.zeros((1, entry["field_flux"].size)), bins)
            target, _, _ = bin_columns(entry["target_flux"][None, :],
                                       np.zeros((1, entry["target_flux"].size)), bins)
            with np.errstate(invalid="ignore", divide="ignore"):
                dilution = np.where(target[0] > 0, field[0] / target[0], np.nan)
        else:
            dilution = np.zeros(bins.nbins)
        norm, norm_error, _ = normalise(flux, error, axis=0, baseline=baseline)
        clipped = time_outliers(norm, clip_sigma, clip_window, norm_error)
        # Clipped points leave the normalised curves (what one fits) but stay
        # in flux/flux_error and are flagged: reported, never silently dropped.
        norm[clipped] = np.nan
        norm_error[clipped] = np.nan
        _log_clipped(order, clipped, clip_sigma)
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
                "baseline": np.tile(baseline, bins.nbins),
                "clipped": clipped.T.ravel(),
                "dilution": np.repeat(dilution, nrows),
            }
        )
        rows.append(
            _precision_part(
                order,
                np.arange(bins.nbins),
                (bins.wave_low, bins.wave_high),
                bins.npix,
                norm[baseline],
                norm_error[baseline],
            )
        )
        flux_unit = flux_unit or arrays["flux_unit"]
        wave_unit = wave_unit or arrays["wave_unit"]
        meta[f"number_of_bins_order_{order}"] = int(bins.nbins)
        meta[f"number_clipped_order_{order}"] = int(np.count_nonzero(clipped))
        log.info(
            "Order %d: %d bins (%s, %d-%d columns) over [%g, %g] micron.",
            order,
            bins.nbins,
            binning.mode,
            bins.npix.min(),
            bins.npix.max(),
            *wave_ranges[order],
        )
    columns = {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
    table = Table(columns, meta=meta)
    for name in ("wave_low", "wave_high", "wave_center"):
        table[name].unit = _unit(wave_unit)
    for name in ("flux", "flux_error"):
        table[name].unit = _unit(flux_unit)
    return table, rows


#: Bins listed by name in the clipping log line (the metadata and the
#: ``clipped`` column hold them all).
_MAX_LISTED = 30


def _log_clipped(order, clipped, clip_sigma):
    counts = clipped.sum(axis=0)
    if not counts.any():
        log.info("Order %d: no time-domain outlier beyond %g sigma.", order, clip_sigma)
        return
    hit = np.flatnonzero(counts)
    log.warning(
        "Order %d: %d outlier point(s) beyond %g sigma clipped in %d of %d bins "
        "(flagged in the speclc 'clipped' column; flux_norm is NaN there). Per bin: %s.",
        order,
        counts.sum(),
        clip_sigma,
        hit.size,
        counts.size,
        ", ".join(f"{k}: {counts[k]}" for k in hit[:_MAX_LISTED])
        + (f" and {hit.size - _MAX_LISTED} more bins" if hit.size > _MAX_LISTED else ""),
    )


def _precision_table(parts, meta):
    columns = {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
    columns["wave_center"] = 0.5 * (columns["wave_low"] + columns["wave_high"])
    names = ["order", "bin", "wave_low", "wave_high", "wave_center", "npix", "n_points"]
    table = Table({n: columns[n] for n in [*names, "measured_ppm", "expected_ppm", "ratio"]})
    table.meta.update(meta)
    for name in ("bin", "npix", "n_points"):
        table[name] = table[name].astype(np.int32)
    for name in ("wave_low", "wave_high", "wave_center"):
        table[name].unit = u.um
    return table


def log_precision(precision):
    """Summarise a precision report in the log: white light and channels per order.

    Parameters
    ----------
    precision : `~astropy.table.Table`
        The precision table of `make_light_curves`.
    """
    for order in np.unique(precision["order"]):
        rows = precision[precision["order"] == order]
        white = rows[rows["bin"] == -1]
        if len(white):
            log.info(
                "Precision order %d white light: measured %.1f ppm, photon+read noise %.1f "
                "ppm, ratio %.2f (%d baseline points).",
                order,
                white["measured_ppm"][0],
                white["expected_ppm"][0],
                white["ratio"][0],
                white["n_points"][0],
            )
        ratio = np.asarray(rows["ratio"][rows["bin"] >= 0], dtype=np.float64)
        ratio = ratio[np.isfinite(ratio)]
        if ratio.size:
            lo, med, hi = np.percentile(ratio, [16, 50, 84])
            log.info(
                "Precision order %d, %d channels: ratio measured/expected median %.2f "
                "(16-84%%: %.2f-%.2f).",
                order,
                ratio.size,
                med,
                lo,
                hi,
            )


def whitelight_table(
    model, wave_ranges=None, orders=None, baseline="auto", baseline_margin=DEFAULT_MARGIN
):
    """White-light curve of each order, laid out like jwst's ``whtlt``.

    Parameters
    ----------
    model : `~stdatamodels.jwst.datamodels.TSOMultiSpecModel`
        Stitched ``x1dints`` model.
    wave_ranges : dict of int to (float, float) or None
        Inclusive wavelength range per order (micron); defaults to the
        mode's (`~jwst_soss_custom.lightcurves.modes.default_wave_ranges`).
    orders : sequence of int or None
        Orders to include; None for all orders of the model.
    baseline, baseline_margin
        As in `make_light_curves`.

    Returns
    -------
    `~astropy.table.QTable`
        Columns ``MJD_UTC``, ``BJD_TDB`` and ``whitelight_flux_order_N`` as
        jwst's ``white_light`` (no ``_order_N`` when there is only one
        order), then ``whitelight_flux_error_order_N``,
        ``whitelight_flux_norm_order_N``,
        ``whitelight_flux_norm_error_order_N``, ``int_num``, ``baseline``
        and any ``regressor_<name>``.
    """
    return make_light_curves(
        model,
        wave_ranges,
        orders,
        baseline=baseline,
        baseline_margin=baseline_margin,
        spectroscopic=False,
    ).whtlt


def speclc_table(model, wave_ranges=None, bin_width=20, last_bin="keep", orders=None, **kwargs):
    """Spectroscopic light curves in long ("tidy") form, one row per order, bin and integration.

    Parameters
    ----------
    model : `~stdatamodels.jwst.datamodels.TSOMultiSpecModel`
        Stitched ``x1dints`` model.
    wave_ranges : dict of int to (float, float) or None
        Inclusive wavelength range per order (micron).
    bin_width : int
        Bin width in detector columns.
    last_bin : {"keep", "merge", "drop"}
        Handling of the leftover columns.
    orders : sequence of int or None
        Orders to include; None for all orders of the model.
    **kwargs
        Other `make_light_curves` parameters (``binning`` overrides
        ``bin_width`` and ``last_bin``; ``baseline``, ``clip_sigma``, ...).

    Returns
    -------
    `~astropy.table.Table`
        See ``docs/products.md``.
    """
    kwargs.setdefault("binning", Binning(width=bin_width, last_bin=last_bin))
    return make_light_curves(model, wave_ranges, orders, **kwargs).speclc
