"""Simulate a SOSS time-series exposure: `simulate` writes segments, templates and truth."""

import logging
import time
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from pathlib import Path

import numpy as np
from stdatamodels.jwst.datamodels import dqflags

from jwst_soss_custom._base.geometry import NX, NY
from jwst_soss_custom.datasets import field, reference, transit
from jwst_soss_custom.datasets.config import make_config, segment_sizes
from jwst_soss_custom.datasets.noise import (
    OneOverF,
    draw_bad_pixels,
    draw_cosmic_rays,
    draw_slopes,
    poisson_variance,
    read_noise_variance,
)
from jwst_soss_custom.datasets.scene import STELLAR_LINES, Scene, write_background_files
from jwst_soss_custom.datasets.writer import (
    build_segment,
    save_atomic,
    segment_filename,
    write_truth,
)

log = logging.getLogger(__name__)

__all__ = ["SimResult", "simulate"]

_DNU = dqflags.pixel["DO_NOT_USE"]


@dataclass
class SimResult:
    """Files written by `simulate`.

    Attributes
    ----------
    segment_files : list of Path
        ``*_nis_rateints.fits`` (or ``*_nis_uncal.fits``) segments, in
        integration order.
    truth_file : Path
        ``<root>_truth.asdf`` (read it with `load_truth`).
    background_files : dict
        ``{"npy": Path, "fits": Path}``: the 256 x 2048 background template
        the scene used (unscaled; the scale is in the truth).
    config : SimConfig
        The configuration used.
    reference_files : dict
        At the ramp levels, reference type to CRDS-format file (``refs/``),
        usable as ``override_<reftype>`` by the official Detector1.
    """

    segment_files: list
    truth_file: Path
    background_files: dict
    config: object
    timing: dict = dataclass_field(default_factory=dict)
    reference_files: dict = dataclass_field(default_factory=dict)


