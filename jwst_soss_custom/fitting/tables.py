"""Fits of the ``whtlt`` and ``speclc`` tables, and the fit products as astropy tables.

`fit_products` is the whole stage: white-light fit per order, spectroscopic
fits with the orbit fixed to the white-light solution, and the two product
tables (``fit_whitelight`` and ``transmission``, see ``docs/fitting.md``).
"""

import logging
import time as _time
from dataclasses import dataclass

import numpy as np
from astropy import units as u
from astropy.table import QTable, Table

from jwst_soss_custom import __version__
from jwst_soss_custom.fitting.fit import FitInputError, fit_light_curve
from jwst_soss_custom.fitting.posterior import McmcSettings
from jwst_soss_custom.lightcurves.events import TILT_PREFIX
from jwst_soss_custom.metadata import number_list

__all__ = [
    "FitProducts",
    "FitSettings",
    "fit_products",
    "period_from_meta",
    "white_light_curves",
    "spectroscopic_channels",
]

log = logging.getLogger(__name__)

#: Metadata keys read as the orbital period (days) when none is given.
PERIOD_KEYS = ("period", "orbital_period", "PERIOD")

#: Statistics columns shared by both products, in order.
STAT_COLUMNS = (
    "n_points", "n_outliers", "chi2_red", "beta", "error_scale", "rms_ppm", "expected_ppm",
)  # fmt: skip


@dataclass
class FitSettings:
    """Options of the fits (the ``soss_fit`` parameters, see ``docs/fitting.md``)."""

    period: float | None = None
    poly_order: int = 1
    ramp: bool = False
    use_regressors: bool = False
    clip_sigma: float = 5.0
    inflate: str = "auto"
    min_baseline: int = 10
    orbit_order: int = 1
    spec_poly_order: int = 1
    spec_limb_darkening: str = "free"
    common_mode: bool = False
    t0: float | None = None
    bootstrap: int = 100
    mcmc: bool = False
    mcmc_walkers: int = 32
    mcmc_steps: int = 2000
    mcmc_burn: int = 500
    mcmc_seed: int = 0


@dataclass
class FitProducts:
    """Product tables and the underlying fits (for plots)."""

    whitelight: QTable
    transmission: QTable | None
    white_fits: dict
    channel_fits: list


def period_from_meta(meta, period=None):
    """The period given, else one from the table metadata; error when neither."""
    if period is not None:
        return float(period)
    for key in PERIOD_KEYS:
        if key in meta and meta[key] is not None:
            return float(meta[key])
    raise FitInputError(
        "The orbital period is missing: give it in days (soss_fit --period=4.0552941, or "
        "period= in Python); the light-curve tables carry no 'period' metadata."
    )


def fitted_regressors(regressors, use_regressors):
    """The regressors a fit includes: all of them, or only the tilt-event steps.

    A tilt event's step (``tilt_<n>``, from soss_tso3) is a discontinuity no
    polynomial baseline follows, so it is fitted even when the smooth trace
    regressors are not.
    """
    if use_regressors:
        return regressors or None
    steps = {k: v for k, v in (regressors or {}).items() if k.startswith(TILT_PREFIX)}
    return steps or None


def _regressors(table, rows=None):
    out = {}
    for name in table.colnames:
        if name.startswith("regressor_"):
            values = np.asarray(table[name], dtype=float)
            out[name[len("regressor_"):]] = values if rows is None else values[rows]
    return out


def _columns(whtlt, stem):
    """``{order: column}`` of ``<stem>_order_N`` columns, or of a bare ``<stem>`` (one order)."""
    orders = {}
    for name in whtlt.colnames:
        if name.startswith(f"{stem}_order_") and "error" not in name:
            orders[int(name.rsplit("_", 1)[1])] = name
    if not orders and stem in whtlt.colnames:
        # One order: jwst drops the _order_N part; the metadata may still name it.
        named = [int(k.rsplit("_", 1)[1]) for k in whtlt.meta
                 if k.startswith("wavelength_range_order_")]  # fmt: skip
        orders[named[0] if len(named) == 1 else 1] = stem
    return orders


