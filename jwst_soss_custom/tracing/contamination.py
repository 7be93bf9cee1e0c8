"""Field-star spectral traces and the neighbouring order under each aperture (pure numpy/scipy).

A field star in the SOSS field of view puts its own orders 1 and 2 on the
detector: the target's traces shifted by ``(dx, dy)`` pixels (the same
optics, the spectrum displaced along and across the dispersion), scaled by
its flux ratio to the target, which varies smoothly with wavelength (another
temperature). Their light under the target's aperture does not transit and
dilutes the depths. The target's own order 2 lies 20-30 rows from order 1
redwards of ~2.1 um (order 1) / ~1.1 um (order 2): its wings do the same to
the other order's aperture.

* `find_field_traces` searches the deep frame, with the target's own traces
  masked, for copies of each order's trace template: one FFT
  cross-correlation over every shift at once, the strongest copy fitted and
  removed, the search repeated.
* `fit_field_traces` fits every copy's flux ratio (one polynomial in log
  wavelength for both of its orders) jointly with nuisance images that are
  fitted but never kept (`background_basis`, the halo, `wing_basis`) on the
  pixels outside the target's traces, and returns the copies' image: their
  light everywhere, including under the target's traces where it cannot be
  seen directly.
* `neighbour_wings` models an order's near wing in the other order's
  aperture by mirroring its far side about its centre (the side that faces
  away from the aperture holds nothing else); `contamination_model` adds
  that order's halo.

`contamination_model` does all of it for `soss_tracing`; `soss_extract`
subtracts the model's weighted sums from every integration's flux and
reports the dilution per wavelength (docs/contamination.md).
"""

import numpy as np
from numpy.polynomial import legendre
from scipy import ndimage, signal

from jwst_soss_custom.background.halo import halo_basis

__all__ = [
    "FieldTrace",
    "ContaminationModel",
    "contamination_model",
    "trace_templates",
    "background_basis",
    "find_field_traces",
    "fit_field_traces",
    "neighbour_wings",
    "wing_basis",
]

#: Fall-off power of the halo image fitted with the copies (the real
#: WASP-39 frame gives 0.8-1.1; see `jwst_soss_custom.background.halo`). One
#: image, so its amplitude is a physical (non-negative) halo level; several
#: powers at once took other light with amplitudes of both signs.
HALO_POWER = 1.0
#: Largest flux ratio to the target of a modelled field star.
MAX_RATIO = 1.0
#: Shifts whose template overlaps the usable pixels by less than this share of
#: its energy are not searched (the copy would lie almost wholly under the
#: target's traces or off the detector: not measurable).
MIN_OVERLAP = 0.25


class FieldTrace:
    """One field star's traces: the target's shifted by ``(dx, dy)``.

    Attributes
    ----------
    dx, dy : float
        Shift (pixels) along and across the dispersion.
    significance : float
        Detection significance (robust sigma of the correlation map).
    ratio : dict of int to ndarray
        Flux ratio to the target per detector column, per order of the copy
        (0 where the copy has no light).
    degree : int
        Degree of the ratio polynomials the data supported.
    quality : float
        Share of the data's variance the copy explains where it is bright
        and seen (1 = all; set by `contamination_model`).
    """

    def __init__(self, dx, dy, significance=np.nan):
        self.dx, self.dy = float(dx), float(dy)
        self.significance = float(significance)
        self.quality = np.nan
        self.ratio = {}
        self.degree = 0
        self.zrange = (0.0, 0.0)

    def record(self):
        """Plain summary (for the trace record and the products' metadata)."""
        mean = {o: float(np.mean(r[r > 0])) if np.any(r > 0) else 0.0
                for o, r in self.ratio.items()}
        return {"dx": round(self.dx, 2), "dy": round(self.dy, 2),
                "significance": round(self.significance, 1), "degree": self.degree,
                "quality": round(self.quality, 3),
                **{f"flux_ratio_order_{o}": round(v, 5) for o, v in mean.items()}}


