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
         "--steps.oneoverf_groups.save_offsets=true",
         "--steps.oneoverf_groups.save_plot=true", *args],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    # Official-step parameters pass through; the SOSS jump settings apply
    # without being asked for.
    assert "CR rejection threshold = 5.5 sigma" in proc.stderr
    assert "min_diffs_single_pass: 1\n" in proc.stderr
    assert "Time budget" in proc.stderr
    products = sorted(tmp_path.glob("*_rateints.fits"))
    assert [p.name for p in products] == [
        Path(f).name.replace("_uncal", "_rateints") for f in files
    ]
    assert len(list(tmp_path.glob("*_oneoverf_groups_offsets.fits"))) == 2
    assert len(list(tmp_path.glob("*_oneoverf_groups.png"))) == 2
    # The leak fitted over both segments went into the slopes; the segments
    # waited for it under names no reader takes for products.
    assert "Added to the slopes the 1/f offsets' part" in proc.stderr
    assert not list(tmp_path.glob(".*partial*"))
    with datamodels.open(products[0]) as model:
        assert model.meta.cal_step.soss_oneoverf_groups == "COMPLETE"
        assert model.meta.filename == products[0].name
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
    with fits.open(next(tmp_path.glob("*seg001*_oneoverf_groups_offsets.fits"))) as hdul:
        background = hdul["FITMASK"].data.astype(bool)
    # On the pixels away from the traces, the column 1/f the official refpix
    # leaves (one offset per group for SUBSTRIP256) is mostly gone.
    assert _column_noise(ours, background) < 0.5 * _column_noise(theirs, background)
    # Elsewhere the slopes agree within their noise (no flux taken or added).
    trace = ~background
    trace[-4:] = trace[:, :4] = trace[:, -4:] = False
    diff = np.nanmedian((ours - theirs)[:, trace])
    assert abs(diff) < 0.05 * np.nanmedian(np.abs(theirs[:, trace]))


def _call(raw, output_dir, **pars):
    steps = crds_refs.detector1_overrides(raw.reference_files, SossDetector1Pipeline.step_defs)
    # The same star model in both runs (the whole run could afford more);
    # jump compares each difference with the chunk's median: left out here.
    steps["oneoverf_groups"] = {"reference_integrations": 3}
    steps["jump"] = {"skip": True}
    with crds_refs.offline_crds(raw.reference_files["mask"].parent / "crds_cache"):
        return SossDetector1Pipeline.call(
            [str(f) for f in raw.segment_files], steps=steps, save_results=True,
            output_dir=str(output_dir), save_rate=True, **pars
        )


@pytest.mark.slow
def test_chunks_and_processes_do_not_change_the_rateints(raw, tmp_path):
    """Whole segments on two processes against 2-integration chunks in one."""
    whole = _call(raw, tmp_path / "whole", memory_limit=20.0, processes=2)
    chunked = _call(raw, tmp_path / "chunked", memory_limit=1.0, processes=1)
    assert [Path(p).name for p in whole] == [Path(p).name for p in chunked]
    for a, b in zip(whole, chunked, strict=True):
        with datamodels.open(a) as x, datamodels.open(b) as y:
            assert x.meta.exposure.integration_start == y.meta.exposure.integration_start
            assert len(x.int_times) == len(y.int_times) == x.data.shape[0]
            # The slopes and flags do not depend on the chunks.
            np.testing.assert_array_equal(x.data, y.data)
            np.testing.assert_array_equal(x.dq, y.dq)
            np.testing.assert_array_equal(x.var_rnoise, y.var_rnoise)
            # stcal's Poisson variance uses each pixel's median group
            # difference over the integrations it is given: on the trace
            # that differs by far less than its own noise.
            ok = np.isfinite(x.err) & (x.err > 0)
            assert np.median(np.abs(x.err[ok] - y.err[ok]) / x.err[ok]) < 0.01
        rate = Path(a).with_name(Path(a).name.replace("_rateints", "_rate"))
        with datamodels.open(rate) as x, datamodels.open(
            Path(b).with_name(rate.name)
        ) as y:
            # The chunks' slopes combined as ramp_fit combines integrations.
            ok = np.isfinite(x.data)
            np.testing.assert_allclose(y.data[ok], x.data[ok], rtol=1e-5, atol=1e-4)
            np.testing.assert_allclose(y.var_rnoise[ok], x.var_rnoise[ok], rtol=1e-5)


