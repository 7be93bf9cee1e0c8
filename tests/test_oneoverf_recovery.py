"""soss_oneoverf: injection and recovery of 1/f column offsets on the simulator.

Every comparison is paired: the same simulated cube is corrected twice, as
simulated and with the true offsets removed beforehand (the "oracle"). Both
share exactly the same photon and read noise, so

* ``leak`` = (offsets fitted on the data - offsets fitted on the oracle)
  - true offsets is the part of the injected 1/f a method fails to remove,
  free of the photon noise of the estimate;
* the excess of the corrected data over the oracle, summed in an aperture,
  is the noise the correction adds on top of the photon+read-noise limit.

Why the leak and not the total residual: the offset of one column in one
integration is measured from ~170 pixels of ~0.34 DN/s noise each
(background photon + read noise), a floor of ~0.026 DN/s, i.e. ~37 % of the
injected 0.07 DN/s RMS. No estimator can go below that floor (the total is
checked against it below); what a method controls is how much of the
injected signal it leaves behind.
"""

import numpy as np
import pytest

from jwst_soss_custom._base.geometry import reference_pixels
from jwst_soss_custom.oneoverf.oneoverf import (
    METHODS,
    correct_oneoverf,
    trace_mask,
    window_regions,
)
from jwst_soss_custom.tracing import OrderTrace, TraceSolution, predict_traces

HALF_BOX = 15  # aperture half-width (rows) used to measure the precision
RAMP = (9, 5.494)  # groups and group time of the simulated slopes (method project)
PAIRED = ("solve", "scale-chromatic")  # methods whose 1/f leak is measured (the two)


@pytest.fixture(scope="module")
def cleaned(tiny_exposure, tiny_truth):
    """The tiny exposure after soss_badpix and soss_background, and its truth."""
    from jwst_soss_custom.background import SossBackgroundStep
    from jwst_soss_custom.badpix import SossBadpixStep
    from jwst_soss_custom.source import load_exposure

    cube, _ = load_exposure(tiny_exposure.segment_files)
    cube = SossBadpixStep.call(cube)
    cube = SossBackgroundStep.call(cube, override_bkg=str(tiny_exposure.background_files["npy"]))
    return cube


@pytest.fixture(scope="module")
def results(cleaned, tiny_truth):
    """Every method applied to the data and to the oracle."""
    truth_offsets = tiny_truth["oneoverf"]["column_offsets"]
    solution = predict_traces(tiny_truth["pwcpos"])
    exclude = reference_pixels(cleaned.data.shape[1:]) | tiny_truth["order0"]["mask"]
    oracle = cleaned.data - truth_offsets[:, None, :]
    aperture = (np.abs(np.arange(256)[:, None] - solution.orders[1].y[None]) <= HALF_BOX).astype(
        np.float32
    )
    out = {"truth": truth_offsets, "aperture": aperture}
    out["oracle_flux"] = _extract(oracle, aperture)
    out["raw_flux"] = _extract(cleaned.data, aperture)
    variance = np.nanmedian(cleaned.err**2, axis=0)
    out["sigma_column"] = np.sqrt(np.nansum(variance * aperture, axis=0))
    for method in METHODS:
        data = cleaned.data.copy()
        fitted, _ = correct_oneoverf(data, cleaned.err, cleaned.dq, solution, method,
                                     exclude=exclude, ramp=RAMP)
        out[method] = {"offsets": fitted[:, 0], "flux": _extract(data, aperture)}
        if method in PAIRED:
            ref = oracle.copy()
            on_oracle, _ = correct_oneoverf(ref, cleaned.err, cleaned.dq, solution, method,
                                            exclude=exclude, ramp=RAMP)
            out[method]["leak"] = fitted[:, 0] - on_oracle[:, 0] - truth_offsets
    return out


def _extract(cube, aperture):
    return np.einsum("iyx,yx->ix", np.nan_to_num(cube), aperture, dtype=np.float64)


def _demeaned(a):
    # The deep frame holds each column's median offset: a constant per
    # column is part of the static scene and cannot (and need not) be
    # separated from it, so offsets are compared after removing their time mean.
    return a - a.mean(axis=0)


SCIENCE = slice(4, 2044)


@pytest.mark.parametrize("method", ["solve", "scale-chromatic"])
def test_injected_oneoverf_is_removed(results, method):
    truth = _demeaned(results["truth"])[:, SCIENCE]
    leak = _demeaned(results[method]["leak"])[:, SCIENCE]
    # The leak is free of photon noise (paired), so 10 % is a direct bound
    # on the 1/f left behind; 30 x 2040 values make its RMS exact to <1 %.
    assert leak.std() < 0.10 * truth.std()
    # Total residual: at the photon floor of the estimate (module docstring:
    # ~0.37 of the injected RMS; 0.5 leaves room for the floor's spread
    # between columns with more or fewer usable pixels).
    total = _demeaned(results[method]["offsets"] - results["truth"])[:, SCIENCE]
    assert total.std() < 0.5 * truth.std()


