"""Input checks: wrong exposures and inconsistent segments get clear errors."""

import numpy as np
import pytest
from stdatamodels.jwst import datamodels

from jwst_soss_custom import SossInputError

from jwst_soss_custom.exposure import check_integrations, check_soss_model

from jwst_soss_custom.metadata import integration_times

from jwst_soss_custom.source import load_exposure


def _segment(start, nint, segment=1, nints=None, **meta):
    model = datamodels.CubeModel((nint, 256, 2048))
    model.data[:] = 1.0
    model.meta.exposure.type = meta.get("exp_type", "NIS_SOSS")
    model.meta.subarray.name = meta.get("subarray", "SUBSTRIP256")
    model.meta.instrument.name = "NIRISS"
    model.meta.instrument.pupil_position = meta.get("pwcpos", 245.79)
    model.meta.exposure.nints = nints or 100
    model.meta.exposure.ngroups = 9
    model.meta.exposure.segment_number = segment
    model.meta.exposure.integration_start = start
    model.meta.exposure.integration_end = start + nint - 1
    table = np.zeros(
        nint,
        dtype=[("integration_number", "i4")]
        + [(f"int_{a}_{b}", "f8") for b in ("MJD_UTC", "BJD_TDB") for a in ("start", "mid", "end")],
    )
    table["integration_number"] = np.arange(start, start + nint)
    table["int_mid_MJD_UTC"] = 60000 + table["integration_number"] / 1000
    table["int_mid_BJD_TDB"] = table["int_mid_MJD_UTC"] + 0.0008
    model.int_times = table
    model.meta.filename = f"jw01366001001_04101_00001-seg{segment:03d}_nis_rateints.fits"
    return model


@pytest.mark.parametrize(
    ("meta", "message"),
    [
        ({"exp_type": "NIS_WFSS"}, "NIS_SOSS"),
        ({"subarray": "FULL"}, "only SUBSTRIP256 and SUBSTRIP96"),
        ({"subarray": "SUBSTRIP96"}, r"does not match SUBSTRIP96 \(96, 2048\)"),
        ({"pwcpos": None}, "PWCPOS.*missing"),
        ({"pwcpos": 247.0}, "outside the range"),
    ],
)
def test_unsupported_exposures_are_refused(meta, message):
    with pytest.raises(SossInputError, match=message):
        check_soss_model(_segment(1, 2, **meta))


def test_segments_are_sorted_and_stacked(tmp_path):
    paths = []
    for seg, start in ((2, 4), (1, 1), (3, 7)):
        model = _segment(start, 3, seg)
        model.data[:] = seg
        path = tmp_path / model.meta.filename
        model.save(path)
        paths.append(str(path))
    stacked, rows = load_exposure(paths)
    assert stacked.data.shape == (9, 256, 2048) and stacked.data.dtype == np.float32
    np.testing.assert_array_equal(stacked.data[:, 0, 0], [1, 1, 1, 2, 2, 2, 3, 3, 3])
    assert [r.segment_number for r in rows] == [1, 2, 3]
    assert (rows[1].start, rows[1].stop) == (3, 6)
    times = integration_times(stacked)
    np.testing.assert_array_equal(times["INT_NUM"], np.arange(1, 10))
    np.testing.assert_allclose(times["MJD-AVG"], 60000 + np.arange(1, 10) / 1000)


@pytest.mark.parametrize(
    ("second_start", "message"), [(3, "overlap"), (6, "gap")]
)
def test_overlapping_or_missing_segments_are_refused(second_start, message):
    with pytest.raises(SossInputError, match=message):
        load_exposure([_segment(1, 3, 1), _segment(second_start, 3, 2)])


def test_segments_of_different_exposures_are_refused():
    with pytest.raises(SossInputError, match="NINTS is 50 in .*seg002.* but 100 in .*seg001"):
        load_exposure([_segment(1, 3, 1), _segment(4, 3, 2, nints=50)])


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("target.catalog_name", "WASP-96"),
        ("observation.program_number", "02734"),
        ("observation.observation_number", "002"),
        ("observation.visit_number", "002"),
        ("observation.exposure_number", "2"),
        ("instrument.filter", "F277W"),
        ("exposure.readpatt", "NIS"),
    ],
)
def test_segments_that_differ_in_identity_are_refused_by_keyword(path, value):
    """A segment of another target, programme, visit or setup names what differs."""
    from jwst_soss_custom.exposure import SEGMENT_IDENTITY

    keyword = dict((p, k) for k, p in SEGMENT_IDENTITY)[path]
    first, second = _segment(1, 3, 1), _segment(4, 3, 2)
    for model in (first, second):
        model.meta.target.catalog_name = "WASP-39"
        model.meta.observation.program_number = "01366"
        model.meta.observation.observation_number = "001"
        model.meta.observation.visit_number = "001"
        model.meta.observation.exposure_number = "1"
        model.meta.instrument.filter = "CLEAR"
        model.meta.exposure.readpatt = "NISRAPID"
    load_exposure([first, second])  # one exposure: accepted
    node, name = path.rsplit(".", 1)
    target = second.meta
    for part in node.split("."):
        target = getattr(target, part)
    setattr(target, name, value)
    with pytest.raises(SossInputError, match=f"{keyword} is .* in .*seg002.*seg001"):
        load_exposure([first, second])


def test_all_nan_integrations_are_flagged_until_too_few_remain(caplog):
    model = _segment(1, 4)
    model.data[1] = np.nan
    empty = check_integrations(model)
    np.testing.assert_array_equal(empty, [False, True, False, False])
    assert "integration numbers 2" in caplog.text and "flagged DO_NOT_USE" in caplog.text
    model.data[2] = np.nan
    model.data[3] = np.nan  # 1 of 4 left: no baseline
    with pytest.raises(SossInputError, match=r"3 of 4 integration\(s\) .* only 1 hold data"):
        check_integrations(model)


def test_an_integration_saturated_beyond_use_is_flagged(caplog):
    from jwst_soss_custom._base.dq import FLAGS

    model = _segment(1, 4)
    # Ramp fitting leaves finite values with every pixel flagged.
    model.dq[2] = FLAGS["DO_NOT_USE"] | FLAGS["SATURATED"]
    np.testing.assert_array_equal(check_integrations(model), [False, False, True, False])
    assert "integration numbers 3" in caplog.text and "saturated beyond use" in caplog.text


def test_missing_input_file(tmp_path):
    with pytest.raises(SossInputError, match="does not exist"):
        load_exposure(str(tmp_path / "nope_rateints.fits"))


@pytest.mark.parametrize(("key", "value"), [("PWCPOS", "abc"), ("PWCPOS", "245.76"),
                                            ("NGROUPS", "nine")])
def test_a_header_number_written_as_text_is_refused(tmp_path, key, value):
    """stdatamodels only warns and keeps the ASDF copy: the user's header would not count."""
    from astropy.io import fits

    model = _segment(1, 3)
    path = tmp_path / model.meta.filename
    model.save(path)
    with fits.open(path, mode="update") as hdul:
        hdul[0].header[key] = value
    with pytest.raises(SossInputError, match=f"{key}='{value}' in the primary header is not a"):
        load_exposure(str(path))
