"""Packaged default references (used when no ``override_<reftype>`` is given)."""

from jwst_soss_custom._base.data import data_path

__all__ = ["default_background_path", "BACKGROUND_FILE"]

#: The packaged SUBSTRIP256 zodiacal background template.
BACKGROUND_FILE = "soss_background_substrip256.npz"


def default_background_path():
    """Path of the packaged SUBSTRIP256 zodiacal background template.

    Returns
    -------
    pathlib.Path
    """
    return data_path(BACKGROUND_FILE)
