"""Small synthetic ``x1dints`` segments with a known transit (tests, docs, demos).

This is not a detector simulation (see `jwst_soss_custom.datasets` for
that): it makes extracted spectra directly, so Stage 3 can be exercised in
seconds. Order 1 spans 2.86-0.82 micron over all columns (wavelength falls
with column, as on the detector); order 2 spans 1.40-0.58 micron over the
first 85 % of the columns and is NaN beyond, as real order 2 leaves the
subarray.
"""

import numpy as np
from stdatamodels.jwst import datamodels

from jwst_soss_custom.products import OrderSpectra, make_x1dints

__all__ = ["segment_filename", "synthetic_segments"]

#: Layout of the INT_TIMES table of JWST products.
_INT_TIMES_DTYPE = np.dtype(
    [("integration_number", "i4")]
    + [
        (f"int_{when}_{scale}", "f8")
        for scale in ("MJD_UTC", "BJD_TDB")
        for when in ("start", "mid", "end")
    ]
)

#: Exposure root of the synthetic files (program 1366, as WASP-39b's ERS).
ROOTNAME = "jw01366001001_04101_00001"


def segment_filename(segment, rootname=ROOTNAME):
    """Official-style name of a segment's x1dints file.

    Parameters
    ----------
    segment : int
        Segment number (1-based).
    rootname : str
        Exposure root name.

    Returns
    -------
    str
        e.g. ``jw01366001001_04101_00001-seg001_nis_x1dints.fits``.
    """
    return f"{rootname}-seg{segment:03d}_nis_x1dints.fits"


def _grids(ncols):
    wave1 = np.linspace(2.86, 0.82, ncols)
    wave2 = np.full(ncols, np.nan)
    n2 = int(0.85 * ncols)
    wave2[:n2] = np.linspace(1.40, 0.58, n2)
    return {1: wave1, 2: wave2}


def transit_model(int_num, nints, depth):
    """Box transit over the middle 30 % of the integrations.

    Parameters
    ----------
    int_num : ndarray of int
        Integration numbers (1-based).
    nints : int
        Total integrations of the exposure.
    depth : float
        Fractional transit depth.

    Returns
    -------
    ndarray
        Relative flux, 1 out of transit and ``1 - depth`` in transit.
    """
    phase = (np.asarray(int_num) - 0.5) / nints
    return np.where(np.abs(phase - 0.5) < 0.15, 1.0 - depth, 1.0)


def synthetic_segments(
    nints=40,
    nsegments=4,
    ncols=2048,
    depth=0.01,
    noise=True,
    seed=1,
    rootname=ROOTNAME,
):
    """Make the x1dints segments of one synthetic SOSS exposure.

    Parameters
    ----------
    nints : int
        Integrations in the exposure.
    nsegments : int
        Number of segments the integrations are split into (nearly equal).
    ncols : int
        Columns per spectrum.
    depth : float
        Transit depth (fraction, the same at all wavelengths).
    noise : bool
        Add Gaussian noise of the given errors to the fluxes.
    seed : int
        Random seed.
    rootname : str
        Exposure root of the file names.

    Returns
    -------
    list of `~stdatamodels.jwst.datamodels.TSOMultiSpecModel`
        One model per segment with ``meta.filename`` set to the official
        style name (`segment_filename`), EXP_TYPE NIS_SOSS, filter CLEAR,
        subarray SUBSTRIP256, segment numbers, integration ranges and
        INT_TIMES.
    """
    rng = np.random.default_rng(seed)
    grids = _grids(ncols)
    all_ints = np.arange(1, nints + 1)
    dt = 60.0 / 86400.0
    models = []
    for seg, ints in enumerate(np.array_split(all_ints, nsegments), start=1):
        mid = 60000.0 + (ints - 1) * dt
        tdb = mid + 0.00075
        source = datamodels.CubeModel()
        _set_meta(source, rootname, seg, ints, nints)
        int_times = np.zeros(ints.size, dtype=_INT_TIMES_DTYPE)
        int_times["integration_number"] = ints
        for prefix, start in (("MJD_UTC", mid), ("BJD_TDB", tdb)):
            int_times[f"int_start_{prefix}"] = start - dt / 2
            int_times[f"int_mid_{prefix}"] = start
            int_times[f"int_end_{prefix}"] = start + dt / 2
        source.int_times = int_times
        times = {
            "INT_NUM": ints.astype(np.int32),
            "MJD-BEG": mid - dt / 2,
            "MJD-AVG": mid,
            "MJD-END": mid + dt / 2,
            "TDB-BEG": tdb - dt / 2,
            "TDB-MID": tdb,
            "TDB-END": tdb + dt / 2,
        }
        relative = transit_model(ints, nints, depth)[:, None]
        spectra = {}
        for order, wave in grids.items():
            # A smooth stellar-like spectrum, a few 1e3 DN/s per column.
            star = 4000.0 / order * np.exp(-0.5 * ((wave - 1.1) / 0.7) ** 2) + 200.0
            flux = np.broadcast_to(star * relative, (ints.size, ncols)).copy()
            error = np.sqrt(np.abs(flux))
            if noise:
                flux += rng.normal(size=flux.shape) * error
            spectra[order] = OrderSpectra(
                wavelength=wave,
                flux=flux,
                flux_error=error,
                dq=np.zeros(flux.shape, np.uint32),
                npixels=np.where(np.isfinite(wave), 25.0, 0.0),
            )
        model = make_x1dints(source, spectra, times, segment=seg)
        model.meta.filename = segment_filename(seg, rootname)
        source.close()
        models.append(model)
    return models


def _set_meta(model, rootname, seg, ints, nints):
    meta = model.meta
    meta.filename = segment_filename(seg, rootname)
    meta.telescope = "JWST"
    meta.instrument.name = "NIRISS"
    meta.instrument.detector = "NIS"
    meta.instrument.filter = "CLEAR"
    meta.instrument.pupil = "GR700XD"
    meta.exposure.type = "NIS_SOSS"
    meta.exposure.nints = int(nints)
    meta.exposure.segment_number = int(seg)
    meta.exposure.integration_start = int(ints[0])
    meta.exposure.integration_end = int(ints[-1])
    meta.subarray.name = "SUBSTRIP256"
    meta.target.catalog_name = "WASP-39"
    meta.observation.program_number = rootname[2:7]
    meta.observation.observation_number = rootname[7:10]
    meta.observation.visit_number = rootname[10:13]
    meta.observation.exposure_number = rootname[-5:]
