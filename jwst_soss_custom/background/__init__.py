"""Scaled background-template subtraction."""

from .background_step import SossBackgroundStep

__all__ = ["SossBackgroundStep"]
