"""soss_tracing: refined traces, stability regressors, order-0 mask, wavelength check."""

import numpy as np
import pytest
from stdatamodels.jwst import datamodels

from jwst_soss_custom.datasets import NO_SYSTEMATICS, load_truth, simulate
from jwst_soss_custom.source import load_exposure
from jwst_soss_custom.products import REGRESSORS_ATTRIBUTE, slice_x1dints
from jwst_soss_custom.tracing import ORDER0_ATTRIBUTE, SossTracingStep, TraceSolution
from jwst_soss_custom.tracing.refine import (
    column_centroids,
    core_mask,
    detect_order0,
    fit_trace_offset,
)
from jwst_soss_custom.tracing.tracing import model_trace
from jwst_soss_custom.tracing.wavecal import load_line_list, measure_wavelength_shift

# ---------------------------------------------------------------- pure arrays


def test_column_centroids_are_phase_independent_and_ignore_a_sloping_background():
    rows = np.arange(256.0)[:, None]
    centre = np.linspace(80.0, 81.0, 200)  # every sub-pixel phase
    image = np.exp(-0.5 * ((rows - centre) / 6.0) ** 2) * 100 + 0.05 * rows
    found, flux = column_centroids(image, np.arange(200), centre + 0.4, width=60)
    # Noise-free and symmetric: only the fractional-edge arithmetic limits it.
    np.testing.assert_allclose(found, centre, atol=2e-3)
    assert (flux > 0).all()


def test_fit_trace_offset_recovers_the_offset_along_a_given_shift():
    mx, my, _ = model_trace(245.79, 1)
    cols = np.arange(900, 2040)
    rng = np.random.default_rng(1)
    truth = np.interp(cols - 0.7, mx, my) - 0.3
    measured = truth + rng.normal(0, 0.01, cols.size)
    measured[::97] += 3.0  # contaminated columns are clipped
    y_fit, record = fit_trace_offset(cols, measured, np.ones(cols.size), mx, my, dx=0.7)
    # 0.01 px per column over ~1100 columns: the offset is known to ~1e-3 px.
    assert record["dy"] == pytest.approx(-0.3, abs=0.01)
    assert record["dx"] == 0.7
    np.testing.assert_allclose(y_fit(cols), truth, atol=0.005)
    # Along the nearly straight order 1 a 0.7 px shift is almost an offset:
    # without it dy absorbs it and the trace is still within a few 0.01 px.
    y_fit, record = fit_trace_offset(cols, measured, np.ones(cols.size), mx, my)
    assert record["dx"] == 0.0
    assert np.abs(y_fit(cols) - truth).max() < 0.05


def test_detect_order0_finds_compact_sources_and_ignores_single_hot_pixels():
    rng = np.random.default_rng(2)
    image = rng.normal(10.0, 0.1, (256, 2048)).astype(np.float32)
    yy, xx = np.mgrid[:256, :2048]
    image += 5 * np.exp(-0.5 * (((yy - 180) / 8.0) ** 2 + ((xx - 700) / 3.0) ** 2))
    image[40, 300] += 50  # a hot pixel
    cores = core_mask([np.full(2048, 100.0)], image.shape, 20)
    mask, catalog = detect_order0(image, 0.1, cores)
    assert [(c["x"], c["y"]) for c in catalog] == [(700, 180)]
    assert mask[180, 700] and mask[165:196, 700].all() and not mask[40, 300]
    assert mask.sum() < 2000


def test_wavelength_shift_of_a_synthetic_spectrum():
    mx, _, mwave = model_trace(245.79, 1)
    cols = np.arange(4, 2044)
    lam, strength = load_line_list()
    wave_true = np.interp(cols - 0.8, mx, mwave)  # spectrum 0.8 px to the right
    sigma_lam = 2.0 / 2.3548 * np.abs(np.gradient(wave_true))
    lines = np.exp(-0.5 * ((wave_true[:, None] - lam[None]) / sigma_lam[:, None]) ** 2) @ strength
    rng = np.random.default_rng(3)
    flux = 1000 * (1 - lines) * (1 + rng.normal(0, 0.002, cols.size))
    fit = measure_wavelength_shift(flux, cols, mx, mwave, (lam, strength))
    assert fit["status"] == "measured"
    assert fit["shift"] == pytest.approx(0.8, abs=0.05)
    flat = 1000 * (1 + rng.normal(0, 0.002, cols.size))
    assert measure_wavelength_shift(flat, cols, mx, mwave, (lam, strength))["status"] == (
        "not measurable"
    )


def test_trace_solution_round_trip_keeps_records():
    from jwst_soss_custom.tracing import predict_traces

    solution = predict_traces(245.79)
    solution.orders[1].record = {"dy": 0.25, "wavelength": {"status": "applied"}}
    solution.record = {"order3": "not traced"}
    back = TraceSolution.from_tree(solution.to_tree())
    assert back.orders[1].record == solution.orders[1].record
    assert back.record == solution.record
    np.testing.assert_array_equal(back.orders[2].y, solution.orders[2].y)


