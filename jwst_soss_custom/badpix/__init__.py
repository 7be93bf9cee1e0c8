"""Bad-pixel replacement."""

from .badpix_step import SossBadpixStep

__all__ = ["SossBadpixStep"]
