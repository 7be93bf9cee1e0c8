"""Wavelength check on the data: stellar absorption lines (numpy + scipy).

pastasoss's wavelength solution can be off by up to a pixel for a visit. A
template of known stellar lines placed with the predicted solution finds the
approximate shift of each order's deep spectrum; then every line (or blend of
close lines) is fitted on its own, its depth and width free, and the shifts
of the features are combined with their star-to-star scatter estimated from
the data, so neither the packaged depths nor unlisted lines of a particular
star bias the result and its error says how far it can be trusted. Order 2
is then compared with order 1 directly in their common wavelength range.
"""

import logging

import numpy as np
from astropy.table import Table
from scipy.ndimage import median_filter
from scipy.optimize import least_squares

from jwst_soss_custom._base.data import data_path

__all__ = ["load_line_list", "normalised_spectrum", "fit_shift", "line_template", "group_lines",
           "fit_feature", "combine_shifts", "order_features", "solve_shifts",
           "measure_wavelength_shift", "compare_orders", "deep_spectrum", "check_wavelengths"]

log = logging.getLogger(__name__)

#: Packaged line list (origin in ``jwst_soss_custom/data/README.md``).
LINE_LIST = "stellar_lines.ecsv"


def load_line_list(path=None):
    """Stellar lines as ``(wavelength_um, strength)`` arrays.

    Parameters
    ----------
    path : str or None
        ECSV/CSV table with columns ``wavelength`` (micron, vacuum) and
        ``strength`` (relative depth); the packaged list if None.

    Returns
    -------
    wavelength, strength : ndarray
    """
    source = path or data_path(LINE_LIST)
    table = Table.read(source, format="ascii.ecsv" if str(source).endswith("ecsv") else "ascii")
    missing = {"wavelength", "strength"} - set(table.colnames)
    if missing:
        raise ValueError(
            f"Line list {source} lacks column(s) {sorted(missing)}; give 'wavelength' "
            "(micron, vacuum) and 'strength' (relative depth)."
        )
    return np.asarray(table["wavelength"], float), np.asarray(table["strength"], float)


def normalised_spectrum(flux, window=31):
    """Flux divided by its running median, minus 1 (lines are negative).

    Parameters
    ----------
    flux : ndarray (ncols,)
        Spectrum along contiguous columns (NaN allowed).
    window : int
        Running-median length (columns); much longer than a line (2 px).

    Returns
    -------
    ndarray (ncols,)
    """
    flux = np.asarray(flux, float)
    good = np.isfinite(flux)
    filled = np.interp(np.arange(flux.size), np.flatnonzero(good), flux[good])
    continuum = median_filter(filled, size=window, mode="nearest")
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(good & (continuum > 0), flux / continuum - 1.0, np.nan)
    return out


def line_template(columns, line_columns, strength, fwhm):
    """Negative Gaussians (``fwhm`` pixels) at ``line_columns``, one per column.

    Returns
    -------
    ndarray (ncols, nlines)
        Each line scaled by its strength (free amplitudes are fitted on top).
    """
    sigma = fwhm / 2.3548
    arg = (np.asarray(columns, float)[:, None] - np.asarray(line_columns)[None, :]) / sigma
    return -np.exp(-0.5 * arg**2) * np.asarray(strength, float)[None, :]


