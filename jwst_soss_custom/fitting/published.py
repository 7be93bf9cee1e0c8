"""The published WASP-39b NIRISS/SOSS transmission spectra, read beside ours.

Feinstein et al. (2023, Nature 614, 670) published the spectra of six
independent reductions of the ERS transit (program 1366) in
github.com/afeinstein20/wasp39b_niriss_paper (``data/ts/``; MIT licence,
(c) 2022 Adina Feinstein). The files differ in small ways (comment headers,
comma or blank separators, a Latin-1 character, ``order`` as 1.0, no
``quality`` column in the high-resolution files); `load_published_spectra`
reads them all into one table layout. Keep the attribution with any figure
made from them.
"""

import csv
from pathlib import Path

import numpy as np
from astropy.io import ascii as astropy_ascii
from astropy.table import Table

__all__ = ["ATTRIBUTION", "load_published_spectra", "read_published_spectrum",
           "reference_spectrum"]

#: Credit line for the public spectra (keep it with figures and copies).
ATTRIBUTION = (
    "WASP-39b NIRISS spectra: Feinstein et al. 2023 (Nature 614, 670), "
    "github.com/afeinstein20/wasp39b_niriss_paper (MIT, (c) 2022 Adina Feinstein)"
)

COLUMNS = ("wave", "wave_error", "dppm", "dppm_err", "order", "quality")


def read_published_spectrum(path):
    """One published spectrum file as a table with the common columns.

    Parameters
    ----------
    path : str or Path
        A ``*-WASP_39b_NIRISS_transmission_spectrum*`` file (CSV or
        blank-separated text, ``#`` comments).

    Returns
    -------
    `~astropy.table.Table`
        ``wave``, ``wave_error`` (micron), ``dppm``, ``dppm_err`` (ppm),
        ``order`` (int), ``quality`` (int, 0 = good; 0 when the file has
        none), sorted by order then wavelength; ``meta["file"]`` and
        ``meta["attribution"]``.
    """
    path = Path(path)
    # One file's header names its pipeline with a Latin-1 apostrophe.
    lines = [
        line for line in path.read_text(encoding="latin-1").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]  # fmt: skip
    if not lines:
        raise ValueError(f"{path}: no data rows.")
    delimiter = "," if "," in lines[0] else None
    table = astropy_ascii.read(lines, format="basic", delimiter=delimiter or " ",
                               guess=False)  # fmt: skip
    missing = [c for c in COLUMNS[:5] if c not in table.colnames]
    if missing:
        raise ValueError(
            f"{path}: columns {missing} missing; expected {', '.join(COLUMNS)} "
            "(the Feinstein et al. 2023 layout)."
        )
    out = Table()
    for name in COLUMNS[:4]:
        out[name] = np.asarray(table[name], dtype=float)
    out["order"] = np.rint(np.asarray(table["order"], dtype=float)).astype(int)
    quality = table["quality"] if "quality" in table.colnames else np.zeros(len(table))
    out["quality"] = np.asarray(quality, dtype=float).astype(int)
    out["wave"].unit = out["wave_error"].unit = "um"
    out.sort(["order", "wave"])
    out.meta.update(file=path.name, attribution=ATTRIBUTION)
    return out


def load_published_spectra(folder, kind="binned"):
    """Every reduction's published spectrum in ``folder``.

    Parameters
    ----------
    folder : str or Path
        The ``wasp39b_published_spectra`` folder (the paper's ``data/ts``).
    kind : {"binned", "highres"}
        ``binned``: each reduction's standard spectrum (``filename`` in
        ``pipelines.csv``); ``highres``: the native-resolution one
        (``HR_filename``). Without ``pipelines.csv``, the files named
        ``<ID>-WASP_39b_NIRISS_transmission_spectrum[_highres].*``.

    Returns
    -------
    dict of str to `~astropy.table.Table`
        Keyed by the reduction's initials (``ZR``, ``AT``, ``CMADF``,
        ``LPC``, ``NE``, ``MCR``); each table as `read_published_spectrum`
        gives it, with ``meta["reduction"]``, ``meta["pipeline"]`` and
        ``meta["color"]`` (the paper's colour) when ``pipelines.csv`` names
        them.
    """
    folder = Path(folder)
    if kind not in ("binned", "highres"):
        raise ValueError(f"kind={kind!r}: choose 'binned' or 'highres'.")
    if not folder.is_dir():
        raise FileNotFoundError(
            f"{folder} is not a folder: give the wasp39b_published_spectra folder "
            "(data/ts of github.com/afeinstein20/wasp39b_niriss_paper)."
        )
    entries = _catalogue(folder, kind)
    if not entries:
        raise FileNotFoundError(f"No WASP-39b NIRISS spectra in {folder}.")
    spectra = {}
    for initials, (path, pipeline, color) in entries.items():
        table = read_published_spectrum(path)
        table.meta.update(reduction=initials, pipeline=pipeline, color=color)
        spectra[initials] = table
    return spectra


def _catalogue(folder, kind):
    """(path, pipeline name, colour) per reduction, from pipelines.csv or the file names."""
    column = "filename" if kind == "binned" else "HR_filename"
    listing = folder / "pipelines.csv"
    entries = {}
    if listing.is_file():
        with listing.open(newline="", encoding="latin-1") as handle:
            for row in csv.DictReader(handle):
                name = (row.get(column) or "").strip()
                if not name:
                    continue
                path = folder / name
                if not path.is_file():
                    # The catalogue names one high-resolution file .csv; it is .txt.
                    found = sorted(folder.glob(f"{Path(name).stem}.*"))
                    if not found:
                        continue
                    path = found[0]
                entries[row["initials"]] = (path, row.get("name"), row.get("color"))
        return entries
    suffix = "_highres" if kind == "highres" else ""
    for path in sorted(folder.glob(f"*-WASP_39b_NIRISS_transmission_spectrum{suffix}.*")):
        entries[path.name.split("-", 1)[0]] = (path, None, None)
    return entries


def reference_spectrum(choice, target_name=None):
    """The spectrum to draw beside a reduction's, as ``(wave, depth, error, label)``.

    Parameters
    ----------
    choice : str or None
        ``"auto"``: the packaged published WASP-39b spectrum (Radica et al.'s
        reduction in Feinstein et al. 2023) when the target is WASP-39, else
        none; ``"none"`` or None: none; else a file in the layout of
        `read_published_spectrum`.
    target_name : str or None
        The reduction's target (table metadata).

    Returns
    -------
    tuple or None
        Quality-0 points only.
    """
    from jwst_soss_custom._base.data import WASP39_SPECTRUM_FILE, data_path

    if choice is None or str(choice).lower() == "none":
        return None
    if str(choice).lower() == "auto":
        name = str(target_name or "").upper().replace(" ", "").replace("_", "-")
        if not name.startswith("WASP-39"):
            return None
        path, label = data_path(WASP39_SPECTRUM_FILE), "published (Radica et al., Feinstein+ 2023)"
    else:
        path, label = Path(choice), Path(choice).name
    table = read_published_spectrum(path)
    good = table["quality"] == 0
    return (np.asarray(table["wave"][good]), np.asarray(table["dppm"][good]),
            np.asarray(table["dppm_err"][good]), label)
