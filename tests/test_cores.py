"""Unit tests of the pure numpy cores on hand-made arrays with known answers."""

import numpy as np
import pytest

from jwst_soss_custom import SossInputError
from jwst_soss_custom.background.background import background_scale, box_slices, load_template
from jwst_soss_custom.badpix.badpix import replace_bad_pixels
from jwst_soss_custom.extract.extract import box_extract, box_weights
from jwst_soss_custom.oneoverf.oneoverf import column_offsets, trace_mask, white_light_scaling
from jwst_soss_custom.tracing import TraceSolution, predict_traces


def test_badpix_interpolates_along_rows_exactly_for_linear_data():
    nints, ny, nx = 3, 8, 40
    data = np.broadcast_to(np.arange(nx, dtype=np.float32) * 2.0 + 5.0, (nints, ny, nx)).copy()
    truth = data.copy()
    bad = np.zeros(data.shape, bool)
    bad[0, 3, 10] = bad[1, 5, 20] = bad[2, 2, 21] = bad[2, 2, 22] = True
    data[bad] = np.nan
    n_fallback = replace_bad_pixels(data, bad, max_distance=4)
    assert n_fallback == 0
    np.testing.assert_allclose(data, truth, rtol=1e-6)


def test_badpix_falls_back_to_time_median_when_no_neighbour():
    data = np.ones((5, 4, 12), np.float32) * np.arange(5)[:, None, None]
    bad = np.zeros(data.shape, bool)
    bad[2, 1, :] = True  # the whole row is bad in one integration
    n_fallback = replace_bad_pixels(data, bad, max_distance=2)
    assert n_fallback == 12
    # median over time of the good values 0, 1, 3, 4 of each pixel
    np.testing.assert_allclose(data[2, 1], 2.0)


def test_background_scale_recovers_injected_scale_despite_sources():
    rng = np.random.default_rng(3)
    template = np.full((40, 60), 4.0)
    template[:, 30:] = 7.0
    frame = 1.234 * template + rng.normal(0, 0.05, template.shape)
    frame[5:9, 10:50] += 200.0  # a star in the box must not bias the scale
    scale = background_scale(frame, template, (25.0, 50.0))
    # 25-50 percentile trimming biases a symmetric noise distribution slightly
    # low; bound it by the noise: 0.05/4 relative per pixel.
    assert scale == pytest.approx(1.234, abs=0.01)


def test_background_box_and_template_errors(tmp_path):
    with pytest.raises(ValueError, match="outside"):
        box_slices((0, 3000, 0, 10), (256, 2048))
    np.save(tmp_path / "t96.npy", np.ones((96, 2048)))
    with pytest.raises(ValueError, match="SUBSTRIP96"):
        load_template(tmp_path / "t96.npy", (256, 2048))
    with pytest.raises(SossInputError, match="override_bkg .*missing.npy does not exist"):
        load_template(tmp_path / "missing.npy", (256, 2048))


@pytest.mark.parametrize("what", ["override_bkg", "mask_file", "order0_file"])
@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("text.npy", b"not an array", r"text.npy is not a readable .npy file"),
        ("pickled.npy", None, r"pickled.npy is not a readable .npy file"),
        ("cut.fits", "truncated", r"cut.fits is not a readable .fits file"),
        ("image.png", b"\x89PNG", r"unknown format '.png'"),
    ],
)
def test_user_image_files_that_are_not_what_they_say_are_named(tmp_path, what, name, content,
                                                                message):
    """A bad override or mask file gets one message naming it, never numpy's or astropy's."""
    from astropy.io import fits

    from jwst_soss_custom.background.background import load_templates
    from jwst_soss_custom.oneoverf.oneoverf_step import load_mask
    from jwst_soss_custom.tracing.tracing_step import read_order0_file

    path = tmp_path / name
    if content is None:
        np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    elif content == "truncated":
        fits.HDUList([fits.PrimaryHDU(np.ones((256, 2048), np.float32))]).writeto(path)
        path.write_bytes(path.read_bytes()[: 2880 * 20])
    else:
        path.write_bytes(content)
    before = path.read_bytes()
    reader = {"override_bkg": lambda: load_templates(path, (256, 2048)),
              "mask_file": lambda: load_mask(path, (256, 2048)),
              "order0_file": lambda: read_order0_file(path, (256, 2048))}[what]
    with pytest.raises(SossInputError, match=f"{what} .*{message}"):
        reader()
    assert path.read_bytes() == before


def test_background_template_fits_and_npy_agree(tmp_path):
    from astropy.io import fits

    template = np.random.default_rng(0).random((256, 2048)).astype(np.float32)
    np.save(tmp_path / "t.npy", template)
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(template, name="SCI")]).writeto(tmp_path / "t.fits")
    np.testing.assert_array_equal(load_template(tmp_path / "t.npy", (256, 2048)), template)
    np.testing.assert_array_equal(load_template(tmp_path / "t.fits", (256, 2048)), template)


