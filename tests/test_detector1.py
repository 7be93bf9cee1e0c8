"""soss_detector1: raw ramps to rateints through the official steps and group-level 1/f."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from stdatamodels.jwst import datamodels

from jwst_soss_custom import SossInputError
from jwst_soss_custom.datasets import crds_refs, simulate
from jwst_soss_custom.pipeline.soss_detector1 import SossDetector1Pipeline


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    """A short realistic exposure as raw ramps (two segments), with its references."""
    out = tmp_path_factory.mktemp("raw")
    return simulate(out, preset="realistic_small", nints=8, nsegments=2, seed=11, level="uncal")


def _column_noise(cube, pixels):
    """RMS over integrations and columns of each column's median over ``pixels``.

    The mean over integrations is taken out: a fixed per-pixel offset is no
    1/f noise.
    """
    values = np.where(pixels[None], cube, np.nan)[:, :, 8:-8]
    med = np.nanmedian(values, axis=1)
    return float(np.sqrt(np.nanmean((med - np.nanmean(med, axis=0)) ** 2)))


@pytest.mark.slow
def test_strun_soss_detector1_cleans_the_groups_and_names_products(raw, tmp_path):
    """strun on the uncal ASN; against the official Detector1 on the same ramps."""
    files = [str(f) for f in raw.segment_files]
    asn = tmp_path / "d1_asn.json"
    subprocess.run([str(Path(sys.executable).with_name("asn_from_list")), "-r",
                    "DMSLevel2bBase", "-o", str(asn), *files], check=True, cwd=tmp_path)
    env = dict(os.environ)
    env.update(crds_refs.offline_crds_environment(raw.reference_files["mask"].parent / "crds_cache"))
    args = crds_refs.strun_arguments(raw.reference_files, SossDetector1Pipeline.step_defs)
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("strun")), "soss_detector1", str(asn),
         f"--output_dir={tmp_path}", "--steps.jump.rejection_threshold=5.5",
         # One pass: stcal's iterative search takes minutes with few groups.
         "--steps.jump.min_diffs_single_pass=1",
         "--steps.oneoverf_groups.save_offsets=true", *args],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    # Official-step parameters pass through.
    assert "CR rejection threshold = 5.5 sigma" in proc.stderr
    products = sorted(tmp_path.glob("*_rateints.fits"))
    assert [p.name for p in products] == [
        Path(f).name.replace("_uncal", "_rateints") for f in files
    ]
    assert len(list(tmp_path.glob("*_oneoverf_groups.fits"))) == 2
    with datamodels.open(products[0]) as model:
        assert model.meta.cal_step.soss_oneoverf_groups == "COMPLETE"
        ours = model.data.copy()
    # The official Detector1 on the same ramps.
    from astropy.io import fits
    from jwst.pipeline import Detector1Pipeline

    official_dir = tmp_path / "official"
    with crds_refs.offline_crds(raw.reference_files["mask"].parent / "crds_cache"):
        steps = crds_refs.detector1_overrides(raw.reference_files)
        steps["jump"]["min_diffs_single_pass"] = 1
        Detector1Pipeline.call(files[0], save_results=True, output_dir=str(official_dir),
                               steps=steps)
    with datamodels.open(official_dir / products[0].name) as model:
        theirs = model.data.copy()
    with fits.open(next(tmp_path.glob("*seg001*_oneoverf_groups.fits"))) as hdul:
        background = hdul["FITMASK"].data.astype(bool)
    # On the pixels away from the traces, the column 1/f the official refpix
    # leaves (one offset per group for SUBSTRIP256) is mostly gone.
    assert _column_noise(ours, background) < 0.5 * _column_noise(theirs, background)
    # Elsewhere the slopes agree within their noise (no flux taken or added).
    trace = ~background
    trace[-4:] = trace[:, :4] = trace[:, -4:] = False
    diff = np.nanmedian((ours - theirs)[:, trace])
    assert abs(diff) < 0.05 * np.nanmedian(np.abs(theirs[:, trace]))


def test_detector1_refuses_rateints_with_a_clear_message(tiny_exposure):
    with pytest.raises(SossInputError, match="4-D ramp"):
        SossDetector1Pipeline.call(str(tiny_exposure.segment_files[0]))
