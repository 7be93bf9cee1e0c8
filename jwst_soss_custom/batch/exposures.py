"""Input folders → exposures, grouped by their headers.

An exposure is every segment of one NIRISS/SOSS exposure at one level
(raw ramps, ``*_uncal.fits``, or Detector1 slopes, ``*_rateints.fits``).
Segments are grouped by the primary-header keywords that name an exposure in
the archive (program, observation, visit, visit group, sequence, activity,
exposure number, detector), not by their file names, so renamed files still
find each other. Only primary headers are read here: a file that is
truncated further on is found by the pipeline that reads it, and reported
as that exposure's failure.
"""

import logging
from dataclasses import dataclass, field
from pathlib import Path

from astropy.io import fits

log = logging.getLogger(__name__)

__all__ = ["Exposure", "find_exposures", "LEVELS"]

#: Input levels, by the file suffix that marks them, in the order a
#: reduction starts from them (raw ramps first: when both are given for one
#: exposure, Stage 1 is run on the ramps).
LEVELS = {"uncal": "_uncal.fits", "rateints": "_rateints.fits"}

#: Primary-header keywords that together name one exposure.
EXPOSURE_KEYS = ("PROGRAM", "OBSERVTN", "VISIT", "VISITGRP", "SEQ_ID", "ACT_ID",
                 "EXPOSURE", "DETECTOR")


@dataclass
class Exposure:
    """The segment files of one exposure at one level.

    Attributes
    ----------
    name : str
        Archive-style exposure name, e.g. ``jw01366001001_04101_00001_nis``
        (for a file whose header does not name its exposure: the file name).
    level : {"uncal", "rateints"}
        What the reduction starts from.
    files : list of Path
        The segments, in segment order.
    error : str or None
        Why the exposure cannot be reduced (a segment missing, a header
        unreadable); None when it can.
    ignored : list of Path
        Files of the exposure at a later level, not used because the
        reduction starts from an earlier one.
    """

    name: str
    level: str
    files: list
    error: str | None = None
    ignored: list = field(default_factory=list)


def _level(path):
    """The input level a file name marks, or None."""
    for level, suffix in LEVELS.items():
        if path.name.endswith(suffix):
            return level
    return None


def _exposure_name(header):
    """``jw<program><obs><visit>_<visitgrp><seq><act>_<exposure>_<detector>``, or None."""
    values = [header.get(key) for key in EXPOSURE_KEYS]
    if any(value is None or str(value).strip() == "" for value in values):
        return None
    program, obs, visit, group, seq, act, number, detector = (str(v).strip() for v in values)
    return (f"jw{program.zfill(5)}{obs.zfill(3)}{visit.zfill(3)}_{group.zfill(2)}{seq}"
            f"{act.zfill(2)}_{number.zfill(5)}_{detector.lower()}")


def _read_header(path):
    """Primary header of a FITS file, or the one-line reason it cannot be read."""
    try:
        return fits.getheader(path, 0), None
    except (OSError, ValueError, IndexError) as err:
        return None, (f"{path.name}: not a readable FITS file ({err}); give the archive "
                      "product or download it again.")


def _segments(name, level, members):
    """Order one exposure's segment files, or say which are missing or repeated."""
    numbers = {}
    totals = set()
    for path, header in members:
        number = header.get("EXSEGNUM")
        numbers.setdefault(number, []).append(path)
        totals.add(header.get("EXSEGTOT"))
    if len(members) == 1 and set(numbers) <= {None, 1} and totals <= {None, 1}:
        return [members[0][0]], None
    if None in numbers or None in totals or len(totals) != 1:
        return [], (f"{name}: its {level} segments lack consistent EXSEGNUM/EXSEGTOT "
                    "keywords; give the archive's segment files unchanged.")
    total = totals.pop()
    repeated = sorted(n for n, paths in numbers.items() if len(paths) > 1)
    if repeated:
        files = ", ".join(p.name for n in repeated for p in numbers[n])
        return [], (f"{name}: segment(s) {repeated} given more than once ({files}); "
                    "keep one copy of each segment in the input folders.")
    missing = sorted(set(range(1, total + 1)) - set(numbers))
    if missing:
        return [], (f"{name}: {level} segment(s) {missing} of {total} are missing; put all "
                    "segments of the exposure in the input folders.")
    return [numbers[n][0] for n in sorted(numbers)], None


def find_exposures(folders, recursive=False):
    """Every SOSS exposure in the input folders, grouped by header.

    Parameters
    ----------
    folders : iterable of str or Path
        Folders holding ``*_uncal.fits`` and/or ``*_rateints.fits`` segments
        (other files are not looked at).
    recursive : bool
        Also look in sub-folders.

    Returns
    -------
    list of `Exposure`
        Sorted by name. Files that are not NIRISS/SOSS exposures are left out
        (logged); files that cannot be grouped are exposures of their own with
        ``error`` set.

    Raises
    ------
    FileNotFoundError
        When a folder does not exist.
    """
    grouped = {}
    broken = []
    for folder in folders:
        folder = Path(folder)
        if not folder.is_dir():
            raise FileNotFoundError(f"Input folder {folder} does not exist.")
        pattern = "**/*.fits" if recursive else "*.fits"
        for path in sorted(folder.glob(pattern)):
            level = _level(path)
            if level is None:
                continue
            header, error = _read_header(path)
            if error:
                broken.append(Exposure(path.name, level, [path], error))
                continue
            if header.get("EXP_TYPE") != "NIS_SOSS":
                log.info("%s: EXP_TYPE %s is not NIS_SOSS; not reduced.", path.name,
                         header.get("EXP_TYPE"))
                continue
            name = _exposure_name(header)
            if name is None:
                missing = [k for k in EXPOSURE_KEYS if header.get(k) is None]
                broken.append(Exposure(path.name, level, [path], (
                    f"{path.name}: primary header lacks {', '.join(missing)}, which name its "
                    "exposure; give the archive product unchanged.")))
                continue
            grouped.setdefault(name, {}).setdefault(level, []).append((path.resolve(), header))
    exposures = []
    for name, levels in grouped.items():
        # Raw ramps when all their segments are given: the whole reduction,
        # Stage 1 included; else the first complete level (or the first one's
        # error, when none is complete).
        present = [lv for lv in LEVELS if lv in levels]
        checked = {lv: _segments(name, lv, levels[lv]) for lv in present}
        level = next((lv for lv in present if checked[lv][1] is None), present[0])
        files, error = checked[level]
        ignored = [p for lv, members in levels.items() if lv != level for p, _ in members]
        exposures.append(Exposure(name, level, files, error, ignored))
    return sorted(exposures + broken, key=lambda e: e.name)
