"""Wavelength check: unbiased for stars it was not built from, honest errors, refusal when faint.

The scenes are the simulator's (`noisy_deep_frame`: the deep frame of a
537-integration exposure without simulating it). Their host stars are drawn
from the simulator's own physical line table, with perturbed depths and
widths, lines the packaged list lacks, a random forest of weak lines and, for
cool stars, molecular bands; their lines are Doppler shifted by the star's
radial velocity. Tolerances are the quoted uncertainties (4 sigma).
"""

import numpy as np
import pytest

from jwst_soss_custom.datasets.config import make_config
from jwst_soss_custom.datasets.scene import noisy_deep_frame
from jwst_soss_custom.tracing.refine import refine_solution
from jwst_soss_custom.tracing.tracing import model_trace, predict_traces
from jwst_soss_custom.tracing.wavecal import (
    C_KMS,
    check_wavelengths,
    combine_shifts,
    load_line_list,
    solve_shifts,
)

INJECTED = {1: -0.6, 2: 0.7}
VELOCITY = 45.0


def _checked(velocity, **overrides):
    config = make_config("realistic", teff=4000.0, stellar_rv=VELOCITY, trace_dx=0.0,
                         trace_dx_order1=INJECTED[1], trace_dx_order2=INJECTED[2], seed=21,
                         **overrides)
    deep, noise, scene = noisy_deep_frame(config)
    solution = refine_solution(deep, predict_traces(config.pwcpos, (1, 2), deep.shape[1]))
    check_wavelengths(deep, solution, load_line_list(), noise=noise, velocity=velocity)
    return solution, scene


@pytest.fixture(scope="module")
def cool_star():
    return _checked(VELOCITY)


def test_the_star_is_not_the_packaged_line_list(cool_star):
    _, scene = cool_star
    listed = load_line_list()[0]
    stars = np.array([w for _, w, _, _ in scene.host.lines])
    unlisted = np.min(np.abs(stars[:, None] - listed[None, :]), axis=1) > 5e-4
    assert unlisted.sum() > 100  # extra lines and a forest the check knows nothing of
    assert scene.host.bands  # molecular bands of a 4000 K star


def test_offsets_recovered_with_the_velocity_given(cool_star):
    solution, scene = cool_star
    assert solution.record["radial_velocity"]["source"] == "given"
    for order, injected in INJECTED.items():
        check = solution.orders[order].record["wavelength"]
        assert check["status"] == "applied"
        assert abs(check["shift"] - injected) < 4 * check["error"], order
        assert check["error"] < 0.1
        # The wavelengths now in use match the scene's within the quoted error.
        x = scene.traces[order].columns
        _, wave, _ = scene.traces[order].at()
        dispersion = np.abs(np.gradient(wave))
        inside = (x > 20) & (x < 2028)
        error_px = (solution.orders[order].wavelength[x] - wave) / dispersion
        assert np.nanmax(np.abs(error_px[inside])) < 4 * check["error"] + 0.01
        # The trace follows the shift along itself (dx from the wavelengths).
        assert solution.orders[order].record["wavelength"]["applied_shift"] == check["shift"]


def test_velocity_fitted_when_not_given():
    solution, _ = _checked(None)
    velocity = solution.record["radial_velocity"]
    assert velocity["source"] == "fitted"
    assert abs(velocity["value"] - VELOCITY) < 4 * velocity["error"]
    for order, injected in INJECTED.items():
        check = solution.orders[order].record["wavelength"]
        assert abs(check["shift"] - injected) < 4 * check["error"], order


def _assert_pastasoss_kept(solution, order):
    check = solution.orders[order].record["wavelength"]
    assert check["applied_shift"] == 0.0
    predicted = predict_traces(solution.pwcpos, (1, 2), 2048)
    np.testing.assert_array_equal(solution.orders[order].wavelength,
                                  predicted.orders[order].wavelength)
    return check["status"]


