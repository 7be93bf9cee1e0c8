"""Field-star traces and order overlap: found, modelled, subtracted, reported."""

import numpy as np
import pytest
from astropy.table import Table

from jwst_soss_custom._base.data import order3_centre
from jwst_soss_custom._base.errors import SossInputError
from jwst_soss_custom._base.geometry import reference_pixels
from jwst_soss_custom.datasets import NO_SYSTEMATICS, load_truth, make_config, simulate
from jwst_soss_custom.datasets.field import Contaminant
from jwst_soss_custom.datasets.scene import noisy_deep_frame
from jwst_soss_custom.extract.extract import (
    aperture_profile,
    aperture_rows,
    optimal_extract,
    static_flux,
    window_weights,
)
from jwst_soss_custom.lightcurves.orders import order_data
from jwst_soss_custom.tracing import predict_traces
from jwst_soss_custom.tracing.contamination import contamination_model, neighbour_wings
from jwst_soss_custom.tracing.refine import core_mask, refine_solution
from jwst_soss_custom.tracing.tracing_step import read_field_catalog

# ---------------------------------------------------------------- deep frames


def _scene_deep(preset="realistic", stars=None, seed=0):
    """A pipeline-like deep frame of a preset; ``stars`` replace its field stars."""
    config = make_config(preset, seed=seed)
    deep, noise, scene = noisy_deep_frame(config)
    if stars is not None:
        deep = deep - scene.contaminant_image
        scene.contaminants = stars
        scene.contaminant_image = scene._contaminant_image()
        deep = deep + scene.contaminant_image
    solution = refine_solution(deep, predict_traces(config.pwcpos, (1, 2), 2048), 60.0, 20.0)
    centres = {o: t.y for o, t in solution.orders.items()}
    waves = {o: t.wavelength for o, t in solution.orders.items()}
    excluded = (reference_pixels(deep.shape) | scene.order0_mask
                | core_mask([order3_centre(2048)], deep.shape, 26.0))
    return deep, scene, centres, waves, excluded


def _aperture_light(image, centre, halfwidth=20):
    rows = np.arange(image.shape[0])[:, None]
    band = np.abs(rows - np.nan_to_num(centre, nan=-1e6)[None, :]) <= halfwidth
    return np.where(band, image, 0.0).sum(axis=0)


def test_one_field_trace_found_and_its_light_under_the_target_recovered():
    # One field star 1.5 % of the target, its order 1 crossing the target's
    # order-1 aperture at a slant (its traces are the target's shifted).
    star = Contaminant(dx=-250.0, dy=30.0, flux_ratio=0.015, teff=4500.0)
    deep, scene, centres, waves, excluded = _scene_deep(stars=[star])
    model = contamination_model(deep, centres, waves, excluded)
    assert model.record["n_field_traces"] == 1, model.record
    found = model.stars[0]
    # Across the dispersion the trace fixes the shift to a fraction of a
    # pixel; along it (a smooth trace) only to tens of pixels.
    assert found.dy == pytest.approx(star.dy, abs=1.0)
    assert found.dx == pytest.approx(star.dx, abs=40.0)
    assert found.quality > 0.9
    target = _aperture_light(scene.order_core(1), centres[1])
    truth = _aperture_light(scene.contaminant_image, centres[1])
    fitted = _aperture_light(model.field, centres[1])
    lit = target > 0.05 * target.max()
    true_dilution = truth[lit] / target[lit]
    left = (truth - fitted)[lit] / target[lit]
    assert true_dilution.max() > 0.005  # the case matters
    # At least three quarters of the dilution is modelled in every column,
    # 80 % on average (the ratio's polynomial, the shift along the trace).
    assert np.abs(left).max() < 0.25 * true_dilution.max()
    assert abs(left.mean()) < 0.2 * true_dilution.mean()


