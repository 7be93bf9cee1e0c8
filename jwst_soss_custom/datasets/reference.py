"""Loaders for the packaged calibration products the simulator draws from.

The files live in ``jwst_soss_custom/data/`` and were derived from real SOSS
data by ``tools/calibrate.py`` (origin and licence of each in
``jwst_soss_custom/data/README.md``). Every loader caches the file and returns
copies (or read-only arrays) so callers cannot corrupt the cache.
"""

import functools
from dataclasses import dataclass

import numpy as np
from astropy.table import Table

from jwst_soss_custom._base.data import (
    WASP39_SPECTRUM_FILE,
    data_path,
    load_throughput,
    read_columns,
)
from jwst_soss_custom.references import BACKGROUND_FILE

__all__ = [
    "data_path",
    "default_background_template",
    "CrossDispersionProfile",
    "load_profile",
    "load_throughput",
    "load_stellar_spectrum",
    "load_order0_stamps",
    "load_depth_spectrum",
    "BACKGROUND_FILE",
    "DEPTH_SPECTRUM_FILE",
]

PROFILE_FILE = "soss_profile_core.ecsv"
WIDTH_FILE = "soss_profile_width.ecsv"
SPECTRUM_FILE = "wasp39_stellar_spectrum.ecsv"
ORDER0_FILE = "soss_order0_stamps.npz"
#: The published WASP-39b transmission spectrum used as the injected depths
#: (Feinstein et al. 2023, supreme-SPOON reduction by M. Radica).
DEPTH_SPECTRUM_FILE = WASP39_SPECTRUM_FILE


def _readonly(array):
    array.setflags(write=False)
    return array


@functools.lru_cache(maxsize=1)
def _background_template():
    with np.load(data_path(BACKGROUND_FILE)) as npz:
        return _readonly(np.asarray(npz["template"], dtype=np.float32))


def default_background_template():
    """The packaged SUBSTRIP256 zodiacal background template (256 x 2048, DN/s).

    Built from the STScI SOSS SUBSTRIP96 background model (its column profile
    and step) extended over all 256 rows with the step tilt and vertical
    structure measured in trace-free regions of the real WASP-39 frame; see
    ``docs/simulator.md``. Its level is that of the STScI model (rows 10-105
    agree with it); the WASP-39 frame is 0.88 times it. Reference pixels
    (top 4 rows, 4 columns each side) are 0.

    Returns
    -------
    ndarray
        A writable float32 copy, shape (256, 2048).
    """
    return _background_template().copy()


def _half_max_width(x, y):
    """Full width at half maximum of a sampled, single-maximum-envelope curve."""
    peak = np.max(y)
    above = np.flatnonzero(y > 0.5 * peak)
    i0, i1 = above[0], above[-1]
    left = np.interp(0.5 * peak, [y[i0 - 1], y[i0]], [x[i0 - 1], x[i0]])
    right = np.interp(0.5 * peak, [y[i1 + 1], y[i1]], [x[i1 + 1], x[i1]])
    return float(right - left)


