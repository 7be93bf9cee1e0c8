"""Realistic synthetic NIRISS/SOSS time-series exposures.

`simulate` writes ``rateints`` segments exactly like Detector1 leaves them,
with a scene calibrated on the real WASP-39 ERS data (traces from pastasoss,
the measured cross-dispersion profile, spectrum and zodiacal background,
field-star order 0s), a wavelength-dependent transit, and the detector
effects a reduction must handle (photon, read and 1/f noise, bad pixels,
cosmic rays, jitter). Every injected signal is saved in a truth file.

Examples
--------
>>> from jwst_soss_custom.datasets import simulate, load_truth
>>> result = simulate("out", preset="tiny", seed=0)            # doctest: +SKIP
>>> truth = load_truth(result.truth_file)                      # doctest: +SKIP
>>> truth["order1"]["white_light"].shape                       # doctest: +SKIP
(30,)
"""

from jwst_soss_custom.datasets.config import NO_SYSTEMATICS, PRESETS, SimConfig, make_config
from jwst_soss_custom.datasets.reference import default_background_template
from jwst_soss_custom.datasets.simulate import SimResult, simulate
from jwst_soss_custom.datasets.writer import load_truth

__all__ = [
    "simulate",
    "load_truth",
    "PRESETS",
    "NO_SYSTEMATICS",
    "SimConfig",
    "SimResult",
    "make_config",
    "default_background_template",
]
