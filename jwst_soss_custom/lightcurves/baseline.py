"""Out-of-transit (baseline) integrations: given by the user or found in the white light.

Pure numpy. The baseline is what light curves are normalised by and where
their precision is measured, so it must hold no transit (or eclipse) light.
The user gives it as integration ranges (``"1-150, 400-537"``), or it is
found automatically: the most significant box-shaped dip of the white light
is the transit, widened by a margin on each side so that ingress and egress
stay out, and every other integration is baseline.
"""

import logging
import re
from dataclasses import dataclass

import numpy as np

from jwst_soss_custom.lightcurves.precision import point_to_point_scatter
from jwst_soss_custom.lightcurves.stitching import integer_runs

__all__ = [
    "DEFAULT_MARGIN",
    "Baseline",
    "MIN_TRANSIT_SNR",
    "find_dip",
    "parse_integration_ranges",
    "resolve_baseline",
]

log = logging.getLogger(__name__)

#: A dip is accepted as the transit when its depth is this many times its
#: standard error. Pure white noise searched over all ~n^2/2 boxes of a
#: 500-point series reaches 4-5 at most (the maximum of ~1e5 correlated
#: Gaussian trials), so 7 rejects noise while any useful transit (depth
#: >> point-to-point scatter / sqrt(duration)) passes.
MIN_TRANSIT_SNR = 7.0

#: Default widening of the dip found, as a fraction of its length, each side.
#: Limb darkening rounds the contacts, so the best box is shorter than the
#: transit: on the simulated WASP-39b transit (537 integrations) its edges sit
#: 17 integrations, 0.11 of its length, inside the first and last contact.
#: 0.2 leaves room for higher impact parameters (longer ingress).
DEFAULT_MARGIN = 0.2

#: Longest series searched point by point; longer ones are averaged in time
#: first (the search is O(n^2) in memory).
_MAX_SEARCH_POINTS = 1000

_RANGE = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$")


@dataclass(frozen=True)
class Baseline:
    """Which integrations are baseline, and how that was decided.

    Attributes
    ----------
    mask : ndarray of bool, shape (nints,)
        True for baseline integrations (rows of the light curves).
    method : str
        ``"user"`` (given ranges), ``"auto"`` (dip found), or ``"all"`` (every
        integration: asked for, or no significant dip was found).
    transit : str
        Integration numbers excluded as transit (incl. margin), as runs
        (``"41-90"``), or ``"none"``.
    snr : float
        Significance of the dip found (NaN unless searched).
    """

    mask: np.ndarray
    method: str
    transit: str = "none"
    snr: float = float("nan")

    def meta(self, int_num):
        """Table metadata describing the baseline.

        Parameters
        ----------
        int_num : ndarray of int
            Integration number of each row.

        Returns
        -------
        dict
        """
        return {
            "baseline_method": self.method,
            "baseline_integrations": integer_runs(np.sort(int_num[self.mask])),
            "number_of_baseline_integrations": int(np.count_nonzero(self.mask)),
            "transit_integrations": self.transit,
            "transit_snr": None if np.isnan(self.snr) else round(float(self.snr), 2),
        }


def parse_integration_ranges(text):
    """Integration numbers from ranges such as ``"1-150, 400-537"`` (inclusive).

    Parameters
    ----------
    text : str
        Comma-separated integers or ``a-b`` ranges (1-based ``INT_NUM``).

    Returns
    -------
    ndarray of int

    Raises
    ------
    ValueError
        If a part is not an integer or a range, or a range runs backwards.
    """
    numbers = []
    for part in str(text).split(","):
        match = _RANGE.match(part)
        if not match:
            raise ValueError(
                f"Cannot read {part.strip()!r} in baseline_integrations={text!r}; give "
                "integration numbers or inclusive ranges, e.g. '1-150, 400-537', or 'auto'/'all'."
            )
        lo = int(match.group(1))
        hi = int(match.group(2) or lo)
        if hi < lo:
            raise ValueError(f"Range {part.strip()!r} in baseline_integrations runs backwards.")
        numbers.append(np.arange(lo, hi + 1))
    return np.unique(np.concatenate(numbers))


