"""soss_batch: exposures grouped by header, stages as tasks on a real dask.distributed cluster."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from jwst_soss_custom._base.errors import SossInputError
from jwst_soss_custom.batch import find_exposures, run_batch
from jwst_soss_custom.batch.stages import RECORD_NAME, STAGES, StageResult, run_stage
from jwst_soss_custom.datasets import crds_refs, simulate
from jwst_soss_custom.fitting import SossFitStep
from jwst_soss_custom.pipeline import SossSpec2Pipeline, SossTso3Pipeline

BIN = Path(sys.executable).parent


def _header_only(path, segment=1, total=2, exp_type="NIS_SOSS", **changes):
    """A FITS file with only a primary header naming a SOSS exposure segment."""
    header = fits.Header({"PROGRAM": "01366", "OBSERVTN": "001", "VISIT": "001",
                          "VISITGRP": "04", "SEQ_ID": "1", "ACT_ID": "01", "EXPOSURE": "00001",
                          "DETECTOR": "NIS", "EXP_TYPE": exp_type, "EXSEGNUM": segment,
                          "EXSEGTOT": total})
    for key, value in changes.items():
        if value is None:
            del header[key]
        else:
            header[key] = value
    fits.PrimaryHDU(header=header).writeto(path)
    return path


def test_exposures_are_grouped_by_header_not_by_name(tmp_path):
    # Renamed segments of one exposure, in two folders; another exposure
    # with the same file names' pattern; a NIRSpec file; a broken file.
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    _header_only(tmp_path / "a" / "first_rateints.fits", 1)
    _header_only(tmp_path / "b" / "second_rateints.fits", 2)
    _header_only(tmp_path / "a" / "other_rateints.fits", 1, 1, OBSERVTN="007")
    _header_only(tmp_path / "a" / "nirspec_rateints.fits", 1, 1, exp_type="NRS_BRIGHTOBJ")
    (tmp_path / "a" / "broken_rateints.fits").write_bytes(b"not a fits file")
    (tmp_path / "a" / "notes.txt").write_text("ignored")
    exposures = {e.name: e for e in find_exposures([tmp_path / "a", tmp_path / "b"])}
    assert set(exposures) == {"jw01366001001_04101_00001_nis", "jw01366007001_04101_00001_nis",
                              "broken_rateints.fits"}
    soss = exposures["jw01366001001_04101_00001_nis"]
    assert [p.name for p in soss.files] == ["first_rateints.fits", "second_rateints.fits"]
    assert soss.level == "rateints" and soss.error is None
    assert "not a readable FITS file" in exposures["broken_rateints.fits"].error


def test_exposure_errors_name_the_missing_or_repeated_segment(tmp_path):
    _header_only(tmp_path / "s1_rateints.fits", 1, 3)
    _header_only(tmp_path / "s3_rateints.fits", 3, 3)
    _header_only(tmp_path / "t1_rateints.fits", 1, 2, OBSERVTN="002")
    _header_only(tmp_path / "t1copy_rateints.fits", 1, 2, OBSERVTN="002")
    _header_only(tmp_path / "t2_rateints.fits", 2, 2, OBSERVTN="002")
    _header_only(tmp_path / "u_rateints.fits", 1, 1, OBSERVTN="003", EXPOSURE=None)
    errors = {e.name: e.error for e in find_exposures([tmp_path])}
    assert "segment(s) [2] of 3 are missing" in errors["jw01366001001_04101_00001_nis"]
    assert "segment(s) [1] given more than once" in errors["jw01366002001_04101_00001_nis"]
    assert "lacks EXPOSURE" in errors["u_rateints.fits"]


def test_raw_ramps_are_preferred_when_complete(tmp_path):
    _header_only(tmp_path / "r1_rateints.fits", 1)
    _header_only(tmp_path / "r2_rateints.fits", 2)
    _header_only(tmp_path / "u1_uncal.fits", 1)
    _header_only(tmp_path / "u2_uncal.fits", 2)
    (exposure,) = find_exposures([tmp_path])
    assert exposure.level == "uncal" and len(exposure.ignored) == 2
    (tmp_path / "u2_uncal.fits").unlink()  # raw ramps incomplete: start from the slopes
    (exposure,) = find_exposures([tmp_path])
    assert exposure.level == "rateints" and exposure.error is None


def test_bad_batch_input_gets_one_line_errors(tmp_path):
    with pytest.raises(SossInputError, match="does not exist"):
        run_batch(tmp_path / "nowhere", tmp_path / "out")
    with pytest.raises(SossInputError, match="No \\*_uncal.fits or \\*_rateints.fits"):
        run_batch(tmp_path, tmp_path / "out")
    _header_only(tmp_path / "x_rateints.fits", 1, 1)
    with pytest.raises(SossInputError, match="Parameter folder"):
        run_batch(tmp_path, tmp_path / "out", params_dir=tmp_path / "nope")
    proc = subprocess.run([str(BIN / "soss_batch"), str(tmp_path / "nowhere"), "--output-dir",
                           str(tmp_path / "out")], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"soss_batch: error: Input folder {tmp_path / 'nowhere'} does not exist."]


def _stage(name):
    return next(s for s in STAGES if s.name == name)


def test_a_stage_is_redone_when_its_record_no_longer_holds(tiny_exposure, tmp_path):
    """In-process (no cluster): skip, redo after a lost product or a killed run, never raise."""
    x1d = SossSpec2Pipeline.call([str(p) for p in tiny_exposure.segment_files],
                                 output_dir=str(tmp_path / "x1d"), save_results=True)
    previous = StageResult("exp", "spec2", "done", products=list(x1d))
    tso3 = _stage("tso3")
    first = run_stage(tso3, "exp", [], str(tmp_path), previous=previous)
    assert first.status == "done", first.error
    assert run_stage(tso3, "exp", [], str(tmp_path), previous=previous).status == "skipped"
    Path(first.products[0]).unlink()
    (tmp_path / "exp" / ".products.part").mkdir()  # as left by a killed run
    again = run_stage(tso3, "exp", [], str(tmp_path), previous=previous)
    assert again.status == "done" and sorted(again.products) == sorted(first.products)
    assert not (tmp_path / "exp" / ".products.part").exists()
    # A failure is a result with one line, the traceback in the stage's log.
    broken = StageResult("exp", "spec2", "done", products=[str(tmp_path / "x1d")])
    failed = run_stage(tso3, "exp", [], str(tmp_path), previous=broken)
    assert failed.status == "failed" and "\n" not in failed.error
    assert "left no *_x1dints.fits product" in failed.error
    assert "Traceback" in Path(failed.log).read_text()
    # The complete products of the first run are still there.
    assert sorted(p.name for p in (tmp_path / "exp" / "products").iterdir()) == sorted(
        [Path(p).name for p in first.products] + [RECORD_NAME])
    assert run_stage(tso3, "exp", [], str(tmp_path), previous=failed).status == "not run"
    # A new parameter file: redone with it; then the fit, with its period from its file.
    bins_before = _order1_bins(first.products)
    pipeline = SossTso3Pipeline()
    pipeline.lightcurves.bin_width = 40
    pipeline.export_config(tmp_path / "soss_tso3.asdf")
    rebinned = run_stage(tso3, "exp", [], str(tmp_path), str(tmp_path / "soss_tso3.asdf"),
                         previous=previous)
    assert rebinned.status == "done"
    assert _order1_bins(rebinned.products) == (bins_before + 1) // 2  # 20 -> 40 columns
    SossFitStep(period=4.05527999, bootstrap=0, fit_spectroscopic=False).export_config(
        tmp_path / "soss_fit.asdf")
    fit = run_stage(_stage("fit"), "exp", [], str(tmp_path), str(tmp_path / "soss_fit.asdf"),
                    previous=rebinned)
    assert fit.status == "done", fit.error
    assert 0 < fit.summary["depth_ppm_order_1"] and 0 < fit.summary["depth_error_ppm_order_1"]
    record = json.loads((tmp_path / "exp" / "fit" / RECORD_NAME).read_text())
    assert record["stage"] == "soss_fit" and record["inputs"][0][0].endswith("_whtlt.ecsv")


def _order1_bins(products):
    """Number of order-1 bins in a stage's speclc."""
    speclc = Table.read(next(p for p in products if p.endswith("_speclc.ecsv")))
    return len(set(speclc["bin"][speclc["order"] == 1]))


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


