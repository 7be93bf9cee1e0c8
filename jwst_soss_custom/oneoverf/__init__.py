"""Column-wise 1/f noise removal."""

from .oneoverf_step import SossOneOverFStep

__all__ = ["SossOneOverFStep"]
