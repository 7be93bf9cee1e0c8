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
from asdf.tags.core import NDArrayType
from asdf.treeutil import walk_and_modify
from stdatamodels.jwst import datamodels

log = logging.getLogger(__name__)

__all__ = [
    "SossInputError",
    "SegmentInfo",
    "apply_segment_identity",
    "inherit_metadata",
    "PWCPOS_RANGE",
    "SUBSTRIP256_SHAPE",
    "check_integrations",
    "check_soss_model",
    "refuse_empty_integrations",
    "load_exposure",
    "read_association",
]

#: Pupil-wheel positions over which pastasoss's trace model is calibrated.
PWCPOS_RANGE = (245.656, 245.923)
#: Detector shape (rows, columns) of the SUBSTRIP256 subarray.
SUBSTRIP256_SHAPE = (256, 2048)


class SossInputError(ValueError):
    """Input that the package cannot process; the message names the fix."""


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


def check_soss_model(model, *, require_pwcpos=True):
    """Raise `SossInputError` unless ``model`` is a SUBSTRIP256 SOSS time series.

    Parameters
    ----------
    model : `~stdatamodels.jwst.datamodels.JwstDataModel`
        The input model (rateints, calints or x1dints).
    require_pwcpos : bool
        Whether the pupil-wheel position (PWCPOS) must be present and within
        the range pastasoss supports.
    """
    name = model.meta.filename or "input"
    exp_type = model.meta.exposure.type
    if exp_type != "NIS_SOSS":
        raise SossInputError(
            f"{name}: EXP_TYPE is {exp_type!r}, but this package reduces NIRISS/SOSS "
            "time series (EXP_TYPE='NIS_SOSS'). Give a NIS_SOSS rateints file."
        )
    subarray = model.meta.subarray.name
    if subarray != "SUBSTRIP256":
        raise SossInputError(
            f"{name}: SUBARRAY is {subarray!r}; only SUBSTRIP256 is supported "
            "(SUBSTRIP96 and FULL are not: they cut or change the order 2 geometry)."
        )
    data = getattr(model, "data", None)
    if data is not None and data.ndim == 3 and data.shape[1:] != SUBSTRIP256_SHAPE:
        raise SossInputError(
            f"{name}: data shape {data.shape[1:]} does not match SUBSTRIP256 "
            f"{SUBSTRIP256_SHAPE}."
        )
    if data is not None and data.ndim != 3:
        raise SossInputError(
            f"{name}: expected a 3-D rateints/calints cube (nints, 256, 2048), got "
            f"{data.ndim} dimensions; give the *_rateints.fits product, not *_rate.fits."
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


def int_start(model):
    """First integration number of a segment or cube (1 when the header has none)."""
    start = model.meta.exposure.integration_start
    return 1 if start is None else start


def load_exposure(inputs):
    """Open, check and stack the segments of one exposure into one cube.

    Only SCI, ERR and DQ are read, straight into the stacked arrays
    (`~jwst_soss_custom.source.ExposureSource`), so the peak memory is the
    stacked cube whatever the number of segments.

    Parameters
    ----------
    inputs : str, Path, CubeModel, or sequence of them
        A rateints/calints file, a level-2 association (``.json``) of the
        segments, a list of files, or a list of models (models are not
        modified).

    Returns
    -------
    stacked : `~stdatamodels.jwst.datamodels.CubeModel`
        Every integration in time order (float32 SCI/ERR, uint32 DQ), the
        concatenated ``int_times`` table, and the metadata of the first segment
        with ``integration_start``/``integration_end`` spanning all segments.
    segments : list of `SegmentInfo`
        Each segment's metadata and rows in ``stacked``, in time order.

    Raises
    ------
    SossInputError
        If a segment is not a SUBSTRIP256 SOSS time series, if the segments are
        of different exposures or shapes, or if integrations overlap or are
        missing between them.
    """
    from jwst_soss_custom.source import ExposureSource

    source = ExposureSource(inputs)
    return source.cube(), source.segments


def check_continues(previous_info, model):
    """Raise unless ``model`` is the segment that follows ``previous_info``."""
    previous = previous_info.model
    for attr in ("nints", "ngroups"):
        a, b = getattr(model.meta.exposure, attr), getattr(previous.meta.exposure, attr)
        if a != b:
            raise SossInputError(
                f"Segments are not of one exposure: {attr} is {a} in "
                f"{model.meta.filename} but {b} in {previous.meta.filename}."
            )
    if model.meta.instrument.pupil_position != previous.meta.instrument.pupil_position:
        raise SossInputError(
            f"Segments are not of one exposure: PWCPOS differs between "
            f"{previous.meta.filename} and {model.meta.filename}."
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


#: Model attributes this package adds (documented in docs/products.md).
SOSS_ATTRIBUTES = (
    "soss_traces",
    "soss_background",
    "soss_badpix",
    "soss_regressors",
    "soss_order0_mask",
    "soss_extraction",
)


def inherit_metadata(target, source):
    """Copy metadata from ``source`` to ``target``, including this package's own.

    `DataModel.update` copies only schema-defined metadata, so the
    ``meta.cal_step.soss_*`` statuses and the `SOSS_ATTRIBUTES` would be lost
    between a cube and the products made from it. The attributes' arrays
    are read from ``source`` now: read from a file they are left unread
    until used, and the target may be saved after ``source`` is closed.

    Parameters
    ----------
    target, source : JwstDataModel
    """
    target.update(source)
    for key, value in source.meta.cal_step.instance.items():
        if key.startswith("soss_"):
            setattr(target.meta.cal_step, key, value)
    for attr in SOSS_ATTRIBUTES:
        value = getattr(source, attr, None)
        if value is not None:
            setattr(target, attr, walk_and_modify(getattr(value, "instance", value), _read))


def _read(node):
    """An ASDF array not read yet from its file, read; any other node as it is."""
    return np.asarray(node) if isinstance(node, NDArrayType) else node


def apply_segment_identity(model, segment):
    """Give a product made from the stacked exposure the identity of one segment.

    Copies the segment's file name, segment number, integration range and
    ``int_times`` table; everything else (what the reduction recorded) stays.

    Parameters
    ----------
    model : JwstDataModel
        Product holding the segment's rows; modified in place.
    segment : CubeModel
        The input segment.
    """
    exposure = segment.meta.exposure
    model.meta.exposure.segment_number = exposure.segment_number
    model.meta.exposure.integration_start = exposure.integration_start
    model.meta.exposure.integration_end = exposure.integration_end
    model.meta.filename = segment.meta.filename
    if has_int_times(segment):
        model.int_times = segment.int_times


def has_int_times(model):
    """Whether a model carries a non-empty ``int_times`` table."""
    table = getattr(model, "int_times", None)
    return table is not None and len(table) > 0


def integration_times(model):
    """Mid-integration times of every row of a cube, from its ``int_times`` table.

    Parameters
    ----------
    model : CubeModel
        A (possibly stacked) rateints/calints model.

    Returns
    -------
    dict of str to ndarray
        Keys ``MJD-BEG``, ``MJD-AVG``, ``MJD-END``, ``TDB-BEG``, ``TDB-MID``,
        ``TDB-END`` and ``INT_NUM``; times are NaN where the table has no row
        for an integration.
    """
    nint = model.data.shape[0]
    start = int_start(model)
    int_num = np.arange(start, start + nint)
    out = {key: np.full(nint, np.nan) for key in _TIME_COLUMNS}
    out["INT_NUM"] = int_num.astype(np.int32)
    if not has_int_times(model):
        log.warning("No INT_TIMES table: the products' time columns will be NaN.")
        return out
    table = np.asarray(model.int_times)
    rows = {n: i for i, n in enumerate(table["integration_number"])}
    idx = np.array([rows.get(n, -1) for n in int_num])
    have = idx >= 0
    for key, column in _TIME_COLUMNS.items():
        out[key][have] = table[column][idx[have]]
    return out


_TIME_COLUMNS = {
    "MJD-BEG": "int_start_MJD_UTC",
    "MJD-AVG": "int_mid_MJD_UTC",
    "MJD-END": "int_end_MJD_UTC",
    "TDB-BEG": "int_start_BJD_TDB",
    "TDB-MID": "int_mid_BJD_TDB",
    "TDB-END": "int_end_BJD_TDB",
}


def check_integrations(model):
    """Raise `SossInputError` if any integration holds no finite science pixel.

    Such integrations (e.g. from a failed ramp fit) would silently become NaN or
    zero flux in the light curves.

    Parameters
    ----------
    model : CubeModel
    """
    refuse_empty_integrations(
        ~np.isfinite(model.data).any(axis=(1, 2)), int_start(model), model.meta.filename
    )


def refuse_empty_integrations(empty, first, name):
    """Raise `SossInputError` naming the integrations flagged in ``empty``, if any.

    Parameters
    ----------
    empty : ndarray of bool (nints,)
        Integrations without a finite science pixel.
    first : int
        Integration number of the first entry.
    name : str
        File (or exposure) named in the message.
    """
    if empty.any():
        numbers = (np.flatnonzero(empty) + first).tolist()
        shown = ", ".join(map(str, numbers[:10])) + (" ..." if len(numbers) > 10 else "")
        raise SossInputError(
            f"{name}: {len(numbers)} integration(s) have no finite pixel "
            f"(integration numbers {shown}). Check the Detector1 processing of those "
            "integrations, or remove them from the rateints before reducing."
        )
