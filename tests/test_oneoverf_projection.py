"""How group-level 1/f projects into optimally weighted slopes, and method ``project``.

The coefficients are checked against the real stcal ``ramp_fit``; the
method is checked by injection and recovery on frames whose 1/f was put in
at the group level and projected with those coefficients, pixel by pixel,
as ramp fitting does.
"""

import numpy as np
import pytest
from stcal.ramp_fitting.ramp_fit import ramp_fit
from stdatamodels.jwst.datamodels import RampModel, dqflags

from jwst_soss_custom.oneoverf.oneoverf import correct_oneoverf
from jwst_soss_custom.oneoverf.projection import (
    SNR_EDGES,
    SNR_POWERS,
    estimate_gain,
    expected_coefficients,
    projection_loadings,
    slope_coefficients,
    snr_power,
    spectral_amplitude,
    wiener_columns,
)
from jwst_soss_custom.tracing import OrderTrace, TraceSolution

NGROUPS, TGROUP, GAIN, READNOISE_CDS = 9, 5.494, 1.6, 10.0


def _stcal_slopes(ramps):
    """Slopes of ramps (ngroups, npix) in DN by the real stcal optimal-weighted fit."""
    n, npix = ramps.shape
    model = RampModel(
        data=ramps[None, :, None, :].astype(np.float32),
        groupdq=np.zeros((1, n, 1, npix), np.uint8),
        pixeldq=np.zeros((1, npix), np.uint32),
    )
    exposure = model.meta.exposure
    exposure.frame_time = exposure.group_time = TGROUP
    exposure.groupgap, exposure.nframes, exposure.drop_frames1 = 0, 1, 0
    exposure.ngroups, exposure.nints = n, 1
    readnoise = np.full((1, npix), READNOISE_CDS, np.float32)
    gain = np.full((1, npix), GAIN, np.float32)
    image, cube, _ = ramp_fit(model, False, readnoise, gain, "OLS_C", "optimal", "none",
                              dqflags.pixel)
    return np.asarray(cube["slope"])[0, 0]


def test_coefficients_are_those_of_stcal_ramp_fit():
    # One pixel in the middle of every weighting class: the signal D (e-)
    # whose ratio D / sqrt(rn^2 + D) is the class's geometric centre.
    edges = (1.0,) + SNR_EDGES + (400.0,)
    target = np.sqrt(np.array(edges[:-1]) * np.array(edges[1:]))
    rn2 = (READNOISE_CDS * GAIN) ** 2 / 2  # stcal's read noise of one read (e-^2)
    electrons = (target**2 + np.sqrt(target**4 + 4 * rn2 * target**2)) / 2
    rate = electrons / GAIN / ((NGROUPS - 1) * TGROUP)
    g = np.arange(NGROUPS)[:, None]
    ramps = rate * TGROUP * (g + 1)
    # Offsets per group of 2 % of each ramp's signal: enough for float32 to
    # resolve, too little to move a pixel to another class.
    rng = np.random.default_rng(3)
    offsets = rng.uniform(-1, 1, (NGROUPS, 1)) * 0.02 * ramps[-1]
    found = _stcal_slopes(ramps + offsets) - _stcal_slopes(ramps)
    powers = snr_power(target)
    assert sorted(set(powers)) == list(SNR_POWERS)
    expected = np.einsum("pg,gp->p", slope_coefficients(NGROUPS, powers, TGROUP), offsets)
    np.testing.assert_allclose(found, expected, rtol=2e-3)


@pytest.mark.parametrize("ngroups", [2, 3, 9, 20])
def test_every_weighting_is_an_unbiased_slope(ngroups):
    c = slope_coefficients(ngroups, SNR_POWERS, TGROUP)
    g = np.arange(ngroups)
    np.testing.assert_allclose(c @ g, 1 / TGROUP)
    np.testing.assert_allclose(c.sum(axis=1), 0, atol=1e-12)
    # Hence every class sees the least-squares class's offset with beta = 1.
    np.testing.assert_allclose(c @ c[0] / (c[0] @ c[0]), 1)
    with pytest.raises(ValueError, match="at least 2 groups"):
        slope_coefficients(1, 0.0)


def _frame_variances(deep, gain=GAIN):
    span = (NGROUPS - 1) * TGROUP
    var_r = 12 * (READNOISE_CDS / np.sqrt(2)) ** 2 / (TGROUP**2 * (NGROUPS**3 - NGROUPS))
    return np.sqrt(np.clip(deep, 0, None) / (gain * span) + var_r)