def fit_shift(signal, model, max_shift=3.0, step=0.02):
    """Shift (pixels) and amplitude of ``model(shift)`` best fitting ``signal``.

    For every trial shift the amplitudes (one per template column, e.g. one
    per line, so that wrong line strengths do not matter) are fitted
    linearly; the shift of the lowest residual is refined with a parabola
    through its neighbours. Its 1-sigma error follows from the curvature of
    chi-square, with the noise taken as the residual scatter of the best fit.

    Parameters
    ----------
    signal : ndarray (n,)
        Normalised spectrum (NaN ignored).
    model : callable
        ``model(shift) -> ndarray (n,) or (n, k)``, the template (or k
        templates with free amplitudes) moved by ``shift``.
    max_shift, step : float
        Trial shifts from ``-max_shift`` to ``max_shift`` every ``step`` pixels.

    Returns
    -------
    dict
        ``shift``, ``error``, ``amplitude`` (mean fitted amplitude),
        ``snr`` (norm of the fitted template over the noise), ``sigma``
        (noise per point), ``at_edge`` (the minimum is at the edge of the
        search).
    """
    good = np.isfinite(signal)
    s = signal[good]
    shifts = np.arange(-max_shift, max_shift + step / 2, step)
    sse = np.empty(shifts.size)
    power = np.empty(shifts.size)
    amp = np.empty(shifts.size)
    for k, shift in enumerate(shifts):
        design = np.atleast_2d(model(shift).T).T[good]
        # Normal equations: ~100x faster than lstsq's SVD for these narrow,
        # well-separated templates (a tiny ridge keeps empty ones harmless).
        normal = design.T @ design
        normal[np.diag_indices_from(normal)] += 1e-12 * max(normal.trace(), 1e-300)
        coef = np.linalg.solve(normal, design.T @ s)
        fitted = design @ coef
        sse[k] = np.sum((s - fitted) ** 2)
        power[k] = fitted @ fitted
        amp[k] = coef.mean()
    k = int(np.argmin(sse))
    # Noise from the residual of the best fit: includes template mismatch,
    # so the error and signal-to-noise are conservative.
    sigma = np.sqrt(max(sse[k], 1e-300) / max(s.size - 2, 1))
    chi2 = sse / sigma**2
    at_edge = k in (0, shifts.size - 1)
    shift, curvature = shifts[k], np.inf
    if not at_edge:
        c0, c1, c2 = chi2[k - 1 : k + 2]
        curvature = (c0 - 2 * c1 + c2) / step**2
        if curvature > 0:
            shift = shifts[k] + 0.5 * step * (c0 - c2) / (c0 - 2 * c1 + c2)
    error = float(np.sqrt(2.0 / curvature)) if np.isfinite(curvature) and curvature > 0 else np.inf
    snr = float(np.sqrt(power[k]) / sigma)
    return {"shift": float(shift), "error": error, "amplitude": float(amp[k]), "snr": snr,
            "sigma": float(sigma), "at_edge": bool(at_edge)}


def group_lines(line_x, separation):
    """Indices of lines grouped into features: neighbours closer than ``separation``.

    Lines a few pixels apart blend at SOSS resolution (Na I 1.138/1.141 um,
    the Al I and Na I 2.2 um doublets): their blend's centre depends on their
    depth ratio, which differs from star to star, so they are fitted together
    with one shift and free depths.

    Parameters
    ----------
    line_x : ndarray
        Predicted line columns, increasing.
    separation : float
        Pixels.

    Returns
    -------
    list of ndarray of int
    """
    if line_x.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(line_x) > separation) + 1
    return np.split(np.arange(line_x.size), breaks)


def fit_feature(x, flux, variance, centres, shift0, fwhm=2.0, max_offset=1.5, margin=4.0):
    """Shift of one absorption feature, its depth and width free.

    Model: a straight-line continuum times ``1 - sum_k d_k G(x - c_k - s)``,
    with Gaussians of one free width, free depths ``d_k >= 0`` and one shift
    ``s`` searched within ``shift0 +- max_offset``. Nothing of the line's
    tabulated strength is used, so a star whose lines are deeper, shallower
    or broader than the packaged list's does not bias it.

    Parameters
    ----------
    x, flux, variance : ndarray
        Columns (float), deep spectrum and its variance (NaN ignored).
    centres : ndarray
        Predicted columns of the feature's lines.
    shift0 : float
        Starting shift (pixels), from the whole-order template fit.
    fwhm : float
        Starting line width (pixels).
    max_offset : float
        Largest departure of the shift from ``shift0``.
    margin : float
        Columns fitted beyond the outer lines: enough for the line wings and
        a local continuum, no more, since a real spectrum is crowded with
        unlisted lines that a wider window would fit too.

    Returns
    -------
    dict or None
        ``shift``, ``error`` (1 sigma, inflated by the reduced chi-square
        when above 1), ``depth`` (summed) and ``depth_error``, ``width``
        (FWHM, px), ``chi2`` (reduced); None if the window has too few
        usable columns.
    """
    lo, hi = centres.min() + shift0 - margin, centres.max() + shift0 + margin
    use = (x >= lo) & (x <= hi) & np.isfinite(flux) & np.isfinite(variance) & (variance > 0)
    k = centres.size
    if use.sum() < k + 6:
        return None
    xs, fs, ws = x[use], flux[use], 1.0 / np.sqrt(variance[use])
    mid = xs.mean()
    level = np.nanmedian(np.concatenate([fs[:3], fs[-3:]]))
    if not level > 0:
        return None

    def model(p):
        a, b, s, sig = p[:4]
        shape = np.exp(-0.5 * ((xs[:, None] - centres[None, :] - s) / sig) ** 2) @ p[4:]
        return (a + b * (xs - mid)) * (1.0 - shape)

    # Widths from 0.9 px (below the instrument's: noise) to 7 px FWHM (a
    # broad blend); depths of absorption only.
    p0 = np.concatenate([[level, 0.0, shift0, fwhm / 2.3548], np.full(k, 0.05)])
    lower = np.concatenate([[0.0, -np.inf, shift0 - max_offset, 0.4], np.zeros(k)])
    upper = np.concatenate([[np.inf, np.inf, shift0 + max_offset, 3.0], np.full(k, 0.95)])
    fit = least_squares(lambda p: (model(p) - fs) * ws, p0, bounds=(lower, upper),
                        x_scale="jac")
    dof = max(use.sum() - p0.size, 1)
    chi2 = float(np.sum(fit.fun**2) / dof)
    try:
        cov = np.linalg.inv(fit.jac.T @ fit.jac) * max(chi2, 1.0)
    except np.linalg.LinAlgError:
        return None
    depth = float(fit.x[4:].sum())
    depth_error = float(np.sqrt(max(cov[4:, 4:].sum(), 0.0)))
    shift_error = float(np.sqrt(max(cov[2, 2], 0.0)))
    at_bound = abs(fit.x[2] - shift0) > max_offset - 1e-3
    return {"shift": float(fit.x[2]), "error": np.inf if at_bound else shift_error,
            "depth": depth, "depth_error": depth_error,
            "width": float(fit.x[3] * 2.3548), "chi2": chi2}


