"""Scene content that the reduction does not assume: other stars, field stars, visit systematics.

* `host_star`: a host of any temperature (3500-6500 K) with a line list of
  its own: the physical lines with depths set by temperature and perturbed at
  random, lines absent from the package's wavelength-check list, line widths
  of 2-4 pixels and, for cool stars, broad molecular bands; the continuum is
  tilted by the ratio of black bodies to the WASP-39 (5400 K) continuum.
* `draw_contaminants`: field stars whose spectral traces (orders 1-2) fall
  at random offsets on the detector, 0.5-5 % of the target's flux.
* `visit_systematics`: the start-of-visit exponential ramp, a slow linear
  drift and an optional mid-visit tilt event (a step in trace position,
  width and flux).
* `background_structure`: smooth structure on top of the zodiacal template.
* `filter_transmission`: the F277W filter (exposures taken to locate
  field-star order 0s).
"""

import numpy as np

__all__ = [
    "F277W_EDGES",
    "F277W_BACKGROUND_FRACTION",
    "filter_transmission",
    "HostStar",
    "host_star",
    "Contaminant",
    "draw_contaminants",
    "visit_systematics",
    "background_structure",
    "blackbody_ratio",
]

#: Half-power edges (micron) of NIRISS F277W: pivot 2.776 um, bandwidth 0.716 um.
F277W_EDGES = (2.418, 3.134)
#: Zodiacal background through F277W relative to CLEAR. Not calibrated: the
#: real F277W frame at hand is background-subtracted. The F277W band holds
#: roughly a quarter of the zodiacal photons SOSS collects without a filter
#: (2.4-3.1 um of 0.6-3.1 um, on the falling scattered-light spectrum).
F277W_BACKGROUND_FRACTION = 0.25

#: Reference temperature of the packaged (WASP-39) continuum, K.
REFERENCE_TEFF = 5400.0

#: Physical lines: (name, vacuum wavelength um, depth at 5400 K, temperature
#: slope of the depth per 1000 K: > 0 stronger in hotter stars).
_PHYSICAL_LINES = (
    ("Na I D2", 0.58916, 0.25, -0.06), ("Na I D1", 0.58975, 0.20, -0.05),
    ("H alpha", 0.65647, 0.20, 0.08), ("Ca II 8500", 0.85004, 0.18, -0.01),
    ("Ca II 8544", 0.85445, 0.28, -0.01), ("Ca II 8664", 0.86645, 0.24, -0.01),
    ("Pa delta", 1.00522, 0.04, 0.03), ("Pa gamma", 1.09412, 0.05, 0.03),
    ("Na I 11385", 1.13846, 0.06, -0.03), ("Na I 11407", 1.14069, 0.06, -0.03),
    ("K I 11693", 1.16934, 0.05, -0.03), ("K I 11776", 1.17760, 0.06, -0.03),
    ("K I 12436", 1.24357, 0.05, -0.03), ("K I 12526", 1.25256, 0.05, -0.03),
    ("Pa beta", 1.28217, 0.06, 0.04), ("Al I 13127", 1.31270, 0.04, -0.01),
    ("Mg I 15029", 1.50289, 0.05, -0.01), ("Pa alpha", 1.87563, 0.08, 0.04),
    ("Br gamma", 2.16613, 0.05, 0.03), ("Na I 22062", 2.20624, 0.05, -0.03),
    ("CO 2-0", 2.29353, 0.04, -0.04),
)
#: Lines that the package's wavelength-check list does not contain.
_EXTRA_LINES = (
    ("Fe I 8690", 0.86908, 0.06, -0.01), ("Ti I 9790", 0.97900, 0.04, -0.03),
    ("Si I 10830", 1.08299, 0.05, 0.0), ("Ca I 10347", 1.03466, 0.04, -0.02),
    ("Fe I 11886", 1.18861, 0.04, -0.01), ("Fe I 11976", 1.19763, 0.04, -0.01),
    ("Mg I 11831", 1.18310, 0.05, -0.01), ("Si I 12034", 1.20351, 0.04, 0.0),
    ("Mg I 14878", 1.48815, 0.04, -0.01), ("Fe I 15295", 1.52999, 0.03, -0.01),
    ("Mg I 17109", 1.71133, 0.05, -0.01), ("Ca I 19777", 1.97820, 0.03, -0.02),
    ("Ca I 22614", 2.26202, 0.03, -0.02), ("Mg I 22814", 2.28208, 0.03, -0.01),
    ("CO 3-1", 2.32265, 0.03, -0.04), ("CO 4-2", 2.35246, 0.03, -0.04),
)
#: Broad molecular bands of cool stars: (name, centre um, sigma um, depth at 3500 K).
_BANDS = (("FeH 0.99", 0.995, 0.010, 0.08), ("H2O 1.4", 1.40, 0.06, 0.10),
          ("H2O 1.9", 1.90, 0.08, 0.12), ("H2O 2.7", 2.70, 0.10, 0.10))