# ------------------------------------------------------------- on the simulator

# Offsets from pastasoss of a few tenths of a pixel, order 1's spectrum 1 px to
# the right and order 2's 1 px to the left of pastasoss's wavelengths, and
# per-integration drifts in x, y and width.
INJECTED = dict(
    trace_dy=-0.4,
    trace_dx_order1=1.0,
    trace_dx_order2=-1.0,
    drift_x=0.1,
    drift_y=0.1,
    jitter_rms_x=0.02,
    jitter_rms_width=0.003,
    drift_width=0.01,
)


@pytest.fixture(scope="module")
def traced(tmp_path_factory):
    """Tiny exposure with injected offsets and drifts, traced (background removed first)."""
    result = simulate(tmp_path_factory.mktemp("tracing"), preset="tiny", seed=5, **INJECTED)
    truth = load_truth(result.truth_file)
    cube, _ = load_exposure(result.segment_files)
    cube.data -= truth["background"][None]  # soss_background runs before soss_tracing
    model = SossTracingStep.call(cube)
    return model, truth


def test_refined_traces_within_005_px_of_truth(traced):
    model, truth = traced
    solution = TraceSolution.from_tree(model.soss_traces)
    assert solution.source == "pastasoss+refined"
    for order in (1, 2):
        x, y = truth[f"order{order}"]["x"], truth[f"order{order}"]["y"]
        on = (x >= 4) & (x < 2044) & (y > 0) & (y < 251)
        error = solution.orders[order].y[x[on]] - y[on]
        assert np.nanmax(np.abs(error)) < 0.05, order
        assert solution.orders[order].record["dy"] == pytest.approx(-0.4, abs=0.05)


def test_wavelength_offsets_recovered_and_applied(traced):
    model, truth = traced
    solution = TraceSolution.from_tree(model.soss_traces)
    for order, injected in ((1, 1.0), (2, -1.0)):
        check = solution.orders[order].record["wavelength"]
        assert check["status"] == "applied"
        assert check["shift"] == pytest.approx(injected, abs=0.1)
        x, wave = truth[f"order{order}"]["x"], truth[f"order{order}"]["wavelength"]
        dispersion = np.abs(np.gradient(wave))
        error_px = (solution.orders[order].wavelength[x] - wave) / dispersion
        assert np.nanmax(np.abs(error_px[5:-5])) < 0.1
    assert "order2_vs_order1" in solution.record


def test_regressors_follow_injected_drifts(traced):
    model, truth = traced
    regressors = getattr(model, REGRESSORS_ATTRIBUTE)
    assert regressors.dtype.names == ("int_num", "dx", "dy", "dwidth")
    np.testing.assert_array_equal(regressors["int_num"], np.arange(1, 31))
    for name in ("dx", "dy", "dwidth"):
        r = np.corrcoef(regressors[name], truth["jitter"][name])[0, 1]
        assert r > 0.9, (name, r)


def test_order0_contaminants_are_masked(traced):
    from scipy import ndimage

    from jwst_soss_custom._base.data import order3_centre

    model, truth = traced
    mask = getattr(model, ORDER0_ATTRIBUTE)
    assert mask.shape == (256, 2048) and mask.dtype == bool
    solution = TraceSolution.from_tree(model.soss_traces)
    # The search excludes the trace cores (as the step's defaults).
    cores = core_mask([t.y for t in solution.orders.values()], mask.shape, 20)
    cores |= core_mask([order3_centre(mask.shape[1])], mask.shape, 10)
    image = truth["order0"]["image"]
    # Contaminant light outside the cores: at least 90 % is masked (the rest
    # is faint wings, below the 5-sigma threshold of a 30-integration deep frame).
    assert image[mask & ~cores].sum() > 0.9 * image[~cores].sum()
    for x, y in zip(truth["order0"]["x"], truth["order0"]["y"]):
        if not cores[int(y), int(x)]:
            assert mask[int(y), int(x)]
    # Few masked pixels farther than 10 px from any contaminant pixel (measured: ~25).
    near = ndimage.binary_dilation(truth["order0"]["mask"], iterations=10)
    assert (mask & ~near).sum() < 200


def test_regressors_and_mask_reach_x1dints(traced):
    from jwst_soss_custom.extract import SossExtractStep

    model, _ = traced
    x1d = SossExtractStep.call(model, method="box")
    regressors = getattr(x1d, REGRESSORS_ATTRIBUTE)
    np.testing.assert_array_equal(regressors, getattr(model, REGRESSORS_ATTRIBUTE))
    assert getattr(x1d, ORDER0_ATTRIBUTE).sum() == getattr(model, ORDER0_ATTRIBUTE).sum()
    part = slice_x1dints(x1d, 10, 20)
    np.testing.assert_array_equal(getattr(part, REGRESSORS_ATTRIBUTE)["int_num"], np.arange(11, 21))


