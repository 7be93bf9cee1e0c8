"""soss_background: template libraries, scales either side of the step, recovery."""

import numpy as np
import pytest
from astropy.io import fits

from jwst_soss_custom.background.background import (
    background_model,
    fit_background,
    load_template,
    load_templates,
    locate_step,
    subtract_background,
    trimmed_median,
)
from jwst_soss_custom.references import default_background_path

LEFT = (slice(235, 250), slice(100, 400))  # the step's default regions
RIGHT = (slice(235, 250), slice(720, 900))


@pytest.fixture(scope="module")
def template():
    return load_template(default_background_path(), (256, 2048))


def test_step_is_located_on_the_packaged_template(template):
    # The simulator's calibration measures the step at column 702.5 (docs/simulator.md)
    assert abs(locate_step(template) - 702.5) <= 2


def test_library_picks_the_right_template_and_separate_scales(template, tmp_path):
    rng = np.random.default_rng(4)
    step = locate_step(template)
    wrong = template * np.linspace(0.5, 1.5, 256)[:, None]  # a different vertical shape
    flat = np.full_like(template, np.nanmedian(template))
    library = tmp_path / "library.fits"
    fits.HDUList(
        [fits.PrimaryHDU()] + [fits.ImageHDU(t, name="SCI") for t in (wrong, template, flat)]
    ).writeto(library)
    templates = load_templates(library, (256, 2048))
    assert templates.shape == (3, 256, 2048)
    truth = np.array([0.9, 0.93])
    # 0.34 DN/s per pixel, as the simulator's background photon + read noise
    frame = background_model(template, truth, step) + rng.normal(0, 0.34, template.shape)
    index, scales = fit_background(frame, templates, [LEFT, RIGHT], step)
    assert index == 1
    # 0.34 / ~4.7 DN/s per pixel over >= 6000 pixels: 1e-3 relative; 5 sigma
    np.testing.assert_allclose(scales, truth, rtol=5e-3)
    one_index, one = fit_background(frame, templates, [LEFT, RIGHT], step, separate=False)
    assert one[0] == one[1] and truth[0] < one[0] < truth[1]


def test_per_integration_scales_follow_a_varying_background(template):
    rng = np.random.default_rng(5)
    step = locate_step(template)
    truth = np.stack([np.linspace(0.8, 1.0, 6), np.linspace(0.85, 1.05, 6)], axis=1)
    frames = background_model(template, truth, step) + rng.normal(0, 0.34, (6, 256, 2048))
    frames = frames.astype(np.float32)
    _, scales = fit_background(frames, template[None], [LEFT, RIGHT], step)
    np.testing.assert_allclose(scales, truth, rtol=5e-3)
    data = frames.copy()
    subtract_background(data, template, scales, step)
    assert abs(np.mean(data[:, LEFT[0], LEFT[1]])) < 0.01  # 1 % of ~4 DN/s


def test_errors_name_the_fix(template, tmp_path):
    with pytest.raises(ValueError, match="straddle the step"):
        fit_background(template, template[None], [LEFT, (slice(225, 250), slice(650, 800))], 702)
    np.save(tmp_path / "stack.npy", np.ones((2, 96, 2048)))
    with pytest.raises(ValueError, match="SUBSTRIP96"):
        load_templates(tmp_path / "stack.npy", (256, 2048))
    np.save(tmp_path / "two.npy", np.ones((2, 256, 2048)))
    with pytest.raises(ValueError, match="exactly one"):
        load_template(tmp_path / "two.npy", (256, 2048))
    with pytest.raises(ValueError, match="percentiles"):
        trimmed_median(np.ones(10), (60, 50))


def test_trimmed_median_ignores_nan_and_one_sided_outliers():
    values = np.concatenate([np.full(90, 1.0), np.full(10, 50.0), [np.nan]])
    assert trimmed_median(values, (10, 90)) == 1.0
