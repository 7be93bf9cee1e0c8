"""Chunked, parallel soss_spec2 gives the result of one pass; reading in pieces is exact."""

import bottleneck as bn
import numpy as np
import pytest
from astropy.io import fits

from jwst_soss_custom.chunks import MemoryBudget, plan_chunks
from jwst_soss_custom._base.dq import FLAGS, nonzero, usable
from jwst_soss_custom import SossInputError
from jwst_soss_custom.exposure import SegmentInfo
from jwst_soss_custom.pipeline.soss_spec2 import SossSpec2Pipeline
from jwst_soss_custom.source import ExposureSource
from jwst_soss_custom.statistics import time_median


def test_source_reads_what_astropy_reads(tiny_exposure):
    """Positioned reads give FITS's values: byte order, unsigned DQ, segment joins."""
    files = tiny_exposure.segment_files
    source = ExposureSource(files)
    with fits.open(files[0]) as first, fits.open(files[1]) as second:
        n0 = first["SCI"].data.shape[0]
        start, stop = n0 - 3, n0 + 2  # across the segment boundary
        got = source.read(start, stop, rows=slice(40, 57))
        for name, ext in (("data", "SCI"), ("err", "ERR"), ("dq", "DQ")):
            expected = np.concatenate([first[ext].data[start:, 40:57], second[ext].data[:2, 40:57]])
            np.testing.assert_array_equal(got[name], expected)
            assert got[name].dtype == (np.uint32 if name == "dq" else np.float32)
    assert source.nints == tiny_exposure.config.nints
    assert [s.start for s in source.segments] == [0, n0]


@pytest.mark.parametrize("n", [1, 2, 7, 134, 135])
def test_time_median_is_bottlenecks_nanmedian(n):
    """The cache-blocked median equals bottleneck's, NaN lanes and even counts included."""
    rng = np.random.default_rng(n)
    # Values over many decades, so that a wrong middle pair or rounding shows.
    cube = (rng.normal(0, 1, (n, 5, 301)) * 10.0 ** rng.integers(-3, 6, (n, 5, 301)))
    cube = cube.astype(np.float32)
    cube[rng.random(cube.shape) < 0.01] = np.nan
    cube[:, 2, 7] = np.nan  # an all-NaN pixel
    with np.errstate(invalid="ignore"):
        expected = bn.nanmedian(cube, axis=0)
    np.testing.assert_array_equal(time_median(cube), expected)


def test_blocked_usable_and_nonzero_match_the_plain_forms():
    """Frame-blocked `usable` and flat-index `nonzero` give numpy's answers."""
    rng = np.random.default_rng(3)
    data = rng.normal(size=(9, 256, 2048)).astype(np.float32)
    data[rng.random(data.shape) < 0.001] = np.nan
    flags = [0, FLAGS["DO_NOT_USE"], FLAGS["FLUX_ESTIMATED"], FLAGS["REFERENCE_PIXEL"],
             FLAGS["DO_NOT_USE"] | FLAGS["FLUX_ESTIMATED"], FLAGS["JUMP_DET"]]
    dq = rng.choice(np.array(flags, np.uint32), size=data.shape, p=[0.9] + [0.02] * 5)
    ok = usable(data, dq)
    masked = dq & np.uint32(FLAGS["DO_NOT_USE"] | FLAGS["FLUX_ESTIMATED"] | FLAGS["REFERENCE_PIXEL"])
    plain = np.isin(masked, [0, FLAGS["FLUX_ESTIMATED"],
                             FLAGS["DO_NOT_USE"] | FLAGS["FLUX_ESTIMATED"]])
    np.testing.assert_array_equal(ok, plain & np.isfinite(data))
    np.testing.assert_array_equal(usable(data, dq[0]), plain[0] & np.isfinite(data))
    for got, expected in zip(nonzero(~ok), np.nonzero(~ok), strict=True):
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("method", ["scale-achromatic", "project"])
def test_one_pass_and_chunks_give_the_same_products(tiny_asn, method):
    """The exposure in 4 chunks over 2 processes, or whole in one: same spectra.

    The exposure statistics are computed once from all integrations and every
    chunk is read with its neighbours for the running medians, so nothing
    depends on the chunking; regressors agree to float64 rounding (BLAS
    blocking changes with the chunk size). With the 1/f method ``project``
    too: its projection is built once for the exposure, and its filter along
    the columns works on each integration alone.
    """
    steps = {"oneoverf": {"method": method}}
    whole = SossSpec2Pipeline.call(tiny_asn, memory_limit=20.0, processes=1, steps=steps)
    chunked = SossSpec2Pipeline.call(tiny_asn, memory_limit=1.0, processes=2, steps=steps)
    assert len(whole) == len(chunked) == 2
    for a, b in zip(whole, chunked, strict=True):
        assert a.meta.filename == b.meta.filename
        for spec_a, spec_b in zip(a.spec, b.spec, strict=True):
            for column in ("FLUX", "FLUX_ERROR", "DQ", "WAVELENGTH", "INT_NUM"):
                np.testing.assert_array_equal(spec_a.spec_table[column], spec_b.spec_table[column])
        for key in ("dx", "dy", "dwidth"):
            np.testing.assert_allclose(a.soss_regressors[key], b.soss_regressors[key],
                                       rtol=0, atol=1e-12)
        assert a.soss_badpix.instance == b.soss_badpix.instance