def trace_templates(deep, traces, halfwidth):
    """The target's traces cut out of the deep frame, one image per order.

    Parameters
    ----------
    deep : ndarray (ny, nx)
        Background-subtracted deep frame (NaN = unusable).
    traces : dict of int to ndarray (nx,)
        Centre row of each order per detector column (NaN off the detector).
    halfwidth : float
        Rows either side of the centre that belong to the template.

    Returns
    -------
    dict of int to ndarray (ny, nx) of float64
        The deep frame within the band (where two bands overlap, in the
        nearer order's), 0 elsewhere and on unusable pixels.
    """
    rows = np.arange(deep.shape[0])[:, None]
    clean = np.nan_to_num(np.asarray(deep, float), nan=0.0, posinf=0.0, neginf=0.0)
    distance = {order: np.abs(rows - np.nan_to_num(centre, nan=-1e6)[None, :])
                for order, centre in traces.items()}
    nearest = np.min(np.stack(list(distance.values())), axis=0)
    out = {}
    for order, d in distance.items():
        # Where two orders' bands overlap, a pixel is the nearer order's.
        band = (d <= halfwidth) & (d <= nearest)
        out[order] = np.where(band, np.clip(clean, 0.0, None), 0.0)
    return out


def background_basis(shape, knots=(4, 8)):
    """Bilinear tent images on a coarse grid: what the background step left, smoothly.

    ``knots`` (rows, columns) tents span the frame; a tent is ~85 x 290
    pixels wide for the default, far wider than a spectral trace is high, so
    fitted together with the copies it takes the smooth residual background
    and not their light.

    Returns
    -------
    list of ndarray (ny, nx)
    """
    ny, nx = shape
    out = []
    hat_y = [_hat(np.arange(ny), np.linspace(0, ny - 1, knots[0]), i) for i in range(knots[0])]
    hat_x = [_hat(np.arange(nx), np.linspace(0, nx - 1, knots[1]), j) for j in range(knots[1])]
    for hy in hat_y:
        for hx in hat_x:
            out.append((hy[:, None] * hx[None, :]).astype(np.float32))
    return out


def _hat(x, nodes, i):
    """Piecewise-linear basis function ``i`` on ``nodes`` (1 at node i, 0 at its neighbours)."""
    values = np.zeros(nodes.size)
    values[i] = 1.0
    return np.interp(x, nodes, values)


def wing_basis(templates, centres, usable, inner, outer, degree=2):
    """Nuisance images for the target's own far wings (fitted with the copies, never kept).

    Beyond the excluded cores the target's light falls off slowly (the PSF's
    wings, the halo); left out of the model it looks like a faint copy just
    outside the cores. Per order and side, the order's column flux times a
    Legendre polynomial of degree ``degree`` in the distance from the centre
    between ``inner`` and ``outer`` rows: smooth across the dispersion, where
    a field star's trace is a narrow peak.

    Returns
    -------
    list of ndarray (ny, nx)
        Images with usable pixels.
    """
    ny = usable.shape[0]
    rows = np.arange(ny)[:, None]
    out = []
    for m, template in templates.items():
        flux = template.sum(axis=0)[None, :]
        offset = rows - np.nan_to_num(centres[m], nan=-1e6)[None, :]
        for sign in (-1, 1):
            d = sign * offset
            band = (d >= inner) & (d <= outer)
            if (band & usable).sum() < 50:
                continue
            t = (2 * d - inner - outer) / (outer - inner)
            for j in range(degree + 1):
                shape = legendre.legval(t, np.eye(degree + 1)[j])
                out.append(np.where(band, flux * shape, 0.0).astype(np.float32))
    return out


def _shift(image, dx, dy):
    """``image`` moved by ``(dx, dy)`` pixels (cubic-spline interpolation, 0 outside)."""
    return ndimage.shift(image, (dy, dx), order=3, mode="constant", cval=0.0)


