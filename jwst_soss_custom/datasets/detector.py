"""Group-level model of the NIRISS HAWAII-2RG detector reading SUBSTRIP256 (or 96).

The simulator's ``uncal`` and ``rateints`` levels build raw ramps here, read
by read, with the physics the slope-level mode leaves out:

* charge accumulates up the ramp: every frame adds Poisson electrons of the
  pixel's photo-current and dark current, so the noise of successive groups
  is correlated as in a real ramp;
* each read adds white read noise and the correlated noise of the readout
  electronics, sampled as one continuous time series at the 10 us pixel
  clock in the real readout order (SUBSTRIP256 is read through one output:
  the fast read runs along DMS columns from row 255 down to 0, one column
  after the other from x = 2047 down to 0, with 12 pixel times of overhead
  per column), so 1/f noise differs between rows of a column and between
  groups. Its components follow the nghxrg model of HxRG noise (Rauscher
  2015): pink noise (correlated + uncorrelated, identical with one output),
  alternating-column noise (ACN: a pink series whose sign alternates with the
  fast-read pixel parity) and a pedestal offset per frame;
* reset (kTC) noise per pixel and integration on top of the superbias;
* non-linearity (an exactly invertible quadratic response), hard saturation
  at the pixel's full well and the 16-bit converter;
* cosmic rays arriving at a random time up the ramp (a jump between two
  groups) with charge shared by the neighbours;
* reference pixels (top 4 rows, 4 columns each side) that see bias, kTC and
  readout noise but no light.

Everything is pure numpy; `DetectorMaps` holds the per-pixel properties that
the CRDS-format references (`jwst_soss_custom.datasets.crds_refs`) describe.
"""

import logging
from dataclasses import dataclass

import numpy as np
from scipy import fft

log = logging.getLogger(__name__)

__all__ = [
    "PIXEL_TIME",
    "COLUMN_OVERHEAD",
    "readout_clock",
    "frame_clocks",
    "CorrelatedNoise",
    "DetectorMaps",
    "make_detector_maps",
    "draw_cosmic_ray_events",
    "cosmic_ray_charge",
    "integration_ramp",
    "CR_SHARES",
]

#: Pixel clock of the SIDECAR ASIC (s per pixel read).
PIXEL_TIME = 10e-6
#: Pixel times of overhead per fast-read line (one DMS column in SOSS).
COLUMN_OVERHEAD = 12


def frame_clocks(frame_time):
    """Pixel clocks in one frame (every line's read plus the frame overhead).

    Rounded to a multiple of `CorrelatedNoise.DECIMATION` (at most 80 us off).
    """
    n = int(round(frame_time / PIXEL_TIME / CorrelatedNoise.DECIMATION))
    return n * CorrelatedNoise.DECIMATION


def readout_clock(ny, nx):
    """Clock index of every pixel's read within a frame, in readout order.

    SOSS subarrays are read through one output with ``FASTAXIS = -2`` and
    ``SLOWAXIS = -1`` in DMS orientation: the fast read runs along a column
    from the last row to the first, and columns follow from the last to the
    first, each preceded by `COLUMN_OVERHEAD` idle pixel times.

    Parameters
    ----------
    ny, nx : int
        Subarray shape (rows, columns).

    Returns
    -------
    ndarray of int64
        (ny, nx) pixel-clock index within the frame.
    """
    line = ny + COLUMN_OVERHEAD
    y = np.arange(ny)[:, None]
    x = np.arange(nx)[None, :]
    return (nx - 1 - x) * line + COLUMN_OVERHEAD + (ny - 1 - y)