def test_user_order0_mask_file_is_added(traced, tmp_path):
    model, _ = traced
    user = np.zeros((256, 2048), bool)
    user[120:130, 300:310] = True
    np.save(tmp_path / "mask.npy", user)
    out = SossTracingStep.call(model, order0_file=str(tmp_path / "mask.npy"), regressors=False,
                               wavelength_check=False)
    mask = getattr(out, ORDER0_ATTRIBUTE)
    assert mask[user].all()
    assert (mask & ~user).sum() == (getattr(model, ORDER0_ATTRIBUTE) & ~user).sum()
    np.save(tmp_path / "bad.npy", np.zeros((96, 2048), bool))
    with pytest.raises(ValueError, match="expected"):
        SossTracingStep.call(model, order0_file=str(tmp_path / "bad.npy"), regressors=False)


def test_wavelength_not_measurable_without_lines(tmp_path):
    result = simulate(tmp_path, preset="tiny", nints=6, nsegments=1, stellar_line_depth=0.0,
                      **NO_SYSTEMATICS)
    with datamodels.open(result.segment_files[0]) as model:
        out = SossTracingStep.call(model, regressors=False, order0_detect=False)
    solution = TraceSolution.from_tree(out.soss_traces)
    for order in (1, 2):
        check = solution.orders[order].record["wavelength"]
        assert check["status"] == "not measurable"
        assert check["shift"] is None
    # pastasoss's wavelengths are kept
    np.testing.assert_array_equal(
        solution.orders[1].wavelength[100:110],
        np.interp(np.arange(100, 110), *model_trace(245.79, 1)[::2]),
    )


def test_substrip96_is_refused_with_a_clear_message():
    from jwst_soss_custom import SossInputError

    model = datamodels.CubeModel((2, 96, 2048))
    model.meta.exposure.type = "NIS_SOSS"
    model.meta.subarray.name = "SUBSTRIP96"
    with pytest.raises(SossInputError, match="SUBSTRIP96"):
        SossTracingStep.call(model)


def test_f277w_image_finds_order0s_under_order2_and_the_depth_is_recovered(tmp_path):
    """Two contaminants lie 5 and 9 rows from order 2's centre, inside its core:
    the deep frame cannot show them and, left in the aperture, their constant
    light dilutes the transit of ~60 order-2 columns by 0.6 % and 3 %. An F277W
    exposure (no order-2 light) shows them; searching it outside the CLEAR
    cores masked neither, so the dilution stayed."""
    from jwst_soss_custom.extract import SossExtractStep

    # Depth x5 so the dilution stands far above the noise of 30 integrations.
    result = simulate(tmp_path, preset="tiny", seed=7, depth_scale=5.0, **NO_SYSTEMATICS)
    truth = load_truth(result.truth_file)
    cube, _ = load_exposure(result.segment_files)
    cube.data -= truth["background"][None]  # soss_background runs before soss_tracing
    # The F277W view of the field: order 0s 2.63 x fainter than through CLEAR
    # (docs/simulator.md), on background noise.
    rng = np.random.default_rng(0)
    f277w = truth["order0"]["image"] / 2.63 + rng.normal(0.0, 0.05, (256, 2048))
    np.save(tmp_path / "f277w.npy", f277w.astype(np.float32))
    model = SossTracingStep.call(cube, order0_file=str(tmp_path / "f277w.npy"), regressors=False)
    spectrum = next(s for s in SossExtractStep.call(model).spec if s.spectral_order == 2)
    flux = np.asarray(spectrum.spec_table["FLUX"], float)
    order2 = truth["order2"]
    by_wave = np.argsort(order2["wavelength"])
    # Detector column of each x1dints element (they run in wavelength).
    x = np.rint(np.interp(spectrum.spec_table["WAVELENGTH"][0],
                          order2["wavelength"][by_wave], order2["x"][by_wave]))
    under = [(cx, cy) for cx, cy in zip(truth["order0"]["x"], truth["order0"]["y"])
             if abs(cy - np.interp(cx, order2["x"], order2["y"])) < 10]
    assert len(under) == 2
    dilution = {}
    for cx, _ in under:
        span = np.abs(x - cx) <= 28  # the 56-column stamp
        truth_span = np.isin(order2["x"], x[span])
        columns = order2["column_flux"][truth_span]
        injected = order2["light_curves"][:, truth_span] @ columns / columns.sum()
        # flux = A (1 - k (1 - injected)): k = 1 when the depth is undiluted.
        design = np.column_stack([np.ones_like(injected), injected - 1.0])
        measured = np.nansum(flux[:, span], axis=1)
        coef, *_ = np.linalg.lstsq(design, measured, rcond=None)
        resid = measured - design @ coef
        cov = np.linalg.inv(design.T @ design) * resid.var(ddof=2)
        k, k_err = coef[1] / coef[0], np.sqrt(cov[1, 1]) / coef[0]
        dilution[cx] = round(float((1.0 - k) / k_err), 1)
    # Measured: 0.0 and 1.3 sigma; with the CLEAR cores excluded, 4.7 and 14.7.
    assert all(abs(d) < 4 for d in dilution.values()), dilution
