"""Detector noise and defects of SOSS ``rateints`` slopes.

The simulator works at the slope level (DN/s per integration) with variances
equal to what ``ramp_fitting`` reports for ``ngroups`` groups of one frame:

* photon noise: Poisson in electrons on the charge accumulated between the
  first and last group, ``var_poisson = S / (gain x (ngroups - 1) x t_group)``;
* read noise: the least-squares slope variance of ``ngroups`` reads with
  single-read noise ``sigma_r = CDS / sqrt(2)``,
  ``var_rnoise = 12 sigma_r^2 / (ngroups (ngroups^2 - 1) t_group^2)``;
* 1/f noise: a pink-noise time series along the readout (one sample per
  column read, columns in readout order, groups one after the other), with
  each frame's mean over columns removed (``refpix``), least-squares fitted
  over the groups of each column, giving one offset per column and
  integration (column stripes, as in the real data);
* hot, dead pixels and residual cosmic rays.
"""

import logging
from dataclasses import dataclass

import numpy as np
from scipy import fft

log = logging.getLogger(__name__)

__all__ = [
    "read_noise_variance",
    "poisson_variance",
    "draw_slopes",
    "OneOverF",
    "BadPixels",
    "draw_bad_pixels",
    "draw_cosmic_rays",
]


def read_noise_variance(config):
    """Slope variance (DN/s)^2 from read noise, as ``ramp_fitting`` reports it."""
    n = config.ngroups
    sigma_read = config.read_noise_cds / np.sqrt(2.0)
    return 12.0 * sigma_read**2 / (n * (n**2 - 1) * config.group_time**2)


def poisson_variance(signal, config):
    """Slope variance (DN/s)^2 from photon noise for a noiseless rate ``signal`` (DN/s)."""
    return np.clip(signal, 0.0, None) / (config.gain * config.slope_time)


def draw_slopes(signal, config, rng):
    """Noisy slopes for a noiseless rate image.

    Parameters
    ----------
    signal : ndarray
        Noiseless rate (DN/s), float32.
    config : SimConfig
        Gain, read noise, groups; ``photon_noise``/``read_noise`` switches.
    rng : numpy.random.Generator

    Returns
    -------
    ndarray
        float32 slopes (DN/s).
    """
    if config.photon_noise:
        # Electrons collected over the slope's lever arm, Poisson, back to DN/s.
        conversion = config.gain * config.slope_time
        electrons = rng.poisson(np.clip(signal, 0.0, None).astype(np.float64) * conversion)
        slopes = (electrons / conversion).astype(np.float32)
        # Keep the (noiseless) negative part of the signal, if any.
        slopes += np.minimum(signal, 0.0)
    else:
        slopes = signal.astype(np.float32, copy=True)
    if config.read_noise:
        sigma = np.float32(np.sqrt(read_noise_variance(config)))
        slopes += sigma * rng.standard_normal(signal.shape, dtype=np.float32)
    return slopes


class OneOverF:
    """Column offsets (DN/s) from 1/f readout noise, per integration.

    A stationary noise with power spectral density proportional to 1/f is
    sampled once per column read along the readout sequence of one
    integration: ``ngroups`` frames of 2048 column reads (the fast read runs
    along columns; SLOWAXIS = -1, so columns are read from x = 2047 down to
    0). In every frame the mean over columns is removed, as Detector1's
    ``refpix`` step does with the reference pixels that each column read
    includes; what is left is scaled to a per-group, per-column standard
    deviation of ``oneoverf_sigma x oneoverf_scale`` DN. Each column's
    ``ngroups`` values are then fitted by least squares against time, as
    ``ramp_fitting`` does, giving the column's slope offset. The series is
    drawn on twice the needed length so its circular FFT construction does
    not correlate the first and last groups.

    Parameters
    ----------
    config : SimConfig
    ncols : int
        Columns per frame.
    """

    def __init__(self, config, ncols=2048):
        self.ngroups = config.ngroups
        self.ncols = ncols
        self.sigma = float(config.oneoverf_sigma * config.oneoverf_scale)
        self.length = fft.next_fast_len(2 * self.ngroups * ncols, real=True)
        freq = np.fft.rfftfreq(self.length)
        amp = np.zeros_like(freq)
        amp[1:] = freq[1:] ** -0.5  # power ~ 1/f; no DC (refpix and the slope remove it)
        self._amp = amp
        t = np.arange(self.ngroups, dtype=float)
        dt = t - t.mean()
        # Least-squares slope weights in 1/s (group k read at k x t_group).
        self.weights = dt / np.sum(dt**2) / config.group_time
        # Covariance, averaged over columns, of the frame-mean-subtracted
        # values of one column in groups k and k': R(D) - G(D), D = (k-k') N.
        acov = self._autocovariance(amp)
        lag = np.arange(-(self.ngroups - 1), self.ngroups) * ncols
        d = np.arange(-(ncols - 1), ncols)
        tri = (ncols - np.abs(d)) / ncols**2
        mean_cov = np.array([np.sum(tri * acov[np.abs(shift + d) % self.length]) for shift in lag])
        cov = acov[np.abs(lag)] - mean_cov
        self._cov_by_lag = dict(zip(range(-(self.ngroups - 1), self.ngroups), cov))
        # Unit per-group per-column standard deviation after mean removal.
        self._unit = 1.0 / np.sqrt(self._cov_by_lag[0])

    def _autocovariance(self, amp):
        """Autocovariance (lags 0..length-1) of the series built by `draw`."""
        power = 2.0 * amp**2
        if self.length % 2 == 0:
            power[-1] = amp[-1] ** 2  # the Nyquist term is real
        return np.fft.irfft(power, n=self.length) / self.length

    @property
    def expected_rms(self):
        """Expected RMS (DN/s) over columns of the per-column slope offsets."""
        if self.sigma == 0:
            return 0.0
        k = np.arange(self.ngroups)
        cov = np.vectorize(self._cov_by_lag.get)(np.subtract.outer(k, k))
        return float(self.sigma * self._unit * np.sqrt(self.weights @ cov @ self.weights))

    def draw(self, rng, nints=1):
        """Column offsets (DN/s), shape (nints, ncols), float32."""
        if self.sigma == 0:
            return np.zeros((nints, self.ncols), dtype=np.float32)
        nf = self._amp.size
        spec = rng.standard_normal((nints, nf)) + 1j * rng.standard_normal((nints, nf))
        if self.length % 2 == 0:
            spec[:, -1] = spec[:, -1].real  # irfft uses only the real Nyquist term
        series = np.fft.irfft(spec * self._amp, n=self.length, axis=1)
        frames = series[:, : self.ngroups * self.ncols].reshape(nints, self.ngroups, self.ncols)
        # Readout runs from the last column to the first.
        frames = frames[:, :, ::-1]
        frames -= frames.mean(axis=2, keepdims=True)
        offsets = np.einsum("g,igc->ic", self.weights, frames)
        return (self.sigma * self._unit * offsets).astype(np.float32)


