"""Transmission spectra combined: several visits into one (`combine_visits`), channels into bins.

`bin_spectrum` averages one spectrum's fitted channels into bins of constant
resolving power (R = 100 by default), the spectrum most comparisons use.

Several visits of one planet → one transmission spectrum, with per-visit offsets.

Transit depths of one planet measured in different visits differ by more
than their noise, by an amount nearly the same at every wavelength: the
star's spots and faculae change between visits, and so do the white-light
orbit and limb darkening each visit's channels were fitted with. The
visits are therefore combined with one free offset per visit (or per visit
and order): every channel's depth in visit v is modelled as

    depth[v, c] = D[c] + offset[v]

and the spectrum ``D`` and the offsets are solved together by weighted least
squares (weights from the depth errors), with the offsets summing to zero so
that the combined spectrum sits at the visits' mean level. Its errors come
from the solution's covariance (they include what the offsets leave
uncertain) and are scaled by sqrt(chi2_red) when the visits scatter more
than their errors say. The visits must share the channels' bins (bin their
light curves alike: same ``bin_mode``, width or resolving power).
"""

import numpy as np
from astropy.table import QTable

from jwst_soss_custom._base.errors import SossInputError
from jwst_soss_custom.ecsv import read_ecsv

__all__ = ["OFFSET_MODES", "bin_spectrum", "combine_visits", "read_transmission",
           "usable_channels"]

#: How visits may differ: one offset per visit, one per visit and order, none.
OFFSET_MODES = ("visit", "visit_order", "none")

#: Largest difference (micron) between two visits' edges of one channel.
EDGE_TOLERANCE = 1e-6


def usable_channels(table):
    """Rows of a transmission table whose depth can be combined.

    A channel whose fit failed or did not converge, or without a finite
    depth and a positive error, is left out; notes such as inflated errors
    do not exclude it (the inflation is already in its error).

    Parameters
    ----------
    table : `~astropy.table.Table`

    Returns
    -------
    ndarray of bool
    """
    depth = np.asarray(table["depth_ppm"], dtype=float)
    error = np.asarray(table["depth_error_ppm"], dtype=float)
    ok = np.isfinite(depth) & np.isfinite(error) & (error > 0)
    if "quality" in table.colnames:
        notes = np.array([str(q) for q in table["quality"]])
        ok &= ~np.char.startswith(notes, "failed") & (np.char.find(notes, "not converged") < 0)
    return ok


def _micron(column):
    """Plain float values in micron (units stripped)."""
    return np.asarray(getattr(column, "value", column), dtype=float)


def _channel_grid(tables, names):
    """The channels of all visits, matched on (order, edges): keys, edges, per-visit rows."""
    keys = {}
    for visit, table in enumerate(tables):
        for column in ("order", "wave_low", "wave_high", "depth_ppm", "depth_error_ppm"):
            if column not in table.colnames:
                raise SossInputError(
                    f"{names[visit]}: no '{column}' column; give <product>_transmission.ecsv "
                    "tables from soss_fit.")
        low, high = _micron(table["wave_low"]), _micron(table["wave_high"])
        for row, order in enumerate(np.asarray(table["order"], dtype=int)):
            # Edges rounded to the tolerance find the same channel in every visit.
            key = (int(order), round(low[row] / EDGE_TOLERANCE), round(high[row] / EDGE_TOLERANCE))
            keys.setdefault(key, {})[visit] = row
    ordered = sorted(keys)
    if not any(len(keys[k]) == len(tables) for k in ordered):
        raise SossInputError(
            f"The visits {', '.join(names)} share no channel (same order and bin edges); "
            "bin their light curves alike (soss_tso3's bin_mode, bin_width or resolution) "
            "before combining.")
    return ordered, keys


