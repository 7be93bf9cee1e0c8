"""Input checks and segment handling for SOSS time-series exposures.

An exposure arrives as one or more ``rateints`` segments (``CubeModel``).
Exposure-level work (deep frame, baselines) needs the whole time series, so
the segments are stacked into one cube along the integration axis; the
`SegmentInfo` list remembers which rows came from which file so products can
be written per segment with the official names.
"""

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from stdatamodels.jwst import datamodels

from jwst_soss_custom._base.dq import usable
from jwst_soss_custom._base.errors import SossInputError
from jwst_soss_custom._base.geometry import (
    PWCPOS_RANGE,
    SUBARRAY_ROWS,
    SUBSTRIP256_SHAPE,
    subarray_shape,
)
from jwst_soss_custom.metadata import int_start, number_list, too_few_usable

log = logging.getLogger(__name__)

__all__ = [
    "SegmentInfo",
    "SEGMENT_IDENTITY",
    "check_continues",
    "check_integrations",
    "check_soss_model",
    "meta_value",
    "input_items",
    "read_association",
    "empty_integrations",
    "flag_empty_integrations",
]

@dataclass
class SegmentInfo:
    """One input segment: its metadata and where its integrations sit in the stack.

    Attributes
    ----------
    model : CubeModel
        The segment's metadata and ``int_times`` table, without its arrays
        (they live in the stacked cube), used to name and label its products.
    start, stop : int
        Row slice of this segment in the stacked cube (0-based, stop exclusive).
    """

    model: datamodels.CubeModel
    start: int
    stop: int

    @property
    def filename(self):
        """File name of the segment."""
        return self.model.meta.filename

    @property
    def segment_number(self):
        """``meta.exposure.segment_number`` of the segment."""
        return self.model.meta.exposure.segment_number


#: What each kind of array input must look like, and the file to give instead.
_SHAPES = {
    3: ("a 3-D rateints/calints cube (nints, 256, 2048)",
        "give the *_rateints.fits product, not *_rate.fits"),
    4: ("a 4-D ramp (nints, ngroups, 256, 2048)",
        "give the *_uncal.fits file (or a ramp from the Detector1 steps)"),
}


#: Primary-header keywords the package reads as numbers. A value of the wrong
#: type only makes stdatamodels warn and fall back on the file's ASDF copy
#: (or on nothing), so the header a user edited would silently not count.
NUMERIC_KEYWORDS = ("PWCPOS", "NINTS", "NGROUPS", "TGROUP", "INTSTART", "INTEND")


def check_header_numbers(header, name):
    """Raise `SossInputError` if a keyword of `NUMERIC_KEYWORDS` is not a number.

    Parameters
    ----------
    header : `~astropy.io.fits.Header`
        Primary header of an input file.
    name : str
        File name for the message.
    """
    for key in NUMERIC_KEYWORDS:
        value = header.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise SossInputError(
                f"{name}: {key}={value!r} in the primary header is not a number; write it "
                f"as a number (e.g. {key}=245.76 for PWCPOS, without quotes)."
            )