#: Speed of light, km/s.
C_KMS = 299792.458


def _random_effects(y, errors, design, scale):
    """Paule-Mandel random-effects least squares: ``(params, cov, kappa)``.

    The extra scatter of point ``i`` is ``kappa * scale[i]``; ``kappa`` is the
    root of ``sum r**2 / (e**2 + kappa**2 scale**2) = n - p`` (0 if the points
    agree within their errors). The covariance takes the Knapp-Hartung
    factor when the points scatter more than that, and is that of the
    Student t the estimate then follows (few features: wide tails).
    """
    e2, a2 = errors**2, scale**2
    n, p = design.shape

    def solve(k2):
        w = 1.0 / (e2 + k2 * a2)
        normal = design.T @ (design * w[:, None])
        params = np.linalg.solve(normal, design.T @ (w * y))
        resid = y - design @ params
        return params, normal, np.sum(w * resid**2)

    dof = max(n - p, 1)
    k2 = 0.0
    if solve(0.0)[2] > dof:
        lo, hi = 0.0, max(np.var(y) / np.min(a2), 1e-12) * 4
        while solve(hi)[2] > dof:
            hi *= 4
        for _ in range(60):
            k2 = 0.5 * (lo + hi)
            lo, hi = (k2, hi) if solve(k2)[2] > dof else (lo, k2)
    params, normal, q = solve(k2)
    # Knapp-Hartung: the estimate follows Student's t with n - p degrees of
    # freedom; its variance is nu / (nu - 2) times the scale's square (nu
    # taken as at least 3, where the variance would be infinite).
    nu = max(dof, 3)
    cov = np.linalg.inv(normal) * max(q / dof, 1.0) * nu / (nu - 2)
    return params, cov, float(np.sqrt(k2))


