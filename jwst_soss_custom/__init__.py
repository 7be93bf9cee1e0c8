"""NIRISS/SOSS time-series reduction as stpipe Steps and Pipelines."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("jwst_soss_custom")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

from jwst_soss_custom._base.errors import SossInputError

__all__ = ["__version__", "SossInputError"]
