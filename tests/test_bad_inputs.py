"""The bad-input matrix: every command, every kind of damaged input, one clear message.

Each case runs a command the way a user does — ``strun <alias> ...`` through
stpipe's own ``strun`` entry point, or the ``soss_simulate`` console entry
point — in this process (the subprocess path is covered by tests/test_strun.py;
here ~35 cases would cost minutes of interpreter start-ups), and asserts:

* a non-zero exit status;
* the last line printed names the problem (the package's message: stpipe
  prints its traceback first, see docs/reliability.md);
* no product under its final name (nothing at all) in the output folder;
* every input file byte-identical to what it was.

The table in docs/reliability.md lists the same cases. A property-based test
(hypothesis) drives the header and shape validation with arbitrary values.
"""

import hashlib
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stdatamodels.jwst import datamodels

from jwst_soss_custom import SossInputError
from jwst_soss_custom.exposure import check_header_numbers, check_soss_model
from jwst_soss_custom.fitting.synthetic import synthetic_tables
from jwst_soss_custom.lightcurves.synthetic import synthetic_segments


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """Good inputs of every kind, small (copied and hashed per case), to be damaged."""
    from jwst_soss_custom.datasets import simulate

    folder = tmp_path_factory.mktemp("good")
    rateints = simulate(folder, preset="tiny", seed=4, nints=4, nsegments=2).segment_files
    x1dints = []
    for model in synthetic_segments(nints=40, nsegments=2, seed=3):
        model.save(folder / model.meta.filename)
        x1dints.append(folder / model.meta.filename)
    whtlt, _, truth = synthetic_tables(nints=60, nchannels=1, seed=2)
    whtlt.meta["period"] = truth["period"]
    whtlt.write(folder / "good_whtlt.ecsv")
    ramp = datamodels.RampModel((2, 3, 256, 2048))
    with datamodels.open(rateints[0]) as source:
        ramp.update(source)
    ramp.meta.exposure.ngroups = 3
    ramp.meta.exposure.nints = 2
    ramp.meta.exposure.integration_start = 1
    ramp.meta.exposure.integration_end = 2
    ramp.save(folder / "good_uncal.fits")
    return {"rateints": [str(p) for p in rateints], "x1dints": [str(p) for p in x1dints],
            "whtlt": str(folder / "good_whtlt.ecsv"), "uncal": str(folder / "good_uncal.fits")}


# ------------------------------------------------------------------ damages


def _header(path, **cards):
    with fits.open(path, mode="update") as hdul:
        for key, value in cards.items():
            if value is None:
                del hdul[0].header[key]
            else:
                hdul[0].header[key] = value


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _science(path, change):
    with datamodels.open(path) as model:
        damaged = model.copy()
    change(damaged)
    damaged.save(path)


def _all_nan(model):
    model.data[:] = np.nan


def _rate_2d(path):
    with datamodels.open(path) as model:
        image = datamodels.ImageModel(model.data[0])
        image.update(model)
    image.save(path)


def _x1d_flux(value):
    def change(path):
        with datamodels.open(path) as model:
            damaged = model.copy()
        for spec in damaged.spec:
            spec.spec_table["FLUX"][:] = value
        damaged.save(path)
    return change


def _x1d_times(path):
    with datamodels.open(path) as model:
        damaged = model.copy()
    for spec in damaged.spec:
        for column in ("MJD-AVG", "TDB-MID"):
            spec.spec_table[column][:] = np.inf
    damaged.int_times["int_mid_MJD_UTC"][:] = np.inf
    damaged.int_times["int_mid_BJD_TDB"][:] = np.inf
    damaged.save(path)


def _write(text):
    def change(path):
        path.write_text(text)
    return change