def combine_shifts(shifts, errors, scale=None, design=None, clip=3.5, min_features=3):
    """Random-effects fit of per-feature shifts, with leave-one-out clipping.

    Each feature's shift scatters about its model by its noise and by how
    much unlisted lines blended with it pull its centre, which differs from
    star to star. That extra scatter, ``kappa * scale`` per feature, is
    estimated from the data (Paule-Mandel), each feature weighted by
    ``1 / (error**2 + kappa**2 scale**2)``, and the covariance inflated by
    the Knapp-Hartung factor when the features scatter more than their
    errors say. A feature further than ``clip`` sigma from the prediction of
    the others (a contaminant, a wrong identification) is dropped, one at a
    time; so is every feature of a parameter left with fewer than
    ``min_features``.

    Parameters
    ----------
    shifts, errors : ndarray (n,)
    scale : ndarray (n,) or None
        Relative size of each feature's extra scatter (1 for all if None).
        A blend pulls a line's centre in proportion to the blended flux
        over the line's own depth, so `check_wavelengths` gives the inverse
        depth.
    design : ndarray (n, p) or None
        Linear model of the shifts (a single mean if None). A feature
        belongs to the parameters its row is non-zero for.
    clip : float
    min_features : int
        Fewest features per parameter.

    Returns
    -------
    dict
        ``params`` (p,), ``cov`` (p, p), ``shift`` and ``error`` (the first
        parameter and its error), ``tau`` (``kappa`` times the median scale
        of the features used: the extra scatter of a typical feature),
        ``used`` (bool per feature), ``solved`` (bool per parameter).
        Unsolved parameters are NaN with infinite error.
    """
    shifts, errors = np.asarray(shifts, float), np.asarray(errors, float)
    scale = np.ones_like(shifts) if scale is None else np.asarray(scale, float)
    design = np.ones((shifts.size, 1)) if design is None else np.asarray(design, float)
    used = (np.isfinite(shifts) & np.isfinite(errors) & (errors > 0) & np.isfinite(scale)
            & (scale > 0))
    member = design != 0
    # Order-offset columns are indicators; a column touching every feature of
    # other columns (the radial velocity) is shared and counts on its own.
    indicator = np.all((design == 0) | (design == 1), axis=0)

    def solvable(sel):
        counts = member[sel].sum(axis=0)
        return (counts >= min_features) | ~indicator & (counts > 0)

    def fit(sel):
        cols = solvable(sel)
        rows = sel & (member[:, ~cols].sum(axis=1) == 0)
        if rows.sum() <= cols.sum() or not cols.any():
            return None
        params, cov, kappa = _random_effects(shifts[rows], errors[rows], design[rows][:, cols],
                                             scale[rows])
        return cols, rows, params, cov, kappa

    while True:
        current = fit(used)
        if current is None:
            break
        cols, rows, _, _, _ = current
        used &= rows
        worst, worst_z = None, clip
        for i in np.flatnonzero(used):
            others = used.copy()
            others[i] = False
            loo = fit(others)
            if loo is None or not np.array_equal(loo[0], cols):
                continue  # the feature is needed for a parameter: keep it
            _, _, params, cov, kappa = loo
            a = design[i, cols]
            spread = errors[i] ** 2 + (kappa * scale[i]) ** 2 + a @ cov @ a
            z = abs(shifts[i] - a @ params) / np.sqrt(spread)
            if z > worst_z:
                worst, worst_z = i, z
        if worst is None:
            break
        used[worst] = False
    p = design.shape[1]
    params, cov = np.full(p, np.nan), np.full((p, p), np.inf)
    solved, tau = np.zeros(p, bool), np.nan
    if current is not None:
        cols, rows, values, covariance, kappa = current
        solved = cols
        params[cols] = values
        cov[np.ix_(cols, cols)] = covariance
        tau = float(kappa * np.median(scale[rows]))
        used = rows
    else:
        used = np.zeros_like(used)
    error = np.sqrt(np.diag(cov))
    return {"params": params, "cov": cov, "errors": error, "shift": float(params[0]),
            "error": float(error[0]), "tau": tau, "used": used, "solved": solved}


