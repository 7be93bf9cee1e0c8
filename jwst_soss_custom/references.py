"""Packaged default references, and the image files a user gives instead."""

import pickle
import warnings
import zipfile
from pathlib import Path

import numpy as np

from jwst_soss_custom._base.data import data_path
from jwst_soss_custom._base.errors import SossInputError

__all__ = ["default_background_path", "read_image_arrays", "BACKGROUND_FILE"]

#: The packaged SUBSTRIP256 zodiacal background template.
BACKGROUND_FILE = "soss_background_substrip256.npz"

#: What numpy and astropy raise for a file that is not what its name says
#: (pickled or text data in a .npy, a truncated or empty FITS file, ...).
_UNREADABLE = (ValueError, OSError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile)


def default_background_path():
    """Path of the packaged SUBSTRIP256 zodiacal background template.

    Returns
    -------
    pathlib.Path
    """
    return data_path(BACKGROUND_FILE)


def read_image_arrays(path, what):
    """The image arrays of a user's ``.npy``, ``.npz`` or FITS file.

    Parameters
    ----------
    path : str or Path
    what : str
        The parameter that named the file (``override_bkg``, ``mask_file``),
        for the messages.

    Returns
    -------
    list of (str, ndarray)
        ``("", array)`` for a ``.npy``; each array of a ``.npz`` by name;
        every HDU of a FITS file that holds an image, in order, by EXTNAME
        (``PRIMARY`` for the primary).

    Raises
    ------
    SossInputError
        If the file is missing, of an unknown kind, or not readable as what
        its name says; the message names the file and the fix.
    """
    path = Path(path)
    if not path.is_file():
        raise SossInputError(
            f"{what} {path} does not exist; give an existing .npy, .npz or FITS file."
        )
    name = path.name.lower()
    kind = next((k for k in (".npy", ".npz", ".fits", ".fit", ".fits.gz") if name.endswith(k)),
                None)
    if kind is None:
        raise SossInputError(
            f"{what} {path}: unknown format {path.suffix!r}; give a .npy, .npz or FITS file."
        )
    try:
        if kind == ".npy":
            return [("", np.load(path))]
        if kind == ".npz":
            with np.load(path) as archive:
                return [(key, archive[key]) for key in archive.files]
        from astropy.io import fits

        # Our own handle: astropy leaves its own open when the file is cut
        # short, and only warns that it was.
        with warnings.catch_warnings():
            warnings.filterwarnings("error", message="File may have been truncated")
            with open(path, "rb") as handle, fits.open(handle) as hdul:
                return [(h.name, np.array(h.data)) for h in hdul
                        if h.is_image and h.data is not None]
    except (*_UNREADABLE, UserWarning) as err:
        raise SossInputError(
            f"{what} {path} is not a readable {kind} file ({type(err).__name__}: {err}); "
            "give an array saved with numpy.save/savez or a FITS image."
        ) from None