def find_dip(flux, min_width=3):
    """Most significant box-shaped dip of a series (box least squares).

    Every contiguous window ``[i, j)`` is tried as "in dip"; its depth is the
    mean outside minus the mean inside, and its significance that depth over
    its standard error from the point-to-point scatter. All windows are
    evaluated at once from cumulative sums.

    Parameters
    ----------
    flux : ndarray, shape (n,)
        Series (e.g. white light); NaNs are ignored.
    min_width : int
        Fewest points inside and outside the dip.

    Returns
    -------
    start, stop : int
        Index range ``[start, stop)`` of the dip in ``flux`` (-1, -1 if the
        series is too short).
    snr : float
        Depth / standard error of the best window.
    """
    flux = np.asarray(flux, dtype=np.float64)
    index = np.flatnonzero(np.isfinite(flux))
    if index.size < 3 * min_width:
        return -1, -1, float("nan")
    y = flux[index]
    factor = int(np.ceil(y.size / _MAX_SEARCH_POINTS))
    nbin = y.size // factor
    # Average in time when long: the box search is O(n^2); the dip keeps its shape.
    yb = y[: nbin * factor].reshape(nbin, factor).mean(axis=1)
    sigma = point_to_point_scatter(yb)
    if not np.isfinite(sigma) or sigma == 0:
        sigma = np.std(yb) or 1.0
    csum = np.concatenate(([0.0], np.cumsum(yb)))
    start = np.arange(nbin + 1)[:, None]
    stop = np.arange(nbin + 1)[None, :]
    n_in = stop - start
    n_out = nbin - n_in
    valid = (n_in >= min_width) & (n_out >= min_width)
    sum_in = csum[stop] - csum[start]
    with np.errstate(divide="ignore", invalid="ignore"):
        depth = (csum[-1] - sum_in) / n_out - sum_in / n_in
        snr = np.where(valid, depth / (sigma * np.sqrt(1.0 / n_in + 1.0 / n_out)), -np.inf)
    i, j = np.unravel_index(np.argmax(snr), snr.shape)
    first = index[i * factor]
    last = index[min(j * factor, y.size) - 1]
    return int(first), int(last) + 1, float(snr[i, j])


def resolve_baseline(int_num, white_flux, spec="auto", margin=DEFAULT_MARGIN):
    """Decide the baseline integrations of an exposure.

    Parameters
    ----------
    int_num : ndarray of int, shape (nints,)
        Integration number of each row (time order).
    white_flux : ndarray, shape (nints,)
        White light used to find the transit when ``spec`` is ``"auto"``.
    spec : str or sequence of str
        ``"auto"``, ``"all"``, or integration ranges (`parse_integration_ranges`);
        a sequence (as stpipe makes of a comma-separated value) is joined
        with commas.
    margin : float
        ``auto``: the dip found is widened on each side by this fraction of
        its length (a box fit puts its edges inside the contacts, see
        `DEFAULT_MARGIN`).

    Returns
    -------
    `Baseline`

    Raises
    ------
    ValueError
        If user ranges match no integration, or leave fewer than 2 baseline
        integrations.
    """
    int_num = np.asarray(int_num)
    if spec is not None and not isinstance(spec, str):
        spec = ",".join(str(part) for part in spec)
    spec = "auto" if spec in (None, "", "None") else spec.strip()
    if spec.lower() == "all":
        return Baseline(np.ones(int_num.size, bool), "all")
    if spec.lower() != "auto":
        wanted = parse_integration_ranges(spec)
        mask = np.isin(int_num, wanted)
        absent = np.setdiff1d(wanted, int_num)
        if absent.size:
            log.warning(
                "baseline_integrations: integrations %s are not in the light curves; ignored.",
                integer_runs(absent),
            )
        if np.count_nonzero(mask) < 2:
            raise ValueError(
                f"baseline_integrations={spec!r} selects {np.count_nonzero(mask)} of the "
                f"integrations present ({integer_runs(np.sort(int_num))}); give at least 2."
            )
        return Baseline(mask, "user", integer_runs(np.sort(int_num[~mask])))
    start, stop, snr = find_dip(white_flux)
    if not snr >= MIN_TRANSIT_SNR:
        log.warning(
            "No significant transit found in the white light (best dip %.1f sigma < %g): "
            "every integration is used as baseline. Set baseline_integrations to choose.",
            snr,
            MIN_TRANSIT_SNR,
        )
        return Baseline(np.ones(int_num.size, bool), "all", snr=snr)
    pad = int(np.ceil(margin * (stop - start)))
    mask = np.ones(int_num.size, bool)
    mask[max(start - pad, 0) : stop + pad] = False
    transit = integer_runs(np.sort(int_num[~mask]))
    if np.count_nonzero(mask) < 2:
        raise ValueError(
            f"The transit found (integrations {transit}) leaves no baseline; give "
            "baseline_integrations, or a smaller baseline_margin."
        )
    log.info(
        "Transit found in the white light at integrations %s (%.0f sigma, margin %g "
        "included); %d baseline integrations.",
        transit,
        snr,
        margin,
        np.count_nonzero(mask),
    )
    return Baseline(mask, "auto", transit, snr)
