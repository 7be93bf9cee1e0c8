"""Stitching x1dints segments: order, gaps, duplicates and mismatches."""

import gc
import logging

import numpy as np
import pytest
from stdatamodels.exceptions import ValidationWarning
from stdatamodels.jwst import datamodels

from jwst_soss_custom import SossInputError
from jwst_soss_custom.lightcurves import stitch_x1dints
from jwst_soss_custom.lightcurves.synthetic import synthetic_segments
from jwst_soss_custom.products import REGRESSORS_ATTRIBUTE

NINTS = 40


@pytest.fixture(scope="module")
def segments():
    """Four segments of ten integrations (kept pristine: tests use copies)."""
    return synthetic_segments(nints=NINTS, nsegments=4, seed=5)


@pytest.fixture
def fresh(segments):
    return [m.copy() for m in segments]


def _int_num(model, order_index=0):
    return np.asarray(model.spec[order_index].spec_table["INT_NUM"])


def test_shuffled_segments_are_put_in_integration_order(fresh):
    before = [_int_num(m).copy() for m in fresh]
    flux_before = np.array(fresh[2].spec[0].spec_table["FLUX"])
    shuffled = [fresh[2], fresh[0], fresh[3], fresh[1]]
    stitched = stitch_x1dints(shuffled)

    assert [int(s.spectral_order) for s in stitched.spec] == [1, 2]
    for spec in stitched.spec:
        table = spec.spec_table
        np.testing.assert_array_equal(table["INT_NUM"], np.arange(1, NINTS + 1))
        np.testing.assert_array_equal(table["SEGMENT"], np.repeat([1, 2, 3, 4], 10))
        assert np.all(np.diff(table["MJD-AVG"]) > 0)
        assert table.columns["FLUX"].unit == "DN/s"
        assert table.columns["WAVELENGTH"].unit == "um"
    np.testing.assert_array_equal(stitched.spec[0].spec_table["FLUX"][20:30], flux_before)
    np.testing.assert_array_equal(stitched.int_times["integration_number"], np.arange(1, 41))
    assert stitched.meta.exposure.integration_start == 1
    assert stitched.meta.exposure.integration_end == NINTS
    assert stitched.meta.exposure.type == "NIS_SOSS"
    # Inputs are untouched.
    for model, ints in zip(fresh, before, strict=True):
        np.testing.assert_array_equal(_int_num(model), ints)


def test_consume_gives_the_same_product_and_empties_the_list(segments, tmp_path):
    """consume=True (soss_tso3, which owns its inputs): the list emptied, the same product."""
    from jwst_soss_custom.lightcurves.stitching import detach_x1dints

    kept = stitch_x1dints([m.copy() for m in segments])
    # As soss_tso3 reads them: from files, detached, the files closed.
    given = []
    for model in segments:
        model.save(tmp_path / model.meta.filename)
        with datamodels.open(tmp_path / model.meta.filename) as opened:
            given.append(detach_x1dints(opened))
    consumed = stitch_x1dints(given, consume=True)
    assert given == []
    for a, b in zip(kept.spec, consumed.spec, strict=True):
        assert a.spectral_order == b.spectral_order
        for name in a.spec_table.columns.names:
            np.testing.assert_array_equal(a.spec_table[name], b.spec_table[name], err_msg=name)
            assert a.spec_table.columns[name].unit == b.spec_table.columns[name].unit
    np.testing.assert_array_equal(kept.int_times, consumed.int_times)
    assert consumed.meta.filename == kept.meta.filename
    assert consumed.meta.exposure.integration_end == NINTS


def test_missing_segment_warns_and_leaves_a_gap(fresh, caplog):
    with caplog.at_level(logging.WARNING, logger="jwst_soss_custom"):
        stitched = stitch_x1dints([fresh[0], fresh[1], fresh[3]])
    assert "Integrations 21-30 of 40 are missing" in caplog.text
    assert "Segment(s) 3 are missing" in caplog.text
    assert "without padding" in caplog.text
    ints = _int_num(stitched)
    np.testing.assert_array_equal(ints, np.r_[1:21, 31:41])


