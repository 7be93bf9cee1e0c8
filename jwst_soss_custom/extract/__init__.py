"""Spectral extraction, and the optional flux calibration of the extracted spectra."""

from .extract_step import SossExtractStep
from .photom_step import SossPhotomStep

__all__ = ["SossExtractStep", "SossPhotomStep"]
