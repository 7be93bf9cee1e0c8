"""The noiseless SOSS scene: traces, profile, spectrum, background, order 0s.

Everything here is deterministic. `Scene` precomputes what does not change
between integrations (column fluxes, halo images, background, field-star
order 0s) and renders the star for any per-integration trace shift and
light-curve factors.
"""

import logging

import numpy as np
from astropy.io import fits

from jwst_soss_custom._base.atomic import atomic_path
from jwst_soss_custom._base.geometry import NX, NY, reference_pixels
from jwst_soss_custom.datasets import field, reference
from jwst_soss_custom.datasets.traces import trace_solution

log = logging.getLogger(__name__)

__all__ = [
    "STELLAR_LINES",
    "throughput",
    "stellar_flux_density",
    "line_absorption",
    "order0_image",
    "Scene",
    "write_background_files",
    "noisy_deep_frame",
]


#: Stellar absorption lines drawn on the continuum: (name, vacuum wavelength
#: in micron, depth at SOSS resolution). Depths are illustrative values of
#: the size seen in G-dwarf spectra at R~700, not fitted to WASP-39; they are
#: scaled by ``SimConfig.stellar_line_depth``.
STELLAR_LINES = (
    ("Na I D2", 0.58916, 0.25),
    ("Na I D1", 0.58975, 0.20),
    ("H alpha", 0.65646, 0.25),
    ("Ca II 8500", 0.85004, 0.20),
    ("Ca II 8544", 0.85444, 0.30),
    ("Ca II 8664", 0.86645, 0.25),
    ("Pa delta", 1.00521, 0.05),
    ("He I 10833", 1.08333, 0.03),
    ("Pa gamma", 1.09411, 0.06),
    ("Na I 11385", 1.13846, 0.06),
    ("Na I 11407", 1.14069, 0.06),
    ("K I 11693", 1.16934, 0.05),
    ("K I 11773", 1.17728, 0.06),
    ("K I 12436", 1.24357, 0.05),
    ("K I 12526", 1.25256, 0.05),
    ("Pa beta", 1.28216, 0.08),
    ("Al I 13127", 1.31270, 0.04),
    ("Al I 13154", 1.31543, 0.04),
    ("Mg I 15029", 1.50289, 0.05),
    ("Si I 15892", 1.58923, 0.04),
    ("Pa alpha", 1.87561, 0.10),
    ("Br delta", 1.94509, 0.04),
    ("Br gamma", 2.16612, 0.06),
    ("Na I 22062", 2.20624, 0.05),
    ("Na I 22090", 2.20897, 0.04),
    ("CO 2-0", 2.29353, 0.03),
)
#: Speed of light (km/s).
C_KMS = 299792.458
#: FWHM of an unresolved line on the detector (pixels along the dispersion).
LINE_FWHM_PIX = 2.0


def throughput(order, wavelength, scale=None):
    """Order throughput at ``wavelength`` (micron); 0 outside the table.

    The SPECTRACE throughput times the empirical per-order correction
    measured on the real frame (column ``scale_<order>`` of the packaged
    table; only order 2 differs from 1, see ``docs/simulator.md``).

    Parameters
    ----------
    order : int
    wavelength : array_like
    scale : tuple of ndarray, optional
        ``(wavelength, factor)`` replacing the packaged correction.
    """
    table = reference.load_throughput()
    grid = np.asarray(table["wavelength"])
    raw = np.interp(
        wavelength, grid, np.asarray(table[f"throughput_{order}"]), left=0.0, right=0.0
    )
    if scale is None:
        name = f"scale_{order}"
        if name not in table:
            return raw
        scale = (grid, np.asarray(table[name]))
    return raw * np.interp(wavelength, scale[0], scale[1])


def stellar_flux_density(wavelength, spectrum=None):
    """WASP-39 continuum (DN/s per micron, before throughput) at ``wavelength``.

    Parameters
    ----------
    wavelength : array_like
        Wavelengths (micron).
    spectrum : tuple of ndarray, optional
        ``(wavelength, flux)`` to use instead of the packaged spectrum.
    """
    wave, flux = spectrum if spectrum is not None else reference.load_stellar_spectrum()
    return np.interp(wavelength, wave, flux)