@pytest.mark.parametrize("preset", ["realistic", "hard"])
def test_every_field_trace_of_the_presets_found_and_the_dilution_mostly_removed(preset):
    deep, scene, centres, waves, excluded = _scene_deep(preset)
    model = contamination_model(deep, centres, waves, excluded)
    truth = [(s.dx, s.dy) for s in scene.contaminants]
    # Each injected star is matched by one found across the dispersion
    # (dy within 7 px: a trace seen only along a straight stretch leaves
    # its shift free along that stretch).
    for dx, dy in truth:
        assert any(abs(s.dy - dy) < 7 and abs(s.dx - dx) < 40 for s in model.stars), (
            dx, dy, model.record["field_traces"])
    for order in (1, 2):
        target = _aperture_light(scene.order_core(order), centres[order])
        lit = target > 0.05 * target.max()
        before = _aperture_light(scene.contaminant_image, centres[order])[lit] / target[lit]
        after = before - _aperture_light(model.field, centres[order])[lit] / target[lit]
        # The mean dilution (what biases an order's depths as a whole)
        # shrinks at least three-fold (measured: ~10x on realistic, 3-5x on
        # hard, whose star under the target's core is seen by its edges only).
        assert abs(after.mean()) < before.mean() / 3, (order, before.mean(), after.mean())


def test_a_clean_scene_gets_no_field_trace():
    deep, scene, centres, waves, excluded = _scene_deep(stars=[])
    model = contamination_model(deep, centres, waves, excluded)
    assert model.record["n_field_traces"] == 0, model.record
    assert not model.field.any()


def test_a_catalogue_gives_the_same_model_without_a_search():
    star = Contaminant(dx=-250.0, dy=30.0, flux_ratio=0.015, teff=4500.0)
    deep, scene, centres, waves, excluded = _scene_deep(stars=[star])
    searched = contamination_model(deep, centres, waves, excluded)
    given = contamination_model(deep, centres, waves, excluded,
                                shifts=[(searched.stars[0].dx, searched.stars[0].dy)])
    assert given.record["search"] == "catalogue"
    np.testing.assert_allclose(given.field, searched.field, atol=1e-4)


def test_field_catalog_file_errors_are_one_line_with_the_fix(tmp_path):
    Table({"dx": [10.0], "dy": [20.0]}).write(tmp_path / "ok.ecsv")
    assert read_field_catalog(tmp_path / "ok.ecsv") == [(10.0, 20.0)]
    Table({"x": [10.0]}).write(tmp_path / "bad.ecsv")
    with pytest.raises(SossInputError, match="no column dx, dy"):
        read_field_catalog(tmp_path / "bad.ecsv")
    with pytest.raises(SossInputError, match="does not exist"):
        read_field_catalog(tmp_path / "missing.ecsv")


# ---------------------------------------------------------------- order overlap


def test_neighbour_wings_mirror_a_symmetric_profile_into_the_other_aperture():
    rows = np.arange(256.0)[:, None]
    x = np.arange(2048)
    c1, c2 = np.full(2048, 80.0), 80.0 + np.linspace(20.0, 60.0, 2048)
    profile = lambda c, a: a / (1.0 + ((rows - c[None, :]) / 6.0) ** 4)  # noqa: E731
    order1, order2 = profile(c1, 100.0), profile(c2, 40.0 + 0 * x[None, :])
    wings = neighbour_wings(order1 + order2, c1, c2, halfwidth=20.0, reach=26.0)
    band = (np.abs(rows - c1[None, :]) <= 20) & (np.abs(rows - c2[None, :]) <= 26)
    near = band & (rows < c2[None, :])
    # Mirrored from order 2's far side: its own light, plus order 1's far
    # wing there (small), within a few 1e-3 of order 2's flux in the band.
    got, want = _aperture_light(np.where(near, wings, 0), c1), _aperture_light(
        np.where(near, order2, 0), c1)
    assert np.abs(got - want).max() < 0.01 * order2.sum(axis=0).max()


# ---------------------------------------------------------------- extraction


