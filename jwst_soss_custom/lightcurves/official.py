"""Run jwst's own ``white_light`` with our wavelength ranges, for comparison.

For NIS_SOSS, jwst's `~jwst.white_light.WhiteLightStep` takes its per-order
ranges from a ``wavelengthrange`` reference file. Offline that file must be
given as ``override_wavelengthrange``: `write_wavelengthrange` writes one
from a dict of ranges, and `official_white_light` runs the official step with
it so that its fluxes can be compared with ``soss_lightcurves``' column by
column.

jwst 3.0's ``white_light`` applies the first order's range to every order of
a model (the range looked up for the first spectrum is kept for the next
ones), so `official_white_light` runs the step on one order at a time.
"""

import logging
import tempfile
from pathlib import Path

import numpy as np
from astropy.table import QTable
from stdatamodels.jwst import datamodels

from jwst_soss_custom._base.atomic import atomic_path
from jwst_soss_custom.lightcurves.stitching import copy_spec

__all__ = ["write_wavelengthrange", "official_white_light"]

log = logging.getLogger(__name__)


def write_wavelengthrange(path, limits, filters=("CLEAR",)):
    """Write a ``wavelengthrange`` reference file for jwst's white_light (NIS_SOSS).

    Parameters
    ----------
    path : str or Path
        Output ASDF file.
    limits : dict of int to (float, float)
        Inclusive ``[min, max]`` wavelength (micron) per spectral order, e.g.
        `~jwst_soss_custom.lightcurves.DEFAULT_WAVE_RANGES`.
    filters : str or sequence of str
        Filter(s) the ranges apply to (``CLEAR`` for SOSS science, ``F277W``).

    Returns
    -------
    Path
        ``path``.
    """
    if isinstance(filters, str):
        filters = (filters,)
    rows = [
        [int(order), str(filt), float(lo), float(hi)]
        for filt in filters
        for order, (lo, hi) in sorted(limits.items())
    ]
    model = datamodels.WavelengthrangeModel()
    model.meta.instrument.name = "NIRISS"
    model.meta.exposure.type = "NIS_SOSS"
    model.meta.reftype = "wavelengthrange"
    model.meta.author = "jwst_soss_custom"
    model.meta.pedigree = "DUMMY"
    model.meta.useafter = "2022-01-01T00:00:00"
    model.meta.description = "White-light wavelength ranges per order (jwst_soss_custom)"
    model.waverange_selector = list(filters)
    model.order = sorted(int(o) for o in limits)
    model.wavelengthrange = rows
    path = Path(path)
    with atomic_path(path) as temporary:
        model.save(temporary)
    model.close()
    return path


def official_white_light(x1dints, limits, workdir=None):
    """White light of each order computed by jwst's `~jwst.white_light.WhiteLightStep`.

    Parameters
    ----------
    x1dints : str, Path or `~stdatamodels.jwst.datamodels.TSOMultiSpecModel`
        Product with one spectrum per order (e.g. the stitched x1dints).
    limits : dict of int to (float, float)
        Wavelength range per order (micron).
    workdir : str, Path or None
        Where to write the wavelengthrange file (a temporary directory if
        None).

    Returns
    -------
    `~astropy.table.QTable`
        ``MJD_UTC``, ``BJD_TDB`` and ``whitelight_flux_order_N`` (or
        ``whitelight_flux`` for one order), as the official step names them.
    """
    from jwst.white_light import WhiteLightStep

    model = x1dints if isinstance(x1dints, datamodels.JwstDataModel) else datamodels.open(x1dints)
    try:
        specs = [s for s in model.spec if int(s.spectral_order) in limits]
        with tempfile.TemporaryDirectory() as tmp:
            ref = write_wavelengthrange(Path(workdir or tmp) / "wavelengthrange.asdf", limits)
            result = None
            for spec in specs:
                order = int(spec.spectral_order)
                single = datamodels.TSOMultiSpecModel()
                single.update(model)
                # A copy: the official step writes NaN into repeated MJD-AVG in place.
                single.spec.append(copy_spec(spec))
                # An instance, not .call(): no CRDS parameter-reference lookup offline.
                step = WhiteLightStep(override_wavelengthrange=str(ref))
                table = step.run(single)
                single.close()
                name = f"whitelight_flux_order_{order}" if len(specs) > 1 else "whitelight_flux"
                if result is None:
                    result = QTable(table, copy=False)
                    result.rename_column("whitelight_flux", name)
                else:
                    if not np.array_equal(table["MJD_UTC"], result["MJD_UTC"]):
                        raise ValueError(f"Order {order} has different integrations.")
                    result[name] = table["whitelight_flux"]
    finally:
        if model is not x1dints:
            model.close()
    return result
