"""The package's input exception."""

__all__ = ["SossInputError"]


class SossInputError(ValueError):
    """Input that the package cannot process; the message names the fix."""
