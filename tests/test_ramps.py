"""The group-level simulator: ramp physics, readout noise, references, official Detector1.

Tolerances come from the number of samples (standard errors), not from a
tuned run.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from stdatamodels.jwst import datamodels

from jwst_soss_custom.datasets import NO_SYSTEMATICS, load_truth, make_config, simulate
from jwst_soss_custom.datasets import crds_refs
from jwst_soss_custom.datasets.detector import (
    PIXEL_TIME,
    CorrelatedNoise,
    DetectorMaps,
    draw_cosmic_ray_events,
    frame_clocks,
    integration_ramp,
    readout_clock,
)
from jwst_soss_custom.datasets.ramps import ramp_model
from jwst_soss_custom.datasets.transit import integration_times

#: Effects that keep a simulated rate away from its noiseless truth by more
#: than the ERR ramp fitting reports: off for the noise tests.
QUIET = {**NO_SYSTEMATICS, "transit": False, "visit_ramp_amplitude": 0.0, "flux_drift": 0.0}


def test_readout_order_and_frame_clock():
    clock = readout_clock(256, 2048)
    # One output: columns from x = 2047 down, each read from row 255 down,
    # after 12 pixel times of overhead.
    assert clock[255, 2047] == 12
    assert clock[254, 2047] == 13
    assert clock[255, 2046] == 268 + 12
    assert np.unique(clock).size == clock.size
    frame = frame_clocks(5.494)
    assert clock.max() < frame
    assert abs(frame * PIXEL_TIME - 5.494) < 1e-4


def _uniform_maps(shape, gain=1.6, read_noise=12.0, a=1e-12):
    ones = np.ones(shape, np.float32)
    return DetectorMaps(
        bias=10000 * ones, gain=gain * ones, read_noise=read_noise * ones,
        readnoise_cds=np.sqrt(2) * read_noise / gain * ones, dark=0 * ones,
        nonlinearity=a * ones, full_well=1e9 * ones, saturation=65000 * ones,
        response=ones, dq=np.zeros(shape, np.uint32), ktc=30.0,
    )


def test_variance_up_the_ramp_is_poisson_plus_read_noise():
    config = make_config("tiny", ngroups=6)
    shape = (32, 64)
    rate = 40.0  # DN/s
    maps = _uniform_maps(shape)
    rng = np.random.default_rng(11)
    zeros = np.zeros((config.ngroups,) + shape, np.float32)
    reads = np.stack([
        integration_ramp(np.full(shape, rate, np.float32), maps, config, rng, zeros, None,
                         np.zeros(shape, bool)).astype(float)
        for _ in range(300)
    ])
    n = reads.shape[0] * shape[0] * shape[1]
    lam = rate * 1.6 * config.frame_time  # electrons per frame
    read_var = (12.0 / 1.6) ** 2
    for g in range(1, config.ngroups):
        diff = reads[:, g] - reads[:, 0]
        # Charge accumulates: g frames of Poisson electrons between the reads,
        # plus two reads' noise and their quantisation.
        expected = g * lam / 1.6**2 + 2 * read_var + 2 / 12
        measured = diff.var(axis=0, ddof=1).mean()
        assert abs(measured / expected - 1) < 5 * np.sqrt(2 / n)
        mean = diff.mean()
        assert abs(mean - g * lam / 1.6) < 5 * np.sqrt(expected / n)
    # Successive increments are independent (no correlation up the ramp).
    inc = np.diff(reads, axis=1)
    c = np.mean((inc[:, 1] - inc[:, 1].mean(0)) * (inc[:, 2] - inc[:, 2].mean(0)))
    # Increments share one read's noise with opposite sign: -read_var - 1/12.
    assert abs(c - (-read_var - 1 / 12)) < 5 * (lam / 1.6**2 + 2 * read_var) / np.sqrt(n)


def test_oneoverf_spectrum_and_amplitude():
    noise = CorrelatedNoise(10.0, 0.0, 0.0, 5.494, 9, (256, 2048))
    rng = np.random.default_rng(3)
    length = 2 * noise.per_integration
    dt = noise.DECIMATION * PIXEL_TIME
    series = [noise._pink(rng, length, 10.0).astype(float) for _ in range(6)]
    freq = np.fft.rfftfreq(series[0].size, d=dt)
    power = np.mean([np.abs(np.fft.rfft(s)) ** 2 for s in series], axis=0)
    band = (freq > 0.1) & (freq < 1000)
    slope = np.polyfit(np.log(freq[band]), np.log(power[band]), 1)[0]
    assert abs(slope + 1) < 0.05
    # Variance above the normalisation band's low edge: sigma^2 x the share
    # of a 1/f spectrum drawn at this rate (the rest is white, per read).
    spec = [np.fft.rfft(s) for s in series]
    for s in spec:
        s[freq < noise.band_low] = 0
    high = np.array([np.fft.irfft(s, n=series[0].size).var() for s in spec])
    assert abs(high.mean() / (100 * noise.low_share) - 1) < 0.1
    assert noise.white_variance == pytest.approx(100 * (1 - noise.low_share))


def test_cosmic_ray_rate_and_arrival_groups():
    config = make_config("realistic", cr_flux=5.0)
    science = np.ones((256, 2048), bool)
    events = draw_cosmic_ray_events(config, np.random.default_rng(5), science, 50)
    expected = 5.0 * (18e-4) ** 2 * config.ngroups * config.frame_time * science.size * 50
    assert abs(events["y"].size - expected) < 5 * np.sqrt(expected)
    counts = np.bincount(events["group"], minlength=config.ngroups)
    share = events["y"].size / config.ngroups
    assert np.all(np.abs(counts - share) < 5 * np.sqrt(share))
    assert np.all(np.diff(events["integration"]) >= 0)


def _weighted_slope(noise, power):
    """Slope (per group) that stcal's optimal weighting fits to noise alone."""
    g = np.arange(noise.shape[0], dtype=float)
    mid = (g.size - 1) / 2
    w = np.abs((g - mid) / mid) ** power
    sw, sx, sxx = w.sum(), (w * g).sum(), (w * g * g).sum()
    sy = np.tensordot(w, noise, 1)
    sxy = np.tensordot(w * g, noise, 1)
    return (sw * sxy - sx * sy) / (sw * sxx - sx**2)


