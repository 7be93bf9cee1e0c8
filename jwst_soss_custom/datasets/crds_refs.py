"""CRDS-format reference files of the simulated detector, and offline CRDS settings.

`write_references` writes one file per reference type that the official
``calwebb_detector1`` needs for NIRISS SOSS (``mask``, ``saturation``,
``superbias``, ``linearity``, ``dark``, ``gain``, ``readnoise``), each a
stdatamodels reference model with its ``REFTYPE`` and the subarray it
covers, so it can be given as ``override_<reftype>``. Beside them it writes
a PASTASOSS reference (`write_pastasoss_reference`, from the ``pastasoss``
package), which ``clean_flicker_noise`` needs for SOSS.

The official steps record the CRDS context they used when they finish, which
needs a CRDS configuration even when every reference is overridden. Offline,
CRDS reads it from a cache: `write_offline_crds_cache` writes a minimal one
(a context ``jwst_0000.pmap`` that knows only the few reference types that
steps run inside ``clean_flicker_noise`` look up themselves),
`offline_crds_environment` gives the variables that point CRDS at it without
any server, and `offline_crds` sets them for the duration of a block.
"""

import contextlib
import os
import tempfile
from pathlib import Path

import numpy as np
from stdatamodels.jwst import datamodels

from jwst_soss_custom._base.atomic import atomic_path
from jwst_soss_custom._base.geometry import NX, NY
from jwst_soss_custom.datasets.writer import save_atomic

__all__ = [
    "REFERENCE_TYPES",
    "SKIPPED_STEPS",
    "PASTASOSS_FILE",
    "CLEAN_FLICKER_NOISE_TSO",
    "NESTED_NOT_AVAILABLE",
    "reference_filename",
    "write_pastasoss_reference",
    "write_references",
    "detector1_overrides",
    "strun_arguments",
    "write_offline_crds_cache",
    "offline_crds_environment",
    "offline_crds",
    "find_references",
    "main",
    "write_parameter_file",
    "write_soss_photom",
]

#: Reference types written, in Detector1 order.
REFERENCE_TYPES = ("mask", "saturation", "superbias", "linearity", "dark", "gain", "readnoise")

#: Detector1 steps that take no reference file here, or are not used for SOSS
#: (the official defaults skip persistence, charge_migration, picture_frame
#: and clean_flicker_noise already); ipc has no NIRISS correction in CRDS.
SKIPPED_STEPS = ("ipc", "persistence")

#: The PASTASOSS reference `write_references` writes beside the others (the
#: same for every simulated exposure: it is not a key of their dictionary).
PASTASOSS_FILE = "soss_pastasoss.asdf"

#: clean_flicker_noise's settings for time series (``median_image``: the
#: scaled median of the integrations is subtracted before the 1/f fit; the
#: traces are masked from the PASTASOSS reference).
CLEAN_FLICKER_NOISE_TSO = {"skip": False, "background_method": "median_image",
                           "mask_science_regions": True}

#: Reference types that steps run inside clean_flicker_noise look up in CRDS
#: themselves, where no ``override_`` reaches them, and that the offline
#: cache answers with "N/A": the SOSS background subtraction (``bkg``) and
#: the white light (``wavelengthrange``) of its median image, which then go
#: on without. Its draft ramp fit needs ``gain`` and ``readnoise``, which
#: the cache answers with the simulator's files.
NESTED_NOT_AVAILABLE = ("bkg", "wavelengthrange")

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
    if config is None:  # not tied to a subarray
        return model
    meta.subarray.name = config.subarray
    meta.subarray.xstart = 1
    meta.subarray.xsize = NX
    meta.subarray.ystart = config.subarray_ystart
    meta.subarray.ysize = config.ny
    meta.subarray.fastaxis = -2
    meta.subarray.slowaxis = -1
    return model


