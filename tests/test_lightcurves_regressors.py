"""Trace-stability regressors carried through stitching into the products; diagnostic plots."""

import logging

import numpy as np
import pytest
from astropy.table import Table
from stdatamodels.jwst import datamodels

from jwst_soss_custom.lightcurves import stitch_x1dints
from jwst_soss_custom.lightcurves.synthetic import synthetic_segments
from jwst_soss_custom.lightcurves.tables import make_light_curves
from jwst_soss_custom.pipeline import SossTso3Pipeline
from jwst_soss_custom.products import REGRESSORS_ATTRIBUTE

NINTS = 40
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _truth(int_num):
    """Regressor values that identify their integration."""
    int_num = np.asarray(int_num)
    return {"dx": 0.01 * int_num, "dy": np.sin(int_num), "dwidth": -0.001 * int_num}


def _with_regressors(models):
    for model in models:
        ints = np.asarray(model.spec[0].spec_table["INT_NUM"])
        values = np.zeros(
            ints.size, [("int_num", "i4"), ("dx", "f8"), ("dy", "f8"), ("dwidth", "f4")]
        )
        values["int_num"] = ints
        for name, column in _truth(ints).items():
            values[name] = column
        setattr(model, REGRESSORS_ATTRIBUTE, values)
    return models


def test_stitching_concatenates_regressors_in_integration_order():
    segments = _with_regressors(synthetic_segments(nints=NINTS, nsegments=4, seed=3))
    stitched = stitch_x1dints([segments[2], segments[0], segments[3], segments[1]])
    regressors = np.asarray(getattr(stitched, REGRESSORS_ATTRIBUTE))
    np.testing.assert_array_equal(regressors["int_num"], np.arange(1, NINTS + 1))
    np.testing.assert_allclose(regressors["dx"], _truth(np.arange(1, NINTS + 1))["dx"])
    curves = make_light_curves(stitched)
    for name, values in _truth(curves.whtlt["int_num"]).items():
        np.testing.assert_allclose(curves.whtlt[f"regressor_{name}"], values, rtol=1e-6)
        nbins = len(curves.speclc) // NINTS
        np.testing.assert_allclose(
            curves.speclc[f"regressor_{name}"], np.tile(values, nbins), rtol=1e-6
        )


def test_segment_without_regressors_warns_and_gives_nan(caplog):
    segments = _with_regressors(synthetic_segments(nints=NINTS, nsegments=2, seed=3))
    delattr(segments[1], REGRESSORS_ATTRIBUTE)
    with caplog.at_level(logging.WARNING, logger="jwst_soss_custom"):
        whtlt = make_light_curves(stitch_x1dints(segments), spectroscopic=False).whtlt
    assert "missing or with other fields in jw01366001001_04101_00001-seg002" in caplog.text
    assert "Trace regressors are missing for integrations 21-40" in caplog.text
    assert np.all(np.isfinite(whtlt["regressor_dx"][:20]))
    assert np.all(np.isnan(whtlt["regressor_dx"][20:]))


def test_no_regressors_no_columns():
    curves = make_light_curves(stitch_x1dints(synthetic_segments(nints=NINTS, nsegments=2)))
    assert not [n for n in curves.whtlt.colnames + curves.speclc.colnames if "regressor" in n]


@pytest.mark.parametrize("regressors", [True, False], ids=["with_regressors", "without"])
def test_pipeline_writes_products_and_plots(tmp_path, regressors):
    """Segments on disk → soss_tso3 with plots: every product readable in one call."""
    segments = synthetic_segments(nints=NINTS, nsegments=2, seed=9)
    if regressors:
        _with_regressors(segments)
    files = []
    for model in segments:
        files.append(str(tmp_path / model.meta.filename))
        model.save(files[-1])
    out = tmp_path / "out"
    SossTso3Pipeline.call(
        files[::-1],
        output_dir=str(out),
        output_file="target",
        steps={"lightcurves": {"save_plots": True, "bin_width": 40}},
    )
    whtlt = Table.read(out / "target_whtlt.ecsv")
    speclc = Table.read(out / "target_speclc.ecsv")
    precision = Table.read(out / "target_precision.ecsv")
    assert len(whtlt) == NINTS and len(precision) == 2 + sum(
        speclc.meta[f"number_of_bins_order_{o}"] for o in (1, 2)
    )
    plots = ["whtlt", "speclc_order1", "speclc_order2", "precision"]
    if regressors:
        plots.append("regressors")
        with datamodels.open(out / "target_x1dints.fits") as model:
            carried = np.asarray(getattr(model, REGRESSORS_ATTRIBUTE))
        np.testing.assert_array_equal(carried["int_num"], np.arange(1, NINTS + 1))
        np.testing.assert_allclose(whtlt["regressor_dy"], _truth(whtlt["int_num"])["dy"])
        assert "regressor_dwidth" in speclc.colnames
    written = sorted(p.name for p in out.glob("*.png"))
    assert written == sorted(f"target_{kind}.png" for kind in plots)
    for name in written:
        data = (out / name).read_bytes()
        assert data.startswith(PNG_SIGNATURE) and len(data) > 10_000  # a drawn figure, not blank