def test_ramp_fitting_gives_trace_and_background_different_oneoverf(tmp_path):
    """After optimal weighting, one column's 1/f offset depends on the pixel's SNR."""
    from jwst.ramp_fitting import RampFitStep

    from jwst_soss_custom.datasets.detector import make_detector_maps
    from jwst_soss_custom.datasets.noise import draw_bad_pixels

    config = make_config("realistic", nints=2, nsegments=1, n_hot=0, n_dead=0)
    shape = (256, 2048)
    ref = np.zeros(shape, bool)
    maps = make_detector_maps(config, np.random.default_rng(0), ref,
                              draw_bad_pixels(config, np.random.default_rng(0), ~ref), 0.0)
    refs = crds_refs.write_references(maps, config, tmp_path / "refs")
    noise = CorrelatedNoise(10.0, 2.0, 0.0, config.frame_time, config.ngroups, shape)
    correlated = noise.draw(np.random.default_rng(1), config.nints) / maps.gain  # DN
    # Rows 0-127: a bright trace (SNR > 100: weight power 10, the end reads);
    # rows 128-255: faint background (SNR < 5: uniform weights).
    rate = np.where(np.arange(256)[:, None] < 128, 300.0, 0.3) * np.ones(shape)
    frames = np.arange(1, config.ngroups + 1)[:, None, None] * config.frame_time
    reads = rate[None, None] * frames[None] + correlated
    model = ramp_model(config, integration_times(config), reads, 1, 1, 1)
    with crds_refs.offline_crds(tmp_path / "refs" / "crds_cache"):
        _, cube = RampFitStep.call(model, override_gain=str(refs["gain"]),
                                   override_readnoise=str(refs["readnoise"]))
    residual = cube.data - rate[None]  # 1/f alone: no photon or read noise
    predicted = np.stack([
        np.where(np.arange(256)[:, None] < 128,
                 _weighted_slope(c, 10.0), _weighted_slope(c, 0.0)) / config.frame_time
        for c in correlated
    ])
    assert np.corrcoef(residual.ravel(), predicted.ravel())[0, 1] > 0.999
    # Column offsets of trace and background rows: not one shared number.
    trace = residual[:, 20:108].mean(axis=1)
    background = residual[:, 148:236].mean(axis=1)
    assert np.std(trace - background) > 0.5 * np.std(background)
    # Within the trace rows the offset drifts along the column (pixel clock).
    halves = residual[:, 20:64].mean(axis=1) - residual[:, 64:108].mean(axis=1)
    noise_floor = np.std(residual[:, 20:108], axis=1).mean() / np.sqrt(44) * np.sqrt(2)
    assert np.std(halves) > 1.5 * noise_floor