def write_pastasoss_reference(path):
    """Write a PASTASOSS reference built from the data of the ``pastasoss`` package.

    jwst reads the SOSS trace positions and wavelengths from this reference
    (`jwst.extract_1d.soss_extract.pastasoss`), e.g. for ``clean_flicker_noise``
    with ``background_method="median_image"`` or ``mask_science_regions``.
    It holds, for orders 1 and 2, pastasoss's reference trace at the commanded
    pupil-wheel position with its rotation pivot, and pastasoss's wavelength
    polynomial in (column, pupil-wheel offset), so that jwst reproduces the
    traces and wavelengths pastasoss predicts at any PWCPOS within the bounds.
    Throughputs, which jwst's ATOCA extraction reads but ``clean_flicker_noise``
    does not, are the SPECTRACE order throughputs packaged here.

    Parameters
    ----------
    path : str or Path
        Output file, ``.asdf`` (the model has arrays that FITS cannot hold).

    Returns
    -------
    Path
    """
    from pastasoss import soss_traces, wavecal

    from jwst_soss_custom._base.data import load_throughput

    cmd = soss_traces.PWCPOS_CMD
    table = load_throughput()
    model = datamodels.PastasossModel()
    traces, wavecal_models, throughputs, offsets = [], [], [], []
    for order in (1, 2):
        key = f"order{order}"
        x, y, pivot = soss_traces.get_reference_trace(soss_traces.REFERENCE_TRACE_FILES[key])
        traces.append({
            "spectral_order": order,
            "pivot_x": float(pivot[0]),
            "pivot_y": float(pivot[1]),
            "trace": np.column_stack([x, y]).astype(np.float64),
            "oversampling": 1,
            # Columns up to the last one where the order is on SUBSTRIP256.
            "cutoff": int(min(x[y <= NY - 1].max() + 1, NX)),
        })
        fit = wavecal.get_wavecal_meta_for_spectral_order(key)
        low = np.array(fit.scaler_data_min_, dtype=np.float64)
        high = np.array(fit.scaler_data_max_, dtype=np.float64)
        if order == 2:
            # pastasoss's order-2 model scales the pupil-wheel angle itself
            # (wavecal_model_order2_poly), jwst always the offset from the
            # commanded position: the same scaling, in offsets.
            low[1] -= cmd
            high[1] -= cmd
        offsets.append((low[1], high[1]))
        # pastasoss's features are x, o, x^2, x o, o^2, ... after the
        # intercept: jwst's coefficient order C00, C10, C01, C20, C11, C02, ...
        wavecal_models.append({
            "spectral_order": order,
            "polynomial_degree": int(fit.poly_degree),
            "coefficients": np.concatenate([[fit.intercept], fit.coefficients]).astype(np.float64),
            "coefficient_labels": "C00 C10 C01 C20 C11 C02 ... (x: column, y: PWCPOS offset)",
            "scale_extents": np.array([[low[0], low[1]], [high[0], high[1]]]),
        })
        throughputs.append({
            "spectral_order": order,
            "wavelength": np.asarray(table["wavelength"], dtype=np.float64),
            "throughput": np.asarray(table[f"throughput_{order}"], dtype=np.float64),
        })
    model.traces = traces
    model.wavecal_models = wavecal_models
    model.throughputs = throughputs
    _describe(model, "pastasoss", None,
              "SOSS traces and wavelengths of the pastasoss package (orders 1, 2)")
    meta = model.meta
    meta.instrument.filter = "CLEAR"
    meta.pwcpos_cmd = cmd
    # jwst refuses a PWCPOS outside these: the union of the pupil-wheel
    # ranges the two wavelength models were fitted over.
    meta.pwcpos_bounds = [cmd + min(o[0] for o in offsets), cmd + max(o[1] for o in offsets)]
    # Full-frame geometry of the wavelength maps: SUBSTRIP256 is the top
    # 256 of 2048 rows, and the maps are made on a 300-row strip around it.
    meta.soss_xdim = NX
    meta.soss_ydim = 300
    meta.subarray_ymin = NX - NY
    # A 1 nm grid covering all orders, and jwst's default order-2 cutoffs.
    meta.wavemap_wlmin = 0.5
    meta.wavemap_wlmax = 5.5
    meta.wavemap_nwl = 5001
    meta.order2_separation_cutoff = [0.77, 0.95]
    model.validate()
    return save_atomic(model, Path(path))


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
    write_pastasoss_reference(out / PASTASOSS_FILE)
    selected = {"gain": paths["gain"], "readnoise": paths["readnoise"]}
    selected.update(dict.fromkeys(NESTED_NOT_AVAILABLE, "N/A"))
    write_offline_crds_cache(out / "crds_cache", selected)
    return paths