def order_features(flux, columns, model_x, model_wavelength, lines, fwhm=2.0, max_shift=3.0,
                   snr_min=5.0, window=31, variance=None, feature_snr_min=3.0):
    """Shifts of the stellar features of one order's spectrum.

    The true wavelength of column ``c`` is ``lambda_model(c - shift)``; a
    positive shift means the spectrum sits at larger columns than predicted.
    Two stages: the template of all listed lines (free amplitude per line)
    gives the approximate shift and says whether lines are seen at all; then
    each feature (a line, or lines closer than 3 FWHM fitted together) is
    fitted on its own with depth and width free (`fit_feature`).

    Parameters
    ----------
    flux : ndarray (ncols,)
        Deep spectrum of the order at ``columns``.
    columns : ndarray of int (ncols,)
        Contiguous detector columns, increasing.
    model_x, model_wavelength : ndarray
        Predicted wavelength solution (pastasoss) as samples, x increasing.
    lines : tuple of ndarray
        ``(wavelength, strength)`` of the stellar lines (rest, vacuum).
    fwhm : float
        Starting line width on the detector (pixels).
    max_shift : float
        Largest shift searched (pixels).
    snr_min : float
        Minimum signal-to-noise of the line template (one amplitude for all
        lines, absorption positive) for the order to count as measurable.
    window : int
        Running-median length for the continuum of the template stage.
    variance : ndarray (ncols,) or None
        Variance of ``flux``; estimated from the spectrum's point-to-point
        scatter if None.
    feature_snr_min : float
        Depth signal-to-noise a feature needs to count.

    Returns
    -------
    dict
        ``status`` (``"measured"``, or ``"not measurable"``: no lines in
        range, the template's S/N below ``snr_min`` or its best shift at the
        edge of the search), ``snr`` (template), ``n_lines`` (in range),
        ``coarse`` (template shift) and ``features``: a dict of arrays
        ``wavelength``, ``shift``, ``error``, ``depth`` and ``velocity_px``
        (the shift a radial velocity of 1 km/s gives the feature, pixels).
    """
    columns = np.asarray(columns)
    wave_c = np.interp(columns, model_x, model_wavelength)
    lam, strength = lines
    # Line positions in columns from the (monotonic) predicted solution.
    order = np.argsort(wave_c)
    line_x = np.interp(lam, wave_c[order], columns[order].astype(float), left=np.nan, right=np.nan)
    margin = max_shift + window / 2
    inside = np.isfinite(line_x) & (line_x > columns[0] + margin) & (line_x < columns[-1] - margin)
    empty = {k: np.zeros(0) for k in ("wavelength", "shift", "error", "depth", "velocity_px")}
    result = {"status": "not measurable", "snr": 0.0, "n_lines": int(inside.sum()),
              "coarse": np.nan, "features": empty}
    if not inside.any():
        return result
    signal = normalised_spectrum(flux, window)

    def template(shift):
        return line_template(columns, line_x[inside] + shift, strength[inside], fwhm)

    coarse = fit_shift(signal, template, max_shift)
    # Detection: one amplitude for the whole line list at the best shift. The
    # per-line amplitudes that fix the shift would also fit pure noise
    # (their norm is ~sqrt(n_lines) sigma), so they cannot say whether lines exist.
    good = np.isfinite(signal)
    one = template(coarse["shift"]).sum(axis=1)[good]
    amplitude = float(one @ signal[good] / (one @ one))
    # Robust noise: a real spectrum's spikes (cosmic-ray residues, order-0
    # edges, unlisted deep lines) would inflate an rms and hide real lines.
    resid = signal[good] - amplitude * one
    sigma = float(1.4826 * np.median(np.abs(resid - np.median(resid))))
    result["snr"] = float(amplitude * np.sqrt(one @ one) / sigma)
    result["coarse"] = coarse["shift"]
    if result["snr"] < snr_min or coarse["at_edge"]:
        return result
    if variance is None:
        # Point-to-point scatter of the normalised spectrum: white noise only.
        step = np.diff(signal[good])
        sigma = 1.4826 * np.median(np.abs(step - np.median(step))) / np.sqrt(2)
        continuum = np.where(good, flux / (signal + 1.0), np.nan)
        variance = (sigma * continuum) ** 2
    x = columns.astype(float)
    # Signed: SOSS wavelengths fall with the column, so a redshift moves a
    # line to smaller columns (a negative shift).
    dispersion = np.gradient(wave_c, x)
    centres = np.sort(line_x[inside])
    found = []
    for members in group_lines(centres, 3 * fwhm):
        fit = fit_feature(x, flux, variance, centres[members], coarse["shift"], fwhm)
        if fit is not None and fit["depth"] >= feature_snr_min * fit["depth_error"]:
            centre = centres[members].mean()
            wave = float(np.interp(centre, x, wave_c))
            velocity_px = wave / C_KMS / float(np.interp(centre, x, dispersion))
            found.append((wave, fit["shift"], fit["error"], fit["depth"], velocity_px))
    if found:
        arrays = np.array(found).T
        result["features"] = dict(zip(empty, arrays))
    result["status"] = "measured"
    return result