def line_absorption(wavelength, dispersion, depth_scale=1.0, lines=STELLAR_LINES):
    """Transmission (<= 1) of the stellar absorption lines per column.

    Parameters
    ----------
    wavelength, dispersion : ndarray
        Wavelength (micron) and |d lambda/dx| (micron/pixel) per column; the
        line width is `LINE_FWHM_PIX` pixels on the detector.
    depth_scale : float
        Multiplies every line depth (0 gives no lines).

    Returns
    -------
    ndarray
    """
    transmission = np.ones_like(np.asarray(wavelength, dtype=float))
    if depth_scale == 0:
        return transmission
    sigma = LINE_FWHM_PIX / (2 * np.sqrt(2 * np.log(2))) * dispersion
    for _, center, depth in lines:
        transmission *= 1.0 - depth_scale * depth * np.exp(
            -0.5 * ((wavelength - center) / sigma) ** 2
        )
    return np.clip(transmission, 0.0, None)


def order0_image(n, threshold=0.3):
    """Field-star order-0 contaminants at their real positions.

    Parameters
    ----------
    n : int
        Number of contaminants (the first ``n`` packaged stamps).
    threshold : float
        Level (DN/s) above which a pixel belongs to the contaminant mask.

    Returns
    -------
    image : ndarray
        float32 (256, 2048) DN/s above the background.
    mask : ndarray of bool
        Pixels of the contaminants above ``threshold``.
    catalog : dict
        ``x``, ``y`` (centre) and ``peak`` (DN/s) of each contaminant.
    """
    image = np.zeros((NY, NX), dtype=np.float32)
    stamps = reference.load_order0_stamps()
    available = stamps["stamps"].shape[0]
    if n > available:
        raise ValueError(f"n_order0={n}: only {available} order-0 stamps are packaged.")
    sy, sx = stamps["stamps"].shape[1:]
    xs, ys, peaks = [], [], []
    for k in range(n):
        y0 = int(stamps["y"][k]) - sy // 2
        x0 = int(stamps["x"][k]) - sx // 2
        # Clip the stamp where it crosses the frame edge.
        ys_img = slice(max(y0, 0), min(y0 + sy, NY))
        xs_img = slice(max(x0, 0), min(x0 + sx, NX))
        stamp = stamps["stamps"][k][
            ys_img.start - y0 : ys_img.stop - y0, xs_img.start - x0 : xs_img.stop - x0
        ]
        image[ys_img, xs_img] += stamp
        xs.append(float(stamps["x"][k]))
        ys.append(float(stamps["y"][k]))
        peaks.append(float(stamps["stamps"][k].max()))
    catalog = {"x": np.array(xs), "y": np.array(ys), "peak": np.array(peaks)}
    return image, image > threshold, catalog


def _add_core(flat, columns, yc, stretch, flux, profile, norm, wavelength):
    """Add one order's profile core to the flattened frame ``flat`` (float64, in place).

    The profile is evaluated on a band of rows around each column's trace
    centre (including rows off the detector) and normalised over that band,
    so each column receives exactly ``flux * norm`` whatever the sub-pixel
    phase; rows off the detector are then dropped, as light falls off it.
    """
    half = int(np.ceil(profile.u_max * float(np.max(stretch)))) + 1
    offsets = np.arange(-half, half + 1)
    rows = np.floor(yc).astype(np.int64)[None, :] + offsets[:, None]
    u = (rows - yc[None, :]) / stretch[None, :]
    values = profile.core_values(u, wavelength)
    total = values.sum(axis=0)
    total[total == 0] = 1.0
    values *= (flux * norm / total)[None, :]
    inside = (rows >= 0) & (rows < NY)
    index = rows * NX + columns[None, :]
    flat += np.bincount(index[inside], weights=values[inside], minlength=NY * NX)


