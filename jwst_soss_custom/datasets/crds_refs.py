"""CRDS-format reference files of the simulated detector, and offline CRDS settings.

`write_references` writes one file per reference type that the official
``calwebb_detector1`` needs for NIRISS SOSS (``mask``, ``saturation``,
``superbias``, ``linearity``, ``dark``, ``gain``, ``readnoise``), each a
stdatamodels reference model with its ``REFTYPE`` and the subarray it
covers, so it can be given as ``override_<reftype>``.

The official steps record the CRDS context they used when they finish, which
needs a CRDS configuration even when every reference is overridden. Offline,
CRDS reads it from a cache: `write_offline_crds_cache` writes a minimal one
(an empty context ``jwst_0000.pmap``), `offline_crds_environment` gives the
variables that point CRDS at it without any server, and `offline_crds` sets
them for the duration of a block.
"""

import contextlib
import os
from pathlib import Path

import numpy as np
from stdatamodels.jwst import datamodels

from jwst_soss_custom._base.geometry import NX
from jwst_soss_custom.datasets.writer import save_atomic

__all__ = [
    "REFERENCE_TYPES",
    "SKIPPED_STEPS",
    "reference_filename",
    "write_references",
    "detector1_overrides",
    "strun_arguments",
    "write_offline_crds_cache",
    "offline_crds_environment",
    "offline_crds",
]

#: Reference types written, in Detector1 order.
REFERENCE_TYPES = ("mask", "saturation", "superbias", "linearity", "dark", "gain", "readnoise")

#: Detector1 steps that take no reference file here, or are not used for SOSS
#: (the official defaults skip persistence, charge_migration, picture_frame
#: and clean_flicker_noise already); ipc has no NIRISS correction in CRDS.
SKIPPED_STEPS = ("ipc", "persistence")

_OFFLINE_CONTEXT = "jwst_0000.pmap"
_SERVERLESS_URL = "https://jwst-serverless-mode.stsci.edu"


def _describe(model, reftype, config, description):
    meta = model.meta
    meta.reftype = reftype.upper()
    meta.description = description
    meta.author = "jwst_soss_custom simulator"
    meta.pedigree = "DUMMY"
    meta.useafter = "2022-01-01T00:00:00"
    meta.telescope = "JWST"
    meta.instrument.name = "NIRISS"
    meta.instrument.detector = "NIS"
    meta.exposure.type = "NIS_SOSS"
    meta.subarray.name = config.subarray
    meta.subarray.xstart = 1
    meta.subarray.xsize = NX
    meta.subarray.ystart = config.subarray_ystart
    meta.subarray.ysize = config.ny
    meta.subarray.fastaxis = -2
    meta.subarray.slowaxis = -1
    return model


def reference_filename(config, reftype):
    """File name of one reference, e.g. ``jw01366001001_04101_00001_superbias.fits``."""
    return f"{config.root}_{reftype}.fits"


def write_references(maps, config, output_dir):
    """Write the detector's references in CRDS format.

    Parameters
    ----------
    maps : DetectorMaps
        The simulated detector.
    config : SimConfig
    output_dir : str or Path
        Folder (created if needed).

    Returns
    -------
    dict of str to Path
        Reference type to file.
    """
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    shape = maps.bias.shape
    zero_dq = np.zeros(shape, dtype=np.uint32)
    zero = np.zeros(shape, dtype=np.float32)
    frames = np.arange(1, config.ngroups + 1, dtype=np.float32)[:, None, None]
    dark_dn = frames * (maps.dark / maps.gain * np.float32(config.frame_time))[None]
    a = maps.nonlinearity
    models = {
        "mask": (datamodels.MaskModel(dq=maps.dq), "Bad pixel mask of the simulated detector"),
        "saturation": (
            datamodels.SaturationModel(data=maps.saturation, dq=zero_dq.copy()),
            "Saturation level (raw DN, bias included)",
        ),
        "superbias": (
            datamodels.SuperBiasModel(data=maps.bias, err=zero.copy(), dq=zero_dq.copy()),
            "Superbias (DN)",
        ),
        "linearity": (
            datamodels.LinearityModel(
                coeffs=np.stack([zero, np.ones(shape, np.float32), a]).astype(np.float32),
                dq=zero_dq.copy(),
            ),
            "Linearity: t = m + a m^2, the exact inverse of the simulated response",
        ),
        "dark": (
            datamodels.DarkModel(
                data=dark_dn.astype(np.float32),
                err=np.zeros_like(dark_dn, dtype=np.float32),
                dq=zero_dq.copy(),
            ),
            "Dark current accumulated at each group (DN)",
        ),
        "gain": (datamodels.GainModel(data=maps.gain), "Gain (e-/DN)"),
        "readnoise": (
            datamodels.ReadnoiseModel(data=maps.readnoise_cds),
            "CDS read noise (DN), white and correlated readout noise",
        ),
    }
    paths = {}
    for reftype, (model, description) in models.items():
        _describe(model, reftype, config, description)
        if reftype == "dark":
            model.meta.exposure.nframes = 1
            model.meta.exposure.ngroups = config.ngroups
            model.meta.exposure.groupgap = 0
            model.meta.exposure.readpatt = "NISRAPID"
        if reftype in ("gain", "readnoise"):
            model.meta.bunit_data = "electrons/DN" if reftype == "gain" else "DN"
        paths[reftype] = save_atomic(model, out / reference_filename(config, reftype))
    write_offline_crds_cache(out / "crds_cache")
    return paths