def solve_shifts(features, velocity=None, min_features=3):
    """Each order's shift, and the star's radial velocity, from their features.

    A feature's shift is its order's shift plus the Doppler shift of the
    star's lines, ``velocity_px * v``: the same velocity for both orders,
    a different number of pixels per order and wavelength (``lambda v / c``
    over the dispersion). Not modelling it would put a typical host's
    velocity (tens of km/s, 0.2-0.5 px) into the wavelength solution.
    With ``velocity`` given it is subtracted; otherwise it is fitted with the
    shifts: the lever arm is the change of ``lambda / dispersion`` along each
    order (a factor 2.2 across order 1) and between the orders.

    Parameters
    ----------
    features : dict of int to dict
        `order_features` ``features`` per order.
    velocity : float or None
        Line-of-sight velocity of the star relative to the observatory
        (km/s, positive = receding).
    min_features : int

    Returns
    -------
    dict
        ``shift`` and ``error`` per order (NaN / inf if not solved),
        ``velocity`` and ``velocity_error`` (km/s; as given with error 0, or
        fitted, NaN if not), ``tau``, ``used`` per order (bool arrays).
    """
    orders = [o for o in features if features[o]["shift"].size]
    if not orders:
        return {"shift": {}, "error": {}, "velocity": np.nan, "velocity_error": np.inf,
                "tau": np.nan, "used": {}}
    cat = {k: np.concatenate([features[o][k] for o in orders])
           for k in ("shift", "error", "depth", "velocity_px")}
    which = np.concatenate([np.full(features[o]["shift"].size, o) for o in orders])
    design = (which[:, None] == np.array(orders)[None, :]).astype(float)
    shifts = cat["shift"]
    if velocity is None:
        design = np.column_stack([design, cat["velocity_px"]])
    else:
        shifts = shifts - cat["velocity_px"] * velocity
    fit = combine_shifts(shifts, cat["error"], 1.0 / cat["depth"], design,
                         min_features=min_features)
    out = {"shift": {}, "error": {}, "tau": fit["tau"], "used": {}}
    for k, o in enumerate(orders):
        out["shift"][o] = float(fit["params"][k])
        out["error"][o] = float(fit["errors"][k])
        out["used"][o] = fit["used"][which == o]
    if velocity is None:
        out["velocity"] = float(fit["params"][-1])
        out["velocity_error"] = float(fit["errors"][-1])
    else:
        out["velocity"], out["velocity_error"] = float(velocity), 0.0
    return out


def measure_wavelength_shift(flux, columns, model_x, model_wavelength, lines, fwhm=2.0,
                             max_shift=3.0, snr_min=5.0, window=31, variance=None,
                             velocity=0.0, min_features=3):
    """Column shift of one order's spectrum relative to the predicted wavelengths.

    `order_features` then `solve_shifts` for a single order; see
    `check_wavelengths` for both orders together.

    Parameters
    ----------
    flux, columns, model_x, model_wavelength, lines, fwhm, max_shift, snr_min, window, variance
        See `order_features`.
    velocity : float or None
        Radial velocity of the star (km/s); None fits it from this order's
        lines alone (a weak constraint).
    min_features : int

    Returns
    -------
    dict
        ``shift``, ``error``, ``snr``, ``n_lines``, ``n_features``,
        ``n_used``, ``status`` (``"measured"`` or ``"not measurable"``).
    """
    found = order_features(flux, columns, model_x, model_wavelength, lines, fwhm, max_shift,
                           snr_min, window, variance)
    out = {"snr": found["snr"], "n_lines": found["n_lines"],
           "n_features": int(found["features"]["shift"].size), "n_used": 0,
           "shift": np.nan, "error": np.inf, "status": "not measurable"}
    if found["status"] != "measured":
        return out
    solved = solve_shifts({0: found["features"]}, velocity, min_features)
    if 0 in solved["shift"] and np.isfinite(solved["shift"][0]):
        out.update(shift=solved["shift"][0], error=solved["error"][0],
                   n_used=int(solved["used"][0].sum()), status="measured")
    return out