def find_field_traces(residual, usable, templates, fit, threshold=8.0, min_ratio=0.002,
                      max_sources=6):
    """Shifted copies of the target's traces in a deep frame, strongest first.

    Each order's template is correlated with the data on its own, so a copy
    whose order 1 falls off the detector is still found by its order 2; a
    copy sits at the same shift whichever of its orders is seen.

    Parameters
    ----------
    residual : ndarray (ny, nx)
        Background-subtracted deep frame, 0 where not usable.
    usable : ndarray of bool (ny, nx)
        Pixels outside the target's traces, order 0s and reference pixels.
    templates : dict of int to ndarray (ny, nx)
        The target's traces per order (`trace_templates`).
    fit : callable
        ``fit(found) -> model image`` of the copies found so far and of the
        nuisance (`fit_field_traces`); each search runs on ``residual -
        model``.
    threshold : float
        Detection threshold in robust sigma of the correlation map.
    min_ratio : float
        Smallest flux ratio to the target worth a detection.
    max_sources : int

    Returns
    -------
    list of FieldTrace
    """
    ny, nx = residual.shape
    mask = usable.astype(float)
    orders = [m for m, t in templates.items() if (t**2).sum() > 0]
    # Overlap of each template with the usable pixels at every shift: the
    # normalisation of the correlation (a least-squares ratio per shift).
    overlap = {m: signal.correlate(mask, templates[m] ** 2, mode="full", method="fft")
               for m in orders}
    valid = {m: overlap[m] > MIN_OVERLAP * (templates[m] ** 2).sum() for m in orders}
    found = []
    model = fit(found)
    for _ in range(max_sources):
        data = (residual - model) * mask
        best = (-np.inf, None)
        for m in orders:
            num = signal.correlate(data, templates[m], mode="full", method="fft")
            with np.errstate(invalid="ignore", divide="ignore"):
                ratio = np.where(valid[m], num / overlap[m], 0.0)
                z = np.where(valid[m], num / np.sqrt(overlap[m]), 0.0)
            zv = z[valid[m]]
            sigma = 1.4826 * np.median(np.abs(zv - np.median(zv)))
            if not sigma > 0:
                continue
            score = np.where(valid[m] & (ratio >= min_ratio), (z - np.median(zv)) / sigma,
                             -np.inf)
            peak = np.unravel_index(np.argmax(score), score.shape)
            if score[peak] > best[0]:
                best = (score[peak], score)
        top, score = best
        if not top >= threshold:
            break
        ky, kx = np.unravel_index(np.argmax(score), score.shape)
        # Never the same copy twice: what the fit could not remove there is
        # not another star.
        for m in orders:
            valid[m][max(ky - 3, 0):ky + 4, max(kx - 30, 0):kx + 31] = False
        inner = 0 < ky < score.shape[0] - 1 and 0 < kx < score.shape[1] - 1
        dy = ky - (ny - 1) + (_vertex(score[ky - 1:ky + 2, kx]) if inner else 0.0)
        dx = kx - (nx - 1) + (_vertex(score[ky, kx - 1:kx + 2]) if inner else 0.0)
        found.append(FieldTrace(dx, dy, top))
        model = fit(found)
    return found


def _vertex(values):
    """Sub-pixel offset of a parabola's peak through three samples (0 if flat)."""
    if not np.all(np.isfinite(values)):
        return 0.0
    curvature = values[0] - 2 * values[1] + values[2]
    if curvature >= 0:
        return 0.0
    return float(np.clip(0.5 * (values[0] - values[2]) / curvature, -0.5, 0.5))