def check_soss_model(model, *, require_pwcpos=True, ndim=3, frame=False, placed=False):
    """Raise `SossInputError` unless ``model`` is a SOSS time series the package reduces.

    SUBSTRIP256 everywhere; SUBSTRIP96 through the pipelines (`soss_detector1`
    on its own rows, `soss_spec2` with its rows placed in the SUBSTRIP256
    frame by `ExposureSource`), not through a step run on its own.

    Parameters
    ----------
    model : `~stdatamodels.jwst.datamodels.JwstDataModel`
        The input model (rateints, calints, x1dints, or a ramp).
    require_pwcpos : bool
        Whether the pupil-wheel position (PWCPOS) must be present and within
        the range pastasoss supports.
    ndim : {3, 4}
        Dimensions of the science array: 3 for rateints/calints, 4 for ramps.
    frame : bool
        Whether the arrays must be in the SUBSTRIP256 frame (a step's input)
        rather than the subarray's own shape (a segment as read from disk).
    placed : bool
        With ``frame``: whether a smaller subarray's rows were placed in the
        frame by `soss_spec2` (a step inside it); a step on its own takes
        SUBSTRIP256 only.
    """
    name = model.meta.filename or "input"
    exp_type = model.meta.exposure.type
    if exp_type != "NIS_SOSS":
        raise SossInputError(
            f"{name}: EXP_TYPE is {exp_type!r}, but this package reduces NIRISS/SOSS "
            "time series (EXP_TYPE='NIS_SOSS'). Give a NIS_SOSS rateints file."
        )
    stripes = getattr(model.meta.subarray, "num_superstripe", None)
    if stripes:
        raise SossInputError(
            f"{name}: a superstripe exposure (SSTR_NST={stripes}: its integrations cycle "
            "over that many stripes of the detector); the package needs every integration "
            "on the same SUBSTRIP256 rows (one trace solution, background and 1/f model). "
            "Reduce it with the official calwebb_detector1/calwebb_spec2."
        )
    subarray = model.meta.subarray.name
    if subarray not in SUBARRAY_ROWS:
        raise SossInputError(
            f"{name}: SUBARRAY is {subarray!r}; only SUBSTRIP256 and SUBSTRIP96 are "
            "supported (FULL changes the order geometry)."
        )
    data = getattr(model, "data", None)
    if data is not None and data.ndim != ndim:
        what, fix = _SHAPES[ndim]
        raise SossInputError(
            f"{name}: expected {what}, got {data.ndim} dimensions; {fix}."
        )
    if frame and not placed and subarray != "SUBSTRIP256":
        raise SossInputError(
            f"{name}: a {subarray} exposure is reduced as a whole by soss_spec2 (which "
            "places its rows in the SUBSTRIP256 frame); the steps alone take SUBSTRIP256 "
            "only. Run soss_spec2."
        )
    shape = SUBSTRIP256_SHAPE if frame else subarray_shape(subarray)
    if data is not None and data.shape[-2:] != shape:
        raise SossInputError(
            f"{name}: data shape {data.shape[-2:]} does not match {subarray} {shape}."
        )
    if require_pwcpos:
        pwcpos = model.meta.instrument.pupil_position
        if pwcpos is None:
            raise SossInputError(
                f"{name}: the pupil-wheel position (PWCPOS, meta.instrument.pupil_position) "
                "is missing; the traces depend on it. Add the keyword to the primary header."
            )
        lo, hi = PWCPOS_RANGE
        if not lo <= pwcpos <= hi:
            raise SossInputError(
                f"{name}: PWCPOS={pwcpos} is outside the range pastasoss supports "
                f"[{lo}, {hi}]; the trace positions would be extrapolated. Check the header."
            )


def input_items(inputs):
    """Files or models of one exposure, from any accepted input form."""
    if isinstance(inputs, (str, Path)) and str(inputs).lower().endswith(".json"):
        inputs, _ = read_association(inputs)
    if isinstance(inputs, (str, Path, datamodels.JwstDataModel)):
        inputs = [inputs]
    items = []
    for item in inputs:
        if not isinstance(item, datamodels.JwstDataModel):
            item = Path(item)
            if not item.exists():
                raise SossInputError(f"Input file {item} does not exist.")
        items.append(item)
    if not items:
        raise SossInputError("No input segments were given.")
    return items


def read_association(path, input_dir=None):
    """Science members and product names of an association of any level.

    Parameters
    ----------
    path : str or Path
        The association (``.json``), e.g. from ``asn_from_list``.
    input_dir : str or None
        Folder of the members; defaults to the association's own folder.

    Returns
    -------
    members : list of Path
    products : list of str
        The association's product names.
    """
    from jwst.associations import load_asn

    path = Path(path)
    with open(path) as handle:
        asn = load_asn(handle)
    base = Path(input_dir) if input_dir else path.parent
    members = [
        base / member["expname"]
        for product in asn["products"]
        for member in product["members"]
        if member.get("exptype", "science").lower() == "science"
    ]
    if not members:
        raise SossInputError(
            f"Association {path} has no science members; list the segments as science "
            "members (asn_from_list does)."
        )
    return members, [product["name"] for product in asn["products"]]


