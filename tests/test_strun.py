"""The package as users drive it: strun in subprocesses, parameter files, overrides."""

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.table import Table
from stdatamodels.jwst import datamodels

from jwst_soss_custom.integration import get_steps

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

pytestmark = pytest.mark.slow


def run(*args, cwd, check=True, env_extra=None, drop_env=()):
    """Run a console script of this environment in a subprocess."""
    env = dict(os.environ, STPIPE_DISABLE_CRDS_STEPPARS="true", MPLBACKEND="Agg")
    env.update(env_extra or {})
    for name in drop_env:
        env.pop(name, None)
    proc = subprocess.run(
        [str(BIN / args[0]), *map(str, args[1:])],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if check:
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return proc


def digest(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_stpipe_lists_every_alias(tmp_path):
    out = run("stpipe", "list", cwd=tmp_path).stdout
    for _, alias, _ in get_steps():
        assert alias in out


def test_strun_help_shows_nested_step_options(tmp_path):
    out = run("strun", "soss_spec2", "--help", cwd=tmp_path).stdout
    for option in (
        "--steps.background.override_bkg",
        "--steps.extract.box_width",
        "--steps.oneoverf.mask_width",
        "--steps.badpix.max_distance",
        "--steps.tracing.save_traces",
    ):
        assert option in out


@pytest.fixture(scope="module")
def spec2_strun(tiny_exposure, tiny_asn, tmp_path_factory):
    """strun soss_spec2 on the association with --steps options and a FITS override_bkg."""
    out = tmp_path_factory.mktemp("strun_spec2")
    before = {p: digest(p) for p in tiny_exposure.segment_files}
    proc = run(
        "strun",
        "soss_spec2",
        tiny_asn,
        "--output_dir",
        out,
        f"--steps.background.override_bkg={tiny_exposure.background_files['fits']}",
        "--steps.extract.box_width=25",
        "--steps.tracing.save_traces=true",
        "--save_calints=true",
        cwd=out,
    )
    after = {p: digest(p) for p in tiny_exposure.segment_files}
    return out, proc, before, after


def test_strun_spec2_with_step_options(spec2_strun, tiny_exposure, tiny_truth):
    out, proc, before, after = spec2_strun
    assert before == after, "an input file was modified"
    x1d = sorted(out.glob("*_x1dints.fits"))
    assert len(x1d) == len(tiny_exposure.segment_files)
    assert len(sorted(out.glob("*_calints.fits"))) == len(x1d)
    # Diagnostics are named after the segment (or chunk) they were made for.
    assert len(sorted(out.glob("*_traces.ecsv"))) == len(x1d)
    with datamodels.open(x1d[0]) as model:
        npix = model.spec[0].spec_table["NPIXELS"][0]
        assert np.median(npix) == pytest.approx(25.0)
        assert model.meta.ref_file.bkg.name.endswith("_bkg_template.fits")
    with datamodels.open(sorted(out.glob("*_calints.fits"))[0]) as cal:
        # The true template scaled by the simulator: the scale is recovered
        # (percentile trimming biases it by a fraction of the pixel noise).
        assert cal.meta.background.scaling_factor == pytest.approx(
            tiny_truth["background_scale"], rel=0.02
        )


def test_override_bkg_npy_and_fits_give_the_same_result(tiny_exposure, tmp_path):
    segment = tiny_exposure.segment_files[0]
    results = {}
    for kind in ("npy", "fits"):
        out = tmp_path / kind
        out.mkdir()
        run(
            "strun",
            "soss_background",
            segment,
            f"--override_bkg={tiny_exposure.background_files[kind]}",
            "--output_dir",
            out,
            cwd=tmp_path,
        )
        (path,) = out.glob("*_bkgsub.fits")
        with datamodels.open(path) as model:
            results[kind] = model.data.copy()
    np.testing.assert_array_equal(results["npy"], results["fits"])


def test_each_step_runs_alone_through_strun(tiny_exposure, tmp_path):
    segment = tiny_exposure.segment_files[0]
    expected = {
        "soss_badpix": "badpix",
        "soss_background": "bkgsub",
        "soss_tracing": "tracing",
        "soss_oneoverf": "oneoverf",
        "soss_extract": "x1dints",
    }
    env = dict(os.environ, STPIPE_DISABLE_CRDS_STEPPARS="true", MPLBACKEND="Agg")
    runs = {}
    for alias in expected:
        # not named like the alias: strun reads an existing path as a config file
        out = tmp_path / f"out_{alias}"
        out.mkdir()
        # Independent runs: side by side, as a user may start them.
        runs[alias] = subprocess.Popen(
            [str(BIN / "strun"), alias, str(segment), "--output_dir", str(out)], cwd=tmp_path,
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for alias, suffix in expected.items():
        log, _ = runs[alias].communicate(timeout=900)
        assert runs[alias].returncode == 0, log[-4000:]
        (path,) = (tmp_path / f"out_{alias}").glob(f"*_{suffix}.fits")
        with datamodels.open(path) as model:
            assert getattr(model.meta.cal_step, alias) == "COMPLETE"
    with datamodels.open(next((tmp_path / "out_soss_extract").glob("*.fits"))) as x1d:
        assert isinstance(x1d, datamodels.TSOMultiSpecModel)
        assert [s.spectral_order for s in x1d.spec] == [1, 2]


def test_steps_need_no_crds_even_without_the_env_variable(tiny_exposure, tmp_path):
    run(
        "strun",
        "soss_tracing",
        tiny_exposure.segment_files[0],
        "--output_dir",
        tmp_path,
        cwd=tmp_path,
        drop_env=("STPIPE_DISABLE_CRDS_STEPPARS",),
        env_extra={"CRDS_SERVER_URL": "https://crds.invalid", "CRDS_PATH": str(tmp_path / "crds")},
    )
    assert list(tmp_path.glob("*_tracing.fits"))


def test_spec2_parameter_file_runs_a_single_segment(tiny_exposure, tmp_path):
    run(
        "strun",
        REPO / "parameter_files" / "soss_spec2.asdf",
        tiny_exposure.segment_files[1],
        "--output_dir",
        tmp_path,
        cwd=tmp_path,
    )
    (path,) = tmp_path.glob("*seg002*_x1dints.fits")
    with datamodels.open(path) as model:
        assert model.spec[0].spec_table["SEGMENT"][0] == 2


def test_wrong_exposure_type_is_refused_without_product(tiny_exposure, tmp_path):
    bad = tmp_path / "jw01366001001_04101_00001-seg001_nis_rateints.fits"
    with datamodels.open(tiny_exposure.segment_files[0]) as model:
        model.meta.exposure.type = "NIS_WFSS"
        model.save(bad)
    out = tmp_path / "out"
    proc = run("strun", "soss_spec2", bad, "--output_dir", out, cwd=tmp_path, check=False)
    assert proc.returncode != 0
    # The last line a user sees is the package's message (stpipe's traceback
    # comes before it); tests/test_bad_inputs.py checks the same for ~35 cases.
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("jwst_soss_custom._base.errors.SossInputError: ")
    assert "EXP_TYPE is 'NIS_WFSS'" in last and "NIS_SOSS" in last
    assert not list(tmp_path.rglob("*_x1dints.fits"))


def _tso3_inputs(x1d_dir, work, product):
    """Copies of the x1dints in ``work`` with a soss_tso3 association ``tso3_asn.json``."""
    work.mkdir()
    for path in x1d_dir.glob("*_x1dints.fits"):
        shutil.copy(path, work)
    run("asn_from_list", "-o", "tso3_asn.json", "--product-name", product,
        *sorted(p.name for p in work.glob("*_x1dints.fits")), cwd=work)
    return work


def test_spec2_then_tso3_and_the_official_white_light(spec2_strun, tmp_path):
    """The end-to-end path; jwst's WhiteLightStep agrees with our whtlt."""
    from jwst_soss_custom.lightcurves import DEFAULT_WAVE_RANGES, official_white_light

    work = _tso3_inputs(spec2_strun[0], tmp_path / "x1d", "tiny_demo")
    run("strun", "soss_tso3", "tso3_asn.json", "--output_dir", tmp_path / "products", cwd=work)
    products = tmp_path / "products"
    whtlt = Table.read(products / "tiny_demo_whtlt.ecsv")
    speclc = Table.read(products / "tiny_demo_speclc.ecsv")
    assert {"order", "wave_center", "flux", "flux_error"} <= set(speclc.colnames)
    for order in (1, 2):  # what the wavelength check did travels with the light curves
        status = whtlt.meta[f"wavelength_check_order_{order}"]
        assert status in {"applied", "too uncertain", "not significant", "not measurable"}
        shift = whtlt.meta[f"wavelength_shift_order_{order}"]
        assert (shift != 0) == (status == "applied")
    limits = {order: DEFAULT_WAVE_RANGES[order] for order in (1, 2)}
    official = official_white_light(products / "tiny_demo_x1dints.fits", limits)
    for order in (1, 2):
        name = f"whitelight_flux_order_{order}"
        np.testing.assert_allclose(whtlt[name], official[name].value, rtol=1e-12)
    report = run("python", "-m", "jwst_soss_custom.report", products / "tiny_demo_whtlt.ecsv", cwd=tmp_path)
    assert "order 1: measured" in report.stdout


def test_empty_integrations_and_broken_times_are_flagged_not_fatal(tiny_exposure, tmp_path):
    """Three integrations without data, two with broken times: reduced, those five left out."""
    from jwst_soss_custom._base.dq import FLAGS

    files = [Path(shutil.copy(p, tmp_path)) for p in tiny_exposure.segment_files]
    with datamodels.open(files[0]) as model:
        damaged = model.copy()
    damaged.data[[3, 4, 9]] = np.nan  # integrations 4, 5 and 10
    damaged.save(files[0])
    with datamodels.open(files[1]) as model:
        damaged = model.copy()
    times = damaged.int_times  # integrations 16-30
    times["int_mid_MJD_UTC"][2] = -times["int_mid_MJD_UTC"][2]  # integration 18
    times["int_mid_BJD_TDB"][6] = np.inf  # integration 22
    damaged.save(files[1])
    before = {p: digest(p) for p in files}
    x1d, products = tmp_path / "x1d", tmp_path / "products"
    run("asn_from_list", "-r", "DMSLevel2bBase", "-o", "spec2_asn.json",
        *sorted(p.name for p in files), cwd=tmp_path)
    proc = run("strun", "soss_spec2", "spec2_asn.json", "--output_dir", x1d, cwd=tmp_path)
    assert "3 integration(s) have no usable pixel (integration numbers 4, 5, 10;" in proc.stderr
    assert "2 integration(s) have implausible times" in proc.stderr
    assert "integration numbers 18, 22" in proc.stderr
    assert before == {p: digest(p) for p in files}, "an input file was modified"
    with datamodels.open(sorted(x1d.glob("*seg001*_x1dints.fits"))[0]) as model:
        for spec in model.spec:
            flux, dq = np.asarray(spec.spec_table["FLUX"]), np.asarray(spec.spec_table["DQ"])
            assert np.isnan(flux[[3, 4, 9]]).all()
            assert (dq[[3, 4, 9]] & FLAGS["DO_NOT_USE"]).all()
            assert np.isfinite(np.delete(flux, [3, 4, 9], axis=0)).mean() > 0.9
    run("asn_from_list", "-o", "tso3_asn.json", "--product-name", "damaged",
        *sorted(p.name for p in x1d.glob("*_x1dints.fits")), cwd=x1d)
    run("strun", "soss_tso3", "tso3_asn.json", "--output_dir", products, cwd=x1d)
    whtlt = Table.read(products / "damaged_whtlt.ecsv")
    assert whtlt.meta["integrations_without_data"] == [4, 5, 10]
    assert whtlt.meta["integrations_without_time"] == [18, 22]
    assert not np.isin(whtlt["int_num"], [18, 22]).any()
    empty = np.isin(whtlt["int_num"], [4, 5, 10])
    for order in (1, 2):
        assert np.isnan(whtlt[f"whitelight_flux_norm_order_{order}"][empty]).all()
        assert np.isfinite(whtlt[f"whitelight_flux_norm_order_{order}"][~empty]).all()
    # The white light of the other integrations is at the photon limit, as
    # for the whole exposure: the point-to-point estimate of 25 points is
    # good to ~1/sqrt(25), so 3 of those above 1 would be a real excess.
    precision = Table.read(products / "damaged_precision.ecsv")
    white = precision[precision["bin"] == -1]
    assert (white["n_points"] <= 25).all()
    assert (white["ratio"] < 1 + 3 / np.sqrt(white["n_points"])).all()


def _complete(folder):
    """Every file under its final name in ``folder`` reads whole (hidden ones are temporary)."""
    import warnings

    from astropy.io import fits

    names = []
    for path in sorted(folder.glob("[!.]*")):
        names.append(path.name)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a truncated FITS file only warns
            if path.suffix == ".fits":
                with fits.open(path) as hdul:
                    for hdu in hdul:
                        hdu.data  # noqa: B018 - reads every extension
            elif path.suffix == ".ecsv":
                Table.read(path)
            elif path.suffix == ".png":
                assert path.read_bytes()[-8:-4] == b"IEND", path
    return names


def test_a_killed_run_leaves_whole_products_or_none(spec2_strun, tmp_path):
    """strun soss_tso3 killed at several points: no partial product; a rerun completes."""
    import time

    work = _tso3_inputs(spec2_strun[0], tmp_path / "x1d", "killed")
    out = tmp_path / "products"
    command = [str(BIN / "strun"), "soss_tso3", "tso3_asn.json", "--output_dir", str(out)]
    env = dict(os.environ, STPIPE_DISABLE_CRDS_STEPPARS="true", MPLBACKEND="Agg")
    for delay in (3.5, 5.0, 6.5):  # from start-up to the writes
        proc = subprocess.Popen(command, cwd=work, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        time.sleep(delay)
        proc.kill()
        proc.wait()
        if out.exists():
            _complete(out)
    run("strun", "soss_tso3", "tso3_asn.json", "--output_dir", out, cwd=work)
    final = _complete(out)
    assert {"killed_whtlt.ecsv", "killed_speclc.ecsv", "killed_x1dints.fits"} <= set(final)
    assert not list(out.glob(".*.part")), "a completed run leaves no temporary folder"