@pytest.fixture(scope="module")
def clean_rateints(tmp_path_factory):
    out = tmp_path_factory.mktemp("rateints")
    return simulate(out, preset="realistic", nints=4, nsegments=1, seed=2,
                    level="rateints", **QUIET)


def test_rateints_level_matches_truth_within_err(clean_rateints):
    truth = load_truth(clean_rateints.truth_file)
    with datamodels.open(clean_rateints.segment_files[0]) as model:
        assert model.meta.cal_step.ramp_fit == "COMPLETE"
        assert model.meta.exposure.type == "NIS_SOSS"
        data, err = model.data, model.err
    expected = truth["deep_frame"] * truth["bad_pixels"]["response"]
    science = np.ones(expected.shape, bool)
    science[-4:] = False
    science[:, :4] = science[:, -4:] = False
    science &= ~truth["bad_pixels"]["hot_unflagged"]
    z = (data - expected) / err
    for lo, hi in ((10, 50), (50, 200), (200, 5000)):
        sel = z[:, science & (expected > lo) & (expected < hi)]
        sel = sel[np.isfinite(sel)]
        # Unbiased, and ERR right within what ramp fitting's variance
        # model can do (its Poisson term assumes end-point weighting: at
        # low SNR the uniform-weight fit has up to ~9 % more variance).
        assert abs(sel.mean()) < 5 / np.sqrt(sel.size) + 0.01
        assert 0.97 < sel.std() < 1.06


def test_rateints_truth_records_ramp_physics(clean_rateints):
    truth = load_truth(clean_rateints.truth_file)
    assert truth["level"] == "rateints"
    det = truth["detector"]
    assert det["gain"].shape == (256, 2048)
    assert np.median(det["gain"]) == pytest.approx(1.61, rel=0.01)
    assert sorted(truth["files"]["references"]) == sorted(crds_refs.REFERENCE_TYPES)
    for order in (1, 2):
        o = truth[f"order{order}"]
        assert np.all(o["depth_diluted"] <= o["depth"])
    assert truth["contaminants"]["flux_ratio"].size == 2
    assert truth["host_star"]["teff"] == 5400.0


def _run(cmd, env=None, cwd=None):
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd, timeout=900)