def fit_field_traces(found, residual, usable, templates, wavelengths, nuisance=(),
                     max_degree=2, min_fraction=0.3):
    """Fit each copy's flux ratio and return the model image of all copies.

    Each copy contributes ``sum_m r(lambda_m(u)) * T_m(y - dy, x - dx)``:
    ``u = x - dx`` is the target column its light comes from, ``lambda_m(u)``
    the wavelength order ``m`` has there, and ``r`` one Legendre polynomial
    in ``log(lambda)`` for both orders (a ratio of two stellar spectra: smooth
    in wavelength, the same for every order). All copies are fitted together
    by linear least squares on the usable pixels. The degree is what the
    visible part of each copy supports: 2 when at least two thirds of its
    columns are seen (at least ``min_fraction`` of their light on usable
    pixels), 1 from one third, else 0 (a constant ratio).

    Parameters
    ----------
    found : list of FieldTrace
        Updated in place: ``ratio`` and ``degree``.
    residual : ndarray (ny, nx)
        Background-subtracted deep frame, 0 where not usable.
    usable : ndarray of bool (ny, nx)
    templates : dict of int to ndarray (ny, nx)
        The target's traces per order (`trace_templates`).
    wavelengths : dict of int to ndarray (nx,)
        Wavelength (micron) of each order per detector column (NaN off it).
    nuisance : list of ndarray (ny, nx)
        Further images fitted with the copies but not part of their model
        (`wing_basis`).
    max_degree : int
    min_fraction : float

    Returns
    -------
    copies : ndarray (ny, nx)
        The copies' light everywhere (DN/s), with the fitted ratios.
    other : ndarray (ny, nx)
        The fitted nuisance images' sum.
    coefficients : ndarray
        The nuisance images' fitted coefficients, in their order.
    """
    ny, nx = residual.shape
    shifted, basis, owners = [], [], []
    for k, star in enumerate(found):
        images = {m: _shift(t, star.dx, star.dy) for m, t in templates.items()}
        shifted.append(images)
        total = sum(images.values())
        light = total.sum(axis=0)
        seen = (total * usable).sum(axis=0)
        lit = light > 0.01 * light.max() if light.max() > 0 else light > 0
        visible = lit & (seen >= min_fraction * light)
        share = visible.sum() / max(lit.sum(), 1)
        star.degree = int(min(max_degree, 2 if share >= 2 / 3 else 1 if share >= 1 / 3 else 0))
        z = _log_wavelength(wavelengths, star.dx, nx)
        # The ratio is known where the copy is seen: held at its edge values
        # beyond (a polynomial extrapolated to unseen wavelengths explodes).
        seen_z = np.concatenate([z[m][visible & (images[m].sum(axis=0) > 0)] for m in images])
        star.zrange = (seen_z.min(), seen_z.max()) if seen_z.size else (0.0, 0.0)
        z = {m: np.clip(values, *star.zrange) for m, values in z.items()}
        for j in range(star.degree + 1):
            unit = np.eye(star.degree + 1)[j]
            basis.append(sum(images[m] * legendre.legval(z[m], unit)[None, :]
                             for m in images).astype(np.float32))
            owners.append(k)
    basis += list(nuisance)
    owners += [-1] * len(nuisance)
    model, other = np.zeros((ny, nx)), np.zeros((ny, nx))
    if not basis:
        return model, other, np.zeros(0)
    support = np.zeros(usable.shape, bool)
    for image in basis:
        support |= image != 0
    support &= usable
    coeffs = _solve(np.stack([b[support] for b in basis], axis=1), residual[support])
    owners = np.array(owners)
    for c, image in zip(coeffs[owners == -1], nuisance):
        other += c * image
    for k, star in enumerate(found):
        z = {m: np.clip(values, *star.zrange)
             for m, values in _log_wavelength(wavelengths, star.dx, nx).items()}
        star.ratio = {}
        for m, image in shifted[k].items():
            # A ratio of fluxes: never negative.
            ratio = np.clip(legendre.legval(z[m], coeffs[owners == k]), 0.0, None)
            star.ratio[m] = np.where(image.sum(axis=0) > 0, ratio, 0.0)
            model += image * star.ratio[m][None, :]
    return model, other, coeffs[owners == -1]


def _solve(design, values, block=65536):
    """Least squares through float64 normal equations summed in blocks of rows.

    ``design`` stays float32 (tens of images' worth of pixels): no float64
    copy of it is ever made. The few-dozen-square normal matrix is solved by
    SVD (`numpy.linalg.lstsq`), which copes with nearly collinear images.
    """
    n = design.shape[1]
    normal, right = np.zeros((n, n)), np.zeros(n)
    for start in range(0, design.shape[0], block):
        rows = design[start:start + block].astype(np.float64)
        normal += rows.T @ rows
        right += rows.T @ values[start:start + block]
    return np.linalg.lstsq(normal, right, rcond=1e-12)[0]


def _log_wavelength(wavelengths, dx, nx):
    """Per order, log-wavelength of the light a copy shifted by ``dx`` puts in each column.

    Mapped so 0.6-2.83 um spans about [-1, 1] (the Legendre domain); 0 where
    the source column has no wavelength (the template is 0 there too).
    """
    source = np.arange(nx) - dx
    out = {}
    for m, wave in wavelengths.items():
        known = np.isfinite(wave)
        lam = np.interp(source, np.flatnonzero(known), wave[known], left=np.nan, right=np.nan)
        out[m] = np.nan_to_num(np.log(lam / 1.3) / 0.78, nan=0.0)
    return out