@dataclass
class BadPixels:
    """Hot and dead pixels of one exposure.

    Attributes
    ----------
    hot_rate : ndarray
        float32 (ny, nx) dark current (DN/s) added by hot pixels, 0 elsewhere.
    response : ndarray
        float32 (ny, nx) relative response (0-0.1 for dead pixels, 1 elsewhere).
    hot_flagged, hot_unflagged, dead_flagged, dead_unflagged : ndarray of bool
    """

    hot_rate: np.ndarray
    response: np.ndarray
    hot_flagged: np.ndarray
    hot_unflagged: np.ndarray
    dead_flagged: np.ndarray
    dead_unflagged: np.ndarray

    @property
    def flagged(self):
        """Pixels flagged DO_NOT_USE (NaN in the science array)."""
        return self.hot_flagged | self.dead_flagged


def draw_bad_pixels(config, rng, science_mask, hot_range=(1.0, 300.0)):
    """Choose hot and dead pixels among the science pixels.

    Hot pixels get a dark current drawn log-uniformly in ``hot_range``
    (DN/s; the real frame's hot pixels have a median of about 6 DN/s and a
    tail to hundreds); dead pixels keep 0-10 % of the light. A fraction
    ``config.flagged_fraction`` of each kind is flagged.
    """
    ny, nx = science_mask.shape
    candidates = np.flatnonzero(science_mask)
    picks = rng.choice(candidates, size=config.n_hot + config.n_dead, replace=False)
    hot, dead = picks[: config.n_hot], picks[config.n_hot :]
    hot_rate = np.zeros(ny * nx, dtype=np.float32)
    lo, hi = np.log(hot_range[0]), np.log(hot_range[1])
    hot_rate[hot] = np.exp(rng.uniform(lo, hi, hot.size))
    response = np.ones(ny * nx, dtype=np.float32)
    response[dead] = rng.uniform(0.0, 0.1, dead.size)

    def split(indices):
        flag = rng.random(indices.size) < config.flagged_fraction
        flagged = np.zeros(ny * nx, dtype=bool)
        unflagged = np.zeros(ny * nx, dtype=bool)
        flagged[indices[flag]] = True
        unflagged[indices[~flag]] = True
        return flagged.reshape(ny, nx), unflagged.reshape(ny, nx)

    hot_f, hot_u = split(hot)
    dead_f, dead_u = split(dead)
    return BadPixels(
        hot_rate.reshape(ny, nx), response.reshape(ny, nx), hot_f, hot_u, dead_f, dead_u
    )


def draw_cosmic_rays(config, rng, science_mask):
    """Residual (unflagged) cosmic rays of the whole exposure.

    The number per integration is Poisson with mean ``cr_rate`` x number of
    science pixels; positions are uniform over science pixels; the slope
    excess is log-uniform in [``cr_min``, ``cr_max``] DN/s (the part of a
    jump the jump step missed).

    Returns
    -------
    dict of str to ndarray
        ``integration`` (0-based index in the exposure), ``y``, ``x``,
        ``amplitude`` (DN/s), sorted by integration.
    """
    ny, nx = science_mask.shape
    candidates = np.flatnonzero(science_mask)
    counts = rng.poisson(config.cr_rate * candidates.size, size=config.nints)
    total = int(counts.sum())
    where = rng.choice(candidates, size=total, replace=True)
    amp = np.exp(rng.uniform(np.log(config.cr_min), np.log(config.cr_max), total))
    y, x = np.divmod(where, nx)
    return {
        "integration": np.repeat(np.arange(config.nints), counts).astype(np.int32),
        "y": y.astype(np.int32),
        "x": x.astype(np.int32),
        "amplitude": amp.astype(np.float32),
    }