def detector1_overrides(references, steps=None, clean_flicker_noise=False):
    """``steps`` dictionary that runs the official Detector1 on these references.

    Parameters
    ----------
    references : dict of str to path
        Output of `write_references`.
    steps : iterable of str, optional
        The step names of the pipeline to run (e.g.
        ``SossDetector1Pipeline.step_defs``); settings of other steps are
        left out. Default: those of the official ``calwebb_detector1``.
    clean_flicker_noise : bool, optional
        Run ``clean_flicker_noise`` (skipped by default) with its time-series
        settings (`CLEAN_FLICKER_NOISE_TSO`) and the PASTASOSS reference:
        ``references["pastasoss"]`` if given, else `PASTASOSS_FILE` beside
        the mask. Its other needs come from the offline cache (see
        `NESTED_NOT_AVAILABLE`).

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
    if clean_flicker_noise:
        pastasoss = r.get("pastasoss", str(Path(r["mask"]).parent / PASTASOSS_FILE))
        # The flat is read only with apply_flat_field (off), but the
        # pipeline prefetches every reference of a step that runs.
        steps["clean_flicker_noise"] = {**CLEAN_FLICKER_NOISE_TSO,
                                        "override_pastasoss": pastasoss, "override_flat": "N/A"}
    if names is not None:
        steps = {name: values for name, values in steps.items() if name in set(names)}
    return steps


def write_soss_photom(path, photmj=(2e-3, 5e-3, 5e-3), nelem=200):
    """A NIRISS SOSS PHOTOM reference for the simulated exposures (CRDS format).

    The simulator's fluxes are in DN/s of its own throughput model, not of
    the instrument's; this reference gives ``soss_photom`` (and jwst's photom)
    a conversion with the real file's layout: per order a scalar ``photmj``
    and a relative response rising linearly from 1 to 2 over 0.5-3.0 micron.

    Parameters
    ----------
    path : str or Path
    photmj : sequence of float
        Scalar of orders 1, 2, 3.
    nelem : int
        Samples of the relative response.

    Returns
    -------
    Path
    """
    dtype = [("filter", "S12"), ("pupil", "S15"), ("order", "<i2"), ("photmj", "<f4"),
             ("uncertainty", "<f4"), ("nelem", "<i2"), ("wavelength", "<f4", (nelem,)),
             ("relresponse", "<f4", (nelem,)), ("reluncertainty", "<f4", (nelem,))]
    table = np.zeros(3, dtype=dtype)
    for row, (order, scalar) in enumerate(zip((1, 2, 3), photmj, strict=True)):
        table[row] = ("CLEAR", "GR700XD", order, scalar, 0.0, nelem,
                      np.linspace(0.5, 3.0, nelem), np.linspace(1.0, 2.0, nelem), np.zeros(nelem))
    model = datamodels.NisSossPhotomModel(phot_table=table)
    _describe(model, "photom", None, "Simulated SOSS PHOTOM: linear relative response")
    return save_atomic(model, Path(path))


def write_parameter_file(pipeline, steps, path):
    """An ASDF parameter file of ``pipeline`` with the given step settings.

    stpipe's own export leaves the ``override_<reftype>`` parameters out, so
    they are put into the exported tree here.

    Parameters
    ----------
    pipeline : type
        A `stpipe.Pipeline` class.
    steps : dict
        Step name to ``{parameter: value}`` (`detector1_overrides`).
    path : str or Path
    """
    import asdf

    with tempfile.TemporaryDirectory() as scratch:
        exported = Path(scratch) / "exported.asdf"
        pipeline().export_config(exported)
        with asdf.open(exported, lazy_load=False) as af:
            tree = {k: v for k, v in af.tree.items() if k not in ("asdf_library", "history")}
    for step in tree["steps"]:
        step["parameters"].update(steps.get(step["name"], {}))
    with atomic_path(path) as part:
        asdf.AsdfFile(tree).write_to(part)


def strun_arguments(references, steps=None, clean_flicker_noise=False):
    """The same overrides as ``strun`` command-line arguments (arguments as above)."""
    args = []
    for step, values in detector1_overrides(references, steps, clean_flicker_noise).items():
        for key, value in values.items():
            args.append(f"--steps.{step}.{key}={value}")
    return args


def _write_mapping(folder, name, header, selector):
    """Write one CRDS mapping file with its checksum."""
    from crds.core.utils import str_checksum

    fields = {"derived_from": "jwst_soss_custom offline cache", **header, "name": name,
              "observatory": "JWST"}
    lines = "".join(f"    {key!r} : {value!r},\n" for key, value in sorted(fields.items()))
    text = f"header = {{\n{lines}}}\n\nselector = {selector}\n"
    # CRDS verifies a mapping's checksum, computed without the sha1sum line.
    text = text.replace("    'parkey'", f"    'sha1sum' : '{str_checksum(text)}',\n    'parkey'")
    (folder / name).write_text(text)


def write_offline_crds_cache(path, selected=None):
    """Write a minimal CRDS cache that works with no server.

    It holds the cached server configuration and a context
    (``jwst_0000.pmap``) whose NIRISS mapping knows only the reference types
    of ``selected``: every other reference must be an override, and an
    unknown reference type is refused by CRDS by name rather than looked up
    on a server.

    Parameters
    ----------
    path : str or Path
        Folder to use as ``CRDS_PATH``.
    selected : dict of str to path or str, optional
        Reference type to the file the cache selects for any NIRISS
        exposure, or ``"N/A"`` (CRDS's "no such reference"). Steps that
        other steps run inside themselves take no override and can only
        get references this way. Default: none.

    Returns
    -------
    Path
    """
    path = Path(path)
    config = path / "config" / "jwst"
    mappings = path / "mappings" / "jwst"
    # CRDS's default layout, written down so that it does not guess it.
    references = path / "references" / "jwst" / "niriss"
    for folder in (config, mappings, references):
        folder.mkdir(parents=True, exist_ok=True)
    (config / "ref_cache_subdir_mode").write_text("instrument\n")
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
    _write_mapping(mappings, _OFFLINE_CONTEXT,
                   {"mapping": "PIPELINE", "parkey": ("META.INSTRUMENT.NAME",)},
                   "{'NIRISS' : 'jwst_niriss_0000.imap'}")
    rmaps = {}
    for reftype, file in (selected or {}).items():
        if str(file) != "N/A":
            # A link in the cache, where CRDS looks for the files it selects.
            link = references / Path(file).name
            link.unlink(missing_ok=True)
            link.symlink_to(os.path.relpath(Path(file).resolve(), references))
            file = link.name
        rmaps[reftype] = f"jwst_niriss_{reftype}_0000.rmap"
        _write_mapping(mappings, rmaps[reftype],
                       {"classes": ("Match",), "filekind": reftype.upper(), "instrument": "NIRISS",
                        "mapping": "REFERENCE", "parkey": (("META.INSTRUMENT.DETECTOR",),)},
                       f"Match({{('NIS',) : {str(file)!r}}})")
    _write_mapping(mappings, "jwst_niriss_0000.imap",
                   {"instrument": "NIRISS", "mapping": "INSTRUMENT", "parkey": ()}, repr(rmaps))
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


def find_references(folder):
    """The references the simulator wrote in ``folder``, by reference type.

    Parameters
    ----------
    folder : str or Path
        The ``refs/`` folder of ``soss_simulate --level uncal``.

    Returns
    -------
    dict
        ``{reftype: Path}`` for every type in `REFERENCE_TYPES`.

    Raises
    ------
    SossInputError
        If one is missing (named, with the fix).
    """
    from jwst_soss_custom._base.errors import SossInputError

    folder = Path(folder)
    references = {}
    for reftype in REFERENCE_TYPES:
        found = sorted(folder.glob(f"*_{reftype}.fits"))
        if not found:
            raise SossInputError(f"no *_{reftype}.fits in {folder}; give the refs/ folder "
                                 "that soss_simulate --level uncal wrote.")
        references[reftype] = found[0].resolve()
    return references


def main(argv=None):
    """Print what ``strun`` needs to run a Stage 1 offline on the simulator's references.

    ``python -m jwst_soss_custom.datasets.crds_refs REFS_DIR [--pipeline P] [--env]``
    prints the ``--steps.<step>.override_<reftype>=`` arguments for
    ``soss_detector1`` (default) or ``calwebb_detector1``, one per line;
    with ``--env`` it prints the ``NAME=value`` variables that point CRDS at
    the cache in ``REFS_DIR/crds_cache`` instead. Both are for shells::

        export $(python -m jwst_soss_custom.datasets.crds_refs raw/refs --env)
        strun soss_detector1 asn.json $(python -m jwst_soss_custom.datasets.crds_refs raw/refs)

    With ``--params-file FILE`` it writes the same overrides as an ASDF
    parameter file of the pipeline instead (for ``strun FILE ...`` or the
    parameter folder of ``soss_batch``).
    """
    import argparse
    import sys

    parser = argparse.ArgumentParser(
        prog="python -m jwst_soss_custom.datasets.crds_refs",
        description=main.__doc__.splitlines()[0],
    )
    parser.add_argument("refs", type=Path, help="the refs/ folder soss_simulate wrote")
    parser.add_argument("--pipeline", choices=("soss_detector1", "calwebb_detector1"),
                        default="soss_detector1")
    parser.add_argument("--env", action="store_true",
                        help="print the CRDS variables instead of the strun arguments")
    parser.add_argument("--params-file", type=Path, default=None,
                        help="write the overrides as an ASDF parameter file of the pipeline")
    args = parser.parse_args(argv)
    if args.env:
        lines = [f"{k}={v}" for k, v in offline_crds_environment(args.refs / "crds_cache").items()]
    else:
        try:
            references = find_references(args.refs)
        except ValueError as err:
            sys.exit(f"error: {err}")
        if args.pipeline == "soss_detector1":
            from jwst_soss_custom.pipeline.soss_detector1 import (
                SossDetector1Pipeline as pipeline,
            )
        else:
            from jwst.pipeline import Detector1Pipeline as pipeline
        if args.params_file is not None:
            write_parameter_file(pipeline, detector1_overrides(references, pipeline.step_defs),
                                 args.params_file)
            return
        steps = pipeline.step_defs if args.pipeline == "soss_detector1" else None
        lines = strun_arguments(references, steps)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
