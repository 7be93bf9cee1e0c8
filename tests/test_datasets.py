"""The SOSS simulator: file format, determinism, calibration against real data, noise.

The calibration tests compare the simulator's noiseless deep frame with the
real WASP-39 median frame in ``tests/data`` (origin and licence in
``tests/data/README.md``) using the same measurement functions on both.
"""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage
from stdatamodels.jwst import datamodels
from stdatamodels.jwst.datamodels import dqflags

from jwst_soss_custom.datasets import (
    NO_SYSTEMATICS,
    PRESETS,
    SimConfig,
    default_background_template,
    load_truth,
    simulate,
)
from jwst_soss_custom.datasets.config import make_config, segment_sizes
from tools.measure import (
    aperture_sums,
    background_level,
    background_step_column,
    profile_fwhm,
)
from jwst_soss_custom.datasets.noise import OneOverF
from jwst_soss_custom.datasets.scene import Scene

DATA = Path(__file__).parent / "data"
PIXEL = dqflags.pixel
#: RMS of the 1/f column offsets quoted in docs/simulator.md for the defaults.
DOCUMENTED_ONEOVERF_RMS = 0.070


@pytest.fixture(scope="module")
def real_frame():
    with np.load(DATA / "wasp39_medframe_substrip256_f16.npz") as npz:
        return npz["medframe"].astype(np.float32)


@pytest.fixture(scope="module")
def segments(tiny_exposure):
    models = [datamodels.open(path) for path in tiny_exposure.segment_files]
    yield models
    for model in models:
        model.close()


# ------------------------------------------------------------------ files
def test_presets_and_segment_sizes():
    assert segment_sizes(537, 4) == [135, 135, 135, 132]
    full = make_config("full")
    assert (full.nints, full.nsegments, full.ngroups) == (537, 4, 9)
    assert make_config("tiny").nints < 40 and make_config("small").nints >= 100
    assert {"tiny", "small", "full", "realistic", "realistic_small", "hard"} == set(PRESETS)
    with pytest.raises(ValueError, match="Unknown SimConfig field"):
        make_config("tiny", not_a_field=1)


def test_segments_are_detector1_rateints(tiny_exposure, segments):
    config = tiny_exposure.config
    assert [p.name for p in tiny_exposure.segment_files] == [
        f"jw01366001001_04101_00001-seg{k:03d}_nis_rateints.fits" for k in (1, 2)
    ]
    expected_start = 1
    for k, model in enumerate(segments, start=1):
        assert isinstance(model, datamodels.CubeModel)
        nint = model.data.shape[0]
        assert model.data.shape[1:] == (256, 2048)
        # FITS stores big-endian; compare the type, not the byte order.
        assert model.data.dtype.newbyteorder("=") == np.float32
        assert model.err.dtype.newbyteorder("=") == np.float32
        assert model.dq.dtype.newbyteorder("=") == np.uint32
        meta = model.meta
        assert meta.filename == tiny_exposure.segment_files[k - 1].name
        assert (meta.instrument.name, meta.instrument.detector) == ("NIRISS", "NIS")
        assert (meta.instrument.filter, meta.instrument.pupil) == ("CLEAR", "GR700XD")
        assert meta.instrument.pupil_position == pytest.approx(245.79)
        assert meta.exposure.type == "NIS_SOSS" and meta.exposure.readpatt == "NISRAPID"
        assert meta.subarray.name == "SUBSTRIP256"
        assert (meta.subarray.xstart, meta.subarray.ystart) == (1, 1793)
        assert (meta.subarray.xsize, meta.subarray.ysize) == (2048, 256)
        assert (meta.subarray.fastaxis, meta.subarray.slowaxis) == (-2, -1)
        assert meta.visit.tsovisit is True
        assert meta.exposure.nints == config.nints and meta.exposure.ngroups == 9
        assert meta.exposure.nframes == 1
        assert meta.exposure.frame_time == pytest.approx(5.494)
        assert meta.exposure.group_time == pytest.approx(5.494)
        assert meta.exposure.integration_time == pytest.approx(9 * 5.494)
        assert meta.exposure.segment_number == k
        assert meta.exposure.integration_start == expected_start
        assert meta.exposure.integration_end == expected_start + nint - 1
        assert meta.target.catalog_name == "WASP-39"
        assert meta.cal_step.ramp_fit == "COMPLETE" and meta.cal_step.jump == "COMPLETE"
        table = model.int_times
        numbers = list(range(expected_start, expected_start + nint))
        assert list(table["integration_number"]) == numbers
        assert np.all(np.diff(table["int_mid_BJD_TDB"]) > 0)
        cadence = np.diff(table["int_mid_MJD_UTC"]) * 86400
        assert cadence == pytest.approx(10 * 5.494, abs=1e-3)
        # BJD_TDB - UTC: TT-UTC (69.184 s) plus a Roemer delay of at most 500 s.
        delta = (table["int_mid_BJD_TDB"] - table["int_mid_MJD_UTC"]) * 86400
        assert np.all(np.abs(delta - 69.184) < 500)
        expected_start += nint
    assert expected_start - 1 == config.nints