def test_gain_is_recovered_from_the_variances():
    rng = np.random.default_rng(4)
    deep = np.exp(rng.uniform(np.log(1.0), np.log(3000.0), (64, 512)))
    for gain in (1.0, 1.6, 2.5):
        err = _frame_variances(deep, gain) * rng.normal(1, 0.02, deep.shape)
        assert estimate_gain(deep, err, NGROUPS, TGROUP) == pytest.approx(gain, rel=0.03)
    # No bright pixels: the NIRISS default.
    assert estimate_gain(np.full((8, 8), 3.0), np.ones((8, 8)), NGROUPS, TGROUP) == 1.6


def test_expected_coefficients_average_the_classes_near_an_edge():
    table = slope_coefficients(NGROUPS, SNR_POWERS, TGROUP)
    rate = np.array([[0.01, 3000.0]])
    coef = expected_coefficients(rate, _frame_variances(rate), NGROUPS, TGROUP, GAIN)
    np.testing.assert_allclose(coef[0, 0], table[0], atol=1e-6)
    np.testing.assert_allclose(coef[0, 1], table[-1], atol=1e-6)
    # A ratio exactly on the 20 edge: half of class P=1, half of P=3.
    span = (NGROUPS - 1) * TGROUP
    rn2 = (READNOISE_CDS / np.sqrt(2)) ** 2
    d = (400 / GAIN + np.sqrt((400 / GAIN) ** 2 + 4 * 400 * rn2)) / 2  # D / sqrt(rn2 + D/g) = 20
    edge = np.array([[d / span]])
    coef = expected_coefficients(edge, _frame_variances(edge), NGROUPS, TGROUP, GAIN)[0, 0]
    np.testing.assert_allclose(coef, 0.5 * (table[2] + table[3]), atol=0.02 * np.abs(table[3]).max())
    # Non-finite statistics give no coefficients.
    assert not expected_coefficients(np.array([[np.nan]]), np.ones((1, 1)), NGROUPS, TGROUP,
                                     GAIN).any()


def test_loadings_of_pure_classes():
    table = slope_coefficients(NGROUPS, SNR_POWERS, TGROUP).astype(np.float32)
    coef = np.broadcast_to(table[None], (4,) + table.shape).copy()  # 4 rows x 6 classes
    reference = np.zeros((4, 6), bool)
    reference[:, 0] = True  # a faint background: the least-squares class
    weights = np.ones((4, 6))
    beta, gamma, c_ref, direction = projection_loadings(coef, reference, weights, ~reference)
    np.testing.assert_allclose(c_ref, table[0], rtol=1e-6)
    # beta = c . c_ref / |c_ref|^2 = 1 for every class (unbiased slopes), and
    # what is left is orthogonal to c_ref.
    np.testing.assert_allclose(beta, 1.0, rtol=1e-5)
    assert gamma[0, 0] == pytest.approx(0.0, abs=1e-7)
    assert abs(direction @ c_ref) < 1e-6 * np.linalg.norm(c_ref)
    # The brightest class has the largest remainder.
    assert np.argmax(np.abs(gamma[0])) == 5


def _pink(rng, shape, amplitude):
    """Series along the last axis with power ~ 1/k and RMS ``amplitude``."""
    n = shape[-1]
    k = np.fft.rfftfreq(2 * n)[1:]
    spec = np.zeros(shape[:-1] + (n + 1,), complex)
    spec[..., 1:] = (rng.standard_normal(shape[:-1] + (n,))
                     + 1j * rng.standard_normal(shape[:-1] + (n,))) / np.sqrt(k)
    series = np.fft.irfft(spec, n=2 * n, axis=-1)[..., :n]
    series -= series.mean(axis=-1, keepdims=True)
    return amplitude * series / series.std()


def test_wiener_keeps_the_low_frequencies_and_rejects_pure_noise():
    rng = np.random.default_rng(5)
    nints, nx = 50, 1024
    truth = _pink(rng, (nints, nx), 1.0)
    variance = np.full((nints, nx), 4.0)  # per-column noise 2x the signal's RMS
    variance[:, :20] = np.inf  # columns that do not constrain psi
    noisy = truth + 2.0 * rng.standard_normal((nints, nx))
    # The amplitude of the A / k spectrum, as the background offsets give it.
    amplitude = spectral_amplitude(truth)
    found = wiener_columns(noisy, variance, amplitude)
    assert not found[:, :20].any()
    measured = slice(20, None)
    # Only frequencies from 1 cycle are kept, so compare without the mean.
    target = truth[:, measured] - truth[:, measured].mean(axis=1, keepdims=True)
    error = np.mean((found[:, measured] - target) ** 2)
    # The best linear filter, which knows the true spectrum S: gain S / (S + N).
    spectrum = np.mean(np.abs(np.fft.rfft(target, axis=1)) ** 2, axis=0)
    noise = 4.0 * target.shape[1]
    data = noisy[:, measured] - noisy[:, measured].mean(axis=1, keepdims=True)
    best = np.fft.irfft(np.fft.rfft(data, axis=1) * spectrum / (spectrum + noise),
                        n=target.shape[1], axis=1)
    assert error < 1.1 * np.mean((best - target) ** 2) < 0.6 * np.mean(target**2)
    pure = wiener_columns(2.0 * rng.standard_normal((nints, nx)), np.full((nints, nx), 4.0),
                          np.zeros(nints))
    assert np.sqrt(np.mean(pure**2)) < 0.2 * 2.0