def filter_transmission(name, wavelength, edge_width=0.02):
    """Transmission of the SOSS filter wheel position at ``wavelength`` (micron).

    ``"CLEAR"`` passes everything; ``"F277W"`` is a top hat between
    `F277W_EDGES` with error-function edges ``edge_width`` micron wide (an
    approximation of the real curve).
    """
    from scipy.special import erf

    wave = np.asarray(wavelength, dtype=float)
    if name == "CLEAR":
        return np.ones_like(wave)
    if name != "F277W":
        raise ValueError(f"filter={name!r}: SOSS uses CLEAR or F277W.")
    lo, hi = F277W_EDGES
    return 0.25 * (1 + erf((wave - lo) / edge_width)) * (1 - erf((wave - hi) / edge_width))


def blackbody_ratio(wavelength, teff, reference=REFERENCE_TEFF, pivot=1.2):
    """B_lambda(teff) / B_lambda(reference), normalised to 1 at ``pivot`` micron."""
    c2 = 14387.77  # um K

    def planck(w, t):
        return w**-5 / np.expm1(c2 / (w * t))

    w = np.asarray(wavelength, dtype=float)
    ratio = planck(w, teff) / planck(w, reference)
    return ratio / (planck(pivot, teff) / planck(pivot, reference))


class HostStar:
    """Spectral shape of a host star relative to the packaged continuum.

    Parameters
    ----------
    teff : float
        Effective temperature (K).
    lines : list of tuple
        ``(name, wavelength um, depth, fwhm pixels)``.
    bands : list of tuple
        ``(name, centre um, sigma um, depth)``.
    """

    def __init__(self, teff, lines, bands):
        self.teff = float(teff)
        self.lines = list(lines)
        self.bands = list(bands)

    def transmission(self, wavelength, dispersion):
        """Line and band transmission (<= 1) per column."""
        wave = np.asarray(wavelength, dtype=float)
        centre = np.array([c for _, c, _, _ in self.lines])[:, None]
        depth = np.array([d for _, _, d, _ in self.lines])[:, None]
        sigma = np.array([f for *_, f in self.lines])[:, None] / 2.3548 * dispersion
        # Only lines within 6 sigma of a column matter; skip the rest.
        near = np.abs(wave - centre) < 6 * sigma
        profile = np.zeros(near.shape)
        profile[near] = np.exp(-0.5 * (((wave - centre) / sigma)[near]) ** 2)
        out = np.prod(1.0 - depth * profile, axis=0)
        for _, centre, sigma, depth in self.bands:
            out *= 1.0 - depth * np.exp(-0.5 * ((wave - centre) / sigma) ** 2)
        return np.clip(out, 0.0, None)

    def continuum_factor(self, wavelength):
        """Continuum relative to the packaged WASP-39 continuum."""
        return blackbody_ratio(wavelength, self.teff)

    def truth(self):
        """Plain dictionary of the star for the truth file."""
        return {
            "teff": self.teff,
            "lines": {
                "name": [n for n, *_ in self.lines],
                "wavelength": np.array([w for _, w, _, _ in self.lines]),
                "depth": np.array([d for _, _, d, _ in self.lines]),
                "fwhm_pixels": np.array([f for *_, f in self.lines]),
            },
            "bands": {
                "name": [n for n, *_ in self.bands],
                "centre": np.array([c for _, c, _, _ in self.bands]),
                "sigma": np.array([s for _, _, s, _ in self.bands]),
                "depth": np.array([d for *_, d in self.bands]),
            },
        }


def host_star(teff, rng, perturbation=0.35, forest_rng=None):
    """A host star of temperature ``teff`` with its own, randomly perturbed lines.

    Line depths follow a linear temperature law from their 5400 K values and
    are multiplied by a log-normal factor (``perturbation`` in ln); widths are
    2-4 pixels (rotation, pressure broadening); molecular bands deepen
    linearly below 4500 K. A forest of weak lines at random wavelengths
    (200 at 6400 K up to 800 below 3400 K, depths 0.3-3 %, 2-3 pixels wide)
    stands for the many unresolved metal and molecular lines of a real
    spectrum: at R ~ 700 they blend with the strong lines and pull their
    apparent centres, which a wavelength check must survive.

    Parameters
    ----------
    teff : float
        3500-6500 K.
    rng : numpy.random.Generator
        Draws the strong lines' depths and widths.
    perturbation : float
    forest_rng : numpy.random.Generator, optional
        Draws the weak-line forest (none if omitted).

    Returns
    -------
    HostStar
    """
    if not 3000.0 <= teff <= 7000.0:
        raise ValueError(f"teff={teff}: the host-star model covers 3000-7000 K.")
    dt = (teff - REFERENCE_TEFF) / 1000.0
    lines = []
    for name, wave, depth, slope in _PHYSICAL_LINES + _EXTRA_LINES:
        d = max(depth + slope * dt, 0.0) * float(np.exp(rng.normal(0.0, perturbation)))
        lines.append((name, wave, min(d, 0.8), float(rng.uniform(2.0, 4.0))))
    if forest_rng is not None:
        n = int(np.clip(400 * (1 + (REFERENCE_TEFF - teff) / 2000), 200, 800))
        waves = np.sort(forest_rng.uniform(0.6, 2.9, n))
        depths = np.exp(forest_rng.uniform(np.log(0.003), np.log(0.03), n))
        widths = forest_rng.uniform(2.0, 3.0, n)
        lines += [("weak", float(w), float(d), float(f)) for w, d, f in zip(waves, depths, widths)]
    cool = np.clip((4500.0 - teff) / 1000.0, 0.0, 1.5)
    bands = [(n, c, s, d * cool) for n, c, s, d in _BANDS if cool > 0]
    return HostStar(teff, lines, bands)


