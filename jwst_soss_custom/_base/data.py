"""Package data: the one way to find a packaged file, and the order-3 trace.

The files live in ``jwst_soss_custom/data/`` (origin and licence of each in
its README); the derived ones are made by ``tools/calibrate.py`` from real
SOSS data.
"""

import functools
from importlib.resources import as_file, files
from pathlib import Path

import numpy as np

__all__ = ["WASP39_SPECTRUM_FILE", "data_dir", "data_path", "read_columns", "load_throughput", "order3_model", "order3_centre"]

#: The published WASP-39b NIRISS transmission spectrum (Radica et al., in
#: Feinstein et al. 2023) the simulator injects and soss_fit draws for WASP-39.
WASP39_SPECTRUM_FILE = "MCR-WASP_39b_NIRISS_transmission_spectrum.csv"

#: Order throughputs and the order-3 trace, summarised from the SPECTRACE reference.
THROUGHPUT_FILE = "soss_spectrace_summary.ecsv"


def data_dir():
    """The folder of the package data.

    Returns
    -------
    pathlib.Path
    """
    return Path(str(files("jwst_soss_custom") / "data"))


def data_path(name):
    """Path of a packaged data file.

    Parameters
    ----------
    name : str
        File name inside ``jwst_soss_custom/data``.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    FileNotFoundError
        If the file is not in the installed package.
    """
    resource = files("jwst_soss_custom") / "data" / name
    with as_file(resource) as path:
        if not path.exists():
            raise FileNotFoundError(
                f"Packaged data file {name} is missing from {path.parent}; reinstall "
                "the package (pip install jwst_soss_custom)."
            )
        return path


def read_columns(path):
    """Columns of a packaged ECSV table, read quickly with numpy (read-only arrays).

    astropy's ECSV reader is pure Python and takes a quarter second per
    table; the packaged tables are plain space-separated numbers under a
    ``#`` header, so numpy reads them directly.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    dict of str to ndarray
    """
    with open(path) as handle:
        for skip, line in enumerate(handle, start=1):
            if not line.startswith("#"):
                names = line.split()
                break
    data = np.loadtxt(path, skiprows=skip, ndmin=2)
    columns = {}
    for k, name in enumerate(names):
        column = np.ascontiguousarray(data[:, k])
        column.setflags(write=False)
        columns[name] = column
    return columns


@functools.lru_cache(maxsize=1)
def load_throughput():
    """Order throughputs and the order-3 trace, from the SPECTRACE reference.

    Returns
    -------
    dict of str to ndarray
        ``wavelength`` (micron), ``throughput_1``, ``throughput_2``,
        ``throughput_3``, ``x_3``, ``y_3`` (order-3 trace, pixels) and the
        empirical corrections ``scale_1``, ``scale_2``, ``scale_3``.
    """
    return read_columns(data_path(THROUGHPUT_FILE))


@functools.lru_cache(maxsize=1)
def order3_model():
    """The order-3 trace: column, row and wavelength samples, column increasing.

    pastasoss has no order 3; the SPECTRACE reference gives it at the
    reference pupil-wheel position (no PWCPOS dependence).

    Returns
    -------
    x, y, wavelength : ndarray (read-only)
    """
    table = load_throughput()
    keep = np.asarray(table["throughput_3"]) > 0
    x, y, wave = (np.asarray(table[k], float)[keep] for k in ("x_3", "y_3", "wavelength"))
    order = np.argsort(x)
    samples = tuple(np.ascontiguousarray(a[order]) for a in (x, y, wave))
    for array in samples:
        array.setflags(write=False)
    return samples


def order3_centre(nx):
    """Order-3 trace centre row per detector column (NaN where the order is absent).

    Parameters
    ----------
    nx : int
        Columns of the frame.

    Returns
    -------
    ndarray (nx,)
    """
    x, y, _ = order3_model()
    return np.interp(np.arange(nx), x, y, left=np.nan, right=np.nan)