def test_soss_jump_settings_come_as_parameter_defaults(raw):
    """Given as a CRDS parameter reference would be: below the user's own values."""
    config, _ = SossDetector1Pipeline.build_config(str(raw.segment_files[0]))
    assert config["steps"]["jump"]["min_diffs_single_pass"] == 1
    config, _ = SossDetector1Pipeline.build_config(
        str(raw.segment_files[0]), steps={"jump": {"min_diffs_single_pass": 10}}
    )
    assert config["steps"]["jump"]["min_diffs_single_pass"] == 10


def test_memory_budget_fits_chunks_and_processes():
    from jwst_soss_custom.chunks import RampBudget

    big = RampBudget(16.0, 9, (256, 2048), 135, processes=2)
    assert big.processes == 2 and 1 <= big.chunk_integrations <= 135
    small = RampBudget(3.0, 9, (256, 2048), 135, processes=2)
    # Two processes would not fit: one works alone, in smaller chunks.
    assert small.processes == 1 and small.chunk_integrations < big.chunk_integrations
    with pytest.raises(SossInputError, match="memory_limit=1.5 GB is too small"):
        RampBudget(1.5, 9, (256, 2048), 135)


def test_ramp_source_reads_chunks_and_refuses_damaged_files(raw, tmp_path):
    from jwst_soss_custom.ramp_source import RampSource

    source = RampSource([str(f) for f in reversed(raw.segment_files)])
    assert [s.filename for s in source.segments] == [f.name for f in raw.segment_files]
    chunk = source.ramp(1, 1, 3)
    with datamodels.open(raw.segment_files[1]) as model:
        np.testing.assert_array_equal(chunk.data, model.data[1:3].astype(np.float32))
        first = model.meta.exposure.integration_start + 1
    assert chunk.meta.exposure.integration_start == first
    assert list(chunk.int_times["integration_number"]) == [first, first + 1]
    # The sample strides over the whole exposure, across segments.
    picks = [source.segments[i].start + k for i, a, b, step in source.sample(4)
             for k in range(a, b, step)]
    assert picks == [0, 2, 4, 6]
    data = raw.segment_files[0].read_bytes()
    damaged = tmp_path / raw.segment_files[0].name
    damaged.write_bytes(data[: len(data) // 2])
    with pytest.raises(SossInputError, match="truncated"):
        RampSource(str(damaged))


def test_detector1_refuses_rateints_with_a_clear_message(tiny_exposure):
    with pytest.raises(SossInputError, match="4-D ramp"):
        SossDetector1Pipeline.call(str(tiny_exposure.segment_files[0]))


@pytest.mark.slow
def test_strun_soss_oneoverf_groups_alone_leaves_the_leak_in_the_groups(raw, tmp_path):
    """The step on its own (a ramp of one segment): leak fitted on all of it, saved with it."""
    from astropy.io import fits

    proc = subprocess.run(
        [str(Path(sys.executable).with_name("strun")), "soss_oneoverf_groups",
         str(raw.segment_files[0]), f"--output_dir={tmp_path}", "--save_offsets=true",
         "--save_results=true"],
        capture_output=True, text=True, cwd=tmp_path, timeout=600,
        env=dict(os.environ, STPIPE_DISABLE_CRDS_STEPPARS="true"),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Left in the data the offsets' part following the star's brightness" in proc.stderr
    # The side product does not take the corrected ramp's name.
    (saved,) = tmp_path.glob("*_oneoverf_groups_offsets.fits")
    with fits.open(saved) as hdul:
        assert hdul["LEAK"].data.shape == (2, 2048)  # degree 1: two coefficients per column
        assert hdul["COEFFS"].data.shape[0] == raw.config.nints // 2
    (ramp,) = tmp_path.glob("*_oneoverf_groups.fits")
    with datamodels.open(ramp) as model:
        assert model.meta.cal_step.soss_oneoverf_groups == "COMPLETE"
        assert model.data.ndim == 4