def combine_visits(tables, names=None, offsets="visit", inflate=True):
    """One transmission spectrum from several visits' ``transmission`` tables.

    Parameters
    ----------
    tables : list of `~astropy.table.Table`
        ``<product>_transmission.ecsv`` of each visit (`soss_fit`), all binned
        alike. At least two.
    names : list of str, optional
        The visits' names (metadata and messages); default ``visit1``...
    offsets : {"visit", "visit_order", "none"}
        Free depth offsets: one per visit (shared by its orders), one per
        visit and order, or none.
    inflate : bool
        Scale the combined errors by sqrt(chi2_red) of the whole solution
        when it exceeds 1.

    Returns
    -------
    spectrum : `~astropy.table.QTable`
        One row per channel seen in at least one visit: ``order``,
        ``wave_low``, ``wave_high``, ``wave_center`` (micron), ``depth_ppm``,
        ``depth_error_ppm``, ``n_visits`` and ``chi2_red`` (the visits'
        scatter about the model in that channel; NaN with one visit).
        Metadata: the visits, the offset mode, the solution's chi2_red and
        the error scale applied.
    offsets_table : `~astropy.table.QTable`
        One row per visit (and order): ``visit``, ``order`` (0: all orders),
        ``offset_ppm``, ``offset_error_ppm``, ``n_channels``.

    Raises
    ------
    SossInputError
        Fewer than two tables, an unknown offset mode, or no channel shared
        by all visits.
    """
    if offsets not in OFFSET_MODES:
        raise SossInputError(f"offsets={offsets!r}: choose one of {', '.join(OFFSET_MODES)}.")
    if len(tables) < 2:
        raise SossInputError("Combining needs the transmission tables of at least two visits.")
    names = list(names) if names is not None else [f"visit{k + 1}" for k in range(len(tables))]
    channels, rows = _channel_grid(tables, names)
    usable = [usable_channels(t) for t in tables]

    # Offset groups: the parameters beside the spectrum, and which group each
    # (visit, order) belongs to; the groups of one order sum to zero.
    orders = sorted({c[0] for c in channels})
    if offsets == "visit":
        groups = [(v, 0) for v in range(len(tables))]
    elif offsets == "visit_order":
        groups = [(v, o) for v in range(len(tables)) for o in orders]
    else:
        groups = []
    group_index = {g: k for k, g in enumerate(groups)}

    data, sigma, chan_of, group_of = [], [], [], []
    for c, key in enumerate(channels):
        for visit, row in rows[key].items():
            if not usable[visit][row]:
                continue
            data.append(float(tables[visit]["depth_ppm"][row]))
            sigma.append(float(tables[visit]["depth_error_ppm"][row]))
            chan_of.append(c)
            group_of.append(group_index.get((visit, 0 if offsets == "visit" else key[0]), -1))
    data, sigma = np.array(data), np.array(sigma)
    chan_of, group_of = np.array(chan_of), np.array(group_of)
    n_chan, n_group = len(channels), len(groups)

    # Design matrix [spectrum | offsets] plus the zero-sum constraint rows,
    # solved in the weighted sense; the constraint rows carry a large weight.
    design = np.zeros((data.size, n_chan + n_group))
    design[np.arange(data.size), chan_of] = 1.0
    with_offset = group_of >= 0
    design[np.flatnonzero(with_offset), n_chan + group_of[with_offset]] = 1.0
    weights = 1.0 / sigma
    a = design * weights[:, None]
    b = data * weights
    constraints = []
    for order in ([0] if offsets == "visit" else orders if offsets == "visit_order" else []):
        row = np.zeros(n_chan + n_group)
        row[[n_chan + group_index[g] for g in groups if g[1] == order]] = 1.0
        constraints.append(row)
    if constraints:
        scale = 1e3 * np.sqrt(np.max(np.sum(a * a, axis=0)))
        a = np.vstack([a, scale * np.array(constraints)])
        b = np.concatenate([b, np.zeros(len(constraints))])
    seen = np.bincount(chan_of, minlength=n_chan) > 0
    keep = np.concatenate([seen, np.ones(n_group, bool)])
    solution = np.full(n_chan + n_group, np.nan)
    solution[keep], *_ = np.linalg.lstsq(a[:, keep], b, rcond=None)
    covariance = np.full((keep.size, keep.size), np.nan)
    covariance[np.ix_(keep, keep)] = np.linalg.pinv(a[:, keep].T @ a[:, keep])

    model = design @ np.nan_to_num(solution)
    resid = (data - model) / sigma
    dof = data.size - int(seen.sum()) - max(n_group - len(constraints), 0)
    chi2_red = float(np.sum(resid**2) / dof) if dof > 0 else np.nan
    error_scale = float(np.sqrt(chi2_red)) if inflate and np.isfinite(chi2_red) and chi2_red > 1 \
        else 1.0
    errors = np.sqrt(np.diag(covariance)) * error_scale

    n_visits = np.bincount(chan_of, minlength=n_chan)
    chan_chi2 = np.full(n_chan, np.nan)
    for c in np.flatnonzero(n_visits > 1):
        chan_chi2[c] = float(np.sum(resid[chan_of == c] ** 2) / (n_visits[c] - 1))
    low = np.array([k[1] for k in channels]) * EDGE_TOLERANCE
    high = np.array([k[2] for k in channels]) * EDGE_TOLERANCE
    spectrum = QTable({
        "order": np.array([k[0] for k in channels], dtype=np.int16),
        "wave_low": low, "wave_high": high, "wave_center": 0.5 * (low + high),
        "depth_ppm": solution[:n_chan], "depth_error_ppm": errors[:n_chan],
        "n_visits": n_visits.astype(np.int32), "chi2_red": chan_chi2,
    })  # fmt: skip
    for column in ("wave_low", "wave_high", "wave_center"):
        spectrum[column].unit = "um"
    per_group = np.bincount(group_of[with_offset], minlength=n_group)
    offsets_table = QTable({
        "visit": [names[g[0]] for g in groups], "order": np.array([g[1] for g in groups], int),
        "offset_ppm": solution[n_chan:], "offset_error_ppm": errors[n_chan:],
        "n_channels": per_group.astype(np.int32),
    })  # fmt: skip
    labels = [names[v] + (f" order {o}" if o else "") for v, o in groups]
    spectrum.meta.update({
        "visits": names, "offsets": offsets, "chi2_red": chi2_red, "error_scale": error_scale,
        "offsets_ppm": dict(zip(labels, map(float, solution[n_chan:]))),
        "method": "weighted least squares: depth[visit, channel] = spectrum[channel] + "
                  "offset[visit]; offsets sum to zero",
    })  # fmt: skip
    for key in ("target_name", "instrument", "exp_type"):
        values = {t.meta.get(key) for t in tables} - {None}
        if len(values) == 1:
            spectrum.meta[key] = values.pop()
    return spectrum, offsets_table


