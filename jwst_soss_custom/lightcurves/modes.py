"""Official ``x1dints`` of every JWST time-series spectroscopy mode, as Stage 3 reads them.

``soss_tso3`` and ``soss_lightcurves`` read the package's own x1dints and
those the official ``calwebb_spec2`` writes for NIRISS/SOSS, MIRI LRS
slitless, NIRSpec bright-object time series and NIRCam grism time series,
in either layout jwst has used: `TSOMultiSpecModel` (one spectrum per
order, a row per integration; jwst >= 1.18) or the older `MultiSpecModel`
(one spectrum per integration and order, times in each spectrum's
metadata). `as_x1dints` brings any of them to the first layout with a
spectral order on every spectrum; where the product has no usable flux
errors it estimates them from the scatter of each wavelength's light curve
and says so (`INPUT_NOTES_ATTRIBUTE`, carried into the tables' metadata).
`default_wave_ranges` gives each mode's summed wavelength range.
"""

import logging
import warnings
from dataclasses import dataclass

import numpy as np
from stdatamodels.jwst import datamodels

from jwst_soss_custom._base.errors import SossInputError
from jwst_soss_custom.lightcurves.precision import point_to_point_scatter
from jwst_soss_custom.metadata import INPUT_NOTES_ATTRIBUTE