def _one_detector(whtlt):
    """An official NIRSpec table's columns without their detector suffix (``BJD_TDB_NRS1``).

    jwst's WhiteLightStep names the time and flux columns after the detector
    for NIRSpec (``MJD_UTC_NRS1``, ``whitelight_flux_NRS1``); with one detector
    the suffix is dropped here, with two the table is refused (each
    detector's light curve is fitted on its own).
    """
    if "BJD_TDB" in whtlt.colnames:
        return whtlt
    detectors = [n[len("BJD_TDB_"):] for n in whtlt.colnames if n.startswith("BJD_TDB_")]
    if len(detectors) > 1:
        raise FitInputError(
            f"The whtlt table holds the detectors {', '.join(detectors)}; fit each on its own "
            "(run jwst's WhiteLightStep on each detector's x1dints).")
    if not detectors:
        return whtlt
    suffix = f"_{detectors[0]}"
    table = whtlt.copy(copy_data=False)
    for name in table.colnames:
        if name.endswith(suffix):
            table.rename_column(name, name[: -len(suffix)])
    return table


def _normalised_official(flux, int_num, order):
    """Flux of an official whtlt normalised on its baseline, with errors from its scatter.

    jwst's WhiteLightStep writes fluxes and times only. The baseline is found
    in the white light as soss_tso3 finds it; the error of every point is the
    baseline's point-to-point scatter (1.4826 x MAD of first differences /
    sqrt 2, then the standard deviation of those within 5 of it: insensitive
    to the transit and to trends).
    """
    from jwst_soss_custom.lightcurves.baseline import resolve_baseline

    # jwst sums an integration without finite flux to 0: no measurement.
    flux = np.where(flux > 0, flux, np.nan)
    base = resolve_baseline(int_num, flux).mask
    flux = flux / np.nanmedian(flux[base])
    step = np.diff(flux[base])
    step = step[np.isfinite(step)]
    # The standard deviation (efficient) of the differences within 5 robust
    # sigma (an outlier or the odd ingress point does not count).
    robust = 1.4826 * np.median(np.abs(step - np.median(step)))
    sigma = np.std(step[np.abs(step - np.median(step)) <= 5 * robust]) / np.sqrt(2)
    log.warning(
        "White light of order %d has no errors (a table from jwst's WhiteLightStep): "
        "normalised by the median of %d baseline integrations found in it, errors estimated "
        "from their point-to-point scatter: %.0f ppm per integration.",
        order, int(base.sum()), 1e6 * sigma,
    )
    return flux, np.full(flux.size, sigma)


def white_light_curves(whtlt):
    """Normalised white light per order from a ``whtlt`` table.

    A table of soss_tso3 / soss_lightcurves carries normalised fluxes and
    their errors. One written by jwst's ``WhiteLightStep`` (``BJD_TDB`` and
    ``whitelight_flux[_order_N]`` only) is normalised on the baseline found in
    it and given errors from its point-to-point scatter
    (``errors_estimated``).

    Returns
    -------
    dict of int to dict
        ``time`` (BJD_TDB), ``flux``, ``error``, ``int_num``, ``regressors``,
        ``errors_estimated``.
    """
    whtlt = _one_detector(whtlt)
    orders = _columns(whtlt, "whitelight_flux_norm")
    official = {} if orders else _columns(whtlt, "whitelight_flux")
    if not orders and not official:
        raise FitInputError(
            "No whitelight_flux_norm[_order_N] or whitelight_flux[_order_N] column: give a "
            "whtlt table written by soss_tso3 / soss_lightcurves or by jwst's WhiteLightStep."
        )
    if "BJD_TDB" not in whtlt.colnames:
        raise FitInputError(
            f"The whtlt table has no BJD_TDB column (columns: {', '.join(whtlt.colnames)}); "
            "the transit is fitted in BJD_TDB - 2400000.5."
        )
    int_num = np.asarray(whtlt["int_num"]) if "int_num" in whtlt.colnames else None
    out = {}
    for order, column in sorted((orders or official).items()):
        flux = np.asarray(getattr(whtlt[column], "value", whtlt[column]), dtype=float)
        if orders:
            error = np.asarray(whtlt[column.replace("flux_norm", "flux_norm_error")], float)
        else:
            numbers = np.arange(1, flux.size + 1) if int_num is None else int_num
            flux, error = _normalised_official(flux, numbers, order)
        time = np.asarray(getattr(whtlt["BJD_TDB"], "value", whtlt["BJD_TDB"]), float)
        # Integrations soss_tso3 (or jwst) found without data or a time: not points.
        keep = np.isfinite(time) & np.isfinite(flux) & np.isfinite(error)
        if not keep.all():
            which = np.flatnonzero(~keep) + 1 if int_num is None else int_num[~keep]
            log.warning("White light of order %d: %d integration(s) without a finite time or "
                        "flux left out of the fit (integration numbers %s).", order,
                        int((~keep).sum()), number_list(which))
        out[order] = {
            "time": time[keep],
            "flux": flux[keep],
            "error": error[keep],
            "int_num": None if int_num is None else int_num[keep],
            "regressors": {k: v[keep] for k, v in _regressors(whtlt).items()},
            "errors_estimated": not orders,
        }
    return out