def _rng(seed, *key):
    """Independent generator for one purpose: the same (seed, key) gives the same draws."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def simulate(output_dir, preset="tiny", seed=0, **overrides):
    """Simulate a NIRISS/SOSS TSO exposure and write it like the archive delivers it.

    Parameters
    ----------
    output_dir : str or Path
        Folder for the files (created if needed).
    preset : str
        A name in `PRESETS` (``"tiny"``, ``"small"``, ``"full"``,
        ``"realistic"``, ``"realistic_small"``, ``"hard"``).
    seed : int
        Random seed; the same seed and settings give the same data.
    **overrides
        Any `SimConfig` field, e.g. ``nints=60``, ``oneoverf_scale=0``,
        ``level="uncal"``.

    Returns
    -------
    SimResult
    """
    config = make_config(preset, seed=seed, **overrides)
    out = Path(output_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"output directory {out} is a file; give a folder.")
    out.mkdir(parents=True, exist_ok=True)
    clock = time.perf_counter()
    log.info(
        "simulating %d integrations (%d segments, level %s) into %s",
        config.nints, config.nsegments, config.level, out,
    )
    visit = _Visit(config)
    if config.level == "slopes":
        segment_files, extra = _slope_segments(visit, out)
        references = {}
    else:
        from jwst_soss_custom.datasets.ramps import ramp_segments

        segment_files, extra, references = ramp_segments(visit, out)

    scene = visit.scene
    template = scene.template.copy()
    template[scene.reference_mask] = 0.0
    background_files = write_background_files(template, out, config.root)

    truth = {
        "format_version": 2,
        "config": config.to_dict(),
        "preset": config.preset,
        "level": config.level,
        "pwcpos": config.pwcpos,
        "files": {
            "segments": [p.name for p in segment_files],
            "background_npy": background_files["npy"].name,
            "background_fits": background_files["fits"].name,
            "depth_spectrum": reference.DEPTH_SPECTRUM_FILE,
            "references": {k: str(Path(v).relative_to(out)) for k, v in references.items()},
        },
        "times": {key: np.asarray(value) for key, value in visit.times.items()},
        "transit": visit.params,
        "deep_frame": visit.deep,
        "background": scene.background,
        "background_scale": config.background_scale,
        "bad_pixels": {
            "hot_flagged": visit.bad.hot_flagged,
            "hot_unflagged": visit.bad.hot_unflagged,
            "dead_flagged": visit.bad.dead_flagged,
            "dead_unflagged": visit.bad.dead_unflagged,
            "hot_rate": visit.bad.hot_rate,
            "response": visit.bad.response,
        },
        "order0": {"mask": scene.order0_mask, "image": scene.order0, **scene.order0_catalog},
        "contaminants": {
            "image": scene.contaminant_image,
            "dx": np.array([c.dx for c in scene.contaminants]),
            "dy": np.array([c.dy for c in scene.contaminants]),
            "flux_ratio": np.array([c.flux_ratio for c in scene.contaminants]),
            "teff": np.array([c.teff for c in scene.contaminants]),
            "box_half_width": DILUTION_HALF_WIDTH,
        },
        "jitter": {"dx": visit.dx, "dy": visit.dy, "dwidth": visit.dwidth},
        "systematics": {
            "flux": visit.systematic_flux,
            "dy": visit.tilt_dy,
            "dwidth": visit.tilt_dwidth,
        },
        "stellar_lines": _line_truth(config, scene),
        "stellar_rv": float(config.stellar_rv),
        **extra,
    }
    if scene.host is not None:
        truth["host_star"] = scene.host.truth()
    for order, values in visit.orders.items():
        truth[f"order{order}"] = values
    truth_file = out / f"{config.root}_truth.asdf"
    write_truth(truth_file, truth)
    elapsed = time.perf_counter() - clock
    log.info("simulation done in %.1f s", elapsed)
    return SimResult(segment_files, truth_file, background_files, config,
                     {"total_s": elapsed}, references)


#: Half height (rows) of the box in which the truth's dilution is measured.
DILUTION_HALF_WIDTH = 15


class _Visit:
    """What every level shares: scene, times, transit, bad pixels, jitter, systematics."""

    def __init__(self, config):
        self.config = config
        self.scene = scene = Scene(config)
        self.times = transit.integration_times(config)
        self.orders, self.params = _transit_truth(config, scene, self.times)
        for order, values in self.orders.items():
            values["dilution"] = scene.dilution(order, DILUTION_HALF_WIDTH)
            values["depth_diluted"] = values["depth"] / (1.0 + values["dilution"])
        rng = _rng(config.seed, 0)
        self.rng = rng
        self.science = ~scene.reference_mask
        self.bad = draw_bad_pixels(config, rng, self.science)
        # Drawn here, before the jitter, so the random streams of the
        # slope level are those of earlier versions.
        self.cosmic = draw_cosmic_rays(config, rng, self.science)
        index = np.arange(config.nints)
        ramp = index / max(config.nints - 1, 1) - 0.5
        self.dx = rng.normal(0.0, 1.0, config.nints) * config.jitter_rms_x + config.drift_x * ramp
        self.dy = rng.normal(0.0, 1.0, config.nints) * config.jitter_rms_y + config.drift_y * ramp
        # Drawn only when asked, so the random streams of default runs are unchanged.
        self.dwidth = config.drift_width * ramp
        if config.jitter_rms_width:
            self.dwidth = self.dwidth + rng.normal(0.0, config.jitter_rms_width, config.nints)
        self.systematic_flux, self.tilt_dy, self.tilt_dwidth = field.visit_systematics(
            config, self.times["int_mid_BJD_TDB"]
        )
        self.deep = scene.deep_frame()

    def illumination(self, i):
        """Noiseless light (DN/s) reaching the detector in integration ``i`` (before response)."""
        factor = self.systematic_flux[i]
        light = {o: self.orders[o]["light_curves"][i] * factor for o in self.orders}
        signal = self.scene.star(
            light, self.dx[i], self.dy[i] + self.tilt_dy[i], self.dwidth[i] + self.tilt_dwidth[i]
        )
        signal += self.scene.static
        return signal


def _slope_segments(visit, out):
    """Write ``rateints`` drawn at the slope level (fast; for unit tests)."""
    config, bad, cosmic = visit.config, visit.bad, visit.cosmic
    oneoverf = OneOverF(config, NX)
    var_read = np.float32(read_noise_variance(config))
    dq = np.zeros((NY, NX), dtype=np.uint32)
    dq[visit.scene.reference_mask] |= dqflags.pixel["REFERENCE_PIXEL"]
    dq[bad.hot_flagged] |= dqflags.pixel["HOT"] | _DNU
    dq[bad.dead_flagged] |= dqflags.pixel["DEAD"] | _DNU

    expected_signal = visit.deep * bad.response + bad.hot_rate
    expected_err = np.sqrt(poisson_variance(expected_signal, config) + var_read).astype(np.float32)
    expected_err[bad.flagged] = np.nan

    offsets = np.zeros((config.nints, NX), dtype=np.float32)
    segment_files = []
    sizes = segment_sizes(config.nints, config.nsegments)
    first = 1
    for seg, size in enumerate(sizes, start=1):
        last = first + size - 1
        arrays = {
            key: np.empty((size, NY, NX), dtype=np.float32)
            for key in ("data", "err", "var_poisson", "var_rnoise")
        }
        arrays["dq"] = np.broadcast_to(dq, (size, NY, NX)).copy()
        arrays["var_rnoise"][...] = var_read
        for k, i in enumerate(range(first - 1, last)):
            rng_i = _rng(config.seed, 1, i)
            signal = visit.illumination(i)
            signal *= bad.response
            signal += bad.hot_rate
            var_p = poisson_variance(signal, config)
            sci = draw_slopes(signal, config, rng_i)
            offsets[i] = oneoverf.draw(rng_i)[0]
            sci += offsets[i][None, :]
            hits = cosmic["integration"] == i
            np.add.at(sci, (cosmic["y"][hits], cosmic["x"][hits]), cosmic["amplitude"][hits])
            arrays["data"][k] = sci
            arrays["var_poisson"][k] = var_p
        np.sqrt(arrays["var_poisson"] + arrays["var_rnoise"], out=arrays["err"])
        # Detector1 leaves NaN in every array where a pixel is DO_NOT_USE.
        for key in ("data", "err", "var_poisson", "var_rnoise"):
            arrays[key][:, bad.flagged] = np.nan
        # A smaller subarray reads some rows of the same scene (and 1/f).
        arrays = {key: value[:, config.rows] for key, value in arrays.items()}
        model = build_segment(config, arrays, visit.times, seg, len(sizes), first, last)
        path = save_atomic(model, out / segment_filename(config, seg))
        del arrays, model
        segment_files.append(path)
        log.info("wrote %s (integrations %d-%d of %d)", path.name, first, last, config.nints)
        first = last + 1
    extra = {
        "expected_err": expected_err,
        "read_noise_variance": float(var_read),
        "oneoverf": {
            "column_offsets": offsets,
            "sigma_dn": oneoverf.sigma,
            "expected_rms": oneoverf.expected_rms,
        },
        "cosmic_rays": cosmic,
    }
    return segment_files, extra


def _line_truth(config, scene):
    """The stellar lines drawn (the packaged list, or the host star's own)."""
    if scene.host is not None:
        lines = scene.host.truth()["lines"]
        return {"name": lines["name"], "wavelength": lines["wavelength"], "depth": lines["depth"]}
    return {
        "name": [name for name, _, _ in STELLAR_LINES],
        "wavelength": np.array([w for _, w, _ in STELLAR_LINES]),
        "depth": np.array([d for _, _, d in STELLAR_LINES]) * config.stellar_line_depth,
    }


def _transit_truth(config, scene, times):
    """Per-order trace, spectrum and light-curve truth, and the orbit."""
    mid = times["int_mid_BJD_TDB"]
    per_order = {}
    for order, trace in scene.traces.items():
        wave = trace.wavelength
        depth = transit.depth_spectrum(wave, scale=config.depth_scale)
        u1, u2 = transit.limb_darkening(wave)
        _, _, slope = trace.at()
        per_order[order] = {
            "x": trace.columns.astype(np.int32),
            "y": trace.y,
            "y_model": trace.at()[0] - trace.dy,
            "wavelength": wave,
            "column_flux": scene.column_flux[order],
            "fwhm": scene.profile.fwhm_along_column(wave, slope),
            "depth": depth,
            "u1": u1,
            "u2": u2,
        }
    o1 = per_order[min(per_order)]
    weights = o1["column_flux"] / o1["column_flux"].sum()
    white_rp = float(np.sqrt(np.sum(weights * o1["depth"])))
    params = transit.transit_parameters(config, times, white_rp)
    params["limb_dark"] = "quadratic"
    params["u"] = [float(np.sum(weights * o1["u1"])), float(np.sum(weights * o1["u2"]))]
    params["rp_white"] = white_rp
    params["white_fit"] = {k: params[k] for k in ("t0", "period", "a_rs", "inc", "ecc", "w")}
    params["white_fit"]["u"] = list(params["u"])
    for order, values in per_order.items():
        if config.transit:
            rp = np.sqrt(values["depth"])
            lc = transit.light_curves(mid, params, rp, values["u1"], values["u2"])
        else:
            lc = np.ones((config.nints, values["x"].size), dtype=np.float32)
        values["light_curves"] = lc
        values["white_light"] = lc.astype(np.float64) @ values["column_flux"]
    return per_order, params
