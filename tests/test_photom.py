"""soss_photom: optional flux calibration of the x1dints by jwst's photom code."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.table import Table
from stdatamodels.jwst import datamodels

from jwst_soss_custom._base.errors import SossInputError
from jwst_soss_custom.datasets.crds_refs import write_soss_photom
from jwst_soss_custom.extract import SossPhotomStep
from jwst_soss_custom.pipeline import SossSpec2Pipeline, SossTso3Pipeline

BIN = Path(sys.executable).parent


@pytest.mark.slow
def test_spec2_calibrates_on_request_and_the_light_curves_do_not_change(tiny_asn, tmp_path):
    photom = write_soss_photom(tmp_path / "photom.fits", photmj=(2e-3, 5e-3, 5e-3))
    plain = SossSpec2Pipeline.call(str(tiny_asn), output_dir=str(tmp_path / "dn"),
                                   save_results=True)
    proc = subprocess.run(
        [str(BIN / "strun"), "soss_spec2", str(tiny_asn), f"--output_dir={tmp_path / 'jy'}",
         "--steps.photom.skip=false", f"--steps.photom.override_photom={photom}"],
        capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Fluxes calibrated with" in proc.stderr
    for path in plain:
        with datamodels.open(path) as dn, datamodels.open(tmp_path / "jy" / Path(path).name) as cal:
            assert cal.meta.cal_step.photom == "COMPLETE"
            assert Path(cal.meta.ref_file.photom.name).name == "photom.fits"
            for a, b in zip(dn.spec, cal.spec, strict=True):
                order = int(a.spectral_order)
                wave = np.asarray(a.spec_table["WAVELENGTH"], float)
                expected = [2e-3, 5e-3][order - 1] * np.interp(wave, [0.5, 3.0], [1.0, 2.0])
                ratio = np.asarray(b.spec_table["FLUX"], float) / np.asarray(
                    a.spec_table["FLUX"], float)
                good = np.isfinite(ratio)
                assert good.mean() > 0.5
                assert np.allclose(ratio[good], np.broadcast_to(expected, ratio.shape)[good],
                                   rtol=1e-5)
                assert b.spec_table.columns["FLUX"].unit == "MJy"
    # Light curves from calibrated x1dints: the white light is a sum over
    # wavelengths, reweighted by the conversion, so its transit changes by the
    # depth's chromatic spread times the weights' change (< 1e-4), no more.
    for folder in ("dn", "jy"):
        SossTso3Pipeline.call(sorted(str(p) for p in (tmp_path / folder).glob("*_x1dints.fits")),
                              output_dir=str(tmp_path / f"lc_{folder}"), save_results=True)
    name = "jw01366001001_04101_00001_nis_whtlt.ecsv"
    a, b = Table.read(tmp_path / "lc_dn" / name), Table.read(tmp_path / "lc_jy" / name)
    np.testing.assert_allclose(a["whitelight_flux_norm_order_1"], b["whitelight_flux_norm_order_1"],
                               atol=1e-4)
    assert not np.allclose(a["whitelight_flux_norm_order_1"], b["whitelight_flux_norm_order_1"],
                           atol=1e-7, rtol=0)  # the reweighting is there


def test_photom_without_a_reference_says_what_to_give(tiny_exposure, tmp_path, monkeypatch):
    from jwst_soss_custom.lightcurves.synthetic import synthetic_segments

    monkeypatch.setenv("CRDS_PATH", str(tmp_path / "no_crds"))
    monkeypatch.setenv("CRDS_SERVER_URL", "https://localhost:1")
    (x1d,) = synthetic_segments(nints=6, nsegments=1, ncols=64)
    with pytest.raises(SossInputError, match="override_photom"):
        SossPhotomStep.call(x1d)
    with pytest.raises(SossInputError, match="calibrates SOSS x1dints"):
        SossPhotomStep.call(str(tiny_exposure.segment_files[0]),
                            override_photom=str(write_soss_photom(tmp_path / "p.fits")))


def test_a_model_given_directly_is_not_changed(tmp_path):
    from jwst_soss_custom.lightcurves.synthetic import synthetic_segments

    (x1d,) = synthetic_segments(nints=4, nsegments=1, ncols=64)
    before = np.array(x1d.spec[0].spec_table["FLUX"], copy=True)
    out = SossPhotomStep.call(x1d, override_photom=str(write_soss_photom(tmp_path / "p.fits")))
    np.testing.assert_array_equal(x1d.spec[0].spec_table["FLUX"], before)
    assert not np.allclose(out.spec[0].spec_table["FLUX"], before, equal_nan=True)