class Scene:
    """Noiseless SOSS scene of one simulated exposure.

    Parameters
    ----------
    config : SimConfig
        Simulation settings (PWCPOS, offsets, orders, flux scale, line
        depth, halo, background scale, order 0s).
    profile : CrossDispersionProfile, optional
        Profile to use instead of the packaged one (used by the calibration).
    spectrum : tuple of ndarray, optional
        ``(wavelength, flux)`` continuum instead of the packaged one.
    background_template : ndarray, optional
        256 x 2048 template instead of the packaged one.
    throughput_scale : dict of int to tuple, optional
        Per-order throughput corrections instead of the packaged ones.

    Attributes
    ----------
    traces : dict of int to SceneTrace
    column_flux : dict of int to ndarray
        Out-of-transit flux (DN/s) entering each column, per order.
    background : ndarray
        Scaled background (DN/s), 0 on reference pixels.
    order0, order0_mask, order0_catalog
        Field-star order-0 contaminants (see `order0_image`).
    """

    def __init__(self, config, profile=None, spectrum=None, background_template=None,
                 throughput_scale=None):
        self.config = config
        self.profile = profile if profile is not None else reference.load_profile()
        # Scene randomness has its own stream (spawn key 2), so switching these
        # effects on leaves the noise draws of every other stream unchanged.
        rng = np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(2,)))
        self.filter = getattr(config, "filter", "CLEAR")
        teff = getattr(config, "teff", None)
        forest = np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(2, 1)))
        self.host = field.host_star(teff, rng, forest_rng=forest) if teff is not None else None
        self._spectrum = spectrum
        self._throughput_scale = throughput_scale or {}
        self.traces = {
            order: trace_solution(
                order,
                config.pwcpos,
                config.trace_dx + getattr(config, f"trace_dx_order{order}", 0.0),
                config.trace_dy,
            )
            for order in config.orders
        }
        self.column_flux = {order: self.flux(order) for order in config.orders}
        self.halo_fraction = self.profile.halo_fraction if config.halo else 0.0
        self._halo_unit = (
            {order: self._halo_image(order) for order in config.orders} if config.halo else {}
        )

        template = (
            background_template
            if background_template is not None
            else reference.default_background_template()
        )
        self.template = np.asarray(template, dtype=np.float32)
        self.background = (config.background_scale * self.template).astype(np.float32)
        self.background *= field.background_structure(
            self.background.shape, getattr(config, "background_structure", 0.0), rng
        )
        if self.filter == "F277W":
            self.background *= field.F277W_BACKGROUND_FRACTION
        self.reference_mask = reference_pixels((NY, NX))
        self.background[self.reference_mask] = 0.0
        if config.n_order0 > 0:
            self.order0, self.order0_mask, self.order0_catalog = order0_image(config.n_order0)
        else:
            self.order0 = np.zeros((NY, NX), dtype=np.float32)
            self.order0_mask = np.zeros((NY, NX), dtype=bool)
            self.order0_catalog = {"x": np.zeros(0), "y": np.zeros(0), "peak": np.zeros(0)}
        if self.filter == "F277W":
            # The stamps were cut from a real F277W frame and scaled to CLEAR.
            ratio = float(reference.load_order0_stamps()["clear_over_f277w"])
            self.order0 = self.order0 / ratio
            self.order0_catalog = dict(self.order0_catalog, peak=self.order0_catalog["peak"] / ratio)
        self.order0[self.reference_mask] = 0.0
        self.order0_mask &= ~self.reference_mask
        self.contaminants = field.draw_contaminants(getattr(config, "n_contaminants", 0), rng)
        self.contaminant_image = self._contaminant_image()
        self.static = self.background + self.order0 + self.contaminant_image

    def flux(self, order, dx=0.0, dy=0.0):
        """Flux (DN/s) entering each column of ``order`` for a trace shift.

        Continuum x stellar lines x order throughput x dispersion x flux
        scale: the continuum is a flux density per micron, and a column
        collects ``|d lambda / d x|`` microns.
        """
        trace = self.traces[order]
        _, wave, _ = trace.at(dx, dy)
        xm = trace.columns.astype(float)
        dispersion = np.abs(np.gradient(wave, xm))
        continuum = stellar_flux_density(wave, self._spectrum)
        # The star's lines are Doppler shifted; its smooth continuum hardly moves.
        rest = wave / (1.0 + getattr(self.config, "stellar_rv", 0.0) / C_KMS)
        if self.host is None:
            lines = line_absorption(rest, dispersion, self.config.stellar_line_depth)
        else:
            lines = self.host.transmission(rest, dispersion) * self.host.continuum_factor(wave)
        eff = throughput(order, wave, self._throughput_scale.get(order))
        eff = eff * field.filter_transmission(self.filter, wave)
        return self.config.flux_scale * continuum * lines * eff * dispersion

    def _contaminant_image(self):
        """Static image (DN/s) of the field stars' order 1 and 2 traces (cores only)."""
        image = np.zeros(NY * NX, dtype=np.float64)
        core_norm = 1.0 - self.halo_fraction
        for star in self.contaminants:
            for order in (1, 2):
                if order not in self.traces:
                    continue
                base = self.traces[order]
                trace = trace_solution(order, self.config.pwcpos, base.dx + star.dx,
                                       base.dy + star.dy)
                yc, wave, slope = trace.at()
                dispersion = np.abs(np.gradient(wave, trace.columns.astype(float)))
                flux = (star.flux_ratio * self.config.flux_scale
                        * stellar_flux_density(wave, self._spectrum)
                        * field.blackbody_ratio(wave, star.teff)
                        * throughput(order, wave, self._throughput_scale.get(order))
                        * field.filter_transmission(self.filter, wave)
                        * dispersion)
                stretch = self.profile.stretch(wave, slope)
                _add_core(image, trace.columns, yc, stretch, flux, self.profile, core_norm, wave)
        image = image.reshape(NY, NX).astype(np.float32)
        image[reference_pixels((NY, NX))] = 0.0
        return image

    def order_core(self, order):
        """Noiseless, unjittered core image (DN/s) of one target order alone."""
        trace = self.traces[order]
        flat = np.zeros(NY * NX, dtype=np.float64)
        yc, wave, slope = trace.at()
        core_norm = 1.0 - self.halo_fraction
        _add_core(flat, trace.columns, yc, self.profile.stretch(wave, slope),
                  self.column_flux[order], self.profile, core_norm, wave)
        return flat.reshape(NY, NX)

    def dilution(self, order, half_width=15):
        """Field-star flux over the target's, per column, in a box around the trace.

        Parameters
        ----------
        order : int
        half_width : int
            Half height (rows) of the box centred on the target's trace.

        Returns
        -------
        ndarray
            Contaminant / target flux per column of the order (0 without
            contaminants); the transit depth seen is ``depth / (1 + dilution)``.
        """
        trace = self.traces[order]
        if not self.contaminants:
            return np.zeros(trace.columns.size)
        rows = np.arange(NY)[:, None]
        inside = np.abs(rows - trace.y[None, :]) <= half_width
        target = np.where(inside, self.order_core(order)[:, trace.columns], 0.0).sum(axis=0)
        contam = np.where(inside, self.contaminant_image[:, trace.columns], 0.0).sum(axis=0)
        return contam / np.maximum(target, 1e-12)

    def _halo_image(self, order):
        """Halo of ``order`` per unit column flux, (256, ncols) float32."""
        trace = self.traces[order]
        rows = np.arange(NY, dtype=float)[:, None]
        return self.profile.halo(rows - trace.y[None, :]).astype(np.float32)

    def star(self, light_curve=None, dx=0.0, dy=0.0, dwidth=0.0):
        """Render the star (all orders, core and halo) for one integration.

        Parameters
        ----------
        light_curve : dict of int to ndarray, optional
            Relative flux of each column per order (transit); 1 if omitted.
        dx, dy : float
            Trace shift of this integration (jitter, drift), pixels.
        dwidth : float
            Relative change of the profile-core width (0.01 = 1 % wider);
            the column flux is kept.

        Returns
        -------
        ndarray
            float32 (256, 2048) DN/s, 0 on reference pixels.
        """
        flat = np.zeros(NY * NX, dtype=np.float64)
        halo = np.zeros((NY, NX), dtype=np.float32)
        core_norm = 1.0 - self.halo_fraction
        for order, trace in self.traces.items():
            yc, wave, slope = trace.at(dx, dy)
            # A column's flux depends on the x shift only (wavelengths move with x).
            flux = self.column_flux[order] if dx == 0 else self.flux(order, dx, dy)
            if light_curve is not None and order in light_curve:
                flux = flux * light_curve[order]
            stretch = self.profile.stretch(wave, slope) * (1.0 + dwidth)
            _add_core(flat, trace.columns, yc, stretch, flux, self.profile, core_norm, wave)
            if order in self._halo_unit:
                cols = slice(trace.columns[0], trace.columns[-1] + 1)
                halo[:, cols] += self._halo_unit[order] * flux.astype(np.float32)[None, :]
        image = flat.reshape(NY, NX).astype(np.float32)
        image += halo
        image[self.reference_mask] = 0.0
        return image

    def deep_frame(self):
        """Noiseless out-of-transit frame: star + background + order 0s (DN/s)."""
        return self.star() + self.static


