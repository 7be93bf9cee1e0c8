"""Spec2 on simulated exposures: Python API, strun, parameter files, recovery."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from stdatamodels.jwst import datamodels

from jwst_soss_custom.pipeline import SossSpec2Pipeline

REPO = Path(__file__).resolve().parents[1]
STRUN = str(Path(sys.executable).with_name("strun"))


def run_strun(*args, cwd):
    """Run strun in a subprocess (the user's way); return the completed process."""
    env = dict(os.environ, STPIPE_DISABLE_CRDS_STEPPARS="true", MPLBACKEND="Agg")
    return subprocess.run(
        [STRUN, *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="module")
def spec2_products(tiny_asn, tmp_path_factory):
    """soss_spec2 run once through Python on the tiny exposure's association."""
    out = tmp_path_factory.mktemp("spec2")
    results = SossSpec2Pipeline.call(
        str(tiny_asn), output_dir=str(out), save_results=True, steps={"extract": {"box_width": 32.0}}
    )
    return out, results


def test_spec2_writes_one_x1dints_per_segment(spec2_products, tiny_exposure):
    out, results = spec2_products
    names = sorted(p.name for p in out.glob("*_x1dints.fits"))
    expected = sorted(p.name.replace("_rateints", "_x1dints") for p in tiny_exposure.segment_files)
    assert names == expected
    nint_total = 0
    for path in sorted(out.glob("*_x1dints.fits")):
        with datamodels.open(path) as model:
            assert isinstance(model, datamodels.TSOMultiSpecModel)
            assert [s.spectral_order for s in model.spec] == [1, 2]
            for spec in model.spec:
                table = spec.spec_table
                wave = table["WAVELENGTH"][0]
                assert np.all(np.diff(wave) > 0)
                assert np.isfinite(table["FLUX"]).all() and np.isfinite(table["TDB-MID"]).all()
                assert (table["FLUX_ERROR"] > 0).all()
            w1, w2 = (s.spec_table["WAVELENGTH"][0] for s in model.spec)
            assert 0.84 < w1.min() < 0.87 and 2.8 < w1.max() < 2.9
            assert 0.55 < w2.min() < 0.65 and 1.3 < w2.max() < 1.45
            nint_total += len(model.spec[0].spec_table)
            assert model.meta.cal_step.soss_extract == "COMPLETE"
            # steps={...} reached the extract step (default width is 40)
            assert np.median(model.spec[0].spec_table["NPIXELS"]) == pytest.approx(32.0)
    assert nint_total == sum(datamodels.open(p).data.shape[0] for p in tiny_exposure.segment_files)


def _fit_depth(time, flux, params):
    """Least-squares Rp/R* and a linear baseline with the orbit and limb darkening fixed."""
    import batman
    from scipy.optimize import least_squares

    bp = batman.TransitParams()
    bp.t0, bp.per, bp.a, bp.inc = params["t0"], params["period"], params["a_rs"], params["inc"]
    bp.ecc, bp.w, bp.limb_dark, bp.u = 0.0, 90.0, "quadratic", list(params["u"])
    bp.rp = 0.14
    model = batman.TransitModel(bp, time)
    tm = (time - time.mean()) / np.ptp(time)
    flux = flux / np.median(flux)  # well-conditioned normal equations

    def residual(p):
        bp.rp = p[0]
        return flux - model.light_curve(bp) * (p[1] + p[2] * tm)

    fit = least_squares(residual, [0.14, 1.0, 0.0], x_scale="jac")
    dof = time.size - 3
    sigma2 = np.sum(fit.fun**2) / dof
    cov = np.linalg.inv(fit.jac.T @ fit.jac) * sigma2
    depth = fit.x[0] ** 2
    return depth, 2 * fit.x[0] * np.sqrt(cov[0, 0])


def test_white_light_depth_is_recovered(spec2_products, tiny_truth):
    """Injection and recovery: order-1 white-light depth within 3 sigma of the truth.

    The injected band-integrated depth is the same fit applied to the
    noiseless white light the simulator records, so limb darkening and the
    wavelength dependence of the depth are treated identically.
    """
    out, _ = spec2_products
    time, flux = [], []
    for path in sorted(out.glob("*_x1dints.fits")):
        with datamodels.open(path) as model:
            table = model.spec[0].spec_table
            time.append(table["TDB-MID"])
            flux.append(np.nansum(table["FLUX"], axis=1))
    time, flux = np.concatenate(time), np.concatenate(flux)
    params = tiny_truth["transit"]
    white = tiny_truth["order1"]["white_light"]
    true_depth, _ = _fit_depth(time, white, params["white_fit"])
    depth, sigma = _fit_depth(time, flux, params)
    assert abs(depth - true_depth) < 3 * sigma, (depth, true_depth, sigma)
    assert sigma < 0.05 * true_depth  # the test has power: the depth is measured to <5%
