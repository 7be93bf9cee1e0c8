"""soss_tso3: association / file / list inputs, products, strun and parameter files."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.table import Table
from jwst.associations import asn_from_list
from stdatamodels.jwst import datamodels

from jwst_soss_custom import SossInputError
from jwst_soss_custom.lightcurves.synthetic import segment_filename, synthetic_segments
from jwst_soss_custom.pipeline import SossTso3Pipeline
from jwst_soss_custom.pipeline.soss_tso3 import product_name_from_filename

NINTS = 40
PRODUCT = "jw01366-o001_t001_niriss_clear-gr700xd-substrip256"
PARAMETER_FILE = Path(__file__).parents[1] / "parameter_files" / "soss_tso3.asdf"
STRUN = str(Path(sys.executable).with_name("strun"))


@pytest.fixture(scope="module")
def segment_dir(tmp_path_factory):
    """Three x1dints segments and a level-3 association, as asn_from_list writes it."""
    folder = tmp_path_factory.mktemp("segments")
    for model in synthetic_segments(nints=NINTS, nsegments=3, seed=2):
        model.save(folder / model.meta.filename)
    names = [segment_filename(i) for i in (1, 2, 3)]
    asn = asn_from_list.asn_from_list(names, product_name=PRODUCT)
    _, serialized = asn.dump()
    (folder / "tso3_asn.json").write_text(serialized)
    return folder


@pytest.fixture
def asn_file(segment_dir):
    return segment_dir / "tso3_asn.json"


def _mtimes(folder):
    return {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}


def _check_products(folder, product, nbins_order1=None):
    x1dints = folder / f"{product}_x1dints.fits"
    whtlt = Table.read(folder / f"{product}_whtlt.ecsv")
    speclc = Table.read(folder / f"{product}_speclc.ecsv")
    with datamodels.open(x1dints) as model:
        assert isinstance(model, datamodels.TSOMultiSpecModel)
        assert [int(s.spectral_order) for s in model.spec] == [1, 2]
        np.testing.assert_array_equal(model.spec[0].spec_table["INT_NUM"], np.arange(1, NINTS + 1))
        assert model.meta.cal_step.soss_lightcurves == "COMPLETE"
    assert len(whtlt) == NINTS
    assert whtlt.colnames[:4] == [
        "MJD_UTC",
        "BJD_TDB",
        "whitelight_flux_order_1",
        "whitelight_flux_order_2",
    ]
    assert whtlt.meta["exp_type"] == "NIS_SOSS"
    assert set(speclc["order"]) == {1, 2}
    if nbins_order1 is not None:
        assert speclc.meta["number_of_bins_order_1"] == nbins_order1
    assert len(speclc) == NINTS * sum(speclc.meta[f"number_of_bins_order_{o}"] for o in (1, 2))
    return whtlt, speclc


def test_product_name_from_filename():
    assert (
        product_name_from_filename("/data/jw01366001001_04101_00001-seg002_nis_x1dints.fits")
        == "jw01366001001_04101_00001_nis"
    )
    assert product_name_from_filename("mytarget_x1dints.fits") == "mytarget"
    assert product_name_from_filename("mytarget") == "mytarget"


def test_call_with_association_and_step_parameters(asn_file, tmp_path):
    inputs_before = _mtimes(asn_file.parent)
    result = SossTso3Pipeline.call(
        str(asn_file),
        output_dir=str(tmp_path),
        save_results=True,
        steps={"lightcurves": {"bin_width": 40, "order1_wave_range": [1.0, 2.5]}},
    )
    assert isinstance(result, datamodels.TSOMultiSpecModel)
    assert result.meta.asn.table_name == "tso3_asn.json"
    assert result.meta.filename == f"{PRODUCT}_x1dints.fits"
    whtlt, speclc = _check_products(tmp_path, PRODUCT)
    assert whtlt.meta["wavelength_range_order_1"] == [1.0, 2.5]
    assert speclc.meta["bin_width"] == 40
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        f"{PRODUCT}_{s}" for s in ("x1dints.fits", "whtlt.ecsv", "speclc.ecsv", "precision.ecsv")
    )
    assert _mtimes(asn_file.parent) == inputs_before  # inputs never rewritten


def test_call_with_list_names_product_after_exposure(segment_dir, tmp_path):
    files = [str(segment_dir / segment_filename(i)) for i in (3, 1, 2)]
    SossTso3Pipeline.call(files, output_dir=str(tmp_path), save_results=True)
    _check_products(tmp_path, "jw01366001001_04101_00001_nis")


def test_output_file_sets_product_name(asn_file, tmp_path):
    SossTso3Pipeline.call(
        str(asn_file), output_dir=str(tmp_path), output_file="wasp39b_x1dints.fits"
    )
    _check_products(tmp_path, "wasp39b")


def test_models_in_memory_and_no_saving(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    models = synthetic_segments(nints=NINTS, nsegments=2, seed=4)
    result = SossTso3Pipeline.call(models)
    assert len(result.spec[0].spec_table) == NINTS
    assert list(tmp_path.iterdir()) == []  # save_results is off in Python calls


def test_skipping_lightcurves_writes_only_the_stitched_product(asn_file, tmp_path):
    result = SossTso3Pipeline.call(
        str(asn_file),
        output_dir=str(tmp_path),
        save_results=True,
        steps={"lightcurves": {"skip": True}},
    )
    assert result.meta.cal_step.soss_lightcurves == "SKIPPED"
    assert [p.name for p in tmp_path.iterdir()] == [f"{PRODUCT}_x1dints.fits"]


def test_refuses_to_overwrite_an_unsegmented_input(tmp_path):
    (model,) = synthetic_segments(nints=NINTS, nsegments=1)
    path = tmp_path / "jw01366001001_04101_00001_nis_x1dints.fits"
    model.save(path)
    with pytest.raises(SossInputError, match="would overwrite the input"):
        SossTso3Pipeline.call(str(path), output_dir=str(tmp_path), save_results=True)
    SossTso3Pipeline.call(str(path), output_dir=str(tmp_path / "out"), save_results=True)
    _check_products(tmp_path / "out", "jw01366001001_04101_00001_nis")


def test_bad_inputs_raise_clear_errors(segment_dir, tmp_path):
    with pytest.raises(SossInputError, match="does not exist"):
        SossTso3Pipeline.call([str(tmp_path / "missing_x1dints.fits")])
    cube = datamodels.CubeModel((2, 2, 2))
    cube.meta.exposure.type = "NIS_SOSS"
    with pytest.raises(SossInputError, match="soss_tso3 needs an x1dints product"):
        SossTso3Pipeline.call([cube])
    first = str(segment_dir / segment_filename(1))
    with pytest.raises(SossInputError, match="duplicated"):
        SossTso3Pipeline.call([first, first])


def _strun(*args, cwd):
    env = dict(os.environ, STPIPE_DISABLE_CRDS_STEPPARS="true")
    proc = subprocess.run(
        [STRUN, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


@pytest.mark.slow
def test_strun_alias_with_association(asn_file, tmp_path):
    _strun(
        "soss_tso3",
        str(asn_file),
        "--output_dir",
        str(tmp_path),
        "--steps.lightcurves.baseline_integrations=1-10,31-40",
        "--steps.lightcurves.save_plots=true",
        cwd=tmp_path,
    )
    wave = synthetic_segments(nints=2, nsegments=1)[0].spec[0].spec_table["WAVELENGTH"][0]
    in_range = np.count_nonzero((wave >= 0.85) & (wave <= 2.83))  # default order 1 range
    whtlt, _ = _check_products(tmp_path, PRODUCT, nbins_order1=-(-in_range // 20))
    assert whtlt.meta["baseline_method"] == "user"
    assert whtlt.meta["baseline_integrations"] == "1-10, 31-40"
    assert (tmp_path / f"{PRODUCT}_speclc_order2.png").stat().st_size > 10_000


@pytest.mark.slow
def test_strun_parameter_file(asn_file, tmp_path):
    _strun(
        str(PARAMETER_FILE),
        str(asn_file),
        "--output_dir",
        str(tmp_path),
        "--steps.lightcurves.bin_width=100",
        cwd=tmp_path,
    )
    _, speclc = _check_products(tmp_path, PRODUCT)
    assert speclc.meta["bin_width"] == 100


@pytest.fixture(scope="module")
def tiny_x1dints(tiny_asn, tmp_path_factory):
    """The tiny simulated exposure through soss_spec2, and a level-3 association of it."""
    from jwst_soss_custom.pipeline import SossSpec2Pipeline

    folder = tmp_path_factory.mktemp("tiny_x1d")
    SossSpec2Pipeline.call(str(tiny_asn), output_dir=str(folder), save_results=True)
    names = sorted(p.name for p in folder.glob("*_x1dints.fits"))
    asn = asn_from_list.asn_from_list(names, product_name="tiny")
    _, serialized = asn.dump()
    (folder / "tso3_asn.json").write_text(serialized)
    return folder / "tso3_asn.json"


def test_fit_is_off_by_default_and_needs_a_period(asn_file, tmp_path):
    assert SossTso3Pipeline().fit.skip
    with pytest.raises(SossInputError, match="steps.fit.period"):
        SossTso3Pipeline.call(str(asn_file), output_dir=str(tmp_path), steps={"fit": {"skip": False}})
    assert not list(tmp_path.iterdir())  # checked before anything is written


def test_fit_in_memory_fits_the_white_light_and_writes_nothing(tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)
    models = synthetic_segments(nints=NINTS, nsegments=2, seed=2)
    with caplog.at_level("INFO", logger="jwst_soss_custom"):
        SossTso3Pipeline.call(models, steps={"fit": {"skip": False, "period": 1.0, "bootstrap": 0}})
    assert "white light of order 1: t0=" in caplog.text
    assert "fitting the white light only" in caplog.text  # the speclc is only kept on disk
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
def test_strun_fit_writes_the_fit_products_beside_the_whtlt(tiny_x1dints, tiny_truth, tmp_path):
    """strun soss_tso3 --steps.fit.skip=false on the tiny simulation (30 integrations)."""
    transit = tiny_truth["transit"]
    _strun(
        "soss_tso3",
        str(tiny_x1dints),
        "--output_dir",
        str(tmp_path),
        "--steps.lightcurves.bin_width=100",
        "--steps.fit.skip=false",
        f"--steps.fit.period={transit['period']}",
        "--steps.fit.bootstrap=20",
        cwd=tmp_path,
    )
    assert (tmp_path / "tiny_whtlt.ecsv").is_file()
    white = Table.read(tmp_path / "tiny_fit_whitelight.ecsv")
    spectrum = Table.read(tmp_path / "tiny_transmission.ecsv")
    assert white.meta["period"] == pytest.approx(transit["period"])
    assert set(spectrum["order"]) == {1, 2}
    assert np.all(np.isfinite(spectrum["depth_ppm"])) and np.all(spectrum["depth_error_ppm"] > 0)
    row = white[(white["order"] == 1) & (white["parameter"] == "t0")][0]
    # 10 in-transit integrations: t0 is still measured to seconds; 4 sigma for one parameter
    # of one realisation fails by chance once in 16 000.
    assert abs(row["value"] - transit["t0"]) < 4 * row["error"]