def _segments(*sizes):
    edges = np.cumsum([0, *sizes])
    return [SegmentInfo(None, a, b) for a, b in zip(edges[:-1], edges[1:])]


def test_chunks_split_segments_evenly_and_never_span_two():
    chunks = plan_chunks(_segments(135, 135, 10), size=54, halo=2)
    assert chunks[0] == (0, 45) and chunks[2] == (90, 135)
    assert all(b - a <= 50 for a, b in chunks)
    assert (270, 280) in chunks
    covered = np.concatenate([np.arange(a, b) for a, b in chunks])
    np.testing.assert_array_equal(covered, np.arange(280))


def test_memory_budget_sizes_and_refusal():
    budget = MemoryBudget(3.0, 537, (256, 2048), processes=2)
    # (3 - 0.6 - 0.2) GB / 2 processes / ~10.5 MB per integration
    assert 100 <= budget.chunk_integrations <= 110
    assert budget.band_rows >= 1
    with pytest.raises(SossInputError, match="memory_limit=0.7 GB is too small"):
        MemoryBudget(0.7, 8000, (256, 2048), processes=2)


def test_width_optimisation_needs_the_whole_series_in_one_chunk(tiny_asn):
    """box_mode='optimize' ranks widths on the whole time series: refused when it won't fit."""
    with pytest.raises(SossInputError, match="memory_limit of 0.9 GB or more"):
        SossSpec2Pipeline.call(tiny_asn, memory_limit=0.75, processes=1,
                               steps={"extract": {"box_mode": "optimize"}})


def test_simulator_can_leave_out_the_variances(tmp_path):
    """Long benchmark exposures are written without VAR_*; the reduction never reads them."""
    from jwst_soss_custom.datasets import simulate

    result = simulate(tmp_path, preset="tiny", seed=1, nints=6, nsegments=1,
                      write_variances=False)
    with fits.open(result.segment_files[0]) as hdul:
        names = {hdu.name for hdu in hdul}
    assert {"SCI", "ERR", "DQ"} <= names and not names & {"VAR_POISSON", "VAR_RNOISE"}
    data = ExposureSource(result.segment_files).read(0, 6)["data"]
    assert data.shape == (6, 256, 2048) and np.isfinite(data).mean() > 0.99


def test_too_many_empty_integrations_are_refused_before_any_product(tiny_exposure, tmp_path):
    """Segments are written as they finish: a bad exposure must stop the run before any is."""
    import shutil

    files = [shutil.copy(p, tmp_path) for p in tiny_exposure.segment_files]
    with fits.open(files[1], mode="update") as hdul:
        hdul["SCI"].data[:] = np.nan  # the whole second segment, with one more of the first
    with fits.open(files[0], mode="update") as hdul:
        hdul["SCI"].data[0] = np.nan
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(SossInputError, match=r"16 of 30 integration\(s\) have no usable pixel"):
        SossSpec2Pipeline.call(files, output_dir=str(out), save_results=True)
    assert not list(out.iterdir())
