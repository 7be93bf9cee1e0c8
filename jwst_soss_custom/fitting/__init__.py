"""Transit fits of the Stage 3 light curves: white light, then spectroscopic channels.

`fit_light_curve` (pure numpy/scipy + batman) fits one light curve;
`fit_products` fits a ``whtlt``/``speclc`` pair and returns the
``fit_whitelight`` and ``transmission`` tables; `SossFitStep` (alias
``soss_fit``) is the thin stpipe step; `SossCombineStep` (``soss_combine``)
combines several visits' spectra (`combine_visits`); `load_published_spectra` reads the
published WASP-39b NIRISS spectra for comparison. See ``docs/fitting.md``.
"""

from jwst_soss_custom.fitting.fit import (
    FitInputError,
    FitResult,
    beta_factor,
    beta_threshold,
    fit_light_curve,
    residual_statistics,
)
from jwst_soss_custom.fitting.combine import combine_visits
from jwst_soss_custom.fitting.combine_step import SossCombineStep
from jwst_soss_custom.fitting.fitting_step import SossFitStep
from jwst_soss_custom.fitting.model import LightCurveModel, ld_from_q, q_from_ld
from jwst_soss_custom.fitting.posterior import McmcSettings, sample_posterior
from jwst_soss_custom.fitting.published import load_published_spectra
from jwst_soss_custom.fitting.tables import FitProducts, FitSettings, fit_products

__all__ = [
    "FitInputError",
    "FitProducts",
    "FitResult",
    "FitSettings",
    "LightCurveModel",
    "McmcSettings",
    "SossCombineStep",
    "SossFitStep",
    "beta_factor",
    "beta_threshold",
    "combine_visits",
    "fit_light_curve",
    "fit_products",
    "ld_from_q",
    "load_published_spectra",
    "q_from_ld",
    "residual_statistics",
    "sample_posterior",
]