@pytest.mark.parametrize("method", ["scale-chromatic", "scale-achromatic", "solve", "project"])
def test_light_curves_reach_the_photon_limit(results, method):
    """White light and the median spectroscopic channel within 5 % of the limit.

    precision ratio = sqrt(1 + excess variance / sigma^2), sigma the
    photon+read-noise error of the white light or of a column. The scale
    methods measure the offsets outside the 40-row mask, disjoint from the
    30-row aperture, so the correction's noise is independent of the
    aperture's and the excess variance is var(corrected - oracle): with 30
    integrations it is known to ~26 %, which moves a ratio of ~1.02 by
    ~0.005. ``solve`` also fits the trace pixels, so its error correlates
    with the aperture's noise and the excess is var(corrected) -
    var(oracle), covariance included; its sampling noise over 30
    integrations (~0.035 on one white-light ratio) only allows the test on
    the median over ~2000 channels (the full-length white light is in
    benchmarks/oneoverf_methods.py).
    """
    flux, oracle = results[method]["flux"][:, SCIENCE], results["oracle_flux"][:, SCIENCE]
    sigma = results["sigma_column"][SCIENCE]
    if method in ("solve", "project"):
        # Both fit the trace pixels (project its remainder term), so their
        # error correlates with the aperture's noise: covariance included.
        channel_excess = flux.var(axis=0) - oracle.var(axis=0)
    else:
        channel_excess = (flux - oracle).var(axis=0)
        white_ratio = np.sqrt(1 + (flux - oracle).sum(axis=1).var() / np.sum(sigma**2))
        assert white_ratio < 1.05
    # With the covariance included a column's excess can fall below -sigma^2
    # by sampling (30 integrations); such columns count as ratio 0 in the median.
    channel_ratio = np.median(np.sqrt(np.clip(1 + channel_excess / sigma**2, 0, None)))
    assert channel_ratio < 1.05
    # The test has power: without correction the channels' excess variance
    # is several times larger than after it.
    raw = (results["raw_flux"] - results["oracle_flux"])[:, SCIENCE].var(axis=0)
    assert np.median(raw) > 3 * np.median(channel_excess)


def test_every_method_reduces_the_oneoverf(results):
    truth = _demeaned(results["truth"])[:, SCIENCE].std()
    for method in METHODS:
        total = _demeaned(results[method]["offsets"] - results["truth"])[:, SCIENCE].std()
        assert total < 0.7 * truth, method


def test_excluded_pixels_do_not_bias_the_offsets():
    """An order 0 outside the trace mask biases its columns unless excluded."""
    rng = np.random.default_rng(1)
    nints, ny, nx = 12, 64, 40
    solution = TraceSolution(245.79, {1: OrderTrace(1, np.full(nx, 20.0), np.linspace(1, 2, nx))})
    rows = np.arange(ny)[:, None]
    star = 200 * np.exp(-0.5 * ((rows - 20.0) / 3.0) ** 2) * np.ones(nx)
    star[45:49, 10:14] += 50.0  # the contaminant
    offsets = rng.normal(0, 1.0, (nints, nx)).astype(np.float32)
    lc = np.linspace(1.0, 0.97, nints)
    data = (lc[:, None, None] * star + offsets[:, None, :] + rng.normal(0, 0.1, (nints, ny, nx)))
    data = data.astype(np.float32)
    err = np.full(data.shape, 0.1, np.float32)
    dq = np.zeros(data.shape, np.uint32)
    exclude = np.zeros((ny, nx), bool)
    exclude[44:50, 9:15] = True
    for method in ("scale-achromatic", "solve", "project"):
        found, _ = correct_oneoverf(data.copy(), err, dq, solution, method, 12.0, exclude=exclude,
                                    ramp=RAMP)
        residual = _demeaned(found[:, 0] - offsets)
        # 0.1 noise over ~50 pixels: 0.014 per offset; 5 sigma
        assert np.abs(residual).max() < 0.07, method


def test_window_regions_split_pixels_by_order():
    nx = 10
    solution = TraceSolution(
        245.79,
        {
            1: OrderTrace(1, np.full(nx, 50.0), np.ones(nx)),
            2: OrderTrace(2, np.full(nx, 150.0), np.ones(nx)),
        },
    )
    region, measure = window_regions(solution, (256, nx), inner=20, outer=40)
    assert region[50, 0] == 1 and region[150, 0] == 2 and region[100, 0] == 0
    assert measure[1][35, 0] and not measure[1][50, 0] and not measure[1][75, 0]
    assert measure[0].all()
    with pytest.raises(ValueError, match="outer_width"):
        window_regions(solution, (256, nx), inner=40, outer=20)


def test_unknown_method_is_refused():
    data = np.zeros((2, 256, 16), np.float32)
    solution = TraceSolution(245.79, {1: OrderTrace(1, np.full(16, 50.0), np.ones(16))})
    with pytest.raises(ValueError, match="choose one of"):
        correct_oneoverf(data, data + 1, data.astype(np.uint32), solution, "fourier")
    assert trace_mask(solution, (256, 16), 10).sum() == 11 * 16
