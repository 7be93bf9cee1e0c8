"""The fast ECSV writer of the light curves writes what astropy's writer writes."""

import numpy as np
import pytest
from astropy import units as u
from astropy.table import MaskedColumn, QTable, Table

from jwst_soss_custom.ecsv import _data_values, write_ecsv
from jwst_soss_custom.lightcurves.synthetic import synthetic_segments
from jwst_soss_custom.lightcurves.tables import make_light_curves

#: Values whose printing differs between formatters: exponents, the switch
#: to scientific notation at 1e16 and 1e-4, the float64 extremes, -0.0.
FLOATS = [
    0.1, 1 / 3, -0.0, 1e16, 9999999999999998.0, 1e-4, 9.999999999999999e-05, 1e-5,
    5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, -123456.789e-30,
    np.nan, np.inf, -np.inf, 59786.8732028125, 2.0,
]  # fmt: skip


def _table(cls=Table):
    n = len(FLOATS)
    rng = np.random.default_rng(4)
    meta = {"instrument": "NIRISS", "range": [0.85, 2.83], "nested": {"a": 1}, "comments": ["x"]}
    table = cls(meta=meta)
    table["order"] = np.arange(n, dtype=np.int16)
    table["int_num"] = np.arange(n, dtype=np.int32) + 2**30
    table["big"] = np.arange(n, dtype=np.int64) * 2**52
    table["npix"] = np.arange(n, dtype=np.uint8)
    table["wave"] = np.array(FLOATS) * u.um
    table["flux"] = rng.normal(9e4, 40, n) * (u.DN / u.s)
    table["flux_norm"] = rng.normal(1, 4e-4, n)
    table["flux_norm"].description = "normalised"
    table["flux_norm"].format = ".3f"  # ECSV keeps it in the header only
    table["baseline"] = np.arange(n) % 3 == 0
    table["MJD UTC"] = 59786.87 + np.arange(n) / 1440  # a name the header quotes
    return table


def _written(table, path, writer):
    if writer == "fast":
        write_ecsv(table, path)
    else:
        table.write(path, format="ascii.ecsv", overwrite=True)
    return path.read_bytes()


def _assert_same_tables(got, expected):
    assert got.colnames == expected.colnames
    assert got.meta == expected.meta
    for name in expected.colnames:
        a, b = got[name], expected[name]
        assert type(a) is type(b)
        assert a.dtype == b.dtype, name
        assert getattr(a, "unit", None) == getattr(b, "unit", None), name
        assert a.info.description == b.info.description
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), strict=True)


@pytest.mark.parametrize("cls", [Table, QTable])
def test_fast_writer_writes_astropys_file_and_reads_back_exactly(cls, tmp_path):
    table = _table(cls)
    fast = _written(table, tmp_path / "fast.ecsv", "fast")
    assert fast == _written(table, tmp_path / "astropy.ecsv", "astropy")
    got = cls.read(tmp_path / "fast.ecsv", format="ascii.ecsv")
    _assert_same_tables(got, table)
    assert got["baseline"].dtype == bool
    assert np.signbit(got["wave"][2])  # -0.0 kept
    # The table written is not modified (formats, meta).
    assert table["flux_norm"].format == ".3f"
    assert "__serialized_columns__" not in table.meta


@pytest.mark.parametrize(
    "change",
    ["string", "masked", "float32", "2d", "empty"],
)
def test_tables_the_fast_path_cannot_print_are_written_by_astropy(change, tmp_path):
    table = _table()
    if change == "string":
        table["name"] = "WASP 39"
    elif change == "masked":
        table["flux"] = MaskedColumn(table["flux"], mask=table["baseline"])
    elif change == "float32":
        table["flux"] = table["flux"].astype(np.float32)
    elif change == "2d":
        table["flux"] = np.stack([table["flux"]] * 2, axis=1)
    else:
        table = table[:0]
    fast = _written(table, tmp_path / "fast.ecsv", "fast")
    assert fast == _written(table, tmp_path / "astropy.ecsv", "astropy")


def test_light_curve_tables_are_written_as_astropy_writes_them(tmp_path):
    curves = make_light_curves(synthetic_segments(nints=20, nsegments=1, ncols=256, seed=2)[0])
    for name in ("whtlt", "speclc", "precision"):
        table = getattr(curves, name)
        assert all(_data_values(column) is not None for column in table.itercols()), name
        fast = _written(table, tmp_path / f"fast_{name}.ecsv", "fast")
        assert fast == _written(table, tmp_path / f"astropy_{name}.ecsv", "astropy"), name
        _assert_same_tables(type(table).read(tmp_path / f"fast_{name}.ecsv"), table)