def read_transmission(path):
    """A ``<product>_transmission.ecsv`` table, or a one-line error naming the file."""
    return read_ecsv(path, "the <product>_transmission.ecsv that soss_fit wrote")


def bin_spectrum(transmission, resolution=100.0):
    """A transmission spectrum averaged into bins of constant resolving power, per order.

    Each bin's depth is the inverse-variance weighted mean of the usable
    channels (`usable_channels`) whose centre falls in it, its error
    1 / sqrt(sum of the weights): the channels' fits are independent, so a
    noise common to them (an error in the orbit or the limb darkening the
    channels share) is not in it.

    Parameters
    ----------
    transmission : `~astropy.table.Table`
        ``<product>_transmission.ecsv`` (or `combine_visits`' spectrum).
    resolution : float
        R = wavelength / bin width.

    Returns
    -------
    `~astropy.table.QTable`
        ``order``, ``bin``, ``wave_low``, ``wave_high``, ``wave_center``
        (micron), ``depth_ppm``, ``depth_error_ppm``, ``n_channels``: bins
        without a usable channel are left out.
    """
    from jwst_soss_custom.lightcurves.binning import resolution_edges

    ok = usable_channels(transmission)
    orders = np.asarray(transmission["order"], dtype=int)
    center = _micron(transmission["wave_center"])
    low_all, high_all = _micron(transmission["wave_low"]), _micron(transmission["wave_high"])
    depth = np.asarray(transmission["depth_ppm"], dtype=float)
    weight = 1.0 / np.asarray(transmission["depth_error_ppm"], dtype=float) ** 2
    rows = []
    for order in np.unique(orders[ok]):
        mine = ok & (orders == order)
        low, high = resolution_edges((low_all[mine].min(), high_all[mine].max()), resolution)
        index = np.searchsorted(high, center[mine], side="right")
        for k in np.unique(index[index < low.size]):
            inside = index == k
            w = weight[mine][inside]
            rows.append((order, k, low[k], high[k], 0.5 * (low[k] + high[k]),
                         float(np.sum(w * depth[mine][inside]) / np.sum(w)),
                         float(1.0 / np.sqrt(np.sum(w))), int(inside.sum())))
    names = ("order", "bin", "wave_low", "wave_high", "wave_center", "depth_ppm",
             "depth_error_ppm", "n_channels")
    table = QTable(rows=rows, names=names) if rows else QTable(names=names)
    for column in ("wave_low", "wave_high", "wave_center"):
        table[column].unit = "um"
    table.meta.update({k: transmission.meta[k] for k in ("target_name", "instrument",
                                                         "exp_type") if k in transmission.meta})
    table.meta["resolution"] = float(resolution)
    table.meta["method"] = ("inverse-variance weighted mean of the fitted channels whose "
                            "centre falls in each bin")
    return table
