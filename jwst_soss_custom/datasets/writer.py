"""Write simulated segments as Detector1 ``rateints`` files, and the truth.

Each segment is a stdatamodels `CubeModel` with the arrays, ``int_times``
table and metadata that Detector1 leaves in a SOSS TSO ``rateints`` product,
so every downstream tool (jwst Spec2, this package, third-party notebooks)
reads it like real data.
"""

import logging
from importlib.metadata import version
from pathlib import Path

import asdf
import numpy as np
from astropy.time import Time
from stdatamodels.jwst import datamodels

from jwst_soss_custom._base.atomic import atomic_path
from jwst_soss_custom._base.geometry import NX
from jwst_soss_custom.datasets.transit import TARGET_DEC, TARGET_RA

log = logging.getLogger(__name__)

__all__ = ["segment_filename", "build_segment", "save_atomic", "write_truth", "load_truth"]

#: Steps of calwebb_detector1 for NIRISS SOSS and the status each leaves.
DETECTOR1_CAL_STEPS = {
    "group_scale": "SKIPPED",
    "dq_init": "COMPLETE",
    "saturation": "COMPLETE",
    "ipc": "SKIPPED",
    "superbias": "COMPLETE",
    "refpix": "COMPLETE",
    "linearity": "COMPLETE",
    "persistence": "COMPLETE",
    "dark_sub": "COMPLETE",
    "charge_migration": "COMPLETE",
    "jump": "COMPLETE",
    "clean_flicker_noise": "SKIPPED",
    "ramp_fit": "COMPLETE",
    "gain_scale": "SKIPPED",
}

_INT_TIMES_DTYPE = [
    ("integration_number", ">i4"),
    ("int_start_MJD_UTC", ">f8"),
    ("int_mid_MJD_UTC", ">f8"),
    ("int_end_MJD_UTC", ">f8"),
    ("int_start_BJD_TDB", ">f8"),
    ("int_mid_BJD_TDB", ">f8"),
    ("int_end_BJD_TDB", ">f8"),
]


def segment_filename(config, segment_number, product="rateints"):
    """Official-style file name, e.g. ``jw01366001001_04101_00001-seg001_nis_rateints.fits``."""
    return f"{config.root}-seg{segment_number:03d}_nis_{product}.fits"


def _int_times_table(times, rows):
    table = np.zeros(len(range(*rows.indices(len(times["integration_number"])))),
                     dtype=_INT_TIMES_DTYPE)
    for name, _ in _INT_TIMES_DTYPE:
        table[name] = times[name][rows]
    return table


def build_segment(config, arrays, times, segment_number, segment_total, first, last,
                  product="rateints"):
    """Assemble one ``rateints`` (or raw ``uncal``) segment.

    Parameters
    ----------
    config : SimConfig
    arrays : dict
        ``data``, ``err``, ``var_poisson``, ``var_rnoise`` (float32) and
        ``dq`` (uint32), each (nints_segment, 256, 2048).
    times : dict
        Output of `jwst_soss_custom.datasets.transit.integration_times` for
        the whole exposure.
    segment_number, segment_total : int
        1-based segment index and number of segments.
    first, last : int
        1-based, inclusive integration range of the segment.
    product : str
        ``"rateints"`` (a `CubeModel`, as Detector1 leaves it) or ``"uncal"``
        (a `Level1bModel` of raw uint16 reads, ``arrays["data"]`` only, as
        the archive delivers it).

    Returns
    -------
    `~stdatamodels.jwst.datamodels.CubeModel` or `~stdatamodels.jwst.datamodels.Level1bModel`
    """
    if product == "uncal":
        model = datamodels.Level1bModel(data=arrays["data"])
    else:
        model = datamodels.CubeModel()
        keys = ("data", "err", "dq") + (
            ("var_poisson", "var_rnoise") if config.write_variances else ()
        )
        for key in keys:
            setattr(model, key, arrays[key])
    model.int_times = _int_times_table(times, slice(first - 1, last))
    _fill_meta(model.meta, config, times, segment_number, segment_total, first, last)
    if product == "uncal":
        model.meta.bunit_data = "DN"
        model.meta.bunit_err = None
        for step in DETECTOR1_CAL_STEPS:
            setattr(model.meta.cal_step, step, None)
    model.meta.filename = segment_filename(config, segment_number, product)
    return model


def _fill_meta(meta, config, times, segment_number, segment_total, first, last):
    start = Time(times["int_start_MJD_UTC"][0], format="mjd", scale="utc")
    end = Time(times["int_end_MJD_UTC"][-1], format="mjd", scale="utc")
    _fill_observation(meta, config, start, end)
    _fill_exposure(meta.exposure, config, times, start, end)
    meta.exposure.segment_number = segment_number
    meta.exposure.segment_total = segment_total
    meta.exposure.integration_start = first
    meta.exposure.integration_end = last
    for step, status in DETECTOR1_CAL_STEPS.items():
        setattr(meta.cal_step, step, status)


