"""Synthetic ``whtlt`` / ``speclc`` tables: batman transits plus Gaussian noise of known errors.

For tests and examples of the fits: every channel is drawn with exactly its
stated error, so the fitted uncertainties can be checked statistically.
"""

import numpy as np
from astropy.table import Table

from jwst_soss_custom.fitting.model import LightCurveModel, q_from_ld

__all__ = ["TRUTH", "synthetic_tables"]

#: Default injected orbit (WASP-39b-like, shortened period for a 6 h visit).
TRUTH = {"t0": 59787.0, "period": 4.0552941, "a_rs": 11.4, "b": 0.45, "u": (0.3, 0.2)}


def synthetic_tables(
    nints=300,
    nchannels=40,
    white_ppm=200.0,
    channel_ppm=2000.0,
    depth_ppm=None,
    visit_hours=8.0,
    slope=2e-4,
    seed=0,
    truth=None,
):
    """A white light and ``nchannels`` spectroscopic light curves of order 1.

    Returns
    -------
    whtlt, speclc : `~astropy.table.Table`
    truth : dict
        The orbit, limb darkening and per-channel depths (``depth``).
    """
    truth = dict(TRUTH if truth is None else truth)
    rng = np.random.default_rng(seed)
    time = truth["t0"] + np.linspace(-0.5, 0.5, nints) * visit_hours / 24.0
    if depth_ppm is None:
        depth_ppm = 21000 + 600 * np.sin(np.linspace(0, 3 * np.pi, nchannels))
    depth = np.broadcast_to(np.asarray(depth_ppm, dtype=float), (nchannels,)) * 1e-6
    q1, q2 = q_from_ld(*truth["u"])
    model = LightCurveModel(time, truth["period"], poly_order=1)
    base = {"t0": truth["t0"], "a_rs": truth["a_rs"], "b": truth["b"], "q1": q1, "q2": q2,
            "c0": 1.0, "c1": slope}  # fmt: skip
    white_rp = np.sqrt(depth.mean())
    white = model({**base, "rp": white_rp}) + rng.normal(0, white_ppm * 1e-6, nints)
    int_num = np.arange(1, nints + 1)
    whtlt = Table(
        {
            "BJD_TDB": time,
            "whitelight_flux_norm_order_1": white,
            "whitelight_flux_norm_error_order_1": np.full(nints, white_ppm * 1e-6),
            "int_num": int_num,
        }
    )
    rows = {k: [] for k in ("order", "bin", "wave_low", "wave_high", "wave_center", "int_num",
                            "BJD_TDB", "flux_norm", "flux_norm_error", "clipped")}  # fmt: skip
    edges = np.linspace(0.85, 2.8, nchannels + 1)
    for k in range(nchannels):
        flux = model({**base, "rp": np.sqrt(depth[k])}) + rng.normal(0, channel_ppm * 1e-6, nints)
        rows["order"].append(np.full(nints, 1))
        rows["bin"].append(np.full(nints, k))
        rows["wave_low"].append(np.full(nints, edges[k]))
        rows["wave_high"].append(np.full(nints, edges[k + 1]))
        rows["wave_center"].append(np.full(nints, 0.5 * (edges[k] + edges[k + 1])))
        rows["int_num"].append(int_num)
        rows["BJD_TDB"].append(time)
        rows["flux_norm"].append(flux)
        rows["flux_norm_error"].append(np.full(nints, channel_ppm * 1e-6))
        rows["clipped"].append(np.zeros(nints, bool))
    speclc = Table({k: np.concatenate(v) for k, v in rows.items()})
    for k in ("wave_low", "wave_high", "wave_center"):
        speclc[k].unit = "um"
    truth.update(q1=q1, q2=q2, depth=depth, white_rp=white_rp)
    return whtlt, speclc, truth