def detector1_overrides(references, steps=None):
    """``steps`` dictionary that runs the official Detector1 on these references.

    Parameters
    ----------
    references : dict of str to path
        Output of `write_references`.
    steps : iterable of str, optional
        The step names of the pipeline to run (e.g.
        ``SossDetector1Pipeline.step_defs``); settings of other steps are
        left out. Default: those of the official ``calwebb_detector1``.

    Returns
    -------
    dict
        For ``Detector1Pipeline.call(..., steps=...)``; ``gain`` and
        ``readnoise`` go to jump, ramp_fit and gain_scale.
    """
    names = None if steps is None else list(steps)
    r = {k: str(v) for k, v in references.items()}
    steps = {name: {"skip": True} for name in SKIPPED_STEPS}
    steps["dq_init"] = {"override_mask": r["mask"]}
    steps["saturation"] = {"override_saturation": r["saturation"],
                           "override_superbias": r["superbias"]}
    steps["superbias"] = {"override_superbias": r["superbias"]}
    steps["linearity"] = {"override_linearity": r["linearity"]}
    steps["dark_current"] = {"override_dark": r["dark"]}
    for name in ("jump", "ramp_fit"):
        steps[name] = {"override_gain": r["gain"], "override_readnoise": r["readnoise"]}
    steps["gain_scale"] = {"override_gain": r["gain"]}
    # References the pipeline would prefetch from CRDS although SOSS does not
    # use them: refpix/sirskernel (NIRSpec IRS2, full-frame SIRS only) and the
    # MIRI-only rscd and reset. "N/A" is CRDS's own word for "not needed".
    steps["refpix"] = {"override_refpix": "N/A", "override_sirskernel": "N/A"}
    steps["rscd"] = {"override_rscd": "N/A"}
    steps["reset"] = {"override_reset": "N/A"}
    if names is not None:
        steps = {name: values for name, values in steps.items() if name in set(names)}
    return steps


def strun_arguments(references, steps=None):
    """The same overrides as ``strun`` command-line arguments (``steps`` as above)."""
    args = []
    for step, values in detector1_overrides(references, steps).items():
        for key, value in values.items():
            args.append(f"--steps.{step}.{key}={value}")
    return args


_MAPPINGS = {
    _OFFLINE_CONTEXT: ("PIPELINE", "'parkey' : ('META.INSTRUMENT.NAME',),",
                       "    'NIRISS' : 'jwst_niriss_0000.imap',\n"),
    "jwst_niriss_0000.imap": ("INSTRUMENT", "'parkey' : (),", ""),
}


def write_offline_crds_cache(path):
    """Write a minimal CRDS cache that works with no server.

    It holds the cached server configuration and an empty context
    (``jwst_0000.pmap`` with an empty NIRISS mapping): every reference must
    then be an override, and an unknown reference type is refused by CRDS
    by name rather than looked up on a server.

    Parameters
    ----------
    path : str or Path
        Folder to use as ``CRDS_PATH``.

    Returns
    -------
    Path
    """
    from crds.core.utils import str_checksum

    path = Path(path)
    config = path / "config" / "jwst"
    mappings = path / "mappings" / "jwst"
    config.mkdir(parents=True, exist_ok=True)
    mappings.mkdir(parents=True, exist_ok=True)
    info = {
        "observatory": "jwst",
        "operational_context": _OFFLINE_CONTEXT,
        "edit_context": _OFFLINE_CONTEXT,
        "effective_mode": "local",
        "last_synced": "never: offline cache written by jwst_soss_custom",
        "mappings": [],
        "bad_files": "",
        "bad_files_list": [],
        "bad_files_set": set(),
    }
    (config / "server_config").write_text(repr(info) + "\n")
    for name, (kind, parkey, selector) in _MAPPINGS.items():
        extra = "    'instrument' : 'NIRISS',\n" if kind == "INSTRUMENT" else ""
        text = (
            "header = {\n"
            "    'derived_from' : 'jwst_soss_custom offline cache',\n"
            f"{extra}"
            f"    'mapping' : '{kind}',\n"
            f"    'name' : '{name}',\n"
            "    'observatory' : 'JWST',\n"
            f"    {parkey}\n"
            "}\n\nselector = {\n"
            f"{selector}"
            "}\n"
        )
        # CRDS verifies a mapping's checksum, computed without the sha1sum line.
        text = text.replace("    'parkey'", f"    'sha1sum' : '{str_checksum(text)}',\n    'parkey'")
        (mappings / name).write_text(text)
    return path


def offline_crds_environment(cache):
    """Environment variables that make CRDS use ``cache`` and no server.

    Parameters
    ----------
    cache : str or Path
        A folder written by `write_offline_crds_cache`.

    Returns
    -------
    dict of str to str
    """
    return {
        "CRDS_PATH": str(Path(cache).resolve()),
        "CRDS_SERVER_URL": _SERVERLESS_URL,
        # The empty context has no pars-* step parameter references.
        "STPIPE_DISABLE_CRDS_STEPPARS": "true",
    }


@contextlib.contextmanager
def offline_crds(cache):
    """Run the body with CRDS pointed at an offline cache, unless CRDS is configured.

    A user who has set ``CRDS_PATH`` or ``CRDS_SERVER_URL`` keeps their CRDS;
    otherwise the variables of `offline_crds_environment` are set for the
    duration of the block and restored afterwards.
    """
    env = offline_crds_environment(cache)
    if os.environ.get("CRDS_PATH") or os.environ.get("CRDS_SERVER_URL"):
        env = {}
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