class CorrelatedNoise:
    """Readout noise correlated in time: pink, alternating-column and pedestal.

    One continuous series per block of integrations is drawn by FFT (on twice
    the needed length, so the circular construction does not correlate the
    block's ends), and each read frame samples it at its pixels' clock
    times. Between blocks the series restarts, so correlations on time
    scales beyond a block are lost.

    The 1/f spectrum is drawn up to ``f_c = 1 / (2 DECIMATION x 10 us)``
    (3.1 kHz: 16 pixel times per sample) and interpolated linearly to the
    pixel clock; its part between ``f_c`` and the pixel clock's Nyquist
    frequency (50 kHz), uncorrelated beyond 16 pixels, is returned as
    `white_variance` for the caller to add to each read's white noise. This
    keeps the FFT 16 times shorter at the cost of the correlation of that
    high band within 16 pixels.

    Parameters
    ----------
    sigma_pink : float
        Standard deviation (e-) of the pink noise in the band from
        1 / (ngroups frame times) to 50 kHz. The correlated and uncorrelated
        pink noise of nghxrg add in quadrature here, as SOSS subarrays are
        read through a single output.
    sigma_acn : float
        Same, for the alternating-column noise.
    sigma_pedestal : float
        Standard deviation (e-) of a random offset per frame.
    frame_time : float
        Seconds per frame.
    ngroups : int
        Read frames per integration (one reset frame precedes them).
    shape : tuple of int
        (ny, nx) of the frame.
    """

    DECIMATION = 16

    def __init__(self, sigma_pink, sigma_acn, sigma_pedestal, frame_time, ngroups, shape):
        self.sigma_pink = float(sigma_pink)
        self.sigma_acn = float(sigma_acn)
        self.sigma_pedestal = float(sigma_pedestal)
        self.ngroups = int(ngroups)
        self.frame = frame_clocks(frame_time)
        self.per_integration = (self.ngroups + 1) * self.frame
        clock = readout_clock(*shape)
        self._lower, frac = np.divmod(clock, self.DECIMATION)
        self._frac = (frac / self.DECIMATION).astype(np.float32)
        # Sign of the pixel's parity along the fast read (the detector's columns).
        self.parity = np.broadcast_to(
            np.where(np.arange(shape[0]) % 2 == 0, 1.0, -1.0).astype(np.float32)[:, None], shape
        )
        self.band_low = 1.0 / (self.ngroups * frame_time)
        f_nyquist = 0.5 / PIXEL_TIME
        self.f_cut = f_nyquist / self.DECIMATION
        # Share of a 1/f spectrum's variance between band_low and f_cut.
        self.low_share = np.log(self.f_cut / self.band_low) / np.log(f_nyquist / self.band_low)
        self.white_variance = (1.0 - self.low_share) * (self.sigma_pink**2 + self.sigma_acn**2)

    @property
    def active(self):
        """Whether any component is non-zero."""
        return bool(self.sigma_pink or self.sigma_acn or self.sigma_pedestal)

    def _pink(self, rng, length, sigma):
        """Pink series (power ~ 1/f) sampled every DECIMATION pixel times, float32."""
        m = length // self.DECIMATION + 2
        n = fft.next_fast_len(2 * m, real=True)
        freq = np.fft.rfftfreq(n, d=self.DECIMATION * PIXEL_TIME)
        amp = np.zeros(freq.size)
        amp[1:] = freq[1:] ** -0.5
        # Variance of the series in the band band_low..f_cut for unit amplitude.
        band = freq >= self.band_low
        unit_var = 4.0 * np.sum(amp[band] ** 2) / n**2
        scale = sigma * np.sqrt(self.low_share / unit_var)
        spec = rng.standard_normal(freq.size) + 1j * rng.standard_normal(freq.size)
        spec *= amp * scale
        return fft.irfft(spec, n=n, workers=-1)[:m].astype(np.float32)

    def _sample(self, series, start):
        """Series interpolated at every pixel's read time in a frame starting at clock ``start``."""
        j = self._lower + start // self.DECIMATION
        lo = series[j]
        return lo + (series[j + 1] - lo) * self._frac

    def draw(self, rng, nints):
        """Correlated noise (e-) of every read of ``nints`` integrations.

        Returns
        -------
        ndarray
            float32 (nints, ngroups, ny, nx).
        """
        length = nints * self.per_integration
        shape = (nints, self.ngroups) + self._lower.shape
        out = np.zeros(shape, dtype=np.float32)
        if not self.active:
            return out
        pink = self._pink(rng, length, self.sigma_pink) if self.sigma_pink else None
        acn = self._pink(rng, length, self.sigma_acn) if self.sigma_acn else None
        for i in range(nints):
            for g in range(self.ngroups):
                # Frame 0 of an integration is its reset; reads follow.
                start = (i * (self.ngroups + 1) + g + 1) * self.frame
                if pink is not None:
                    out[i, g] = self._sample(pink, start)
                if acn is not None:
                    out[i, g] += self._sample(acn, start) * self.parity
        if self.sigma_pedestal:
            out += rng.normal(0.0, self.sigma_pedestal, (nints, self.ngroups, 1, 1)).astype(
                np.float32
            )
        return out