def test_reference_pixels_and_bad_pixel_flags(segments, tiny_truth):
    model = segments[0]
    ref = np.zeros((256, 2048), dtype=bool)
    ref[252:] = True
    ref[:, :4] = ref[:, -4:] = True
    dq = model.dq[0]
    assert np.all(dq[ref] & PIXEL["REFERENCE_PIXEL"])
    assert abs(np.nanmedian(model.data[:, ref])) < 0.05
    assert np.nanstd(model.data[:, ref]) < 0.5
    bad = tiny_truth["bad_pixels"]
    assert np.all(dq[bad["hot_flagged"]] & (PIXEL["HOT"] | PIXEL["DO_NOT_USE"]))
    assert np.all(dq[bad["dead_flagged"]] & (PIXEL["DEAD"] | PIXEL["DO_NOT_USE"]))
    flagged = bad["hot_flagged"] | bad["dead_flagged"]
    assert np.all(np.isnan(model.data[:, flagged]))
    assert np.all(np.isnan(model.err[:, flagged]))
    # Every NaN is flagged DO_NOT_USE, as Detector1 leaves them.
    assert np.all(dq[np.isnan(model.data[0])] & PIXEL["DO_NOT_USE"])
    # Unflagged hot pixels stand out without a flag.
    hot = bad["hot_unflagged"] & (bad["hot_rate"] > 50)
    assert hot.any() and not np.any(dq[hot])
    assert np.all(model.data[:, hot] - tiny_truth["deep_frame"][hot] > 25)
    assert np.all(np.isfinite(model.err[:, ~flagged]))


def test_cosmic_rays_are_unflagged_outliers(tiny_exposure, segments, tiny_truth):
    cr = tiny_truth["cosmic_rays"]
    assert cr["integration"].size > 10
    data = np.concatenate([m.data for m in segments])
    dq = np.concatenate([m.dq for m in segments])
    big = cr["amplitude"] > 50
    i, y, x = cr["integration"][big], cr["y"][big], cr["x"][big]
    excess = data[i, y, x] - tiny_truth["deep_frame"][y, x]
    finite = np.isfinite(excess)
    assert np.all(excess[finite] > 0.5 * cr["amplitude"][big][finite])
    assert not np.any(dq[i, y, x] & PIXEL["JUMP_DET"])


def test_background_files(tiny_exposure):
    files = tiny_exposure.background_files
    template = default_background_template()
    assert template.shape == (256, 2048) and template.dtype == np.float32
    npy = np.load(files["npy"])
    from astropy.io import fits

    with fits.open(files["fits"]) as hdul:
        image = hdul["SCI"].data
    np.testing.assert_array_equal(npy, template)
    np.testing.assert_array_equal(image, template)
    assert np.all(template[252:] == 0) and np.all(template[:, :4] == 0)
    # The STScI level: ~4.7 left of the step, ~7.4 right of it, ~3.6 at x=2000.
    assert np.median(template[10:106, 600:690]) == pytest.approx(4.7, rel=0.05)
    assert np.median(template[10:106, 780:820]) == pytest.approx(7.4, rel=0.05)
    assert np.median(template[10:106, 1995:2005]) == pytest.approx(3.6, rel=0.05)
    assert 690 < background_step_column(template, rows=(10, 106)) < 710