def spectroscopic_channels(speclc):
    """Light curve of every (order, bin) of a ``speclc`` table, clipped and NaN points left out.

    Returns
    -------
    list of dict
        ``order``, ``bin``, ``wave_low``, ``wave_high``, ``wave_center``,
        ``time``, ``flux``, ``error``, ``int_num``, ``regressors``.
    """
    order = np.asarray(speclc["order"])
    binn = np.asarray(speclc["bin"])
    keys = np.unique(np.stack([order, binn], axis=1), axis=0)
    clipped = np.asarray(speclc["clipped"]) if "clipped" in speclc.colnames else None
    channels = []
    for o, b in keys:
        rows = np.flatnonzero((order == o) & (binn == b))
        if clipped is not None:
            rows = rows[~clipped[rows]]
        # Integrations without data (NaN, flagged by soss_spec2) are not points.
        rows = rows[np.isfinite(np.asarray(speclc["flux_norm"][rows], dtype=float))
                    & np.isfinite(np.asarray(speclc["BJD_TDB"][rows], dtype=float))]
        first = rows[0] if rows.size else np.flatnonzero((order == o) & (binn == b))[0]
        channels.append(
            {
                "order": int(o),
                "bin": int(b),
                "wave_low": float(u.Quantity(speclc["wave_low"][first], u.um).value),
                "wave_high": float(u.Quantity(speclc["wave_high"][first], u.um).value),
                "wave_center": float(u.Quantity(speclc["wave_center"][first], u.um).value),
                "time": np.asarray(speclc["BJD_TDB"][rows], dtype=float),
                "flux": np.asarray(speclc["flux_norm"][rows], dtype=float),
                "error": np.asarray(speclc["flux_norm_error"][rows], dtype=float),
                "int_num": np.asarray(speclc["int_num"][rows]),
                "regressors": _regressors(speclc, rows),
            }
        )
    return channels


def _fit_white(curves, settings, period):
    mcmc = None
    if settings.mcmc:
        mcmc = McmcSettings(settings.mcmc_walkers, settings.mcmc_steps, settings.mcmc_burn,
                            settings.mcmc_seed)  # fmt: skip
    fits = {}
    for order, curve in curves.items():
        initial = None if settings.t0 is None else {"t0": settings.t0}
        what = f"white light of order {order}"
        result = fit_light_curve(
            curve["time"], curve["flux"], curve["error"], period,
            initial=initial, poly_order=settings.poly_order, ramp=settings.ramp,
            regressors=fitted_regressors(curve["regressors"], settings.use_regressors),
            clip_sigma=settings.clip_sigma, inflate=settings.inflate,
            min_baseline=settings.min_baseline, bootstrap=settings.bootstrap, mcmc=mcmc,
            seed=order, what=what,
        )  # fmt: skip
        s = result.stats
        log.info(
            "%s: t0=%.5f±%.5f rp=%.5f±%.5f a/R*=%.2f±%.2f b=%.3f±%.3f; rms %.0f ppm "
            "(expected %.0f), chi2_red %.2f, beta %.2f, errors scaled x%.2f (%s)",
            what, result.values["t0"], result.errors.get("t0", 0), result.values["rp"],
            result.errors.get("rp", 0), result.values["a_rs"], result.errors.get("a_rs", 0),
            result.values["b"], result.errors.get("b", 0), s["rms_ppm"], s["expected_ppm"],
            s["chi2_red"], s["beta"], s["error_scale"], s["inflated"],
        )  # fmt: skip
        if s["inflated"] != "no":
            log.warning("%s: uncertainties inflated x%.2f: %s", what, s["error_scale"],
                        s["inflated"])  # fmt: skip
        fits[order] = result
    return fits