@dataclass
class DetectorMaps:
    """Per-pixel properties of the simulated detector (what the references describe).

    Attributes
    ----------
    bias : ndarray
        Superbias level (DN), float32 (ny, nx).
    gain : ndarray
        e-/DN, float32.
    read_noise : ndarray
        White noise of one read (e-), float32.
    readnoise_cds : ndarray
        Correlated-double-sampling noise (DN) a dark would show: white read
        noise and the readout's correlated noise between two successive
        frames; the READNOISE reference, as CRDS gives it.
    dark : ndarray
        Dark current (e-/s), float32; hot pixels included.
    nonlinearity : ndarray
        Coefficient ``a`` (1/DN) of the response: the true signal ``t`` (DN)
        reads as ``m`` with ``t = m + a m^2``.
    full_well : ndarray
        Charge (DN, linear) at which the pixel stops collecting.
    saturation : ndarray
        Raw level (DN, bias included) from which reads are flagged saturated:
        the SATURATION reference.
    response : ndarray
        Relative photo-response (dead pixels 0-0.1), float32.
    dq : ndarray
        uint32 DQ of the MASK reference (REFERENCE_PIXEL, HOT, DEAD, DO_NOT_USE).
    ktc : float
        Reset (kTC) noise, e- per pixel and integration.
    """

    bias: np.ndarray
    gain: np.ndarray
    read_noise: np.ndarray
    readnoise_cds: np.ndarray
    dark: np.ndarray
    nonlinearity: np.ndarray
    full_well: np.ndarray
    saturation: np.ndarray
    response: np.ndarray
    dq: np.ndarray
    ktc: float