def test_truth_contents(tiny_exposure, tiny_truth):
    nints = tiny_exposure.config.nints
    assert tiny_truth["config"]["nints"] == nints
    for order in (1, 2, 3):
        o = tiny_truth[f"order{order}"]
        n = o["x"].size
        for key in ("y", "wavelength", "depth", "u1", "u2", "column_flux", "fwhm"):
            assert o[key].shape == (n,)
        assert o["light_curves"].shape == (nints, n) and o["light_curves"].dtype == np.float32
        assert o["white_light"].shape == (nints,)
    o1 = tiny_truth["order1"]
    assert 0.019 < np.median(o1["depth"]) < 0.024
    # Flux entering the column, halo included (the aperture sums, ~8400 at
    # most, are checked against the real frame below).
    assert 8400 < o1["column_flux"].max() < 10500
    assert 19 < np.median(o1["fwhm"]) < 24
    for key in ("deep_frame", "background", "expected_err"):
        assert tiny_truth[key].shape == (256, 2048)
    assert tiny_truth["oneoverf"]["column_offsets"].shape == (nints, 2048)
    assert tiny_truth["jitter"]["dy"].shape == (nints,)
    assert tiny_truth["order0"]["mask"].sum() > 500
    t = tiny_truth["transit"]
    mid = tiny_truth["times"]["int_mid_BJD_TDB"]
    assert mid[0] < t["t0"] < mid[-1]
    # Short presets: the transit spans about the middle third of the visit.
    assert t["t14"] == pytest.approx((mid[-1] - mid[0]) / 3, rel=0.1)


def test_same_seed_same_files(tmp_path):
    kw = dict(nints=3, nsegments=1, n_order0=2)
    a = simulate(tmp_path / "a", "tiny", seed=7, **kw)
    b = simulate(tmp_path / "b", "tiny", seed=7, **kw)
    c = simulate(tmp_path / "c", "tiny", seed=8, **kw)
    with datamodels.open(a.segment_files[0]) as ma, datamodels.open(b.segment_files[0]) as mb:
        with datamodels.open(c.segment_files[0]) as mc:
            for key in ("data", "err", "dq", "var_poisson", "var_rnoise"):
                np.testing.assert_array_equal(getattr(ma, key), getattr(mb, key))
            np.testing.assert_array_equal(ma.int_times, mb.int_times)
            assert not np.array_equal(ma.data, mc.data, equal_nan=True)
            assert _meta_without_date(ma) == _meta_without_date(mb)
    ta, tb = load_truth(a.truth_file), load_truth(b.truth_file)
    offsets_a, offsets_b = ta["oneoverf"]["column_offsets"], tb["oneoverf"]["column_offsets"]
    np.testing.assert_array_equal(offsets_a, offsets_b)
    np.testing.assert_array_equal(ta["cosmic_rays"]["x"], tb["cosmic_rays"]["x"])


def _meta_without_date(model):
    """Flat metadata except the file-creation date."""
    return {
        k: v for k, v in model.to_flat_dict().items() if k.startswith("meta") and k != "meta.date"
    }


# ------------------------------------------------------------ calibration
def _running_median(values, size=11):
    return ndimage.median_filter(values, size=size, mode="nearest")


def test_order1_column_sums_match_real_frame(tiny_truth, real_frame):
    _, wave, real = aperture_sums(real_frame)
    _, _, sim = aperture_sums(tiny_truth["deep_frame"])
    band = (wave >= 0.9) & (wave <= 2.5)
    ratio = _running_median(sim) / _running_median(real)
    assert np.all(np.abs(ratio[band] - 1) < 0.15), ratio[band].min()
    assert real[band].max() == pytest.approx(8400, rel=0.05)
    assert _running_median(sim)[band].max() == pytest.approx(8400, rel=0.05)


def test_peak_pixel_near_1p17_micron(tiny_truth):
    sim = tiny_truth["deep_frame"][:252]
    o1 = tiny_truth["order1"]
    near = o1["x"][np.abs(o1["wavelength"] - 1.17) < 0.03]
    assert np.max(sim[:, near]) == pytest.approx(450, rel=0.1)


def test_profile_fwhm_matches_real_frame(tiny_truth, real_frame):
    _, wave, real = profile_fwhm(real_frame)
    _, _, sim = profile_fwhm(tiny_truth["deep_frame"])
    for lo in np.arange(0.9, 2.5, 0.2):
        band = (wave >= lo) & (wave < lo + 0.2)
        assert abs(np.nanmedian(sim[band]) - np.nanmedian(real[band])) < 2.0
    assert 20 <= np.nanmedian(sim[(wave > 0.9) & (wave < 1.5)]) <= 24