class Contaminant:
    """A field star: its traces are the target's shifted by (dx, dy) pixels.

    Attributes
    ----------
    dx, dy : float
        Offset of its traces from the target's (pixels).
    flux_ratio : float
        Its flux relative to the target's (same spectral shape, tilted by
        `teff`).
    teff : float
    """

    def __init__(self, dx, dy, flux_ratio, teff):
        self.dx, self.dy = float(dx), float(dy)
        self.flux_ratio, self.teff = float(flux_ratio), float(teff)


def draw_contaminants(n, rng, flux_range=(0.005, 0.05)):
    """``n`` field stars at random offsets that put their traces on the detector.

    Half of them, in turn, fall close to the target's order-1 trace
    (|dy| < 40 px), the others anywhere (|dy| < 150 px); |dx| < 600 px.
    Fluxes are log-uniform in ``flux_range`` times the target's.
    """
    out = []
    for k in range(n):
        near = k % 2 == 0
        dy = rng.uniform(-40, 40) if near else rng.uniform(-150, 150)
        dx = rng.uniform(-600, 600)
        ratio = float(np.exp(rng.uniform(*np.log(flux_range))))
        out.append(Contaminant(dx, dy, ratio, rng.uniform(3500, 6500)))
    return out


def visit_systematics(config, mid_times):
    """Achromatic flux factor and trace steps of every integration.

    Parameters
    ----------
    config : SimConfig
        ``visit_ramp_amplitude``, ``visit_ramp_tau`` (minutes),
        ``flux_drift``, ``tilt_integration``, ``tilt_dy``, ``tilt_dwidth``,
        ``tilt_flux``.
    mid_times : ndarray
        Mid-integration times (days).

    Returns
    -------
    flux : ndarray
        Multiplicative factor per integration.
    dy, dwidth : ndarray
        Trace-position (pixels) and relative width steps per integration.
    """
    t = (np.asarray(mid_times) - mid_times[0]) * 1440.0  # minutes since start
    span = max(t[-1], 1e-9)
    flux = 1.0 - config.visit_ramp_amplitude * np.exp(-t / config.visit_ramp_tau)
    flux *= 1.0 + config.flux_drift * (t / span - 0.5)
    dy = np.zeros(t.size)
    dwidth = np.zeros(t.size)
    if config.tilt_integration is not None and 0 <= config.tilt_integration < t.size:
        after = np.arange(t.size) >= config.tilt_integration
        dy[after] = config.tilt_dy
        dwidth[after] = config.tilt_dwidth
        flux = flux * np.where(after, 1.0 + config.tilt_flux, 1.0)
    return flux, dy, dwidth


def background_structure(shape, amplitude, rng):
    """Smooth multiplicative structure (mean 1) the background template lacks.

    A few long-wavelength two-dimensional cosines with random phases and a
    diffuse elliptical glow, scaled so the peak-to-peak is about
    ``4 x amplitude``.
    """
    ny, nx = shape
    if amplitude == 0:
        return np.ones(shape, dtype=np.float32)
    y = np.arange(ny)[:, None] / ny
    x = np.arange(nx)[None, :] / nx
    field = np.zeros(shape)
    for _ in range(4):
        ky, kx = rng.uniform(0.3, 1.5), rng.uniform(0.5, 3.0)
        field += np.cos(2 * np.pi * (ky * y + kx * x) + rng.uniform(0, 2 * np.pi))
    x0, y0 = rng.uniform(0.2, 0.8), rng.uniform(0.2, 0.8)
    field += 2.0 * np.exp(-0.5 * (((x - x0) / 0.08) ** 2 + ((y - y0) / 0.3) ** 2))
    field -= field.mean()
    field /= field.std()
    return (1.0 + amplitude * field).astype(np.float32)