#: What every segment of one exposure shares: FITS keyword, and where the
#: datamodel keeps it.
SEGMENT_IDENTITY = (
    ("PROGRAM", "observation.program_number"),
    ("OBSERVTN", "observation.observation_number"),
    ("VISIT", "observation.visit_number"),
    ("EXPOSURE", "observation.exposure_number"),
    ("TARGNAME", "target.catalog_name"),
    ("FILTER", "instrument.filter"),
    ("PUPIL", "instrument.pupil"),
    ("SUBARRAY", "subarray.name"),
    ("READPATT", "exposure.readpatt"),
    ("NGROUPS", "exposure.ngroups"),
    ("NINTS", "exposure.nints"),
    ("PWCPOS", "instrument.pupil_position"),
)


def meta_value(model, path):
    """``model.meta`` at a dotted ``path`` (``"instrument.filter"``), or None if unset."""
    value = model.meta
    for name in path.split("."):
        value = getattr(value, name, None)
        if value is None:
            return None
    return value


def check_continues(previous_info, model):
    """Raise unless ``model`` is the segment that follows ``previous_info``.

    Both must be of one exposure (`SEGMENT_IDENTITY`), and ``model`` must
    start where the previous segment ended.
    """
    previous = previous_info.model
    for keyword, path in SEGMENT_IDENTITY:
        a, b = meta_value(model, path), meta_value(previous, path)
        if a != b:
            raise SossInputError(
                f"Segments are not of one exposure: {keyword} is {a!r} in "
                f"{model.meta.filename} but {b!r} in {previous.meta.filename}. Give the "
                "segments of one exposure (one program, observation, visit and exposure)."
            )
    start = int_start(model)
    expected = int_start(previous) + previous_info.stop - previous_info.start
    if start != expected:
        problem = "overlap" if start < expected else "a gap (missing segment?)"
        raise SossInputError(
            f"{model.meta.filename} starts at integration {start} but the previous "
            f"segment ended at {expected - 1}: {problem}. Give all segments of "
            "the exposure, each once."
        )


def empty_integrations(data, dq):
    """Integrations of a cube without a single usable science pixel.

    Usable: finite and not flagged DO_NOT_USE. An integration lost in
    transfer (all NaN) and one saturated beyond use (every slope flagged by
    ramp fitting) are both empty.

    Parameters
    ----------
    data : ndarray (nints, ny, nx)
    dq : ndarray (nints, ny, nx)

    Returns
    -------
    ndarray of bool (nints,)
    """
    return ~usable(data, dq).any(axis=(1, 2))


def check_integrations(model):
    """Warn about the integrations of ``model`` that hold no usable science pixel.

    They are flagged, not fatal (`flag_empty_integrations`); too many of them
    raise `SossInputError`.

    Parameters
    ----------
    model : CubeModel

    Returns
    -------
    ndarray of bool (nints,)
        The empty integrations.
    """
    empty = empty_integrations(model.data, model.dq)
    flag_empty_integrations(empty, int_start(model), model.meta.filename)
    return empty


def flag_empty_integrations(empty, first, name):
    """Log the integrations flagged in ``empty``; refuse if too few others remain.

    Real exposures lose whole integrations (data-transfer losses, a
    saturating event); such an integration is left out of the reduction (its
    pixels DO_NOT_USE, its spectra NaN, masked in the light curves) rather
    than costing the observer the exposure. Only when fewer than
    `~jwst_soss_custom.metadata.MIN_USABLE_FRACTION` of the integrations hold
    data is the exposure refused.

    Parameters
    ----------
    empty : ndarray of bool (nints,)
        Integrations without a finite science pixel.
    first : int
        Integration number of the first entry.
    name : str
        File (or exposure) named in the messages.

    Returns
    -------
    list of int
        The integration numbers flagged.
    """
    numbers = (np.flatnonzero(empty) + first).tolist()
    if not numbers:
        return numbers
    shown = number_list(numbers)
    usable = empty.size - len(numbers)
    if too_few_usable(usable, empty.size):
        raise SossInputError(
            f"{name}: {len(numbers)} of {empty.size} integration(s) have no usable pixel "
            f"(integration numbers {shown}); only {usable} hold data, too few for a "
            "baseline. Check the Detector1 processing of those integrations."
        )
    log.warning(
        "%s: %d integration(s) have no usable pixel (integration numbers %s; all NaN or "
        "DO_NOT_USE: lost, or saturated beyond use); they are "
        "flagged DO_NOT_USE and left out (NaN spectra, masked in the light curves).",
        name, len(numbers), shown,
    )
    return numbers