def test_a_faint_star_keeps_pastasoss():
    # 2000x fainter than WASP-39 (J ~ 19): no line seen in either order.
    solution, _ = _checked(VELOCITY, flux_scale=5e-4)
    for order in (1, 2):
        assert _assert_pastasoss_kept(solution, order) == "not measurable"


def test_a_shift_less_certain_than_max_error_is_not_applied():
    config = make_config("realistic", teff=4000.0, stellar_rv=VELOCITY, seed=21)
    deep, noise, _ = noisy_deep_frame(config)
    solution = refine_solution(deep, predict_traces(config.pwcpos, (1, 2), deep.shape[1]))
    check_wavelengths(deep, solution, load_line_list(), noise=noise, max_error=0.005)
    for order in (1, 2):
        assert _assert_pastasoss_kept(solution, order) == "too uncertain"
        assert solution.orders[order].record["wavelength"]["error"] > 0.005


def test_combine_shifts_errors_match_the_scatter():
    """Features pulled by blends in proportion to 1/depth: pulls of width ~1."""
    rng = np.random.default_rng(4)
    pulls = []
    for _ in range(300):
        depth = rng.uniform(0.02, 0.3, 12)
        errors = rng.uniform(0.005, 0.05, 12)
        shifts = 0.3 + rng.normal(0, errors) + rng.normal(0, 0.004 / depth)
        fit = combine_shifts(shifts, errors, 1 / depth)
        pulls.append((fit["shift"] - 0.3) / fit["error"])
    pulls = np.array(pulls)
    # 300 draws: the std of the pulls is known to ~4 %, their mean to ~0.06.
    assert 0.8 < pulls.std() < 1.2
    assert abs(pulls.mean()) < 0.25


def test_combine_shifts_drops_a_wrong_identification():
    shifts = np.array([0.50, 0.52, 0.48, 0.51, 0.49, 2.5])
    fit = combine_shifts(shifts, np.full(6, 0.02))
    assert not fit["used"][-1] and fit["used"][:-1].all()
    assert fit["shift"] == pytest.approx(0.5, abs=0.03)


def test_solve_shifts_separates_velocity_from_the_order_shifts():
    """Doppler shifts grow with wavelength over the dispersion; order shifts do not."""
    rng = np.random.default_rng(5)
    truth = {1: 0.4, 2: -0.7}
    features = {}
    for order, wave in ((1, np.linspace(0.95, 2.3, 14)), (2, np.linspace(0.65, 1.25, 9))):
        mx, _, mwave = model_trace(245.76, order)
        ranked = np.argsort(mwave)
        x = np.interp(wave, mwave[ranked], mx[ranked])
        per_px = wave / C_KMS / np.interp(x, mx, np.gradient(mwave, mx))
        errors = np.full(wave.size, 0.03)
        features[order] = {"wavelength": wave, "error": errors, "depth": np.full(wave.size, 0.1),
                           "velocity_px": per_px,
                           "shift": truth[order] + per_px * -50.0 + rng.normal(0, errors)}
    fitted = solve_shifts(features)
    assert abs(fitted["velocity"] + 50.0) < 4 * fitted["velocity_error"]
    given = solve_shifts(features, velocity=-50.0)
    for order in truth:
        assert abs(fitted["shift"][order] - truth[order]) < 4 * fitted["error"][order]
        assert abs(given["shift"][order] - truth[order]) < 4 * given["error"][order]
        assert given["error"][order] < fitted["error"][order]  # the velocity costs precision


def test_the_tracing_figure_shows_the_wavelength_check(cool_star, tmp_path):
    from jwst_soss_custom.plotting.tracing import plot_tracing

    solution, scene = cool_star
    deep = scene.star()
    path = plot_tracing(deep, solution, np.zeros(deep.shape, bool), None, tmp_path / "t.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    features = solution.orders[1].record["wavelength"]["features"]
    assert all("velocity_px" in f for f in features)