def _fill_observation(meta, config, start, end):
    """Who, what and where: program, visit, target, instrument and subarray."""
    meta.telescope = "JWST"
    meta.origin = "jwst_soss_custom simulator"
    meta.calibration_software_version = version("jwst")
    meta.bunit_data = "DN/s"
    meta.bunit_err = "DN/s"

    obs = meta.observation
    obs.program_number = config.program
    obs.observation_number = config.observation
    obs.visit_number = config.visit
    obs.visit_group = "04"
    obs.sequence_id = "1"
    obs.activity_id = "01"
    obs.exposure_number = "00001"
    obs.visit_id = f"{config.program}{config.observation}{config.visit}"
    obs.obs_id = f"V{config.program}{config.observation}{config.visit}P0000000004101"
    obs.date = start.isot.split("T")[0]
    obs.time = start.isot.split("T")[1]
    obs.date_beg = start.isot
    obs.date_end = end.isot

    meta.program.title = "Simulated NIRISS/SOSS transit of WASP-39b"
    meta.visit.tsovisit = True
    meta.visit.type = "PRIME_TARGETED_FIXED"

    target = meta.target
    target.catalog_name = "WASP-39"
    target.proposer_name = "WASP-39"
    target.type = "FIXED"
    target.ra = TARGET_RA
    target.dec = TARGET_DEC
    target.source_type = "POINT"

    inst = meta.instrument
    inst.name = "NIRISS"
    inst.detector = "NIS"
    inst.filter = config.filter
    inst.pupil = "GR700XD"
    inst.pupil_position = float(config.pwcpos)

    meta.aperture.name = f"NIS_{config.subarray}"
    # The simulated star's velocity (stellar_rv) is already relative to the
    # observatory: no barycentric correction on top.
    meta.wcsinfo.velosys = 0.0

    sub = meta.subarray
    sub.name = config.subarray
    sub.xstart = 1
    sub.ystart = config.subarray_ystart
    sub.xsize = NX
    sub.ysize = config.ny
    sub.fastaxis = -2
    sub.slowaxis = -1


def _fill_exposure(exp, config, times, start, end):
    """The exposure's readout, timing and integration keywords (segment ones aside)."""
    mid = start + (end - start) / 2
    exp.type = "NIS_SOSS"
    exp.readpatt = "NISRAPID"
    exp.nints = config.nints
    exp.ngroups = config.ngroups
    exp.nframes = 1
    exp.groupgap = 0
    exp.nresets_at_start = 1
    exp.nresets_between_ints = 1
    exp.noutputs = 1
    exp.sample_time = 10.0
    exp.frame_time = config.frame_time
    exp.group_time = config.group_time
    exp.integration_time = config.integration_time
    exp.exposure_time = config.nints * config.integration_time
    exp.measurement_time = config.nints * config.slope_time
    exp.effective_exposure_time = config.nints * config.slope_time
    exp.duration = config.nints * config.cadence + config.frame_time
    exp.elapsed_exposure_time = (end - start).sec
    exp.start_time = start.mjd
    exp.mid_time = mid.mjd
    exp.end_time = end.mjd
    exp.start_time_mjd = start.mjd
    exp.mid_time_mjd = mid.mjd
    exp.end_time_mjd = end.mjd
    exp.start_time_tdb = float(times["int_start_BJD_TDB"][0])
    exp.end_time_tdb = float(times["int_end_BJD_TDB"][-1])
    exp.mid_time_tdb = 0.5 * (exp.start_time_tdb + exp.end_time_tdb)
    exp.gain_factor = 1.0


def save_atomic(model, path):
    """Save and close ``model``: under a temporary name first, then renamed.

    A run stopped half-way leaves no partial file under the final name
    (`~jwst_soss_custom._base.atomic.atomic_path`).

    Parameters
    ----------
    model : `~stdatamodels.DataModel`
    path : Path
        Final file name (``.fits``).

    Returns
    -------
    Path
    """
    with atomic_path(path) as temporary:
        model.save(temporary)
        model.close()
    return path


# ------------------------------------------------------------------ truth file
def _plain(value):
    """Convert a truth tree to types asdf stores (numpy scalars to Python)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return value


def write_truth(path, tree):
    """Write the truth dictionary to an ASDF file."""
    af = asdf.AsdfFile({"soss_simulation_truth": _plain(tree)})
    with atomic_path(path) as temporary:
        af.write_to(temporary)


def _load(value):
    if isinstance(value, dict):
        return {k: _load(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_load(v) for v in value]
    if hasattr(value, "__array__") and not isinstance(value, (str, bytes)):
        return np.array(value)
    return value


def load_truth(path):
    """Read a simulation's truth file.

    Parameters
    ----------
    path : str or Path
        ``<root>_truth.asdf`` written by `jwst_soss_custom.datasets.simulate`.

    Returns
    -------
    dict
        Nested dictionaries of numpy arrays and scalars (keys documented in
        ``docs/simulator.md``); fully loaded, the file is closed.
    """
    with asdf.open(path, lazy_load=False, memmap=False) as af:
        return _load(af.tree["soss_simulation_truth"])