def write_background_files(template, output_dir, root):
    """Write the background template in the two formats users have.

    Parameters
    ----------
    template : ndarray
        256 x 2048 template (DN/s).
    output_dir : pathlib.Path
        Destination folder.
    root : str
        File-name root.

    Returns
    -------
    dict
        ``{"npy": path, "fits": path}``: a 2-D ``.npy`` array (like the STScI
        SOSS background model) and a FITS file with the image in the ``SCI``
        extension.
    """
    npy_path = output_dir / f"{root}_bkg_template.npy"
    fits_path = output_dir / f"{root}_bkg_template.fits"
    data = np.asarray(template, dtype=np.float32)
    with atomic_path(npy_path) as temporary:
        np.save(temporary, data)
    primary = fits.PrimaryHDU()
    primary.header["ORIGIN"] = ("jwst_soss_custom", "simulator background template")
    primary.header["SUBARRAY"] = "SUBSTRIP256"
    primary.header["EXP_TYPE"] = "NIS_SOSS"
    primary.header["BUNIT"] = "DN/s"
    sci = fits.ImageHDU(data, name="SCI")
    sci.header["BUNIT"] = "DN/s"
    with atomic_path(fits_path) as temporary:
        fits.HDUList([primary, sci]).writeto(temporary)
    return {"npy": npy_path, "fits": fits_path}