def whitelight_table(fits, period, meta):
    """The ``fit_whitelight`` table: one row per order and parameter."""
    rows = []
    for order, result in fits.items():
        for name, value in result.values.items():
            free = name in result.free
            rows.append((order, name, value, result.errors.get(name, 0.0),
                         result.errors_raw.get(name, 0.0),
                         result.errors_bootstrap.get(name, np.nan),
                         result.errors_mcmc.get(name, np.nan), free))  # fmt: skip
        for name, (value, err) in result.derived().items():
            rows.append((order, name, value, err, np.nan, np.nan, np.nan, False))
    table = QTable(
        rows=rows,
        names=("order", "parameter", "value", "error", "error_covariance", "error_bootstrap",
               "error_mcmc", "free"),
    )  # fmt: skip
    table.meta.update({k: meta[k] for k in ("target_name", "instrument", "exp_type") if k in meta})
    table.meta["period"] = float(period)
    table.meta["time_system"] = "BJD_TDB - 2400000.5 (days), as the whtlt table"
    for order, result in fits.items():
        table.meta[f"fit_statistics_order_{order}"] = _stats_meta(result.stats)
    table.meta["software"] = f"jwst_soss_custom {__version__}"
    return table


def _stats_meta(stats):
    return {k: (float(v) if isinstance(v, (float, np.floating)) else v) for k, v in stats.items()}


def _fit_channels(channels, white_fits, settings, period):
    orbit_fit = white_fits.get(settings.orbit_order) or next(iter(white_fits.values()))
    orbit = {k: orbit_fit.values[k] for k in ("t0", "a_rs", "b")}
    results = []
    for ch in channels:
        fixed = dict(orbit)
        white = white_fits.get(ch["order"], orbit_fit)
        if settings.spec_limb_darkening == "white":
            fixed.update(q1=white.values["q1"], q2=white.values["q2"])
        flux, error = ch["flux"], ch["error"]
        if settings.common_mode:
            flux, error = _divide_common_mode(ch, white)
        what = f"order {ch['order']} bin {ch['bin']}"
        try:
            result = fit_light_curve(
                ch["time"], flux, error, period, fixed=fixed,
                initial={"rp": white.values["rp"], "q1": white.values["q1"],
                         "q2": white.values["q2"]},
                poly_order=settings.spec_poly_order, ramp=False,
                regressors=fitted_regressors(ch["regressors"], settings.use_regressors),
                clip_sigma=settings.clip_sigma, inflate=settings.inflate,
                min_baseline=settings.min_baseline, what=what,
            )  # fmt: skip
        except FitInputError as exc:
            log.warning("%s not fitted: %s", what, exc)
            result = exc
        results.append((ch, result))
    return results


def _divide_common_mode(channel, white):
    """Channel flux and error divided by the white light's data / model, matched by int_num."""
    if channel["int_num"] is None or white.time is None:
        raise FitInputError("common_mode needs int_num in both tables.")
    ratio = white.flux / white.model
    # White-light points left out as outliers keep a ratio of 1.
    ratio = np.where(white.used, ratio, 1.0)
    lookup = dict(zip(np.asarray(white.int_num), ratio, strict=True))
    factor = np.array([lookup.get(int(i), np.nan) for i in channel["int_num"]])
    if not np.all(np.isfinite(factor)):
        raise FitInputError(
            f"common_mode: {np.sum(~np.isfinite(factor))} integrations of the channel are "
            "not in the white light."
        )
    return channel["flux"] / factor, channel["error"] / factor