def compare_orders(flux1, wave1, flux2, wave2, columns2, max_shift=3.0, snr_min=5.0,
                   window=31):
    """Shift (order-2 columns) of order 2's spectrum against order 1's.

    Order 1's normalised spectrum, as a function of its (corrected)
    wavelengths, is the template; it is evaluated at order 2's wavelengths
    of columns ``c - shift``. A shift near 0 means the two solutions agree.

    Parameters
    ----------
    flux1, wave1 : ndarray
        Order 1 deep spectrum and wavelengths (any column order).
    flux2, wave2, columns2 : ndarray
        Order 2 deep spectrum, wavelengths and contiguous columns (increasing).
    max_shift, snr_min, window
        As in `measure_wavelength_shift`.

    Returns
    -------
    dict
        `fit_shift`'s keys, ``range`` (common wavelengths, micron) and
        ``status``.
    """
    s1 = normalised_spectrum(flux1, window)
    s2 = normalised_spectrum(flux2, window)
    o1 = np.argsort(wave1)
    lo = max(np.nanmin(wave1), np.nanmin(wave2))
    hi = min(np.nanmax(wave1), np.nanmax(wave2))
    common = (wave2 > lo) & (wave2 < hi) & np.isfinite(s2)
    base = {"range": [float(lo), float(hi)]}
    if common.sum() < 4 * window:
        return {**base, "shift": 0.0, "error": np.inf, "amplitude": 0.0, "snr": 0.0,
                "at_edge": False, "status": "not measurable"}
    good1 = np.isfinite(s1[o1])
    w1, t1 = wave1[o1][good1], s1[o1][good1]
    c2 = np.asarray(columns2, float)
    order2 = np.argsort(c2)

    def model(shift):
        lam = np.interp(c2 - shift, c2[order2], wave2[order2])
        return np.interp(lam, w1, t1)

    signal = np.where(common, s2, np.nan)
    fit = fit_shift(signal, model, max_shift)
    ok = fit["snr"] >= snr_min and fit["amplitude"] > 0 and not fit["at_edge"]
    return {**base, **fit, "status": "measured" if ok else "not measurable"}


def deep_spectrum(deep, trace_y, columns, halfwidth=15.0, noise=None):
    """Box spectrum of a deep frame along a trace (fractional edges).

    Unusable (NaN) pixels take the median of their row neighbours, so they
    do not fake absorption lines.

    Parameters
    ----------
    deep : ndarray (ny, nx)
    trace_y : ndarray (nx,)
    columns : ndarray of int
    halfwidth : float
    noise : ndarray (ny, nx) or None
        1-sigma error of each deep-frame pixel.

    Returns
    -------
    flux : ndarray (ncols,)
    variance : ndarray (ncols,) or None
        The box sum's variance (None without ``noise``).
    """
    ny = deep.shape[0]
    image = np.asarray(deep, float)
    bad = ~np.isfinite(image)
    if bad.any():
        image = np.where(bad, median_filter(np.nan_to_num(image), size=(1, 5)), image)
    rows = np.arange(ny)[:, None]
    yc = trace_y[columns][None, :]
    low = np.maximum(rows - 0.5, yc - halfwidth)
    high = np.minimum(rows + 0.5, yc + halfwidth)
    weights = np.clip(high - low, 0.0, 1.0)
    flux = (weights * image[:, columns]).sum(axis=0)
    if noise is None:
        return flux, None
    sigma = np.asarray(noise, float)[:, columns]
    sigma = np.where(np.isfinite(sigma), sigma, np.nanmedian(sigma))
    return flux, (weights**2 * sigma**2).sum(axis=0)