# Each case: (command, input kind, how to damage the first input (or None),
# extra arguments (``{in}``: the damaged input, ``{dir}``: the case's folder),
# the expected message). Files not damaged are copied untouched.
CASES = {
    "spec2: not SOSS": ("soss_spec2", "rateints", lambda p: _header(p, EXP_TYPE="NIS_IMAGE"),
                        [], "EXP_TYPE is 'NIS_IMAGE'"),
    "spec2: FULL": ("soss_spec2", "rateints", lambda p: _header(p, SUBARRAY="FULL"),
                    [], "SUBARRAY is 'FULL'"),
    "spec2: SUBSTRIP96 header on 256 rows": ("soss_spec2", "rateints",
                                             lambda p: _header(p, SUBARRAY="SUBSTRIP96"), [],
                                             "does not match SUBSTRIP96 (96, 2048)"),
    "spec2: superstripe": ("soss_spec2", "rateints", lambda p: _header(p, SSTR_NST=4),
                           [], "superstripe exposure (SSTR_NST=4"),
    "spec2: PWCPOS out of range": ("soss_spec2", "rateints", lambda p: _header(p, PWCPOS=250.0),
                                   [], "PWCPOS=250.0 is outside the range"),
    "spec2: PWCPOS as text": ("soss_spec2", "rateints", lambda p: _header(p, PWCPOS="abc"),
                              [], "PWCPOS='abc' in the primary header is not a number"),
    "spec2: NGROUPS as text": ("soss_spec2", "rateints", lambda p: _header(p, NGROUPS="nine"),
                               [], "NGROUPS='nine' in the primary header is not a number"),
    "spec2: truncated": ("soss_spec2", "rateints", _truncate, [], "truncated"),
    "spec2: not FITS": ("soss_spec2", "rateints", _write("hello"), [],
                        "not a rateints/calints FITS file"),
    "spec2: a rate image": ("soss_spec2", "rateints", _rate_2d, [], "rateints"),
    "spec2: every integration NaN": ("soss_spec2", "rateints", lambda p: _science(p, _all_nan),
                                     [], "have no usable pixel"),
    "spec2: segments of two targets": ("soss_spec2", "both rateints",
                                       lambda p: _header(p, TARGNAME="WASP-17"), [],
                                       "TARGNAME"),
    "spec2: segments of two programmes": ("soss_spec2", "both rateints",
                                          lambda p: _header(p, PROGRAM="02734"), [], "PROGRAM"),
    "spec2: overlapping segments": ("soss_spec2", "both rateints",
                                    lambda p: _header(p, INTSTART=2), [], "overlap"),
    "spec2: missing file": ("soss_spec2", "missing", None, [], "does not exist"),
    "spec2: background not npy": ("soss_spec2", "rateints", None,
                                  ["--steps.background.override_bkg={dir}/bkg.npy"],
                                  "bkg.npy"),
    "spec2: background of the wrong shape": ("soss_spec2", "rateints", None,
                                             ["--steps.background.override_bkg={dir}/small.npy"],
                                             "shape"),
    "spec2: order-0 file of the wrong shape": ("soss_spec2", "rateints", None,
                                               ["--steps.tracing.order0_file={dir}/small.npy"],
                                               "order0_file"),
    "spec2: output_dir is a file": ("soss_spec2", "rateints", None, ["--output_dir={dir}/afile"],
                                    "afile"),
    "spec2: unknown 1/f method": ("soss_spec2", "rateints", None,
                                  ["--steps.oneoverf.method=magic"], "magic"),
    "tracing alone: not SOSS": ("soss_tracing", "rateints",
                                lambda p: _header(p, EXP_TYPE="NIS_IMAGE"), [],
                                "EXP_TYPE is 'NIS_IMAGE'"),
    "extract alone: SUBSTRIP96": ("soss_extract", "rateints",
                                  lambda p: _header(p, SUBARRAY="SUBSTRIP96"), [],
                                  "SUBSTRIP96 exposure is reduced as a whole by soss_spec2"),
    "lightcurves alone: two files": ("soss_lightcurves", "x1dints", None, ["{dir}/afile"],
                                     "reduces one input at a time but was given 2 files"),
    "tso3: all fluxes NaN": ("soss_tso3", "x1dints", _x1d_flux(np.nan), [],
                             "finite flux in only 0 of"),
    "tso3: no plausible time": ("soss_tso3", "x1dints", _x1d_times, [], "time"),
    "tso3: segments of two targets": ("soss_tso3", "both x1dints",
                                      lambda p: _header(p, TARGNAME="WASP-17"), [],
                                      "are not segments of one exposure"),
    "tso3: inverted wavelength range": ("soss_tso3", "x1dints", None,
                                        ["--steps.lightcurves.order1_wave_range=2.5,1.0"],
                                        "the minimum must be below the maximum"),
    "tso3: baseline that is not a range": ("soss_tso3", "x1dints", None,
                                           ["--steps.lightcurves.baseline_integrations=abc"],
                                           "abc"),
    "tso3: rateints instead of x1dints": ("soss_tso3", "rateints", None, [], "x1dints"),
    "fit: whtlt not ECSV": ("soss_fit", "whtlt", _write("a,b\n1,2\n"), [], "ECSV"),
    "fit: no period": ("soss_fit", "whtlt",
                       lambda p: p.write_text(p.read_text().replace("period:", "peri0d:")), [],
                       "period"),
    "fit: empty file": ("soss_fit", "whtlt", _write(""), [], "ECSV"),
    "detector1: rateints": ("soss_detector1", "rateints", None, [], "4-D ramp"),
    "detector1: superstripe": ("soss_detector1", "uncal", lambda p: _header(p, SSTR_NST=3), [],
                               "superstripe exposure (SSTR_NST=3"),
    "detector1: truncated uncal": ("soss_detector1", "uncal", _truncate, [], "truncated"),
    "detector1: uncal not SOSS": ("soss_detector1", "uncal",
                                  lambda p: _header(p, EXP_TYPE="NIS_IMAGE"), [],
                                  "EXP_TYPE is 'NIS_IMAGE'"),
    "detector1: PWCPOS as text": ("soss_detector1", "uncal",
                                  lambda p: _header(p, PWCPOS="245.76"), [],
                                  "PWCPOS='245.76' in the primary header is not a number"),
    "simulate: output-dir is a file": ("soss_simulate", None, None,
                                       ["--output-dir={dir}/afile"], "is a file"),
    "simulate: unknown preset": ("soss_simulate", None, None,
                                 ["--preset=huge", "--output-dir={dir}/out"], "huge"),
}


