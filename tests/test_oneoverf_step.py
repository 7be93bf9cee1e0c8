"""soss_oneoverf as a Step: masks from soss_tracing and files, saved offsets, guard."""

import numpy as np
import pytest
from astropy.io import fits
from stdatamodels.jwst import datamodels

from jwst_soss_custom import SossInputError
from jwst_soss_custom.oneoverf import SossOneOverFStep
from jwst_soss_custom.oneoverf.oneoverf_step import load_mask


@pytest.fixture(scope="module")
def segment(tiny_exposure):
    with datamodels.open(tiny_exposure.segment_files[0]) as model:
        yield model.copy()


def test_step_saves_offsets_and_uses_order0_and_user_masks(segment, tiny_truth, tmp_path):
    model = segment.copy()
    # As after soss_background (a scaled deep frame must not scale the background)
    model.data -= tiny_truth["background"]
    model.soss_order0_mask = tiny_truth["order0"]["mask"].astype(np.uint8)
    user = np.zeros((256, 2048), bool)
    user[200:210, :] = True
    np.save(tmp_path / "mask.npy", user)
    result = SossOneOverFStep.call(
        model,
        method="solve",
        mask_file=str(tmp_path / "mask.npy"),
        save_offsets=True,
        output_dir=str(tmp_path),
    )
    assert result.meta.cal_step.soss_oneoverf == "COMPLETE"
    (path,) = tmp_path.glob("*_oneoverf_offsets.fits")
    with fits.open(path) as hdul:
        assert hdul["OFFSETS"].data.shape == (model.data.shape[0], 1, 2048)
        assert hdul[0].header["METHOD"] == "solve"
        fitted = hdul["OFFSETS"].data[:, 0]
    # The fitted offsets follow the injected ones down to the photon floor of
    # the estimate (~0.37 of the injected RMS, see test_oneoverf_recovery),
    # time means removed (they belong to the deep frame).
    truth = tiny_truth["oneoverf"]["column_offsets"][: model.data.shape[0]]
    residual = fitted - truth
    residual -= residual.mean(axis=0)
    assert residual[:, 4:-4].std() < 0.5 * (truth - truth.mean(axis=0))[:, 4:-4].std()


@pytest.mark.parametrize("group_step", ["clean_flicker_noise", "soss_oneoverf_groups"])
def test_step_skips_after_group_level_cleaning_unless_forced(segment, group_step):
    model = segment.copy()
    setattr(model.meta.cal_step, group_step, "COMPLETE")
    skipped = SossOneOverFStep.call(model)
    assert skipped.meta.cal_step.soss_oneoverf == "SKIPPED"
    np.testing.assert_array_equal(skipped.data, segment.data)
    forced = SossOneOverFStep.call(model, force=True, method="median")
    assert forced.meta.cal_step.soss_oneoverf == "COMPLETE"


def test_mask_files_npy_and_fits_and_bad_shape(tmp_path):
    mask = np.zeros((256, 2048), np.uint8)
    mask[10, 20] = 1
    np.save(tmp_path / "m.npy", mask)
    fits.PrimaryHDU(mask).writeto(tmp_path / "m.fits")
    for name in ("m.npy", "m.fits"):
        loaded = load_mask(tmp_path / name, (256, 2048))
        assert loaded.dtype == bool and loaded.sum() == 1 and loaded[10, 20]
    np.save(tmp_path / "small.npy", np.zeros((96, 2048)))
    with pytest.raises(SossInputError, match="shape"):
        load_mask(tmp_path / "small.npy", (256, 2048))
    with pytest.raises(SossInputError, match="does not exist"):
        load_mask(tmp_path / "none.npy", (256, 2048))


def test_project_saves_its_loadings_and_needs_the_ramp_shape(segment, tiny_truth, tmp_path):
    model = segment.copy()
    model.data -= tiny_truth["background"]
    result = SossOneOverFStep.call(model, method="project", save_offsets=True,
                                   output_dir=str(tmp_path))
    assert result.meta.cal_step.soss_oneoverf == "COMPLETE"
    (path,) = tmp_path.glob("*_oneoverf_offsets.fits")
    with fits.open(path) as hdul:
        assert hdul[0].header["METHOD"] == "project"
        assert 1.0 < hdul[0].header["GAIN"] < 2.5  # the simulator's 1.61 e-/DN
        assert hdul["OFFSETS"].data.shape == (model.data.shape[0], 2, 2048)
        beta, gamma = hdul["BETA"].data, hdul["GAMMA"].data
    assert beta.shape == gamma.shape == (256, 2048)
    # Pixel (y, x) received BETA x OFFSETS[:, 0, x] + GAMMA x OFFSETS[:, 1, x].
    with fits.open(path) as hdul:
        offsets = hdul["OFFSETS"].data
    received = offsets[:, 0][:, None, :] * beta + offsets[:, 1][:, None, :] * gamma
    removed = model.data - result.data
    finite = np.isfinite(removed)
    np.testing.assert_allclose(removed[finite], received[finite], atol=1e-4)
    broken = segment.copy()
    broken.meta.exposure.group_time = None
    with pytest.raises(SossInputError, match="positive TGROUP"):
        SossOneOverFStep.call(broken, method="project")