def test_missing_last_segment_is_found_from_nints(fresh, caplog):
    with caplog.at_level(logging.WARNING, logger="jwst_soss_custom"):
        stitch_x1dints(fresh[:3])
    assert "Integrations 31-40 of 40 are missing" in caplog.text
    assert "after 3 may be missing" in caplog.text


def test_complete_exposure_does_not_warn(fresh, caplog):
    with caplog.at_level(logging.WARNING, logger="jwst_soss_custom"):
        stitch_x1dints(fresh)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_duplicated_segment_raises(fresh, segments):
    twice = segments[1].copy()
    with pytest.raises(SossInputError, match=r"integrations 11-20 appear more than once") as err:
        stitch_x1dints([fresh[0], fresh[1], twice, fresh[2]])
    message = str(err.value)
    assert "duplicated (the same segment given twice?)" in message
    assert "seg002_nis_x1dints.fits (integrations 11-20)" in message
    assert "exactly once" in message


def test_overlapping_segments_raise(fresh):
    # Segment 3 claims integrations 16-25: overlaps segment 2 (11-20).
    for spec in fresh[2].spec:
        spec.spec_table["INT_NUM"] = spec.spec_table["INT_NUM"] - 5
    with pytest.raises(SossInputError, match="overlapping") as err:
        stitch_x1dints(fresh)
    assert "integrations 16-20 appear more than once" in str(err.value)
    assert "seg003" in str(err.value) and "seg002" in str(err.value)


def test_mismatched_wavelength_grid_raises(fresh):
    fresh[1].spec[0].spec_table["WAVELENGTH"] = fresh[1].spec[0].spec_table["WAVELENGTH"] + 0.01
    with pytest.raises(SossInputError, match="wavelength grids do not match") as err:
        stitch_x1dints(fresh)
    message = str(err.value)
    assert "seg002" in message and "seg001" in message and "order 1" in message
    assert "wave_tolerance" in message
    # Within the tolerance it is accepted.
    stitch_x1dints(fresh, wave_tolerance=0.02)


def test_wavelength_grid_with_different_nan_columns_raises(fresh):
    wave = np.array(fresh[3].spec[1].spec_table["WAVELENGTH"])
    wave[:, 100] = np.nan
    fresh[3].spec[1].spec_table["WAVELENGTH"] = wave
    with pytest.raises(SossInputError, match="columns with a wavelength differ"):
        stitch_x1dints(fresh)


def test_mismatched_orders_raise(fresh):
    only_order1 = datamodels.TSOMultiSpecModel()
    only_order1.update(fresh[1])
    only_order1.spec.append(fresh[1].spec[0])
    with pytest.raises(SossInputError, match=r"spectral orders \[1\] but .* has \[1, 2\]"):
        stitch_x1dints([fresh[0], only_order1, fresh[2]], names=["a.fits", "b.fits", "c.fits"])


def test_mismatched_number_of_columns_raises():
    short = synthetic_segments(nints=NINTS, nsegments=4, ncols=1024)
    full = synthetic_segments(nints=NINTS, nsegments=4, ncols=2048)
    with pytest.raises(SossInputError, match="1024 columns but .* has 2048"):
        stitch_x1dints([full[0], short[1]])


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [("observation", "visit_number", "002"), ("target", "catalog_name", "WASP-96")],
)
def test_segments_of_different_exposures_raise(fresh, section, key, value):
    setattr(getattr(fresh[1].meta, section), key, value)
    with pytest.raises(SossInputError, match=f"not segments of one exposure: meta.{section}.{key}"):
        stitch_x1dints(fresh)


def test_not_an_x1dints_raises():
    with pytest.raises(SossInputError, match="expected an x1dints product"):
        stitch_x1dints([datamodels.CubeModel((2, 2, 2))])


def test_several_spectra_per_order_in_one_model(fresh):
    """calwebb_tso3 style: one model, spectra of all segments appended."""
    combined = datamodels.TSOMultiSpecModel()
    combined.update(fresh[0])
    for model in (fresh[1], fresh[0], fresh[3], fresh[2]):
        combined.spec.extend(model.spec)
    stitched = stitch_x1dints([combined])
    assert len(stitched.spec) == 2
    np.testing.assert_array_equal(_int_num(stitched, 1), np.arange(1, NINTS + 1))