def _prepare(kind, inputs, work, damage):
    """Copies of the inputs in ``work``; the first damaged. Returns the paths to give."""
    if kind is None:
        return []
    if kind == "missing":
        return [work / "gone_rateints.fits"]
    base = kind.split()[-1]
    sources = inputs[base] if isinstance(inputs[base], list) else [inputs[base]]
    if not kind.startswith("both"):
        sources = sources[:1]
    copies = [Path(shutil.copy(source, work)) for source in sources]
    if damage is not None:
        damage(copies[0])
    return copies


def _run(command, args, monkeypatch, capsys, cwd):
    """The command's entry point in this process: (exit status, last line printed)."""
    monkeypatch.chdir(cwd)
    if command == "soss_simulate":
        from jwst_soss_custom.datasets.cli import main

        monkeypatch.setattr(sys, "argv", ["soss_simulate", *args])
        try:
            status = main(args)
        except SystemExit as exit_:
            status = exit_.code
    else:
        from stpipe._cli.strun import main

        monkeypatch.setattr(sys, "argv", ["strun", command, *args])
        try:
            main()
            status = 0
        except SystemExit as exit_:
            status = exit_.code
    out = capsys.readouterr()
    # strun: stpipe frames the message on stdout, then the traceback goes to
    # stderr, ending with the exception's line; that is the last a user sees.
    lines = [line for line in (out.err or out.out).splitlines() if line.strip()]
    return status, lines[-1] if lines else ""


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_matrix(case, inputs, tmp_path, monkeypatch, capsys):
    """One case of `CASES`: exit status, last line, no product, inputs untouched."""
    command, kind, damage, extra, message = CASES[case]
    work = tmp_path / "in"
    work.mkdir()
    np.save(work / "small.npy", np.zeros((10, 10), np.float32))
    (work / "bkg.npy").write_text("not numpy")
    (work / "afile").write_text("a file, not a folder")
    paths = _prepare(kind, inputs, work, damage)
    given_inputs = [str(p) for p in paths]
    out = tmp_path / "out"
    out.mkdir()
    before = {p: _digest(p) for p in work.iterdir()}
    args = [a.format(dir=work) for a in extra]
    if command != "soss_simulate":
        args = [*given_inputs[:1], *args]
        if not any(a.startswith("--output_dir") for a in args):
            args.append(f"--output_dir={out}")
        if len(given_inputs) > 1:
            args = _as_association(command, given_inputs, work) + args[1:]
    status, last = _run(command, args, monkeypatch, capsys, work)
    assert status not in (0, None), f"{case}: the command succeeded"
    assert message in last, f"{case}: last line {last!r}"
    assert not [p for p in out.rglob("*") if p.is_file()], f"{case}: a product was left"
    after = {p: _digest(p) for p in work.iterdir() if p in before}
    assert after == before, f"{case}: an input was modified"