def neighbour_wings(deep, centre, other, halfwidth, reach=26.0):
    """Light of a neighbouring order in the band around ``centre``, mirrored from its far side.

    An order's cross-dispersion profile is close to symmetric beyond its
    core; the side facing away from the band holds only that order. Each
    pixel of the band receives the deep frame at the same distance from the
    neighbour's centre on the far side: ``deep(2 y_other - y)``.

    Parameters
    ----------
    deep : ndarray (ny, nx)
    centre, other : ndarray (nx,)
        Centre rows of the band's order and of the neighbour (NaN off the
        detector).
    halfwidth : float
        Half height of the band (rows).
    reach : float
        Rows from the neighbour's centre beyond which its light is taken as
        0 (its profile has ended; a mirror further out would only copy
        whatever else lies there).

    Returns
    -------
    ndarray (ny, nx)
        The neighbour's light on the band's pixels that lie on its near side
        within ``reach`` (0 elsewhere and where the mirror falls off the
        detector).
    """
    ny, nx = deep.shape
    rows = np.arange(ny)[:, None].astype(float)
    yc = np.nan_to_num(centre, nan=-1e6)[None, :]
    yo = np.nan_to_num(other, nan=-1e6)[None, :]
    near = ((np.abs(rows - yc) <= halfwidth) & (np.sign(yo - yc) * (yo - rows) > 0)
            & (np.abs(yo - rows) <= reach))
    mirror = 2 * yo - rows
    inside = near & (mirror >= 0) & (mirror <= ny - 1)
    lo = np.clip(np.floor(mirror), 0, ny - 1).astype(int)
    hi = np.clip(lo + 1, 0, ny - 1)
    frac = mirror - np.floor(mirror)
    clean = np.clip(np.nan_to_num(np.asarray(deep, float), nan=0.0), 0.0, None)
    col = np.broadcast_to(np.arange(nx)[None, :], lo.shape)
    values = (1 - frac) * clean[lo, col] + frac * clean[hi, col]
    return np.where(inside, values, 0.0)


class ContaminationModel:
    """What lies under each order's aperture that is not that order of the target.

    Attributes
    ----------
    field : ndarray (ny, nx) of float32
        The field stars' traces (DN/s) everywhere on the detector: light that
        does not transit.
    neighbours : dict of int to ndarray (ny, nx) of float32
        Per target order, the other traced orders' light in its band (DN/s):
        light that transits with the other order's depth.
    stars : list of FieldTrace
        The field stars' traces found (or given) and fitted.
    record : dict
        Plain summary for the trace record and the products.
    """

    def __init__(self, field, neighbours, stars, record):
        self.field, self.neighbours = field, neighbours
        self.stars, self.record = stars, record

    def to_tree(self):
        """ASDF-serialisable form (the ``soss_contamination`` attribute)."""
        return {"field": self.field,
                **{f"neighbour_order_{o}": image for o, image in self.neighbours.items()},
                "record": self.record}

    @classmethod
    def from_tree(cls, tree):
        """Inverse of `to_tree` (arrays may come back as ASDF arrays)."""
        neighbours = {int(k.rsplit("_", 1)[1]): np.asarray(v, np.float32)
                      for k, v in tree.items() if k.startswith("neighbour_order_")}
        return cls(np.asarray(tree["field"], np.float32), neighbours, [],
                   dict(tree.get("record", {})))