def test_static_flux_is_what_the_extraction_gives_for_a_fixed_image():
    rng = np.random.default_rng(3)
    ny, nx = 64, 50
    rows_all = np.arange(ny)[:, None]
    centre = np.full(nx, 30.3)
    image = 50.0 * np.exp(-0.5 * ((rows_all - centre[None, :]) / 4.0) ** 2) + 1.0
    cols = np.arange(nx)
    rows, valid = aperture_rows(centre, 10.0, ny)
    weights = window_weights(rows, valid, centre, 20.0)
    profile = aperture_profile(image, rows, cols, weights)
    variance = rng.uniform(1.0, 2.0, rows.shape)
    other = rng.uniform(0.0, 3.0, (ny, nx))
    cube = other[None].astype(np.float32)
    flux, _, _, _ = optimal_extract(cube, np.ones_like(cube), np.zeros(cube.shape, np.uint32),
                                    cols, rows, weights, profile, variance, n_iter=0)
    np.testing.assert_allclose(static_flux(other, rows, cols, weights, profile, variance),
                               flux[0], rtol=1e-6)
    np.testing.assert_allclose(static_flux(other, rows, cols, weights, profile),
                               (weights * other[rows, cols[None, :]]).sum(axis=0))


# ---------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def contaminated(tmp_path_factory):
    """A tiny exposure with two field stars and nothing else systematic, through soss_spec2."""
    from jwst_soss_custom.pipeline import SossSpec2Pipeline

    folder = tmp_path_factory.mktemp("contaminated")
    sim = simulate(folder, preset="tiny", seed=5, n_contaminants=2, **NO_SYSTEMATICS)
    results = SossSpec2Pipeline.call([str(p) for p in sim.segment_files], processes=1,
                                     steps={"oneoverf": {"skip": True}})
    return load_truth(sim.truth_file), results


def _depth_scale(truth, x1dints, order):
    """Per column: the recovered transit signal over the injected one (1 = undiluted)."""
    parts = [order_data(model)[order] for model in x1dints]
    wave = parts[0]["wavelength"]
    flux = np.concatenate([part["flux"] for part in parts])
    tw = np.asarray(truth[f"order{order}"]["wavelength"])
    idx = np.argsort(tw)
    lc = np.asarray(truth[f"order{order}"]["light_curves"])
    signal = 1 - np.array([np.interp(wave, tw[idx], row[idx]) for row in lc])
    oot = signal.max(axis=1) < 1e-9
    dip = 1 - flux / np.nanmedian(flux[oot], axis=0)
    scale = np.nansum(dip * signal, axis=0) / np.nansum(signal**2, axis=0)
    dilution = np.interp(wave, tw[idx], np.asarray(truth[f"order{order}"]["dilution"])[idx])
    return scale, dilution, wave


def test_depths_are_no_longer_diluted_by_the_field_stars(contaminated):
    truth, x1dints = contaminated
    scale, dilution, _ = _depth_scale(truth, x1dints, 1)
    worst = dilution > np.percentile(dilution, 80)
    assert dilution[worst].mean() > 0.004  # the field stars matter there
    # Column scales of 30 integrations scatter; their mean over the worst
    # fifth of the columns is known to its standard error.
    error = scale[worst].std() / np.sqrt(worst.sum())
    diluted = np.mean(1 / (1 + dilution[worst]))
    assert abs(scale[worst].mean() - 1) < 3 * error + 0.002, (scale[worst].mean(), diluted)
    assert scale[worst].mean() - diluted > 3 * error  # and the correction did something


def test_x1dints_record_what_was_subtracted(contaminated):
    from jwst_soss_custom.metadata import contamination_record

    _, x1dints = contaminated
    record = contamination_record(x1dints[0])
    assert set(record) == {1, 2}
    for entry in record.values():
        assert entry["field_flux"].shape == entry["wavelength"].shape
        assert np.nanmax(entry["dilution"]) > 0.002