def _as_association(command, paths, work):
    """Several segments: an association, as users give them to strun."""
    from jwst.associations import asn_from_list
    from jwst.associations.lib.rules_level2_base import DMSLevel2bBase

    names = [Path(p).name for p in paths]
    if command == "soss_spec2":
        asn = asn_from_list.asn_from_list(names, rule=DMSLevel2bBase, product_name="bad")
    else:
        asn = asn_from_list.asn_from_list(names, product_name="bad")
    _, serialized = asn.dump()
    path = work / f"{command}_asn.json"
    path.write_text(serialized)
    return [str(path)]


def test_the_matrix_covers_every_command():
    commands = {command for command, *_ in CASES.values()}
    assert {"soss_detector1", "soss_spec2", "soss_tso3", "soss_fit", "soss_simulate"} <= commands
    assert len(CASES) >= 30


# ------------------------------------------------------- property-based checks

_VALID = {"exp_type": "NIS_SOSS", "subarray": "SUBSTRIP256"}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    # Values the datamodel schema accepts (others are refused by stdatamodels itself).
    exp_type=st.sampled_from(["NIS_SOSS", "NIS_IMAGE", "NRS_BRIGHTOBJ", "MIR_LRS-SLITLESS"]),
    subarray=st.sampled_from(["SUBSTRIP256", "SUBSTRIP96", "FULL"]),
    pwcpos=st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True, width=32)),
    shape=st.tuples(st.integers(1, 2), st.sampled_from([96, 255, 256]),
                    st.sampled_from([2048, 2040])),
)
def test_header_and_shape_validation_never_raises_anything_else(exp_type, subarray, pwcpos,
                                                                shape):
    """Any metadata: either accepted, exactly when valid, or one SossInputError naming it."""
    model = datamodels.CubeModel(shape)
    model.meta.exposure.type = exp_type
    model.meta.subarray.name = subarray
    if pwcpos is not None:
        model.meta.instrument.pupil_position = float(pwcpos)
    rows = {"SUBSTRIP256": 256, "SUBSTRIP96": 96}.get(subarray)
    valid = (exp_type == "NIS_SOSS" and shape[1:] == (rows, 2048)
             and pwcpos is not None and 245.656 <= pwcpos <= 245.923)
    try:
        check_soss_model(model)
    except SossInputError as err:
        assert not valid
        text = str(err)
        assert any(word in text for word in ("EXP_TYPE", "SUBARRAY", "shape", "PWCPOS"))
    else:
        assert valid


@settings(max_examples=80, deadline=None)
@given(value=st.one_of(st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=12),
                       st.integers(-10**6, 10**6),
                       st.floats(allow_nan=False, allow_infinity=False, width=32),
                       st.booleans()))
def test_numeric_keywords_accept_numbers_only(value):
    header = fits.Header()
    header["PWCPOS"] = value
    number = isinstance(header["PWCPOS"], (int, float)) and not isinstance(header["PWCPOS"], bool)
    try:
        check_header_numbers(header, "x.fits")
    except SossInputError as err:
        assert not number and "PWCPOS=" in str(err)
    else:
        assert number