@dataclass(frozen=True)
class CrossDispersionProfile:
    """The SOSS cross-dispersion profile: effective (pixel-integrated) cores and a halo.

    A core is the value of a pixel whose centre lies ``u`` pixels from the
    trace centre, at the reference width ``fwhm_ref``, per unit column flux;
    it already includes the pixel response, so evaluating it at
    ``(row - y_trace)`` renders any sub-pixel trace position correctly.
    Cores measured at a few wavelengths are interpolated linearly in
    wavelength (the horns sharpen towards the red). At other wavelengths
    the profile is stretched by ``fwhm(lambda) / fwhm_ref`` and, where the
    trace is tilted, by ``1 / cos(tilt)`` along the column. The halo
    ``a / (1 + (r / r0) ** p)`` (per unit column flux, ``r`` in pixels from
    the centre) holds the faint extended wings.

    Attributes
    ----------
    u : ndarray
        Offset grid (pixels at the reference width); each core's centroid
        is at ``u = 0`` (the trace position).
    core : ndarray
        (n_cores, n_u) core values, each integrating to 1 over ``u``.
    core_wavelength : ndarray
        Wavelength (micron) of each core, increasing.
    fwhm_ref : float
        FWHM of the cores (pixels).
    width_wavelength, width_fwhm : ndarray
        Perpendicular FWHM (pixels) as a function of wavelength (micron).
    halo_amplitude, halo_r0, halo_power : float
        Halo parameters.
    """

    u: np.ndarray
    core: np.ndarray
    core_wavelength: np.ndarray
    fwhm_ref: float
    width_wavelength: np.ndarray
    width_fwhm: np.ndarray
    halo_amplitude: float
    halo_r0: float
    halo_power: float

    @property
    def u_max(self):
        """Half extent of the core table (reference pixels)."""
        return float(np.max(np.abs(self.u)))

    def core_values(self, u, wavelength):
        """Core values at offsets ``u`` (..., ncols) for per-column ``wavelength`` (ncols,)."""
        cores = np.atleast_2d(self.core)
        if cores.shape[0] == 1:
            return np.interp(u, self.u, cores[0], left=0.0, right=0.0)
        cw = np.asarray(self.core_wavelength, dtype=float)
        wl = np.clip(wavelength, cw[0], cw[-1])
        k = np.clip(np.searchsorted(cw, wl, side="right") - 1, 0, cw.size - 2)
        frac = (wl - cw[k]) / (cw[k + 1] - cw[k])
        out = np.zeros(np.shape(u))
        for j in range(cw.size):
            weight = np.where(k == j, 1.0 - frac, 0.0) + np.where(k + 1 == j, frac, 0.0)
            if np.any(weight):
                out += np.interp(u, self.u, cores[j], left=0.0, right=0.0) * weight
        return out

    def fwhm_along_column(self, wavelength, slope):
        """FWHM (pixels, along the column) of the rendered core for each column.

        The FWHM of the effective core at the column's wavelength
        (interpolated between the cores), times the stretch.
        """
        widths = [_half_max_width(self.u, c) for c in np.atleast_2d(self.core)]
        core_fwhm = np.interp(wavelength, np.atleast_1d(self.core_wavelength), widths)
        return core_fwhm * self.stretch(wavelength, slope)

    def fwhm(self, wavelength):
        """Perpendicular FWHM (pixels) at ``wavelength`` (micron), constant beyond the table."""
        return np.interp(wavelength, self.width_wavelength, self.width_fwhm)

    def stretch(self, wavelength, slope):
        """Stretch of the profile along a column, for a trace of ``slope`` dy/dx."""
        return self.fwhm(wavelength) / self.fwhm_ref * np.sqrt(1.0 + np.asarray(slope) ** 2)

    def halo(self, r):
        """Halo per unit column flux at distance ``r`` (pixels) from the centre."""
        r = np.abs(r)
        return self.halo_amplitude / (1.0 + (r / self.halo_r0) ** self.halo_power)

    @property
    def halo_fraction(self):
        """Fraction of a column's flux in the halo (within +-256 rows)."""
        r = np.arange(-256, 257, dtype=float)
        return float(self.halo(r).sum())


@functools.lru_cache(maxsize=1)
def load_profile():
    """The packaged cross-dispersion profile (`CrossDispersionProfile`)."""
    core = Table.read(data_path(PROFILE_FILE), format="ascii.ecsv")
    width = read_columns(data_path(WIDTH_FILE))
    meta = core.meta
    names = sorted((c for c in core.colnames if c.startswith("core_")), key=lambda c: int(c[5:]))
    return CrossDispersionProfile(
        u=_readonly(np.asarray(core["u"], dtype=float)),
        core=_readonly(np.vstack([np.asarray(core[c], dtype=float) for c in names])),
        core_wavelength=_readonly(np.asarray(meta["core_wavelength"], dtype=float)),
        fwhm_ref=float(meta["fwhm_ref"]),
        width_wavelength=width["wavelength"],
        width_fwhm=width["fwhm"],
        halo_amplitude=float(meta["halo_amplitude"]),
        halo_r0=float(meta["halo_r0"]),
        halo_power=float(meta["halo_power"]),
    )


@functools.lru_cache(maxsize=1)
def load_stellar_spectrum():
    """WASP-39 continuum as seen by SOSS before the order throughputs.

    Returns
    -------
    wavelength, flux : ndarray
        Wavelength (micron) and flux density (DN/s per micron of
        wavelength, divided by the order throughput) measured on the real
        frame.
    """
    table = read_columns(data_path(SPECTRUM_FILE))
    return table["wavelength"], table["flux"]


@functools.lru_cache(maxsize=1)
def load_order0_stamps():
    """Field-star order-0 cut-outs from the real F277W frame, scaled to CLEAR.

    Returns
    -------
    dict
        ``stamps`` (n, ny, nx) float32 DN/s above background, ``x``, ``y``
        (detector position of each stamp's centre pixel in the real frame).
    """
    with np.load(data_path(ORDER0_FILE)) as npz:
        return {key: _readonly(np.asarray(npz[key])) for key in npz.files}


@functools.lru_cache(maxsize=1)
def load_depth_spectrum():
    """The published WASP-39b NIRISS transmission spectrum (both orders).

    Returns
    -------
    wavelength, depth : ndarray
        Sorted wavelengths (micron) and transit depths (fraction, not ppm),
        bins with quality flag 0 only.
    """
    table = Table.read(data_path(DEPTH_SPECTRUM_FILE), format="ascii.csv", comment="#")
    good = np.asarray(table["quality"]) == 0
    wave = np.asarray(table["wave"], dtype=float)[good]
    depth = np.asarray(table["dppm"], dtype=float)[good] * 1e-6
    order = np.argsort(wave)
    return _readonly(wave[order]), _readonly(depth[order])
