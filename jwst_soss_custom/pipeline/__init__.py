"""The package's pipelines."""

from .soss_spec2 import SossSpec2Pipeline
from .soss_tso3 import SossTso3Pipeline

__all__ = ["SossSpec2Pipeline", "SossTso3Pipeline"]