def make_detector_maps(config, rng, reference_mask, bad_pixels, correlated_cds):
    """Draw the detector's per-pixel properties.

    Parameters
    ----------
    config : SimConfig
        ``gain``, ``read_noise_e``, ``dark_current``, ``bias_level``,
        ``ktc_noise``, ``nonlinearity``, ``full_well``.
    rng : numpy.random.Generator
    reference_mask : ndarray of bool
        Reference pixels.
    bad_pixels : BadPixels
        Hot (dark current, DN/s) and dead (response) pixels, flagged or not.
    correlated_cds : float
        Variance (e-^2) that the correlated readout noise adds to a CDS pair.

    Returns
    -------
    DetectorMaps
    """
    from stdatamodels.jwst.datamodels import dqflags

    shape = reference_mask.shape
    ny, nx = shape
    # Bias: a level per column pair (even/odd outputs of the preamp), a
    # gentle gradient along the fast read and pixel-to-pixel scatter.
    columns = rng.normal(0.0, 150.0, nx)
    rows = np.linspace(-60.0, 60.0, ny)[:, None]
    bias = config.bias_level + columns[None, :] + rows + rng.normal(0.0, 250.0, shape)
    gain = config.gain * (1.0 + 0.02 * rng.standard_normal(shape))
    read_noise = config.read_noise_e * (1.0 + 0.08 * rng.standard_normal(shape))
    read_noise = np.clip(read_noise, 0.3 * config.read_noise_e, None)
    readnoise_cds = np.sqrt(2.0 * read_noise**2 + correlated_cds) / gain
    dark = rng.gamma(4.0, config.dark_current / 4.0, shape)
    dark = dark + bad_pixels.hot_rate * config.gain  # hot pixels: DN/s -> e-/s
    dark[reference_mask] = 0.0
    nonlin = config.nonlinearity * (1.0 + 0.05 * rng.standard_normal(shape))
    full_well = config.full_well * (1.0 + 0.03 * rng.standard_normal(shape))
    # The converter clips at 65535: flag before the last reads could reach it.
    measured_well = 2.0 * full_well / (1.0 + np.sqrt(1.0 + 4.0 * nonlin * full_well))
    saturation = np.minimum(bias + 0.97 * measured_well, 65000.0)
    dq = np.zeros(shape, dtype=np.uint32)
    dq[reference_mask] |= dqflags.pixel["REFERENCE_PIXEL"]
    dnu = dqflags.pixel["DO_NOT_USE"]
    dq[bad_pixels.hot_flagged] |= dqflags.pixel["HOT"] | dnu
    dq[bad_pixels.dead_flagged] |= dqflags.pixel["DEAD"] | dnu
    f32 = np.float32
    return DetectorMaps(
        bias=bias.astype(f32),
        gain=gain.astype(f32),
        read_noise=read_noise.astype(f32),
        readnoise_cds=readnoise_cds.astype(f32),
        dark=dark.astype(f32),
        nonlinearity=nonlin.astype(f32),
        full_well=full_well.astype(f32),
        saturation=saturation.astype(f32),
        response=bad_pixels.response,
        dq=dq,
        ktc=float(config.ktc_noise),
    )


def draw_cosmic_ray_events(config, rng, science_mask, nints, first=0):
    """Cosmic rays of ``nints`` integrations, each landing between two reads.

    Events arrive as a Poisson process at ``cr_flux`` per cm^2 per second
    on 18 um pixels during an integration (reset to last read). An event in
    the interval before read ``g`` is seen from read ``g`` on: a jump between
    groups ``g-1`` and ``g`` (``g = 0``: before the first read, no jump to
    see). Its charge, log-uniform in ``cr_charge`` (e-), goes 70 % to the hit
    pixel and 7.5 % to each of the four neighbours.

    Returns
    -------
    dict of str to ndarray
        ``integration`` (exposure index), ``group``, ``y``, ``x`` (hit
        pixel), ``charge`` (e-, total), sorted by integration.
    """
    ny, nx = science_mask.shape
    pixel_area = (18e-4) ** 2  # cm^2
    duration = config.ngroups * config.frame_time
    mean = config.cr_flux * pixel_area * duration * ny * nx
    counts = rng.poisson(mean, nints)
    total = int(counts.sum())
    y = rng.integers(0, ny, total)
    x = rng.integers(0, nx, total)
    group = rng.integers(0, config.ngroups, total)
    lo, hi = np.log(config.cr_charge[0]), np.log(config.cr_charge[1])
    charge = np.exp(rng.uniform(lo, hi, total))
    return {
        "integration": (np.repeat(np.arange(nints), counts) + first).astype(np.int32),
        "group": group.astype(np.int16),
        "y": y.astype(np.int16),
        "x": x.astype(np.int16),
        "charge": charge.astype(np.float32),
    }


#: Share of a cosmic ray's charge in the hit pixel and in each of its 4 neighbours.
CR_CORE, CR_NEIGHBOUR = 0.70, 0.075
#: (row offset, column offset, share of the charge) of the pixels a cosmic ray hits.
CR_SHARES = ((0, 0, CR_CORE), (1, 0, CR_NEIGHBOUR), (-1, 0, CR_NEIGHBOUR),
             (0, 1, CR_NEIGHBOUR), (0, -1, CR_NEIGHBOUR))