def noisy_deep_frame(config):
    """Deep frame of an exposure without running it: the scene and its noise.

    The background-subtracted median over ``config.nints`` integrations that
    the pipeline's exposure statistics give, drawn directly: the noiseless
    out-of-transit star, field-star traces and order 0s, plus Gaussian noise
    of the photon and read noise of one slope (``config.slope_time``,
    ``gain``, ``read_noise_cds``) over the integrations, times ``sqrt(pi/2)``
    for a median. Milliseconds instead of minutes, for checks that only use
    the deep frame (tracing, wavelengths) over many scenes.

    Parameters
    ----------
    config : SimConfig

    Returns
    -------
    deep, noise : ndarray (256, 2048)
        DN/s; noise is the 1-sigma error of each pixel.
    scene : Scene
    """
    scene = Scene(config)
    image = (scene.star() + scene.contaminant_image + scene.order0).astype(np.float64)
    electrons = np.clip(image + scene.background, 0.0, None) * config.gain * config.slope_time
    read = 2 * (config.read_noise_cds * config.gain) ** 2
    noise = np.sqrt(np.pi / 2 * (electrons + read) / config.nints) / (
        config.gain * config.slope_time)
    rng = np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(9,)))
    deep = image + rng.normal(size=image.shape) * noise
    deep[scene.reference_mask] = 0.0
    return deep, noise, scene