@pytest.mark.slow
def test_official_detector1_runs_offline_on_uncal(tmp_path):
    """strun calwebb_detector1 on the uncal with the simulated references, no CRDS server."""
    sim = simulate(tmp_path / "raw", preset="realistic_small", nints=3, nsegments=1, seed=4,
                   level="uncal", transit=False, visit_ramp_amplitude=0.0, flux_drift=0.0,
                   jitter_rms_y=0.0, drift_y=0.0, cr_flux=30.0)
    uncal = sim.segment_files[0]
    with datamodels.open(uncal) as model:
        assert model.data.dtype == np.uint16
        assert model.data.shape == (3, 9, 256, 2048)
        assert model.meta.exposure.readpatt == "NISRAPID"
        assert model.meta.instrument.pupil == "GR700XD"
    env = dict(os.environ)
    env.pop("CRDS_PATH", None)
    env.pop("CRDS_SERVER_URL", None)
    env.update(crds_refs.offline_crds_environment(tmp_path / "raw" / "refs" / "crds_cache"))
    strun = str(Path(sys.executable).with_name("strun"))
    out = tmp_path / "d1"
    out.mkdir()
    proc = _run([strun, "calwebb_detector1", str(uncal), f"--output_dir={out}",
                 *crds_refs.strun_arguments(sim.reference_files)], env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    rateints = out / uncal.name.replace("_uncal", "_rateints")
    truth = load_truth(sim.truth_file)
    with datamodels.open(rateints) as model:
        data, err, dq = model.data, model.err, model.dq
    # The official jump step found the simulated cosmic rays.
    assert np.mean((dq & 4) > 0) > 1e-4
    expected = truth["deep_frame"] * truth["bad_pixels"]["response"]
    bright = expected > 100
    bright[-4:] = False
    bright[:, :4] = bright[:, -4:] = False
    z = ((data - expected) / err)[:, bright]
    z = z[np.isfinite(z)]
    # Photon-dominated pixels: unbiased and within ERR, 1/f included.
    assert abs(np.median(z)) < 0.05
    assert 0.9 < 1.4826 * np.median(np.abs(z - np.median(z))) < 1.15


def test_substrip96_uncal_and_cli_errors(tmp_path):
    cli = str(Path(sys.executable).with_name("soss_simulate"))
    proc = _run([cli, "--preset", "realistic_small", "--nints", "2", "--nsegments", "1",
                 "--level", "uncal", "--subarray", "SUBSTRIP96", "--output-dir",
                 str(tmp_path / "s96"), "--quiet"])
    assert proc.returncode == 0, proc.stderr[-2000:]
    files = proc.stdout.split()
    uncal = [f for f in files if f.endswith("_uncal.fits")]
    assert len(uncal) == 1 and sum(f.endswith(".fits") and "/refs/" in f for f in files) == 7
    with datamodels.open(uncal[0]) as model:
        assert model.data.shape == (2, 9, 96, 2048)
        assert model.meta.subarray.name == "SUBSTRIP96"
        assert model.meta.subarray.ystart == 1803
        assert model.meta.exposure.frame_time == pytest.approx(2.214)
    with datamodels.open([f for f in files if f.endswith("_superbias.fits")][0]) as ref:
        assert ref.meta.reftype == "SUPERBIAS" and ref.data.shape == (96, 2048)
    # soss_detector1 on them: the official steps on the 96 rows, the group
    # 1/f fitted with the traces placed in the SUBSTRIP256 frame.
    from jwst_soss_custom.pipeline.soss_detector1 import SossDetector1Pipeline

    refs = {Path(f).stem.rsplit("_", 1)[1]: f for f in files if "/refs/" in f}
    slopes = {}
    for cleaned in (False, True):
        steps = crds_refs.detector1_overrides(refs, SossDetector1Pipeline.step_defs)
        steps["jump"] = {"skip": True}
        steps["oneoverf_groups"] = {"skip": not cleaned, "decorrelate": False}
        with crds_refs.offline_crds(Path(refs["mask"]).parent / "crds_cache"):
            rateints = SossDetector1Pipeline.call(uncal[0], steps=steps)
        assert rateints.data.shape == (2, 96, 2048)
        assert rateints.meta.subarray.name == "SUBSTRIP96"
        assert rateints.meta.cal_step.soss_oneoverf_groups == ("COMPLETE" if cleaned else "SKIPPED")
        slopes[cleaned] = rateints.data
    # Background rows (subarray rows 0-14, >= 20 rows below order 1): the
    # variance of the columns' stripes (median over the rows, the mean of the
    # two integrations removed) beyond what the pixels' own noise gives them
    # (1.2533^2 sigma^2 / 15 rows, halved by removing the mean).
    def excess(data):
        band = data[:, :15, 8:-8]
        med = np.nanmedian(band, axis=1)
        stripes = np.nanvar(med - np.nanmean(med, axis=0))
        sigma = 1.4826 * np.nanmedian(np.abs(band - med[:, None]))
        return stripes - 1.2533**2 * sigma**2 / 15 / 2

    print("1/f variance beyond the pixel noise", excess(slopes[False]), excess(slopes[True]))
    assert excess(slopes[True]) < 0.25 * excess(slopes[False])
    afile = tmp_path / "a_file"
    afile.write_text("x")
    proc = _run([cli, "--preset", "tiny", "--level", "slopes", "--output-dir", str(afile)])
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "is a file" in proc.stderr
    proc = _run([cli, "--preset", "tiny", "--level", "slopes", "--subarray", "FULL",
                 "--output-dir", str(tmp_path / "x")])
    assert proc.returncode == 2 and "FULL" in proc.stderr


def test_f277w_exposure(tmp_path):
    """F277W: order-1 light beyond 2.42 um only, order 0s at their F277W brightness."""
    clear = simulate(tmp_path / "clear", preset="tiny", nints=2, nsegments=1, seed=6)
    f277w = simulate(tmp_path / "f277w", preset="tiny", nints=2, nsegments=1, seed=6,
                     filter="F277W")
    with datamodels.open(f277w.segment_files[0]) as model:
        assert model.meta.instrument.filter == "F277W"
    c, f = load_truth(clear.truth_file), load_truth(f277w.truth_file)
    wave = f["order1"]["wavelength"]
    flux = f["order1"]["column_flux"]
    assert np.all(flux[wave < 2.30] < 1e-3 * c["order1"]["column_flux"][wave < 2.30])
    inside = (wave > 2.5) & (wave < 2.8)
    np.testing.assert_allclose(flux[inside], c["order1"]["column_flux"][inside], rtol=1e-3)
    assert f["order2"]["column_flux"].max() < 1e-6
    ratio = c["order0"]["peak"] / f["order0"]["peak"]
    np.testing.assert_allclose(ratio, 2.6305, rtol=1e-3)
