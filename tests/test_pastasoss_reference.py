"""The PASTASOSS reference written from the pastasoss package, and clean_flicker_noise settings."""

from pathlib import Path

import numpy as np
import pytest
from jwst.extract_1d.soss_extract import pastasoss as jwst_pastasoss
from pastasoss.soss_traces import get_soss_traces
from stdatamodels.jwst.datamodels import PastasossModel

from jwst_soss_custom.datasets import crds_refs


@pytest.fixture(scope="module")
def refmodel(tmp_path_factory):
    path = crds_refs.write_pastasoss_reference(tmp_path_factory.mktemp("pastasoss") / "p.asdf")
    with PastasossModel(str(path)) as model:
        yield model


@pytest.mark.parametrize("pwcpos", [245.6, 245.79, 245.9])
@pytest.mark.parametrize("order", [1, 2])
def test_jwst_reproduces_pastasoss_traces(refmodel, pwcpos, order):
    _, x, y, wave = jwst_pastasoss.get_soss_traces(pwcpos, order, refmodel=refmodel)
    expected = get_soss_traces(pwcpos, str(order))
    assert x.size > 1500
    np.testing.assert_array_equal(x, expected.x)
    assert np.max(np.abs(y - expected.y)) < 0.01  # pixels
    # 0.01 pixel of dispersion (about 1 nm per pixel), in micron.
    assert np.max(np.abs(wave - expected.wavelength)) < 1e-5


def test_reference_meta_and_wavemaps(refmodel):
    assert refmodel.meta.reftype == "PASTASOSS"
    assert refmodel.meta.pwcpos_bounds[0] < 245.6 and refmodel.meta.pwcpos_bounds[1] > 245.9
    assert [t.spectral_order for t in refmodel.traces] == [1, 2]
    assert [t.spectral_order for t in refmodel.throughputs] == [1, 2]
    wavemaps = jwst_pastasoss.get_soss_wavemaps(245.79, refmodel=refmodel, orders_requested=[1])
    assert wavemaps.shape == (1, 256, 2048)
    assert 0.8 < np.nanmin(wavemaps) and np.nanmax(wavemaps) < 2.9


def _references(folder):
    return {k: folder / f"x_{k}.fits" for k in crds_refs.REFERENCE_TYPES}


def test_detector1_overrides_clean_flicker_noise_only_on_request(tmp_path):
    refs = _references(tmp_path)
    assert "clean_flicker_noise" not in crds_refs.detector1_overrides(refs)
    cfn = crds_refs.detector1_overrides(refs, clean_flicker_noise=True)["clean_flicker_noise"]
    assert cfn == {"skip": False, "background_method": "median_image",
                   "mask_science_regions": True,
                   "override_pastasoss": str(tmp_path / crds_refs.PASTASOSS_FILE),
                   "override_flat": "N/A"}
    args = crds_refs.strun_arguments({**refs, "pastasoss": "p.asdf"}, clean_flicker_noise=True)
    assert "--steps.clean_flicker_noise.override_pastasoss=p.asdf" in args


# stpipe's CRDS lookup uses a lock function that CRDS has deprecated.
@pytest.mark.filterwarnings("ignore:'get_cache_lock' is deprecated:DeprecationWarning")
def test_offline_cache_answers_the_nested_steps(tmp_path):
    """The draft ramp fit, background and white light inside clean_flicker_noise take no override."""
    from stpipe import crds_client

    gain = tmp_path / "x_gain.fits"
    gain.write_bytes(b"")
    cache = crds_refs.write_offline_crds_cache(tmp_path / "cache", {"gain": gain, "bkg": "N/A"})
    params = {"meta.instrument.name": "NIRISS", "meta.instrument.detector": "NIS",
              "meta.exposure.type": "NIS_SOSS", "meta.observation.date": "2022-07-10",
              "meta.observation.time": "00:00:00"}
    with crds_refs.offline_crds(cache):
        found = crds_client.get_multiple_reference_paths(params, ["gain", "bkg"], "jwst")
        assert Path(found["gain"]).resolve() == gain.resolve()
        assert found["bkg"] == "N/A"
        with pytest.raises(Exception, match="Unknown reference type 'flat'"):
            crds_client.get_multiple_reference_paths(params, ["flat"], "jwst")