def contamination_model(deep, centres, wavelengths, excluded, shifts=None, exclusion=26.0,
                        template_halfwidth=22.0, aperture_halfwidth=20.0, threshold=8.0,
                        min_ratio=0.002, max_sources=6, min_quality=0.5, overlap=True):
    """Find and model the field stars' traces and the orders' mutual wings.

    Parameters
    ----------
    deep : ndarray (ny, nx)
        Background-subtracted deep frame (NaN = unusable).
    centres, wavelengths : dict of int to ndarray (nx,)
        Centre row and wavelength of each traced order per column (NaN off
        the detector).
    excluded : ndarray of bool (ny, nx)
        Pixels never to fit (reference pixels, order 0s, order 3).
    shifts : list of (dx, dy) or of FieldTrace, optional
        Known field-star shifts (a catalogue, or an earlier search): no
        search, only the fit.
    exclusion : float
        Rows either side of each order's centre left out of the fit (the
        target's own light dominates there).
    template_halfwidth : float
        Rows either side of the centre that make an order's template.
    aperture_halfwidth : float
        Rows either side of an order's centre where its neighbour's wings are
        modelled.
    threshold, min_ratio, max_sources
        Detection settings (`find_field_traces`).
    min_quality : float
        Share of the data's variance a copy must explain where it is bright
        and seen (``FieldTrace.quality``); copies below it are reported and
        not modelled (measured after the order 0s are masked: simulated
        stars 0.78-1.0, a false candidate of a clean scene 0.31, the real
        WASP-39 frame's trace-like residuals 0.003-0.03).
    overlap : bool
        Model the other orders' wings under each order (`neighbour_wings`).

    Returns
    -------
    ContaminationModel
    """
    shape = deep.shape
    rows = np.arange(shape[0])[:, None]
    clean = np.nan_to_num(np.asarray(deep, float), nan=0.0, posinf=0.0, neginf=0.0)
    usable = ~excluded & np.isfinite(deep)
    for centre in centres.values():
        usable &= ~(np.abs(rows - np.nan_to_num(centre, nan=-1e6)[None, :]) <= exclusion)
    residual = np.where(usable, clean, 0.0)
    templates = trace_templates(deep, centres, template_halfwidth)
    # The smooth light the background step left: coarse tents for what the
    # template missed, and the star's halo (its traces' light spread along
    # the columns, soss_background's model) at a few fall-off powers.
    source = np.fft.rfft(sum(templates.values()), n=2 * shape[0], axis=0)
    smooth = background_basis(shape) + [
        halo_basis(None, HALO_POWER, spectrum=source, ny=shape[0]).astype(np.float32)]
    nuisance = smooth + wing_basis(templates, centres, usable, exclusion, exclusion + 36)

    def fit(found):
        copies, other, _ = fit_field_traces(found, residual, usable, templates, wavelengths,
                                            nuisance if found else smooth)
        return copies + other

    if shifts is None:
        found = find_field_traces(residual, usable, templates, fit, threshold, min_ratio,
                                  max_sources)
    else:
        found = [s if isinstance(s, FieldTrace) else FieldTrace(*s) for s in shifts]
    copies, other, coeffs = fit_field_traces(found, residual, usable, templates, wavelengths,
                                             nuisance)
    # How much of the data each copy explains where it is bright and seen:
    # a field star whose traces are not a shifted copy of the target's (or a
    # detection of something else) must not be subtracted under the target.
    left = residual - copies - other
    kept = []
    for star in found:
        own = sum(_shift(t, star.dx, star.dy) * star.ratio[m][None, :]
                  for m, t in templates.items())
        bright = usable & (own > 0.1 * own.max()) if own.max() > 0 else usable & False
        data = (left + own)[bright]
        star.quality = float(1 - (left[bright] ** 2).sum() / max((data**2).sum(), 1e-30))
        # A copy brighter than the target is not a field star's trace the
        # target's template can stand for (it would be the brighter star).
        brightest = max((float(np.max(r)) for r in star.ratio.values()), default=0.0)
        if star.quality >= min_quality and brightest <= MAX_RATIO:
            kept.append(star)
    if len(kept) < len(found):
        copies, _, coeffs = fit_field_traces(kept, residual, usable, templates, wavelengths,
                                             nuisance)
    # Each order's halo, with the amplitude fitted to all orders' light (the
    # halo image is linear in its source); light is never negative.
    amplitude = max(float(coeffs[len(smooth) - 1]), 0.0)
    halos = {order: amplitude * halo_basis(t, HALO_POWER) for order, t in templates.items()}
    # Mirrored without any halo: the far side's halo is (mostly) the
    # aperture's own order's, which is no contamination.
    target = clean - copies - sum(halos.values())
    neighbours = {}
    for order, centre in centres.items():
        image = np.zeros(shape)
        if overlap:
            for neighbour, neighbour_centre in centres.items():
                if neighbour != order:
                    image += neighbour_wings(target, centre, neighbour_centre,
                                             aperture_halfwidth, exclusion) + halos[neighbour]
        neighbours[order] = image.astype(np.float32)
    record = {"n_field_traces": len(kept), "field_traces": [f.record() for f in kept],
              "rejected_field_traces": [f.record() for f in found if f not in kept],
              "search": "catalogue" if shifts is not None else "deep frame",
              "overlap_model": "mirrored wings and halo" if overlap else "none"}
    return ContaminationModel(copies.astype(np.float32), neighbours, kept, record)