def test_profile_is_double_horned(tiny_truth):
    # Column near the order-1 peak, background removed: two horns ~14-15 px
    # apart with a central dip to 0.6-0.7 of the peak.
    o1 = tiny_truth["order1"]
    k = int(np.argmin(np.abs(o1["wavelength"] - 1.3)))
    col = (tiny_truth["deep_frame"] - tiny_truth["background"])[:, o1["x"][k]]
    yc = o1["y"][k]
    rows = np.arange(256)
    left = (rows > yc - 12) & (rows < yc - 2)
    right = (rows > yc + 2) & (rows < yc + 12)
    y_left = rows[left][np.argmax(col[left])]
    y_right = rows[right][np.argmax(col[right])]
    assert 12 <= y_right - y_left <= 17
    dip = col[int(round(yc)) - 2 : int(round(yc)) + 3].min() / col.max()
    assert 0.5 < dip < 0.8


def test_background_step_and_levels_match_real_frame(tiny_truth, real_frame):
    sim = tiny_truth["deep_frame"]
    assert abs(background_step_column(sim) - background_step_column(real_frame)) < 5
    for rows, cols in (((210, 250), (100, 650)), ((225, 250), (750, 1000))):
        real = background_level(real_frame, rows, cols)
        assert background_level(sim, rows, cols) == pytest.approx(real, rel=0.2)


def test_subpixel_trace_shift_moves_the_image():
    config = SimConfig(nints=1, nsegments=1, orders=(1,), halo=False, n_order0=0)
    scene = Scene(config)
    x = scene.traces[1].columns[1500]
    rows = np.arange(256)
    ref = scene.star()[:, x]
    shifted = scene.star(dy=0.3)[:, x]
    centroid = lambda c: np.sum(rows * c) / np.sum(c)  # noqa: E731
    assert centroid(shifted) - centroid(ref) == pytest.approx(0.3, abs=0.01)
    assert shifted.sum() == pytest.approx(ref.sum(), rel=1e-5)


def test_trace_offset_is_injected():
    base = Scene(SimConfig(nints=1, nsegments=1))
    moved = Scene(SimConfig(nints=1, nsegments=1, trace_dy=2.0, trace_dx=-1.5))
    y0, w0, _ = base.traces[1].at()
    y1, w1, _ = moved.traces[1].at()
    cols = base.traces[1].columns
    k = np.searchsorted(moved.traces[1].columns, cols[1000])
    expected_y = np.interp(cols[1000] + 1.5, cols, y0) + 2.0
    assert y1[k] == pytest.approx(expected_y, abs=1e-6)
    assert w1[k] == pytest.approx(np.interp(cols[1000] + 1.5, cols, w0), abs=1e-9)


# ------------------------------------------------------------------ noise
@pytest.fixture(scope="module")
def noise_only(tmp_path_factory):
    """Tiny exposure with photon and read noise only, no transit."""
    result = simulate(
        tmp_path_factory.mktemp("noise"), "tiny", seed=3, transit=False, **NO_SYSTEMATICS
    )
    cube = np.concatenate([datamodels.open(p).data for p in result.segment_files])
    with datamodels.open(result.segment_files[0]) as model:
        err = np.array(model.err[0])
    return cube, err, load_truth(result.truth_file)


def test_scatter_matches_err(noise_only):
    cube, err, truth = noise_only
    nints = cube.shape[0]
    np.testing.assert_allclose(err, truth["expected_err"], rtol=1e-6)
    var = np.var(cube, axis=0, ddof=1)
    science = np.isfinite(err)
    science[252:] = False
    science[:, :4] = science[:, -4:] = False
    for lo, hi in ((0.2, 0.5), (0.5, 2.0), (2.0, 10.0)):
        sel = science & (err >= lo) & (err < hi)
        m = int(sel.sum())
        assert m > 1000
        ratio = np.mean(var[sel]) / np.mean(err[sel] ** 2)
        # Sample variances of m pixels from nints integrations: relative
        # error ~ sqrt(2 / ((nints - 1) m)); allow 5 sigma plus Poisson
        # skewness at the few-electron level.
        tol = 5 * np.sqrt(2.0 / ((nints - 1) * m)) + 0.005
        assert ratio == pytest.approx(1.0, abs=tol), (lo, hi, ratio, tol)


def test_oneoverf_rms_matches_documentation():
    config = SimConfig()
    model = OneOverF(config)
    assert model.expected_rms == pytest.approx(DOCUMENTED_ONEOVERF_RMS, rel=0.02)
    offsets = model.draw(np.random.default_rng(5), 400)
    assert np.sqrt(np.mean(offsets**2)) == pytest.approx(model.expected_rms, rel=0.03)
    doubled = OneOverF(SimConfig(oneoverf_scale=2.0))
    assert doubled.expected_rms == pytest.approx(2 * model.expected_rms)
    assert OneOverF(SimConfig(oneoverf_scale=0.0)).expected_rms == 0.0


