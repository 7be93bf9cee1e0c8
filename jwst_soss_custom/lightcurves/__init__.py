"""Stage 3 light curves: stitching segments, white light, spectroscopic bins.

The numerical cores (`binning`, `whitelight`, `baseline`, `clipping`,
`precision`) are pure numpy; `stitching` and `tables` adapt ``x1dints``
datamodels to them; `SossLightCurvesStep` (alias ``soss_lightcurves``) is
the thin stpipe step. `write_wavelengthrange` and `official_white_light`
reproduce jwst's own white light for comparison.
"""

from jwst_soss_custom.lightcurves.baseline import resolve_baseline
from jwst_soss_custom.lightcurves.binning import (
    Binning,
    ColumnBins,
    bin_columns,
    column_edges,
    make_column_bins,
    make_wavelength_bins,
    resolution_edges,
)
from jwst_soss_custom.lightcurves.clipping import time_outliers
from jwst_soss_custom.lightcurves.lightcurves_step import SossLightCurvesStep
from jwst_soss_custom.lightcurves.official import official_white_light, write_wavelengthrange
from jwst_soss_custom.lightcurves.orders import read_bin_edges
from jwst_soss_custom.lightcurves.stitching import stitch_x1dints
from jwst_soss_custom.lightcurves.tables import (
    DEFAULT_WAVE_RANGES,
    LightCurves,
    make_light_curves,
    speclc_table,
    whitelight_table,
)
from jwst_soss_custom.lightcurves.whitelight import normalise, white_light_sums

__all__ = [
    "DEFAULT_WAVE_RANGES",
    "Binning",
    "ColumnBins",
    "LightCurves",
    "SossLightCurvesStep",
    "bin_columns",
    "column_edges",
    "make_column_bins",
    "make_light_curves",
    "make_wavelength_bins",
    "normalise",
    "official_white_light",
    "read_bin_edges",
    "resolution_edges",
    "resolve_baseline",
    "speclc_table",
    "stitch_x1dints",
    "time_outliers",
    "white_light_sums",
    "whitelight_table",
    "write_wavelengthrange",
]
