"""Packaged default references (used when no ``override_<reftype>`` is given)."""

from importlib.resources import files

__all__ = ["default_background_path", "DATA_DIR"]

#: Folder of the package data (see its README for origin and licences).
DATA_DIR = files("jwst_soss_custom") / "data"


def default_background_path():
    """Path of the packaged SUBSTRIP256 zodiacal background template.

    Returns
    -------
    pathlib.Path
    """
    return DATA_DIR / "soss_background_substrip256.npz"
