"""Integration times and the wavelength-dependent transit of WASP-39b.

Times follow the JWST ``int_times`` convention: MJD in UTC, and barycentric
dynamical times expressed as MJD (BJD_TDB - 2400000.5). The light curves are
batman quadratic-limb-darkening models, one per detector column and order,
with Rp/R* from the published WASP-39b NIRISS spectrum and limb darkening
from a smooth law in wavelength.
"""

import logging

import numpy as np
from astropy import constants as const
from astropy import units as u
from astropy.coordinates import get_body_barycentric
from astropy.time import Time
from scipy import ndimage

from jwst_soss_custom.datasets import reference

log = logging.getLogger(__name__)

__all__ = [
    "TARGET_RA",
    "TARGET_DEC",
    "integration_times",
    "limb_darkening",
    "depth_spectrum",
    "transit_parameters",
    "light_curves",
]

#: WASP-39 (ICRS, degrees).
TARGET_RA = 217.326645
TARGET_DEC = -3.444501


def integration_times(config):
    """Start, mid and end of every integration in MJD (UTC) and BJD_TDB (as MJD).

    Integration ``i`` starts ``i x cadence`` after the exposure start, where
    the cadence is ``(ngroups + 1) x frame_time`` (one reset frame between
    integrations), and lasts ``ngroups x frame_time``. BJD_TDB is TDB plus
    the Roemer delay of the geocentre towards WASP-39 (JWST is within 5
    light-seconds of it), from astropy's built-in solar-system ephemeris,
    so no download or Earth-orientation table is needed.

    Parameters
    ----------
    config : SimConfig

    Returns
    -------
    dict of str to ndarray
        ``integration_number`` (1-based) and ``int_{start,mid,end}_MJD_UTC``
        and ``int_{start,mid,end}_BJD_TDB``.
    """
    n = np.arange(config.nints)
    start0 = Time(config.start_time, scale="utc").mjd
    offsets = {
        "start": n * config.cadence,
        "mid": n * config.cadence + 0.5 * config.integration_time,
        "end": n * config.cadence + config.integration_time,
    }
    out = {"integration_number": (n + 1).astype(np.int32)}
    for key, seconds in offsets.items():
        utc = Time(start0 + seconds / 86400.0, format="mjd", scale="utc")
        out[f"int_{key}_MJD_UTC"] = utc.mjd
        out[f"int_{key}_BJD_TDB"] = _bjd_tdb(utc)
    return out


def _bjd_tdb(utc):
    """Barycentric dynamical time (as MJD) of light from WASP-39 reaching the geocentre."""
    tdb = utc.tdb
    earth = get_body_barycentric("earth", tdb, ephemeris="builtin")
    ra, dec = np.radians(TARGET_RA), np.radians(TARGET_DEC)
    toward = np.array([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)])
    delay = earth.xyz.to_value(u.m).T @ toward / const.c.to_value(u.m / u.s)
    return tdb.mjd + delay / 86400.0


def limb_darkening(wavelength):
    """Quadratic limb-darkening coefficients (u1, u2) at ``wavelength`` (micron).

    A smooth law resembling model-atmosphere coefficients for a ~5400 K
    dwarf: u1 falls from about 0.48 at 0.6 micron to 0.12 at 2.8 micron,
    u2 from 0.22 to 0.19. Illustrative, not fitted to data.
    """
    wavelength = np.asarray(wavelength, dtype=float)
    u1 = 0.48 * (wavelength / 0.6) ** -0.9
    u2 = 0.22 - 0.03 * (wavelength - 0.6) / 2.2
    return u1, u2


def depth_spectrum(wavelength, smooth_bins=2.0, scale=1.0):
    """Injected transit depth (Rp/R*)^2 at ``wavelength``.

    The published WASP-39b NIRISS spectrum (quality-0 bins of both orders)
    smoothed with a Gaussian of ``smooth_bins`` bins to damp its noise,
    interpolated, and held constant beyond its ends.

    Parameters
    ----------
    wavelength : array_like
        Micron.
    smooth_bins : float
        Gaussian sigma in spectral bins.
    scale : float
        Multiplies the depths.
    """
    wave, depth = reference.load_depth_spectrum()
    smooth = ndimage.gaussian_filter1d(depth, smooth_bins, mode="nearest")
    return scale * np.interp(wavelength, wave, smooth)


def _t14(period, a_rs, inc_deg, rp):
    """Total transit duration (same unit as ``period``) of a circular orbit."""
    inc = np.radians(inc_deg)
    b = a_rs * np.cos(inc)
    arg = np.sqrt(max((1 + rp) ** 2 - b**2, 0.0)) / (a_rs * np.sin(inc))
    return period / np.pi * np.arcsin(min(arg, 1.0))


def transit_parameters(config, times, white_rp):
    """Orbit of the injected transit.

    Parameters
    ----------
    config : SimConfig
    times : dict
        Output of `integration_times`.
    white_rp : float
        Representative Rp/R* (sets the duration used to rescale the period).

    Returns
    -------
    dict
        ``t0`` (BJD_TDB as MJD), ``period`` (days), ``a_rs``, ``inc``
        (degrees), ``ecc``, ``w`` (degrees), ``t14`` (days).
    """
    first = times["int_start_BJD_TDB"][0]
    last = times["int_end_BJD_TDB"][-1]
    visit = last - first
    t0 = first + config.t0_fraction * visit
    period = config.period
    if config.transit_duration_fraction is not None:
        # Same shape (a/R*, inclination), shorter period: the transit lasts
        # the requested fraction of the visit.
        period = period * config.transit_duration_fraction * visit / _t14(
            period, config.a_rs, config.inc, white_rp
        )
    return {
        "t0": float(t0),
        "period": float(period),
        "a_rs": float(config.a_rs),
        "inc": float(config.inc),
        "ecc": 0.0,
        "w": 90.0,
        "t14": float(_t14(period, config.a_rs, config.inc, white_rp)),
    }


def light_curves(time, params, rp, u1, u2):
    """Noiseless relative flux of many columns.

    Parameters
    ----------
    time : ndarray
        Mid-integration times (same system as ``params["t0"]``).
    params : dict
        Orbit (see `transit_parameters`).
    rp, u1, u2 : ndarray
        Rp/R* and quadratic limb darkening per column.

    Returns
    -------
    ndarray
        float32 (ntime, ncolumns).
    """
    import batman

    bp = batman.TransitParams()
    bp.t0, bp.per, bp.a, bp.inc = params["t0"], params["period"], params["a_rs"], params["inc"]
    bp.ecc, bp.w, bp.limb_dark = params["ecc"], params["w"], "quadratic"
    bp.rp, bp.u = float(np.median(rp)), [float(u1[0]), float(u2[0])]
    model = batman.TransitModel(bp, np.asarray(time, dtype=float))
    out = np.empty((len(time), len(rp)), dtype=np.float32)
    # batman evaluates one (rp, u) at a time in C; the quadratic law is
    # analytic, so one model object serves every column.
    for k in range(len(rp)):
        bp.rp = float(rp[k])
        bp.u = [float(u1[k]), float(u2[k])]
        out[:, k] = model.light_curve(bp)
    return out