def test_box_weights_sum_to_width_and_are_fractional():
    centre = np.array([50.0, 50.3, 50.5, 99.75])
    w = box_weights(centre, 30.0, 256)
    np.testing.assert_allclose(w.sum(axis=0), 30.0)
    assert ((w > 0) & (w < 1)).sum(axis=0).max() <= 2
    # centre 50.3, half width 15: lower edge at 35.3 cuts pixel 35 ([34.5, 35.5]) to 0.2
    assert w[35, 1] == pytest.approx(0.2)


def test_box_extract_recovers_flux_and_propagates_errors():
    ny, nx, nints = 64, 20, 4
    rows = np.arange(ny)[:, None]
    centre = np.linspace(30, 34, nx)
    profile = np.exp(-0.5 * ((rows - centre) / 3.0) ** 2)
    profile /= profile.sum(axis=0)
    flux_true = np.array([100.0, 200.0, 300.0, 400.0])
    data = (flux_true[:, None, None] * profile[None]).astype(np.float32)
    err = np.full(data.shape, 0.5, np.float32)
    dq = np.zeros(data.shape, np.uint32)
    columns = np.arange(nx)
    w = box_weights(centre, 30.0, ny)
    flux, sigma, dq_out = box_extract(data, err, dq, columns, w)
    np.testing.assert_allclose(flux, flux_true[:, None] * np.ones(nx), rtol=1e-5)
    np.testing.assert_allclose(sigma, 0.5 * np.sqrt((w**2).sum(axis=0))[None] * np.ones((nints, 1)))
    assert not dq_out.any()
    # an unusable pixel inside the aperture makes that element NaN and flagged
    data[1, 32, 5] = np.nan
    flux, _, dq_out = box_extract(data, err, dq, columns, w)
    assert np.isnan(flux[1, 5]) and dq_out[1, 5] == 1
    assert np.isfinite(flux[0]).all()


def test_oneoverf_recovers_injected_column_offsets():
    rng = np.random.default_rng(7)
    nints, ny, nx = 20, 256, 64
    solution = TraceSolution(245.76)
    from jwst_soss_custom.tracing import OrderTrace

    solution.orders[1] = OrderTrace(1, np.full(nx, 60.0), np.linspace(1, 2, nx))
    rows = np.arange(ny)[:, None]
    star = 300.0 * np.exp(-0.5 * ((rows - 60.0) / 5.0) ** 2) * np.ones((1, nx))
    depth = np.where((np.arange(nints) > 6) & (np.arange(nints) < 13), 0.98, 1.0)
    offsets = rng.normal(0, 2.0, (nints, nx)).astype(np.float32)
    noise = rng.normal(0, 0.3, (nints, ny, nx))
    data = (depth[:, None, None] * star + offsets[:, None, :] + noise).astype(np.float32)
    mask = trace_mask(solution, (ny, nx), 40.0)
    deep = np.median(data, axis=0)
    scaling = white_light_scaling(data, deep, mask, window=1)
    found = column_offsets(data, deep, scaling, mask)
    # offsets are relative to the deep frame, which holds the median offset
    residual = (found - offsets) - (found - offsets).mean(axis=0)
    expected = (offsets - offsets.mean(axis=0)).std()
    assert residual.std() < 0.1 * expected


def test_trace_solution_round_trip_and_prediction():
    solution = predict_traces(245.79)
    o1, o2 = solution.orders[1], solution.orders[2]
    assert 2000 <= o1.columns.size <= 2048 and 1700 < o2.columns.size < 1850
    assert 0.84 < np.nanmin(o1.wavelength) < 0.87 and 2.8 < np.nanmax(o1.wavelength) < 2.9
    assert np.nanmin(o2.wavelength) < 0.6
    back = TraceSolution.from_tree(solution.to_tree())
    np.testing.assert_array_equal(back.orders[1].y, o1.y)
    table = solution.to_table()
    assert table.colnames == ["x", "y_order1", "wavelength_order1", "y_order2", "wavelength_order2"]


def test_regressors_are_sliced_with_the_segment_rows():
    from stdatamodels.jwst import datamodels

    from jwst_soss_custom.products import REGRESSORS_ATTRIBUTE, make_x1dints, slice_x1dints

    nints, ncols = 6, 5
    source = datamodels.CubeModel((nints, 4, 4))
    source.meta.exposure.type = "NIS_SOSS"
    regressors = np.zeros(nints, dtype=[("int_num", "i4"), ("dy", "f8")])
    regressors["int_num"] = np.arange(1, nints + 1)
    regressors["dy"] = np.linspace(-0.1, 0.1, nints)
    setattr(source, REGRESSORS_ATTRIBUTE, regressors)
    spectra = {
        1: dict(
            wavelength=np.linspace(1, 2, ncols),
            flux=np.ones((nints, ncols)),
            flux_error=np.ones((nints, ncols)),
            dq=np.zeros((nints, ncols), np.uint32),
        )
    }
    times = {"INT_NUM": np.arange(1, nints + 1, dtype=np.int32)}
    x1d = make_x1dints(source, spectra, times)
    part = slice_x1dints(x1d, 2, 5)
    np.testing.assert_array_equal(getattr(part, REGRESSORS_ATTRIBUTE)["int_num"], [3, 4, 5])