@pytest.fixture(scope="module")
def injected():
    """Frames with 1/f put in at the group level and projected as ramp_fit does.

    A Gaussian-cored trace (peak 300 DN/s, wings down to the background)
    over a 5 DN/s background, so the pixels span every weighting class;
    per integration and group, a pink series along the columns (3 DN RMS,
    as the realistic presets' readout noise) projected into each pixel's
    slope with the coefficients of the class its noisy ramp falls in; a 1 %
    transit over the middle third.
    """
    rng = np.random.default_rng(6)
    nints, ny, nx = 60, 96, 1024
    rows = np.arange(ny)[:, None]
    profile = 300 * np.exp(-0.5 * ((rows - 48) / 3.0) ** 2) + 60 / (1 + ((rows - 48) / 6.0) ** 2)
    star = profile * np.linspace(1.0, 0.6, nx)
    background = 5.0
    transit = np.ones(nints)
    transit[nints // 3: 2 * nints // 3] = 0.99
    err = _frame_variances(star + background).astype(np.float32)
    span = (NGROUPS - 1) * TGROUP
    noise = rng.standard_normal((nints, ny, nx)).astype(np.float32) * err
    clean = (transit[:, None, None] * star + background + noise).astype(np.float32)
    rn2 = (READNOISE_CDS / np.sqrt(2)) ** 2
    d = np.clip(clean, 0, None) * span
    power = snr_power(d / np.sqrt(rn2 + d / GAIN))
    table = slope_coefficients(NGROUPS, SNR_POWERS, TGROUP).astype(np.float32)
    index = np.searchsorted(SNR_POWERS, power)
    groups = _pink(rng, (nints, NGROUPS, nx), 6.0).astype(np.float32)
    oneoverf = np.einsum("iyxg,igx->iyx", table[index], groups)
    solution = TraceSolution(245.79, {1: OrderTrace(1, np.full(nx, 48.0), np.linspace(1, 2, nx))})
    aperture = (np.abs(rows - 48) <= 15) * np.ones((1, nx))
    sigma2 = (err**2 * aperture).sum(axis=0)
    return {
        "data": clean + oneoverf, "clean": clean, "err": np.broadcast_to(err, clean.shape),
        "dq": np.zeros(clean.shape, np.uint32), "solution": solution, "aperture": aperture,
        "sigma2": sigma2, "star": star, "background": background, "transit": transit,
    }


def _corrected_flux(inj, method):
    data = inj["data"] - inj["background"]  # as after soss_background
    correct_oneoverf(data, inj["err"], inj["dq"], inj["solution"], method,
                     ramp=(NGROUPS, TGROUP), smoothing_window=1)
    return np.einsum("iyx,yx->ix", data, inj["aperture"])


def test_project_removes_what_the_background_cannot_see(injected):
    oracle = np.einsum("iyx,yx->ix", injected["clean"] - injected["background"],
                       injected["aperture"])
    white, channel = {}, {}
    for method in ("scale-achromatic", "project"):
        excess = _corrected_flux(injected, method) - oracle
        excess -= excess.mean(axis=0)  # a constant per column belongs to the deep frame
        white[method] = excess.sum(axis=1).var() / injected["sigma2"].sum()
        channel[method] = np.median(excess.var(axis=0) / injected["sigma2"])
    # One offset per column leaves the bright pixels' remainder in every
    # channel (measured here: excess variance 0.12 x the photon noise);
    # project takes out the part of it above the noise along the columns
    # (measured: 0.09). Over 1024 columns the median is known to ~2 %.
    assert channel["scale-achromatic"] > 0.05
    assert channel["project"] < 0.85 * channel["scale-achromatic"]
    # The white light sums the columns, where the kept frequencies (>= 1
    # cycle) cancel; what the filter lets through of the noise may add a
    # little (measured: 0.057 -> 0.078; 60 integrations give it to ~20 %).
    assert white["project"] < white["scale-achromatic"] + 0.05


def test_project_keeps_the_transit_depth(injected):
    flux = _corrected_flux(injected, "project").sum(axis=1)
    inside = injected["transit"] < 1
    depth = 1 - flux[inside].mean() / flux[~inside].mean()
    # The white light's own out-of-transit scatter, in depth units.
    sigma = flux[~inside].std(ddof=1) / flux[~inside].mean()
    error = sigma * np.sqrt(1 / inside.sum() + 1 / (~inside).sum())
    assert abs(depth - 0.01) < 4 * error
