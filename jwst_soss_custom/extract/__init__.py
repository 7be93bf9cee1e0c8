"""Spectral extraction."""

from .extract_step import SossExtractStep

__all__ = ["SossExtractStep"]
