"""Tilt events: steps in the trace regressors found, carried as step regressors, fitted.

Regressor noise and step sizes are those soss_tracing measures on the
realistic presets (dy jitter ~0.002 px; the hard preset's tilt: dy +0.05 px,
width +1 %), so a step is 25 sigma; a visit-long drift, a slow wander of dx,
a start-of-visit settling of the width and single-integration outliers must
not be taken for one.
"""

import numpy as np
import pytest

from jwst_soss_custom.fitting import fit_products
from jwst_soss_custom.fitting.synthetic import synthetic_tables
from jwst_soss_custom.lightcurves import stitch_x1dints
from jwst_soss_custom.lightcurves.events import find_trace_steps
from jwst_soss_custom.lightcurves.synthetic import synthetic_segments
from jwst_soss_custom.lightcurves.tables import make_light_curves
from jwst_soss_custom.products import REGRESSORS_ATTRIBUTE

NINTS = 537


def _regressors(seed, steps=()):
    rng = np.random.default_rng(seed)
    ints = np.arange(1, NINTS + 1)
    dy = 0.05 * ints / NINTS + rng.normal(0, 0.002, NINTS)
    dy[rng.integers(0, NINTS, 3)] += 0.05  # cosmic-ray residues
    dx = 0.1 * np.sin(ints / 80) + rng.normal(0, 0.003, NINTS)
    dwidth = rng.normal(0, 0.001, NINTS) + 0.002 * np.exp(-ints / 20)
    for at, size in steps:
        dy = dy + size * (ints >= at)
        dwidth = dwidth + 0.2 * size * (ints >= at)
    return ints, {"dx": dx, "dy": dy, "dwidth": dwidth}


@pytest.mark.parametrize("seed", range(10))
def test_no_event_in_drifts_wander_settling_and_outliers(seed):
    assert find_trace_steps(*_regressors(seed)) == []


def test_steps_found_at_their_integrations():
    ints, regressors = _regressors(3, steps=[(400, 0.05), (150, -0.03)])
    events = find_trace_steps(ints, regressors)
    assert [e["int_num"] for e in events] == [150, 400]
    assert events[1]["steps"]["dy"] == pytest.approx(0.05, abs=0.005)
    assert events[0]["steps"]["dy"] == pytest.approx(-0.03, abs=0.005)
    assert min(e["significance"] for e in events) > 10


def test_light_curves_carry_the_step_regressor():
    nints = 120
    segments = synthetic_segments(nints=nints, nsegments=2, seed=3)
    rng = np.random.default_rng(0)
    for model in segments:
        ints = np.asarray(model.spec[0].spec_table["INT_NUM"])
        values = np.zeros(ints.size, [("int_num", "i4"), ("dx", "f8"), ("dy", "f8"),
                                      ("dwidth", "f8")])
        values["int_num"] = ints
        values["dy"] = rng.normal(0, 0.002, ints.size) + 0.05 * (ints >= 90)
        values["dx"] = rng.normal(0, 0.002, ints.size)
        values["dwidth"] = rng.normal(0, 0.001, ints.size)
        setattr(model, REGRESSORS_ATTRIBUTE, values)
    curves = make_light_curves(stitch_x1dints(segments))
    whtlt, speclc = curves.whtlt, curves.speclc
    assert whtlt.meta["tilt_events"] == [90]
    assert "always fitted by soss_fit" in whtlt.meta["tilt_handling"]
    np.testing.assert_array_equal(whtlt["regressor_tilt_1"], whtlt["int_num"] >= 90)
    assert speclc.meta["tilt_events"] == [90]
    assert len(speclc["regressor_tilt_1"]) == len(speclc)
    quiet = make_light_curves(stitch_x1dints(segments), tilt_threshold=0, spectroscopic=False)
    assert quiet.whtlt.meta["tilt_events"] == []
    assert "regressor_tilt_1" not in quiet.whtlt.colnames


def test_fit_regresses_the_tilt_step_out():
    """A -300 ppm flux step after egress (the hard preset's tilt) biases the depth."""
    whtlt, _, truth = synthetic_tables(nints=300, nchannels=1, white_ppm=20.0, seed=8)
    after = np.arange(len(whtlt)) >= 220
    whtlt["whitelight_flux_norm_order_1"] *= np.where(after, 1 - 3e-4, 1.0)
    plain = fit_products(whtlt, None, period=truth["period"]).white_fits[1]
    whtlt["regressor_tilt_1"] = after.astype(float)
    whtlt["regressor_dx"] = np.random.default_rng(1).normal(size=len(whtlt))
    fit = fit_products(whtlt, None, period=truth["period"]).white_fits[1]
    assert "k_tilt_1" in fit.values and "k_dx" not in fit.values  # steps only, by default

    def depth(f):
        return f.values["rp"] ** 2 - truth["white_rp"] ** 2, 2 * f.values["rp"] * f.errors["rp"]

    bias, error = depth(fit)
    assert abs(bias) < 3 * error and fit.stats["inflated"] == "no"
    # Without the step: red residuals (errors inflated) and a depth off by
    # more than three of the step fit's errors.
    assert fit.stats["inflated"] == "no" and plain.stats["inflated"] != "no"
    assert abs(depth(plain)[0]) > 3 * error
    # The step itself, from the standardised coefficient.
    share = after.mean()
    scale = 1 / np.sqrt(share * (1 - share))
    assert fit.values["k_tilt_1"] * scale == pytest.approx(
        -3e-4, abs=3 * fit.errors["k_tilt_1"] * scale)