def _same_fits_data(a, b):
    """Every array and table column of two FITS files equal (NaN where NaN)."""
    with fits.open(a) as ha, fits.open(b) as hb:
        assert [h.name for h in ha] == [h.name for h in hb]
        for x, y in zip(ha, hb):
            if x.name in ("PRIMARY", "ASDF") or x.data is None:
                continue
            if isinstance(x, fits.BinTableHDU):
                for name in x.columns.names:
                    np.testing.assert_array_equal(x.data[name], y.data[name], err_msg=name)
            else:
                np.testing.assert_array_equal(x.data, y.data, err_msg=x.name)


def _same_table(a, b):
    ta, tb = Table.read(a, format="ascii.ecsv"), Table.read(b, format="ascii.ecsv")
    assert ta.colnames == tb.colnames
    for name in ta.colnames:
        np.testing.assert_array_equal(ta[name], tb[name], err_msg=name)


@pytest.mark.slow
def test_batch_on_a_local_cluster_restarts_and_matches_single_runs(tmp_path, tiny_exposure,
                                                                   monkeypatch):
    """Three exposures (raw ramps, slopes, a truncated one) on a 2-worker LocalCluster."""
    raw = tmp_path / "raw"
    ramps = simulate(raw, preset="realistic_small", nints=12, nsegments=2, seed=5,
                     level="uncal", observation="005", transit_duration_fraction=1 / 3)
    slopes = tmp_path / "slopes"
    slopes.mkdir()
    for path in tiny_exposure.segment_files:
        shutil.copy(path, slopes)
    other = simulate(tmp_path / "more", preset="tiny", seed=3, observation="003")
    broken = other.segment_files[1]
    good_copy = tmp_path / "good_copy.fits"
    shutil.copy(broken, good_copy)
    _truncate(broken)
    params = tmp_path / "params"
    params.mkdir()
    refs = ramps.reference_files["mask"].parent
    crds_refs.main([str(refs), "--params-file", str(params / "soss_detector1.asdf")])
    # CRDS pointed at the simulator's offline cache; the cluster's workers inherit it.
    for name, value in crds_refs.offline_crds_environment(refs / "crds_cache").items():
        monkeypatch.setenv(name, value)
    out = tmp_path / "out"
    names = {"ramps": "jw01366005001_04101_00001_nis", "slopes": "jw01366001001_04101_00001_nis",
             "broken": "jw01366003001_04101_00001_nis"}

    table = run_batch([raw, slopes, tmp_path / "more"], out, workers=2, params_dir=params)
    rows = {row["exposure"]: row for row in table}
    assert rows[names["ramps"]]["stages"] == "detector1:done spec2:done tso3:done"
    assert rows[names["slopes"]]["stages"] == "spec2:done tso3:done"
    failed = rows[names["broken"]]
    assert failed["status"] == "failed" and failed["stages"] == "spec2:failed tso3:not run"
    assert "file is truncated" in failed["error"] and "re-download" in failed["error"]
    assert Path(failed["log"]).is_file()
    summary = Table.read(out / "batch_summary.ecsv", format="ascii.ecsv")
    assert dict(zip(summary["exposure"], summary["status"])) == {
        names["ramps"]: "done", names["slopes"]: "done", names["broken"]: "failed"}
    for key in ("ramps", "slopes"):
        assert 0.5 < rows[names[key]]["whitelight_ratio_order_1"] < 3
        products = sorted(p.name for p in (out / names[key] / "products").iterdir())
        assert f"{names[key]}_whtlt.ecsv" in products and f"{names[key]}_x1dints.fits" in products
    assert not list(out.glob("*/.*.part")), "no partial stage folder left"
    assert not (out / names["broken"] / "x1dints").exists()

    # The same exposure run by hand, pipeline by pipeline: the same data.
    single = tmp_path / "single"
    x1d = SossSpec2Pipeline.call([str(p) for p in sorted(slopes.glob("*_rateints.fits"))],
                                 output_dir=str(single), save_results=True)
    SossTso3Pipeline.call(x1d, output_dir=str(single), save_results=True)
    batch_x1d = out / names["slopes"] / "x1dints"
    for path in x1d:
        _same_fits_data(path, batch_x1d / Path(path).name)
    for suffix in ("whtlt", "speclc", "precision"):
        _same_table(single / f"{names['slopes']}_{suffix}.ecsv",
                    out / names["slopes"] / "products" / f"{names['slopes']}_{suffix}.ecsv")
    _same_fits_data(single / f"{names['slopes']}_x1dints.fits",
                    out / names["slopes"] / "products" / f"{names['slopes']}_x1dints.fits")

    # Repaired, rerun from the command line: the two complete ones are skipped.
    shutil.copy(good_copy, broken)
    kept = {p: p.stat().st_mtime_ns for p in out.glob("*/products/*")}
    proc = subprocess.run([str(BIN / "soss_batch"), str(raw), str(slopes), str(tmp_path / "more"),
                           "--output-dir", str(out), "--workers", "1", "--params-dir",
                           str(params)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "3 of 3 exposure(s) complete" in proc.stdout
    assert "Traceback" not in proc.stderr
    rows = {row["exposure"]: row for row in Table.read(out / "batch_summary.ecsv",
                                                       format="ascii.ecsv")}
    assert rows[names["ramps"]]["status"] == "skipped"
    assert rows[names["slopes"]]["status"] == "skipped"
    assert rows[names["broken"]]["stages"] == "spec2:done tso3:done"
    assert all(p.stat().st_mtime_ns == t for p, t in kept.items())