def cosmic_ray_charge(events, shape, ngroups):
    """Charge (e-) each read gains from cosmic rays of one integration.

    Parameters
    ----------
    events : dict
        Events of one integration (`draw_cosmic_ray_events` rows).
    shape : tuple of int
        (ny, nx).
    ngroups : int

    Returns
    -------
    ndarray
        float32 (ngroups, ny, nx): cumulative, so a read keeps every earlier hit.
    """
    ny, nx = shape
    steps = np.zeros(ngroups * ny * nx, dtype=np.float64)
    for dy, dx, share in CR_SHARES:
        y = events["y"].astype(np.int64) + dy
        x = events["x"].astype(np.int64) + dx
        keep = (y >= 0) & (y < ny) & (x >= 0) & (x < nx)
        index = (events["group"].astype(np.int64)[keep] * ny + y[keep]) * nx + x[keep]
        steps += np.bincount(index, weights=share * events["charge"][keep],
                             minlength=steps.size)
    return np.cumsum(steps.reshape(ngroups, ny, nx), axis=0).astype(np.float32)


def integration_ramp(photo_rate, maps, config, rng, correlated, cr_charge, reference_mask,
                     read_sigma=None):
    """Raw reads (uint16 DN) of one integration.

    Parameters
    ----------
    photo_rate : ndarray
        Noiseless photo-current (DN/s) reaching each pixel (response
        applied), float32 (ny, nx).
    maps : DetectorMaps
    config : SimConfig
        ``ngroups``, ``frame_time``, ``photon_noise``, ``read_noise``.
    rng : numpy.random.Generator
    correlated : ndarray
        Correlated readout noise (e-) of the integration's reads, (ngroups, ny, nx).
    cr_charge : ndarray or None
        Cumulative cosmic-ray charge (e-) per read, (ngroups, ny, nx).
    reference_mask : ndarray of bool
    read_sigma : ndarray, optional
        White noise (e-) of one read; ``maps.read_noise`` if None (the
        caller adds the high band of the correlated noise here).

    Returns
    -------
    ndarray
        uint16 (ngroups, ny, nx).
    """
    ngroups = config.ngroups
    electrons_per_frame = (photo_rate * maps.gain + maps.dark) * config.frame_time
    electrons_per_frame = np.clip(electrons_per_frame, 0.0, None)
    electrons_per_frame[reference_mask] = 0.0
    shape = (ngroups,) + photo_rate.shape
    if config.photon_noise:
        increments = rng.poisson(electrons_per_frame.astype(np.float64), size=shape)
        charge = np.cumsum(increments, axis=0, dtype=np.float64).astype(np.float32)
    else:
        frames = np.arange(1, ngroups + 1, dtype=np.float32)[:, None, None]
        charge = frames * electrons_per_frame.astype(np.float32)[None]
    if cr_charge is not None:
        charge += cr_charge
    linear = charge / maps.gain
    # The pixel stops collecting at its full well; the response is the
    # exact inverse of the LINEARITY reference, t = m + a m^2.
    np.minimum(linear, maps.full_well, out=linear)
    # m = (sqrt(1 + 4 a t) - 1) / 2a, written without the cancellation
    # that float32 would suffer for small a t.
    measured = 2.0 * linear / (1.0 + np.sqrt(1.0 + 4.0 * maps.nonlinearity * linear))
    noise = correlated.copy()
    if config.read_noise:
        sigma = maps.read_noise if read_sigma is None else read_sigma
        noise += rng.standard_normal(shape, dtype=np.float32) * sigma
    ktc = rng.normal(0.0, maps.ktc, photo_rate.shape).astype(np.float32)
    noise += ktc[None]
    measured += maps.bias + noise / maps.gain
    np.rint(measured, out=measured)
    np.clip(measured, 0.0, 65535.0, out=measured)
    return measured.astype(np.uint16)
