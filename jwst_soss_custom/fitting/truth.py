"""What a simulated exposure injected, in the terms of the fit products.

The simulator (`jwst_soss_custom.datasets`) draws one batman light curve per
detector column, each with its own Rp/R* and limb darkening; a white light or
a spectroscopic channel is the flux-weighted sum of its columns. These
helpers turn the simulator's truth (`~jwst_soss_custom.datasets.load_truth`)
into the quantities the fits report, for injection-and-recovery tests and
benchmarks.
"""

import numpy as np

__all__ = ["injected_channel_depths", "injected_white_light", "injected_orbit"]


def _columns(truth, order, low, high, inclusive=False):
    o = truth[f"order{order}"]
    wave = o["wavelength"]
    inside = (wave >= low) & ((wave <= high) if inclusive else (wave < high))
    return o, inside


def _weighted_depth(o, inside, key="depth"):
    """Flux-weighted mean injected depth (ppm) of the selected columns.

    ``key="depth_diluted"`` gives the depth the field stars' light leaves
    (truth format 2).
    """
    weights = o["column_flux"][inside]
    return float(1e6 * np.sum(weights * o[key][inside]) / np.sum(weights))


def injected_white_light(truth, order=1, wave_range=(0.85, 2.83), key="depth"):
    """Noiseless white light and its depth, summed as ``soss_tso3`` sums columns.

    Parameters
    ----------
    truth : dict
        Simulator truth.
    order : int
        Spectral order.
    wave_range : (float, float)
        Inclusive wavelength range (micron), as the ``whtlt`` range.
    key : str
        ``"depth"`` (injected) or ``"depth_diluted"`` (as diluted by
        field-star light).

    Returns
    -------
    flux : ndarray
        Relative flux at the integrations' mid-times (1 out of transit).
    depth_ppm : float
        Flux-weighted mean of the columns' injected depths (ppm).
    """
    o, inside = _columns(truth, order, *wave_range, inclusive=True)
    weights = o["column_flux"][inside]
    flux = o["light_curves"][:, inside].astype(float) @ weights / weights.sum()
    return flux, _weighted_depth(o, inside, key)


def injected_channel_depths(truth, order, wave_low, wave_high, key="depth"):
    """Flux-weighted injected depth (ppm) of the columns inside each channel.

    Parameters
    ----------
    truth, order
        As for `injected_white_light`.
    wave_low, wave_high : array_like
        Channel edges (micron); a column belongs to ``[low, high)``.
    key : str
        As for `injected_white_light`.

    Returns
    -------
    ndarray
    """
    edges = zip(np.asarray(wave_low, float), np.asarray(wave_high, float), strict=True)
    return np.array([_weighted_depth(*_columns(truth, order, low, high), key)
                     for low, high in edges])


def injected_orbit(truth):
    """The injected ``t0``, ``a_rs``, ``b`` and ``period`` (the fits' parameters)."""
    transit = truth["transit"]
    return {
        "t0": float(transit["t0"]),
        "a_rs": float(transit["a_rs"]),
        "b": float(transit["a_rs"] * np.cos(np.radians(transit["inc"]))),
        "period": float(transit["period"]),
    }