def check_wavelengths(deep, solution, lines, fwhm=2.0, snr_min=5.0, max_error=0.2,
                      apply_sigma=0.0, max_shift=3.0, noise=None, velocity=None):
    """Measure each order's wavelength shift and apply it where the data support it.

    The features of every order are fitted together (`solve_shifts`): one
    shift per order and the star's radial velocity, or the velocity given.
    Updates ``solution`` in place: a shift measured with an error of at most
    ``max_error`` pixels (and larger than ``apply_sigma`` errors) replaces the
    order's wavelengths by pastasoss's ``lambda(c - shift)``; every order's
    ``record["wavelength"]`` says what was measured and done,
    ``solution.record["radial_velocity"]`` the velocity used, and
    ``solution.record["order2_vs_order1"]`` holds the cross-check.

    Parameters
    ----------
    deep : ndarray (ny, nx)
    solution : `~jwst_soss_custom.tracing.TraceSolution`
        Refined traces (the positions are used, the wavelengths replaced).
    lines : tuple of ndarray
        ``(wavelength, strength)``; see `load_line_list`.
    fwhm, snr_min, max_shift
        See `order_features`.
    max_error : float
        Largest error (pixels) of a shift that is applied; a less certain
        one leaves pastasoss's wavelengths (status ``too uncertain``).
    apply_sigma : float
        A shift smaller than this many errors is not applied (status
        ``not significant``). 0 applies every shift known to ``max_error``:
        an unbiased estimate, where a significance cut would shrink small
        shifts to zero.
    noise : ndarray (ny, nx) or None
        1-sigma error of the deep frame's pixels.
    velocity : float or None
        Line-of-sight velocity of the star relative to the observatory
        (km/s); fitted if None.

    Returns
    -------
    `~jwst_soss_custom.tracing.TraceSolution`
    """
    from .tracing import model_trace

    spectra, found = {}, {}
    for order, trace in solution.orders.items():
        cols = trace.columns
        cols = cols[(cols >= 4) & (cols < deep.shape[1] - 4)]
        mx, _, mwave = model_trace(solution.pwcpos, order)
        flux, variance = deep_spectrum(deep, trace.y, cols, noise=noise)
        found[order] = order_features(flux, cols, mx, mwave, lines, fwhm, max_shift, snr_min,
                                      variance=variance)
        spectra[order] = (flux, cols, mx, mwave)
    measurable = {o: f["features"] for o, f in found.items() if f["status"] == "measured"}
    solved = solve_shifts(measurable, velocity)
    fitted = velocity is None
    solution.record["radial_velocity"] = {
        "value": solved["velocity"] if np.isfinite(solved["velocity"]) else None,
        "error": solved["velocity_error"] if np.isfinite(solved["velocity_error"]) else None,
        "source": "fitted" if fitted else "given",
    }
    if fitted and np.isfinite(solved["velocity"]):
        log.info("Star's radial velocity from its lines: %+.0f +- %.0f km/s (give "
                 "stellar_rv to fix it and tighten the shifts)", solved["velocity"],
                 solved["velocity_error"])
    for order, trace in solution.orders.items():
        flux, cols, mx, mwave = spectra[order]
        shift = solved["shift"].get(order, np.nan)
        error = solved["error"].get(order, np.inf)
        used = solved["used"].get(order, np.zeros(0, bool))
        measured = np.isfinite(shift) and np.isfinite(error)
        if not measured:
            status = "not measurable"
        elif error > max_error:
            status = "too uncertain"
        elif abs(shift) <= apply_sigma * error:
            status = "not significant"
        else:
            status = "applied"
            all_cols = np.arange(trace.wavelength.size)
            new = np.interp(all_cols - shift, mx, mwave, left=np.nan, right=np.nan)
            trace.wavelength = np.where(np.isfinite(trace.wavelength), new, np.nan)
        features = found[order]["features"]
        trace.record["wavelength"] = {
            "shift": float(shift) if measured else None,
            "error": float(error) if measured else None,
            "applied_shift": float(shift) if status == "applied" else 0.0,
            "scatter": solved["tau"] if measured and np.isfinite(solved["tau"]) else None,
            "snr": found[order]["snr"],
            "n_lines": found[order]["n_lines"],
            "n_features": int(features["shift"].size),
            "n_used": int(used.sum()),
            "features": [
                {"wavelength": float(w), "shift": float(s), "error": float(e),
                 "depth": float(d), "velocity_px": float(v), "used": bool(u)}
                for w, s, e, d, v, u in zip(
                    features["wavelength"], features["shift"], features["error"],
                    features["depth"], features["velocity_px"],
                    used if used.size else np.zeros(features["shift"].size))
            ],
            "max_error": float(max_error),
            "status": status,
        }
        log.info(
            "Order %d wavelengths: %s (shift %+.3f +- %.3f px from %d of %d features, "
            "line S/N %.1f)%s",
            order, status, shift, error, used.sum(), features["shift"].size,
            found[order]["snr"], "" if status == "applied" else "; pastasoss's wavelengths kept",
        )
    if 1 in spectra and 2 in spectra:
        (f1, c1, _, _), (f2, c2, _, _) = spectra[1], spectra[2]
        w1 = solution.orders[1].wavelength[c1]
        w2 = solution.orders[2].wavelength[c2]
        cross = compare_orders(f1, w1, f2, w2, c2, max_shift, snr_min)
        solution.record["order2_vs_order1"] = {
            "shift": cross["shift"],
            "error": cross["error"] if np.isfinite(cross["error"]) else None,
            "snr": cross["snr"],
            "range_um": cross["range"], "status": cross["status"],
        }
        log.info(
            "Order 2 vs order 1 over %.2f-%.2f um: shift %+.3f +- %.3f order-2 px (%s)",
            *cross["range"], cross["shift"], cross["error"], cross["status"],
        )
    return solution