def test_oneoverf_stripes_are_in_the_data(segments, tiny_truth):
    truth = tiny_truth["oneoverf"]["column_offsets"]
    expected = tiny_truth["oneoverf"]["expected_rms"]
    assert np.sqrt(np.mean(truth**2)) == pytest.approx(expected, rel=0.2)
    cube = np.concatenate([m.data for m in segments])
    # Trace-free rows: the column mean of (data - noiseless) is the stripe
    # plus the pixel noise averaged over the rows (cosmic rays clipped).
    rows = slice(205, 250)
    err = tiny_truth["expected_err"][None, rows, :]
    resid = cube[:, rows, :] - tiny_truth["deep_frame"][None, rows, :]
    resid = np.where(np.abs(resid) < 5 * err, resid, np.nan)
    measured = np.nanmean(resid, axis=1)
    cols = np.arange(300, 1500)
    m, t = measured[:, cols].ravel(), truth[:, cols].ravel()
    slope = np.sum(m * t) / np.sum(t * t)
    assert slope == pytest.approx(1.0, abs=0.1)
    noise = np.nanmedian(err[0][:, cols]) / np.sqrt(45)
    assert np.std(m - t) == pytest.approx(noise, rel=0.25)


# ---------------------------------------------------------------- transit
def test_injected_transit_in_the_images(tmp_path):
    """Noiseless images: each column's flux follows its truth light curve."""
    result = simulate(
        tmp_path, "tiny", seed=4, photon_noise=False, read_noise=False, n_order0=0,
        **NO_SYSTEMATICS,
    )
    truth = load_truth(result.truth_file)
    cube = np.concatenate([datamodels.open(p).data for p in result.segment_files])
    o1 = truth["order1"]
    rows = np.arange(256)[:, None]
    sel = slice(1300, 1900)
    x, y = o1["x"][sel], o1["y"][sel]
    aperture = np.abs(rows - y[None, :]) <= 30
    star = cube[:, :, x] - truth["background"][None, :, x]
    sums = np.sum(np.where(aperture[None], star, 0.0), axis=1)
    relative = sums / sums[0]
    expected = o1["light_curves"][:, sel] / o1["light_curves"][0, sel]
    np.testing.assert_allclose(relative, expected, atol=2e-4)

    # The white light dips by the flux-weighted depth (x limb darkening).
    white = o1["white_light"] / o1["white_light"].max()
    import batman

    t = truth["transit"]
    bp = batman.TransitParams()
    bp.t0, bp.per, bp.a, bp.inc = t["t0"], t["period"], t["a_rs"], t["inc"]
    bp.ecc, bp.w, bp.limb_dark, bp.u = 0.0, 90.0, "quadratic", list(t["u"])
    bp.rp = t["rp_white"]
    time = truth["times"]["int_mid_BJD_TDB"]
    model = batman.TransitModel(bp, time).light_curve(bp)
    np.testing.assert_allclose(white, model, atol=3e-4)
    assert 0.02 < 1 - white.min() < 0.027


# -------------------------------------------------------------------- CLI
def test_cli_writes_files(tmp_path, capsys):
    from jwst_soss_custom.datasets.cli import main

    # The slope level: what is printed does not depend on the level (the
    # ramp levels' CLI runs are in test_ramps).
    assert main(["--preset", "tiny", "--output-dir", str(tmp_path), "--nints", "2",
                 "--nsegments", "1", "--level", "slopes", "--quiet"]) == 0
    printed = capsys.readouterr().out.split()
    assert any(p.endswith("-seg001_nis_rateints.fits") for p in printed)
    assert any(p.endswith("_truth.asdf") for p in printed)
    assert all(Path(p).exists() for p in printed)


def test_cli_output_dir_that_is_a_file_is_named(tmp_path, capsys):
    from jwst_soss_custom.datasets.cli import main

    target = tmp_path / "a_file"
    target.write_text("keep me")
    assert main(["--preset", "tiny", "--output-dir", str(target), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"soss_simulate: error: --output-dir {target} is a file, not a folder; "
                   "give a folder (it is made if missing)."]
    assert target.read_text() == "keep me"


def test_module_entry_point_help():
    out = subprocess.run(
        [sys.executable, "-m", "jwst_soss_custom.datasets", "--help"],
        capture_output=True, text=True, check=True,
    )
    assert "--preset" in out.stdout and "--output-dir" in out.stdout
