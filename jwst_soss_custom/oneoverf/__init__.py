"""Column-wise 1/f noise removal."""

from .groups_step import SossOneOverFGroupsStep
from .oneoverf_step import SossOneOverFStep

__all__ = ["SossOneOverFGroupsStep", "SossOneOverFStep"]