__all__ = ["SOSS_WAVE_RANGES", "TSO_MODES", "TsoMode", "as_x1dints", "default_wave_ranges", "scatter_errors"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TsoMode:
    """A time-series spectroscopy mode Stage 3 reads.

    Attributes
    ----------
    name : str
        What observers call it.
    wave_ranges : dict of int to (float, float) or None
        Summed and binned range per order (micron); None: where the data are.
    """

    name: str
    wave_ranges: dict | None


#: SOSS orders' summed ranges (micron).
SOSS_WAVE_RANGES = {1: (0.85, 2.83), 2: (0.6, 0.95), 3: (0.6, 0.95)}

#: The modes, by EXP_TYPE. SOSS: order 1 above the wavelengths order 2
#: covers better, order 2 only its blue end. MIRI LRS slitless: 5-12 micron
#: (below 5 the prism's dispersion folds over, above 12 the throughput falls
#: and the background dominates). NIRSpec and NIRCam: every wavelength with
#: flux, which depends on the disperser and filter.
TSO_MODES = {
    "NIS_SOSS": TsoMode("NIRISS/SOSS", SOSS_WAVE_RANGES),
    "MIR_LRS-SLITLESS": TsoMode("MIRI LRS slitless", {1: (5.0, 12.0)}),
    "NRS_BRIGHTOBJ": TsoMode("NIRSpec bright-object time series", None),
    "NRC_TSGRISM": TsoMode("NIRCam grism time series", None),
}

#: Spectrum metadata of the older layout that the TSO layout keeps as columns.
_OLD_TIMES = (("MJD-AVG", "mid_time_mjd"), ("TDB-MID", "mid_tdb"), ("MJD-BEG", "start_time_mjd"),
              ("MJD-END", "end_time_mjd"), ("TDB-BEG", "start_tdb"), ("TDB-END", "end_tdb"))


def scatter_errors(flux):
    """Per-wavelength flux error from the scatter of its light curve.

    `~jwst_soss_custom.lightcurves.precision.point_to_point_scatter` along
    time: white noise of the light curve, untouched by the transit and slow
    trends (they barely change from one integration to the next).

    Parameters
    ----------
    flux : ndarray (nints, nwave)

    Returns
    -------
    ndarray (nwave,)
        NaN where fewer than 3 consecutive pairs are finite.
    """
    flux = np.asarray(flux, dtype=np.float64)
    sigma = np.asarray(point_to_point_scatter(flux, axis=0), dtype=np.float64)
    sigma[np.sum(np.isfinite(np.diff(flux, axis=0)), axis=0) < 3] = np.nan
    return sigma


def _from_old_layout(model, name):
    """A `TSOMultiSpecModel` from the older one-spectrum-per-integration layout."""
    from jwst.datamodels.utils.tso_multispec import make_tso_specmodel

    by_order = {}
    for index, spec in enumerate(model.spec):
        order = 1 if spec.spectral_order is None else int(spec.spectral_order)
        by_order.setdefault(order, []).append((index, spec))
    times = {}
    if getattr(model, "int_times", None) is not None and len(model.int_times):
        rows = np.asarray(model.int_times)
        times = {int(r["integration_number"]): (r["int_mid_MJD_UTC"], r["int_mid_BJD_TDB"])
                 for r in rows}
    output = datamodels.TSOMultiSpecModel()
    output.update(model, only="PRIMARY")
    output.meta.filename = model.meta.filename
    for order, specs in sorted(by_order.items()):
        # Integration numbers from the spectra, else their order in the file.
        numbers = [getattr(s, "int_num", None) or k + 1 for k, (_, s) in enumerate(specs)]
        tso = make_tso_specmodel([s for _, s in specs])
        table = tso.spec_table
        table["INT_NUM"] = numbers
        for column, attribute in _OLD_TIMES:
            values = [getattr(s, attribute, None) for _, s in specs]
            if all(v is not None for v in values):
                table[column] = values
            elif column in ("MJD-AVG", "TDB-MID") and times:
                pick = 0 if column == "MJD-AVG" else 1
                table[column] = [times.get(n, (np.nan, np.nan))[pick] for n in numbers]
        tso.spectral_order = order
        tso.name = getattr(specs[0][1], "name", None)
        output.spec.append(tso)
    if getattr(model, "int_times", None) is not None:
        output.int_times = model.int_times
    log.info("%s: older x1dints layout (%d spectra) read as %d order(s) of %d integrations.",
             name, len(model.spec), len(by_order), len(output.spec[0].spec_table))
    return output


def _has_errors(spec):
    """Whether a spectrum carries any finite, positive flux error."""
    error = np.asarray(spec.spec_table["FLUX_ERROR"], dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return bool(np.any(np.isfinite(error) & (error > 0)))


def as_x1dints(model, name, consumer):
    """An x1dints product in the layout Stage 3 reads, and what was done to it.

    Parameters
    ----------
    model : `~stdatamodels.jwst.datamodels.JwstDataModel`
        The input (never changed: a new model is returned when anything
        needs changing).
    name : str
        Its name in messages.
    consumer : str
        Who reads it, for messages.

    Returns
    -------
    `~stdatamodels.jwst.datamodels.TSOMultiSpecModel`
        ``model`` itself, or a new model: older layout converted, spectral
        order 1 given to spectra without one, flux errors estimated where
        the product has none (recorded as `INPUT_NOTES_ATTRIBUTE`).

    Raises
    ------
    SossInputError
        Not a spectral time series of a supported mode, or no spectra.
    """
    is_multi = isinstance(model, datamodels.MultiSpecModel)  # the older layout
    if not isinstance(model, (datamodels.TSOMultiSpecModel, datamodels.MultiSpecModel)) or \
            len(model.spec) == 0:
        raise SossInputError(
            f"{name} is a {type(model).__name__} without spectra; {consumer} needs an x1dints "
            "product (TSOMultiSpecModel or the older MultiSpecModel with spectra).")
    exp_type = model.meta.exposure.type
    if exp_type not in TSO_MODES:
        raise SossInputError(
            f"{name}: EXP_TYPE is {exp_type!r}; {consumer} reads time series of "
            f"{', '.join(TSO_MODES)} (x1dints from soss_spec2 or the official calwebb_spec2).")
    out = model
    if is_multi:
        out = _from_old_layout(model, name)
    if any(spec.spectral_order is None for spec in out.spec):
        out = out.copy() if out is model else out
        for spec in out.spec:
            if spec.spectral_order is None:
                spec.spectral_order = 1
    without = [k for k, spec in enumerate(out.spec) if not _has_errors(spec)]
    if without and out is model:
        out = model.copy()
    notes = {}
    for spec in (out.spec[k] for k in without):
        table = spec.spec_table
        sigma = scatter_errors(table["FLUX"])
        table["FLUX_ERROR"] = np.broadcast_to(sigma, np.shape(table["FLUX"]))
        order = int(spec.spectral_order)
        notes[f"flux_error_order_{order}"] = (
            "estimated: the product has no flux errors; 1.4826 MAD of the differences "
            "between consecutive integrations / sqrt(2), per wavelength")
        log.warning("%s: order %d has no flux errors; estimated from each wavelength's "
                    "scatter between consecutive integrations (labelled in the tables).",
                    name, order)
    if notes:
        setattr(out, INPUT_NOTES_ATTRIBUTE, {**getattr(out, INPUT_NOTES_ATTRIBUTE, {}), **notes})
    return out


def default_wave_ranges(model):
    """Each order's summed wavelength range for the model's mode (micron).

    Parameters
    ----------
    model : `~stdatamodels.jwst.datamodels.TSOMultiSpecModel`
        As `as_x1dints` returns it.

    Returns
    -------
    dict of int to (float, float)
        The mode's ranges, or, for modes without fixed ones, the span of the
        wavelengths where the median spectrum is finite and positive.
    """
    mode = TSO_MODES.get(model.meta.exposure.type, TSO_MODES["NIS_SOSS"])
    if mode.wave_ranges is not None:
        return dict(mode.wave_ranges)
    ranges = {}
    for spec in model.spec:
        wave = np.atleast_2d(np.asarray(spec.spec_table["WAVELENGTH"], dtype=np.float64))[0]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
            median = np.nanmedian(np.asarray(spec.spec_table["FLUX"], dtype=np.float64), axis=0)
        good = np.isfinite(wave) & np.isfinite(median) & (median > 0)
        if good.any():
            ranges[int(spec.spectral_order)] = (float(wave[good].min()), float(wave[good].max()))
    return ranges