def transmission_table(channel_results, meta):
    """The ``transmission`` table: one row per spectroscopic channel."""
    cols = {k: [] for k in (
        "order", "bin", "wave_low", "wave_high", "wave_center", "depth_ppm",
        "depth_error_ppm", "rp", "rp_error", "u1", "u2", *STAT_COLUMNS, "quality",
    )}  # fmt: skip
    for ch, result in channel_results:
        for k in ("order", "bin", "wave_low", "wave_high", "wave_center"):
            cols[k].append(ch[k])
        if isinstance(result, Exception):
            for k in ("depth_ppm", "depth_error_ppm", "rp", "rp_error", "u1", "u2", "chi2_red",
                      "beta", "error_scale", "rms_ppm", "expected_ppm"):  # fmt: skip
                cols[k].append(np.nan)
            cols["n_points"].append(ch["time"].size)
            cols["n_outliers"].append(0)
            cols["quality"].append(f"failed: {result}")
            continue
        depth, depth_err = result.derived()["depth_ppm"]
        u1, u2 = result.derived()["u1"][0], result.derived()["u2"][0]
        cols["depth_ppm"].append(depth)
        cols["depth_error_ppm"].append(depth_err)
        cols["rp"].append(result.values["rp"])
        cols["rp_error"].append(result.errors["rp"])
        cols["u1"].append(u1)
        cols["u2"].append(u2)
        for k in STAT_COLUMNS:
            cols[k].append(result.stats[k])
        cols["quality"].append(_quality(result.stats))
    table = QTable(cols)
    for k in ("wave_low", "wave_high", "wave_center"):
        table[k].unit = u.um
    table.meta.update({k: meta[k] for k in ("target_name", "instrument", "exp_type") if k in meta})
    table.meta["software"] = f"jwst_soss_custom {__version__}"
    return table


def _quality(stats):
    flags = []
    if not stats["converged"]:
        flags.append("not converged")
    if stats["inflated"] != "no":
        flags.append(f"errors inflated x{stats['error_scale']:.2f} ({stats['inflated']})")
    if stats["at_bound"] not in ("none", "q1", "q2", "q1,q2"):
        flags.append(f"at bound: {stats['at_bound']}")
    named = [n for n in stats.get("unconstrained", "none").split(",")
             if n not in ("none", "q1", "q2")]
    if named:
        flags.append(f"no error (unconstrained): {','.join(named)}")
    return "; ".join(flags) if flags else "ok"


def fit_products(whtlt, speclc=None, settings=None, **kwargs):
    """White-light and spectroscopic fits of light-curve tables.

    Parameters
    ----------
    whtlt : `~astropy.table.Table`
        The ``whtlt`` table.
    speclc : `~astropy.table.Table`, optional
        The ``speclc`` table; without it only the white light is fitted.
    settings : FitSettings, optional
    **kwargs
        `FitSettings` fields overriding ``settings``.

    Returns
    -------
    FitProducts
    """
    settings = settings or FitSettings()
    for key, value in kwargs.items():
        if not hasattr(settings, key):
            raise TypeError(f"Unknown fit setting {key!r}.")
        setattr(settings, key, value)
    if settings.spec_limb_darkening not in ("free", "white"):
        raise ValueError(
            f"spec_limb_darkening={settings.spec_limb_darkening!r}: choose 'free' or 'white'."
        )
    period = period_from_meta(whtlt.meta, settings.period)
    clock = _time.perf_counter()
    curves = white_light_curves(whtlt)
    white_fits = _fit_white(curves, settings, period)
    for order, curve in curves.items():
        white_fits[order].int_num = curve["int_num"]
    whitelight = whitelight_table(white_fits, period, whtlt.meta)
    for order, curve in curves.items():
        whitelight.meta[f"white_light_errors_order_{order}"] = (
            "estimated from the baseline's point-to-point scatter (the whtlt had none)"
            if curve["errors_estimated"] else "from the whtlt")
    log.info("White-light fits done in %.1f s", _time.perf_counter() - clock)
    transmission, channel_fits = None, []
    if speclc is not None:
        clock = _time.perf_counter()
        channel_fits = _fit_channels(spectroscopic_channels(Table(speclc)), white_fits,
                                     settings, period)  # fmt: skip
        transmission = transmission_table(channel_fits, whtlt.meta)
        transmission.meta["period"] = float(period)
        transmission.meta["orbit"] = {
            k: float(white_fits.get(settings.orbit_order, next(iter(white_fits.values())))
                     .values[k]) for k in ("t0", "a_rs", "b")
        }  # fmt: skip
        transmission.meta["orbit_from_order"] = int(settings.orbit_order)
        transmission.meta["limb_darkening"] = settings.spec_limb_darkening
        transmission.meta["common_mode"] = bool(settings.common_mode)
        nfail = sum(isinstance(r, Exception) for _, r in channel_fits)
        ninfl = int(np.sum(np.asarray(transmission["error_scale"]) > 1))
        log.info(
            "%d spectroscopic channels fitted in %.1f s (%d failed, %d with inflated errors)",
            len(channel_fits), _time.perf_counter() - clock, nfail, ninfl,
        )  # fmt: skip
    return FitProducts(whitelight, transmission, white_fits, channel_fits)
