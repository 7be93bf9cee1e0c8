"""Integration times: implausible ones are dropped with a message, never used silently."""

import logging

import numpy as np
import pytest
from stdatamodels.jwst import datamodels

from jwst_soss_custom import SossInputError
from jwst_soss_custom.lightcurves.orders import _rows
from jwst_soss_custom.metadata import drop_implausible_times, implausible_times, integration_times

CADENCE = 60.0 / 86400.0  # one minute, in days


def _table(n=20, start=1):
    numbers = np.arange(start, start + n)
    rows = [(k, *(60000.0 + CADENCE * (k + f) for f in (0.0, 0.5, 1.0)),
             *(60000.0008 + CADENCE * (k + f) for f in (0.0, 0.5, 1.0))) for k in numbers]
    return np.array(rows, dtype=[("integration_number", "i4"), ("int_start_MJD_UTC", "f8"),
                                 ("int_mid_MJD_UTC", "f8"), ("int_end_MJD_UTC", "f8"),
                                 ("int_start_BJD_TDB", "f8"), ("int_mid_BJD_TDB", "f8"),
                                 ("int_end_BJD_TDB", "f8")])


def test_implausible_times_are_found():
    table = _table()
    mid = table["int_mid_MJD_UTC"].copy()
    numbers = table["integration_number"]
    assert not implausible_times(numbers, mid).any()
    mid[[2, 5, 8, 11]] = [np.inf, -mid[5], mid[8] + 3 * CADENCE, np.nan]
    mid[14] = mid[13]  # a repeated stamp is half a cadence off its place
    np.testing.assert_array_equal(np.flatnonzero(implausible_times(numbers, mid)),
                                  [2, 5, 8, 11, 14])
    # Times that do not advance: none can be used.
    assert implausible_times(numbers, mid[::-1]).all()
    # Too few finite times for a cadence: only the finite and positive tests.
    np.testing.assert_array_equal(implausible_times([1, 2], [60000.0, -1.0]), [False, True])


def test_drop_keeps_the_input_and_refuses_when_too_few_remain(caplog):
    table = _table()
    table["int_mid_BJD_TDB"][3] = np.inf
    with caplog.at_level(logging.WARNING):
        cleaned, dropped = drop_implausible_times(table, "seg001")
    assert dropped == [4] and "integration numbers 4" in caplog.text
    assert np.isnan(cleaned["int_start_MJD_UTC"][3]) and np.isfinite(table["int_start_MJD_UTC"][3])
    table["int_mid_MJD_UTC"][:12] = np.nan
    with pytest.raises(SossInputError, match=r"12 of 20 INT_TIMES rows have no plausible"):
        drop_implausible_times(table, "seg001")


def test_a_cube_with_rows_missing_from_its_table(caplog):
    model = datamodels.CubeModel((4, 2, 2))
    model.meta.exposure.integration_start = 1
    model.meta.filename = "seg001_rateints.fits"
    model.int_times = _table(n=3)  # no row for integration 4
    model.int_times["int_mid_MJD_UTC"][1] = -1.0
    with caplog.at_level(logging.WARNING):
        times = integration_times(model)
    assert "no row for integration(s) 4" in caplog.text
    assert "Integration(s) 2 of seg001_rateints.fits have implausible times" in caplog.text
    assert np.isnan(times["MJD-AVG"][[1, 3]]).all() and np.isfinite(times["MJD-AVG"][[0, 2]]).all()


def test_light_curves_need_two_plausible_times():
    numbers = np.arange(1, 6)
    mid = 60000.0 + CADENCE * numbers
    keep = _rows(numbers, mid, mid.copy())
    np.testing.assert_array_equal(keep, np.arange(5))
    with pytest.raises(SossInputError, match=r"Only 0 of 5 integration\(s\) have a plausible"):
        _rows(numbers, np.full(5, np.inf), mid)
