"""The package's pipelines.

Each pipeline is imported on first use: ``strun soss_spec2`` resolves
``jwst_soss_custom.pipeline.SossSpec2Pipeline`` and should not pay for
importing soss_tso3's light-curve fitting (scipy.stats, batman), nor the
reverse (~0.4-0.7 s of every run's start-up).
"""

import importlib

__all__ = ["SossDetector1Pipeline", "SossSpec2Pipeline", "SossTso3Pipeline"]

_MODULES = {
    "SossDetector1Pipeline": ".soss_detector1",
    "SossSpec2Pipeline": ".soss_spec2",
    "SossTso3Pipeline": ".soss_tso3",
}


def __getattr__(name):
    if name in _MODULES:
        return getattr(importlib.import_module(_MODULES[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