def _flat_meta(model):
    """Metadata as a flat dict, without what stitching or saving sets itself."""
    changed = ("integration_start", "integration_end", "segment_number", "filename", "date")
    return {
        key: value
        for key, value in model.to_flat_dict().items()
        if key.startswith("meta.") and key.rsplit(".", 1)[-1] not in changed
    }


def test_saved_product_holds_the_segments_content_exactly(segments, tmp_path):
    """Every value, dtype and unit of the saved product is the segments'.

    Stitching builds the model without validating each assignment (for
    speed); this pins what it writes: tables, INT_TIMES, regressors and
    metadata, from segments read back from disk as soss_tso3 reads them.
    """
    paths = []
    for model in segments:
        model = model.copy()
        ints = np.asarray(model.spec[0].spec_table["INT_NUM"])
        regressors = np.zeros(ints.size, [("int_num", "i4"), ("dx", "f8"), ("dy", "f4")])
        regressors["int_num"], regressors["dx"], regressors["dy"] = ints, 0.01 * ints, -ints
        setattr(model, REGRESSORS_ATTRIBUTE, regressors)
        model.meta.cal_step.soss_extract = "COMPLETE"
        model.soss_traces = {"order1": {"y": np.linspace(0, 1, 7) + ints[0], "rms": 0.1}}
        paths.append(tmp_path / model.meta.filename)
        model.save(paths[-1])
    inputs = [datamodels.open(path) for path in paths]
    try:
        stitched = stitch_x1dints(inputs[::-1])
    finally:
        for model in inputs:
            model.close()
    # Saved after the inputs are closed and gone, as in soss_tso3: nothing
    # may still refer to their files (such as arrays not read yet).
    del inputs, model
    gc.collect()
    stitched.save(tmp_path / "stitched_x1dints.fits")
    inputs = [datamodels.open(path) for path in paths]
    try:
        with datamodels.open(tmp_path / "stitched_x1dints.fits") as saved:
            np.testing.assert_array_equal(
                saved.soss_traces.order1.y, inputs[0].soss_traces.order1.y, strict=True
            )
            assert saved.soss_traces.order1.rms == 0.1
            assert _flat_meta(saved) == _flat_meta(inputs[0])
            assert saved.meta.cal_step.soss_extract == "COMPLETE"
            assert saved.meta.exposure.integration_start == 1
            assert saved.meta.exposure.integration_end == NINTS
            assert saved.meta.exposure.segment_number is None
            assert len(saved.spec) == len(inputs[0].spec) == 2
            for index, spec in enumerate(saved.spec):
                first = inputs[0].spec[index]
                expected = np.concatenate([np.asarray(m.spec[index].spec_table) for m in inputs])
                table = np.asarray(spec.spec_table)
                assert table.dtype == expected.dtype
                for name in expected.dtype.names:
                    np.testing.assert_array_equal(table[name], expected[name], strict=True)
                    assert spec.spec_table.columns[name].unit == first.spec_table.columns[name].unit
                for key, value in first.instance.items():
                    if key == "meta":  # the spectrum's own date is when it was made
                        value = {k: v for k, v in value.items() if k != "date"}
                        assert {k: v for k, v in spec.instance[key].items() if k != "date"} == value
                    elif key != "spec_table":
                        assert spec.instance[key] == value
            for name in ("int_times", REGRESSORS_ATTRIBUTE):
                expected = np.concatenate([np.asarray(getattr(m, name)) for m in inputs])
                table = np.asarray(getattr(saved, name))
                assert table.dtype == expected.dtype
                for field in expected.dtype.names:
                    np.testing.assert_array_equal(table[field], expected[field], strict=True)
    finally:
        for model in inputs:
            model.close()
    # The model returned validates assignments, as a new model does.
    with pytest.warns(ValidationWarning):
        stitched.meta.exposure.nints = "many"
